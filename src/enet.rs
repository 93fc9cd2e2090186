//! `ENetMultiplayerPeer`: Godot 3's NetworkedMultiplayerENet over `enet-wrapper`, server and
//! client, wire compatible with real Godot 3.x games (PROTOCOL.md).

use crate::error::{Error, Result};
use crate::peer::{
    check_target, ConnectionStatus, DisconnectReason, MultiplayerPeer, Packet, PeerEvent, PeerId,
    PeerQueues, Refusal, SendSettings, Target, TransferMode, MAX_PEER_ID, SERVER_ID,
};
use crate::protocol::{
    self, Header, SystemMessage, CHANNEL_CONFIG, HEADER_LEN, MAX_LOGICAL_CHANNEL, SYSTEM_CHANNELS,
};
use crate::relay::{self, DropCounts, DropReason, Forward};
use bytes::Bytes;
use enet_wrapper::{Event, Host, HostConfig, PacketFlags, PeerHandle, SlotUsage, Timeout};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use enet_wrapper::Compression;

/// Most events handled by one poll, so a flood cannot keep a poll from returning.
const MAX_EVENTS_PER_POLL: usize = 8192;
/// Extra ENet peer slots beyond `max_clients`, so a server can answer surplus connections with
/// a refusal instead of silence.
const SPARE_SLOTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Server { port: u16, max_clients: usize },
    Client { address: String, port: u16 },
}

/// Builds an [`ENetMultiplayerPeer`]: start with [`ENetMultiplayerPeer::server`] or
/// [`ENetMultiplayerPeer::client`].
///
/// # Compression must match
/// The default is ENet's range coder, which is what Godot 3.4+ (and Redot 3) use by default.
/// **Godot 3.2 and 3.3 default to no compression.** A connection between two ends that disagree
/// never completes and nothing says why, so set `.compression(Compression::None)` for Godot
/// 3.2/3.3 games (or set their `compression_mode` to `COMPRESS_RANGE_CODER`).
///
/// ```
/// use enet_multiplayer::{Compression, ENetMultiplayerPeer};
/// let server = ENetMultiplayerPeer::server(0)
///     .bind_address("127.0.0.1".parse().unwrap())
///     .max_clients(8)
///     .compression(Compression::None)
///     .build()?;
/// assert!(server.local_port().unwrap() > 0);
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ENetBuilder {
    mode: Mode,
    bind: Option<Ipv4Addr>,
    local_port: u16,
    extra_channels: u8,
    channel_limit: Option<usize>,
    bandwidth: (u32, u32),
    relay: bool,
    always_ordered: bool,
    compression: Compression,
    timeout: Option<(u32, u32, u32)>,
    flush_every_send: bool,
    max_packet_size: Option<usize>,
    rate_limit: Option<u32>,
    handshake_ms: u32,
}

/// Default longest handshake a server waits for (see [`ENetBuilder::handshake_timeout_ms`]).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 5000;

impl ENetBuilder {
    fn new(mode: Mode) -> ENetBuilder {
        ENetBuilder {
            mode,
            bind: None,
            local_port: 0,
            extra_channels: 0,
            channel_limit: None,
            bandwidth: (0, 0),
            relay: true,
            always_ordered: false,
            compression: Compression::RangeCoder,
            timeout: None,
            flush_every_send: false,
            max_packet_size: None,
            rate_limit: None,
            handshake_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }

    /// Server: most clients at once, 1..=4095 (default 32).
    pub fn max_clients(mut self, n: usize) -> Self {
        if let Mode::Server { max_clients, .. } = &mut self.mode {
            *max_clients = n;
        }
        self
    }

    /// The local address to bind (server: where to listen, default all interfaces).
    pub fn bind_address(mut self, ip: Ipv4Addr) -> Self {
        self.bind = Some(ip);
        self
    }

    /// Client: the local UDP port (default 0, any).
    pub fn local_port(mut self, port: u16) -> Self {
        self.local_port = port;
        self
    }

    /// Logical channels beyond the default channel 0 (Godot's `channel_count - 3`), 0..=252.
    pub fn extra_channels(mut self, n: u8) -> Self {
        self.extra_channels = n;
        self
    }

    /// Server: the most ENet channels a connection may negotiate (default `3 + extra_channels`).
    /// A relay that should carry every channel its clients use sets 255.
    pub fn channel_limit(mut self, n: usize) -> Self {
        self.channel_limit = Some(n);
        self
    }

    /// Incoming and outgoing bandwidth in bytes/second; 0 = unlimited (default).
    pub fn bandwidth(mut self, incoming: u32, outgoing: u32) -> Self {
        self.bandwidth = (incoming, outgoing);
        self
    }

    /// Server: relay client-to-client packets and announce peers (default on, as Godot).
    pub fn server_relay(mut self, on: bool) -> Self {
        self.relay = on;
        self
    }

    /// Send unreliable packets sequenced, like unreliable-ordered (Godot's `always_ordered`).
    pub fn always_ordered(mut self, on: bool) -> Self {
        self.always_ordered = on;
        self
    }

    /// Datagram compression; see the type-level note: it must match the other end.
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    /// ENet peer timeouts for every connection: `limit`, `min_ms`, `max_ms` (0 keeps ENet's
    /// default for that value: 32, 5000 ms, 30000 ms).
    pub fn peer_timeout(mut self, limit: u32, min_ms: u32, max_ms: u32) -> Self {
        self.timeout = Some((limit, min_ms, max_ms));
        self
    }

    /// Flush after every send (Godot's exact timing) instead of once per poll (default).
    pub fn flush_every_send(mut self, on: bool) -> Self {
        self.flush_every_send = on;
        self
    }

    /// Largest payload, in bytes (default: ENet's 32 MiB limit minus the 8-byte header). Larger
    /// incoming packets are refused by ENet.
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = Some(bytes);
        self
    }

