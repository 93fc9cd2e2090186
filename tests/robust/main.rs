//! The robustness tests, one test binary (`cargo test --test robust`): garbage datagrams at a
//! server, protocol abuse by raw ENet clients, lossy and black-holed links, and churn. Their
//! sizes grow with ENET_MP_HEAVY=1 and shrink under valgrind (ENET_MP_VALGRIND=1); see
//! tests/support/robust.rs for the switches.
//!
//! Every test here takes `support::robust::serial()` for its whole run, so the tests of this
//! binary run one at a time although libtest starts them on parallel threads. They were four
//! processes before, and some measure or capture what belongs to the whole process:
//! - `garbage` and `churn` compare the process's RSS between two identical rounds (a few
//!   hundred KiB of tolerance): any other test allocating meanwhile would show up as growth;
//! - `abuse` installs a process-wide log capture and counts exact lines in it: any other test
//!   logging meanwhile could add lines (the capture switches itself off when its test ends);
//! - `garbage` reads the kernel's drop counter of its own server socket (/proc/net/udp), which a
//!   test hogging both cores beside it would inflate; and the lossy and churn tests measure
//!   timeouts that another busy test would stretch.
//!
//! tests/proptest_protocol.rs stays a binary of its own: it is pure CPU work on the protocol
//! layer (no socket, no log, no support module), and beside these tests it would only perturb
//! their measurements or, serialised with them, run no faster.

#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod churn;
mod garbage;
mod lossy;
