//! `WebSocketMultiplayerPeer`: Godot 3's `WebSocketServer` / `WebSocketClient` used as a
//! game's network peer (WEBSOCKET.md), so browser builds (HTML5 export: no UDP) can play.
//!
//! - `frame`: the 9-byte header and the system messages (pure);
//! - `conn`: one non-blocking connection (tungstenite does RFC 6455; rustls does `wss`);
//! - `listener`: the server's transport (accepting, upgrading, limits, timeouts);
//! - `client`: the client's driver of [`ClientSession`](crate::session::ClientSession).
//!
//! The server is the same driver as ENet's: a [`WebSocketListen`] attached to
//! [`ENetBuilder::websocket`](crate::ENetBuilder::websocket) puts WebSocket clients in the room
//! of an ENet server; [`WebSocketMultiplayerPeer::server`] is that server without ENet.
//!
//! ```
//! use enet_multiplayer::{MultiplayerPeer, PeerEvent, Target, TransferMode, WebSocketMultiplayerPeer};
//! use std::time::{Duration, Instant};
//!
//! let mut server = WebSocketMultiplayerPeer::server(0).bind_address("127.0.0.1".parse().unwrap()).build()?;
//! let port = server.local_port().unwrap();
//! let mut client = WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{port}")).build()?;
//! let deadline = Instant::now() + Duration::from_secs(5);
//! let mut got = None;
//! while got.is_none() && Instant::now() < deadline {
//!     server.poll_timeout(Duration::from_millis(1))?;
//!     client.poll_timeout(Duration::from_millis(1))?;
//!     while let Some(event) = client.pop_event() {
//!         if event == PeerEvent::ConnectionSucceeded {
//!             client.send(Target::Server, TransferMode::Reliable, 0, b"hello")?;
//!         }
//!     }
//!     got = server.get_packet();
//! }
//! let packet = got.expect("the server got the packet");
//! assert_eq!((packet.from, &packet.data[..]), (client.unique_id(), &b"hello"[..]));
//! # Ok::<(), enet_multiplayer::Error>(())
//! ```

mod client;
pub(crate) mod conn;
pub mod frame;
pub(crate) mod listener;

pub use frame::{GODOT_MAX_MESSAGE, GODOT_MAX_PAYLOAD, WS_HEADER_LEN};

pub(crate) use conn::Ended;

use crate::enet::{PeerStats, TotalStats};
use crate::error::{Error, Result};
use crate::peer::{
    ConnectionStatus, DisconnectReason, MultiplayerPeer, Packet, PeerEvent, PeerId, PeerQueues,
    Polled, SendSettings, Target, TransferMode, SERVER_ID,
};
use crate::relay::DropCounts;
use crate::server::{ServerDriver, ServerPackets};
use crate::session::{Limits, ServerConfig, ServerSession};
use client::ClientDriver;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// The WebSocket close code that carries one of this crate's disconnect reasons: 4000 + its
/// ENet disconnect code (RFC 6455 leaves 4000..=4999 to applications).
pub fn close_code(reason: DisconnectReason) -> u16 {
    4000 + (reason.code().min(999) as u16)
}

/// The disconnect reason a close code carries ([`close_code`]'s inverse; other codes are
/// [`DisconnectReason::Unspecified`]).
pub fn reason_of_close_code(code: u16) -> DisconnectReason {
    match code {
        4000..=4999 => DisconnectReason::from_code(u32::from(code - 4000)),
        _ => DisconnectReason::Unspecified,
    }
}

/// A certificate chain and its private key, for `wss`.
#[derive(Clone)]
pub struct TlsIdentity {
    pub(crate) config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity")
    }
}

impl TlsIdentity {
    /// From PEM text: the certificate chain (leaf first) and the private key (PKCS#8, PKCS#1
    /// or SEC1).
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsIdentity> {
        let certs = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Tls(format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Tls("no certificate in the PEM text".into()));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| Error::Tls(format!("key: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(TlsIdentity {
            config: Arc::new(config),
        })
    }

    /// From PEM files.
    pub fn from_pem_files(
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Result<TlsIdentity> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| Error::Tls(format!("{}: {e}", p.display())))
        };
        TlsIdentity::from_pem(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }
}