    /// Server: most packets per second accepted from one client; the excess is dropped and
    /// counted as [`DropReason::RateLimited`] (default: no limit).
    pub fn rate_limit(mut self, packets_per_second: Option<u32>) -> Self {
        self.rate_limit = packets_per_second;
        self
    }

    /// Server: when three quarters or more of the peer slots are taken, the longest a connection
    /// may stay half-open (connect request received, handshake not completed) before its slot
    /// is freed, in milliseconds (default 5000; the peer timeout applies if shorter). ENet's own
    /// default is about 30 s, which would let a flood of forged connect requests lock new
    /// clients out that long; with slots to spare, handshakes keep ENet's patient defaults.
    pub fn handshake_timeout_ms(mut self, ms: u32) -> Self {
        self.handshake_ms = ms;
        self
    }

    /// Creates the peer: a server starts listening, a client starts connecting.
    pub fn build(self) -> Result<ENetMultiplayerPeer> {
        if self.extra_channels > MAX_LOGICAL_CHANNEL {
            return Err(Error::InvalidConfig(format!(
                "extra channels {} above {MAX_LOGICAL_CHANNEL}",
                self.extra_channels
            )));
        }
        let channels = SYSTEM_CHANNELS + usize::from(self.extra_channels);
        let max_packet =
            match self.max_packet_size {
                Some(0) => return Err(Error::InvalidConfig("max packet size 0".into())),
                Some(n) => Some(n.checked_add(HEADER_LEN).ok_or_else(|| {
                    Error::InvalidConfig(format!("max packet size {n} too large"))
                })?),
                None => None,
            };
        if self.rate_limit == Some(0) {
            return Err(Error::InvalidConfig("rate limit of 0 packets/s".into()));
        }
        let base = |bind: Option<SocketAddrV4>| {
            HostConfig::client()
                .bind(bind)
                .bandwidth(self.bandwidth.0, self.bandwidth.1)
                .compression(self.compression)
                .max_packet_size(max_packet)
        };
        let opts = Options {
            relay: self.relay,
            always_ordered: self.always_ordered,
            timeout: self.timeout,
            flush_every_send: self.flush_every_send,
            logical_channels: u16::from(self.extra_channels) + 1,
            rate_limit: self.rate_limit,
        };
        match self.mode {
            Mode::Server { port, max_clients } => {
                if !(1..=enet_wrapper::MAX_PEERS).contains(&max_clients) {
                    return Err(Error::InvalidConfig(format!(
                        "max clients {max_clients} is outside 1..={}",
                        enet_wrapper::MAX_PEERS
                    )));
                }
                let limit = self.channel_limit.unwrap_or(channels);
                if !(channels..=enet_wrapper::MAX_CHANNELS).contains(&limit) {
                    return Err(Error::InvalidConfig(format!(
                        "channel limit {limit} is outside {channels}..={}",
                        enet_wrapper::MAX_CHANNELS
                    )));
                }
                if self.handshake_ms == 0 {
                    return Err(Error::InvalidConfig("handshake timeout of 0 ms".into()));
                }
                let bind = SocketAddrV4::new(self.bind.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
                let mut host = Host::new(
                    &base(Some(bind))
                        .peer_limit((max_clients + SPARE_SLOTS).min(enet_wrapper::MAX_PEERS))
                        .channel_limit(limit),
                )?;
                // Once three quarters or more of the slots are taken, half-open handshakes get
                // the handshake timeout (the wrapper gives ENet's defaults back on connect).
                let short = Timeout::from(handshake_timeout(self.timeout, self.handshake_ms));
                host.set_handshake_policy(Some(Box::new(move |u: SlotUsage| {
                    (u.in_use * 4 >= u.limit * 3).then_some(short)
                })));
                log::info!("server listening on {bind} (max {max_clients} clients)");
                Ok(ENetMultiplayerPeer::new(
                    host,
                    Role::Server { max_clients },
                    SERVER_ID,
                    ConnectionStatus::Connected,
                    opts,
                ))
            }
            Mode::Client { address, port } => {
                let remote = resolve(&address, port)?;
                let bind = (self.bind.is_some() || self.local_port != 0).then(|| {
                    SocketAddrV4::new(self.bind.unwrap_or(Ipv4Addr::UNSPECIFIED), self.local_port)
                });
                let mut host = Host::new(&base(bind).peer_limit(1).channel_limit(channels))?;
                let id = crate::peer::generate_unique_id();
                let server = host.connect(remote, channels, id)?;
                if let Some((limit, min, max)) = opts.timeout {
                    host.peer_mut(server)?.set_timeout(limit, min, max);
                }
                log::info!("client {id} connecting to {remote}");
                let mut peer = ENetMultiplayerPeer::new(
                    host,
                    Role::Client,
                    id,
                    ConnectionStatus::Connecting,
                    opts,
                );
                peer.server = Some(server);
                Ok(peer)
            }
        }
    }
}

/// The handshake timeout: the peer timeout (ENet's defaults for its zero values), each bound
/// capped at `cap_ms`.
fn handshake_timeout(peer: Option<(u32, u32, u32)>, cap_ms: u32) -> (u32, u32, u32) {
    let (limit, min, max) = peer.unwrap_or((0, 0, 0));
    let or = |v: u32, default: u32| if v == 0 { default } else { v };
    (
        or(limit, enet_sys_defaults::TIMEOUT_LIMIT),
        or(min, enet_sys_defaults::TIMEOUT_MINIMUM).min(cap_ms),
        or(max, enet_sys_defaults::TIMEOUT_MAXIMUM).min(cap_ms),
    )
}

/// ENet 1.3's peer timeout defaults (`ENET_PEER_TIMEOUT_*`).
mod enet_sys_defaults {
    pub const TIMEOUT_LIMIT: u32 = 32;
    pub const TIMEOUT_MINIMUM: u32 = 5000;
    pub const TIMEOUT_MAXIMUM: u32 = 30000;
}

fn resolve(address: &str, port: u16) -> Result<SocketAddrV4> {
    let addrs = (address, port)
        .to_socket_addrs()
        .map_err(|e| Error::Resolve {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    for a in addrs {
        if let SocketAddr::V4(v4) = a {
            return Ok(v4);
        }
    }
    Err(Error::Resolve {
        address: address.to_string(),
        reason: "no IPv4 address (ENet 1.3 speaks IPv4 only)".into(),
    })
}

#[derive(Debug, Clone, Copy)]
struct Options {
    relay: bool,
    always_ordered: bool,
    timeout: Option<(u32, u32, u32)>,
    flush_every_send: bool,
    logical_channels: u16,
    rate_limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Server { max_clients: usize },
    Client,
}

#[derive(Debug)]
struct Remote {
    handle: PeerHandle,
    drops: DropCounts,
    window_start: Instant,
    window_packets: u32,
}

/// Totals since the peer was created, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalStats {
    /// Data packets received from the network.
    pub packets_in: u64,
    /// Their bytes, headers included.
    pub bytes_in: u64,
    /// Packets queued for sending (one per destination), system messages included.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Client packets the server forwarded (one per destination).
    pub relayed: u64,
    /// Connections refused.
    pub refused: u64,
    /// Server: incoming handshakes started, completed or not (a flood of forged connect
    /// requests shows here and nowhere else).
    pub handshakes: u64,
    /// Dropped packets, by reason.
    pub drops: DropCounts,
}

/// One connected peer as seen from here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerStats {
    /// Its address.
    pub address: SocketAddrV4,
    /// Mean round-trip time, in milliseconds.
    pub round_trip_time: u32,
    /// Round-trip time variance, in milliseconds.
    pub round_trip_time_variance: u32,
    /// Mean loss of reliable packets, 0.0 ..= 1.0.
    pub packet_loss: f32,
    /// Packets sent to it.
    pub packets_sent: u64,
    /// Bytes sent to it.
    pub bytes_sent: u64,
    /// Packets received from it.
    pub packets_received: u64,
    /// Bytes received from it.
    pub bytes_received: u64,
    /// Its packets this peer dropped, by reason.
    pub drops: DropCounts,
}

/// Godot 3's `NetworkedMultiplayerENet`: a server (id 1) that relays between its clients, or a
/// client, speaking Godot 3.x's wire protocol over ENet.
///
/// ```
/// use enet_multiplayer::{Compression, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, Target, TransferMode};
/// use std::time::{Duration, Instant};
///
/// let mut server = ENetMultiplayerPeer::server(0).bind_address("127.0.0.1".parse().unwrap()).build()?;
/// let port = server.local_port().unwrap();
/// let mut client = ENetMultiplayerPeer::client("127.0.0.1", port).build()?;
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let mut got = None;
/// while got.is_none() && Instant::now() < deadline {
///     server.poll_timeout(Duration::from_millis(1))?;
///     client.poll()?;
///     while let Some(event) = client.pop_event() {
///         if event == PeerEvent::ConnectionSucceeded {
///             client.send(Target::Server, TransferMode::Reliable, 0, b"hello")?;
///         }
///     }
///     got = server.get_packet();
/// }
/// let packet = got.expect("the server got the packet");
/// assert_eq!(packet.from, client.unique_id());
/// assert_eq!(&packet.data[..], b"hello");
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
#[derive(Debug)]
pub struct ENetMultiplayerPeer {
    host: Option<Host>,
    role: Role,
    opts: Options,
    status: ConnectionStatus,
    unique_id: PeerId,
    refuse: bool,
    /// Server: connected clients by id, ascending (Godot's order for ADD_PEER).
    clients: BTreeMap<PeerId, Remote>,
    /// Server: ENet slot index -> client id (0 = none).
    slot_ids: Vec<PeerId>,
    /// Client: the connection to the server.
    server: Option<PeerHandle>,
    /// Client: the drop counts of the server connection.
    server_drops: DropCounts,
    /// Client: other clients announced by the server.
    known: BTreeSet<PeerId>,
    queues: PeerQueues,
    settings: SendSettings,
    stats: TotalStats,
    /// ENet's rejections (oversize, channel) of hosts already closed.
    closed_rejects: (u64, u64),
}

impl ENetMultiplayerPeer {
    /// A server listening on `port` (0 picks a free one; see [`local_port`](Self::local_port)).
    pub fn server(port: u16) -> ENetBuilder {
        ENetBuilder::new(Mode::Server {
            port,
            max_clients: 32,
        })
    }

