//! Load generator for Godot 3 `NetworkedMultiplayerENet` servers: our relay server, the minimal
//! relay (`examples/minimal_relay.rs`) or a real Godot 3 server. It speaks the Godot 3 wire
//! protocol (PROTOCOL.md) directly on `enet-wrapper` hosts: N client hosts in one process and one
//! thread, each choosing its own random id, as Godot clients do.
//!
//! ```text
//! cargo run --release --example load -- [OPTIONS]
//!
//!   --server ADDR:PORT      server to load (default 127.0.0.1:7777)
//!   --test KIND             throughput (default) | overload | ping | connect | idle | recovery
//!   --clients N             client hosts (default 8)
//!   --senders K             throughput/overload: clients 0..K send; ping: K ping-pong pairs (default 1)
//!   --count M               packets per sender (ping, idle: measured round trips per pair;
//!                           recovery: lost packets measured) (default 10000)
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
//!   --warmup R              ping, idle, recovery: unmeasured round trips first (default 100)
//!   --channels C            ENet channels each client asks for (default 3, Godot's default)
//!   --no-mesh-wait          do not wait for every ADD_PEER before the test (servers without relay)
//!   --connect-batch B       connect in waves of B clients, each once the previous wave is connected
//!                           and announced (default: all at once)
//!   --progress              print connection progress to stderr once a second
//!   --leave                 connect: then everyone leaves at once; the server's RSS is read
//!                           once it announces nobody and --after-leave seconds have passed
//!   --after-leave SECS      connect --leave: wait before reading the RSS (default 3)
//!   --leave-timeout SECS    connect --leave: most seconds for the server to let all go (35)
//!   --idle-secs SECS        idle: seconds over which the server's CPU is measured (default 10)
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
//! - `connect`: N clients connect (at once, or in waves with `--connect-batch`): a join storm.
//!   Reports how far it got whatever happens: the time until every client had its connect event
//!   and until every client got its N-1 ADD_PEER with none lost (the mesh), the ADD_PEERs
//!   received out of N(N-1), the clients lost (never connected, or disconnected after); a lost
//!   client ends the storm once nothing has moved for 5 s (or at `--connect-timeout`). With
//!   `--server-pid` the server's RSS before, one second after the storm, at its peak (VmHWM)
//!   and, with `--leave`, after everyone left.
//! - `idle`: N clients connect (and mesh) and stay idle, answering ENet's pings: the server's
//!   CPU over `--idle-secs`; then clients 0 and 1 ping-pong as in `ping` (the others serviced
//!   between round trips, so that servicing thousands of hosts is not in a round trip).
//! - `recovery`: client 0 sends a marked reliable packet to client 1 through the server; client
//!   1's intercept drops the first datagram carrying it; the time until the resend arrives,
//!   `--count` times, each after 150 ms of quiet (both clients' ENet pings off).
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
//! - connect: `storm_s`, `connect_events`, `connect_failed`, `clients_lost`,
//!   `storm_socket_drops` (until the storm ended), `rss_before_kb`, `rss_after_kb`,
//!   `rss_peak_kb`, `rss_per_peer_bytes` (with `--server-pid`), `client_datagrams_sent` /
//!   `client_datagrams_received` (UDP datagrams, all clients together); with `--leave`:
//!   `leaving`, `leave_s`, `remaining_after_leave` (clients the server still announced when the
//!   wait ended), `rss_left_kb`;
//! - idle: `idle_server_cpu_pct`, `idle_load_cpu_pct`, `idle_clients`, `server_rss_kb`, then the
//!   ping fields;
//! - recovery: `measured`, `lost`, `resend_p50_ms`, `resend_min_ms`, `resend_max_ms`,
//!   `resend_ms` (every gap, comma-separated), `rto_estimate_ms` (client 1's own round-trip
//!   timeout towards the server, standing in for the server's, which sets the deadline).

#[path = "load_support/mod.rs"]
mod load_support;

