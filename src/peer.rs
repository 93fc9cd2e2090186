//! The `MultiplayerPeer` trait, the queues and settings implementations keep, and Godot's
//! target rules.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::time::Duration;

pub use crate::vocabulary::{
    ConnectionStatus, DisconnectReason, Packet, PeerEvent, PeerId, Polled, Refusal, Target,
    TransferMode, MAX_PEER_ID, SERVER_ID,
};

impl Target {
    /// Godot's integer, or [`Error::InvalidTarget`].
    pub fn checked(self) -> Result<i32> {
        self.to_godot().ok_or(Error::InvalidTarget(self))
    }
}

impl TryFrom<Target> for i32 {
    type Error = Error;
    fn try_from(target: Target) -> Result<i32> {
        target.checked()
    }
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

/// The most entries a queue keeps room for once it is empty again; a larger one (left by a
/// backlog) is freed.
const KEPT_CAPACITY: usize = 1024;

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
        let event = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > KEPT_CAPACITY {
            // After a backlog (a join storm), the queue's memory goes back.
            self.events = VecDeque::new();
        }
        event
    }

    /// Queues a received packet.
    pub fn push_packet(&mut self, packet: Packet) {
        self.packets.push_back(packet);
    }

    /// Takes the oldest packet.
    pub fn pop_packet(&mut self) -> Option<Packet> {
        let packet = self.packets.pop_front();
        if self.packets.is_empty() && self.packets.capacity() > KEPT_CAPACITY {
            // After a backlog, the queue's memory goes back.
            self.packets = VecDeque::new();
        }
        packet
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
