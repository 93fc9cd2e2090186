//! Helpers of the robustness tests (`tests/robust/`): the environment switches, memory and
//! socket figures read from /proc, a seeded impairing UDP proxy, ENet's datagram format (the
//! wrapper's walker), a garbage generator and a log capture. The raw ENet client is in `raw`.
//!
//! Every loop here is bounded in count, and every wait in time.

use super::cluster::Transport;
use enet_multiplayer::MultiplayerPeer;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

// ---- environment -----------------------------------------------------------------------------

/// `ENET_MP_HEAVY=1` runs the full-size variants (100 000 garbage datagrams, 200+ churning
/// clients, longer lossy streams).
pub const HEAVY_ENV: &str = "ENET_MP_HEAVY";
/// `ENET_MP_VALGRIND=1` (set by scripts/valgrind.sh): small counts, no RSS assertions (valgrind
/// replaces the allocator) and generous time limits.
pub const VALGRIND_ENV: &str = "ENET_MP_VALGRIND";
/// `ENET_MP_SEED=n` replaces the fixed seeds of the randomised tests.
pub const SEED_ENV: &str = "ENET_MP_SEED";

fn env_is_1(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

pub fn heavy() -> bool {
    env_is_1(HEAVY_ENV)
}

pub fn under_valgrind() -> bool {
    env_is_1(VALGRIND_ENV)
}

/// `normal` by default, `heavy` with ENET_MP_HEAVY=1, `valgrind` under scripts/valgrind.sh.
pub fn pick<T>(normal: T, heavy_value: T, valgrind: T) -> T {
    if under_valgrind() {
        valgrind
    } else if heavy() {
        heavy_value
    } else {
        normal
    }
}

/// The seed of a randomised test: `default`, unless ENET_MP_SEED says otherwise.
pub fn seed(default: u64) -> u64 {
    std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Multiplies time limits under valgrind, where everything runs 20-50 times slower.
pub fn limit(d: Duration) -> Duration {
    if under_valgrind() {
        d * 20
    } else {
        d
    }
}

/// The lock of the tests that measure or capture something process-wide (RSS, the log capture):
/// every test of the `robust` binary takes it, so that none of them runs beside another.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- /proc figures ---------------------------------------------------------------------------

/// This process's resident set size, in KiB (VmRSS of /proc/self/status).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Datagrams the kernel dropped because the receive buffer of the UDP socket bound to local
/// `port` was full (the last column of /proc/net/udp), if that socket exists.
pub fn udp_receive_drops(port: u16) -> Option<u64> {
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

// ---- ENet datagrams --------------------------------------------------------------------------

/// The ENet 1.3 wire format, as far as the tests need it to find, rewrite and forge commands:
/// the wrapper's own command walker and constants (`enet_wrapper::testing`, the `testing`
/// feature), and the crafting helpers it does not have. All integers are big-endian.
pub mod wire {
    pub use enet_wrapper::testing::*;

    pub fn be16(d: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
    }

    pub fn be32(d: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
    }

    /// Whether ENet would take this (uncompressed) datagram as a connection request: no peer id
    /// yet, a CONNECT first, and a channel count in 1..=255. Each one can hold a peer slot
    /// until its handshake times out.
    pub fn is_connect(d: &[u8]) -> bool {
        let (Some(peer), Some(first)) = (be16(d, 0), commands(d).first().copied()) else {
            return false;
        };
        peer & NO_PEER == NO_PEER
            && first.number == CONNECT
            && be32(d, first.offset + 16).is_some_and(|n| (1..=255).contains(&n))
    }

    /// A CONNECT datagram as an ENet client sends it, asking for `channels` channels and passing
    /// `data` (the Godot id) to the server.
    pub fn connect_datagram(
        outgoing_peer: u16,
        connect_id: u32,
        channels: u32,
        data: u32,
    ) -> Vec<u8> {
        let mut d = Vec::with_capacity(52);
        d.extend_from_slice(&(NO_PEER | HEADER_SENT_TIME).to_be_bytes());
        d.extend_from_slice(&0u16.to_be_bytes()); // sent time
        d.push(CONNECT | FLAG_ACKNOWLEDGE);
        d.push(0xFF); // channel of connection commands
        d.extend_from_slice(&1u16.to_be_bytes()); // reliable sequence number
        d.extend_from_slice(&outgoing_peer.to_be_bytes());
        d.push(0xFF); // incoming session: let the server choose
        d.push(0xFF); // outgoing session
        for v in [
            1392u32,  // mtu
            32768,    // window size
            channels, // channel count
            0,        // incoming bandwidth
            0,        // outgoing bandwidth
            5000,     // throttle interval
            2,        // throttle acceleration
            2,        // throttle deceleration
            connect_id, data,
        ] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        d
    }
}

// ---- the impairing proxy ---------------------------------------------------------------------

/// What the proxy does to each datagram, in each direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// Probability of losing a datagram.
    pub drop: f64,
    /// Probability of sending a second copy (with its own delay).
    pub duplicate: f64,
    /// Probability of holding a datagram back by `reorder_delay` so that later ones overtake it.
    pub reorder: f64,
    /// Extra delay for a reordered datagram.
    pub reorder_delay: Duration,
    /// Every datagram is delayed by a uniform 0..=`jitter`.
    pub jitter: Duration,
}

impl Impairment {
    /// Passes everything at once.
    pub const CLEAN: Impairment = Impairment {
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay: Duration::ZERO,
        jitter: Duration::ZERO,
    };

    /// The lossy link of the robustness tests: 20% loss, 5% duplicates, 5% held back by 40 ms,
    /// up to 10 ms of jitter.
    pub fn lossy() -> Impairment {
        Impairment {
            drop: 0.20,
            duplicate: 0.05,
            reorder: 0.05,
            reorder_delay: Duration::from_millis(40),
            jitter: Duration::from_millis(10),
        }
    }
}

/// Which way a datagram travels through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// What the proxy did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub seen: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub blackholed: u64,
    pub tampered_away: u64,
    pub injected: u64,
}

/// Rewrites (or, returning false, swallows) a datagram before the impairment.
pub type Tamper = Box<dyn FnMut(Dir, &mut Vec<u8>) -> bool>;

struct Session {
    client: SocketAddr,
    sock: UdpSocket,
    /// The first two bytes (peer id, session, flags) of its last datagram to the server.
    last_up_header: Option<u16>,
    /// Its last few datagrams to the server.
    recent_up: VecDeque<Vec<u8>>,
}

/// Datagrams kept per session for [`Proxy::recent_up`].
const RECENT: usize = 32;

struct Pending {
    due: Instant,
    order: u64,
    dir: Dir,
    client_port: u16,
    data: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

/// Most datagrams read from one socket per pump, and most kept in flight.
const PUMP_BURST: usize = 4096;
const MAX_IN_FLIGHT: usize = 200_000;

/// A loopback UDP proxy between ENet clients and a server, driven by [`Proxy::pump`] from the
/// test's own loop (no thread). Each client address gets its own upstream socket, so the server
/// sees one address per client; per client, either direction can be black-holed. Randomness
/// comes from one seeded generator, so a run is reproducible up to the timing of the loop.
pub struct Proxy {
    listen: UdpSocket,
    server: SocketAddr,
    sessions: HashMap<u16, Session>,
    blackholes: HashMap<u16, (bool, bool)>,
    impair: Impairment,
    rng: StdRng,
    queue: BinaryHeap<Reverse<Pending>>,
    order: u64,
    tamper: Option<Tamper>,
    recording: Option<Vec<(Dir, Vec<u8>)>>,
    buf: Vec<u8>,
    pub stats: ProxyStats,
}

/// A proxy shared between a test and its cluster's transport ([`proxy_transport`]).
pub type SharedProxy = Rc<RefCell<Proxy>>;

/// A cluster transport that pumps `proxy` at each pump of the cluster (ENet moves the peers'
/// own traffic; the proxy must move what passes through it).
pub fn proxy_transport<P: MultiplayerPeer + ?Sized>(proxy: &SharedProxy) -> Transport<P> {
    let pumped = proxy.clone();
    Box::new(move |_| pumped.borrow_mut().pump())
}

impl Proxy {
    /// [`Proxy::new`], shared.
    pub fn shared(server_port: u16, impair: Impairment, seed: u64) -> SharedProxy {
        Rc::new(RefCell::new(Proxy::new(server_port, impair, seed)))
    }

    pub fn new(server_port: u16, impair: Impairment, seed: u64) -> Proxy {
        let listen = UdpSocket::bind("127.0.0.1:0").expect("proxy socket");
        listen.set_nonblocking(true).expect("nonblocking");
        Proxy {
            listen,
            server: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, server_port)),
            sessions: HashMap::new(),
            blackholes: HashMap::new(),
            impair,
            rng: StdRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            order: 0,
            tamper: None,
            recording: None,
            buf: vec![0; 65536],
            stats: ProxyStats::default(),
        }
    }

    /// Where clients connect instead of the server.
    pub fn port(&self) -> u16 {
        self.listen.local_addr().expect("proxy address").port()
    }

    pub fn set_impairment(&mut self, impair: Impairment) {
        self.impair = impair;
    }

    /// Drops everything from (`up`) and/or to (`down`) the client at local port `client_port`.
    pub fn set_blackhole(&mut self, client_port: u16, up: bool, down: bool) {
        self.blackholes.insert(client_port, (up, down));
    }

    pub fn set_tamper(&mut self, tamper: Option<Tamper>) {
        self.tamper = tamper;
    }

    /// Starts recording every datagram seen (before any impairment).
    pub fn start_recording(&mut self) {
        self.recording = Some(Vec::new());
    }

    pub fn take_recording(&mut self) -> Vec<(Dir, Vec<u8>)> {
        self.recording.take().unwrap_or_default()
    }

    /// Forgets a client: its session socket, its black-hole rule and its datagrams in flight.
    pub fn forget(&mut self, client_port: u16) {
        self.sessions.remove(&client_port);
        self.blackholes.remove(&client_port);
        let kept: Vec<Reverse<Pending>> = std::mem::take(&mut self.queue)
            .into_iter()
            .filter(|p| p.0.client_port != client_port)
            .collect();
        self.queue = kept.into_iter().collect();
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The port the server sees for the client at local port `client_port`.
    pub fn upstream_port(&self, client_port: u16) -> Option<u16> {
        let s = self.sessions.get(&client_port)?;
        Some(s.sock.local_addr().ok()?.port())
    }

    /// The peer id and session bits (flags masked off) the server expects in datagrams from the
    /// client at `client_port`, learnt from its last datagram.
    pub fn server_side_peer(&self, client_port: u16) -> Option<u16> {
        self.sessions
            .get(&client_port)?
            .last_up_header
            .map(|h| h & !(wire::HEADER_SENT_TIME | wire::HEADER_COMPRESSED))
    }

    /// One of the last datagrams the client at `client_port` sent (the `n`-th, modulo how many
    /// are kept).
    pub fn recent_up(&self, client_port: u16, n: usize) -> Option<Vec<u8>> {
        let r = &self.sessions.get(&client_port)?.recent_up;
        (!r.is_empty()).then(|| r[n % r.len()].clone())
    }

    /// Sends `data` to the server at once from the client's session socket, as if the client had
    /// sent it. False if the client has no session yet.
    pub fn inject_up(&mut self, client_port: u16, data: &[u8]) -> bool {
        let Some(s) = self.sessions.get(&client_port) else {
            return false;
        };
        self.stats.injected += 1;
        s.sock.send_to(data, self.server).is_ok()
    }

    /// Moves traffic: reads what arrived, impairs it, and sends what is due.
    pub fn pump(&mut self) {
        for _ in 0..PUMP_BURST {
            match self.listen.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let data = self.buf[..n].to_vec();
                    let s = self.sessions.entry(from.port()).or_insert_with(|| {
                        let sock = UdpSocket::bind("127.0.0.1:0").expect("session socket");
                        sock.set_nonblocking(true).expect("nonblocking");
                        Session {
                            client: from,
                            sock,
                            last_up_header: None,
                            recent_up: VecDeque::new(),
                        }
                    });
                    s.last_up_header = wire::be16(&data, 0).or(s.last_up_header);
                    if s.recent_up.len() == RECENT {
                        s.recent_up.pop_front();
                    }
                    s.recent_up.push_back(data.clone());
                    self.accept(Dir::Up, from.port(), data);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // An ICMP error from an earlier send (a client that went away): keep reading.
                Err(_) => continue,
            }
        }
        let ports: Vec<u16> = self.sessions.keys().copied().collect();
        for port in ports {
            for _ in 0..PUMP_BURST {
                let Some(s) = self.sessions.get(&port) else {
                    break;
                };
                match s.sock.recv_from(&mut self.buf) {
                    Ok((n, from)) if from == self.server => {
                        let data = self.buf[..n].to_vec();
                        self.accept(Dir::Down, port, data);
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
        }
        let now = Instant::now();
        for _ in 0..MAX_IN_FLIGHT {
            match self.queue.peek() {
                Some(Reverse(p)) if p.due <= now => {}
                _ => break,
            }
            let Some(Reverse(p)) = self.queue.pop() else {
                break;
            };
            let Some(s) = self.sessions.get(&p.client_port) else {
                continue;
            };
            let sent = match p.dir {
                Dir::Up => s.sock.send_to(&p.data, self.server),
                Dir::Down => self.listen.send_to(&p.data, s.client),
            };
            if sent.is_ok() {
                self.stats.delivered += 1;
            }
        }
    }

    fn accept(&mut self, dir: Dir, client_port: u16, mut data: Vec<u8>) {
        self.stats.seen += 1;
        if let Some(r) = self.recording.as_mut() {
            r.push((dir, data.clone()));
        }
        let (up, down) = self
            .blackholes
            .get(&client_port)
            .copied()
            .unwrap_or((false, false));
        if (dir == Dir::Up && up) || (dir == Dir::Down && down) {
            self.stats.blackholed += 1;
            return;
        }
        if let Some(t) = self.tamper.as_mut() {
            if !t(dir, &mut data) {
                self.stats.tampered_away += 1;
                return;
            }
        }
        let im = self.impair;
        if im.drop > 0.0 && self.rng.random_bool(im.drop) {
            self.stats.dropped += 1;
            return;
        }
        let copies = if im.duplicate > 0.0 && self.rng.random_bool(im.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.queue.len() >= MAX_IN_FLIGHT {
                self.stats.dropped += 1;
                continue;
            }
            let mut delay = if im.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_micros(self.rng.random_range(0..=im.jitter.as_micros() as u64))
            };
            if im.reorder > 0.0 && self.rng.random_bool(im.reorder) {
                self.stats.reordered += 1;
                delay += im.reorder_delay;
            }
            self.order += 1;
            self.queue.push(Reverse(Pending {
                due: Instant::now() + delay,
                order: self.order,
                dir,
                client_port,
                data: data.clone(),
            }));
        }
    }
}

// ---- garbage ---------------------------------------------------------------------------------

/// How a garbage datagram was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GarbageKind {
    /// Random bytes of a random length (0 to 9000; ENet reads at most 4096).
    Random,
    /// A prefix of a real datagram.
    Truncated,
    /// A real datagram with 1 to 8 bits flipped.
    BitFlipped,
    /// A real datagram with 1 to 4 bytes set to edge values.
    Smashed,
    /// A real datagram with a random peer id, session and header flags.
    Readdressed,
    /// A real datagram whose SEND command lies about its lengths and fragments.
    LengthLie,
    /// Two real datagrams glued together, or one with random bytes after it.
    Spliced,
}

impl GarbageKind {
    pub const ALL: [GarbageKind; 7] = [
        GarbageKind::Random,
        GarbageKind::Truncated,
        GarbageKind::BitFlipped,
        GarbageKind::Smashed,
        GarbageKind::Readdressed,
        GarbageKind::LengthLie,
        GarbageKind::Spliced,
    ];
}

/// Makes garbage datagrams from a corpus of real ENet traffic, reproducibly from a seed.
pub struct Garbage {
    rng: StdRng,
    corpus: Vec<Vec<u8>>,
}

const EDGE_BYTES: [u8; 6] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF];