use clap::{Parser, ValueEnum};
use enet_wrapper::{Event, Host, HostConfig, Packet, PacketFlags, PeerHandle};
use load_support::{percentile, rss_kb, status_kb, CpuMeter, Json};
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
    /// N clients connecting; how far the mesh got, and the server's memory.
    Connect,
    /// N connected idle clients: the server's CPU, then a ping between two of them.
    Idle,
    /// A reliable packet relayed to a quiet client, lost once: the time to its resend.
    Recovery,
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
    /// Connect: once the storm is over, every client disconnects; the server's RSS is read
    /// `--after-leave` seconds after the last one is gone.
    #[arg(long)]
    leave: bool,
    /// Connect with --leave: seconds to wait after everyone left before reading the RSS.
    #[arg(long, default_value_t = 3.0)]
    after_leave: f64,
    /// Connect with --leave: most seconds to wait for the server to let everyone go.
    #[arg(long, default_value_t = 35.0)]
    leave_timeout: f64,
    /// Idle: seconds over which the server's CPU time is measured.
    #[arg(long, default_value_t = 10.0)]
    idle_secs: f64,
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
/// Connect: once a client is lost (the mesh cannot complete) and every client has connected or
/// failed, the storm ends after this long without a connect or an ADD_PEER.
const STORM_STALL: Duration = Duration::from_secs(5);
/// Idle and ping: while a round trip is not in flight, the clients that do not ping are
/// serviced (they answer ENet's pings) at least this often.
const IDLE_PUMP_EVERY: Duration = Duration::from_millis(100);
/// Recovery: quiet time before each marked packet, so that the server is asleep when it comes.
const RECOVERY_QUIET: Duration = Duration::from_millis(150);
/// Recovery: most time for one marked packet to arrive (dropped copy and resend).
const RECOVERY_LIMIT: Duration = Duration::from_secs(3);
/// Recovery: the payload marker the receiving client's intercept looks for.
const RECOVERY_MARK: &[u8] = b"load-recovery-mark-dropped-once";

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
    /// ADD_PEER messages received.
    added: usize,
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
                added: 0,
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
        self.pump_range(0..self.clients.len(), out);
    }

    /// Services the hosts of clients `range` once each and handles all their events.
    fn pump_range(&mut self, range: std::ops::Range<usize>, out: &mut Vec<Delivery>) {
        for rx in range {
            let mut first = true;
            loop {
                let c = &mut self.clients[rx];
                let Some(event) = next_event(&mut c.host, &mut first) else {
                    break;
                };
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
                                    0 => {
                                        c.known += 1;
                                        c.added += 1;
                                    }
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

    /// Clients that never connected plus clients whose connection ended.
    fn lost(&self) -> usize {
        self.failed + self.disconnects
    }

    /// Every started client has connected once or failed.
    fn all_resolved(&self) -> bool {
        self.connect_events + self.failed >= self.clients.len()
    }

    fn add_peers_received(&self) -> usize {
        self.clients.iter().map(|c| c.added).sum()
    }

    fn mesh_complete(&self) -> bool {
        let n = self.clients.len();
        self.clients.iter().all(|c| c.known + 1 >= n)
    }

    /// Queues one reliable packet on channel 1 from client `from` to Godot target `target`
    /// carrying `payload` after Godot's header.
    fn send_payload(&mut self, from: usize, target: i32, payload: &[u8]) -> bool {
        let c = &mut self.clients[from];
        if c.gone {
            return false;
        }
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
        buf.extend_from_slice(&c.id.to_le_bytes());
        buf.extend_from_slice(&target.to_le_bytes());
        buf.extend_from_slice(payload);
        let Ok(p) = Packet::new(&buf, PacketFlags::RELIABLE) else {
            return false;
        };
        match c.host.peer_mut(c.server) {
            Ok(mut peer) => peer.send(1, p).is_ok(),
            Err(_) => false,
        }
    }

    /// Services client `rx`'s host once; true when a packet ending with `payload` arrived.
    fn pump_marked(&mut self, rx: usize, payload: &[u8]) -> bool {
        let mut found = false;
        let mut first = true;
        loop {
            let c = &mut self.clients[rx];
            let Some(event) = next_event(&mut c.host, &mut first) else {
                break;
            };
            match event {
                Event::Receive { packet, .. } => found |= packet.data().ends_with(payload),
                Event::Disconnect { .. } if !c.gone => {
                    c.gone = true;
                    self.disconnects += 1;
                }
                _ => {}
            }
        }
        found
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
/// Returns (seconds until all connected, seconds until the mesh was complete). With `storm`
/// (the connect test) a lost client does not end the wait at once: the storm goes on until the
/// timeout, or until nothing happened for [`STORM_STALL`] once every client has connected or
/// failed, so that the report says how far it got; `connected` then means every client had
/// its connect event (even one that was lost later), and the mesh needs every client still
/// there and none lost.
fn connect_all(
    fleet: &mut Fleet,
    started: Instant,
    timeout: Duration,
    wait_mesh: bool,
    progress: bool,
    batch: usize,
    storm: bool,
) -> Result<(Option<f64>, Option<f64>), String> {
    fleet.start(batch)?;
    let mut scratch = Vec::new();
    let mut connected_at = None;
    let mut mesh_at = None;
    let mut last_report = Instant::now();
    let mut rounds = 0u64;
    let mut last_change = (Instant::now(), 0usize, 0usize);
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
            // A client lost: the waves can never all be in (only a storm goes on, to see how
            // far it gets).
            if !storm && fleet.lost() > 0 {
                break;
            }
            // The next wave starts once this one is in (and announced, when waiting for that).
            if fleet.all_connected() && (!wait_mesh || fleet.mesh_complete()) {
                fleet.start(batch)?;
            }
            continue;
        }
        let all_in = if storm {
            fleet.connect_events >= fleet.clients.len()
        } else {
            fleet.all_connected()
        };
        if connected_at.is_none() && all_in {
            connected_at = Some(fleet.last_connect.unwrap_or_else(Instant::now));
        }
        if connected_at.is_some() && mesh_at.is_none() && fleet.lost() == 0 && fleet.mesh_complete()
        {
            mesh_at = Some(Instant::now());
        }
        if connected_at.is_some() && (!wait_mesh || mesh_at.is_some()) {
            break;
        }
        if fleet.lost() > 0 && fleet.all_resolved() {
            if !storm {
                break;
            }
            let now = (fleet.connect_events, fleet.add_peers_received());
            if now != (last_change.1, last_change.2) {
                last_change = (Instant::now(), now.0, now.1);
            } else if last_change.0.elapsed() > STORM_STALL {
                break;
            }
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
        TestKind::Ping | TestKind::Idle => 2 * args.senders,
        TestKind::Connect => 1,
        TestKind::Recovery => 2,
        _ => args.senders.max(1) + 1,
    };
    if args.clients < need || (args.senders == 0 && args.test != TestKind::Connect) {
        return Err(format!(
            "{:?} with {} senders needs at least {need} clients",
            args.test, args.senders
        ));
    }
    check_fd_limit(args.clients)?;
    let rss_before = args.server_pid.and_then(rss_kb);
    let drops_before = udp_drops(server.port());
    let mut fleet = Fleet::new(server, args.clients, args.channels)?;
    // The clock starts once the hosts exist: creating 4095 of them takes a while.
    let started = Instant::now();
    let timeout = Duration::from_secs_f64(args.connect_timeout);
    let wait_mesh = !args.no_mesh_wait;
    let batch = args.connect_batch.unwrap_or(args.clients).max(1);
    let storm = args.test == TestKind::Connect;
    let (connect_s, mesh_s) = connect_all(
        &mut fleet,
        started,
        timeout,
        wait_mesh,
        args.progress,
        batch,
        storm,
    )?;
    json.opt("connect_s", connect_s)
        .opt("mesh_s", mesh_s)
        .num("storm_s", started.elapsed().as_secs_f64());
    let connected = fleet
        .clients
        .iter()
        .filter(|c| c.connected && !c.gone)
        .count();
    let n = fleet.total();
    json.int("connected", connected as u64)
        .int("connect_events", fleet.connect_events as u64)
        .int("connect_failed", fleet.failed as u64)
        .int("clients_lost", fleet.lost() as u64)
        .int("add_peer_received", fleet.add_peers_received() as u64)
        .int("add_peer_expected", (n * (n - 1)) as u64);
    if let (Some(before), Some(after)) = (drops_before, udp_drops(server.port())) {
        json.int("storm_socket_drops", after.saturating_sub(before));
    }
    if connect_s.is_none() && !storm {
        return Err(format!(
            "only {connected} of {} clients connected within {:?} ({} lost after connecting, \
             {} waiting to start)",
            args.clients,
            timeout,
            fleet.lost(),
            fleet.pending.len()
        ));
    }
    if wait_mesh && mesh_s.is_none() && args.test != TestKind::Connect {
        return Err(format!(
            "the server did not announce every client (ADD_PEER) within {timeout:?}; \
             use --no-mesh-wait for a server without relay"
        ));
    }
    let result = match args.test {
        TestKind::Connect => connect_report(args, &mut fleet, rss_before, server.port(), json),
        TestKind::Ping => ping(args, &mut fleet, json),
        TestKind::Idle => idle(args, &mut fleet, json),
        TestKind::Recovery => recovery(args, &mut fleet, json),
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
    port: u16,
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
    if args.leave {
        leave(args, fleet, port, json);
    }
    // The peak since the server started (a fresh server per run): the storm, and the leaving.
    if let Some(peak) = args.server_pid.and_then(|p| status_kb(p, "VmHWM:")) {
        json.int("rss_peak_kb", peak);
    }
    Ok(())
}

/// Everyone leaves at once, as Godot clients quit (`close_connection`: ENet's
/// `disconnect_now`, one datagram each, then the host is destroyed). A disconnect the server's
/// socket dropped leaves that client to ENet's timeout there, so a probe client then connects
/// and waits until the server announces nobody else (its ADD_PEERs minus REMOVE_PEERs reach
/// zero), at most `--leave-timeout` seconds (ENet's own timeout of a client whose disconnect
/// was lost is 5 to 30 s); it leaves too and, `--after-leave` seconds later, the server's RSS
/// is read.
fn leave(args: &Args, fleet: &mut Fleet, port: u16, json: &mut Json) {
    let drops_before = udp_drops(port);
    let started = Instant::now();
    let limit = Duration::from_secs_f64(args.leave_timeout.max(0.0));
    let leaving = fleet.clients.iter().filter(|c| !c.gone).count();
    // Dropping a host sends each connected peer its disconnect at once.
    fleet.clients.clear();
    fleet.pending.clear();
    let mut remaining = None;
    let mut probes = 0u64;
    // A probe refused (the slots are still taken) or timed out is replaced by a new one.
    'probing: while started.elapsed() < limit {
        let mut probe = match Fleet::new(fleet.server, 1, fleet.channels) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("load: no probe client: {e}");
                break;
            }
        };
        probes += 1;
        if probe.start(1).is_err() {
            break;
        }
        let mut scratch = Vec::new();
        let mut last = (usize::MAX, Instant::now());
        while started.elapsed() < limit {
            probe.pump(&mut scratch);
            scratch.clear();
            let c = &mut probe.clients[0];
            if c.gone {
                std::thread::sleep(Duration::from_millis(200));
                continue 'probing;
            }
            if c.connected {
                if c.known != last.0 {
                    last = (c.known, Instant::now());
                }
                remaining = Some(c.known);
                // Settled at zero: a newcomer's ADD_PEERs come in its first moments, and
                // the last REMOVE_PEER has come.
                if c.known == 0 && last.1.elapsed() > Duration::from_millis(500) {
                    if let Ok(peer) = c.host.peer_mut(c.server) {
                        peer.disconnect_now(0);
                    }
                    break 'probing;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    json.int("leave_probes", probes);
    let leave_s = started.elapsed().as_secs_f64();
    let settle = Duration::from_secs_f64(args.after_leave.max(0.0));
    std::thread::sleep(settle);
    json.int("leaving", leaving as u64)
        .num("leave_s", leave_s)
        .num("after_leave_s", settle.as_secs_f64());
    match remaining {
        Some(r) => json.int("remaining_after_leave", r as u64),
        None => json.opt("remaining_after_leave", None),
    };
    if let Some(rss) = args.server_pid.and_then(rss_kb) {
        json.int("rss_left_kb", rss);
    }
    if let (Some(before), Some(after)) = (drops_before, udp_drops(port)) {
        json.int("leave_socket_drops", after.saturating_sub(before));
    }
}

/// Each client host is a socket: more clients than the soft limit of open files would fail
/// half-way with a confusing error.
fn check_fd_limit(clients: usize) -> Result<(), String> {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < clients + 32 => Err(format!(
            "{clients} client hosts need {clients} sockets, but the limit of open files is \
             {soft}: raise it (ulimit -n {})",
            (clients + 64).next_power_of_two()
        )),
        _ => Ok(()),
    }
}

/// Connected clients idle: the server's CPU over `--idle-secs` while the clients only answer
/// ENet's pings (every host serviced every 5 ms), then a ping between clients 0 and 1 (`ping`,
/// with the others serviced between round trips).
fn idle(args: &Args, fleet: &mut Fleet, json: &mut Json) -> Result<(), String> {
    let mut scratch = Vec::new();
    let pump_for = |fleet: &mut Fleet, scratch: &mut Vec<Delivery>, d: Duration| {
        let start = Instant::now();
        while start.elapsed() < d {
            fleet.pump(scratch);
            scratch.clear();
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // The storm's queues drain and the server's poll settles into idle.
    pump_for(fleet, &mut scratch, Duration::from_secs(2));
    let meter = CpuMeter::start(args.server_pid);
    pump_for(fleet, &mut scratch, Duration::from_secs_f64(args.idle_secs));
    let (load_cpu, server_cpu) = meter.percent();
    json.opt("idle_server_cpu_pct", server_cpu)
        .opt("idle_load_cpu_pct", load_cpu)
        .num("idle_s", args.idle_secs)
        .int(
            "idle_clients",
            fleet.clients.iter().filter(|c| !c.gone).count() as u64,
        );
    if let Some(rss) = args.server_pid.and_then(rss_kb) {
        json.int("server_rss_kb", rss);
    }
    let disconnects = fleet.disconnects;
    ping(args, fleet, json)?;
    json.int("idle_disconnects", disconnects as u64);
    Ok(())
}

/// What the receiving client's intercept saw of the marked packet being measured.
#[derive(Default)]
struct MarkWatch {
    /// The payload of the packet being measured (the marker and its number).
    mark: Vec<u8>,
    /// When the first datagram carrying it arrived (dropped).
    dropped: Option<Instant>,
    /// When the next one arrived (the resend, let through).
    resent: Option<Instant>,
}

/// The recovery of a lost reliable packet: client 0 sends a marked reliable packet to client
/// 1's id; the server relays it; client 1's intercept drops the first datagram that carries it
/// and notes when the resend comes. Measured `--count` times, each after [`RECOVERY_QUIET`]
/// without traffic (so that a server that sleeps when idle is asleep), after `--warmup` round
/// trips through the server (ENet's round-trip estimate starts at 500 ms and comes down by an
/// eighth per acknowledgement). Both clients' pings are turned off, so nothing but the
/// server's own timer can wake it for the resend. ENet's deadline is the server's
/// round-trip timeout for client 1 (its round-trip time plus four variances); the client's own
/// estimate of the same link stands in for it (`rto_estimate_ms`).
fn recovery(args: &Args, fleet: &mut Fleet, json: &mut Json) -> Result<(), String> {
    let watch: std::sync::Arc<std::sync::Mutex<MarkWatch>> = Default::default();
    let seen = std::sync::Arc::clone(&watch);
    fleet.clients[1]
        .host
        .set_intercept(Some(Box::new(move |datagram: &[u8], _| {
            let Ok(mut w) = seen.lock() else {
                return enet_wrapper::Intercept::Pass;
            };
            if w.mark.is_empty() || !datagram.windows(w.mark.len()).any(|x| x == w.mark) {
                return enet_wrapper::Intercept::Pass;
            }
            let now = Instant::now();
            if w.dropped.is_none() {
                w.dropped = Some(now);
                enet_wrapper::Intercept::Drop
            } else {
                if w.resent.is_none() {
                    w.resent = Some(now);
                }
                enet_wrapper::Intercept::Pass
            }
        })));
    let mut out = Outgoing::new(args.size, ModeArg::Reliable);
    let (a, b) = (fleet.clients[0].id as i32, fleet.clients[1].id as i32);
    let mut deliveries = Vec::new();
    let limit = Instant::now() + Duration::from_secs_f64(args.time_limit);
    // Warm-up: round trips 0 -> 1 -> 0 through the server.
    let mut warm = 0u32;
    fleet.send(0, b, &mut out, 0);
    while warm < args.warmup && Instant::now() < limit {
        fleet.pump_range(0..2, &mut deliveries);
        for d in deliveries.drain(..) {
            if d.rx == 1 {
                fleet.send(1, a, &mut out, d.seq);
            } else if d.rx == 0 {
                warm += 1;
                fleet.send(0, b, &mut out, d.seq + 1);
            }
        }
    }
    for c in fleet.clients.iter_mut() {
        let server = c.server;
        if let Ok(mut p) = c.host.peer_mut(server) {
            p.set_ping_interval(3_600_000);
        }
    }
    let mut gaps = Vec::new();
    let mut rtos = Vec::new();
    let mut lost = 0u64;
    for k in 0..args.count {
        if Instant::now() >= limit {
            break;
        }
        let quiet = Instant::now();
        while quiet.elapsed() < RECOVERY_QUIET {
            fleet.pump_range(0..fleet.clients.len(), &mut deliveries);
            deliveries.clear();
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut payload = RECOVERY_MARK.to_vec();
        payload.extend_from_slice(format!("-{k:06}").as_bytes());
        if let Ok(mut w) = watch.lock() {
            *w = MarkWatch {
                mark: payload.clone(),
                ..MarkWatch::default()
            };
        }
        let rto = fleet.clients[1]
            .host
            .peer_info(fleet.clients[1].server)
            .map(|i| i.round_trip_time + 4 * i.round_trip_time_variance)
            .ok();
        if !fleet.send_payload(0, b, &payload) {
            return Err("client 0 cannot send".into());
        }
        fleet.clients[0].host.flush();
        let sent = Instant::now();
        let mut arrived = false;
        while !arrived && sent.elapsed() < RECOVERY_LIMIT {
            arrived = fleet.pump_marked(1, &payload);
            fleet.pump_range(0..1, &mut deliveries);
            deliveries.clear();
        }
        let (dropped, resent) = match watch.lock() {
            Ok(w) => (w.dropped, w.resent),
            Err(_) => (None, None),
        };
        match (arrived, dropped, resent) {
            (true, Some(d), Some(r)) => {
                gaps.push(u64::try_from(r.duration_since(d).as_nanos()).unwrap_or(u64::MAX));
                if let Some(rto) = rto {
                    rtos.push(u64::from(rto) * 1_000_000);
                }
            }
            _ => lost += 1,
        }
    }
    if let Ok(mut w) = watch.lock() {
        w.mark.clear();
    }
    let list: Vec<f64> = gaps.iter().map(|g| *g as f64 / 1e6).collect();
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    rtos.sort_unstable();
    let ms = |v: Option<f64>| v.map(|us| us / 1e3);
    json.int("warmup_round_trips", u64::from(warm))
        .int("measured", gaps.len() as u64)
        .int("lost", lost)
        .opt("resend_p50_ms", ms(percentile(&sorted, 50.0)))
        .opt("resend_min_ms", ms(percentile(&sorted, 0.0)))
        .opt("resend_max_ms", ms(percentile(&sorted, 100.0)))
        .opt("rto_estimate_ms", ms(percentile(&rtos, 50.0)))
        .int("disconnects", fleet.disconnects as u64);
    let list: Vec<String> = list.iter().map(|g| format!("{g:.3}")).collect();
    json.str("resend_ms", &list.join(","));
    if gaps.is_empty() {
        return Err("no marked packet was measured".into());
    }
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
    // Clients beyond the pairs (the idle test) are serviced between round trips only, so that
    // servicing thousands of hosts is not counted in a round trip.
    let active = 2 * pairs;
    let mut idle_pumped = Instant::now();
    let mut idle_scratch = Vec::new();
    while done.iter().any(|d| *d < total) && Instant::now() < deadline {
        fleet.pump_range(0..active, &mut deliveries);
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
        if fleet.clients.len() > active
            && !replies.is_empty()
            && replies.iter().all(|r| r.0 % 2 == 0)
            && idle_pumped.elapsed() >= IDLE_PUMP_EVERY
        {
            // Only pingers are about to send: no round trip is in flight.
            fleet.pump_range(active..fleet.clients.len(), &mut idle_scratch);
            idle_scratch.clear();
            idle_pumped = Instant::now();
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

/// The next event of `host` within one pump: the first call services the socket, the later
/// ones take what ENet already has (an error ends the pump like "no event").
fn next_event(host: &mut Host, first: &mut bool) -> Option<Event> {
    let event = if std::mem::take(first) {
        host.service(Duration::ZERO)
    } else {
        host.check_events()
    };
    event.ok().flatten()
}
