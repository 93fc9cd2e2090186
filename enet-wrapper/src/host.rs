//! `Host`: one ENet host, its peers, its events.

use crate::address::{from_enet, to_enet};
use crate::init::InitGuard;
use crate::inspect::{first_rejection, Reject};
use crate::{Error, Packet, Result};
use enet_sys::{ENetEvent, ENetHost, ENetPeer};
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The largest peer limit ENet supports (`ENET_PROTOCOL_MAXIMUM_PEER_ID`).
pub const MAX_PEERS: usize = enet_sys::ENET_PROTOCOL_MAXIMUM_PEER_ID as usize;
/// The largest channel count ENet supports (`ENET_PROTOCOL_MAXIMUM_CHANNEL_COUNT`).
pub const MAX_CHANNELS: usize = enet_sys::ENET_PROTOCOL_MAXIMUM_CHANNEL_COUNT as usize;
/// ENet's default maximum packet size (32 MiB).
pub const DEFAULT_MAX_PACKET_SIZE: usize = enet_sys::ENET_HOST_DEFAULT_MAXIMUM_PACKET_SIZE as usize;

/// How a host compresses its UDP datagrams. Both ends of a connection must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression (ENet's default).
    #[default]
    None,
    /// ENet's built-in adaptive range coder (`enet_host_compress_with_range_coder`).
    RangeCoder,
}

/// What to build a [`Host`] from.
///
/// ```
/// use enet_wrapper::{Compression, HostConfig};
/// let server = HostConfig::server("127.0.0.1:0".parse().unwrap())
///     .peer_limit(32)
///     .channel_limit(3)
///     .compression(Compression::RangeCoder);
/// let client = HostConfig::client().channel_limit(3);
/// # let _ = (server, client);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Where to listen; `None` for a client host on an ephemeral port.
    pub bind: Option<SocketAddrV4>,
    /// Peer slots, 1..=4095.
    pub peer_limit: usize,
    /// Channels per connection, 1..=255.
    pub channel_limit: usize,
    /// Downstream bandwidth in bytes/second; 0 means unlimited.
    pub incoming_bandwidth: u32,
    /// Upstream bandwidth in bytes/second; 0 means unlimited.
    pub outgoing_bandwidth: u32,
    /// Datagram compression.
    pub compression: Compression,
    /// Largest packet this host sends or accepts; `None` keeps ENet's 32 MiB.
    pub max_packet_size: Option<usize>,
    /// Timeout (`limit`, `min_ms`, `max_ms`, as [`PeerMut::set_timeout`]) for incoming
    /// connections still in their handshake, applied while three quarters or more of the peer
    /// slots are taken. ENet gives a half-open handshake its default lifetime (about 30 s), so a
    /// flood of forged connect requests could hold every slot that long; under that pressure a
    /// short handshake timeout frees them sooner, while with room to spare handshakes keep ENet's
    /// patient defaults (lossy links need them). Once connected, a peer gets ENet's defaults back
    /// (change them with `set_timeout`). `None` never shortens handshakes.
    pub handshake_timeout: Option<(u32, u32, u32)>,
}

impl HostConfig {
    /// A host that listens on `bind` (port 0 picks a free port).
    pub fn server(bind: SocketAddrV4) -> HostConfig {
        HostConfig {
            bind: Some(bind),
            ..HostConfig::client()
        }
    }

    /// A host that only connects out: one peer slot, one channel, until changed.
    pub fn client() -> HostConfig {
        HostConfig {
            bind: None,
            peer_limit: 1,
            channel_limit: 1,
            incoming_bandwidth: 0,
            outgoing_bandwidth: 0,
            compression: Compression::None,
            max_packet_size: None,
            handshake_timeout: None,
        }
    }

