//! The server driver: one [`ServerSession`] and the transports attached to it (an ENet host, a
//! WebSocket listener, or both: one room, one id space). The session decides; this moves each
//! transport's events in and carries the decisions out in each transport's framing. A packet
//! relayed between ENet clients is the received ENet packet itself (one packet, many peers, no
//! copy); between WebSocket clients, the received message itself (Godot forwards the whole
//! frame); across framings, the same sender, target and payload bytes in the other header.
//!
//! Waiting: an ENet-only server sleeps in ENet's own socket wait; with WebSocket attached, one
//! `mio` wait covers the ENet socket, the listener and every TCP connection.

use crate::enet::pacing::Pacing;
use crate::enet::{HostState, PeerStats, TotalStats, MAX_EVENTS_PER_POLL};
use crate::error::{Error, Result};
use crate::peer::{
    ConnectionStatus, DisconnectReason, Packet, PeerId, Polled, SendSettings, Target, TransferMode,
    SERVER_ID,
};
use crate::protocol::{self, Header, SystemMessage, CHANNEL_CONFIG, CHANNEL_RELIABLE, HEADER_LEN};
use crate::relay::{DropReason, Forward};
use crate::session::{Announcement, Inbound, Limits, RefusalCounts, ServerSession};
use crate::websocket::frame::{self, Kind, WsHeader, WS_HEADER_LEN};
use crate::websocket::listener::{ConnId, Listener, WsEvent};
use crate::websocket::{close_code, Ended, WebSocketListen, WebSocketStats};
use bytes::Bytes;
use enet_wrapper::{Event, PacketFlags, PeerHandle};
use mio::{Events, Interest, Poll, Token};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A client's connection, in the transport it came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Link {
    Enet(PeerHandle),
    Ws(ConnId),
}

impl Link {
    fn enet(self) -> Option<PeerHandle> {
        match self {
            Link::Enet(h) => Some(h),
            Link::Ws(_) => None,
        }
    }

    fn ws(self) -> Option<ConnId> {
        match self {
            Link::Ws(c) => Some(c),
            Link::Enet(_) => None,
        }
    }
}

/// The ENet socket's token; the WebSocket listener's is above it, its connections above that.
const ENET_TOKEN: Token = Token(0);
const LISTENER_TOKEN: Token = Token(1);
/// The shortest wait for an ENet timer that is already due: the ENet pass after the wait runs
/// it; a timer that stayed due would otherwise make the wait a busy loop.
const MIN_TIMER_WAIT: Duration = Duration::from_millis(1);

/// The longest ENet wait while clients' announcements wait for acknowledgements.
const PACING_WAIT: Duration = Duration::from_millis(1);

/// Events handled in a row with one reading of the clock.
const CLOCK_EVERY_EVENTS: usize = 64;

/// How often the ENet clients' queues are held against `ENetBuilder::max_queued_bytes`.
const QUEUE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Events and packets handled since the allocator last gave memory back that make a burst
/// worth giving memory back after (a 1000-client join storm is about 2000 events; 50,000
/// packets of 1 KiB are 50 MB through the queues).
const TRIM_AFTER_WORK: u64 = 2_000;
/// ENet clients gone since the last trim that are worth a trim alone: each frees everything
/// queued for it (after a join storm, a thousand announcements each).
const TRIM_AFTER_DEPARTURES: u64 = 256;
/// Work is counted in windows of this length...
const QUIET_WINDOW: Duration = Duration::from_millis(100);
/// ...and a window with less than this is a quiet one: the burst is over.
const QUIET_WINDOW_WORK: u64 = 64;
/// The shortest time between two trims (each walks the heap: milliseconds for 100 MB).
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// Reliable bytes sent to ENet clients and not yet acknowledged, in all, under which ENet's
/// queues count as drained: a storm's announcements cost ENet about 170 bytes each until
/// acknowledged, so a trim before they are would give back little.
const SETTLED_IN_TRANSIT: u64 = 64 * 1024;
/// ENet clients with commands not yet sent, at most, for ENet's queues to count as drained.
const SETTLED_UNSENT_PEERS: usize = 16;

/// The WebSocket side: the listener, the wait over every socket, and its counts.
#[derive(Debug)]
struct WsSide {
    listener: Listener,
    poll: Poll,
    events: Events,
    happened: Vec<WsEvent>,
    /// Scratch: the WebSocket destinations of one send.
    targets: Vec<ConnId>,
    /// Whether the last ENet pass stopped at the event cap (more may be queued in ENet).
    enet_backlog: bool,
}

/// Which packets addressed to the server (Godot target 1, and its share of broadcasts and
/// exclusions) reach its application's [`get_packet`](crate::MultiplayerPeer::get_packet).
///
/// A pure relay whose application reads nothing sets [`ServerPackets::None`] (or `Matching`
/// the few it answers): the server's copy of every broadcast is then neither copied nor
/// queued, where a queue nobody drains would grow by every broadcast. What is left out is
/// counted in [`TotalStats::not_for_application`](crate::TotalStats).
///
/// ```
/// use enet_multiplayer::{ENetMultiplayerPeer, ServerPackets};
/// // The relay server answers Godot's SIMPLIFY_PATH (its RPC path cache) and reads nothing else.
/// let server = ENetMultiplayerPeer::server(0)
///     .bind_address("127.0.0.1".parse().unwrap())
///     .server_packets(ServerPackets::Matching(enet_multiplayer::api::wire::is_simplify_path))
///     .build()?;
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub enum ServerPackets {
    /// Every one, as Godot (the default).
    #[default]
    All,
    /// None: the application reads no packets.
    None,
    /// Those whose payload (after the transport's header) the function accepts.
    Matching(fn(&[u8]) -> bool),
}

