//! Godot's multiplayer vocabulary as Rust values: ids, transfer modes, targets, connection
//! status, events, disconnect reasons, received packets. Plain data, used by every layer (the
//! error type included), so it depends on none of them.

use bytes::Bytes;

/// A peer's unique id. The server is always [`SERVER_ID`]; clients are 2..=[`MAX_PEER_ID`].
pub type PeerId = u32;

/// The server's id.
pub const SERVER_ID: PeerId = 1;

/// The largest id (Godot ids are positive 32-bit signed integers).
pub const MAX_PEER_ID: PeerId = i32::MAX as PeerId;

/// How a packet travels (Godot's `TransferMode`; the integers are Godot 3's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum TransferMode {
    /// May be lost, may arrive out of order (ENet unsequenced). Godot: 0.
    Unreliable,
    /// May be lost, never arrives out of order: late packets are dropped (ENet sequenced). Godot: 1.
    UnreliableOrdered,
    /// Resent until it arrives, in order (ENet reliable). Godot: 2; the default.
    #[default]
    Reliable,
}

impl TransferMode {
    /// All three, in Godot's order.
    pub const ALL: [TransferMode; 3] = [
        TransferMode::Unreliable,
        TransferMode::UnreliableOrdered,
        TransferMode::Reliable,
    ];

    /// Godot's integer for this mode.
    pub fn to_godot(self) -> i32 {
        match self {
            TransferMode::Unreliable => 0,
            TransferMode::UnreliableOrdered => 1,
            TransferMode::Reliable => 2,
        }
    }

    /// The mode for Godot's integer.
    pub fn from_godot(mode: i32) -> Option<TransferMode> {
        match mode {
            0 => Some(TransferMode::Unreliable),
            1 => Some(TransferMode::UnreliableOrdered),
            2 => Some(TransferMode::Reliable),
            _ => None,
        }
    }
}

/// Godot's `ConnectionStatus` (the integers are Godot's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnectionStatus {
    /// Not connected. Godot: 0.
    #[default]
    Disconnected,
    /// Connecting. Godot: 1.
    Connecting,
    /// Connected (for a server: listening). Godot: 2.
    Connected,
}

/// Who a packet is for (Godot's `set_target_peer` integer, as an enum).
///
/// ```
/// use enet_multiplayer::Target;
/// assert_eq!(Target::from_godot(0), Target::Broadcast);
/// assert_eq!(Target::from_godot(1), Target::Server);
/// assert_eq!(Target::from_godot(5), Target::Peer(5));
/// assert_eq!(Target::from_godot(-5), Target::AllExcept(5));
/// assert_eq!(Target::AllExcept(5).to_godot(), Some(-5));
/// assert_eq!(Target::Peer(u32::MAX).to_godot(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Target {
    /// Everyone but the sender. Godot: 0; the default.
    #[default]
    Broadcast,
    /// The server alone. Godot: 1.
    Server,
    /// One peer. Godot: its id.
    Peer(PeerId),
    /// Everyone but this peer (and but the sender). Godot: minus its id.
    AllExcept(PeerId),
}

impl Target {
    /// The target for Godot's integer. Total: every integer maps to a target, though
    /// `i32::MIN` maps to `AllExcept(2^31)`, which [`Target::to_godot`] rejects.
    pub fn from_godot(target: i32) -> Target {
        match target {
            0 => Target::Broadcast,
            1 => Target::Server,
            n if n > 1 => Target::Peer(n as PeerId),
            n => Target::AllExcept(n.unsigned_abs()),
        }
    }

    /// Godot's integer for this target, or `None` when it has none (id 0 or above 2^31-1).
    pub fn to_godot(self) -> Option<i32> {
        match self {
            Target::Broadcast => Some(0),
            Target::Server | Target::Peer(1) => Some(1),
            Target::Peer(id) if (2..=MAX_PEER_ID).contains(&id) => Some(id as i32),
            Target::AllExcept(id) if (1..=MAX_PEER_ID).contains(&id) => Some(-(id as i32)),
            _ => None,
        }
    }

    /// The same target with `Peer(1)` written as `Server`.
    pub fn normalized(self) -> Target {
        match self {
            Target::Peer(SERVER_ID) => Target::Server,
            t => t,
        }
    }
}

impl From<i32> for Target {
    fn from(target: i32) -> Target {
        Target::from_godot(target)
    }
}

