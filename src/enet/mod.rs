//! `ENetMultiplayerPeer`: Godot 3's NetworkedMultiplayerENet over `enet-wrapper`, server and
//! client, wire compatible with real Godot 3.x games (PROTOCOL.md).
//!
//! - `builder`: [`ENetBuilder`], with the options of each role on that role's builder only;
//! - `server`, `client`: the two drivers of the [session core](crate::session);
//! - `stats`: [`TotalStats`] and [`PeerStats`].

mod builder;
mod client;
pub(crate) mod pacing;
mod stats;

pub use builder::{
    ClientRole, ENetBuilder, ServerRole, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_SERVER_SOCKET_BUFFER,
};
pub use enet_wrapper::Compression;
pub use stats::{PeerStats, TotalStats};

use crate::error::{Error, Result};
use crate::peer::{
    ConnectionStatus, MultiplayerPeer, Packet, PeerEvent, PeerId, PeerQueues, Polled, SendSettings,
    Target, TransferMode, SERVER_ID,
};
use crate::protocol::{self, Header, HEADER_LEN, SYSTEM_CHANNELS};
use crate::relay::{DropCounts, DropReason};
use crate::server::ServerDriver;
use crate::session::Limits;
use crate::websocket::WebSocketStats;
use builder::Common;
use client::ClientDriver;
use enet_wrapper::{Host, PeerHandle};
use std::net::SocketAddrV4;
use std::time::Duration;

/// Most events handled by one poll, so a flood cannot keep a poll from returning.
pub(crate) const MAX_EVENTS_PER_POLL: usize = 8192;

/// What both drivers keep of their ENet host: the host itself while active, the totals, the
/// limits and options.
#[derive(Debug)]
pub(crate) struct HostState {
    pub(crate) host: Option<Host>,
    pub(crate) stats: TotalStats,
    pub(crate) limits: Limits,
    pub(crate) common: Common,
    /// ENet's rejections (oversize, channel) and handshakes of the host once it is closed.
    closed: (u64, u64, u64),
    /// Server: the most bytes ENet may hold for one client (0: no cap).
    pub(crate) max_queued: usize,
    /// Server: when the queues were last checked against `max_queued`.
    pub(crate) queues_checked: Option<std::time::Instant>,
}

impl HostState {
    pub(crate) fn new(host: Host, limits: Limits, common: Common) -> HostState {
        HostState {
            host: Some(host),
            stats: TotalStats::default(),
            limits,
            common,
            closed: (0, 0, 0),
            max_queued: 0,
            queues_checked: None,
        }
    }

    /// The packet Godot sends for `data`: the 8-byte header, the flags of `mode`, and the ENet
    /// channel of `mode` on logical `channel`.
    pub(crate) fn packet(
        &self,
        source: PeerId,
        target: i32,
        mode: TransferMode,
        channel: u8,
        data: &[u8],
    ) -> Result<(enet_wrapper::Packet, u8)> {
        let count = self.limits.logical_channels;
        let enet_channel = protocol::enet_channel(mode, channel)
            .ok_or(Error::ChannelOutOfRange { channel, count })?;
        let header = Header { source, target }.encode();
        let flags = protocol::packet_flags(mode, self.common.always_ordered);
        let packet = enet_wrapper::Packet::from_parts(&[&header, data], flags)?;
        Ok((packet, enet_channel))
    }

    /// Counts `sent` copies of a `len`-byte payload and flushes if every send should.
    pub(crate) fn sent(&mut self, sent: usize, len: usize) {
        self.stats.packets_out += sent as u64;
        self.stats.bytes_out += (sent * (len + HEADER_LEN)) as u64;
        if self.common.flush_every_send {
            if let Some(host) = self.host.as_mut() {
                host.flush();
            }
        }
    }

    /// ENet's channel refusal in the logical channel's terms.
    pub(crate) fn channel_error(e: enet_wrapper::Error, channel: u8) -> Error {
        match e {
            enet_wrapper::Error::ChannelOutOfRange { count: n, .. } => Error::ChannelOutOfRange {
                channel,
                count: (n.saturating_sub(SYSTEM_CHANNELS) as u16).max(1),
            },
            other => Error::Enet(other),
        }
    }