/// Where and how a server takes WebSocket clients (Godot 3's `WebSocketServer.listen`), for
/// [`WebSocketMultiplayerPeer::server`] or attached to an ENet server with
/// [`ENetBuilder::websocket`](crate::ENetBuilder::websocket).
#[derive(Debug, Clone)]
pub struct WebSocketListen {
    pub(crate) port: u16,
    pub(crate) bind: Ipv4Addr,
    pub(crate) protocols: Vec<String>,
    pub(crate) tls: Option<TlsIdentity>,
    pub(crate) max_message_size: usize,
    pub(crate) max_outgoing_message: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_handshakes: usize,
    pub(crate) max_queued_bytes: usize,
}

impl WebSocketListen {
    /// TCP `port` (0 picks a free one), on every interface, Godot's limits.
    pub fn new(port: u16) -> WebSocketListen {
        WebSocketListen {
            port,
            bind: Ipv4Addr::UNSPECIFIED,
            protocols: Vec::new(),
            tls: None,
            max_message_size: GODOT_MAX_MESSAGE,
            max_outgoing_message: GODOT_MAX_MESSAGE,
            handshake_timeout: Duration::from_secs(5),
            max_handshakes: 4096,
            max_queued_bytes: 1 << 20,
        }
    }

    /// The local address to listen on.
    pub fn bind_address(mut self, ip: Ipv4Addr) -> Self {
        self.bind = ip;
        self
    }

    /// Subprotocols offered: a client asking for some gets the first it asks for that is
    /// offered, or is refused; a client asking for none is accepted (Godot's rule).
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Serve `wss` with this certificate and key.
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.tls = Some(identity);
        self
    }

    /// The largest message (header included) taken from a client (default 65,535, as Godot's
    /// 64 KiB buffers). A frame announcing more is refused from its header, before anything
    /// is buffered, and the connection closed (counted as oversize).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest message (header included) sent to a client (default 65,535: what a Godot 3
    /// WebSocket client takes). Larger packets relayed towards WebSocket clients are dropped
    /// and counted ([`DropReason::TooLargeForWebSocket`](crate::relay::DropReason)).
    pub fn max_outgoing_message(mut self, bytes: usize) -> Self {
        self.max_outgoing_message = bytes;
        self
    }

    /// Longest time from TCP accept to a completed upgrade (default 5 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Most upgrades in progress at once (default 4096); past it the oldest is dropped, so idle
    /// half-open connections cannot lock honest clients out.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n;
        self
    }

    /// Most bytes queued for one client that is not reading (default 1 MiB); past it the
    /// client is disconnected as a slow consumer (counted).
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        check_message_limits(self.max_message_size, self.max_outgoing_message)?;
        if self.max_handshakes == 0 || self.handshake_timeout.is_zero() {
            return Err(Error::InvalidConfig(
                "websocket handshakes need a limit and a timeout above 0".into(),
            ));
        }
        Ok(())
    }
}

/// Both message limits must leave room for a payload after the header.
fn check_message_limits(incoming: usize, outgoing: usize) -> Result<()> {
    if incoming <= WS_HEADER_LEN || outgoing <= WS_HEADER_LEN {
        return Err(Error::InvalidConfig(format!(
            "websocket message limits must exceed the {WS_HEADER_LEN}-byte header"
        )));
    }
    Ok(())
}

/// What the WebSocket side of a server counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebSocketStats {
    /// Messages received from open connections (text messages included).
    pub packets_in: u64,
    /// Their bytes, headers included.
    pub bytes_in: u64,
    /// Messages queued for clients, system messages included.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Client packets forwarded to WebSocket clients (one per destination).
    pub relayed: u64,
    /// TCP connections accepted.
    pub handshakes: u64,
    /// Upgrades that failed (not WebSocket, a refused subprotocol, TLS errors).
    pub handshakes_failed: u64,
    /// Upgrades not completed within the handshake timeout.
    pub handshake_timeouts: u64,
    /// Upgrades dropped to make room at the limit of upgrades in progress.
    pub handshakes_evicted: u64,
    /// Connections closed for a frame or message above the limit.
    pub closed_too_large: u64,
    /// Connections closed for a protocol violation after the upgrade.
    pub closed_protocol: u64,
    /// Clients disconnected for not reading (over the queued-bytes cap).
    pub slow_consumers: u64,
    /// Packets from or towards WebSocket clients that were dropped, by reason.
    pub drops: DropCounts,
}