/// Why the connection to the server ended or never started (from the disconnect's data code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// No reason given: the server closed the connection, kicked us, or stopped answering.
    Unspecified,
    /// The server refused the connection (only servers built on this crate say why).
    Refused(Refusal),
    /// The server kicked this client (`disconnect_peer`).
    Kicked,
    /// The server shut down (`close`).
    ServerClosed,
    /// The server disconnected this client because it did not take its data fast enough
    /// (more was queued for it than the server's cap).
    SlowConsumer,
    /// A data code this crate does not know.
    Other(u32),
}

/// Why a server refused a connection. Sent as the ENet disconnect data, so a client learns at
/// once instead of timing out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The id the client chose is below 2 or above 2^31-1.
    InvalidId,
    /// Another connected client already has that id.
    IdInUse,
    /// The server is refusing new connections.
    NotAccepting,
    /// The server has its maximum number of clients.
    ServerFull,
    /// The server has its maximum number of clients from this client's address.
    TooManyFromAddress,
    /// This client's address connected more often than the server allows per second.
    ConnectingTooOften,
    /// A gated server did not admit this client: what it sent to be admitted (a join token)
    /// was invalid or expired.
    NotAuthorized,
    /// A gated server did not admit this client: it sent nothing to be admitted in time.
    AdmissionTimeout,
}

impl DisconnectReason {
    /// The ENet disconnect data that carries this reason.
    pub fn code(self) -> u32 {
        match self {
            DisconnectReason::Unspecified => 0,
            DisconnectReason::Refused(Refusal::InvalidId) => 1,
            DisconnectReason::Refused(Refusal::IdInUse) => 2,
            DisconnectReason::Refused(Refusal::NotAccepting) => 3,
            DisconnectReason::Refused(Refusal::ServerFull) => 4,
            DisconnectReason::Kicked => 5,
            DisconnectReason::ServerClosed => 6,
            DisconnectReason::SlowConsumer => 7,
            DisconnectReason::Refused(Refusal::TooManyFromAddress) => 8,
            DisconnectReason::Refused(Refusal::ConnectingTooOften) => 9,
            DisconnectReason::Refused(Refusal::NotAuthorized) => 10,
            DisconnectReason::Refused(Refusal::AdmissionTimeout) => 11,
            DisconnectReason::Other(code) => code,
        }
    }

    /// The reason for an ENet disconnect data code.
    pub fn from_code(code: u32) -> DisconnectReason {
        match code {
            0 => DisconnectReason::Unspecified,
            1 => DisconnectReason::Refused(Refusal::InvalidId),
            2 => DisconnectReason::Refused(Refusal::IdInUse),
            3 => DisconnectReason::Refused(Refusal::NotAccepting),
            4 => DisconnectReason::Refused(Refusal::ServerFull),
            5 => DisconnectReason::Kicked,
            6 => DisconnectReason::ServerClosed,
            7 => DisconnectReason::SlowConsumer,
            8 => DisconnectReason::Refused(Refusal::TooManyFromAddress),
            9 => DisconnectReason::Refused(Refusal::ConnectingTooOften),
            10 => DisconnectReason::Refused(Refusal::NotAuthorized),
            11 => DisconnectReason::Refused(Refusal::AdmissionTimeout),
            other => DisconnectReason::Other(other),
        }
    }
}

/// What happened, as values (Godot's signals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerEvent {
    /// `peer_connected(id)`: on a server, a client joined; on a client, the server (id 1, just
    /// before `ConnectionSucceeded`) or another client (announced by the server) joined.
    PeerConnected(PeerId),
    /// `peer_disconnected(id)`: exactly once per departed peer, whatever ended it, except after
    /// the two silent exits: `disconnect_peer(id, true)` and `close()`.
    PeerDisconnected(PeerId),
    /// `connection_succeeded` (client).
    ConnectionSucceeded,
    /// `connection_failed` (client): the connection never completed.
    ConnectionFailed(DisconnectReason),
    /// `server_disconnected` (client): the server went away; the peer is closed.
    ServerDisconnected(DisconnectReason),
}

/// What one [`poll`](crate::MultiplayerPeer::poll) handled, so a caller can tell traffic from idling
/// without diffing statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Polled {
    /// Connections and disconnections handled.
    pub events: usize,
    /// Packets received from the network, whatever became of them (delivered, relayed,
    /// dropped).
    pub packets: usize,
}

impl Polled {
    /// Whether anything happened.
    pub fn any(&self) -> bool {
        self.events + self.packets > 0
    }
}

/// A received packet: the payload with who sent it, on which logical channel and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The sender's id (for relayed packets: the original sender, not the server).
    pub from: PeerId,
    /// The logical channel (0 is the default channel).
    pub channel: u8,
    /// How it travelled.
    pub mode: TransferMode,
    /// The payload (without the protocol header).
    pub data: Bytes,
}
