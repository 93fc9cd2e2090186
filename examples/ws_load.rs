//! Load generator for Godot 3 WebSocket multiplayer servers (Godot's `WebSocketServer` used as
//! a network peer, WEBSOCKET.md): our WebSocket relay (`examples/ws_relay.rs`), our mixed
//! ENet + WebSocket server (`examples/relay_server.rs --ws-port`) or a real Godot 3 server
//! (`benches/godot/bench_server.gd` with `BENCH_TRANSPORT=ws`). All clients live in one process and one thread.
//!
//! ```text
//! cargo run --release --example ws_load -- [OPTIONS]
//!
//!   --url URL               the WebSocket server (default ws://127.0.0.1:8080/)
//!   --enet-server ADDR:PORT the same server's ENet port (needed with --enet-clients > 0)
//!   --test KIND             throughput (default) | ping
//!   --clients N             WebSocket clients (default 8)
//!   --enet-clients E        ENet clients of the mixed server (default 0)
//!   --ws-client IMPL        raw (default): tungstenite clients on one readiness wait | crate:
//!                           the crate's WebSocketMultiplayerPeer clients (a cross-check)
//!   --send-from SIDE        ws (default) | enet: the transport of the senders (throughput) or of
//!                           the pinger (ping); its clients come first in the client order
//!   --senders K             throughput: clients 0..K send (default: every client of that side)
//!   --size B                payload bytes after the transport's header, >= 9 (default 64)
//!   --target T              broadcast (default, Godot target 0) | peer (the next client's id)
//!   --unpaced               throughput: no window; each sender queues --burst messages per
//!                           round whenever its socket takes more (TCP back-pressure alone)
//!   --window W              throughput: most messages in flight per sender (default:
//!                           --inflight / (senders x receivers), clamped to 4..=1024)
//!   --inflight D            deliveries in flight in all for the automatic window (default 16384)
//!   --burst P               unpaced: messages per sender per round (default 64)
//!   --duration SECS         seconds of sending (default 3); then it drains and reports
//!   --count M               ping: measured round trips (default 20000, bounded by --duration)
//!   --warmup R              ping: unmeasured round trips first (default 200)
//!   --drain SECS            after the last send, wait this long without a delivery (default 1)
//!   --max-drain SECS        and at most this long in all (default 10)
//!   --connect-timeout SECS  most seconds for connecting and hearing of every peer (default 20)
//!   --server-pid PID        read the server's CPU time and RSS from /proc/PID
//!   --label TEXT            copied into the JSON line
//! ```
//!
//! The WebSocket clients are raw tungstenite clients (not the crate's `WebSocketMultiplayerPeer`
//! client, which has one readiness wait per client: 32 `epoll_wait` calls per round would make
//! the load generator the bottleneck): plain TCP sockets with `TCP_NODELAY`, all on one `mio`
//! wait, Godot's framing written and read here (9-byte header, SYS_ID / SYS_ADD / SYS_DEL). The
//! ENet clients are the crate's `ENetMultiplayerPeer` clients with compression none, sending
//! reliable packets on channel 0 (ENet channel 1).
//!
//! Every payload starts with Godot's RAW command byte (4), so a Godot server running the
//! MultiplayerAPI takes the server's copy of a broadcast as a raw packet, then the sequence
//! number and the sender's index (u32 little-endian each), then filler.
//!
//! Tests:
//! - `throughput`: every client connects and waits until it has heard of every other; then the
//!   senders send for `--duration` seconds, paced by a window per sender (a message leaves the
//!   window once every receiver has it or a later one) unless `--unpaced`. Receivers count
//!   deliveries, losses and out-of-order arrivals. Messages are reliable everywhere, so a loss
//!   is a message a server dropped (Godot drops what does not fit a peer's output buffer).
//! - `ping`: client 0 sends to client 1's id through the server, client 1 answers to client
//!   0's id; one round trip in flight, busy-polling. Reports p50/p90/p99 in microseconds.
//!
//! Output: one JSON object on one line on stdout (`scripts/bench_ws.sh` reads it); exit status
//! 0 when the test ran, 1 otherwise. Fields: the arguments, `connect_s`, `mesh_s`, `connected`,
//! `disconnects`, `ok` (`error`); throughput: `window` (0 = unpaced), `sent`, `expected`,
//! `delivered`, `delivered_ws`, `delivered_enet`, `lost`, `loss_pct`, `out_of_order`,
//! `malformed`, `stalls` (windows released after 500 ms without progress), `write_stalls`
//! (sockets found full for 500 ms, written again; should be 0), `max_round_gap_ms` (the longest
//! time between two rounds of the load's loop, which waits at most 1 ms: more is this process
//! not running), `max_delivery_gap_ms` (the longest time without a delivery while sending),
//! `elapsed_s` (first send to last delivery), `msgs_per_s` (one message reaching one client),
//! `payload_mb_per_s`, `load_cpu_pct`, `server_cpu_pct`, `server_rss_kb`; ping: `round_trips`, `lost`,
//! `rtt_p50_us`, `rtt_p90_us`, `rtt_p99_us`, `rtt_mean_us`, `rtt_max_us`.

