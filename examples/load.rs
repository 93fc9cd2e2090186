//! Load generator for Godot 3 `NetworkedMultiplayerENet` servers: our relay server, the minimal
//! relay (`examples/minimal_relay.rs`) or a real Godot 3 server. It speaks the Godot 3 wire
//! protocol (PROTOCOL.md) directly on `enet-wrapper` hosts: N client hosts in one process and one
//! thread, each choosing its own random id, as Godot clients do.
//!
//! ```text
//! cargo run --release --example load -- [OPTIONS]
//!
//!   --server ADDR:PORT      server to load (default 127.0.0.1:7777)
//!   --test KIND             throughput (default) | overload | ping | connect
//!   --clients N             client hosts (default 8)
//!   --senders K             throughput/overload: clients 0..K send; ping: K ping-pong pairs (default 1)
//!   --count M               packets per sender (ping: measured round trips per pair) (default 10000)
//!   --size B                payload bytes after Godot's 8-byte header, >= 8 (default 32)
//!   --mode MODE             reliable (default) | unreliable | ordered
//!   --target T              broadcast (default, Godot target 0) | peer (the next client's id) |
//!                           exclude (target -id of the next client: all but it and the sender)
//!   --window W              throughput: most packets in flight per sender; a packet leaves the
//!                           window once every receiver has seen it or a later one. Default: auto,
//!                           4096 deliveries in flight in all, i.e. 4096 / (senders x receivers)
//!                           packets per sender, clamped to 8..=1024
//!   --burst P               overload: packets each sender queues per round, unpaced (default 64)
//!   --server-pid PID        read the server's RSS and CPU time from /proc/PID (connect: memory per peer)
//!   --label TEXT            copied into the JSON line
//!   --time-limit SECS       most seconds of sending (default 30); then it drains and reports
//!   --drain SECS            after the last send, wait this long without a delivery (default 1)
//!   --connect-timeout SECS  most seconds for connecting and receiving every ADD_PEER (default 60)
//!   --warmup R              ping: unmeasured round trips per pair first (default 100)
//!   --channels C            ENet channels each client asks for (default 3, Godot's default)
//!   --no-mesh-wait          do not wait for every ADD_PEER before the test (servers without relay)
//!   --connect-batch B       connect in waves of B clients, each once the previous wave is connected
//!                           and announced (default: all at once)
//!   --progress              print connection progress to stderr once a second
//! ```
//!
//! Tests:
//! - `throughput`: clients connect (and wait until the server announced every other client with
//!   ADD_PEER); then senders 0..K each send M packets, paced by a window per sender (ENet 1.3
//!   collapses when thousands of reliable packets are queued at once). Each packet carries its
//!   sequence number, so receivers count deliveries, losses and out-of-order arrivals.
//! - `overload`: the same without the window: every sender queues `--burst` packets per round as
//!   fast as the process runs. Reports how many clients got disconnected.
//! - `ping`: K pairs: client 2p sends to client 2p+1's id through the server, 2p+1 answers to 2p's
//!   id, through the server again; one round trip in flight per pair, after `--warmup` unmeasured
//!   ones. Reports round-trip p50/p90/p99 in microseconds.
//! - `connect`: N clients connect (at once, or in waves with `--connect-batch`); reports the time
//!   until every client is connected and
//!   until every client got its N-1 ADD_PEER (the mesh), and with `--server-pid` the server's
//!   RSS growth per connected peer (VmRSS before connecting and after a one second settle).
//!
//! When the server runs on this machine, `server_socket_drops` counts the datagrams its UDP socket
//! dropped during the test because its receive buffer was full (from /proc/net/udp).
//!
//! Output: one JSON object on one line on stdout (field names are stable; `scripts/bench.sh`
//! reads them). Exit status 0 when the test ran, 1 when the clients could not connect. Fields:
//! - always: the arguments (`label`, `server`, `test`, `clients`, `senders`, `count`, `size`,
//!   `mode`, `target`), `connect_s`, `mesh_s` (null if the mesh did not complete), `connected`,
//!   `add_peer_received` / `add_peer_expected`, `disconnects` (clients whose established connection
//!   ended), `server_socket_drops`, `ok` (and `error` when not ok);
//! - throughput / overload: `window` (0 = unpaced), `sent`, `expected` (sent x receivers),
//!   `delivered`, `lost`, `loss_pct`, `out_of_order` (a sequence number below one already seen from
//!   that sender), `stalls` (windows released after 200 ms without progress), `elapsed_s` (first
//!   send to last delivery), `msgs_per_s` (deliveries per second: one packet reaching one client),
//!   `mb_per_s` (delivered bytes, 8-byte header included, per second, 10^6), `sent_per_s`,
//!   `load_cpu_pct` / `server_cpu_pct` (CPU time over wall time, drain included), `server_rss_kb`;
//! - ping: `round_trips`, `lost`, `rtt_p50_us`, `rtt_p90_us`, `rtt_p99_us`, `rtt_mean_us`,
//!   `rtt_max_us`;
//! - connect: `rss_before_kb`, `rss_after_kb`, `rss_per_peer_bytes` (with `--server-pid`),
//!   `client_datagrams_sent` / `client_datagrams_received` (UDP datagrams, all clients together).