impl Garbage {
    pub fn new(corpus: Vec<Vec<u8>>, seed: u64) -> Garbage {
        assert!(!corpus.is_empty(), "a corpus of real datagrams");
        Garbage {
            rng: StdRng::seed_from_u64(seed),
            corpus,
        }
    }

    fn real(&mut self) -> Vec<u8> {
        let i = self.rng.random_range(0..self.corpus.len());
        self.corpus[i].clone()
    }

    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.rng.fill_bytes(&mut v);
        v
    }

    /// The next datagram and how it was made, from the corpus.
    pub fn next_datagram(&mut self) -> (GarbageKind, Vec<u8>) {
        let kind = GarbageKind::ALL[self.rng.random_range(0..GarbageKind::ALL.len())];
        (kind, self.make(kind, None))
    }

    /// A mutation of `base` (a datagram just seen on a live connection), of any kind but
    /// [`GarbageKind::Random`].
    pub fn mutate(&mut self, base: &[u8]) -> (GarbageKind, Vec<u8>) {
        let kind = GarbageKind::ALL[self.rng.random_range(1..GarbageKind::ALL.len())];
        (kind, self.make(kind, Some(base)))
    }

    fn make(&mut self, kind: GarbageKind, base: Option<&[u8]>) -> Vec<u8> {
        let mut first = base.map(<[u8]>::to_vec);
        let mut real = move |g: &mut Garbage| first.take().unwrap_or_else(|| g.real());
        match kind {
            GarbageKind::Random => {
                let len = match self.rng.random_range(0..20) {
                    0..=4 => self.rng.random_range(0..=8),
                    5..=14 => self.rng.random_range(9..=1400),
                    15..=18 => self.rng.random_range(1401..=4096),
                    _ => self.rng.random_range(4097..=9000),
                };
                self.random_bytes(len)
            }
            GarbageKind::Truncated => {
                let mut d = real(self);
                let len = self.rng.random_range(0..d.len().max(1));
                d.truncate(len);
                d
            }
            GarbageKind::BitFlipped => {
                let mut d = real(self);
                for _ in 0..self.rng.random_range(1..=8) {
                    // Half of the flips hit the header and first command, where ENet decides.
                    let span = if self.rng.random_bool(0.5) {
                        d.len().min(32)
                    } else {
                        d.len()
                    };
                    if span > 0 {
                        let at = self.rng.random_range(0..span);
                        d[at] ^= 1 << self.rng.random_range(0..8);
                    }
                }
                d
            }
            GarbageKind::Smashed => {
                let mut d = real(self);
                for _ in 0..self.rng.random_range(1..=4) {
                    if !d.is_empty() {
                        let at = self.rng.random_range(0..d.len());
                        d[at] = if self.rng.random_bool(0.7) {
                            EDGE_BYTES[self.rng.random_range(0..EDGE_BYTES.len())]
                        } else {
                            self.rng.random()
                        };
                    }
                }
                d
            }
            GarbageKind::Readdressed => {
                let mut d = real(self);
                if d.len() >= 2 {
                    let peer: u16 = match self.rng.random_range(0..4) {
                        0 => self.rng.random(),
                        1 => wire::NO_PEER | (self.rng.random::<u16>() & 0xF000),
                        _ => self.rng.random_range(0..64u16) | (self.rng.random::<u16>() & 0xF000),
                    };
                    d[..2].copy_from_slice(&peer.to_be_bytes());
                }
                d
            }
            GarbageKind::LengthLie => {
                let mut d = real(self);
                let sends: Vec<wire::Command> = wire::commands(&d)
                    .into_iter()
                    .filter(|c| c.data_offset.is_some())
                    .collect();
                if sends.is_empty() {
                    let at = self.rng.random_range(0..d.len().max(1));
                    d.truncate(at);
                } else {
                    let c = sends[self.rng.random_range(0..sends.len())];
                    let fragment = matches!(
                        c.number,
                        wire::SEND_FRAGMENT | wire::SEND_UNRELIABLE_FRAGMENT
                    );
                    let len_at = if c.number == wire::SEND_RELIABLE {
                        c.offset + 4
                    } else {
                        c.offset + 6
                    };
                    let lie: u16 = match self.rng.random_range(0..3) {
                        0 => 0,
                        1 => u16::MAX,
                        _ => self.rng.random(),
                    };
                    d[len_at..len_at + 2].copy_from_slice(&lie.to_be_bytes());
                    if fragment {
                        // fragmentCount, fragmentNumber, totalLength, fragmentOffset
                        for field in 0..4 {
                            if self.rng.random_bool(0.5) {
                                let v: u32 = match self.rng.random_range(0..4) {
                                    0 => 0,
                                    1 => u32::MAX,
                                    2 => 1 << self.rng.random_range(0..32),
                                    _ => self.rng.random(),
                                };
                                let at = c.offset + 8 + 4 * field;
                                d[at..at + 4].copy_from_slice(&v.to_be_bytes());
                            }
                        }
                    }
                }
                d
            }
            GarbageKind::Spliced => {
                let mut d = real(self);
                if self.rng.random_bool(0.5) {
                    let other = real(self);
                    let skip = wire::header_len(&other).unwrap_or(2).min(other.len());
                    d.extend_from_slice(&other[skip..]);
                } else {
                    let tail = self.rng.random_range(1..=64);
                    let extra = self.random_bytes(tail);
                    d.extend_from_slice(&extra);
                }
                d
            }
        }
    }
}

