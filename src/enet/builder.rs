//! Building an [`ENetMultiplayerPeer`]: options both roles share, and those of one role only,
//! offered only on that role's builder.

use super::client::ClientDriver;
use super::{ENetMultiplayerPeer, HostState};
use crate::error::{Error, Result};
use crate::protocol::{HEADER_LEN, MAX_LOGICAL_CHANNEL, SYSTEM_CHANNELS};
use crate::server::{ServerDriver, ServerPackets};
use crate::session::ServerSession;
use crate::session::{Limits, ServerConfig};
use crate::websocket::WebSocketListen;
use enet_wrapper::{Compression, Host, HostConfig, SlotUsage, Timeout};
use std::net::{Ipv4Addr, SocketAddrV4};

/// Default longest handshake a server waits for when its slots run short (see
/// [`ENetBuilder::handshake_timeout_ms`]).
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 5000;

/// The socket buffers a server asks for by default (see [`ENetBuilder::socket_buffer_size`]).
pub const DEFAULT_SERVER_SOCKET_BUFFER: usize = 4 << 20;

/// The most bytes a server lets ENet hold for one client by default, queued or unacknowledged
/// (see [`ENetBuilder::max_queued_bytes`]).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 4 << 20;

/// Asks for `bytes` of socket buffers on `host`, logging what the kernel would not grant.
pub(crate) fn size_socket_buffers(host: &mut Host, bytes: usize) -> Result<()> {
    let granted = host.set_socket_buffers(bytes)?;
    // Linux reports twice the usable size it grants.
    if granted.receive < bytes || granted.send < bytes {
        log::warn!(
            "asked for {bytes}-byte socket buffers, the kernel granted receive {} / send {} \
             (as it reports them); raise net.core.rmem_max and wmem_max for more",
            granted.receive,
            granted.send
        );
    } else {
        log::debug!(
            "socket buffers: receive {} send {}",
            granted.receive,
            granted.send
        );
    }
    Ok(())
}

/// The server's own options (see [`ENetBuilder<ServerRole>`](ENetBuilder)).
#[derive(Debug, Clone)]
pub struct ServerRole {
    port: u16,
    session: ServerConfig,
    channel_limit: Option<usize>,
    handshake_ms: u32,
    websocket: Option<WebSocketListen>,
    max_queued: usize,
    server_packets: ServerPackets,
}

/// The client's own options (see [`ENetBuilder<ClientRole>`](ENetBuilder)).
#[derive(Debug, Clone)]
pub struct ClientRole {
    address: String,
    port: u16,
    local_port: u16,
}

/// What both roles configure.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) bind: Option<Ipv4Addr>,
    pub(crate) extra_channels: u8,
    pub(crate) bandwidth: (u32, u32),
    pub(crate) always_ordered: bool,
    pub(crate) compression: Compression,
    pub(crate) timeout: Option<Timeout>,
    pub(crate) flush_every_send: bool,
    pub(crate) max_packet_size: Option<usize>,
    pub(crate) socket_buffer: Option<usize>,
}

impl Common {
    /// The ENet channels every connection has: the system channels and the extra ones.
    pub(crate) fn channels(&self) -> usize {
        SYSTEM_CHANNELS + usize::from(self.extra_channels)
    }

    /// The host configuration both roles start from, and the limits of what the game sends.
    fn host_config(&self, bind: Option<SocketAddrV4>) -> Result<(HostConfig, Limits)> {
        if self.extra_channels > MAX_LOGICAL_CHANNEL {
            return Err(Error::InvalidConfig(format!(
                "extra channels {} above {MAX_LOGICAL_CHANNEL}",
                self.extra_channels
            )));
        }
        let max_packet =
            match self.max_packet_size {
                Some(0) => return Err(Error::InvalidConfig("max packet size 0".into())),
                Some(n) => Some(n.checked_add(HEADER_LEN).ok_or_else(|| {
                    Error::InvalidConfig(format!("max packet size {n} too large"))
                })?),
                None => None,
            };
        let config = HostConfig::client()
            .bind(bind)
            .bandwidth(self.bandwidth.0, self.bandwidth.1)
            .compression(self.compression)
            .max_packet_size(max_packet);
        let limits = Limits {
            logical_channels: u16::from(self.extra_channels) + 1,
            max_packet_size: max_packet.unwrap_or(enet_wrapper::DEFAULT_MAX_PACKET_SIZE)
                - HEADER_LEN,
        };
        Ok((config, limits))
    }
}

