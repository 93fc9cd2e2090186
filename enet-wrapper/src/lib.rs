//! Safe Rust over the [ENet](http://enet.bespin.org/) C library (`enet-sys`, ENet 1.3.17).
//!
//! This is the only crate of the `enet-multiplayer` workspace with `unsafe` code; every
//! `unsafe` block says why it holds. What it guarantees:
//!
//! - ENet's global initialisation is reference counted: any number of [`Host`]s on any number
//!   of threads, initialised once, deinitialised when the last host is dropped.
//! - [`Host`] owns one `ENetHost`; `Drop` disconnects its peers and destroys it. It is `Send`,
//!   not `Sync`.
//! - Peers are named by [`PeerHandle`]s that callers may store: a handle whose connection ended
//!   or whose slot was reused is rejected with [`Error::StalePeer`], never undefined behaviour.
//! - A [`Packet`] handed to ENet is freed by ENet, one that is not is freed by `Drop`; one packet
//!   can be queued for many peers without a copy ([`Host::send_many`]).
//! - A panic inside the only callback given to C (the intercept, [`Host::set_intercept`]) never
//!   unwinds into C: it is caught, carried out of ENet, and raised again from the [`Host`]
//!   method that called into ENet once ENet has returned; the host stays usable.
//!
//! Mechanism, not policy: the crate counts and exposes, the application decides. How long a
//! half-open handshake may hold a slot is a [`HandshakePolicyFn`] the application installs;
//! peer timeouts are [`Timeout`] values it sets; the socket is lent for readiness polling
//! ([`Host::socket_fd`]); the datagram walker it uses itself is public to tests behind the
//! `testing` feature (`enet_wrapper::testing`).
//!
//! | module | what it holds |
//! | --- | --- |
//! | `config` | [`HostConfig`], [`Compression`], ENet's limits |
//! | `host` | [`Host`]: creation, service, sending, peer access, the socket |
//! | `peer` | [`PeerHandle`], [`PeerState`], [`PeerInfo`], [`PeerMut`], per-slot bookkeeping |
//! | `event` | [`Event`] |
//! | `timeout` | [`Timeout`] |
//! | `handshake` | [`SlotUsage`], [`HandshakePolicyFn`], counting incoming handshakes |
//! | `intercept` | the C callback: [`Intercept`], [`InterceptFn`], panic carrying |
//! | `inspect` | ENet's datagram format, read-only (public as `testing`) |
//! | `packet` | [`Packet`], [`PacketFlags`] |
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod address;
mod config;
mod error;
mod event;
mod handshake;
mod host;
mod init;
mod inspect;
mod intercept;
mod memory;
mod packet;
mod peer;
mod queues;
#[cfg(feature = "testing")]
pub mod testing;
mod timeout;
mod timers;

pub use config::{Compression, HostConfig, DEFAULT_MAX_PACKET_SIZE, MAX_CHANNELS, MAX_PEERS};
pub use error::{Error, Result};
pub use event::Event;
pub use handshake::{HandshakePolicyFn, SlotUsage};
pub use host::{Host, Outgoing, SocketBuffers};
pub use intercept::{Intercept, InterceptFn};
pub use memory::{allocate_through_rust, avoid_huge_pages, release_free_memory};
pub use packet::{Packet, PacketFlags};
pub use peer::{PeerHandle, PeerInfo, PeerMut, PeerState};
pub use timeout::Timeout;
