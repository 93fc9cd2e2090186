//! The `MultiplayerPeer` trait and Godot's vocabulary around it.

use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

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

    /// Godot's integer, or [`Error::InvalidTarget`].
    pub fn checked(self) -> Result<i32> {
        self.to_godot().ok_or(Error::InvalidTarget(self))
    }
}

impl From<i32> for Target {
    fn from(target: i32) -> Target {
        Target::from_godot(target)
    }
}

impl TryFrom<Target> for i32 {
    type Error = Error;
    fn try_from(target: Target) -> Result<i32> {
        target.checked()
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

/// What one [`poll`](MultiplayerPeer::poll) handled, so a caller can tell traffic from idling
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

/// Godot's MultiplayerPeer (and PacketPeer's get/put) in Rust. Object safe: a game can hold a
/// `Box<dyn MultiplayerPeer>` and switch transports at run time.
///
/// Packets go to the current [`target_peer`](MultiplayerPeer::target_peer),
/// [`transfer_mode`](MultiplayerPeer::transfer_mode) and
/// [`transfer_channel`](MultiplayerPeer::transfer_channel) with
/// [`put_packet`](MultiplayerPeer::put_packet), or to explicit ones with
/// [`send`](MultiplayerPeer::send). Incoming packets and events are queued by
/// [`poll`](MultiplayerPeer::poll) and taken with [`get_packet`](MultiplayerPeer::get_packet) and
/// [`pop_event`](MultiplayerPeer::pop_event).
///
/// # Implementing it for your own transport
/// (Godot 4's `MultiplayerPeerExtension`; but first see
/// [`CustomMultiplayerPeer`](crate::CustomMultiplayerPeer), which already keeps Godot's rules.)
/// Keep a [`PeerQueues`] and a [`SendSettings`]; `pop_event` and `get_packet` take from the
/// queues, and the other queue and settings methods (`peek_packet`, `put_packet`,
/// `set_target_peer`, ...) come for free:
///
/// ```
/// use enet_multiplayer::{
///     ConnectionStatus, MultiplayerPeer, Packet, PeerEvent, PeerId, PeerQueues, Polled, Result,
///     SendSettings, Target, TransferMode,
/// };
/// use std::time::Duration;
///
/// /// A loopback "transport": everything a peer sends to itself comes back.
/// #[derive(Default)]
/// struct Echo { queues: PeerQueues, settings: SendSettings }
///
/// impl MultiplayerPeer for Echo {
///     fn poll(&mut self) -> Result<Polled> { Ok(Polled::default()) }
///     fn poll_timeout(&mut self, _timeout: Duration) -> Result<Polled> { Ok(Polled::default()) }
///     fn send(&mut self, _to: Target, mode: TransferMode, channel: u8, data: &[u8]) -> Result<()> {
///         self.queues.push_packet(Packet { from: 1, channel, mode, data: data.to_vec().into() });
///         Ok(())
///     }
///     fn queues(&self) -> &PeerQueues { &self.queues }
///     fn pop_event(&mut self) -> Option<PeerEvent> { self.queues.pop_event() }
///     fn get_packet(&mut self) -> Option<Packet> { self.queues.pop_packet() }
///     fn settings(&self) -> &SendSettings { &self.settings }
///     fn settings_mut(&mut self) -> &mut SendSettings { &mut self.settings }
///     fn unique_id(&self) -> PeerId { 1 }
///     fn connection_status(&self) -> ConnectionStatus { ConnectionStatus::Connected }
///     fn is_server(&self) -> bool { true }
///     fn is_server_relay_supported(&self) -> bool { false }
///     fn set_refuse_new_connections(&mut self, _refuse: bool) {}
///     fn is_refusing_new_connections(&self) -> bool { true }
///     fn disconnect_peer(&mut self, id: PeerId, _force: bool) -> Result<()> {
///         Err(enet_multiplayer::Error::UnknownPeer(id))
///     }
///     fn close(&mut self) {}
///     fn max_packet_size(&self) -> usize { 1 << 16 }
/// }
///
/// let mut peer: Box<dyn MultiplayerPeer> = Box::new(Echo::default());
/// peer.put_packet(b"ping")?;
/// assert_eq!(peer.get_packet_peer(), Some(1));
/// assert_eq!(&peer.get_packet().unwrap().data[..], b"ping");
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
pub trait MultiplayerPeer {
    /// Processes network traffic: queues received packets and events, sends what is queued.
    /// Never blocks. Says what it handled.
    fn poll(&mut self) -> Result<Polled>;

    /// Like [`poll`](MultiplayerPeer::poll), but first sleeps in the socket until traffic arrives
    /// or `timeout` passes, so an idle server uses no CPU.
    fn poll_timeout(&mut self, timeout: Duration) -> Result<Polled>;

    /// The event and received-packet queues that `poll` fills, to look at (only the peer
    /// itself adds to them).
    fn queues(&self) -> &PeerQueues;

    /// The oldest event not yet taken.
    fn pop_event(&mut self) -> Option<PeerEvent>;

    /// Sends `data` to the current target with the current transfer mode and channel.
    fn put_packet(&mut self, data: &[u8]) -> Result<()> {
        let s = *self.settings();
        self.send(s.target, s.mode, s.channel, data)
    }

    /// Sends `data` to `target` with `mode` on logical `channel`, in one call.
    fn send(&mut self, target: Target, mode: TransferMode, channel: u8, data: &[u8]) -> Result<()>;

    /// Takes the next received packet.
    fn get_packet(&mut self) -> Option<Packet>;

    /// The next received packet, left in the queue.
    fn peek_packet(&self) -> Option<&Packet> {
        self.queues().peek_packet()
    }

    /// How many received packets wait.
    fn get_available_packet_count(&self) -> usize {
        self.queues().packet_count()
    }

    /// The sender of the next packet.
    fn get_packet_peer(&self) -> Option<PeerId> {
        self.peek_packet().map(|p| p.from)
    }

    /// The logical channel of the next packet.
    fn get_packet_channel(&self) -> Option<u8> {
        self.peek_packet().map(|p| p.channel)
    }

    /// The transfer mode of the next packet.
    fn get_packet_mode(&self) -> Option<TransferMode> {
        self.peek_packet().map(|p| p.mode)
    }

    /// The current target, mode and channel used by `put_packet`.
    fn settings(&self) -> &SendSettings;

    /// Mutable access to the current target, mode and channel.
    fn settings_mut(&mut self) -> &mut SendSettings;

    /// Sets where `put_packet` sends.
    fn set_target_peer(&mut self, target: Target) {
        self.settings_mut().target = target;
    }

    /// Where `put_packet` sends.
    fn target_peer(&self) -> Target {
        self.settings().target
    }

    /// Sets how `put_packet` sends.
    fn set_transfer_mode(&mut self, mode: TransferMode) {
        self.settings_mut().mode = mode;
    }

    /// How `put_packet` sends.
    fn transfer_mode(&self) -> TransferMode {
        self.settings().mode
    }

    /// Sets the logical channel `put_packet` uses (0 = the default channel).
    fn set_transfer_channel(&mut self, channel: u8) {
        self.settings_mut().channel = channel;
    }

    /// The logical channel `put_packet` uses.
    fn transfer_channel(&self) -> u8 {
        self.settings().channel
    }

    /// This peer's id (1 for a server; 0 while not active).
    fn unique_id(&self) -> PeerId;

    /// A fresh random id in 2..=2^31-1, as a client would pick.
    fn generate_unique_id(&self) -> PeerId {
        generate_unique_id()
    }

    /// Disconnected, connecting or connected.
    fn connection_status(&self) -> ConnectionStatus;

    /// Whether this peer is the server (id 1).
    fn is_server(&self) -> bool;

    /// Whether the server relays client-to-client packets (and announces peers).
    fn is_server_relay_supported(&self) -> bool;

    /// Refuses (or again accepts) new connections.
    fn set_refuse_new_connections(&mut self, refuse: bool);

    /// Whether new connections are refused.
    fn is_refusing_new_connections(&self) -> bool;

    /// Disconnects a peer. With `force`, at once and silently (no `PeerDisconnected` here; the
    /// other clients still learn); without, gracefully, and the event follows.
    fn disconnect_peer(&mut self, id: PeerId, force: bool) -> Result<()>;

    /// Closes every connection at once. No events follow.
    fn close(&mut self);

    /// The largest payload `send` accepts.
    fn max_packet_size(&self) -> usize;
}

/// The target, transfer mode and logical channel that `put_packet` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendSettings {
    /// Where packets go.
    pub target: Target,
    /// How they travel.
    pub mode: TransferMode,
    /// On which logical channel.
    pub channel: u8,
}

/// The two queues every peer keeps: events and received packets. Public so that custom
/// implementations of [`MultiplayerPeer`] can reuse it.
#[derive(Debug, Clone, Default)]
pub struct PeerQueues {
    events: VecDeque<PeerEvent>,
    packets: VecDeque<Packet>,
}

impl PeerQueues {
    /// Queues an event.
    pub fn push_event(&mut self, event: PeerEvent) {
        log::debug!("event {event:?}");
        self.events.push_back(event);
    }

