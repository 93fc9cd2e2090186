//! Load generator (a trimmed copy of the head of examples/load.rs for the report's test).
//!
//! ```text
//! cargo run --release --example load -- [OPTIONS]
//!
//!   --server ADDR:PORT      server to load (default 127.0.0.1:7777)
//!   --test KIND             throughput (default) | overload | ping | connect
//! ```
//!
//! Tests: none of this is copied.

fn main() {}