    /// A client of the server at `address` (a host name or an IPv4 address) and `port`.
    pub fn client(address: impl Into<String>, port: u16) -> ENetBuilder {
        ENetBuilder::new(Mode::Client {
            address: address.into(),
            port,
        })
    }

    fn new(
        host: Host,
        role: Role,
        unique_id: PeerId,
        status: ConnectionStatus,
        opts: Options,
    ) -> ENetMultiplayerPeer {
        ENetMultiplayerPeer {
            slot_ids: vec![0; host.peer_limit()],
            host: Some(host),
            role,
            opts,
            status,
            unique_id,
            refuse: false,
            clients: BTreeMap::new(),
            server: None,
            server_drops: DropCounts::default(),
            known: BTreeSet::new(),
            queues: PeerQueues::default(),
            settings: SendSettings::default(),
            stats: TotalStats::default(),
            closed_rejects: (0, 0),
        }
    }

    /// The local UDP port, while active.
    pub fn local_port(&self) -> Option<u16> {
        self.host.as_ref()?.local_address().ok().map(|a| a.port())
    }

    /// Totals since creation: traffic, relayed packets, refusals, handshakes and drops by
    /// reason (including what ENet rejected: oversize payloads, channels a connection lacks).
    pub fn stats(&self) -> TotalStats {
        let mut s = self.stats;
        if let Some(host) = self.host.as_ref() {
            let (oversize, channel) = host.rejected();
            s.drops
                .set(DropReason::Oversize, self.closed_rejects.0 + oversize);
            s.drops.set(
                DropReason::ChannelOutOfRange,
                self.closed_rejects.1 + channel,
            );
            s.handshakes += host.handshakes_started();
        } else {
            s.drops.set(DropReason::Oversize, self.closed_rejects.0);
            s.drops
                .set(DropReason::ChannelOutOfRange, self.closed_rejects.1);
        }
        s
    }