#[path = "load_support/mod.rs"]
mod load_support;

use clap::{Parser, ValueEnum};
use enet_wrapper::{Event, Host, HostConfig, Packet, PacketFlags, PeerHandle};
use load_support::{percentile, rss_kb, CpuMeter, Json};
use std::collections::{HashSet, VecDeque};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TestKind {
    /// Paced senders; deliveries, loss, order and rate.
    Throughput,
    /// Unpaced senders; also counts disconnected clients.
    Overload,
    /// Round trips between client pairs through the server.
    Ping,
    /// N clients connecting; time and server memory per peer.
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// ENet reliable, channel 1.
    Reliable,
    /// ENet unsequenced, channel 2.
    Unreliable,
    /// ENet sequenced (unreliable ordered), channel 2.
    Ordered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    /// Godot target 0: every other client (and the server).
    Broadcast,
    /// The next client's id.
    Peer,
    /// Minus the next client's id: all but that client and the sender.
    Exclude,
}

/// Load generator speaking the Godot 3 NetworkedMultiplayerENet protocol.
#[derive(Debug, Parser)]
#[command(about, long_about = None)]
struct Args {
    /// Server address, host:port (IPv4).
    #[arg(long, default_value = "127.0.0.1:7777")]
    server: String,
    /// Which test to run.
    #[arg(long, value_enum, default_value_t = TestKind::Throughput)]
    test: TestKind,
    /// Number of client hosts.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Throughput/overload: number of sending clients; ping: number of ping-pong pairs.
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Packets per sender (ping: measured round trips per pair).
    #[arg(long, default_value_t = 10_000)]
    count: u32,
    /// Payload bytes after the 8-byte Godot header (at least 8: sequence number and sender).
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Transfer mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Reliable)]
    mode: ModeArg,
    /// Target of the senders' packets.
    #[arg(long, value_enum, default_value_t = TargetArg::Broadcast)]
    target: TargetArg,
    /// Throughput: most packets in flight per sender (default: 4096 / (senders x receivers),
    /// clamped to 8..=1024).
    #[arg(long)]
    window: Option<u32>,
    /// Overload: packets each sender queues per round.
    #[arg(long, default_value_t = 64)]
    burst: u32,
    /// The server's process id, for its memory (VmRSS) and CPU time.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Free text copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,
    /// Most seconds of sending.
    #[arg(long, default_value_t = 30.0)]
    time_limit: f64,
    /// Seconds without a delivery after the last send before the test ends.
    #[arg(long, default_value_t = 1.0)]
    drain: f64,
    /// Most seconds for connecting every client and receiving the whole mesh.
    #[arg(long, default_value_t = 60.0)]
    connect_timeout: f64,
    /// Ping: unmeasured round trips per pair before measuring.
    #[arg(long, default_value_t = 100)]
    warmup: u32,
    /// ENet channels each client asks for (Godot's channel_count; at least 3).
    #[arg(long, default_value_t = 3)]
    channels: usize,
    /// Do not wait for the server's ADD_PEER messages before the test.
    #[arg(long)]
    no_mesh_wait: bool,
    /// Connect in waves of this many clients, each wave once the previous one is connected and
    /// announced (default: all at once).
    #[arg(long)]
    connect_batch: Option<usize>,
    /// Print progress to stderr once a second while connecting.
    #[arg(long)]
    progress: bool,
}