    /// Takes the oldest event.
    pub fn pop_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// Queues a received packet.
    pub fn push_packet(&mut self, packet: Packet) {
        self.packets.push_back(packet);
    }

    /// Takes the oldest packet.
    pub fn pop_packet(&mut self) -> Option<Packet> {
        self.packets.pop_front()
    }

    /// The oldest packet, left in place.
    pub fn peek_packet(&self) -> Option<&Packet> {
        self.packets.front()
    }

    /// Packets waiting.
    pub fn packet_count(&self) -> usize {
        self.packets.len()
    }

    /// Events waiting.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Forgets every waiting packet and event.
    pub fn clear(&mut self) {
        self.events.clear();
        self.packets.clear();
    }
}

/// Checks `target` for the peer `me` (1 = the server) that knows its connected peers through
/// `known`, as Godot 3 does: a server cannot target itself and only names connected clients; a
/// client may name the server, itself (the server echoes it back) and the clients it was told
/// of. Returns the normalized target and its Godot integer.
pub(crate) fn check_target(
    target: Target,
    me: PeerId,
    known: impl Fn(PeerId) -> bool,
) -> Result<(Target, i32)> {
    let target = target.normalized();
    let int = target.checked()?;
    let names = |id: PeerId| known(id) || (me != SERVER_ID && id == me);
    let ok = match target {
        Target::Broadcast => true,
        Target::Server => me != SERVER_ID,
        Target::Peer(id) => names(id),
        Target::AllExcept(id) => id == SERVER_ID || names(id),
    };
    if ok {
        Ok((target, int))
    } else {
        Err(Error::UnknownTarget(int))
    }
}

/// A random id in 2..=2^31-1.
pub fn generate_unique_id() -> PeerId {
    rand::random_range(2..=MAX_PEER_ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_integers_round_trip() {
        for n in [0, 1, 2, 77, i32::MAX, -1, -2, -77, -i32::MAX] {
            assert_eq!(Target::from_godot(n).to_godot(), Some(n), "{n}");
        }
        assert_eq!(Target::from_godot(i32::MIN), Target::AllExcept(1 << 31));
        assert_eq!(Target::from_godot(i32::MIN).to_godot(), None);
        assert_eq!(
            Target::Peer(0).checked().unwrap_err().to_string(),
            "invalid target Peer(0)"
        );
        assert_eq!(Target::AllExcept(0).to_godot(), None);
        assert_eq!(Target::Peer(1).normalized(), Target::Server);
    }

    #[test]
    fn modes_and_reasons_round_trip() {
        for m in TransferMode::ALL {
            assert_eq!(TransferMode::from_godot(m.to_godot()), Some(m));
        }
        assert_eq!(TransferMode::from_godot(3), None);
        for code in 0..10 {
            assert_eq!(DisconnectReason::from_code(code).code(), code);
        }
    }

    #[test]
    fn generated_ids_are_in_range() {
        for _ in 0..10_000 {
            let id = generate_unique_id();
            assert!((2..=MAX_PEER_ID).contains(&id));
        }
    }
}