/// Builds a WebSocket server; see [`WebSocketMultiplayerPeer::server`].
#[derive(Debug, Clone)]
pub struct WebSocketServerBuilder {
    listen: WebSocketListen,
    session: ServerConfig,
    server_packets: ServerPackets,
}

impl WebSocketServerBuilder {
    /// The local address to listen on (default all interfaces).
    pub fn bind_address(mut self, ip: Ipv4Addr) -> Self {
        self.listen.bind = ip;
        self
    }

    /// Most clients at once (default 32).
    pub fn max_clients(mut self, n: usize) -> Self {
        self.session.max_clients = n;
        self
    }

    /// Relay client-to-client packets and announce peers (default on, as Godot).
    pub fn server_relay(mut self, on: bool) -> Self {
        self.session.relay = on;
        self
    }

    /// Most packets per second accepted from one client (default: no limit).
    pub fn rate_limit(mut self, packets_per_second: Option<u32>) -> Self {
        self.session.rate_limit = packets_per_second;
        self
    }

    /// Most clients at once from one IP address (default: no limit).
    pub fn max_clients_per_address(mut self, n: Option<usize>) -> Self {
        self.session.max_clients_per_address = n;
        self
    }

    /// Most connections accepted per second from one IP address (default: no limit).
    pub fn connects_per_address_per_second(mut self, n: Option<u32>) -> Self {
        self.session.connects_per_address_per_second = n;
        self
    }

    /// Which packets addressed to the server its application takes (default all, as Godot);
    /// see [`ServerPackets`].
    pub fn server_packets(mut self, which: ServerPackets) -> Self {
        self.server_packets = which;
        self
    }

    /// Every transport option (protocols, TLS, limits, timeouts) at once.
    pub fn listen(mut self, listen: WebSocketListen) -> Self {
        let port = self.listen.port;
        self.listen = WebSocketListen { port, ..listen };
        self
    }

    /// Serve `wss` with this certificate and key.
    pub fn tls(mut self, identity: TlsIdentity) -> Self {
        self.listen.tls = Some(identity);
        self
    }

    /// Subprotocols offered (see [`WebSocketListen::protocols`]).
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.listen = self.listen.protocols(protocols);
        self
    }

    /// Starts listening.
    pub fn build(self) -> Result<WebSocketMultiplayerPeer> {
        self.listen.check()?;
        if self.session.max_clients == 0 {
            return Err(Error::InvalidConfig("max clients 0".into()));
        }
        let limits = Limits {
            // WebSocket has no channels: every channel is accepted and none is carried.
            logical_channels: 256,
            max_packet_size: self.listen.max_outgoing_message - WS_HEADER_LEN,
        };
        let mut driver = ServerDriver::new(
            ServerSession::new(self.session),
            None,
            Some(self.listen),
            limits,
        )?;
        driver.server_packets = self.server_packets;
        Ok(WebSocketMultiplayerPeer {
            driver: Driver::Server(Box::new(driver)),
        })
    }
}

/// Builds a WebSocket client; see [`WebSocketMultiplayerPeer::client`].
#[derive(Debug, Clone)]
pub struct WebSocketClientBuilder {
    pub(crate) url: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) roots: Vec<Vec<u8>>,
    pub(crate) max_message_size: usize,
    pub(crate) max_outgoing_message: usize,
    pub(crate) handshake_timeout: Duration,
}