    /// Destroys the host, keeping its counts.
    pub(crate) fn close_host(&mut self) {
        if let Some(host) = self.host.take() {
            let (oversize, channel) = host.rejected();
            self.closed.0 += oversize;
            self.closed.1 += channel;
            self.closed.2 += host.handshakes_started();
        }
    }

    pub(crate) fn stats(&self) -> TotalStats {
        let mut s = self.stats;
        let (mut oversize, mut channel, mut handshakes) = self.closed;
        if let Some(host) = self.host.as_ref() {
            let (o, c) = host.rejected();
            oversize += o;
            channel += c;
            handshakes += host.handshakes_started();
        }
        s.drops.set(DropReason::Oversize, oversize);
        s.drops.set(DropReason::ChannelOutOfRange, channel);
        s.handshakes += handshakes;
        s
    }

    pub(crate) fn peer_stats(
        &self,
        id: PeerId,
        link: PeerHandle,
        mut drops: DropCounts,
    ) -> Result<PeerStats> {
        let host = self.host.as_ref().ok_or(Error::UnknownPeer(id))?;
        let info = host.peer_info(link)?;
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
}

#[derive(Debug)]
enum Driver {
    Server(Box<ServerDriver>),
    Client(Box<ClientDriver>),
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
    driver: Driver,
}

impl ENetMultiplayerPeer {
    /// A server listening on `port` (0 picks a free one; see [`local_port`](Self::local_port)).
    pub fn server(port: u16) -> ENetBuilder<ServerRole> {
        ENetBuilder::server(port)
    }

    /// A client of the server at `address` (a host name or an IPv4 address) and `port`.
    pub fn client(address: impl Into<String>, port: u16) -> ENetBuilder<ClientRole> {
        ENetBuilder::client(address.into(), port)
    }

    fn from_server(driver: ServerDriver) -> ENetMultiplayerPeer {
        ENetMultiplayerPeer {
            driver: Driver::Server(Box::new(driver)),
        }
    }

    fn from_client(driver: ClientDriver) -> ENetMultiplayerPeer {
        ENetMultiplayerPeer {
            driver: Driver::Client(Box::new(driver)),
        }
    }

    fn state(&self) -> &HostState {
        match &self.driver {
            Driver::Server(s) => s.enet.as_ref().expect("an ENet server has a host state"),
            Driver::Client(c) => &c.state,
        }
    }

    /// The local UDP port, while active.
    pub fn local_port(&self) -> Option<u16> {
        let host = self.state().host.as_ref()?;
        host.local_address().ok().map(|a| a.port())
    }

    /// The UDP socket's buffer sizes as the kernel reports them (see
    /// [`ENetBuilder::socket_buffer_size`]), while active.
    pub fn socket_buffers(&self) -> Option<enet_wrapper::SocketBuffers> {
        self.state().host.as_ref()?.socket_buffers().ok()
    }

    /// Server: the TCP port of the attached WebSocket transport
    /// ([`ENetBuilder::websocket`]), while listening.
    pub fn websocket_port(&self) -> Option<u16> {
        match &self.driver {
            Driver::Server(s) => s.websocket_port(),
            Driver::Client(_) => None,
        }
    }

    /// Server: the counts of the attached WebSocket transport. [`stats`](Self::stats) counts
    /// every transport together.
    pub fn websocket_stats(&self) -> Option<WebSocketStats> {
        match &self.driver {
            Driver::Server(s) => s.websocket_stats(),
            Driver::Client(_) => None,
        }
    }

    /// Server: whether client `id` came by WebSocket (false for ENet clients and unknown ids).
    pub fn is_websocket_peer(&self, id: PeerId) -> bool {
        match &self.driver {
            Driver::Server(s) => s.is_websocket_peer(id),
            Driver::Client(_) => false,
        }
    }

    /// Totals since creation: traffic, relayed packets, refusals, handshakes and drops by
    /// reason (including what ENet rejected: oversize payloads, channels a connection lacks).
    pub fn stats(&self) -> TotalStats {
        match &self.driver {
            Driver::Server(s) => s.stats(),
            Driver::Client(c) => c.state.stats(),
        }
    }

