//! Peers: checked [`PeerHandle`]s, their [`PeerState`], [`PeerInfo`] snapshots, [`PeerMut`]
//! access, and the per-slot bookkeeping that makes handles checkable.

use crate::host::Host;
use crate::packet::release_if_unowned;
use crate::{Error, Packet, Result, Timeout};
use enet_sys::ENetPeer;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU64, Ordering};

/// A peer handle: a slot index plus a token that names one connection in that slot.
///
/// Handles are plain data: store them, copy them, send them to other threads. When the slot is
/// reused by a later connection (or the connection ended), every use of an old handle returns
/// [`Error::StalePeer`]; a handle from another host returns an error too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerHandle {
    pub(crate) index: u16,
    pub(crate) token: u64,
}

impl PeerHandle {
    /// The peer slot (ENet's `incomingPeerID`), stable for the life of the connection.
    pub fn index(&self) -> u16 {
        self.index
    }
}

/// The state of an ENet peer (`ENetPeerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// No connection.
    Disconnected,
    /// Connect sent, waiting for the answer.
    Connecting,
    /// Handshake, remote side.
    AcknowledgingConnect,
    /// Handshake, waiting for the event to be dispatched.
    ConnectionPending,
    /// Handshake complete, connect event not yet dispatched.
    ConnectionSucceeded,
    /// Connected.
    Connected,
    /// Disconnecting once queued packets are sent.
    DisconnectLater,
    /// Disconnect sent, waiting for the acknowledgement.
    Disconnecting,
    /// The remote side asked to disconnect.
    AcknowledgingDisconnect,
    /// Gone; the disconnect event is pending.
    Zombie,
}

impl PeerState {
    pub(crate) fn from_raw(state: enet_sys::ENetPeerState) -> PeerState {
        match state {
            enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTING => PeerState::Connecting,
            enet_sys::_ENetPeerState_ENET_PEER_STATE_ACKNOWLEDGING_CONNECT => {
                PeerState::AcknowledgingConnect
            }
            enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTION_PENDING => {
                PeerState::ConnectionPending
            }
            enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTION_SUCCEEDED => {
                PeerState::ConnectionSucceeded
            }
            enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTED => PeerState::Connected,
            enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECT_LATER => PeerState::DisconnectLater,
            enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECTING => PeerState::Disconnecting,
            enet_sys::_ENetPeerState_ENET_PEER_STATE_ACKNOWLEDGING_DISCONNECT => {
                PeerState::AcknowledgingDisconnect
            }
            enet_sys::_ENetPeerState_ENET_PEER_STATE_ZOMBIE => PeerState::Zombie,
            _ => PeerState::Disconnected,
        }
    }
}

/// A snapshot of one peer: state, address and statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerInfo {
    /// Connection state.
    pub state: PeerState,
    /// The remote address.
    pub address: SocketAddrV4,
    /// Channels negotiated for this connection.
    pub channel_count: usize,
    /// Mean round-trip time of reliable packets, in milliseconds.
    pub round_trip_time: u32,
    /// Variance of the round-trip time, in milliseconds.
    pub round_trip_time_variance: u32,
    /// Mean loss of reliable packets, 0.0 ..= 1.0.
    pub packet_loss: f32,
    /// Packets this host queued for the peer.
    pub packets_sent: u64,
    /// Payload bytes this host queued for the peer.
    pub bytes_sent: u64,
    /// Packets received from the peer.
    pub packets_received: u64,
    /// Payload bytes received from the peer.
    pub bytes_received: u64,
    /// Ping interval in milliseconds.
    pub ping_interval: u32,
    /// The peer timeout in force (ENet stores it with its defaults filled in).
    pub timeout: Timeout,
    /// Current packet throttle, 0 ..= 32 (`ENET_PEER_PACKET_THROTTLE_SCALE`).
    pub throttle: u32,
    /// Datagrams from this peer that ENet rejected because a payload exceeded the host's
    /// maximum packet size (ENet drops them before any event; counted by looking at them).
    pub rejected_oversize: u64,
    /// Datagrams from this peer that ENet rejected because they used a channel the connection
    /// did not negotiate.
    pub rejected_channel: u64,
}

/// Per-slot bookkeeping that makes handles checkable.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Slot {
    /// 0 while no handle is valid for this slot.
    pub(crate) token: u64,
    /// ENet's connectID of the connection the token names.
    pub(crate) connect_id: u32,
    pub(crate) packets_sent: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) packets_received: u64,
    pub(crate) bytes_received: u64,
    pub(crate) rejected_oversize: u64,
    pub(crate) rejected_channel: u64,
    /// The connectID of the last half-open handshake counted in this slot (0 = none).
    pub(crate) handshake: u32,
    /// Whether that handshake was given the handshake timeout.
    pub(crate) short_handshake: bool,
    /// What the last walk of its outgoing lists found queued, and `bytes_sent` then: the
    /// bytes queued now are at most the first plus what was sent since
    /// ([`Host::queued_bytes_over`](crate::Host::queued_bytes_over)).
    pub(crate) queued_at_walk: u64,
    pub(crate) sent_at_walk: u64,
}