/// Builds an [`ENetMultiplayerPeer`]: start with [`ENetMultiplayerPeer::server`] (an
/// `ENetBuilder<ServerRole>`) or [`ENetMultiplayerPeer::client`] (an `ENetBuilder<ClientRole>`).
/// Options of one role exist only on that role's builder.
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
pub struct ENetBuilder<R> {
    pub(crate) common: Common,
    role: R,
}

impl<R> ENetBuilder<R> {
    fn with(role: R) -> ENetBuilder<R> {
        ENetBuilder {
            common: Common {
                bind: None,
                extra_channels: 0,
                bandwidth: (0, 0),
                always_ordered: false,
                compression: Compression::RangeCoder,
                timeout: None,
                flush_every_send: false,
                max_packet_size: None,
                socket_buffer: None,
            },
            role,
        }
    }

    /// The local address to bind (server: where to listen, default all interfaces).
    pub fn bind_address(mut self, ip: Ipv4Addr) -> Self {
        self.common.bind = Some(ip);
        self
    }

    /// Logical channels beyond the default channel 0 (Godot's `channel_count - 3`), 0..=252.
    pub fn extra_channels(mut self, n: u8) -> Self {
        self.common.extra_channels = n;
        self
    }

    /// Incoming and outgoing bandwidth in bytes/second; 0 = unlimited (default).
    pub fn bandwidth(mut self, incoming: u32, outgoing: u32) -> Self {
        self.common.bandwidth = (incoming, outgoing);
        self
    }

    /// Send unreliable packets sequenced, like unreliable-ordered (Godot's `always_ordered`).
    pub fn always_ordered(mut self, on: bool) -> Self {
        self.common.always_ordered = on;
        self
    }

    /// Datagram compression; see the type-level note: it must match the other end.
    pub fn compression(mut self, c: Compression) -> Self {
        self.common.compression = c;
        self
    }

    /// ENet peer timeouts for every connection: `limit`, `min_ms`, `max_ms` (0 keeps ENet's
    /// default for that value: 32, 5000 ms, 30000 ms).
    pub fn peer_timeout(mut self, limit: u32, min_ms: u32, max_ms: u32) -> Self {
        self.common.timeout = Some(Timeout::new(limit, min_ms, max_ms));
        self
    }

    /// Flush after every send (Godot's exact timing) instead of once per poll (default).
    pub fn flush_every_send(mut self, on: bool) -> Self {
        self.common.flush_every_send = on;
        self
    }

    /// Socket receive and send buffers to ask the kernel for, in bytes (servers default to
    /// [`DEFAULT_SERVER_SOCKET_BUFFER`], 4 MiB; clients keep ENet's 256 KiB). A server that many
    /// clients reach at once needs room for their datagrams: with ENet's 256 KiB, a join storm
    /// of a few hundred clients overflows it and their handshakes are lost. What the kernel
    /// granted is logged when it is less (raise `net.core.rmem_max` / `wmem_max`).
    pub fn socket_buffer_size(mut self, bytes: usize) -> Self {
        self.common.socket_buffer = Some(bytes);
        self
    }

    /// Largest payload, in bytes (default: ENet's 32 MiB limit minus the 8-byte header). Larger
    /// incoming packets are refused by ENet.
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.common.max_packet_size = Some(bytes);
        self
    }
}

impl ENetBuilder<ServerRole> {
    pub(crate) fn server(port: u16) -> ENetBuilder<ServerRole> {
        ENetBuilder::with(ServerRole {
            port,
            session: ServerConfig::default(),
            channel_limit: None,
            handshake_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            websocket: None,
            max_queued: DEFAULT_MAX_QUEUED_BYTES,
            server_packets: ServerPackets::All,
        })
    }

    /// Also takes Godot 3 WebSocket clients (browser builds) into the same session: one room,
    /// one id space (a WebSocket client gets an id no client of either transport has; an ENet
    /// client claiming a WebSocket client's id is refused as id-in-use), each client told of
    /// every other in its own transport's messages, packets relayed across framings with the
    /// sender and target kept. ENet packets towards WebSocket clients travel reliably (TCP);
    /// WebSocket packets towards ENet clients arrive reliable on logical channel 0.
    /// One wait covers the ENet socket and every TCP socket.
    ///
    /// ```
    /// use enet_multiplayer::{ENetMultiplayerPeer, WebSocketListen};
    /// let server = ENetMultiplayerPeer::server(0)
    ///     .bind_address("127.0.0.1".parse().unwrap())
    ///     .websocket(WebSocketListen::new(0).bind_address("127.0.0.1".parse().unwrap()))
    ///     .build()?;
    /// assert!(server.local_port().is_some() && server.websocket_port().is_some());
    /// # Ok::<(), enet_multiplayer::Error>(())
    /// ```
    pub fn websocket(mut self, listen: WebSocketListen) -> Self {
        self.role.websocket = Some(listen);
        self
    }