    /// Server: starts a graceful shutdown, as before an update. New connections are refused
    /// and every client is told the server is closing ([`DisconnectReason::ServerClosed`](crate::DisconnectReason::ServerClosed):
    /// an ENet disconnect once what is queued for it has gone, a WebSocket close frame). Keep
    /// polling: each client's `PeerDisconnected` follows as it acknowledges (or as its
    /// transport gives up on it); once [`peer_ids`](Self::peer_ids) is empty, or a deadline
    /// has passed, [`close`](MultiplayerPeer::close). Returns how many clients were told; a
    /// client does nothing.
    ///
    /// ```
    /// use enet_multiplayer::{ENetMultiplayerPeer, MultiplayerPeer};
    /// use std::time::{Duration, Instant};
    /// let mut server = ENetMultiplayerPeer::server(0)
    ///     .bind_address("127.0.0.1".parse().unwrap())
    ///     .build()?;
    /// server.drain();
    /// let deadline = Instant::now() + Duration::from_secs(2);
    /// while !server.peer_ids().is_empty() && Instant::now() < deadline {
    ///     server.poll_timeout(Duration::from_millis(50))?;
    ///     while server.pop_event().is_some() {}
    /// }
    /// server.close();
    /// # Ok::<(), enet_multiplayer::Error>(())
    /// ```
    pub fn drain(&mut self) -> usize {
        match &mut self.driver {
            Driver::Server(s) => s.drain(),
            Driver::Client(_) => 0,
        }
    }

    /// Server with gated admission ([`ENetBuilder::gated`]): admits client `id`. The others
    /// are told of it and it of them at once, and its packets and theirs flow from now on.
    pub fn approve(&mut self, id: PeerId) -> Result<()> {
        match &mut self.driver {
            Driver::Server(s) => s.approve(id),
            Driver::Client(_) => Err(Error::NotAllowed(crate::NotAllowed::NotAServer)),
        }
    }

    /// Server: disconnects client `id` with [`DisconnectReason::Refused`](crate::DisconnectReason::Refused)`(refusal)` (for a
    /// gated server, a client whose join token did not hold), counted in
    /// [`refusals`](Self::refusals). Its `PeerDisconnected` follows when the link is gone.
    pub fn reject(&mut self, id: PeerId, refusal: crate::Refusal) -> Result<()> {
        match &mut self.driver {
            Driver::Server(s) => s.reject(id, refusal),
            Driver::Client(_) => Err(Error::NotAllowed(crate::NotAllowed::NotAServer)),
        }
    }

    /// Server: whether client `id` is connected and admitted (always, unless gated).
    pub fn is_admitted(&self, id: PeerId) -> bool {
        match &self.driver {
            Driver::Server(s) => s.session.is_admitted(id),
            Driver::Client(_) => false,
        }
    }

    /// Server: connections refused since it started, by reason (a client: all zero).
    pub fn refusals(&self) -> crate::session::RefusalCounts {
        match &self.driver {
            Driver::Server(s) => s.refusals(),
            Driver::Client(_) => crate::session::RefusalCounts::default(),
        }
    }

    /// Ids of the connected peers: on a server its clients; on a client the server and the
    /// clients it announced.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        match &self.driver {
            Driver::Server(s) => s.session.peer_ids().collect(),
            Driver::Client(c) => c.session.peer_ids(),
        }
    }

    /// How many peers [`peer_ids`](Self::peer_ids) would list, without making the list.
    pub fn peer_count(&self) -> usize {
        match &self.driver {
            Driver::Server(s) => s.session.peer_ids().len(),
            Driver::Client(c) => c.session.peer_ids().len(),
        }
    }

    /// Address, round-trip time, loss, traffic and drops of a directly connected peer (a
    /// server's client, or a client's server).
    pub fn peer_stats(&self, id: PeerId) -> Result<PeerStats> {
        match &self.driver {
            Driver::Server(s) => s.peer_stats(id),
            Driver::Client(c) => c.peer_stats(id),
        }
    }

    /// The address of a directly connected peer.
    pub fn peer_address(&self, id: PeerId) -> Result<SocketAddrV4> {
        Ok(self.peer_stats(id)?.address)
    }

    fn queues_ref(&self) -> &PeerQueues {
        match &self.driver {
            Driver::Server(s) => s.session.queues(),
            Driver::Client(c) => c.session.queues(),
        }
    }

    fn queues_mut(&mut self) -> &mut PeerQueues {
        match &mut self.driver {
            Driver::Server(s) => s.session.queues_mut(),
            Driver::Client(c) => c.session.queues_mut(),
        }
    }
}

