//! [`Host`]: one ENet host, its peers, its events.

use crate::address::{from_enet, to_enet};
use crate::config::{Compression, HostConfig, MAX_CHANNELS};
use crate::handshake::{slot_usage, HandshakePolicyFn, Handshakes, SlotUsage};
use crate::init::InitGuard;
use crate::inspect::Reject;
use crate::intercept::{intercept_trampoline, resume_panic, HookScope, Hooks, InterceptFn};
use crate::packet::release_if_unowned;
use crate::peer::{next_token, PeerInfo, PeerMut, PeerState, Slot};
use crate::queues::queued_bytes;
use crate::timers::next_timer_ms;
use crate::{Error, Event, Packet, PeerHandle, Result, Timeout};
use enet_sys::{ENetEvent, ENetHost, ENetPeer};
use std::any::Any;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::raw::c_int;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

/// ENet's clock step.
const MILLISECOND: Duration = Duration::from_millis(1);

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
    pub(crate) slots: Vec<Slot>,
    hooks: Box<Hooks>,
    handshakes: Handshakes,
    rejected: (u64, u64),
    /// Compressed datagrams this host could not read (it has no compressor), and the
    /// addresses already told about in the log.
    unreadable: u64,
    unreadable_warned: std::collections::HashSet<SocketAddrV4>,
    /// Connect requests repeated, uncompressed, for a handshake still half-open while this host
    /// compresses; and per address (until it completes a handshake) how many, and whether told.
    repeated_connects: u64,
    repeated_connects_from: std::collections::HashMap<SocketAddrV4, u32>,
    _init: InitGuard,
}

/// What ENet holds for a peer on the way out ([`Host::outgoing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Commands are queued and not yet sent (ENet sends at most two datagrams to a peer per
    /// service or flush).
    pub unsent: bool,
    /// Bytes of reliable data sent and not yet acknowledged (ENet's `reliableDataInTransit`).
    pub in_transit: u32,
}

/// Addresses remembered as told about a compression mismatch (beyond it, no more warnings).
const MISMATCH_ADDRESSES_KEPT: usize = 1024;