impl WebSocketClientBuilder {
    /// Subprotocols to ask for.
    pub fn protocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Trust this certificate authority (PEM) for `wss` (no system roots are loaded, so a
    /// `wss` client needs at least one).
    pub fn tls_root_certificate(mut self, pem: &[u8]) -> Self {
        self.roots.push(pem.to_vec());
        self
    }

    /// The largest message (header included) taken from the server (default 65,535).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// The largest message (header included) sent to the server (default 65,535: what a Godot
    /// 3 server takes).
    pub fn max_outgoing_message(mut self, bytes: usize) -> Self {
        self.max_outgoing_message = bytes;
        self
    }

    /// Longest time to connect and upgrade (default 5 s); then `ConnectionFailed`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Starts connecting.
    pub fn build(self) -> Result<WebSocketMultiplayerPeer> {
        Ok(WebSocketMultiplayerPeer {
            driver: Driver::Client(Box::new(ClientDriver::connect(self)?)),
        })
    }
}

#[derive(Debug)]
enum Driver {
    Server(Box<ServerDriver>),
    Client(Box<ClientDriver>),
}

/// Godot 3's WebSocket multiplayer peer: a server (id 1) that relays between its clients, or a
/// client, in Godot 3.x's WebSocket framing. Everything is reliable and ordered: received
/// packets report [`TransferMode::Reliable`] and channel 0, and the transfer mode and channel
/// of a send are not carried. See the [module docs](self) for an example.
///
/// A difference from Godot 3.2's own client, which reports `connection_failed` when a server
/// it was connected to goes away: this client reports
/// [`PeerEvent::ServerDisconnected`] then, as an ENet client would.
#[derive(Debug)]
pub struct WebSocketMultiplayerPeer {
    driver: Driver,
}

impl WebSocketMultiplayerPeer {
    /// A server listening on TCP `port` (0 picks a free one; see
    /// [`local_port`](Self::local_port)).
    pub fn server(port: u16) -> WebSocketServerBuilder {
        WebSocketServerBuilder {
            listen: WebSocketListen::new(port),
            session: ServerConfig::default(),
            server_packets: ServerPackets::All,
        }
    }

    /// A client of the server at `url` (`ws://host:port/path` or `wss://...`).
    pub fn client(url: impl Into<String>) -> WebSocketClientBuilder {
        WebSocketClientBuilder {
            url: url.into(),
            protocols: Vec::new(),
            roots: Vec::new(),
            max_message_size: GODOT_MAX_MESSAGE,
            max_outgoing_message: GODOT_MAX_MESSAGE,
            handshake_timeout: Duration::from_secs(5),
        }
    }

    /// The server's TCP port, while listening.
    pub fn local_port(&self) -> Option<u16> {
        match &self.driver {
            Driver::Server(s) => s.websocket_port(),
            Driver::Client(_) => None,
        }
    }

    /// Server: the WebSocket side's counts (traffic, handshakes, closes, drops).
    pub fn websocket_stats(&self) -> Option<WebSocketStats> {
        match &self.driver {
            Driver::Server(s) => s.websocket_stats(),
            Driver::Client(c) => Some(c.stats),
        }
    }

    /// Totals: traffic, relayed packets, refusals, handshakes, drops by reason.
    pub fn stats(&self) -> TotalStats {
        match &self.driver {
            Driver::Server(s) => s.stats(),
            Driver::Client(c) => c.total_stats(),
        }
    }

    /// Server: address and traffic of a client (round-trip time and loss are not measured
    /// over TCP and read 0).
    pub fn peer_stats(&self, id: PeerId) -> Result<PeerStats> {
        match &self.driver {
            Driver::Server(s) => s.peer_stats(id),
            Driver::Client(_) => Err(Error::UnknownPeer(id)),
        }
    }

    /// Ids of the connected peers.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        match &self.driver {
            Driver::Server(s) => s.session.peer_ids().collect(),
            Driver::Client(c) => c.session.peer_ids(),
        }
    }

    fn queues_mut(&mut self) -> &mut PeerQueues {
        match &mut self.driver {
            Driver::Server(s) => s.session.queues_mut(),
            Driver::Client(c) => c.session.queues_mut(),
        }
    }
}

impl MultiplayerPeer for WebSocketMultiplayerPeer {
    fn queues(&self) -> &PeerQueues {
        match &self.driver {
            Driver::Server(s) => s.session.queues(),
            Driver::Client(c) => c.session.queues(),
        }
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
            Driver::Client(c) => c.send(target, data),
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
            Driver::Client(c) => c.max_payload(),
        }
    }
}

impl Drop for WebSocketMultiplayerPeer {
    fn drop(&mut self) {
        self.close();
    }
}