    /// Sets [`HostConfig::bind`].
    pub fn bind(mut self, bind: Option<SocketAddrV4>) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`HostConfig::peer_limit`].
    pub fn peer_limit(mut self, peers: usize) -> Self {
        self.peer_limit = peers;
        self
    }

    /// Sets [`HostConfig::channel_limit`].
    pub fn channel_limit(mut self, channels: usize) -> Self {
        self.channel_limit = channels;
        self
    }

    /// Sets both bandwidth limits (bytes/second, 0 = unlimited).
    pub fn bandwidth(mut self, incoming: u32, outgoing: u32) -> Self {
        self.incoming_bandwidth = incoming;
        self.outgoing_bandwidth = outgoing;
        self
    }

    /// Sets [`HostConfig::compression`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`HostConfig::max_packet_size`].
    pub fn max_packet_size(mut self, bytes: Option<usize>) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Sets [`HostConfig::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Option<(u32, u32, u32)>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Checks every value against ENet's limits.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_PEERS).contains(&self.peer_limit) {
            return Err(Error::InvalidConfig(format!(
                "peer limit {} is outside 1..={MAX_PEERS}",
                self.peer_limit
            )));
        }
        if !(1..=MAX_CHANNELS).contains(&self.channel_limit) {
            return Err(Error::InvalidConfig(format!(
                "channel limit {} is outside 1..={MAX_CHANNELS}",
                self.channel_limit
            )));
        }
        if self.max_packet_size == Some(0) {
            return Err(Error::InvalidConfig(
                "maximum packet size must be at least 1 byte".into(),
            ));
        }
        Ok(())
    }
}

/// A peer handle: a slot index plus a token that names one connection in that slot.
///
/// Handles are plain data: store them, copy them, send them to other threads. When the slot is
/// reused by a later connection (or the connection ended), every use of an old handle returns
/// [`Error::StalePeer`]; a handle from another host returns an error too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerHandle {
    index: u16,
    token: u64,
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
    fn from_raw(state: enet_sys::ENetPeerState) -> PeerState {
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
    /// Timeout limit, minimum and maximum (ENet's units: attempts, milliseconds, milliseconds).
    pub timeout: (u32, u32, u32),
    /// Current packet throttle, 0 ..= 32 (`ENET_PEER_PACKET_THROTTLE_SCALE`).
    pub throttle: u32,
    /// Datagrams from this peer that ENet rejected because a payload exceeded the host's
    /// maximum packet size (ENet drops them before any event; counted by looking at them).
    pub rejected_oversize: u64,
    /// Datagrams from this peer that ENet rejected because they used a channel the connection
    /// did not negotiate.
    pub rejected_channel: u64,
}

/// What a host reported from [`Host::service`] or [`Host::check_events`].
#[derive(Debug)]
pub enum Event {
    /// A connection completed, incoming or started by [`Host::connect`].
    Connect {
        /// The peer.
        peer: PeerHandle,
        /// The 32-bit value the remote side passed when it connected (0 for an outgoing one).
        data: u32,
    },
    /// A connection ended (remote disconnect, timeout, failed connect, or our own graceful
    /// disconnect completing). After this event the handle is stale.
    Disconnect {
        /// The peer.
        peer: PeerHandle,
        /// The value passed to the disconnect, 0 for a timeout.
        data: u32,
    },
    /// A packet arrived.
    Receive {
        /// The sender.
        peer: PeerHandle,
        /// The channel it came on.
        channel: u8,
        /// The packet; its flags tell how it travelled.
        packet: Packet,
    },
}

/// What an intercept callback decides about a raw datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intercept {
    /// Let ENet process it.
    Pass,
    /// Swallow it: ENet never sees it.
    Drop,
}

/// A callback that sees every raw UDP datagram before ENet parses it.
pub type InterceptFn = dyn FnMut(&[u8], SocketAddrV4) -> Intercept + Send;

/// Per-slot bookkeeping that makes handles checkable.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    /// 0 while no handle is valid for this slot.
    token: u64,
    /// ENet's connectID of the connection the token names.
    connect_id: u32,
    packets_sent: u64,
    bytes_sent: u64,
    packets_received: u64,
    bytes_received: u64,
    rejected_oversize: u64,
    rejected_channel: u64,
    /// The connectID of the last half-open handshake counted in this slot (0 = none).
    handshake: u32,
    /// Whether that handshake was given the handshake timeout.
    short_handshake: bool,
}

/// Tokens are unique across all hosts of the process, so a handle never matches another host.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn next_token() -> u64 {
    NEXT_TOKEN.fetch_add(1, Ordering::Relaxed)
}

/// What the intercept trampoline works with while one host is being serviced. Owned by the
/// host (boxed, so its address is stable) and reachable from C only during a service call.
struct Hooks {
    /// The application's intercept, if any.
    user: Option<Box<InterceptFn>>,
    /// A connect request arrived: new half-open handshakes may need their timeout.
    handshake_seen: bool,
    /// Datagrams ENet is about to reject, by peer slot.
    rejects: Vec<(usize, Reject)>,
    /// Room to decompress a datagram into, to look at it.
    scratch: Vec<u8>,
}

thread_local! {
    /// The hooks of the host being serviced on this thread, if any.
    static CURRENT_HOOKS: Cell<*mut Hooks> = const { Cell::new(std::ptr::null_mut()) };
}

/// Installs a host's hooks for the duration of one service call, restoring what was there.
struct HookScope(*mut Hooks);

impl HookScope {
    fn enter(hooks: &mut Hooks) -> HookScope {
        HookScope(CURRENT_HOOKS.with(|c| c.replace(hooks as *mut Hooks)))
    }
}

impl Drop for HookScope {
    fn drop(&mut self) {
        CURRENT_HOOKS.with(|c| c.set(self.0));
    }
}

const PEER_ID_MASK: u16 = 0x0FFF;
const HEADER_FLAG_SENT_TIME: u16 =
    enet_sys::_ENetProtocolFlag_ENET_PROTOCOL_HEADER_FLAG_SENT_TIME as u16;
const HEADER_FLAG_COMPRESSED: u16 =
    enet_sys::_ENetProtocolFlag_ENET_PROTOCOL_HEADER_FLAG_COMPRESSED as u16;

unsafe extern "C" fn intercept_trampoline(host: *mut ENetHost, _event: *mut ENetEvent) -> c_int {
    let hooks = CURRENT_HOOKS.with(|c| c.get());
    if hooks.is_null() {
        return 0;
    }
    // SAFETY: ENet calls this from inside enet_host_service on this thread, with `host` valid
    // and `receivedData` holding `receivedDataLength` bytes just read from the socket; the slice
    // is only used during this call, before ENet reuses the buffer.
    let (data, from) = unsafe {
        let h = &*host;
        let data = if h.receivedData.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(h.receivedData, h.receivedDataLength)
        };
        (data, from_enet(&h.receivedAddress))
    };
    // SAFETY: the pointer was set by `HookScope::enter` from a `&mut Hooks` owned by the host
    // being serviced, which the `&mut self` of the service call keeps alive and unaliased; the
    // scope is dropped (and the pointer restored) before that borrow ends.
    let hooks = unsafe { &mut *hooks };
    if let Some(f) = hooks.user.as_mut() {
        match catch_unwind(AssertUnwindSafe(|| f(data, from))) {
            Ok(Intercept::Pass) => {}
            Ok(Intercept::Drop) => return 1,
            Err(_) => {
                log::error!("intercept callback panicked; the datagram from {from} is dropped");
                return 1;
            }
        }
    }
    // SAFETY: as above: `host` is valid for the duration of this call.
    let host = unsafe { &*host };
    if catch_unwind(AssertUnwindSafe(|| look_at_datagram(host, hooks, data))).is_err() {
        log::error!("datagram inspection panicked; the datagram from {from} is left to ENet");
    }
    0
}

/// Notes connect requests and the data ENet is about to reject (see `inspect`).
fn look_at_datagram(host: &ENetHost, hooks: &mut Hooks, data: &[u8]) {
    let Some(word) = data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return;
    };
    let slot = usize::from(word & PEER_ID_MASK);
    if slot == usize::from(PEER_ID_MASK) {
        hooks.handshake_seen = true;
        return;
    }
    if slot >= host.peerCount {
        return;
    }
    // SAFETY: slot < peerCount, a peer of this valid host; read-only.
    let peer = unsafe { &*host.peers.add(slot) };
    let live = peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTED
        || peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECT_LATER;
    if !live
        || peer.address.host != host.receivedAddress.host
        || peer.address.port != host.receivedAddress.port
    {
        return; // ENet ignores it without looking further.
    }
    let mut header = if word & HEADER_FLAG_SENT_TIME != 0 {
        4
    } else {
        2
    };
    if host.checksum.is_some() {
        header += 4;
    }
    let Some(body) = data.get(header..) else {
        return;
    };
    let body = if word & HEADER_FLAG_COMPRESSED != 0 {
        let Some(decompress) = host.compressor.decompress else {
            return;
        };
        hooks
            .scratch
            .resize(enet_sys::ENET_PROTOCOL_MAXIMUM_MTU as usize, 0);
        // SAFETY: the host's own decompressor and context (ENet uses them the same way right
        // after this callback; the range coder resets its state on every call); input and
        // output buffers are valid for the lengths given.
        let n = unsafe {
            decompress(
                host.compressor.context,
                body.as_ptr(),
                body.len(),
                hooks.scratch.as_mut_ptr(),
                hooks.scratch.len(),
            )
        };
        if n == 0 || n > hooks.scratch.len() {
            return;
        }
        &hooks.scratch[..n]
    } else {
        body
    };
    if let Some(r) = first_rejection(body, peer.channelCount, host.maximumPacketSize) {
        hooks.rejects.push((slot, r));
    }
}

/// One ENet host: a UDP socket, its peer slots and its queues.
///
/// `Send` (it can move to another thread), not `Sync` (one thread drives it at a time). Drop
/// disconnects every connected peer at once (they are told, not left to time out) and
/// destroys the host.
///
/// ```
/// use enet_wrapper::{Event, Host, HostConfig, Packet, PacketFlags};
/// use std::time::{Duration, Instant};
///
/// let mut server = Host::new(&HostConfig::server("127.0.0.1:0".parse().unwrap()).channel_limit(2))?;
/// let mut client = Host::new(&HostConfig::client().channel_limit(2))?;
/// let to_server = client.connect(server.local_address()?, 2, 42)?;
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let mut got = None;
/// while got.is_none() && Instant::now() < deadline {
///     if let Some(Event::Connect { .. }) = client.service(Duration::from_millis(1))? {
///         client.peer_mut(to_server)?.send(1, Packet::new(b"hi", PacketFlags::RELIABLE)?)?;
///     }
///     if let Some(Event::Receive { packet, channel, .. }) = server.service(Duration::from_millis(1))? {
///         got = Some((channel, packet.data().to_vec()));
///     }
/// }
/// assert_eq!(got, Some((1, b"hi".to_vec())));
/// # Ok::<(), enet_wrapper::Error>(())
/// ```
pub struct Host {
    raw: NonNull<ENetHost>,
    slots: Vec<Slot>,
    hooks: Box<Hooks>,
    handshake_timeout: Option<(u32, u32, u32)>,
    handshakes: u64,
    rejected: (u64, u64),
    _init: InitGuard,
}

// SAFETY: the ENetHost and everything it points to (peers, queued packets, compressor) is owned
// by this value alone; ENet keeps no thread-local or global state per host, so the host may be
// driven from any one thread at a time. It is not Sync: every ENet call needs `&mut self` or
// reads fields that `&mut self` calls write.
unsafe impl Send for Host {}

impl Host {
    /// Creates a host from `config`.
    pub fn new(config: &HostConfig) -> Result<Host> {
        config.validate()?;
        let init = InitGuard::acquire()?;
        let bind = config.bind.map(to_enet);
        let bind_ptr = bind
            .as_ref()
            .map_or(std::ptr::null(), |a| a as *const enet_sys::ENetAddress);
        // SAFETY: the address pointer is null or points at `bind`, alive for the call; the
        // limits were validated above.
        let raw = unsafe {
            enet_sys::enet_host_create(
                bind_ptr,
                config.peer_limit,
                config.channel_limit,
                config.incoming_bandwidth,
                config.outgoing_bandwidth,
            )
        };
        let Some(raw) = NonNull::new(raw) else {
            return Err(Error::HostCreate {
                bind: config
                    .bind
                    .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
                source: std::io::Error::last_os_error(),
            });
        };
        let mut host = Host {
            raw,
            slots: vec![Slot::default(); config.peer_limit],
            hooks: Box::new(Hooks {
                user: None,
                handshake_seen: false,
                rejects: Vec::new(),
                scratch: Vec::new(),
            }),
            handshake_timeout: config.handshake_timeout,
            handshakes: 0,
            rejected: (0, 0),
            _init: init,
        };
        // SAFETY: a plain field of a valid host; the trampoline only acts inside service calls,
        // where `HookScope` has installed this host's hooks.
        unsafe { host.raw.as_mut().intercept = Some(intercept_trampoline) };
        if config.compression == Compression::RangeCoder {
            // SAFETY: the host is valid; ENet frees the coder in enet_host_destroy.
            if unsafe { enet_sys::enet_host_compress_with_range_coder(host.raw.as_ptr()) } != 0 {
                return Err(Error::Compression);
            }
        }
        if let Some(max) = config.max_packet_size {
            // SAFETY: a plain field of a valid host, read by ENet on send and receive.
            unsafe { host.raw.as_mut().maximumPacketSize = max };
        }
        Ok(host)
    }

    fn host(&self) -> &ENetHost {
        // SAFETY: valid from creation to Drop; shared access only reads.
        unsafe { self.raw.as_ref() }
    }

    /// The address the socket is bound to (for a client host: its ephemeral port).
    pub fn local_address(&self) -> Result<SocketAddrV4> {
        let mut addr = enet_sys::ENetAddress { host: 0, port: 0 };
        // SAFETY: the socket is the host's own, open until Drop; `addr` is a valid out-pointer.
        let rc = unsafe { enet_sys::enet_socket_get_address(self.host().socket, &mut addr) };
        if rc < 0 {
            return Err(Error::Service);
        }
        Ok(from_enet(&addr))
    }

    /// Number of peer slots.
    pub fn peer_limit(&self) -> usize {
        self.host().peerCount
    }

    /// The channel limit offered to new connections.
    pub fn channel_limit(&self) -> usize {
        self.host().channelLimit
    }

    /// Changes the channel limit for connections made from now on (1..=255).
    pub fn set_channel_limit(&mut self, channels: usize) -> Result<()> {
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(Error::InvalidConfig(format!(
                "channel limit {channels} is outside 1..={MAX_CHANNELS}"
            )));
        }
        // SAFETY: valid host.
        unsafe { enet_sys::enet_host_channel_limit(self.raw.as_ptr(), channels) };
        Ok(())
    }

    /// The bandwidth limits (incoming, outgoing) in bytes/second; 0 = unlimited.
    pub fn bandwidth_limit(&self) -> (u32, u32) {
        (self.host().incomingBandwidth, self.host().outgoingBandwidth)
    }

    /// Changes the bandwidth limits (bytes/second; 0 = unlimited).
    pub fn set_bandwidth_limit(&mut self, incoming: u32, outgoing: u32) {
        // SAFETY: valid host.
        unsafe { enet_sys::enet_host_bandwidth_limit(self.raw.as_ptr(), incoming, outgoing) };
    }

    /// Largest packet this host sends or accepts.
    pub fn max_packet_size(&self) -> usize {
        self.host().maximumPacketSize
    }

    /// Number of peers currently connected.
    pub fn connected_peers(&self) -> usize {
        self.host().connectedPeers
    }

    /// Datagrams and bytes sent and received by the socket since the host was created
    /// (ENet's 32-bit totals: sent bytes, sent datagrams, received bytes, received datagrams).
    pub fn totals(&self) -> (u32, u32, u32, u32) {
        let h = self.host();
        (
            h.totalSentData,
            h.totalSentPackets,
            h.totalReceivedData,
            h.totalReceivedPackets,
        )
    }

    /// Installs (or with `None` removes) a callback that sees each raw datagram before ENet and
    /// may drop it. A panic inside the callback is caught (it never unwinds into C), logged, and
    /// the datagram is dropped.
    pub fn set_intercept(&mut self, f: Option<Box<InterceptFn>>) {
        self.hooks.user = f;
    }

    /// Incoming handshakes started since the host was created (completed or not).
    pub fn handshakes_started(&self) -> u64 {
        self.handshakes
    }

    /// Datagrams ENet rejected since the host was created: (oversize payload, channel the
    /// connection lacks). Per peer, see [`PeerInfo`].
    pub fn rejected(&self) -> (u64, u64) {
        self.rejected
    }

    /// Starts a connection to `address` asking for `channels` channels (1..=255), passing `data`
    /// to the remote side's connect event. The handle is valid at once; the connect event (or a
    /// disconnect event, if nobody answers) follows from [`Host::service`].
    pub fn connect(
        &mut self,
        address: SocketAddrV4,
        channels: usize,
        data: u32,
    ) -> Result<PeerHandle> {
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(Error::InvalidConfig(format!(
                "channel count {channels} is outside 1..={MAX_CHANNELS}"
            )));
        }
        let addr = to_enet(address);
        // SAFETY: valid host, `addr` alive for the call, channel count validated.
        let peer = unsafe { enet_sys::enet_host_connect(self.raw.as_ptr(), &addr, channels, data) };
        if peer.is_null() {
            return Err(Error::NoFreePeer);
        }
        let index = self.index_of(peer);
        let token = next_token();
        // SAFETY: `peer` is a slot of this host, just set up by enet_host_connect.
        let connect_id = unsafe { (*peer).connectID };
        self.slots[index] = Slot {
            token,
            connect_id,
            ..Slot::default()
        };
        Ok(PeerHandle {
            index: index as u16,
            token,
        })
    }

    /// Sends queued packets and waits up to `timeout` for an event (0 returns at once). Returns
    /// the first event, if any; call again (or [`Host::check_events`]) for more.
    pub fn service(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let mut event = empty_event();
        let rc = {
            let _scope = HookScope::enter(&mut self.hooks);
            // SAFETY: valid host and event out-pointer; the hook scope covers the call.
            unsafe { enet_sys::enet_host_service(self.raw.as_ptr(), &mut event, ms) }
        };
        self.after_receive();
        self.finish_event(rc, &event)
    }

    /// Returns an event already queued, without touching the network.
    pub fn check_events(&mut self) -> Result<Option<Event>> {
        let mut event = empty_event();
        // SAFETY: valid host and event out-pointer; this call does no socket I/O.
        let rc = unsafe { enet_sys::enet_host_check_events(self.raw.as_ptr(), &mut event) };
        self.finish_event(rc, &event)
    }

    /// Sends every queued packet now.
    pub fn flush(&mut self) {
        // SAFETY: valid host.
        unsafe { enet_sys::enet_host_flush(self.raw.as_ptr()) };
    }

    /// Handles of every connected peer.
    pub fn peers(&self) -> impl Iterator<Item = PeerHandle> + '_ {
        self.slots.iter().enumerate().filter_map(move |(i, s)| {
            if s.token == 0 {
                return None;
            }
            // SAFETY: `i` < peerCount (slots has peerCount entries); read-only access.
            let state = unsafe { (*self.host().peers.add(i)).state };
            (state == enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTED).then_some(PeerHandle {
                index: i as u16,
                token: s.token,
            })
        })
    }

    /// Queues one packet for every peer in `peers` without copying it (ENet reference-counts it).
    /// Returns how many peers accepted it; stale handles, peers that are not connected and
    /// channels a peer lacks are skipped. If nobody took it, the packet is freed here.
    pub fn send_many<I>(&mut self, peers: I, channel: u8, packet: Packet) -> usize
    where
        I: IntoIterator<Item = PeerHandle>,
    {
        let len = packet.len() as u64;
        let raw = packet.into_raw();
        let mut sent = 0;
        for handle in peers {
            let Ok(peer) = self.checked(handle) else {
                continue;
            };
            // SAFETY: `peer` is a live slot of this host and `raw` a valid packet that ENet
            // reference-counts; a refused send leaves the count untouched.
            if unsafe { enet_sys::enet_peer_send(peer, channel, raw) } == 0 {
                let slot = &mut self.slots[handle.index as usize];
                slot.packets_sent += 1;
                slot.bytes_sent += len;
                sent += 1;
            }
        }
        // SAFETY: if no peer took a reference, Rust still owns the packet alone and frees it.
        unsafe { release_if_unowned(raw) };
        sent
    }

    /// Queues one packet for every connected peer (without copying it); returns how many.
    pub fn broadcast(&mut self, channel: u8, packet: Packet) -> usize {
        let peers: Vec<PeerHandle> = self.peers().collect();
        self.send_many(peers, channel, packet)
    }

    /// Read-only facts about a peer.
    pub fn peer_info(&self, handle: PeerHandle) -> Result<PeerInfo> {
        let raw = self.checked(handle)?;
        Ok(self.info_of(raw, handle.index))
    }

    fn info_of(&self, raw: *mut ENetPeer, index: u16) -> PeerInfo {
        let slot = &self.slots[index as usize];
        // SAFETY: callers pass a checked live slot of this host; fields are only read.
        let p = unsafe { &*raw };
        PeerInfo {
            state: PeerState::from_raw(p.state),
            address: from_enet(&p.address),
            channel_count: p.channelCount,
            round_trip_time: p.roundTripTime,
            round_trip_time_variance: p.roundTripTimeVariance,
            packet_loss: p.packetLoss as f32 / enet_sys::ENET_PEER_PACKET_LOSS_SCALE as f32,
            packets_sent: slot.packets_sent,
            bytes_sent: slot.bytes_sent,
            packets_received: slot.packets_received,
            bytes_received: slot.bytes_received,
            ping_interval: p.pingInterval,
            timeout: (p.timeoutLimit, p.timeoutMinimum, p.timeoutMaximum),
            throttle: p.packetThrottle,
            rejected_oversize: slot.rejected_oversize,
            rejected_channel: slot.rejected_channel,
        }
    }

    /// Mutable access to one peer, checked: a stale or foreign handle is an error.
    pub fn peer_mut(&mut self, handle: PeerHandle) -> Result<PeerMut<'_>> {
        let raw = self.checked(handle)?;
        Ok(PeerMut {
            host: self,
            raw,
            index: handle.index,
        })
    }

    /// Whether `handle` still names a live connection of this host.
    pub fn is_valid(&self, handle: PeerHandle) -> bool {
        self.checked(handle).is_ok()
    }

    fn checked(&self, handle: PeerHandle) -> Result<*mut ENetPeer> {
        let index = handle.index as usize;
        let slot = self.slots.get(index).ok_or(Error::UnknownPeer {
            index: handle.index,
        })?;
        if slot.token != handle.token || slot.token == 0 {
            return Err(Error::StalePeer {
                index: handle.index,
            });
        }
        // SAFETY: index < peerCount, so the pointer stays inside ENet's peer array.
        let raw = unsafe { self.host().peers.add(index) };
        // SAFETY: reading a field of a peer slot of this host.
        if unsafe { (*raw).connectID } != slot.connect_id {
            return Err(Error::StalePeer {
                index: handle.index,
            });
        }
        Ok(raw)
    }

    /// Books what the trampoline saw during a service call: rejected data, and new half-open
    /// handshakes (which get the handshake timeout).
    fn after_receive(&mut self) {
        for (index, reject) in std::mem::take(&mut self.hooks.rejects) {
            let slot = &mut self.slots[index];
            let (count, total, what) = match reject {
                Reject::Oversize => (
                    &mut slot.rejected_oversize,
                    &mut self.rejected.0,
                    "oversize packet",
                ),
                Reject::Channel => (
                    &mut slot.rejected_channel,
                    &mut self.rejected.1,
                    "channel beyond the connection's",
                ),
            };
            *count += 1;
            *total += 1;
            if *count == 1 {
                log::warn!("ENet dropped data from peer slot {index}: {what}");
            } else {
                log::debug!("ENet dropped data from peer slot {index}: {what}");
            }
        }
        if !std::mem::take(&mut self.hooks.handshake_seen) {
            return;
        }
        // Count new half-open handshakes; when slots run short (a quarter or less free), give
        // every half-open one the handshake timeout so a flood cannot hold them for long. With
        // room to spare, handshakes keep ENet's patient defaults, which lossy links need.
        let mut free = 0;
        let mut half_open = Vec::new();
        for i in 0..self.slots.len() {
            // SAFETY: i < peerCount; a peer of this valid host; read-only here.
            let peer = unsafe { &*self.host().peers.add(i) };
            if peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECTED {
                free += 1;
            } else if peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_ACKNOWLEDGING_CONNECT {
                if self.slots[i].handshake != peer.connectID {
                    self.slots[i].handshake = peer.connectID;
                    self.slots[i].short_handshake = false;
                    self.handshakes += 1;
                }
                if !self.slots[i].short_handshake {
                    half_open.push(i);
                }
            }
        }
        let Some((limit, min, max)) = self.handshake_timeout else {
            return;
        };
        if free * 4 > self.slots.len() {
            return;
        }
        for i in half_open {
            self.slots[i].short_handshake = true;
            // SAFETY: i < peerCount: a live peer slot of this host.
            unsafe { enet_sys::enet_peer_timeout(self.host().peers.add(i), limit, min, max) };
        }
    }

    fn index_of(&self, peer: *const ENetPeer) -> usize {
        // SAFETY: ENet only hands out pointers into its own peer array.
        let offset = unsafe { peer.offset_from(self.host().peers) };
        debug_assert!(offset >= 0 && (offset as usize) < self.slots.len());
        offset as usize
    }

    fn finish_event(&mut self, rc: c_int, event: &ENetEvent) -> Result<Option<Event>> {
        if rc < 0 {
            // A signal that interrupts ENet's wait in the socket is not a socket failure.
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(Error::Service);
        }
        if rc == 0 || event.peer.is_null() {
            return Ok(None);
        }
        let index = self.index_of(event.peer);
        let slot = &mut self.slots[index];
        let handle = |token| PeerHandle {
            index: index as u16,
            token,
        };
        match event.type_ {
            enet_sys::_ENetEventType_ENET_EVENT_TYPE_CONNECT => {
                // SAFETY: the event's peer is a slot of this host.
                let connect_id = unsafe { (*event.peer).connectID };
                if slot.handshake != connect_id && slot.connect_id != connect_id {
                    // An incoming handshake that completed before a scan saw it half-open.
                    slot.handshake = connect_id;
                    self.handshakes += 1;
                } else if slot.handshake == connect_id && slot.short_handshake {
                    // The handshake is over: ENet's default timeouts again.
                    // SAFETY: the event's peer is a live slot of this host.
                    unsafe { enet_sys::enet_peer_timeout(event.peer, 0, 0, 0) };
                }
                // An outgoing connection keeps the handle `connect` returned.
                if slot.token == 0 || slot.connect_id != connect_id {
                    *slot = Slot {
                        token: next_token(),
                        connect_id,
                        ..Slot::default()
                    };
                }
                Ok(Some(Event::Connect {
                    peer: handle(slot.token),
                    data: event.data,
                }))
            }
            enet_sys::_ENetEventType_ENET_EVENT_TYPE_DISCONNECT => {
                let token = if slot.token == 0 {
                    next_token()
                } else {
                    slot.token
                };
                slot.token = 0;
                Ok(Some(Event::Disconnect {
                    peer: handle(token),
                    data: event.data,
                }))
            }
            enet_sys::_ENetEventType_ENET_EVENT_TYPE_RECEIVE => {
                // SAFETY: ENet hands the application a packet with referenceCount 0 that the
                // application must destroy: `Packet` does that in Drop.
                let Some(packet) = (unsafe { Packet::from_raw(event.packet) }) else {
                    return Ok(None);
                };
                if slot.token == 0 {
                    // SAFETY: as above, the connectID of a slot of this host.
                    slot.connect_id = unsafe { (*event.peer).connectID };
                    slot.token = next_token();
                }
                slot.packets_received += 1;
                slot.bytes_received += packet.len() as u64;
                Ok(Some(Event::Receive {
                    peer: handle(slot.token),
                    channel: event.channelID,
                    packet,
                }))
            }
            _ => Ok(None),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for i in 0..self.slots.len() {
            // SAFETY: i < peerCount; the peer is a slot of this valid host. disconnect_now on a
            // connected peer sends one datagram and resets the slot; it ignores free slots.
            unsafe {
                let peer = self.host().peers.add(i);
                if (*peer).state == enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTED {
                    enet_sys::enet_peer_disconnect_now(peer, 0);
                }
            }
        }
        // SAFETY: the host is valid and destroyed exactly once; ENet frees its peers, queued
        // packets (dropping their reference counts) and compressor.
        unsafe { enet_sys::enet_host_destroy(self.raw.as_ptr()) };
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("address", &self.local_address().ok())
            .field("peer_limit", &self.peer_limit())
            .field("connected", &self.connected_peers())
            .finish()
    }
}