    /// Most clients at once, 1..=4095 (default 32).
    pub fn max_clients(mut self, n: usize) -> Self {
        self.role.session.max_clients = n;
        self
    }

    /// The most ENet channels a connection may negotiate (default `3 + extra_channels`). A
    /// relay that should carry every channel its clients use sets 255.
    pub fn channel_limit(mut self, n: usize) -> Self {
        self.role.channel_limit = Some(n);
        self
    }

    /// Relay client-to-client packets and announce peers (default on, as Godot).
    pub fn server_relay(mut self, on: bool) -> Self {
        self.role.session.relay = on;
        self
    }

    /// Most packets per second accepted from one client; the excess is dropped and counted as
    /// [`DropReason::RateLimited`](crate::relay::DropReason) (default: no limit).
    pub fn rate_limit(mut self, packets_per_second: Option<u32>) -> Self {
        self.role.session.rate_limit = packets_per_second;
        self
    }

    /// Gated admission (default off): a new client connects (the application gets its
    /// `PeerConnected` and its packets) but is not announced to the others, nor they to it,
    /// and nothing it sends reaches them, until the application
    /// [`approve`](ENetMultiplayerPeer::approve)s it (after checking a join token, say) or
    /// [`reject`](ENetMultiplayerPeer::reject)s it.
    pub fn gated(mut self, on: bool) -> Self {
        self.role.session.gated = on;
        self
    }

    /// Most clients at once from one IP address, of either transport (default: no limit);
    /// one more is refused with [`Refusal::TooManyFromAddress`](crate::Refusal).
    pub fn max_clients_per_address(mut self, n: Option<usize>) -> Self {
        self.role.session.max_clients_per_address = n;
        self
    }

    /// Most connections accepted per second from one IP address, refused ones included
    /// (default: no limit); the excess is refused with
    /// [`Refusal::ConnectingTooOften`](crate::Refusal).
    pub fn connects_per_address_per_second(mut self, n: Option<u32>) -> Self {
        self.role.session.connects_per_address_per_second = n;
        self
    }

    /// When three quarters or more of the peer slots are taken, the longest a connection may
    /// stay half-open (connect request received, handshake not completed) before its slot is
    /// freed, in milliseconds (default 5000; the peer timeout applies if shorter). ENet's own
    /// default is about 30 s, which would let a flood of forged connect requests lock new
    /// clients out that long; with slots to spare, handshakes keep ENet's patient defaults.
    pub fn handshake_timeout_ms(mut self, ms: u32) -> Self {
        self.role.handshake_ms = ms;
        self
    }

    /// The most payload bytes ENet may hold for one client, queued or sent and not yet
    /// acknowledged (default [`DEFAULT_MAX_QUEUED_BYTES`], 4 MiB; 0: no cap). A client that
    /// stops acknowledging (a stalled game, a client that services its connection too rarely)
    /// while others send to it would otherwise grow the server's memory until ENet times it
    /// out, seconds later, or never if it answers now and then. Past the cap the client is
    /// disconnected with [`DisconnectReason::SlowConsumer`](crate::DisconnectReason), its queue
    /// freed at once, and counted in [`TotalStats::slow_consumers`](crate::TotalStats). Checked
    /// every 100 ms; the check stops at the cap, so it costs little.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.role.max_queued = bytes;
        self
    }

    /// Which packets addressed to the server its application takes (default all, as Godot);
    /// a relay that reads nothing says so, and the server's copy of each broadcast is then
    /// neither copied nor queued. See [`ServerPackets`].
    pub fn server_packets(mut self, which: ServerPackets) -> Self {
        self.role.server_packets = which;
        self
    }

    /// Starts listening.
    pub fn build(self) -> Result<ENetMultiplayerPeer> {
        let ServerRole {
            port,
            session,
            channel_limit,
            handshake_ms,
            websocket,
            max_queued,
            server_packets,
        } = self.role;
        if let Some(ws) = &websocket {
            ws.check()?;
        }
        let max_clients = session.max_clients;
        if !(1..=enet_wrapper::MAX_PEERS).contains(&max_clients) {
            return Err(Error::InvalidConfig(format!(
                "max clients {max_clients} is outside 1..={}",
                enet_wrapper::MAX_PEERS
            )));
        }
        let channels = self.common.channels();
        let limit = channel_limit.unwrap_or(channels);
        if !(channels..=enet_wrapper::MAX_CHANNELS).contains(&limit) {
            return Err(Error::InvalidConfig(format!(
                "channel limit {limit} is outside {channels}..={}",
                enet_wrapper::MAX_CHANNELS
            )));
        }
        if handshake_ms == 0 {
            return Err(Error::InvalidConfig("handshake timeout of 0 ms".into()));
        }
        if session.rate_limit == Some(0) {
            return Err(Error::InvalidConfig("rate limit of 0 packets/s".into()));
        }
        if session.max_clients_per_address == Some(0)
            || session.connects_per_address_per_second == Some(0)
        {
            return Err(Error::InvalidConfig(
                "a per-address limit of 0 would refuse everyone".into(),
            ));
        }
        let bind = SocketAddrV4::new(self.common.bind.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
        let (config, limits) = self.common.host_config(Some(bind))?;
        let config = config.peer_limit(slots(max_clients)).channel_limit(limit);
        let handshake = handshake_timeout(self.common.timeout, handshake_ms);
        let mut host = Host::new(&config)?;
        size_socket_buffers(
            &mut host,
            self.common
                .socket_buffer
                .unwrap_or(DEFAULT_SERVER_SOCKET_BUFFER),
        )?;
        host.set_handshake_policy(Some(Box::new(move |usage: SlotUsage| {
            slots_short(usage).then_some(handshake)
        })));
        let mut state = HostState::new(host, limits, self.common);
        state.max_queued = max_queued;
        let mut driver =
            ServerDriver::new(ServerSession::new(session), Some(state), websocket, limits)?;
        driver.server_packets = server_packets;
        log::debug!("server listening on {bind} (max {max_clients} clients)");
        Ok(ENetMultiplayerPeer::from_server(driver))
    }
}