/// Repeated connect requests from one address, with no handshake completed, before the log
/// explains a compression mismatch (one repeat can be a lost answer).
const REPEATS_BEFORE_WARNING: u32 = 2;

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
            hooks: Box::new(Hooks::new()),
            handshakes: Handshakes::default(),
            rejected: (0, 0),
            unreadable: 0,
            unreadable_warned: std::collections::HashSet::new(),
            repeated_connects: 0,
            repeated_connects_from: std::collections::HashMap::new(),
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

    /// Asks the kernel for socket buffers of `bytes` in each direction (ENet asks for 256 KiB to
    /// receive and send; a server that many clients reach at once needs more, or a burst of
    /// datagrams overflows the receive buffer and is lost). Returns what the kernel granted, as
    /// it reports it (Linux doubles the request for its bookkeeping and caps it at
    /// `net.core.rmem_max` / `wmem_max`).
    #[cfg(unix)]
    pub fn set_socket_buffers(&mut self, bytes: usize) -> Result<SocketBuffers> {
        let fail = |option| move |source| Error::SocketOption { option, source };
        if i32::try_from(bytes).is_err() {
            return Err(fail("buffer size")(std::io::Error::from(
                std::io::ErrorKind::InvalidInput,
            )));
        }
        let socket = socket2::SockRef::from(&*self);
        socket
            .set_recv_buffer_size(bytes)
            .map_err(fail("SO_RCVBUF"))?;
        socket
            .set_send_buffer_size(bytes)
            .map_err(fail("SO_SNDBUF"))?;
        self.socket_buffers()
    }

    /// The socket buffer sizes as the kernel reports them.
    #[cfg(unix)]
    pub fn socket_buffers(&self) -> Result<SocketBuffers> {
        let fail = |option| move |source| Error::SocketOption { option, source };
        let socket = socket2::SockRef::from(self);
        Ok(SocketBuffers {
            receive: socket.recv_buffer_size().map_err(fail("SO_RCVBUF"))?,
            send: socket.send_buffer_size().map_err(fail("SO_SNDBUF"))?,
        })
    }

    /// The host's UDP socket, for readiness polling only: register it with `mio`, `polling`,
    /// `epoll` or `poll` to learn when a datagram has arrived, then call
    /// [`Host::service`]. Never read from it, write to it, close it or change its options: the
    /// socket belongs to ENet, which reads it inside `service` (a datagram read elsewhere is lost
    /// to ENet) and closes it when the host is dropped.
    ///
    /// The socket is non-blocking. ENet reads at most 256 datagrams in one `service` call and
    /// returns at the first event, so with edge-triggered readiness (mio) keep calling
    /// `service(Duration::ZERO)` until it returns `Ok(None)`, and keep a timer as well: ENet's
    /// resends, pings and timeouts only advance when it is serviced, readable or not.
    ///
    /// Also available as [`AsRawFd`](std::os::fd::AsRawFd) and
    /// [`AsFd`](std::os::fd::AsFd). Unix only.
    #[cfg(unix)]
    pub fn socket_fd(&self) -> std::os::fd::RawFd {
        self.host().socket
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
    /// may drop it.
    ///
    /// A panic inside the callback never unwinds into C: it is caught, the datagram is dropped,
    /// ENet's service call is ended at once (as ENet does for a socket error), and the panic is
    /// raised again from [`Host::service`] after ENet has returned, with its original payload.
    /// The host stays usable: peers, queues and counters are intact, the callback stays
    /// installed (replace or remove it if its state is suspect), and the next service call
    /// carries on where ENet stopped (what the interrupted call would have sent goes out then).
    pub fn set_intercept(&mut self, f: Option<Box<InterceptFn>>) {
        self.hooks.user = f;
    }

    /// Incoming handshakes started since the host was created (completed or not).
    pub fn handshakes_started(&self) -> u64 {
        self.handshakes.started
    }

    /// Installs (or with `None` removes) the policy that decides the timeout of new half-open
    /// incoming handshakes; see [`HandshakePolicyFn`] for when it is asked and what its answer
    /// does. Without one, half-open handshakes keep ENet's default timeout (about 30 s).
    ///
    /// ```
    /// use enet_wrapper::{Host, HostConfig, SlotUsage, Timeout};
    /// let mut server = Host::new(&HostConfig::server("127.0.0.1:0".parse().unwrap()).peer_limit(8))?;
    /// // Once three quarters of the slots are taken, half-open handshakes get 2 s at most.
    /// server.set_handshake_policy(Some(Box::new(|u: SlotUsage| {
    ///     (u.in_use * 4 >= u.limit * 3).then_some(Timeout::new(32, 2000, 2000))
    /// })));
    /// # Ok::<(), enet_wrapper::Error>(())
    /// ```
    pub fn set_handshake_policy(&mut self, policy: Option<Box<HandshakePolicyFn>>) {
        self.handshakes.policy = policy;
    }

    /// How the peer slots are used now (a scan of every slot).
    pub fn slot_usage(&self) -> SlotUsage {
        // SAFETY: `peers` has `peerCount` entries of this valid host; only states are read.
        unsafe { slot_usage(self.host().peers, self.host().peerCount) }
    }

    /// Compressed datagrams that reached this host while it has no compression, since it was
    /// created: ENet drops them, so a peer whose compression setting differs never gets
    /// through. Each sender is also explained once in the log (a warning).
    pub fn unreadable_compressed(&self) -> u64 {
        self.unreadable
    }

    /// Connect requests that came again, uncompressed, for a handshake still half-open, while
    /// this host compresses, since it was created. A peer without compression cannot read this
    /// host's compressed answers, so it keeps asking and its handshake never completes (nor does
    /// ENet report anything); an address that asks a third time before completing a handshake
    /// is explained once in the log (a warning). A lost answer also causes a repeat, so one
    /// repeat alone proves nothing.
    pub fn repeated_uncompressed_connects(&self) -> u64 {
        self.repeated_connects
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
    ///
    /// Unlike ENet's own `enet_host_service`, which sleeps in the socket for the whole timeout,
    /// the wait is cut at ENet's next timer ([`Host::next_timer`]) and ENet is serviced again
    /// then: a reliable packet is resent, and a ping sent, on time however long the timeout. An
    /// idle host (nothing in flight, every peer's ping far off) still sleeps the whole timeout
    /// (to ENet's 1 ms resolution).
    pub fn service(&mut self, timeout: Duration) -> Result<Option<Event>> {
        if timeout.is_zero() {
            return self.service_once(Duration::ZERO);
        }
        let start = Instant::now();
        // What is queued leaves first, so that its resend deadlines are known to the timer
        // (ENet's call would send it only after the wait was chosen).
        self.flush();
        let mut first = true;
        loop {
            // ENet waits in whole milliseconds: after the first call, what is left below one is
            // its clock's resolution, not worth another (it would return at once: a busy loop).
            let left = timeout.saturating_sub(start.elapsed());
            if !first && left < MILLISECOND {
                return Ok(None);
            }
            first = false;
            // At least 1 ms: a due timer runs at the start of the call (ENet sends before it
            // waits), so a timer that stays due cannot turn this into a busy loop either.
            let wait = match self.next_timer() {
                Some(timer) => left.min(timer.max(MILLISECOND)),
                None => left,
            };
            if let Some(event) = self.service_once(wait)? {
                return Ok(Some(event));
            }
        }
    }

    /// Time until ENet's earliest timer among this host's peers: a reliable command's resend
    /// (or the disconnect of a peer that stopped answering), a connected peer's ping (rounded
    /// up to the next 100 ms of ENet's clock, so that many peers' pings share a wake-up), the
    /// bandwidth throttle of a host with a limit; zero when one is due, `None` when nothing is
    /// pending. Millisecond resolution (ENet's clock). A scan of every peer slot.
    pub fn next_timer(&self) -> Option<Duration> {
        // SAFETY: enet_time_get only reads the clock (ENet was initialised by this host's
        // InitGuard).
        let now = unsafe { enet_sys::enet_time_get() };
        // SAFETY: a live host, not being serviced (`&self`); only fields are read.
        let ms = unsafe { next_timer_ms(self.raw.as_ptr(), now) }?;
        Some(Duration::from_millis(u64::from(ms)))
    }

    /// One `enet_host_service` call: ENet's own wait of up to `timeout`, rounded up to whole
    /// milliseconds.
    fn service_once(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let ms = u32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(u32::MAX);
        let mut event = empty_event();
        // SAFETY: valid host and event out-pointer, alive for the call.
        let (rc, panic) =
            self.call_enet(|host| unsafe { enet_sys::enet_host_service(host, &mut event, ms) });
        self.after_receive();
        resume_panic(panic);
        self.finish_event(rc, &event)
    }

    /// Returns an event already queued, without touching the network.
    pub fn check_events(&mut self) -> Result<Option<Event>> {
        let mut event = empty_event();
        // SAFETY: valid host and event out-pointer; this call does no socket I/O.
        let (rc, panic) =
            self.call_enet(|host| unsafe { enet_sys::enet_host_check_events(host, &mut event) });
        resume_panic(panic);
        self.finish_event(rc, &event)
    }

    /// Sends every queued packet now.
    pub fn flush(&mut self) {
        // SAFETY: valid host.
        let ((), panic) = self.call_enet(|host| unsafe { enet_sys::enet_host_flush(host) });
        resume_panic(panic);
    }

    /// Runs one call into ENet with this host's hooks installed for the intercept trampoline,
    /// and hands back the payload of a panic the trampoline caught during it, for the caller to
    /// raise again once its own bookkeeping is done. (ENet 1.3.17 calls the intercept from
    /// `enet_host_service` only; the other calls go through here so that no call into ENet can
    /// run the intercept without its hooks.)
    fn call_enet<R>(
        &mut self,
        call: impl FnOnce(*mut ENetHost) -> R,
    ) -> (R, Option<Box<dyn Any + Send>>) {
        let result = {
            let _scope = HookScope::enter(&mut self.hooks);
            call(self.raw.as_ptr())
        };
        (result, self.hooks.panic.take())
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

    pub(crate) fn info_of(&self, raw: *mut ENetPeer, index: u16) -> PeerInfo {
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
            timeout: Timeout::new(p.timeoutLimit, p.timeoutMinimum, p.timeoutMaximum),
            throttle: p.packetThrottle,
            rejected_oversize: slot.rejected_oversize,
            rejected_channel: slot.rejected_channel,
        }
    }

    /// Payload bytes ENet holds for a peer on the way out: queued and not yet sent, or sent
    /// reliably and not yet acknowledged. A peer that stops acknowledging while others send
    /// to it grows this without bound (ENet only drops it at its timeout, seconds later).
    /// ENet keeps no total: this walks the peer's command lists, and stops once the sum passes
    /// `stop_above` (returning a value above it), so a cap check costs at most the cap's worth
    /// of commands.
    pub fn queued_bytes(&self, handle: PeerHandle, stop_above: usize) -> Result<usize> {
        let raw = self.checked(handle)?;
        // SAFETY: a checked live peer of this host; `&self`, so ENet is not running.
        Ok(unsafe { queued_bytes(raw, stop_above) })
    }

    /// What ENet holds for a peer on the way out, in two field reads (unlike
    /// [`queued_bytes`](Self::queued_bytes), which walks the lists): whether commands wait to
    /// be sent, and the bytes of reliable data sent and not yet acknowledged.
    pub fn outgoing(&self, handle: PeerHandle) -> Result<Outgoing> {
        let raw = self.checked(handle)?;
        // SAFETY: a checked live peer of this host; `&self`, so ENet is not running. An empty
        // ENet list's sentinel points at itself.
        let (unsent, in_transit) = unsafe {
            let empty = |list: *const enet_sys::ENetList| {
                std::ptr::eq(
                    (*list).sentinel.next as *const enet_sys::ENetListNode,
                    std::ptr::addr_of!((*list).sentinel),
                )
            };
            (
                !empty(std::ptr::addr_of!((*raw).outgoingCommands))
                    || !empty(std::ptr::addr_of!((*raw).outgoingSendReliableCommands)),
                (*raw).reliableDataInTransit,
            )
        };
        Ok(Outgoing { unsent, in_transit })
    }

    /// Reliable commands sent to a peer on `channel` and not yet acknowledged (ENet's count
    /// per reliable window of that channel, sixteen field reads). Commands still queued are not
    /// counted; [`outgoing`](Self::outgoing) says whether there are any. 0 for a channel the
    /// connection does not have.
    pub fn reliable_in_flight(&self, handle: PeerHandle, channel: u8) -> Result<u32> {
        let raw = self.checked(handle)?;
        // SAFETY: a checked live peer of this host; `&self`, so ENet is not running. `channels`
        // holds `channelCount` entries; the index is checked against it.
        let sum = unsafe {
            if usize::from(channel) >= (*raw).channelCount {
                return Ok(0);
            }
            let ch = (*raw).channels.add(usize::from(channel));
            (*ch).reliableWindows.iter().map(|&n| u32::from(n)).sum()
        };
        Ok(sum)
    }

    /// Whether more than `cap` bytes are queued for a peer (as [`queued_bytes`](Self::queued_bytes)
    /// counts them), walking ENet's lists only when it could be so: what is queued now is at
    /// most what the last walk found plus what was sent to the peer since (ENet adds nothing
    /// with a payload of its own). A check of every peer therefore costs one comparison per
    /// peer while queues are far below the cap, however many commands they hold (a join storm
    /// queues a million small ones); only a peer that may be near the cap is walked, and that
    /// walk stops past the cap.
    pub fn queued_bytes_over(&mut self, handle: PeerHandle, cap: usize) -> Result<bool> {
        let raw = self.checked(handle)?;
        let slot = &mut self.slots[handle.index as usize];
        let bound = slot
            .queued_at_walk
            .saturating_add(slot.bytes_sent.saturating_sub(slot.sent_at_walk));
        if bound <= cap as u64 {
            return Ok(false);
        }
        // SAFETY: a checked live peer of this host; `&mut self`, so ENet is not running.
        let queued = unsafe { queued_bytes(raw, cap) };
        slot.queued_at_walk = queued as u64;
        slot.sent_at_walk = slot.bytes_sent;
        Ok(queued > cap)
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
    /// handshakes (offered to the handshake policy).
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
        for from in std::mem::take(&mut self.hooks.unreadable_from) {
            self.unreadable += 1;
            if self.unreadable_warned.len() < MISMATCH_ADDRESSES_KEPT
                && self.unreadable_warned.insert(from)
            {
                log::warn!(
                    "compressed datagrams from {from}, but this host uses no compression: ENet \
                     drops them. The peer's compression must match (Godot 3.2 and 3.3 default \
                     to none, Godot 3.4+ and Redot 3 to the range coder)"
                );
            }
        }
        for from in std::mem::take(&mut self.hooks.repeated_connect_from) {
            self.repeated_connects += 1;
            let known = self.repeated_connects_from.len();
            let count = match self.repeated_connects_from.get_mut(&from) {
                Some(count) => count,
                None if known < MISMATCH_ADDRESSES_KEPT => {
                    self.repeated_connects_from.entry(from).or_insert(0)
                }
                None => continue,
            };
            *count += 1;
            if *count == REPEATS_BEFORE_WARNING {
                log::warn!(
                    "the handshake with {from} does not complete: it keeps sending its connect \
                     request, uncompressed, while this host compresses with the range coder. A \
                     peer without compression cannot read compressed answers; the peer's \
                     compression must match (Godot 3.2 and 3.3 default to none, Godot 3.4+ and \
                     Redot 3 to the range coder)"
                );
            }
        }
        if std::mem::take(&mut self.hooks.handshake_seen) {
            // SAFETY: a valid host with `slots.len()` peers; ENet is not running (`&mut self`).
            unsafe { self.handshakes.scan(self.raw, &mut self.slots) };
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
                // SAFETY: the event's peer is a live slot of this host, ENet is not running.
                unsafe { self.handshakes.on_connect(event.peer, slot) };
                if !self.repeated_connects_from.is_empty() {
                    // SAFETY: as above; one field read.
                    let from = from_enet(unsafe { &(*event.peer).address });
                    // A handshake completed: its earlier repeats were lost answers.
                    self.repeated_connects_from.remove(&from);
                }
                // SAFETY: as above; one field read.
                let connect_id = unsafe { (*event.peer).connectID };
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

/// The socket's descriptor, for readiness polling only; see [`Host::socket_fd`].
#[cfg(unix)]
impl std::os::fd::AsRawFd for Host {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket_fd()
    }
}

/// The socket, borrowed for readiness polling only; see [`Host::socket_fd`].
#[cfg(unix)]
impl std::os::fd::AsFd for Host {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: enet_host_create only returns a host whose socket was created (never
        // ENET_SOCKET_NULL, -1), and ENet closes it in enet_host_destroy, from Drop: the
        // descriptor stays open for as long as `&self` lends it.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.socket_fd()) }
    }
}

/// Socket buffer sizes as the kernel reports them (see [`Host::set_socket_buffers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// The receive buffer, in bytes.
    pub receive: usize,
    /// The send buffer, in bytes.
    pub send: usize,
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