fn empty_event() -> ENetEvent {
    ENetEvent {
        type_: enet_sys::_ENetEventType_ENET_EVENT_TYPE_NONE,
        peer: std::ptr::null_mut(),
        channelID: 0,
        data: 0,
        packet: std::ptr::null_mut(),
    }
}

/// Frees a packet that no peer took a reference to.
///
/// # Safety
/// `raw` must be a valid packet that Rust handed to ENet calls and no longer uses.
unsafe fn release_if_unowned(raw: *mut enet_sys::ENetPacket) {
    // SAFETY: per the contract; a count of 0 means ENet holds no reference, so Rust is the owner.
    unsafe {
        if (*raw).referenceCount == 0 {
            drop(Packet::from_raw(raw));
        }
    }
}

/// Mutable access to one connected peer, from [`Host::peer_mut`].
pub struct PeerMut<'a> {
    host: &'a mut Host,
    raw: *mut ENetPeer,
    index: u16,
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

    /// ENet's timeout parameters: `limit` (unacknowledged attempts scaled by RTT), and the
    /// `min`/`max` milliseconds before a silent peer is dropped (0 keeps a default).
    pub fn set_timeout(&mut self, limit: u32, min_ms: u32, max_ms: u32) {
        // SAFETY: checked peer.
        unsafe { enet_sys::enet_peer_timeout(self.raw, limit, min_ms, max_ms) };
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