impl MultiplayerPeer for ENetMultiplayerPeer {
    fn queues(&self) -> &PeerQueues {
        self.queues_ref()
    }

    fn pop_event(&mut self) -> Option<PeerEvent> {
        self.queues_mut().pop_event()
    }

    fn get_packet(&mut self) -> Option<Packet> {
        self.queues_mut().pop_packet()
    }

    fn poll(&mut self) -> Result<Polled> {
        self.poll_timeout(Duration::ZERO)
    }

    fn poll_timeout(&mut self, timeout: Duration) -> Result<Polled> {
        match &mut self.driver {
            Driver::Server(s) => s.poll(timeout),
            Driver::Client(c) => c.poll(timeout),
        }
    }

    fn send(&mut self, target: Target, mode: TransferMode, channel: u8, data: &[u8]) -> Result<()> {
        match &mut self.driver {
            Driver::Server(s) => s.send(target, mode, channel, data),
            Driver::Client(c) => c.send(target, mode, channel, data),
        }
    }

    fn settings(&self) -> &SendSettings {
        match &self.driver {
            Driver::Server(s) => &s.settings,
            Driver::Client(c) => &c.settings,
        }
    }

    fn settings_mut(&mut self) -> &mut SendSettings {
        match &mut self.driver {
            Driver::Server(s) => &mut s.settings,
            Driver::Client(c) => &mut c.settings,
        }
    }

    fn unique_id(&self) -> PeerId {
        match &self.driver {
            Driver::Server(s) if s.is_open() => SERVER_ID,
            Driver::Server(_) => 0,
            Driver::Client(c) => c.session.id(),
        }
    }

    fn connection_status(&self) -> ConnectionStatus {
        match &self.driver {
            Driver::Server(s) => s.status(),
            Driver::Client(c) => c.session.status(),
        }
    }

    fn is_server(&self) -> bool {
        matches!(self.driver, Driver::Server(_))
    }

    fn is_server_relay_supported(&self) -> bool {
        match &self.driver {
            Driver::Server(s) => s.session.config().relay,
            // A client cannot know; like Godot, it assumes the server relays.
            Driver::Client(_) => true,
        }
    }

    fn set_refuse_new_connections(&mut self, refuse: bool) {
        match &mut self.driver {
            Driver::Server(s) => s.session.set_refuse_new_connections(refuse),
            Driver::Client(c) => c.refuse = refuse,
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        match &self.driver {
            Driver::Server(s) => s.session.is_refusing_new_connections(),
            Driver::Client(c) => c.refuse,
        }
    }

    fn disconnect_peer(&mut self, id: PeerId, force: bool) -> Result<()> {
        match &mut self.driver {
            Driver::Server(s) => s.kick(id, force),
            Driver::Client(c) if id == SERVER_ID => c.leave(force),
            Driver::Client(_) => Err(Error::NotAllowed(
                crate::error::NotAllowed::ClientDisconnectsClient,
            )),
        }
    }

    fn close(&mut self) {
        match &mut self.driver {
            Driver::Server(s) => s.close(),
            Driver::Client(c) => c.close(),
        }
    }

    fn max_packet_size(&self) -> usize {
        match &self.driver {
            Driver::Server(s) => s.limits.max_packet_size,
            Driver::Client(c) => c.state.limits.max_packet_size,
        }
    }
}

impl Drop for ENetMultiplayerPeer {
    fn drop(&mut self) {
        let open = match &self.driver {
            Driver::Server(s) => s.is_open(),
            Driver::Client(c) => c.state.host.is_some(),
        };
        if open {
            self.close();
        }
    }
}