    /// Ids of the connected peers: on a server its clients; on a client the server and the
    /// clients it announced.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        match self.role {
            Role::Server { .. } => self.clients.keys().copied().collect(),
            Role::Client if self.status == ConnectionStatus::Connected => {
                std::iter::once(SERVER_ID)
                    .chain(self.known.iter().copied())
                    .collect()
            }
            Role::Client => Vec::new(),
        }
    }

    fn handle_of(&self, id: PeerId) -> Result<(PeerHandle, &DropCounts)> {
        match self.role {
            Role::Server { .. } => self
                .clients
                .get(&id)
                .map(|r| (r.handle, &r.drops))
                .ok_or(Error::UnknownPeer(id)),
            Role::Client => match (id, self.server, self.status) {
                (SERVER_ID, Some(h), ConnectionStatus::Connected) => Ok((h, &self.server_drops)),
                _ => Err(Error::UnknownPeer(id)),
            },
        }
    }

    /// Address, round-trip time, loss, traffic and drops of a directly connected peer (a
    /// server's client, or a client's server).
    pub fn peer_stats(&self, id: PeerId) -> Result<PeerStats> {
        let (handle, drops) = self.handle_of(id)?;
        let host = self.host.as_ref().ok_or(Error::UnknownPeer(id))?;
        let info = host.peer_info(handle)?;
        let mut drops = *drops;
        drops.set(DropReason::Oversize, info.rejected_oversize);
        drops.set(DropReason::ChannelOutOfRange, info.rejected_channel);
        Ok(PeerStats {
            address: info.address,
            round_trip_time: info.round_trip_time,
            round_trip_time_variance: info.round_trip_time_variance,
            packet_loss: info.packet_loss,
            packets_sent: info.packets_sent,
            bytes_sent: info.bytes_sent,
            packets_received: info.packets_received,
            bytes_received: info.bytes_received,
            drops,
        })
    }

    /// The address of a directly connected peer.
    pub fn peer_address(&self, id: PeerId) -> Result<SocketAddrV4> {
        Ok(self.peer_stats(id)?.address)
    }

    fn poll_inner(&mut self, timeout: Duration) -> Result<()> {
        let mut wait = timeout;
        let mut drained = false;
        for _ in 0..MAX_EVENTS_PER_POLL {
            let Some(host) = self.host.as_mut() else {
                return Ok(());
            };
            let Some(event) = host.service(wait)? else {
                // A service call that returns no event has sent everything queued.
                drained = true;
                break;
            };
            wait = Duration::ZERO;
            match self.role {
                Role::Server { max_clients } => self.server_event(event, max_clients),
                Role::Client => self.client_event(event),
            }
        }
        if !drained {
            // Stopped at the event cap: what the handled events queued still has to go out.
            if let Some(host) = self.host.as_mut() {
                host.flush();
            }
        }
        Ok(())
    }

    fn drop_packet(&mut self, from: Option<PeerId>, reason: DropReason, detail: &str) {
        self.stats.drops.add(reason);
        let counts = match (self.role, from) {
            (Role::Server { .. }, Some(id)) => self.clients.get_mut(&id).map(|r| &mut r.drops),
            (Role::Client, _) => Some(&mut self.server_drops),
            _ => None,
        };
        let nth = counts.map_or(1, |c| {
            c.add(reason);
            c.get(reason)
        });
        let who = from.map_or_else(|| "unknown sender".to_string(), |id| format!("peer {id}"));
        if nth == 1 {
            log::warn!("dropped packet from {who}: {} ({detail})", reason.name());
        } else {
            log::debug!("dropped packet from {who}: {} ({detail})", reason.name());
        }
    }

    // ---- server side -------------------------------------------------------------------

    fn server_event(&mut self, event: Event, max_clients: usize) {
        match event {
            Event::Connect { peer, data } => self.server_connect(peer, data, max_clients),
            Event::Disconnect { peer, .. } => {
                let id = self.slot_ids[usize::from(peer.index())];
                if id != 0 && self.clients.get(&id).is_some_and(|r| r.handle == peer) {
                    self.remove_client(id, peer.index());
                    log::info!("peer {id} disconnected");
                    self.queues.push_event(PeerEvent::PeerDisconnected(id));
                }
            }
            Event::Receive {
                peer,
                channel,
                packet,
            } => self.server_receive(peer, channel, packet),
        }
    }

    fn server_connect(&mut self, peer: PeerHandle, id: u32, max_clients: usize) {
        let refusal = if self.refuse {
            Some(Refusal::NotAccepting)
        } else if !(2..=MAX_PEER_ID).contains(&id) {
            Some(Refusal::InvalidId)
        } else if self.clients.contains_key(&id) {
            Some(Refusal::IdInUse)
        } else if self.clients.len() >= max_clients {
            Some(Refusal::ServerFull)
        } else {
            None
        };
        let Some(host) = self.host.as_mut() else {
            return;
        };
        if let Some(refusal) = refusal {
            self.stats.refused += 1;
            let address = host.peer_info(peer).map(|i| i.address.to_string());
            log::info!(
                "refused connection from {} with id {id}: {refusal:?}",
                address.unwrap_or_default()
            );
            if let Ok(p) = host.peer_mut(peer) {
                p.disconnect_now(DisconnectReason::Refused(refusal).code());
            }
            return;
        }
        if let (Some(t), Ok(mut p)) = (self.opts.timeout, host.peer_mut(peer)) {
            p.set_timeout(t.0, t.1, t.2);
        }
        if self.opts.relay {
            // Godot's order: ascending ids, each existing client told of the newcomer and the
            // newcomer told of each existing client.
            let existing: Vec<(PeerId, PeerHandle)> =
                self.clients.iter().map(|(i, r)| (*i, r.handle)).collect();
            if !existing.is_empty() {
                self.system_message(existing.iter().map(|e| e.1), SystemMessage::AddPeer(id));
                for (other, _) in &existing {
                    self.system_message([peer], SystemMessage::AddPeer(*other));
                }
            }
        }
        self.slot_ids[usize::from(peer.index())] = id;
        self.clients.insert(
            id,
            Remote {
                handle: peer,
                drops: DropCounts::default(),
                window_start: Instant::now(),
                window_packets: 0,
            },
        );
        log::info!("peer {id} connected");
        self.queues.push_event(PeerEvent::PeerConnected(id));
    }

    fn remove_client(&mut self, id: PeerId, slot: u16) {
        self.clients.remove(&id);
        self.slot_ids[usize::from(slot)] = 0;
        if self.opts.relay && !self.clients.is_empty() {
            let rest: Vec<PeerHandle> = self.clients.values().map(|r| r.handle).collect();
            self.system_message(rest, SystemMessage::RemovePeer(id));
        }
    }

    fn system_message(&mut self, to: impl IntoIterator<Item = PeerHandle>, msg: SystemMessage) {
        let Some(host) = self.host.as_mut() else {
            return;
        };
        match enet_wrapper::Packet::new(&msg.encode(), PacketFlags::RELIABLE) {
            Ok(p) => {
                let n = host.send_many(to, CHANNEL_CONFIG, p) as u64;
                self.stats.packets_out += n;
                self.stats.bytes_out += n * protocol::SYSTEM_MESSAGE_LEN as u64;
            }
            Err(e) => log::error!("could not send {msg:?}: {e}"),
        }
    }

    fn server_receive(&mut self, peer: PeerHandle, channel: u8, packet: enet_wrapper::Packet) {
        let id = self.slot_ids[usize::from(peer.index())];
        self.stats.packets_in += 1;
        self.stats.bytes_in += packet.len() as u64;
        let Some(remote) = self.clients.get_mut(&id).filter(|r| r.handle == peer) else {
            return self.drop_packet(None, DropReason::UnknownSender, "not an accepted client");
        };
        if let Some(limit) = self.opts.rate_limit {
            let now = Instant::now();
            if now.duration_since(remote.window_start) >= Duration::from_secs(1) {
                remote.window_start = now;
                remote.window_packets = 0;
            }
            remote.window_packets += 1;
            if remote.window_packets > limit {
                return self.drop_packet(Some(id), DropReason::RateLimited, "over the limit");
            }
        }
        if channel == CHANNEL_CONFIG {
            return self.drop_packet(Some(id), DropReason::ConfigChannel, "channel 0");
        }
        let header = match Header::decode(packet.data()) {
            Ok(h) => h,
            Err(e) => return self.drop_packet(Some(id), DropReason::ShortPacket, &e.to_string()),
        };
        if header.source != id {
            let detail = format!("claims to be {}", header.source);
            return self.drop_packet(Some(id), DropReason::SpoofedSource, &detail);
        }
        let clients = &self.clients;
        let route = match relay::route(id, header.target, self.opts.relay, |c| {
            clients.contains_key(&c)
        }) {
            Ok(r) => r,
            Err(reason) => {
                let detail = format!("target {}", header.target);
                return self.drop_packet(Some(id), reason, &detail);
            }
        };
        if route.local {
            self.queues.push_packet(Packet {
                from: id,
                channel: protocol::logical_channel(channel).unwrap_or(0),
                mode: protocol::mode_from_flags(packet.flags()),
                data: Bytes::copy_from_slice(&packet.data()[HEADER_LEN..]),
            });
        }
        let Some(host) = self.host.as_mut() else {
            return;
        };
        let len = packet.len() as u64;
        let sent = match route.forward {
            Forward::Nobody => 0,
            Forward::One(dest) => match self.clients.get(&dest) {
                Some(r) => host.send_many([r.handle], channel, packet),
                None => 0,
            },
            all @ Forward::AllExcept { .. } => host.send_many(
                self.clients
                    .iter()
                    .filter(|(c, _)| all.includes(**c))
                    .map(|(_, r)| r.handle),
                channel,
                packet,
            ),
        } as u64;
        self.stats.relayed += sent;
        self.stats.packets_out += sent;
        self.stats.bytes_out += sent * len;
    }

    // ---- client side -------------------------------------------------------------------

    fn client_event(&mut self, event: Event) {
        match event {
            Event::Connect { peer, .. } if Some(peer) == self.server => {
                if let (Some(t), Some(host)) = (self.opts.timeout, self.host.as_mut()) {
                    if let Ok(mut p) = host.peer_mut(peer) {
                        p.set_timeout(t.0, t.1, t.2);
                    }
                }
                self.status = ConnectionStatus::Connected;
                log::info!("connected to the server as {}", self.unique_id);
                self.queues.push_event(PeerEvent::PeerConnected(SERVER_ID));
                self.queues.push_event(PeerEvent::ConnectionSucceeded);
            }
            Event::Connect { peer, .. } => {
                log::warn!("unexpected connection in client slot {}", peer.index());
            }
            Event::Disconnect { data, .. } => {
                let reason = DisconnectReason::from_code(data);
                let event = if self.status == ConnectionStatus::Connected {
                    log::info!("server disconnected ({reason:?})");
                    PeerEvent::ServerDisconnected(reason)
                } else {
                    log::info!("connection failed ({reason:?})");
                    PeerEvent::ConnectionFailed(reason)
                };
                self.shut_down();
                self.queues.push_event(event);
            }
            Event::Receive {
                channel, packet, ..
            } => self.client_receive(channel, packet),
        }
    }

    fn client_receive(&mut self, channel: u8, packet: enet_wrapper::Packet) {
        self.stats.packets_in += 1;
        self.stats.bytes_in += packet.len() as u64;
        if channel == CHANNEL_CONFIG {
            let msg = match SystemMessage::decode(packet.data()) {
                Ok(m) => m,
                Err(e) => {
                    return self.drop_packet(Some(1), DropReason::BadSystemMessage, &e.to_string())
                }
            };
            let valid_other = |id: PeerId| (2..=MAX_PEER_ID).contains(&id) && id != self.unique_id;
            match msg {
                SystemMessage::AddPeer(id) if valid_other(id) && !self.known.contains(&id) => {
                    self.known.insert(id);
                    self.queues.push_event(PeerEvent::PeerConnected(id));
                }
                SystemMessage::RemovePeer(id) if self.known.remove(&id) => {
                    self.queues.push_event(PeerEvent::PeerDisconnected(id));
                }
                other => {
                    let detail = format!("{other:?}");
                    self.drop_packet(Some(1), DropReason::BadSystemMessage, &detail);
                }
            }
            return;
        }
        let header = match Header::decode(packet.data()) {
            Ok(h) => h,
            Err(e) => return self.drop_packet(Some(1), DropReason::ShortPacket, &e.to_string()),
        };
        self.queues.push_packet(Packet {
            from: header.source,
            channel: protocol::logical_channel(channel).unwrap_or(0),
            mode: protocol::mode_from_flags(packet.flags()),
            data: Bytes::copy_from_slice(&packet.data()[HEADER_LEN..]),
        });
    }

    /// Forgets the connection state after the host is gone (received packets stay queued).
    fn shut_down(&mut self) {
        if let Some(host) = self.host.take() {
            let (oversize, channel) = host.rejected();
            self.closed_rejects.0 += oversize;
            self.closed_rejects.1 += channel;
            self.stats.handshakes += host.handshakes_started();
        }
        self.server = None;
        self.clients.clear();
        self.known.clear();
        self.slot_ids.iter_mut().for_each(|s| *s = 0);
        self.status = ConnectionStatus::Disconnected;
        self.unique_id = 0;
    }

    // ---- sending -----------------------------------------------------------------------

    fn send_inner(
        &mut self,
        target: Target,
        mode: TransferMode,
        channel: u8,
        data: &[u8],
    ) -> Result<()> {
        if self.status != ConnectionStatus::Connected {
            return Err(Error::NotConnected(self.status));
        }
        let (target, target_int) = match self.role {
            Role::Server { .. } => {
                check_target(target, SERVER_ID, |id| self.clients.contains_key(&id))?
            }
            Role::Client => check_target(target, self.unique_id, |id| self.known.contains(&id))?,
        };
        let count = self.opts.logical_channels;
        if u16::from(channel) >= count {
            return Err(Error::ChannelOutOfRange { channel, count });
        }
        let enet_ch = protocol::enet_channel(mode, channel)
            .ok_or(Error::ChannelOutOfRange { channel, count })?;
        let max = self.max_packet_size();
        if data.len() > max {
            return Err(Error::PacketTooLarge {
                size: data.len(),
                max,
            });
        }
        let header = Header {
            source: self.unique_id,
            target: target_int,
        }
        .encode();
        let flags = protocol::packet_flags(mode, self.opts.always_ordered);
        let host = self.host.as_mut().ok_or(Error::NotConnected(self.status))?;
        let packet = enet_wrapper::Packet::from_parts(&[&header, data], flags)?;
        let map_channel = |e: enet_wrapper::Error| match e {
            enet_wrapper::Error::ChannelOutOfRange { count: n, .. } => Error::ChannelOutOfRange {
                channel,
                count: (n.saturating_sub(SYSTEM_CHANNELS) as u16).max(1),
            },
            other => Error::Enet(other),
        };
        let sent = match self.role {
            Role::Server { .. } => {
                if let Target::Peer(id) = target {
                    let handle = self.clients[&id].handle;
                    host.peer_mut(handle)?
                        .send(enet_ch, packet)
                        .map_err(map_channel)?;
                    1
                } else {
                    let skip = match target {
                        Target::AllExcept(id) => id,
                        _ => 0,
                    };
                    host.send_many(
                        self.clients
                            .iter()
                            .filter(|(c, _)| **c != skip)
                            .map(|(_, r)| r.handle),
                        enet_ch,
                        packet,
                    )
                }
            }
            Role::Client => {
                let server = self.server.ok_or(Error::NotConnected(self.status))?;
                host.peer_mut(server)?
                    .send(enet_ch, packet)
                    .map_err(map_channel)?;
                1
            }
        };
        self.stats.packets_out += sent as u64;
        self.stats.bytes_out += (sent * (data.len() + HEADER_LEN)) as u64;
        if self.opts.flush_every_send {
            host.flush();
        }
        Ok(())
    }
}

