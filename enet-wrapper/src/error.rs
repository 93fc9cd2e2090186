//! The one error type of this crate.

use std::net::SocketAddrV4;

/// Everything that can go wrong when talking to ENet through this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `enet_initialize` failed (it only fails when the platform's socket layer cannot start).
    #[error("ENet could not be initialised")]
    Initialize,
    /// A [`HostConfig`](crate::HostConfig) value is outside what ENet accepts.
    #[error("invalid host configuration: {0}")]
    InvalidConfig(String),
    /// `enet_host_create` failed, usually because the address could not be bound.
    #[error("could not create an ENet host bound to {bind}: {source}")]
    HostCreate {
        /// The address the host was asked to bind to (`0.0.0.0:0` for a client host).
        bind: SocketAddrV4,
        /// The operating system's reason, as reported right after the failure.
        #[source]
        source: std::io::Error,
    },
    /// Setting or reading a socket option failed.
    #[error("socket option {option}: {source}")]
    SocketOption {
        /// The option.
        option: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// ENet could not allocate the range coder for this host.
    #[error("could not enable the range coder compressor")]
    Compression,
    /// A peer handle whose slot was reused by a newer connection, whose connection is over, or
    /// that came from another host.
    #[error("stale peer handle (slot {index}): the connection it named is gone")]
    StalePeer {
        /// The slot index the handle pointed at.
        index: u16,
    },
    /// A peer handle whose slot index this host does not have (it came from another host).
    #[error("peer handle does not belong to this host (slot {index})")]
    UnknownPeer {
        /// The slot index the handle pointed at.
        index: u16,
    },
    /// All peer slots of the host are in use, so `connect` found no free one.
    #[error("no free peer slot for a new connection")]
    NoFreePeer,
    /// A channel number beyond what the connection negotiated.
    #[error("channel {channel} out of range: the connection has {count} channels")]
    ChannelOutOfRange {
        /// The channel asked for.
        channel: u8,
        /// How many channels the connection has.
        count: usize,
    },
    /// A packet larger than the host's maximum packet size.
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The packet's size in bytes.
        size: usize,
        /// The host's limit.
        max: usize,
    },
    /// `enet_peer_send` refused the packet (peer not connected, or out of memory).
    #[error("ENet refused to queue the packet (peer not connected?)")]
    SendFailed,
    /// `enet_packet_create` returned null.
    #[error("ENet could not allocate a packet of {0} bytes")]
    PacketAlloc(usize),
    /// `enet_host_service` or `enet_host_check_events` reported a socket failure.
    #[error("ENet service failed (socket error)")]
    Service,
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