// ---- log capture -----------------------------------------------------------------------------

struct Capture;

static LOG_LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());
/// Whether a [`LogCapture`] is alive: the logger stays installed for the rest of the process
/// (`log` allows one), but records nothing outside a capture, so that the tests of the binary
/// that run after one neither fill the buffer nor pay for formatting lines.
static CAPTURING: AtomicBool = AtomicBool::new(false);
/// Lines kept at most (the capture must not grow without bound under a flood).
const MAX_LOG_LINES: usize = 100_000;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        CAPTURING.load(AtomicOrdering::Relaxed) && m.target().starts_with("enet_multiplayer")
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut lines = LOG_LINES.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() < MAX_LOG_LINES {
                lines.push((record.level(), record.args().to_string()));
            }
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Records the library's log lines (debug and above) for [`log_lines`] while it lives; starts
/// empty, and forgets its lines and switches logging off again on drop. The capture is
/// process-wide: take it while holding [`serial`], so that no other test logs into it.
#[must_use = "the capture ends when the guard is dropped"]
pub struct LogCapture(());

pub fn capture_logs() -> LogCapture {
    let _ = log::set_logger(&CAPTURE);
    clear_logs();
    CAPTURING.store(true, AtomicOrdering::Relaxed);
    log::set_max_level(log::LevelFilter::Debug);
    LogCapture(())
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        log::set_max_level(log::LevelFilter::Off);
        CAPTURING.store(false, AtomicOrdering::Relaxed);
        clear_logs();
    }
}

/// Forgets the lines captured so far.
pub fn clear_logs() {
    LOG_LINES.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// How many captured lines at exactly `level` contain every one of `parts`.
pub fn log_lines(level: log::Level, parts: &[&str]) -> usize {
    let lines = LOG_LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines
        .iter()
        .filter(|(l, s)| *l == level && parts.iter().all(|p| s.contains(p)))
        .count()
}

// ---- bounded waiting -------------------------------------------------------------------------

/// Calls `step` until `done` holds; panics with `what` after `limit`.
pub fn wait_until(
    what: &str,
    limit: Duration,
    mut step: impl FnMut(),
    mut done: impl FnMut() -> bool,
) {
    let start = Instant::now();
    loop {
        step();
        if done() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
    }
}