impl ENetBuilder<ClientRole> {
    pub(crate) fn client(address: String, port: u16) -> ENetBuilder<ClientRole> {
        ENetBuilder::with(ClientRole {
            address,
            port,
            local_port: 0,
        })
    }

    /// The local UDP port (default 0, any).
    pub fn local_port(mut self, port: u16) -> Self {
        self.role.local_port = port;
        self
    }

    /// Starts connecting.
    pub fn build(self) -> Result<ENetMultiplayerPeer> {
        let ClientRole {
            address,
            port,
            local_port,
        } = self.role;
        let remote = resolve(&address, port)?;
        let bind = (self.common.bind.is_some() || local_port != 0).then(|| {
            SocketAddrV4::new(
                self.common.bind.unwrap_or(Ipv4Addr::UNSPECIFIED),
                local_port,
            )
        });
        let (config, limits) = self.common.host_config(bind)?;
        let channels = self.common.channels();
        let config = config.peer_limit(1).channel_limit(channels);
        let driver = ClientDriver::connect(&config, remote, limits, self.common)?;
        Ok(ENetMultiplayerPeer::from_client(driver))
    }
}

/// Extra ENet peer slots beyond `max_clients`, so a server can answer surplus connections with
/// a refusal instead of silence.
const SPARE_SLOTS: usize = 64;

/// The ENet peer slots for `max_clients`.
fn slots(max_clients: usize) -> usize {
    (max_clients + SPARE_SLOTS).min(enet_wrapper::MAX_PEERS)
}

/// The handshake-flood policy: once three quarters or more of the slots are taken, half-open
/// handshakes get the short handshake timeout, so forged connect requests cannot hold the last
/// slots for ENet's ~30 s; with slots to spare they keep ENet's patient defaults (lossy links
/// need them). The wrapper gives a completed connection ENet's defaults back.
fn slots_short(usage: SlotUsage) -> bool {
    usage.in_use * 4 >= usage.limit * 3
}

/// The handshake timeout: the peer timeout (ENet's defaults for its zero values), each bound
/// capped at `cap_ms`.
fn handshake_timeout(peer: Option<Timeout>, cap_ms: u32) -> Timeout {
    let t = peer.unwrap_or(Timeout::ENET_DEFAULT).or_enet_defaults();
    Timeout::new(t.limit, t.min_ms.min(cap_ms), t.max_ms.min(cap_ms))
}

fn resolve(address: &str, port: u16) -> Result<SocketAddrV4> {
    use std::net::{SocketAddr, ToSocketAddrs};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_shortened_only_when_slots_run_short() {
        let usage = |in_use| SlotUsage {
            in_use,
            half_open: 1,
            limit: 96,
        };
        assert!(!slots_short(usage(0)));
        assert!(!slots_short(usage(71)));
        assert!(slots_short(usage(72)));
        assert!(slots_short(usage(96)));
        assert_eq!(slots(32), 96);
        assert_eq!(slots(4095), enet_wrapper::MAX_PEERS);
    }
}