impl ServerPackets {
    /// Whether a packet with this payload goes to the application.
    fn wants(self, payload: &[u8]) -> bool {
        match self {
            ServerPackets::All => true,
            ServerPackets::None => false,
            ServerPackets::Matching(f) => f(payload),
        }
    }
}

/// The server. See the module docs.
#[derive(Debug)]
pub(crate) struct ServerDriver {
    pub(crate) session: ServerSession<Link>,
    pub(crate) settings: SendSettings,
    /// The ENet transport, if attached (its host is `None` once closed).
    pub(crate) enet: Option<HostState>,
    ws: Option<WsSide>,
    /// What the application may send (the ENet host's limits when there is one).
    pub(crate) limits: Limits,
    open: bool,
    /// WebSocket totals kept once the listener is gone.
    ws_closed: Option<WebSocketStats>,
    /// Which packets for the server its application takes.
    pub(crate) server_packets: ServerPackets,
    /// Packets for the server that `server_packets` left out.
    not_for_application: u64,
    /// The ENet clients' announcements, paced by their acknowledgements.
    pacing: Pacing,
    /// Events and packets handled since the allocator last gave memory back, and when.
    work_since_trim: u64,
    /// ENet clients gone since the last trim (each frees all it held).
    departures_since_trim: u64,
    last_trim: Option<Instant>,
    /// The current window of work: when it began, and what it has seen.
    window: (Instant, u64),
}

impl ServerDriver {
    /// A server over `enet` (a listening host), `ws` (listen options), or both.
    pub(crate) fn new(
        session: ServerSession<Link>,
        enet: Option<HostState>,
        ws: Option<WebSocketListen>,
        limits: Limits,
    ) -> Result<ServerDriver> {
        let ws = match ws {
            None => None,
            Some(options) => {
                let poll = Poll::new().map_err(Error::io("readiness poll"))?;
                if let Some(host) = enet.as_ref().and_then(|e| e.host.as_ref()) {
                    use std::os::fd::AsRawFd;
                    let fd = host.as_raw_fd();
                    poll.registry()
                        .register(
                            &mut mio::unix::SourceFd(&fd),
                            ENET_TOKEN,
                            Interest::READABLE,
                        )
                        .map_err(Error::io("readiness poll"))?;
                }
                let listener = Listener::bind(options, poll.registry(), LISTENER_TOKEN)?;
                Some(WsSide {
                    listener,
                    poll,
                    events: Events::with_capacity(1024),
                    happened: Vec::new(),
                    targets: Vec::new(),
                    enet_backlog: false,
                })
            }
        };
        Ok(ServerDriver {
            session,
            settings: SendSettings::default(),
            enet,
            ws,
            limits,
            open: true,
            ws_closed: None,
            server_packets: ServerPackets::All,
            not_for_application: 0,
            pacing: Pacing::default(),
            work_since_trim: 0,
            departures_since_trim: 0,
            last_trim: None,
            window: (Instant::now(), 0),
        })
    }