const HEADER_LEN: usize = 8;
/// Sequence number and sender index at the start of every payload.
const MIN_PAYLOAD: usize = 8;
/// Throughput: deliveries in flight in all (senders x receivers x window) with the automatic
/// window. Much more overflows loopback socket buffers and ENet's retransmissions collapse.
const AUTO_WINDOW_DELIVERIES: u32 = 4096;
/// Most packets one sender queues per round in throughput mode.
const MAX_PER_ROUND: u32 = 512;
/// A sender whose window made no progress for this long forgets what is in flight (unreliable
/// losses) and counts a stall.
const STALL: Duration = Duration::from_millis(200);
/// Ping: a round trip not back after this long is counted lost.
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// Most seconds of draining after the last send, whatever happens.
const MAX_DRAIN: Duration = Duration::from_secs(15);

// ---- /proc ---------------------------------------------------------------------------------

/// Datagrams the kernel dropped (receive buffer full) on the local UDP socket bound to `port`
/// (column `drops` of /proc/net/udp): for a server on this machine, its socket's drops.
fn udp_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let p = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
        if p == port {
            fields.last()?.parse().ok()
        } else {
            None
        }
    })
}

// ---- the clients ---------------------------------------------------------------------------

struct Client {
    host: Host,
    server: PeerHandle,
    id: u32,
    connected: bool,
    gone: bool,
    /// Other clients announced by ADD_PEER minus those removed by REMOVE_PEER.
    known: usize,
}

/// A data packet one client received.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    rx: usize,
    source: u32,
    seq: u32,
    sender: u32,
}

struct Fleet {
    /// Clients that started connecting, by index.
    clients: Vec<Client>,
    /// Hosts (and their ids) that have not started connecting yet.
    pending: VecDeque<(Host, u32)>,
    server: SocketAddrV4,
    channels: usize,
    /// Clients that lost an established connection.
    disconnects: usize,
    /// Connections that never completed.
    failed: usize,
    /// Data packets that could not be parsed (too short, unknown sender index).
    malformed: u64,
    connect_events: usize,
    last_connect: Option<Instant>,
}

impl Fleet {
    /// Creates `n` client hosts, each with its own random id; none connects yet.
    fn new(server: SocketAddrV4, n: usize, channels: usize) -> Result<Fleet, String> {
        let mut ids = HashSet::with_capacity(n);
        let mut pending = VecDeque::with_capacity(n);
        for _ in 0..n {
            let mut id: u32 = rand::random_range(2..=i32::MAX as u32);
            while !ids.insert(id) {
                id = rand::random_range(2..=i32::MAX as u32);
            }
            let host = Host::new(&HostConfig::client().channel_limit(channels))
                .map_err(|e| format!("cannot create a client host: {e}"))?;
            pending.push_back((host, id));
        }
        Ok(Fleet {
            clients: Vec::with_capacity(n),
            pending,
            server,
            channels,
            disconnects: 0,
            failed: 0,
            malformed: 0,
            connect_events: 0,
            last_connect: None,
        })
    }

    /// Starts connecting the next `k` hosts (in order, so client indices do not change).
    fn start(&mut self, k: usize) -> Result<(), String> {
        for _ in 0..k {
            let Some((mut host, id)) = self.pending.pop_front() else {
                break;
            };
            let handle = host
                .connect(self.server, self.channels, id)
                .map_err(|e| format!("cannot start a connection: {e}"))?;
            self.clients.push(Client {
                host,
                server: handle,
                id,
                connected: false,
                gone: false,
                known: 0,
            });
        }
        Ok(())
    }

    /// Clients started plus clients not started yet.
    fn total(&self) -> usize {
        self.clients.len() + self.pending.len()
    }

