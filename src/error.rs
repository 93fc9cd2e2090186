//! The one error type of the multiplayer layer.

use crate::vocabulary::{ConnectionStatus, PeerId, Target};

/// Everything a [`MultiplayerPeer`](crate::MultiplayerPeer) call can refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Sending (or another call that needs a connection) while not connected.
    #[error("not connected (status {0:?})")]
    NotConnected(ConnectionStatus),
    /// The target (Godot's integer) names no connected peer.
    #[error("unknown target peer {0}")]
    UnknownTarget(i32),
    /// A target that can never be valid (id 0, or an id above 2^31-1).
    #[error("invalid target {0:?}")]
    InvalidTarget(Target),
    /// A peer id that names no connected peer.
    #[error("unknown peer {0}")]
    UnknownPeer(PeerId),
    /// A peer id outside 1..=2^31-1.
    #[error("invalid peer id {0}: ids are 1..=2147483647")]
    InvalidId(PeerId),
    /// A logical channel the connection does not have.
    #[error("channel {channel} out of range: {count} logical channels")]
    ChannelOutOfRange {
        /// The logical channel asked for.
        channel: u8,
        /// How many logical channels there are.
        count: u16,
    },
    /// A payload larger than [`max_packet_size`](crate::MultiplayerPeer::max_packet_size).
    #[error("packet of {size} bytes exceeds the maximum of {max}")]
    PacketTooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A call this peer's role or state does not allow (for example a client kicking another
    /// client).
    #[error("not allowed: {0}")]
    NotAllowed(NotAllowed),
    /// A connection-status change the custom peer's state machine forbids.
    #[error("invalid connection status transition {from:?} -> {to:?}")]
    InvalidTransition {
        /// The current status.
        from: ConnectionStatus,
        /// The status asked for.
        to: ConnectionStatus,
    },
    /// A configuration value out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The server address could not be resolved to an IPv4 address.
    #[error("could not resolve {address}: {reason}")]
    Resolve {
        /// What was asked for.
        address: String,
        /// Why it failed.
        reason: String,
    },
    /// ENet refused or failed.
    #[error(transparent)]
    Enet(#[from] enet_wrapper::Error),
    /// A socket call failed (listening, connecting, polling).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate, key or configuration was not usable.
    #[error("TLS: {0}")]
    Tls(String),
}

impl Error {
    /// An [`Error::Io`] for `context`.
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`Error::NotAllowed`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NotAllowed {
    /// A client can only disconnect from the server (id 1).
    #[error("a client can only disconnect from the server (id 1)")]
    ClientDisconnectsClient,
    /// `initialize` outside CONNECTING (custom peer).
    #[error("initialize() is only allowed while connecting")]
    InitializeWhileNotConnecting,
    /// CONNECTED before `initialize` (custom peer).
    #[error("call initialize() before moving to connected")]
    NotInitialized,
    /// A peer announced with this peer's own id (custom peer).
    #[error("that is this peer's own id")]
    OwnId,
    /// A peer announced while the server refuses new connections (custom peer).
    #[error("refusing new connections")]
    RefusingConnections,
    /// A peer announced twice, or the server announced to a client (custom peer).
    #[error("that peer is already connected")]
    AlreadyConnected,
    /// A client's server is not removed: the client disconnects (custom peer).
    #[error("a client loses the server with set_connection_status(Disconnected)")]
    RemoveServer,
    /// An offline peer has nobody to send to.
    #[error("an offline peer has no peers to send to")]
    Offline,
    /// Admission (approve, reject) is the server's.
    #[error("only a server admits or rejects clients")]
    NotAServer,
}