/// Tokens are unique across all hosts of the process, so a handle never matches another host.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// Mutable access to one connected peer, from [`Host::peer_mut`].
pub struct PeerMut<'a> {
    pub(crate) host: &'a mut Host,
    pub(crate) raw: *mut ENetPeer,
    pub(crate) index: u16,
}

impl PeerMut<'_> {
    fn peer(&self) -> &ENetPeer {
        // SAFETY: `raw` was checked against the host, which `&mut` borrow keeps alive.
        unsafe { &*self.raw }
    }

    /// Queues `packet` on `channel`. The packet is consumed either way; on error it is freed.
    pub fn send(&mut self, channel: u8, packet: Packet) -> Result<()> {
        let p = self.peer();
        if usize::from(channel) >= p.channelCount {
            return Err(Error::ChannelOutOfRange {
                channel,
                count: p.channelCount,
            });
        }
        let max = self.host.max_packet_size();
        if packet.len() > max {
            return Err(Error::PacketTooLarge {
                size: packet.len(),
                max,
            });
        }
        let len = packet.len() as u64;
        let raw = packet.into_raw();
        // SAFETY: checked peer, valid packet; on refusal the count is untouched.
        let rc = unsafe { enet_sys::enet_peer_send(self.raw, channel, raw) };
        // SAFETY: `raw` is not used after this.
        unsafe { release_if_unowned(raw) };
        if rc != 0 {
            return Err(Error::SendFailed);
        }
        let slot = &mut self.host.slots[self.index as usize];
        slot.packets_sent += 1;
        slot.bytes_sent += len;
        Ok(())
    }

    /// Asks for a graceful disconnect; a disconnect event follows. ENet sends it reliably after
    /// the commands already queued, dropping unsent packets.
    pub fn disconnect(&mut self, data: u32) {
        // SAFETY: checked peer.
        unsafe { enet_sys::enet_peer_disconnect(self.raw, data) };
    }

    /// Disconnects once every queued packet has been sent; a disconnect event follows.
    pub fn disconnect_later(&mut self, data: u32) {
        // SAFETY: checked peer.
        unsafe { enet_sys::enet_peer_disconnect_later(self.raw, data) };
    }

    /// Tells the remote side at once and forgets the peer: no disconnect event, and the handle is
    /// stale afterwards.
    pub fn disconnect_now(self, data: u32) {
        // SAFETY: checked peer; ENet sends one datagram and resets the slot.
        unsafe { enet_sys::enet_peer_disconnect_now(self.raw, data) };
        self.host.slots[self.index as usize].token = 0;
    }

    /// Drops the connection without telling the remote side: no event, the handle goes stale.
    pub fn reset(self) {
        // SAFETY: checked peer.
        unsafe { enet_sys::enet_peer_reset(self.raw) };
        self.host.slots[self.index as usize].token = 0;
    }

    /// Sends a ping now (ENet pings on its own; this only forces one).
    pub fn ping(&mut self) {
        // SAFETY: checked peer.
        unsafe { enet_sys::enet_peer_ping(self.raw) };
    }

    /// How often ENet pings an idle connection, in milliseconds (0 restores the default).
    pub fn set_ping_interval(&mut self, ms: u32) {
        // SAFETY: checked peer.
        unsafe { enet_sys::enet_peer_ping_interval(self.raw, ms) };
    }

    /// Sets the peer timeout: when this peer is given up on if its reliable data goes
    /// unacknowledged (see [`Timeout`]; 0 fields keep ENet's defaults). Godot 3's
    /// `set_peer_timeout`.
    #[doc(alias = "enet_peer_timeout")]
    pub fn set_peer_timeout(&mut self, timeout: Timeout) {
        // SAFETY: checked peer.
        unsafe {
            enet_sys::enet_peer_timeout(self.raw, timeout.limit, timeout.min_ms, timeout.max_ms)
        };
    }

    /// The same as [`PeerMut::set_peer_timeout`] with the three numbers unpacked. Kept for
    /// compatibility with callers written before [`Timeout`] existed; prefer
    /// `set_peer_timeout`.
    pub fn set_timeout(&mut self, limit: u32, min_ms: u32, max_ms: u32) {
        self.set_peer_timeout(Timeout::new(limit, min_ms, max_ms));
    }

    /// ENet's packet throttle: measurement interval (ms), acceleration and deceleration
    /// (out of 32).
    pub fn set_throttle(&mut self, interval_ms: u32, acceleration: u32, deceleration: u32) {
        // SAFETY: checked peer.
        unsafe {
            enet_sys::enet_peer_throttle_configure(
                self.raw,
                interval_ms,
                acceleration,
                deceleration,
            )
        };
    }

    /// A snapshot of this peer's state and statistics.
    pub fn info(&self) -> PeerInfo {
        self.host.info_of(self.raw, self.index)
    }
}
