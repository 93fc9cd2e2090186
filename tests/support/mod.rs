//! The one support module of the integration tests. Include it with `mod support;` from a file
//! directly under tests/, or `#[path = "../support/mod.rs"] mod support;` from a directory test
//! (tests/robust/main.rs). Its modules refer to each other through `super::` only, so that it
//! works wherever it is mounted (tests/common/mod.rs mounts it inside `common`).
//!
//! | module | what it holds |
//! | --- | --- |
//! | `cluster` | [`cluster::Cluster`] of recorded peers, ENet builders on loopback, `deadline()` |
//! | `suite` | the behavioural suite every transport must pass |
//! | `raw` | one raw ENet client speaking the protocol by hand, and packets built with `Header::encode` |
//! | `robust` | environment switches, /proc figures, the impairing proxy, garbage, log capture |
//! | `process` | spawning example binaries and engines: [`process::Proc`] |
//! | `godot` | the Godot 3 engine: finding it, its temporary HOME, the agent.gd [`godot::Agent`] |

// Every test binary uses a part of the support module only.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod godot;
pub mod godot_ws;
pub mod process;
pub mod raw;
pub mod robust;
pub mod suite;