use bytes::Bytes;
#[path = "load_support/mod.rs"]
mod load_support;

use clap::{Parser, ValueEnum};
use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, Target, TransferMode,
    WebSocketMultiplayerPeer,
};
use load_support::{percentile, rss_kb, CpuMeter, Json};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TestKind {
    /// Senders broadcast (or send to one peer) for a while; deliveries per second.
    Throughput,
    /// One round trip in flight between client 0 and client 1.
    Ping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Side {
    /// WebSocket clients.
    Ws,
    /// ENet clients (the mixed server).
    Enet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WsClientArg {
    /// Raw tungstenite clients on one readiness wait (the default).
    Raw,
    /// The crate's `WebSocketMultiplayerPeer` clients, one readiness wait each.
    Crate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// Godot target 0: every other client (and the server).
    Broadcast,
    /// The next client's id.
    Peer,
}

/// Load generator for Godot 3 WebSocket (and mixed ENet + WebSocket) multiplayer servers.
#[derive(Debug, Parser)]
#[command(long_about = None)]
struct Args {
    /// The WebSocket server's url.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    url: String,
    /// The same server's ENet address, host:port (for --enet-clients).
    #[arg(long)]
    enet_server: Option<String>,
    /// Which test to run.
    #[arg(long, value_enum, default_value_t = TestKind::Throughput)]
    test: TestKind,
    /// WebSocket clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// ENet clients (compression none).
    #[arg(long, default_value_t = 0)]
    enet_clients: usize,
    /// Which WebSocket client implementation.
    #[arg(long, value_enum, default_value_t = WsClientArg::Raw)]
    ws_client: WsClientArg,
    /// Transport of the senders (throughput) or of the pinger (ping).
    #[arg(long, value_enum, default_value_t = Side::Ws)]
    send_from: Side,
    /// Throughput: number of sending clients (default: all of --send-from's clients).
    #[arg(long)]
    senders: Option<usize>,
    /// Payload bytes after the transport's header (at least 9).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Target of the senders' messages.
    #[arg(long, value_enum, default_value_t = TargetArg::Broadcast)]
    target: TargetArg,
    /// No window: send whenever the socket takes more.
    #[arg(long)]
    unpaced: bool,
    /// Most messages in flight per sender.
    #[arg(long)]
    window: Option<u32>,
    /// Deliveries in flight in all, for the automatic window.
    #[arg(long, default_value_t = 16384)]
    inflight: u32,
    /// Unpaced: messages per sender per round.
    #[arg(long, default_value_t = 64)]
    burst: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Ping: measured round trips.
    #[arg(long, default_value_t = 20_000)]
    count: u32,
    /// Ping: unmeasured round trips first.
    #[arg(long, default_value_t = 200)]
    warmup: u32,
    /// Seconds without a delivery after the last send before the test ends.
    #[arg(long, default_value_t = 1.0)]
    drain: f64,
    /// Most seconds of draining after the last send, whatever happens.
    #[arg(long, default_value_t = 10.0)]
    max_drain: f64,
    /// Most seconds for connecting every client and hearing of every peer.
    #[arg(long, default_value_t = 20.0)]
    connect_timeout: f64,
    /// The server's process id, for its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Free text copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
}

/// Godot's WebSocket header: u8 type, i32 from, i32 to.
const WS_HEADER: usize = 9;
/// RAW command byte, sequence number, sender index.
const MIN_PAYLOAD: usize = 9;
/// Godot's NETWORK_COMMAND_RAW.
const RAW: u8 = 4;
/// Messages read from one socket before the others get their turn.
const READS_PER_TURN: usize = 1024;
/// Most messages one paced sender queues per round.
const MAX_PER_ROUND: u32 = 256;
/// A paced sender whose window made no progress for this long forgets what is in flight (a
/// server that dropped messages) and counts a stall.
const STALL: Duration = Duration::from_millis(500);
/// Ping: a round trip not back after this long is counted lost.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

// ---- the clients ---------------------------------------------------------------------------

/// A raw WebSocket client in Godot's framing.
struct WsLink {
    ws: WebSocket<TcpStream>,
    /// Readiness said readable and no read has hit WouldBlock since (edge-triggered).
    readable: bool,
    /// Written since the last complete flush.
    dirty: bool,
    /// The last flush hit WouldBlock: wait for the writable edge before sending more.
    blocked: bool,
}

enum Link {
    /// A raw tungstenite client.
    Ws(Box<WsLink>),
    /// One of the crate's clients: `ENetMultiplayerPeer`, or `WebSocketMultiplayerPeer` with
    /// `--ws-client crate`.
    Peer(Box<dyn MultiplayerPeer>),
}

struct Client {
    link: Link,
    /// Came by WebSocket.
    is_ws: bool,
    /// The id the server gave (WebSocket: SYS_ID) or the ENet client chose.
    id: u32,
    connected: bool,
    gone: bool,
    /// Other clients announced minus those removed.
    known: usize,
}

/// A data message one client received.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    rx: usize,
    source: u32,
    seq: u32,
    sender: u32,
}

struct Fleet {
    clients: Vec<Client>,
    poll: Poll,
    events: Events,
    /// Clients that are the crate's peers (polled one by one, outside the readiness wait).
    peer_count: usize,
    /// Clients whose established connection ended.
    disconnects: usize,
    /// Data messages that could not be parsed.
    malformed: u64,
    /// Messages that could not be queued.
    send_errors: u64,
    /// A reusable message buffer.
    buf: Vec<u8>,
    size: usize,
}

fn parse_payload(rx: usize, source: u32, p: &[u8]) -> Option<Delivery> {
    if p.len() < MIN_PAYLOAD || p[0] != RAW {
        return None;
    }
    Some(Delivery {
        rx,
        source,
        seq: u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
        sender: u32::from_le_bytes([p[5], p[6], p[7], p[8]]),
    })
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Fleet {
    /// Connects the clients in order: `first` side's clients, then the other side's.
    fn connect(args: &Args, timeout: Duration) -> Result<Fleet, String> {
        let request = args
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad url {}: {e}", args.url))?;
        let host = request
            .uri()
            .host()
            .ok_or_else(|| format!("url {} has no host", args.url))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = request.uri().port_u16().unwrap_or(80);
        let ws_addr = resolve(&format!("{host}:{port}"))?;
        let enet_addr = match (&args.enet_server, args.enet_clients) {
            (_, 0) => None,
            (Some(s), _) => {
                let a = resolve(s)?;
                Some((a.ip().to_string(), a.port()))
            }
            (None, _) => return Err("--enet-clients needs --enet-server".into()),
        };
        let poll = Poll::new().map_err(|e| format!("readiness poll: {e}"))?;
        let mut fleet = Fleet {
            clients: Vec::with_capacity(args.clients + args.enet_clients),
            poll,
            events: Events::with_capacity(1024),
            peer_count: 0,
            disconnects: 0,
            malformed: 0,
            send_errors: 0,
            buf: Vec::new(),
            size: args.size,
        };
        let order = match args.send_from {
            Side::Ws => [(Side::Ws, args.clients), (Side::Enet, args.enet_clients)],
            Side::Enet => [(Side::Enet, args.enet_clients), (Side::Ws, args.clients)],
        };
        for (side, n) in order {
            for _ in 0..n {
                let index = fleet.clients.len();
                let link = match side {
                    Side::Ws if args.ws_client == WsClientArg::Crate => {
                        let peer = WebSocketMultiplayerPeer::client(args.url.clone())
                            .build()
                            .map_err(|e| format!("WebSocket client: {e}"))?;
                        fleet.peer_count += 1;
                        Link::Peer(Box::new(peer))
                    }
                    Side::Ws => {
                        let mut ws = ws_connect(&args.url, ws_addr, timeout)?;
                        let fd = ws.get_mut().as_raw_fd();
                        fleet
                            .poll
                            .registry()
                            .register(
                                &mut SourceFd(&fd),
                                Token(index),
                                Interest::READABLE | Interest::WRITABLE,
                            )
                            .map_err(|e| format!("register: {e}"))?;
                        Link::Ws(Box::new(WsLink {
                            ws,
                            readable: true,
                            dirty: false,
                            blocked: false,
                        }))
                    }
                    Side::Enet => {
                        let (h, p) = enet_addr.clone().expect("checked above");
                        let peer = ENetMultiplayerPeer::client(h, p)
                            .compression(Compression::None)
                            .build()
                            .map_err(|e| format!("ENet client: {e}"))?;
                        fleet.peer_count += 1;
                        Link::Peer(Box::new(peer))
                    }
                };
                fleet.clients.push(Client {
                    link,
                    is_ws: side == Side::Ws,
                    id: 0,
                    connected: false,
                    gone: false,
                    known: 0,
                });
                // Read what the server sent so far (its SYS_ADDs to the others, for one).
                fleet.pump(Duration::ZERO, &mut Vec::new());
            }
        }
        Ok(fleet)
    }

    fn all_connected(&self) -> bool {
        self.clients.iter().all(|c| c.connected && !c.gone)
    }

    fn mesh_complete(&self) -> bool {
        let n = self.clients.len();
        self.clients.iter().all(|c| c.known + 1 >= n)
    }

    /// Waits up to `wait` for readiness (not at all with crate clients or a read backlog), reads
    /// every socket that has something and polls every crate client; data messages go to `out`.
    fn pump(&mut self, wait: Duration, out: &mut Vec<Delivery>) {
        let backlog = self
            .clients
            .iter()
            .any(|c| matches!(&c.link, Link::Ws(w) if w.readable) && !c.gone);
        let wait = if backlog || self.peer_count > 0 {
            Duration::ZERO
        } else {
            wait
        };
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("ws_load: readiness poll failed: {e}");
                return;
            }
        }
        for event in self.events.iter() {
            let Some(c) = self.clients.get_mut(event.token().0) else {
                continue;
            };
            let Link::Ws(w) = &mut c.link else { continue };
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                w.readable = true;
            }
            if event.is_writable() && w.blocked {
                w.blocked = false;
                match w.ws.flush() {
                    Ok(()) => w.dirty = false,
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                        w.blocked = true;
                    }
                    Err(_) => {
                        if !c.gone && c.connected {
                            self.disconnects += 1;
                        }
                        c.gone = true;
                    }
                }
            }
        }
        for rx in 0..self.clients.len() {
            let c = &mut self.clients[rx];
            if c.gone {
                continue;
            }
            match &mut c.link {
                Link::Ws(w) => {
                    if !w.readable {
                        continue;
                    }
                    let mut ended = false;
                    for _ in 0..READS_PER_TURN {
                        match w.ws.read() {
                            Ok(Message::Binary(m)) => {
                                if m.len() < WS_HEADER {
                                    self.malformed += 1;
                                    continue;
                                }
                                match m[0] {
                                    0 => match parse_payload(rx, le_u32(&m, 1), &m[WS_HEADER..]) {
                                        Some(d) => out.push(d),
                                        None => self.malformed += 1,
                                    },
                                    1..=3 if m.len() >= WS_HEADER + 4 => {
                                        let id = le_u32(&m, WS_HEADER);
                                        match (m[0], id) {
                                            (1, 1) => c.connected = true,
                                            (1, _) => c.known += 1,
                                            (2, _) => c.known = c.known.saturating_sub(1),
                                            _ => c.id = id,
                                        }
                                    }
                                    _ => self.malformed += 1,
                                }
                            }
                            Ok(Message::Close(_)) => {
                                ended = true;
                                break;
                            }
                            Ok(_) => {}
                            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                                w.readable = false;
                                break;
                            }
                            Err(_) => {
                                ended = true;
                                break;
                            }
                        }
                    }
                    if ended {
                        if c.connected {
                            self.disconnects += 1;
                        }
                        c.gone = true;
                    }
                }
                Link::Peer(peer) => {
                    let _ = peer.poll();
                    while let Some(event) = peer.pop_event() {
                        match event {
                            PeerEvent::ConnectionSucceeded => {
                                c.connected = true;
                                c.id = peer.unique_id();
                            }
                            PeerEvent::PeerConnected(id) if id != 1 => c.known += 1,
                            PeerEvent::PeerDisconnected(id) if id != 1 => {
                                c.known = c.known.saturating_sub(1);
                            }
                            PeerEvent::ConnectionFailed(_) | PeerEvent::ServerDisconnected(_) => {
                                if c.connected {
                                    self.disconnects += 1;
                                }
                                c.gone = true;
                            }
                            _ => {}
                        }
                    }
                    while let Some(p) = peer.get_packet() {
                        match parse_payload(rx, p.from, &p.data) {
                            Some(d) => out.push(d),
                            None => self.malformed += 1,
                        }
                    }
                }
            }
        }
    }

    /// Whether client `i` can take more messages now (a WebSocket whose socket is full cannot).
    fn can_send(&self, i: usize) -> bool {
        let c = &self.clients[i];
        !c.gone && !matches!(&c.link, Link::Ws(w) if w.blocked)
    }

    /// Queues one message from client `from` to Godot target `target`.
    fn send(&mut self, from: usize, target: i32, seq: u32) -> bool {
        let c = &mut self.clients[from];
        if c.gone {
            return false;
        }
        let buf = &mut self.buf;
        if buf.len() != WS_HEADER + self.size {
            buf.clear();
            buf.resize(WS_HEADER + self.size, 0);
            for (i, b) in buf.iter_mut().enumerate().skip(WS_HEADER + MIN_PAYLOAD) {
                *b = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
        }
        buf[0] = 0;
        buf[1..5].copy_from_slice(&c.id.to_le_bytes());
        buf[5..9].copy_from_slice(&target.to_le_bytes());
        buf[9] = RAW;
        buf[10..14].copy_from_slice(&seq.to_le_bytes());
        buf[14..18].copy_from_slice(&(from as u32).to_le_bytes());
        let ok = match &mut c.link {
            Link::Ws(w) => {
                w.dirty = true;
                match w.ws.write(Message::Binary(Bytes::copy_from_slice(buf))) {
                    Ok(()) => true,
                    // Buffered: it leaves with a later flush.
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => true,
                    Err(_) => false,
                }
            }
            Link::Peer(peer) => {
                let to = match target {
                    0 => Target::Broadcast,
                    t if t > 0 => Target::Peer(t as u32),
                    t => Target::AllExcept(t.unsigned_abs()),
                };
                peer.send(to, TransferMode::Reliable, 0, &buf[WS_HEADER..])
                    .is_ok()
            }
        };
        if !ok {
            self.send_errors += 1;
        }
        ok
    }

    /// Writes what client `i` queued, as far as its socket takes it (the crate's clients send
    /// in their next poll).
    fn flush(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let Link::Ws(w) = &mut c.link else { return };
        if !w.dirty || c.gone {
            return;
        }
        match w.ws.flush() {
            Ok(()) => {
                w.dirty = false;
                w.blocked = false;
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => w.blocked = true,
            Err(_) => {
                if c.connected {
                    self.disconnects += 1;
                }
                c.gone = true;
            }
        }
    }
}

/// A blocking TCP connect and upgrade, then a non-blocking socket.
fn ws_connect(
    url: &str,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<WebSocket<TcpStream>, String> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket: {e}"))?;
    let config = WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(64 * 1024)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let (mut ws, _) = tungstenite::client::client_with_config(url, tcp, Some(config))
        .map_err(|e| format!("websocket upgrade with {url}: {e}"))?;
    let s = ws.get_mut();
    s.set_read_timeout(None)
        .and_then(|()| s.set_write_timeout(None))
        .and_then(|()| s.set_nonblocking(true))
        .map_err(|e| format!("socket: {e}"))?;
    Ok(ws)
}

fn resolve(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {server}: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("{server} has no IPv4 address"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut json = Json::default();
    json.str("label", &args.label)
        .str("url", &args.url)
        .str("enet_server", args.enet_server.as_deref().unwrap_or(""))
        .str("test", &format!("{:?}", args.test).to_lowercase())
        .int("clients", args.clients as u64)
        .int("enet_clients", args.enet_clients as u64)
        .str("send_from", &format!("{:?}", args.send_from).to_lowercase())
        .int("size", args.size as u64)
        .str("target", &format!("{:?}", args.target).to_lowercase())
        .bool("paced", !args.unpaced);
    let code = match run(&args, &mut json) {
        Ok(()) => {
            json.bool("ok", true);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ws_load: {e}");
            json.bool("ok", false).str("error", &e);
            ExitCode::from(1)
        }
    };
    println!("{}", json.finish());
    code
}

fn run(args: &Args, json: &mut Json) -> Result<(), String> {
    if args.size < MIN_PAYLOAD {
        return Err(format!("--size must be at least {MIN_PAYLOAD}"));
    }
    if args.size + WS_HEADER > 65_535 {
        return Err("--size over what a Godot WebSocket peer takes (65,526)".into());
    }
    let n = args.clients + args.enet_clients;
    let side_count = match args.send_from {
        Side::Ws => args.clients,
        Side::Enet => args.enet_clients,
    };
    let senders = args.senders.unwrap_or(side_count);
    match args.test {
        TestKind::Ping if n < 2 || side_count < 1 => {
            return Err("ping needs two clients, the first of --send-from's side".into())
        }
        TestKind::Throughput if senders == 0 || senders > side_count || n < 2 => {
            return Err(format!(
                "{senders} senders of {side_count} {:?} clients ({n} in all)",
                args.send_from
            ))
        }
        _ => {}
    }
    json.int("senders", senders as u64);
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    let started = Instant::now();
    let mut fleet = Fleet::connect(args, timeout)?;
    let mut scratch = Vec::new();
    let mut connected_at = None;
    let mut mesh_at = None;
    while started.elapsed() < timeout {
        fleet.pump(Duration::from_millis(1), &mut scratch);
        scratch.clear();
        if connected_at.is_none() && fleet.all_connected() {
            connected_at = Some(started.elapsed().as_secs_f64());
        }
        if connected_at.is_some() && fleet.mesh_complete() {
            mesh_at = Some(started.elapsed().as_secs_f64());
            break;
        }
        if fleet.clients.iter().any(|c| c.gone) {
            break;
        }
    }
    let connected = fleet.clients.iter().filter(|c| c.connected && !c.gone);
    json.opt("connect_s", connected_at)
        .opt("mesh_s", mesh_at)
        .int("connected", connected.count() as u64);
    if mesh_at.is_none() {
        json.int("disconnects", fleet.disconnects as u64);
        return Err(format!(
            "the {n} clients did not all connect and hear of each other within {timeout:?}"
        ));
    }
    match args.test {
        TestKind::Ping => ping(args, &mut fleet, json),
        TestKind::Throughput => traffic(args, &mut fleet, senders, json),
    }
}

fn ping(args: &Args, fleet: &mut Fleet, json: &mut Json) -> Result<(), String> {
    let total = args.count + args.warmup;
    let pong_id = fleet.clients[1].id as i32;
    let mut rtts: Vec<u64> = Vec::with_capacity(args.count as usize);
    let mut seq = 0u32;
    let mut done = 0u32;
    let mut lost = 0u64;
    let mut deliveries = Vec::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let meter = CpuMeter::start(args.server_pid);
    fleet.send(0, pong_id, seq);
    fleet.flush(0);
    let mut sent_at = Instant::now();
    while done < total && Instant::now() < deadline {
        fleet.pump(Duration::ZERO, &mut deliveries);
        for d in deliveries.drain(..) {
            match d.rx {
                1 => {
                    fleet.send(1, d.source as i32, d.seq);
                    fleet.flush(1);
                }
                0 if d.seq == seq => {
                    let now = Instant::now();
                    if done >= args.warmup {
                        let ns = now.duration_since(sent_at).as_nanos();
                        rtts.push(u64::try_from(ns).unwrap_or(u64::MAX));
                    }
                    done += 1;
                    seq = seq.wrapping_add(1);
                    if done < total {
                        fleet.send(0, pong_id, seq);
                        fleet.flush(0);
                        sent_at = Instant::now();
                    }
                }
                _ => {}
            }
        }
        if sent_at.elapsed() > PING_TIMEOUT {
            lost += 1;
            done += 1;
            seq = seq.wrapping_add(1);
            fleet.send(0, pong_id, seq);
            fleet.flush(0);
            sent_at = Instant::now();
        }
        if fleet.clients[0].gone || fleet.clients[1].gone {
            break;
        }
    }
    let (load_cpu, server_cpu) = meter.percent();
    rtts.sort_unstable();
    let mean = (!rtts.is_empty())
        .then(|| rtts.iter().map(|r| *r as f64 / 1e3).sum::<f64>() / rtts.len() as f64);
    json.int("round_trips", rtts.len() as u64)
        .int("lost", lost)
        .opt("rtt_p50_us", percentile(&rtts, 50.0))
        .opt("rtt_p90_us", percentile(&rtts, 90.0))
        .opt("rtt_p99_us", percentile(&rtts, 99.0))
        .opt("rtt_mean_us", mean)
        .opt("rtt_max_us", rtts.last().map(|m| *m as f64 / 1e3))
        .int("disconnects", fleet.disconnects as u64)
        .opt("load_cpu_pct", load_cpu)
        .opt("server_cpu_pct", server_cpu);
    if rtts.is_empty() {
        return Err("no round trip completed".into());
    }
    Ok(())
}

fn traffic(args: &Args, fleet: &mut Fleet, k: usize, json: &mut Json) -> Result<(), String> {
    let n = fleet.clients.len();
    let next = |s: usize| (s + 1) % n;
    let receives = |s: usize, rx: usize| match args.target {
        TargetArg::Broadcast => rx != s,
        TargetArg::Peer => rx == next(s),
    };
    let receivers: Vec<Vec<usize>> = (0..k)
        .map(|s| (0..n).filter(|rx| receives(s, *rx)).collect())
        .collect();
    let targets: Vec<i32> = (0..k)
        .map(|s| match args.target {
            TargetArg::Broadcast => 0,
            TargetArg::Peer => fleet.clients[next(s)].id as i32,
        })
        .collect();
    let window = args.window.unwrap_or_else(|| {
        let fanout = (k * receivers[0].len()).max(1) as u32;
        (args.inflight / fanout).clamp(4, 1024)
    });
    let paced = !args.unpaced;
    let is_ws: Vec<bool> = fleet.clients.iter().map(|c| c.is_ws).collect();

    // progress[rx * k + s]: highest sequence number from sender s seen at rx, plus one.
    let mut progress = vec![0u32; n * k];
    let (mut delivered, mut delivered_ws, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut sent = vec![0u32; k];
    let mut forced_base = vec![0u32; k];
    let mut last_progress = vec![Instant::now(); k];
    let mut stalls = 0u64;
    let mut deliveries = Vec::with_capacity(8192);
    let meter = CpuMeter::start(args.server_pid);
    let start = Instant::now();
    let send_deadline = start + Duration::from_secs_f64(args.duration);
    let drain = Duration::from_secs_f64(args.drain);
    let max_drain = Duration::from_secs_f64(args.max_drain);
    let mut sending_done_at: Option<Instant> = None;
    let mut last_delivery = start;
    let mut rounds = 0u64;
    // Longest time between two rounds (this process not running: the machine's noise) and
    // without a delivery while sending (the server, or the machine).
    let mut last_round = start;
    let mut max_round_gap = Duration::ZERO;
    let mut max_delivery_gap = Duration::ZERO;
    let mut blocked_since: Vec<Option<Instant>> = vec![None; k];
    let mut write_stalls = 0u64;
    loop {
        rounds += 1;
        let now = Instant::now();
        max_round_gap = max_round_gap.max(now.duration_since(last_round));
        last_round = now;
        if sending_done_at.is_none() {
            max_delivery_gap = max_delivery_gap.max(now.duration_since(last_delivery));
        }
        if sending_done_at.is_none() && now >= send_deadline {
            sending_done_at = Some(now);
        }
        let mut queued = 0u32;
        if sending_done_at.is_none() {
            for s in 0..k {
                if !fleet.can_send(s) {
                    // A socket full for this long: write again in case a writable edge was
                    // missed (counted; it should stay 0).
                    let since = *blocked_since[s].get_or_insert(now);
                    if now.duration_since(since) > STALL {
                        write_stalls += 1;
                        blocked_since[s] = None;
                        fleet.flush(s);
                    }
                    continue;
                }
                blocked_since[s] = None;
                let allowance = if paced {
                    let seen = receivers[s]
                        .iter()
                        .map(|rx| progress[rx * k + s])
                        .min()
                        .unwrap_or(sent[s]);
                    let base = seen.max(forced_base[s]);
                    let in_flight = sent[s] - base.min(sent[s]);
                    if in_flight >= window {
                        if now.duration_since(last_progress[s]) > STALL {
                            stalls += 1;
                            forced_base[s] = sent[s];
                            last_progress[s] = now;
                        }
                        0
                    } else {
                        (window - in_flight).min(MAX_PER_ROUND)
                    }
                } else {
                    args.burst
                };
                for _ in 0..allowance {
                    if !fleet.send(s, targets[s], sent[s]) {
                        break;
                    }
                    sent[s] += 1;
                    queued += 1;
                }
                if allowance > 0 {
                    fleet.flush(s);
                }
            }
        }
        // Nothing to send: sleep in the readiness wait until a delivery comes.
        let wait = if queued == 0 {
            Duration::from_millis(1)
        } else {
            Duration::ZERO
        };
        fleet.pump(wait, &mut deliveries);
        if !deliveries.is_empty() {
            last_delivery = Instant::now();
        }
        for d in deliveries.drain(..) {
            let s = d.sender as usize;
            if s >= k || fleet.clients[s].id != d.source {
                fleet.malformed += 1;
                continue;
            }
            delivered += 1;
            if is_ws[d.rx] {
                delivered_ws += 1;
            }
            let p = &mut progress[d.rx * k + s];
            if d.seq < *p {
                out_of_order += 1;
            } else {
                *p = d.seq + 1;
                last_progress[s] = last_delivery;
            }
        }
        if let Some(done_at) = sending_done_at {
            let expected: u64 = (0..k)
                .map(|s| u64::from(sent[s]) * receivers[s].len() as u64)
                .sum();
            let now = Instant::now();
            let quiet = now.duration_since(last_delivery.max(done_at));
            if delivered >= expected || quiet > drain || now.duration_since(done_at) > max_drain {
                break;
            }
        }
    }
    let (load_cpu, server_cpu) = meter.percent();
    let expected: u64 = (0..k)
        .map(|s| u64::from(sent[s]) * receivers[s].len() as u64)
        .sum();
    let elapsed = last_delivery.duration_since(start).as_secs_f64().max(1e-9);
    let total_sent: u64 = sent.iter().map(|s| u64::from(*s)).sum();
    let lost = expected.saturating_sub(delivered);
    json.int("window", if paced { window } else { 0 })
        .int("sent", total_sent)
        .int("expected", expected)
        .int("delivered", delivered)
        .int("delivered_ws", delivered_ws)
        .int("delivered_enet", delivered - delivered_ws)
        .int("lost", lost)
        .num(
            "loss_pct",
            if expected == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / expected as f64
            },
        )
        .int("out_of_order", out_of_order)
        .int("malformed", fleet.malformed)
        .int("send_errors", fleet.send_errors)
        .int("stalls", stalls)
        .int("write_stalls", write_stalls)
        .num("max_round_gap_ms", max_round_gap.as_secs_f64() * 1e3)
        .num("max_delivery_gap_ms", max_delivery_gap.as_secs_f64() * 1e3)
        .num("elapsed_s", elapsed)
        .num("msgs_per_s", delivered as f64 / elapsed)
        .num(
            "payload_mb_per_s",
            delivered as f64 * args.size as f64 / elapsed / 1e6,
        )
        .num("sent_per_s", total_sent as f64 / elapsed)
        .int("rounds", rounds)
        .int("disconnects", fleet.disconnects as u64)
        .opt("load_cpu_pct", load_cpu)
        .opt("server_cpu_pct", server_cpu);
    if let Some(rss) = args.server_pid.and_then(rss_kb) {
        json.int("server_rss_kb", rss);
    }
    Ok(())
}
