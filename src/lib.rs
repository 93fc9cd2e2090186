//! Godot's `MultiplayerPeer` for Rust game servers, backed by ENet and wire compatible with
//! Godot 3.x's `NetworkedMultiplayerENet`: a Godot 3 game's clients can join a Rust server built
//! on it, and a Rust client can join a Godot 3 server.
//!
//! - [`MultiplayerPeer`]: the trait, with Godot's vocabulary ([`Target`], [`TransferMode`],
//!   [`ConnectionStatus`], [`PeerEvent`]).
//! - [`ENetMultiplayerPeer`]: server (with relay) and client over ENet; its server also takes
//!   WebSocket clients into the same room ([`ENetBuilder::websocket`]).
//! - [`WebSocketMultiplayerPeer`]: Godot 3's WebSocket multiplayer peer (browser builds).
//! - [`protocol`] and [`relay`]: the wire format and the relay rules, as pure functions.
//! - [`api::MultiplayerApi`]: Godot's high-level multiplayer (RPC, RSET, node-path cache,
//!   `send_bytes`) over any peer, with [`variant::Variant`] and its binary codec.
//!
//! The layering is described in DESIGN.md; the bytes on the wire in PROTOCOL.md and
//! MULTIPLAYER_API.md.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
mod custom;
mod enet;
mod error;
mod offline;
mod peer;
pub mod protocol;
pub mod relay;
mod server;
pub mod session;
pub mod variant;
mod vocabulary;
pub mod websocket;

pub use custom::{CustomBuilder, CustomMultiplayerPeer, Outgoing, OutgoingPacket};
pub use enet::{
    ClientRole, Compression, ENetBuilder, ENetMultiplayerPeer, PeerStats, ServerRole, TotalStats,
    DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_MAX_QUEUED_BYTES, DEFAULT_SERVER_SOCKET_BUFFER,
};
pub use enet_wrapper::Error as EnetError;
pub use error::{Error, NotAllowed, Result};
pub use offline::OfflineMultiplayerPeer;
pub use peer::{
    generate_unique_id, ConnectionStatus, DisconnectReason, MultiplayerPeer, Packet, PeerEvent,
    PeerId, PeerQueues, Polled, Refusal, SendSettings, Target, TransferMode, MAX_PEER_ID,
    SERVER_ID,
};
pub use server::ServerPackets;
pub use websocket::{
    TlsIdentity, WebSocketClientBuilder, WebSocketListen, WebSocketMultiplayerPeer,
    WebSocketServerBuilder, WebSocketStats,
};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