    /// Services every host once and handles all its events; data packets go to `out`.
    fn pump(&mut self, out: &mut Vec<Delivery>) {
        for rx in 0..self.clients.len() {
            let mut first = true;
            loop {
                let c = &mut self.clients[rx];
                let event = if first {
                    first = false;
                    c.host.service(Duration::ZERO)
                } else {
                    c.host.check_events()
                };
                let Ok(Some(event)) = event else { break };
                match event {
                    Event::Connect { .. } => {
                        c.connected = true;
                        self.connect_events += 1;
                        self.last_connect = Some(Instant::now());
                    }
                    Event::Disconnect { .. } => {
                        if !c.gone {
                            c.gone = true;
                            if c.connected {
                                self.disconnects += 1;
                            } else {
                                self.failed += 1;
                            }
                        }
                    }
                    Event::Receive {
                        channel, packet, ..
                    } => {
                        let d = packet.data();
                        if channel == 0 {
                            if d.len() >= 8 {
                                match u32::from_le_bytes([d[0], d[1], d[2], d[3]]) {
                                    0 => c.known += 1,
                                    1 => c.known = c.known.saturating_sub(1),
                                    _ => {}
                                }
                            }
                        } else if d.len() >= HEADER_LEN + MIN_PAYLOAD {
                            out.push(Delivery {
                                rx,
                                source: u32::from_le_bytes([d[0], d[1], d[2], d[3]]),
                                seq: u32::from_le_bytes([d[8], d[9], d[10], d[11]]),
                                sender: u32::from_le_bytes([d[12], d[13], d[14], d[15]]),
                            });
                        } else {
                            self.malformed += 1;
                        }
                    }
                }
            }
        }
    }

    fn all_connected(&self) -> bool {
        self.clients.iter().all(|c| c.connected && !c.gone)
    }

    fn mesh_complete(&self) -> bool {
        let n = self.clients.len();
        self.clients.iter().all(|c| c.known + 1 >= n)
    }

    /// Queues one packet from client `from` to Godot target `target`.
    fn send(&mut self, from: usize, target: i32, packet: &mut Outgoing, seq: u32) -> bool {
        let c = &mut self.clients[from];
        if c.gone {
            return false;
        }
        packet.buf[..4].copy_from_slice(&c.id.to_le_bytes());
        packet.buf[4..8].copy_from_slice(&target.to_le_bytes());
        packet.buf[8..12].copy_from_slice(&seq.to_le_bytes());
        packet.buf[12..16].copy_from_slice(&(from as u32).to_le_bytes());
        let Ok(p) = Packet::new(&packet.buf, packet.flags) else {
            return false;
        };
        match c.host.peer_mut(c.server) {
            Ok(mut peer) => peer.send(packet.channel, p).is_ok(),
            Err(_) => false,
        }
    }
}

/// A reusable packet buffer with the ENet channel and flags of the chosen mode.
struct Outgoing {
    buf: Vec<u8>,
    channel: u8,
    flags: PacketFlags,
}

impl Outgoing {
    fn new(size: usize, mode: ModeArg) -> Outgoing {
        let mut buf = vec![0u8; HEADER_LEN + size];
        // Filler that a compressor could not remove entirely (compression is off in the bench).
        for (i, b) in buf.iter_mut().enumerate().skip(HEADER_LEN + MIN_PAYLOAD) {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        let (channel, flags) = match mode {
            ModeArg::Reliable => (1, PacketFlags::RELIABLE),
            ModeArg::Unreliable => (
                2,
                PacketFlags::UNSEQUENCED | PacketFlags::UNRELIABLE_FRAGMENT,
            ),
            ModeArg::Ordered => (2, PacketFlags::UNRELIABLE_FRAGMENT),
        };
        Outgoing {
            buf,
            channel,
            flags,
        }
    }
}

/// Connects every client and (unless told not to) waits for the full mesh of ADD_PEERs.
/// Returns (seconds until all connected, seconds until the mesh was complete).
fn connect_all(
    fleet: &mut Fleet,
    started: Instant,
    timeout: Duration,
    wait_mesh: bool,
    progress: bool,
    batch: usize,
) -> Result<(Option<f64>, Option<f64>), String> {
    fleet.start(batch)?;
    let mut scratch = Vec::new();
    let mut connected_at = None;
    let mut mesh_at = None;
    let mut last_report = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < timeout {
        rounds += 1;
        if progress && last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let known: usize = fleet.clients.iter().map(|c| c.known).sum();
            let n = fleet.total();
            eprintln!(
                "load: {:.1} s: {} connected, {} failed, {} disconnected, ADD_PEER {known} of {}, {rounds} rounds",
                started.elapsed().as_secs_f64(),
                fleet.connect_events,
                fleet.failed,
                fleet.disconnects,
                n * (n - 1),
            );
        }
        fleet.pump(&mut scratch);
        scratch.clear();
        if !fleet.pending.is_empty() {
            // The next wave starts once this one is in (and announced, when waiting for that).
            if fleet.all_connected() && (!wait_mesh || fleet.mesh_complete()) {
                fleet.start(batch)?;
            }
            continue;
        }
        if connected_at.is_none() && fleet.all_connected() {
            connected_at = Some(fleet.last_connect.unwrap_or_else(Instant::now));
        }
        if connected_at.is_some() && mesh_at.is_none() && fleet.mesh_complete() {
            mesh_at = Some(Instant::now());
        }
        if connected_at.is_some() && (!wait_mesh || mesh_at.is_some()) {
            break;
        }
        if fleet.failed + fleet.disconnects > 0
            && fleet.failed + fleet.connect_events >= fleet.clients.len()
        {
            break;
        }
    }
    let secs = |t: Option<Instant>| t.map(|t| t.duration_since(started).as_secs_f64());
    Ok((secs(connected_at), secs(mesh_at)))
}