impl MultiplayerPeer for ENetMultiplayerPeer {
    fn queues(&self) -> &PeerQueues {
        &self.queues
    }

    fn queues_mut(&mut self) -> &mut PeerQueues {
        &mut self.queues
    }

    fn poll(&mut self) -> Result<()> {
        self.poll_inner(Duration::ZERO)
    }

    fn poll_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.poll_inner(timeout)
    }

    fn send(&mut self, target: Target, mode: TransferMode, channel: u8, data: &[u8]) -> Result<()> {
        self.send_inner(target, mode, channel, data)
    }

    fn settings(&self) -> &SendSettings {
        &self.settings
    }

    fn settings_mut(&mut self) -> &mut SendSettings {
        &mut self.settings
    }

    fn unique_id(&self) -> PeerId {
        self.unique_id
    }

    fn connection_status(&self) -> ConnectionStatus {
        self.status
    }

    fn is_server(&self) -> bool {
        matches!(self.role, Role::Server { .. })
    }

    fn is_server_relay_supported(&self) -> bool {
        match self.role {
            Role::Server { .. } => self.opts.relay,
            // A client cannot know; like Godot, it assumes the server relays.
            Role::Client => true,
        }
    }

    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    fn disconnect_peer(&mut self, id: PeerId, force: bool) -> Result<()> {
        match self.role {
            Role::Client if id == SERVER_ID => {
                let server = self.server.ok_or(Error::NotConnected(self.status))?;
                if force {
                    self.close();
                } else if let Some(host) = self.host.as_mut() {
                    host.peer_mut(server)?.disconnect_later(0);
                }
                Ok(())
            }
            Role::Client => Err(Error::NotAllowed(
                "a client can only disconnect from the server (id 1)",
            )),
            Role::Server { .. } => {
                let handle = self.clients.get(&id).ok_or(Error::UnknownPeer(id))?.handle;
                let host = self.host.as_mut().ok_or(Error::UnknownPeer(id))?;
                let code = DisconnectReason::Kicked.code();
                if force {
                    if let Ok(p) = host.peer_mut(handle) {
                        p.disconnect_now(code);
                    }
                    self.remove_client(id, handle.index());
                    log::info!("peer {id} kicked");
                } else {
                    host.peer_mut(handle)?.disconnect_later(code);
                }
                Ok(())
            }
        }
    }

    fn close(&mut self) {
        if let Some(host) = self.host.as_mut() {
            let code = match self.role {
                Role::Server { .. } => DisconnectReason::ServerClosed.code(),
                Role::Client => 0,
            };
            let handles: Vec<PeerHandle> = match self.role {
                Role::Server { .. } => self.clients.values().map(|r| r.handle).collect(),
                Role::Client => self.server.into_iter().collect(),
            };
            for h in handles {
                if let Ok(p) = host.peer_mut(h) {
                    p.disconnect_now(code);
                }
            }
            host.flush();
            log::info!("closed");
        }
        self.shut_down();
        self.queues.clear();
    }

    fn max_packet_size(&self) -> usize {
        self.host
            .as_ref()
            .map_or(enet_wrapper::DEFAULT_MAX_PACKET_SIZE, |h| {
                h.max_packet_size()
            })
            - HEADER_LEN
    }
}

impl Drop for ENetMultiplayerPeer {
    fn drop(&mut self) {
        if self.host.is_some() {
            self.close();
        }
    }
}