    pub(crate) fn status(&self) -> ConnectionStatus {
        if self.open {
            ConnectionStatus::Connected
        } else {
            ConnectionStatus::Disconnected
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// The WebSocket listener's port.
    pub(crate) fn websocket_port(&self) -> Option<u16> {
        self.ws.as_ref()?.listener.local_port()
    }

    // ---- polling ---------------------------------------------------------------------------

    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<Polled> {
        let polled = self.poll_once(timeout)?;
        self.after_burst(&polled, Instant::now());
        Ok(polled)
    }

    /// Once a burst is over (a quiet [`QUIET_WINDOW`] after at least [`TRIM_AFTER_WORK`]
    /// events and packets), hands the memory it freed back to the system: glibc keeps what
    /// was freed in its pools, so a server that held 100 MB for a join storm or a flood would
    /// stay that large while idle.
    fn after_burst(&mut self, polled: &Polled, now: Instant) {
        self.add_work((polled.events + polled.packets) as u64);
        if now.saturating_duration_since(self.window.0) < QUIET_WINDOW {
            return;
        }
        let quiet = self.window.1 < QUIET_WINDOW_WORK;
        self.window = (now, 0);
        if !quiet
            || (self.work_since_trim < TRIM_AFTER_WORK
                && self.departures_since_trim < TRIM_AFTER_DEPARTURES)
            || self
                .last_trim
                .is_some_and(|t| now.saturating_duration_since(t) < TRIM_INTERVAL)
            || !self.enet_settled()
        {
            return;
        }
        let released = enet_wrapper::release_free_memory();
        log::debug!(
            "burst of {} events and packets over: free memory {}",
            self.work_since_trim,
            if released {
                "given back"
            } else {
                "kept (nothing to give back)"
            }
        );
        self.work_since_trim = 0;
        self.departures_since_trim = 0;
        self.last_trim = Some(now);
    }

    /// Whether the burst's data has left: no backlog waits, and ENet holds little for its
    /// clients (what it holds is freed only once acknowledged).
    fn enet_settled(&self) -> bool {
        if !self.pacing.is_empty() {
            return false;
        }
        let Some(host) = self.enet.as_ref().and_then(|e| e.host.as_ref()) else {
            return true;
        };
        let mut in_transit = 0u64;
        let mut unsent = 0usize;
        for handle in host.peers() {
            if let Ok(out) = host.outgoing(handle) {
                in_transit += u64::from(out.in_transit);
                unsent += usize::from(out.unsent);
            }
        }
        in_transit <= SETTLED_IN_TRANSIT && unsent <= SETTLED_UNSENT_PEERS
    }

    fn poll_once(&mut self, timeout: Duration) -> Result<Polled> {
        let mut polled = Polled::default();
        if !self.open {
            return Ok(polled);
        }
        if self.ws.is_none() {
            // ENet alone: ENet's own wait; short while backlogs wait for acknowledgements,
            // which wake no service call (they are no event).
            let wait = if self.pacing.is_empty() {
                timeout
            } else {
                timeout.min(PACING_WAIT)
            };
            self.enet_pass(wait, &mut polled)?;
            self.check_enet_queues(Instant::now());
            return Ok(polled);
        }
        // Whatever the application queued leaves before the wait.
        self.flush_all();
        let now = Instant::now();
        let ws = self.ws.as_mut().expect("checked above");
        let busy = ws.enet_backlog || ws.listener.has_backlog();
        let mut wait = if busy { Duration::ZERO } else { timeout };
        // ENet's timers (resends, pings, timeouts) run only inside its service calls: wake for
        // the next one, and not before (an idle host sleeps the whole timeout).
        if let Some(timer) = self
            .enet
            .as_ref()
            .and_then(|e| e.host.as_ref())
            .and_then(|h| h.next_timer())
        {
            wait = wait.min(timer.max(MIN_TIMER_WAIT));
        }
        if let Some(deadline) = ws.listener.next_deadline() {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        match ws.poll.poll(&mut ws.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("readiness poll")(e)),
        }
        // ENet first (every poll: its timers run in service), then the TCP side.
        if self.enet.is_some() {
            self.enet_pass(Duration::ZERO, &mut polled)?;
        }
        let now = Instant::now();
        let ws = self.ws.as_mut().expect("checked above");
        let mut happened = std::mem::take(&mut ws.happened);
        let registry = ws.poll.registry();
        for event in ws.events.iter() {
            if event.token() != ENET_TOKEN && ws.listener.owns(event.token()) {
                ws.listener
                    .ready(event.token(), registry, now, &mut happened);
            }
        }
        ws.listener.run_backlog(registry, now, &mut happened);
        ws.listener.expire(now, &mut happened);
        for event in happened.drain(..) {
            self.on_ws_event(event, now, &mut polled);
        }
        if let Some(ws) = self.ws.as_mut() {
            ws.happened = happened;
        }
        self.check_enet_queues(now);
        self.send_announcements();
        self.release_backlogs();
        self.flush_all();
        Ok(polled)
    }

    /// Whether the server's copy of a packet with this payload goes to the application
    /// (counting those that do not).
    fn for_application(&mut self, payload: &[u8]) -> bool {
        let wanted = self.server_packets.wants(payload);
        if !wanted {
            self.not_for_application += 1;
        }
        wanted
    }

    /// Disconnects ENet clients for whom ENet holds more than the cap (queued, or sent and not
    /// acknowledged), at most every [`QUEUE_CHECK_INTERVAL`]; counted as slow consumers. Their
    /// queues are freed at once (ENet's disconnect resets them) and the others are told.
    fn check_enet_queues(&mut self, now: Instant) {
        let Some(state) = self.enet.as_mut() else {
            return;
        };
        let cap = state.max_queued;
        if cap == 0
            || state
                .queues_checked
                .is_some_and(|t| now.saturating_duration_since(t) < QUEUE_CHECK_INTERVAL)
        {
            return;
        }
        state.queues_checked = Some(now);
        let Some(host) = state.host.as_mut() else {
            return;
        };
        // The handles first: checking needs `host` mutable.
        let mut handles: Vec<PeerHandle> = host.peers().collect();
        let pacing = &self.pacing;
        // What waits in its backlog counts against a client's cap too.
        handles.retain(|&h| {
            let held = pacing.held_bytes(h);
            held > cap || host.queued_bytes_over(h, cap - held).unwrap_or(false)
        });
        for &handle in &handles {
            state.stats.slow_consumers += 1;
            let id = self.session.link_closed(&Link::Enet(handle));
            log::warn!(
                "peer {} is a slow consumer: over {cap} bytes queued for it; disconnecting it",
                id.unwrap_or(0)
            );
            self.pacing.forget(handle);
            if let Ok(mut peer) = host.peer_mut(handle) {
                peer.disconnect(DisconnectReason::SlowConsumer.code());
            }
        }
    }

    /// Handles ENet's events (waiting up to `wait` for the first).
    fn enet_pass(&mut self, wait: Duration, polled: &mut Polled) -> Result<()> {
        let mut wait = wait;
        let mut drained = false;
        let mut now = Instant::now();
        for handled in 0..MAX_EVENTS_PER_POLL {
            let Some(host) = self.enet.as_mut().and_then(|e| e.host.as_mut()) else {
                return Ok(());
            };
            let Some(event) = host.service(wait)? else {
                // A service call that returns no event has sent everything queued.
                drained = true;
                break;
            };
            // The clock once per few events (a pass of them takes microseconds; reading it
            // for each was 3% of a busy relay's time): the rate windows count seconds.
            if handled == 0 || !wait.is_zero() || handled % CLOCK_EVERY_EVENTS == 0 {
                now = Instant::now();
            }
            wait = Duration::ZERO;
            match event {
                Event::Connect { peer, data } => {
                    polled.events += 1;
                    self.on_connect(peer, data, now);
                }
                Event::Disconnect { peer, .. } => {
                    polled.events += 1;
                    self.departures_since_trim += 1;
                    self.pacing.forget(peer);
                    self.session.link_closed(&Link::Enet(peer));
                }
                Event::Receive {
                    peer,
                    channel,
                    packet,
                } => {
                    polled.packets += 1;
                    // Announcements first: a client hears of a peer before its packets.
                    self.send_announcements();
                    self.on_receive(peer, channel, packet, now);
                }
            }
        }
        if let Some(ws) = self.ws.as_mut() {
            ws.enet_backlog = !drained;
        }
        // The announcements of this pass's connects and departures, together, what the
        // backlogs have room for, then one flush (also when the event cap stopped the loop
        // with packets still queued).
        let announced = self.send_announcements();
        let paced = !self.pacing.is_empty();
        self.release_backlogs();
        if announced || paced || !drained {
            if let Some(host) = self.enet.as_mut().and_then(|e| e.host.as_mut()) {
                host.flush();
            }
        }
        Ok(())
    }

    fn flush_all(&mut self) {
        if let Some(host) = self.enet.as_mut().and_then(|e| e.host.as_mut()) {
            host.flush();
        }
        if let Some(ws) = self.ws.as_mut() {
            let mut broke = Vec::new();
            ws.listener.flush(&mut broke);
            for event in broke {
                if let WsEvent::Closed(id, _) = event {
                    self.session.link_closed(&Link::Ws(id));
                }
            }
        }
    }

    // ---- ENet ------------------------------------------------------------------------------

    fn on_connect(&mut self, peer: PeerHandle, claimed: u32, now: Instant) {
        let Some(state) = self.enet.as_mut() else {
            return;
        };
        let Some(host) = state.host.as_mut() else {
            return;
        };
        let address = host
            .peer_info(peer)
            .ok()
            .map(|i| std::net::IpAddr::V4(*i.address.ip()));
        let connected = self
            .session
            .connect_from(Link::Enet(peer), Some(claimed), address, now);
        if let Ok(id) = connected {
            let from = host.peer_info(peer).map(|i| i.address.to_string());
            log::info!(
                "peer {id} connected from {} (enet){}",
                from.unwrap_or_default(),
                gated_note(self.session.config().gated)
            );
        }
        match connected {
            Ok(_) => {
                if let (Some(t), Ok(mut p)) = (state.common.timeout, host.peer_mut(peer)) {
                    p.set_peer_timeout(t);
                }
            }
            Err(refusal) => {
                let address = host.peer_info(peer).map(|i| i.address.to_string());
                log::info!(
                    "refused connection from {} with id {claimed}: {refusal:?}",
                    address.unwrap_or_default()
                );
                if let Ok(p) = host.peer_mut(peer) {
                    p.disconnect_now(DisconnectReason::Refused(refusal).code());
                }
            }
        }
    }

    fn on_receive(
        &mut self,
        peer: PeerHandle,
        channel: u8,
        packet: enet_wrapper::Packet,
        now: Instant,
    ) {
        if let Some(state) = self.enet.as_mut() {
            state.stats.packets_in += 1;
            state.stats.bytes_in += packet.len() as u64;
        }
        let header = Header::decode(packet.data());
        let inbound = if channel == CHANNEL_CONFIG {
            Inbound::Config
        } else {
            match header {
                Ok(h) => Inbound::Data {
                    source: h.source,
                    target: h.target,
                },
                Err(_) => Inbound::Short,
            }
        };
        let Ok(accepted) = self.session.receive(&Link::Enet(peer), inbound, now) else {
            return;
        };
        if accepted.route.local && self.for_application(&packet.data()[HEADER_LEN..]) {
            self.session.queues_mut().push_packet(Packet {
                from: accepted.from,
                channel: protocol::logical_channel(channel).unwrap_or(0),
                mode: protocol::mode_from_flags(packet.flags()),
                data: Bytes::copy_from_slice(&packet.data()[HEADER_LEN..]),
            });
        }
        let forward = accepted.route.forward;
        if forward == Forward::Nobody {
            return;
        }
        let target = header.map_or(0, |h| h.target);
        // WebSocket destinations first: they need the bytes the ENet send gives away.
        if self
            .ws
            .as_ref()
            .is_some_and(|w| w.listener.open_count() > 0)
        {
            let message = Bytes::from(frame::data_message(
                accepted.from,
                target,
                &packet.data()[HEADER_LEN..],
            ));
            self.relay_to_ws(accepted.from, forward, message);
        }
        let Some(state) = self.enet.as_mut() else {
            return;
        };
        let Some(host) = state.host.as_mut() else {
            return;
        };
        let len = packet.len() as u64;
        let links = self.session.forward_links(forward).filter_map(Link::enet);
        let sent = self.pacing.send_many(host, links, channel, packet) as u64;
        let stats = &mut state.stats;
        stats.relayed += sent;
        stats.packets_out += sent;
        stats.bytes_out += sent * len;
    }

    // ---- WebSocket ---------------------------------------------------------------------------

    fn on_ws_event(&mut self, event: WsEvent, now: Instant, polled: &mut Polled) {
        match event {
            WsEvent::Opened(id) => {
                polled.events += 1;
                let address = self
                    .ws
                    .as_ref()
                    .and_then(|w| w.listener.info(id))
                    .map(|i| i.address.ip());
                let connected = self.session.connect_from(Link::Ws(id), None, address, now);
                if let Ok(peer) = connected {
                    log::info!(
                        "peer {peer} connected from {} (websocket){}",
                        address.map(|a| a.to_string()).unwrap_or_default(),
                        gated_note(self.session.config().gated)
                    );
                }
                match connected {
                    Ok(peer) => {
                        // Godot's order: the id first (a client's id is 0 until then), then
                        // SYS_ADD(1), which completes the client's connection.
                        let listener = &mut self.ws.as_mut().expect("a ws event").listener;
                        let _ = listener.send(id, sys(Kind::SysId, peer));
                        let _ = listener.send(id, sys(Kind::SysAdd, SERVER_ID));
                    }
                    Err(refusal) => {
                        let listener = &mut self.ws.as_mut().expect("a ws event").listener;
                        let address = listener.info(id).map(|i| i.address.to_string());
                        log::info!(
                            "refused websocket connection from {}: {refusal:?}",
                            address.unwrap_or_default()
                        );
                        let code = close_code(DisconnectReason::Refused(refusal));
                        listener.close(id, code, "refused", now);
                    }
                }
            }
            WsEvent::Closed(id, how) => {
                polled.events += 1;
                if let Ended::TooLarge = how {
                    self.session.count_drop(
                        &Link::Ws(id),
                        DropReason::Oversize,
                        "frame over the limit",
                    );
                }
                self.session.link_closed(&Link::Ws(id));
            }
            WsEvent::Text(id) => {
                polled.packets += 1;
                self.session
                    .count_drop(&Link::Ws(id), DropReason::TextMessage, "a text message");
                if let Some(ws) = self.ws.as_mut() {
                    ws.listener.stats.drops.add(DropReason::TextMessage);
                }
            }
            WsEvent::Message(id, message) => {
                polled.packets += 1;
                self.send_announcements();
                self.on_ws_message(id, message, now);
            }
        }
    }

    fn on_ws_message(&mut self, id: ConnId, message: Bytes, now: Instant) {
        let link = Link::Ws(id);
        let header = WsHeader::decode(&message);
        let inbound = match header {
            Ok(h) if h.kind == Kind::Data => Inbound::Data {
                source: h.from,
                target: h.to,
            },
            Ok(_) => Inbound::Config,
            Err(frame::WsDecodeError::TooShort(_)) => Inbound::Short,
            Err(frame::WsDecodeError::UnknownKind(_)) => Inbound::Config,
        };
        let received = self.session.receive(&link, inbound, now);
        let accepted = match received {
            Ok(a) => a,
            Err(reason) => {
                if let Some(ws) = self.ws.as_mut() {
                    ws.listener.stats.drops.add(reason);
                }
                return;
            }
        };
        let target = header.map_or(0, |h| h.to);
        if accepted.route.local && self.for_application(&message[WS_HEADER_LEN..]) {
            self.session.queues_mut().push_packet(Packet {
                from: accepted.from,
                channel: 0,
                mode: TransferMode::Reliable,
                data: message.slice(WS_HEADER_LEN..),
            });
        }
        let forward = accepted.route.forward;
        if forward == Forward::Nobody {
            return;
        }
        // ENet destinations: reliable on logical channel 0 (ENet channel 1, never 0).
        if let Some(state) = self.enet.as_mut() {
            let mut links = self
                .session
                .forward_links(forward)
                .filter_map(Link::enet)
                .peekable();
            if let (Some(host), Some(_)) = (state.host.as_mut(), links.peek()) {
                let head = Header {
                    source: accepted.from,
                    target,
                }
                .encode();
                let payload = &message[WS_HEADER_LEN..];
                match enet_wrapper::Packet::from_parts(&[&head, payload], PacketFlags::RELIABLE) {
                    Ok(packet) => {
                        let sent =
                            self.pacing.send_many(host, links, CHANNEL_RELIABLE, packet) as u64;
                        let len = (HEADER_LEN + payload.len()) as u64;
                        state.stats.relayed += sent;
                        state.stats.packets_out += sent;
                        state.stats.bytes_out += sent * len;
                    }
                    Err(e) => log::warn!("could not relay to ENet clients: {e}"),
                }
            }
        }
        self.relay_to_ws(accepted.from, forward, message);
    }

    /// Sends a relayed message from `from` to the WebSocket clients among `forward`'s
    /// destinations; what would not fit a client's message limit is dropped and counted.
    fn relay_to_ws(&mut self, from: PeerId, forward: Forward, message: Bytes) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        let mut targets = std::mem::take(&mut ws.targets);
        targets.clear();
        targets.extend(self.session.forward_links(forward).filter_map(Link::ws));
        if targets.is_empty() {
            ws.targets = targets;
            return;
        }
        if message.len() > ws.listener.options().max_outgoing_message {
            let detail = format!("{} bytes towards websocket", message.len());
            for _ in &targets {
                ws.listener
                    .stats
                    .drops
                    .add(DropReason::TooLargeForWebSocket);
            }
            if let Some(link) = self.session.link_of(from) {
                for _ in &targets {
                    self.session
                        .count_drop(&link, DropReason::TooLargeForWebSocket, &detail);
                }
            }
            if let Some(ws) = self.ws.as_mut() {
                ws.targets = targets;
            }
            return;
        }
        let mut slow = Vec::new();
        ws.listener.stats.relayed += ws.listener.send_each(&targets, &message, &mut slow);
        ws.targets = targets;
        self.slow_consumers(slow);
    }

    /// Disconnects WebSocket clients whose queue went over the cap (counted).
    fn slow_consumers(&mut self, slow: Vec<ConnId>) {
        let Some(ws) = self.ws.as_mut() else {
            return;
        };
        for id in slow {
            ws.listener.stats.slow_consumers += 1;
            let peer = self.session.peer_of(&Link::Ws(id));
            log::warn!(
                "websocket peer {} disconnected: slow consumer (over {} bytes queued)",
                peer.unwrap_or(0),
                ws.listener.options().max_queued_bytes
            );
            ws.listener.drop_conn(id);
            self.session.link_closed(&Link::Ws(id));
        }
    }

    /// Sends what the session announced, in each transport's messages (to ENet clients through
    /// their backlogs); true if anything was announced.
    fn send_announcements(&mut self) -> bool {
        if !self.session.has_announcements() {
            return false;
        }
        let pacing = &mut self.pacing;
        pacing.begin_pass();
        let mut enet = self.enet.as_mut().and_then(|e| {
            let stats = &mut e.stats;
            e.host.as_mut().map(|h| (h, stats))
        });
        let mut ws = self.ws.as_mut().map(|w| &mut w.listener);
        let mut slow = Vec::new();
        let (mut enet_links, mut ws_links) = (Vec::new(), Vec::new());
        let mut queued = 0u64;
        self.session.drain_announcements(|what, to| {
            if let Some((host, stats)) = enet.as_mut() {
                let msg = match what {
                    Announcement::Add(id) => SystemMessage::AddPeer(id),
                    Announcement::Remove(id) => SystemMessage::RemovePeer(id),
                };
                // Straight to ENet, one packet for all, unless a client has a backlog, ENet is
                // behind with it or it has had its share of this pass: then into its backlog.
                enet_links.clear();
                for handle in to.iter().filter_map(|l| l.enet()) {
                    if pacing.direct(host, handle) {
                        enet_links.push(handle);
                    } else {
                        pacing.announce(handle, msg);
                    }
                }
                if !enet_links.is_empty() {
                    match enet_wrapper::Packet::new(&msg.encode(), PacketFlags::RELIABLE) {
                        Ok(p) => {
                            let n = host.send_many(enet_links.iter().copied(), CHANNEL_CONFIG, p)
                                as u64;
                            queued += n;
                            stats.packets_out += n;
                            stats.bytes_out += n * protocol::SYSTEM_MESSAGE_LEN as u64;
                        }
                        Err(e) => log::error!("could not send {msg:?}: {e}"),
                    }
                }
            }
            if let Some(listener) = ws.as_mut() {
                ws_links.clear();
                ws_links.extend(to.iter().filter_map(|l| l.ws()));
                if !ws_links.is_empty() {
                    let message = match what {
                        Announcement::Add(id) => sys(Kind::SysAdd, id),
                        Announcement::Remove(id) => sys(Kind::SysDel, id),
                    };
                    listener.send_each(&ws_links, &message, &mut slow);
                    queued += ws_links.len() as u64;
                }
            }
        });
        self.add_work(queued);
        self.slow_consumers(slow);
        true
    }

    /// Hands ENet what the clients' backlogs have room for (counted as sent, and as work for
    /// the burst accounting).
    fn release_backlogs(&mut self) {
        if self.pacing.is_empty() {
            return;
        }
        let Some(state) = self.enet.as_mut() else {
            return;
        };
        let Some(host) = state.host.as_mut() else {
            return;
        };
        let released = self.pacing.release(host);
        state.stats.packets_out += released.announcements;
        state.stats.bytes_out += released.bytes;
        self.add_work(released.announcements + released.data);
    }

    /// Counts work for the burst accounting ([`after_burst`](Self::after_burst)).
    fn add_work(&mut self, work: u64) {
        self.work_since_trim += work;
        self.window.1 += work;
    }

    // ---- the application's calls ---------------------------------------------------------

    pub(crate) fn send(
        &mut self,
        target: Target,
        mode: TransferMode,
        channel: u8,
        data: &[u8],
    ) -> Result<()> {
        if !self.open {
            return Err(Error::NotConnected(ConnectionStatus::Disconnected));
        }
        let (target, int) = self.limits.check_send(
            SERVER_ID,
            |id| self.session.contains(id),
            target,
            channel,
            data.len(),
        )?;
        let one = match target {
            Target::Peer(id) => Some(self.session.link_of(id).ok_or(Error::UnknownPeer(id))?),
            _ => None,
        };
        // WebSocket destinations.
        if let Some(ws) = self.ws.as_mut() {
            let mut targets = std::mem::take(&mut ws.targets);
            targets.clear();
            match one {
                Some(link) => targets.extend(link.ws()),
                None => targets.extend(self.session.send_links(target)?.1.filter_map(Link::ws)),
            }
            let size = WS_HEADER_LEN + data.len();
            let limit = ws.listener.options().max_outgoing_message;
            if !targets.is_empty() && size > limit {
                ws.targets = targets;
                if one.is_some() {
                    return Err(Error::PacketTooLarge {
                        size: data.len(),
                        max: limit - WS_HEADER_LEN,
                    });
                }
                let n = ws.targets.len() as u64;
                for _ in 0..n {
                    ws.listener
                        .stats
                        .drops
                        .add(DropReason::TooLargeForWebSocket);
                }
                log::warn!("{size}-byte message not sent to {n} websocket clients (limit {limit})");
            } else if !targets.is_empty() {
                let message = Bytes::from(frame::data_message(SERVER_ID, int, data));
                let mut slow = Vec::new();
                ws.listener.send_each(&targets, &message, &mut slow);
                ws.targets = targets;
                self.slow_consumers(slow);
            } else {
                ws.targets = targets;
            }
        }
        // ENet destinations.
        let Some(state) = self.enet.as_mut() else {
            return Ok(());
        };
        if one.is_some_and(|l| l.enet().is_none()) {
            return Ok(());
        }
        let (packet, enet_channel) = state.packet(SERVER_ID, int, mode, channel, data)?;
        let Some(host) = state.host.as_mut() else {
            return Err(Error::NotConnected(ConnectionStatus::Disconnected));
        };
        let sent = match one.and_then(Link::enet) {
            // One peer: ENet's own refusal (a channel that connection lacks) is the caller's.
            Some(link) if self.pacing.holds(link) => {
                self.pacing
                    .hold(link, enet_channel, packet.flags(), packet.data());
                1
            }
            Some(link) => {
                host.peer_mut(link)?
                    .send(enet_channel, packet)
                    .map_err(|e| HostState::channel_error(e, channel))?;
                1
            }
            None => {
                let (_, links) = self.session.send_links(target)?;
                self.pacing
                    .send_many(host, links.filter_map(Link::enet), enet_channel, packet)
            }
        };
        state.sent(sent, data.len());
        Ok(())
    }

    pub(crate) fn kick(&mut self, id: PeerId, force: bool) -> Result<()> {
        let link = self.session.kick(id, force)?;
        match link {
            Link::Enet(handle) => {
                let host = self
                    .enet
                    .as_mut()
                    .and_then(|e| e.host.as_mut())
                    .ok_or(Error::UnknownPeer(id))?;
                let code = DisconnectReason::Kicked.code();
                if force {
                    if let Ok(p) = host.peer_mut(handle) {
                        p.disconnect_now(code);
                    }
                } else {
                    host.peer_mut(handle)?.disconnect_later(code);
                }
            }
            Link::Ws(conn) => {
                let listener = &mut self.ws.as_mut().ok_or(Error::UnknownPeer(id))?.listener;
                if force {
                    listener.drop_conn(conn);
                } else {
                    let code = close_code(DisconnectReason::Kicked);
                    listener.close(conn, code, "kicked", Instant::now());
                }
            }
        }
        Ok(())
    }

    /// Starts a graceful shutdown: refuses new connections and tells every client the server
    /// is closing (ENet: a disconnect with [`DisconnectReason::ServerClosed`] once what is queued
    /// for it has gone; WebSocket: a close frame with its close code). Each client stays until
    /// it acknowledges (its `PeerDisconnected` follows then) or its transport gives up; returns
    /// how many were told.
    pub(crate) fn drain(&mut self) -> usize {
        if !self.open {
            return 0;
        }
        self.session.set_refuse_new_connections(true);
        let links: Vec<Link> = self
            .session
            .peer_ids()
            .filter_map(|id| self.session.link_of(id))
            .collect();
        let now = Instant::now();
        let code = DisconnectReason::ServerClosed.code();
        for link in &links {
            match *link {
                Link::Enet(handle) => {
                    if let Some(Ok(mut peer)) = self
                        .enet
                        .as_mut()
                        .and_then(|e| e.host.as_mut())
                        .map(|h| h.peer_mut(handle))
                    {
                        peer.disconnect_later(code);
                    }
                }
                Link::Ws(conn) => {
                    if let Some(ws) = self.ws.as_mut() {
                        ws.listener.close(
                            conn,
                            close_code(DisconnectReason::ServerClosed),
                            "server closing",
                            now,
                        );
                    }
                }
            }
        }
        self.flush_all();
        log::info!(
            "draining: refusing new connections, {} clients told the server is closing",
            links.len()
        );
        links.len()
    }

    /// Admits a client of a gated server; its announcements leave at once.
    pub(crate) fn approve(&mut self, id: PeerId) -> Result<()> {
        self.session.approve(id)?;
        self.send_announcements();
        self.flush_all();
        Ok(())
    }

    /// Disconnects a client the application will not admit, with
    /// [`DisconnectReason::Refused`]`(refusal)`, counted as a refusal.
    pub(crate) fn reject(&mut self, id: PeerId, refusal: crate::Refusal) -> Result<()> {
        let reason = DisconnectReason::Refused(refusal);
        match self.session.reject(id, refusal)? {
            Link::Enet(handle) => {
                let host = self
                    .enet
                    .as_mut()
                    .and_then(|e| e.host.as_mut())
                    .ok_or(Error::UnknownPeer(id))?;
                host.peer_mut(handle)?.disconnect_later(reason.code());
            }
            Link::Ws(conn) => {
                let listener = &mut self.ws.as_mut().ok_or(Error::UnknownPeer(id))?.listener;
                listener.close(conn, close_code(reason), "not admitted", Instant::now());
            }
        }
        self.flush_all();
        Ok(())
    }

    /// Refused connections by reason.
    pub(crate) fn refusals(&self) -> RefusalCounts {
        *self.session.refused()
    }

    pub(crate) fn close(&mut self) {
        if !self.open {
            return;
        }
        let links = self.session.close();
        if let Some(state) = self.enet.as_mut() {
            if let Some(host) = state.host.as_mut() {
                let code = DisconnectReason::ServerClosed.code();
                for link in links.iter().filter_map(|l| l.enet()) {
                    if let Ok(p) = host.peer_mut(link) {
                        p.disconnect_now(code);
                    }
                }
                host.flush();
            }
            state.close_host();
        }
        if let Some(mut ws) = self.ws.take() {
            ws.listener
                .shutdown(close_code(DisconnectReason::ServerClosed), "server closed");
            self.ws_closed = Some(ws.listener.stats);
        }
        self.open = false;
        log::debug!("closed");
    }

    pub(crate) fn peer_stats(&self, id: PeerId) -> Result<PeerStats> {
        let link = self.session.link_of(id).ok_or(Error::UnknownPeer(id))?;
        let drops = self.session.drops_of(id).copied().unwrap_or_default();
        match link {
            Link::Enet(handle) => {
                let state = self.enet.as_ref().ok_or(Error::UnknownPeer(id))?;
                state.peer_stats(id, handle, drops)
            }
            Link::Ws(conn) => {
                let ws = self.ws.as_ref().ok_or(Error::UnknownPeer(id))?;
                let info = ws.listener.info(conn).ok_or(Error::UnknownPeer(id))?;
                let address = match info.address {
                    SocketAddr::V4(a) => a,
                    SocketAddr::V6(a) => std::net::SocketAddrV4::new(
                        a.ip()
                            .to_ipv4_mapped()
                            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                        a.port(),
                    ),
                };
                Ok(PeerStats {
                    address,
                    round_trip_time: 0,
                    round_trip_time_variance: 0,
                    packet_loss: 0.0,
                    packets_sent: info.packets_out,
                    bytes_sent: info.bytes_out,
                    packets_received: info.packets_in,
                    bytes_received: info.bytes_in,
                    drops,
                })
            }
        }
    }

    /// Whether `id` came by WebSocket.
    pub(crate) fn is_websocket_peer(&self, id: PeerId) -> bool {
        matches!(self.session.link_of(id), Some(Link::Ws(_)))
    }

    /// The WebSocket side's totals.
    pub(crate) fn websocket_stats(&self) -> Option<WebSocketStats> {
        match &self.ws {
            Some(ws) => Some(ws.listener.stats),
            None => self.ws_closed,
        }
    }

    /// Totals over every transport, with the session's refusals and drop counts.
    pub(crate) fn stats(&self) -> TotalStats {
        let mut stats = self.enet.as_ref().map(HostState::stats).unwrap_or_default();
        if let Some(w) = self.websocket_stats() {
            stats.packets_in += w.packets_in;
            stats.bytes_in += w.bytes_in;
            stats.packets_out += w.packets_out;
            stats.bytes_out += w.bytes_out;
            stats.relayed += w.relayed;
            stats.handshakes += w.handshakes;
            stats.slow_consumers += w.slow_consumers;
            let oversize = stats.drops.get(DropReason::Oversize);
            stats
                .drops
                .set(DropReason::Oversize, oversize + w.closed_too_large);
            let large = w.drops.get(DropReason::TooLargeForWebSocket);
            stats.drops.set(DropReason::TooLargeForWebSocket, large);
        }
        stats.refused = self.session.refused().total();
        stats.not_for_application = self.not_for_application;
        for (reason, n) in self.session.drops().iter() {
            if !matches!(
                reason,
                DropReason::Oversize
                    | DropReason::ChannelOutOfRange
                    | DropReason::TooLargeForWebSocket
            ) {
                stats.drops.set(reason, n);
            }
        }
        stats
    }
}

/// What a connect log line adds for a gated server.
fn gated_note(gated: bool) -> &'static str {
    if gated {
        ", waiting for admission"
    } else {
        ""
    }
}

fn sys(kind: Kind, id: PeerId) -> Bytes {
    Bytes::copy_from_slice(&frame::system_message(kind, id))
}