fn resolve(server: &str) -> Result<SocketAddrV4, String> {
    let addrs = server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {server}: {e}"))?;
    for a in addrs {
        if let SocketAddr::V4(v4) = a {
            return Ok(v4);
        }
    }
    Err(format!("{server} has no IPv4 address"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut json = Json::default();
    json.str("label", &args.label)
        .str("server", &args.server)
        .str("test", &format!("{:?}", args.test).to_lowercase())
        .int("clients", args.clients as u64)
        .int("senders", args.senders as u64)
        .int("count", args.count)
        .int("size", args.size as u64)
        .str("mode", &format!("{:?}", args.mode).to_lowercase())
        .str("target", &format!("{:?}", args.target).to_lowercase());
    let code = match run(&args, &mut json) {
        Ok(()) => {
            json.bool("ok", true);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load: {e}");
            json.bool("ok", false).str("error", &e);
            ExitCode::from(1)
        }
    };
    println!("{}", json.finish());
    code
}

fn run(args: &Args, json: &mut Json) -> Result<(), String> {
    let server = resolve(&args.server)?;
    if args.size < MIN_PAYLOAD {
        return Err(format!("--size must be at least {MIN_PAYLOAD}"));
    }
    if args.clients == 0 || args.channels < 3 || args.channels > 255 {
        return Err("--clients must be >= 1 and --channels in 3..=255".into());
    }
    let need = match args.test {
        TestKind::Ping => 2 * args.senders,
        TestKind::Connect => 1,
        _ => args.senders.max(1) + 1,
    };
    if args.clients < need || (args.senders == 0 && args.test != TestKind::Connect) {
        return Err(format!(
            "{:?} with {} senders needs at least {need} clients",
            args.test, args.senders
        ));
    }
    let rss_before = args.server_pid.and_then(rss_kb);
    let drops_before = udp_drops(server.port());
    let started = Instant::now();
    let mut fleet = Fleet::new(server, args.clients, args.channels)?;
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    let wait_mesh = !args.no_mesh_wait;
    let batch = args.connect_batch.unwrap_or(args.clients).max(1);
    let (connect_s, mesh_s) = connect_all(
        &mut fleet,
        started,
        timeout,
        wait_mesh,
        args.progress,
        batch,
    )?;
    json.opt("connect_s", connect_s).opt("mesh_s", mesh_s);
    let connected = fleet
        .clients
        .iter()
        .filter(|c| c.connected && !c.gone)
        .count();
    json.int("connected", connected as u64);
    if connect_s.is_none() {
        json.int("connect_failed", fleet.failed as u64);
        return Err(format!(
            "only {connected} of {} clients connected within {:?}",
            args.clients, timeout
        ));
    }
    let n = fleet.clients.len();
    let announced: usize = fleet.clients.iter().map(|c| c.known).sum();
    json.int("add_peer_received", announced as u64)
        .int("add_peer_expected", (n * (n - 1)) as u64);
    if wait_mesh && mesh_s.is_none() && args.test != TestKind::Connect {
        return Err(format!(
            "the server did not announce every client (ADD_PEER) within {timeout:?}; \
             use --no-mesh-wait for a server without relay"
        ));
    }
    let result = match args.test {
        TestKind::Connect => connect_report(args, &mut fleet, rss_before, json),
        TestKind::Ping => ping(args, &mut fleet, json),
        TestKind::Throughput | TestKind::Overload => traffic(args, &mut fleet, json),
    };
    if let (Some(before), Some(after)) = (drops_before, udp_drops(server.port())) {
        json.int("server_socket_drops", after.saturating_sub(before));
    }
    result
}

fn connect_report(
    args: &Args,
    fleet: &mut Fleet,
    rss_before: Option<u64>,
    json: &mut Json,
) -> Result<(), String> {
    // Let acknowledgements settle so that queued system messages are freed.
    let settle = Instant::now();
    let mut scratch = Vec::new();
    while settle.elapsed() < Duration::from_secs(1) {
        fleet.pump(&mut scratch);
        scratch.clear();
        std::thread::sleep(Duration::from_millis(2));
    }
    let rss_after = args.server_pid.and_then(rss_kb);
    if let (Some(b), Some(a)) = (rss_before, rss_after) {
        json.int("rss_before_kb", b).int("rss_after_kb", a).num(
            "rss_per_peer_bytes",
            (a as f64 - b as f64) * 1024.0 / args.clients as f64,
        );
    }
    json.int("disconnects", fleet.disconnects as u64);
    let (mut sent, mut received) = (0u64, 0u64);
    for c in &fleet.clients {
        let (_, s, _, r) = c.host.totals();
        sent += u64::from(s);
        received += u64::from(r);
    }
    json.int("client_datagrams_sent", sent)
        .int("client_datagrams_received", received);
    Ok(())
}

fn ping(args: &Args, fleet: &mut Fleet, json: &mut Json) -> Result<(), String> {
    let pairs = args.senders;
    let total = args.count + args.warmup;
    let mut out = Outgoing::new(args.size, args.mode);
    // Round-trip times in nanoseconds.
    let mut rtts: Vec<u64> = Vec::with_capacity(pairs * args.count as usize);
    // Per pair: sequence number in flight, when it left, round trips done.
    let mut seq = vec![0u32; pairs];
    let mut sent_at = vec![Instant::now(); pairs];
    let mut done = vec![0u32; pairs];
    let mut lost = 0u64;
    let mut deliveries = Vec::with_capacity(64);
    let mut replies: Vec<(usize, u32, u32)> = Vec::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs_f64(args.time_limit);
    let meter = CpuMeter::start(args.server_pid);
    for (p, at) in sent_at.iter_mut().enumerate() {
        let target = fleet.clients[2 * p + 1].id as i32;
        fleet.send(2 * p, target, &mut out, 0);
        fleet.clients[2 * p].host.flush();
        *at = Instant::now();
    }
    while done.iter().any(|d| *d < total) && Instant::now() < deadline {
        fleet.pump(&mut deliveries);
        let now = Instant::now();
        for d in deliveries.drain(..) {
            if d.rx % 2 == 1 && d.rx < 2 * pairs {
                // The ponger answers the pinger (the header's source).
                replies.push((d.rx, d.source, d.seq));
            } else if d.rx % 2 == 0 && d.rx < 2 * pairs {
                let p = d.rx / 2;
                if d.seq == seq[p] && done[p] < total {
                    if done[p] >= args.warmup {
                        let ns = now.duration_since(sent_at[p]).as_nanos();
                        rtts.push(u64::try_from(ns).unwrap_or(u64::MAX));
                    }
                    done[p] += 1;
                    seq[p] = seq[p].wrapping_add(1);
                    if done[p] < total {
                        replies.push((d.rx, fleet.clients[d.rx + 1].id, seq[p]));
                    }
                }
            }
        }
        for (from, to, s) in replies.drain(..) {
            fleet.send(from, to as i32, &mut out, s);
            fleet.clients[from].host.flush();
            if from % 2 == 0 {
                sent_at[from / 2] = Instant::now();
            }
        }
        for p in 0..pairs {
            if done[p] < total && now.duration_since(sent_at[p]) > PING_TIMEOUT {
                lost += 1;
                done[p] += 1;
                seq[p] = seq[p].wrapping_add(1);
                let target = fleet.clients[2 * p + 1].id as i32;
                fleet.send(2 * p, target, &mut out, seq[p]);
                fleet.clients[2 * p].host.flush();
                sent_at[p] = Instant::now();
            }
        }
    }
    let (load_cpu, server_cpu) = meter.percent();
    rtts.sort_unstable();
    let mean = if rtts.is_empty() {
        None
    } else {
        Some(rtts.iter().map(|r| *r as f64 / 1e3).sum::<f64>() / rtts.len() as f64)
    };
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

fn traffic(args: &Args, fleet: &mut Fleet, json: &mut Json) -> Result<(), String> {
    let n = fleet.clients.len();
    let k = args.senders;
    let paced = args.test == TestKind::Throughput;
    let next = |s: usize| (s + 1) % n;
    let target_of = |fleet: &Fleet, s: usize| match args.target {
        TargetArg::Broadcast => 0,
        TargetArg::Peer => fleet.clients[next(s)].id as i32,
        TargetArg::Exclude => -(fleet.clients[next(s)].id as i32),
    };
    let receives = |s: usize, rx: usize| match args.target {
        TargetArg::Broadcast => rx != s,
        TargetArg::Peer => rx == next(s),
        TargetArg::Exclude => rx != s && rx != next(s),
    };
    let receivers: Vec<Vec<usize>> = (0..k)
        .map(|s| (0..n).filter(|rx| receives(s, *rx)).collect())
        .collect();
    let targets: Vec<i32> = (0..k).map(|s| target_of(fleet, s)).collect();
    let window = args.window.unwrap_or_else(|| {
        let fanout = (k * receivers[0].len()).max(1) as u32;
        (AUTO_WINDOW_DELIVERIES / fanout).clamp(8, 1024)
    });
    let mut out = Outgoing::new(args.size, args.mode);

    // progress[rx * k + s]: highest sequence number from sender s seen at rx, plus one.
    let mut progress = vec![0u32; n * k];
    let mut delivered = 0u64;
    let mut out_of_order = 0u64;
    let mut sent = vec![0u32; k];
    let mut forced_base = vec![0u32; k];
    let mut last_progress = vec![Instant::now(); k];
    let mut stalls = 0u64;
    let mut deliveries = Vec::with_capacity(4096);
    let meter = CpuMeter::start(args.server_pid);
    let start = Instant::now();
    let send_deadline = start + Duration::from_secs_f64(args.time_limit);
    let drain = Duration::from_secs_f64(args.drain);
    let mut sending_done_at: Option<Instant> = None;
    let mut last_delivery = start;
    let mut rounds = 0u64;
    loop {
        rounds += 1;
        let now = Instant::now();
        if sending_done_at.is_none() {
            let all_sent = sent.iter().all(|s| *s >= args.count);
            if all_sent || now >= send_deadline {
                sending_done_at = Some(now);
            }
        }
        if sending_done_at.is_none() {
            for s in 0..k {
                if sent[s] >= args.count {
                    continue;
                }
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
                let allowance = allowance.min(args.count - sent[s]);
                for _ in 0..allowance {
                    if !fleet.send(s, targets[s], &mut out, sent[s]) {
                        break;
                    }
                    sent[s] += 1;
                }
            }
        }
        fleet.pump(&mut deliveries);
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
            if delivered >= expected || quiet > drain || now.duration_since(done_at) > MAX_DRAIN {
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
        .int("stalls", stalls)
        .num("elapsed_s", elapsed)
        .num("msgs_per_s", delivered as f64 / elapsed)
        .num(
            "mb_per_s",
            delivered as f64 * (args.size + HEADER_LEN) as f64 / elapsed / 1e6,
        )
        .num("sent_per_s", total_sent as f64 / elapsed)
        .int("rounds", rounds)
        .int("disconnects", fleet.disconnects as u64)
        .opt("load_cpu_pct", load_cpu)
        .opt("server_cpu_pct", server_cpu);
    if let Some(pid) = args.server_pid {
        if let Some(rss) = rss_kb(pid) {
            json.int("server_rss_kb", rss);
        }
    }
    Ok(())
}
