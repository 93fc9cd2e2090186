//! The dedicated relay server: a Godot-3-compatible `NetworkedMultiplayerENet` server that
//! relays between its clients and runs unattended. Built with the `relay-server` feature:
//! `cargo install --path . --features relay-server` installs it, `scripts/relay.sh` runs it.
//!
//! ```text
//! relay-server --port 7777 [--max-clients N] [--bind ADDR]
//!     [--no-relay] [--compression none|range-coder] [--stats-interval SECS] [--stats-json]
//!     [--ws-port Q [--tls-cert CERT.pem --tls-key KEY.pem]] ...
//! ```
//! Every flag can also come from an environment variable (see `--help`). Logs go to stderr
//! through env_logger (`RUST_LOG`, default `info`); stats lines go to stdout. It runs until
//! SIGINT or SIGTERM, then disconnects every client at once and exits 0.

#[cfg(feature = "agones")]
mod agones;
mod http;
mod status;
mod token;

use clap::{Parser, ValueEnum};
use enet_multiplayer::relay::DropReason;
use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, Error, MultiplayerPeer, PeerEvent, PeerId, Refusal,
    ServerPackets, Target, TlsIdentity, TotalStats, TransferMode, WebSocketListen,
};
use http::Http;
use signal_hook::iterator::Signals;
use status::{Board, Command, Seen};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    /// No compression: what Godot 3.2 and 3.3 use by default.
    None,
    /// ENet's range coder: what Godot 3.4+ and Redot 3 use by default.
    RangeCoder,
}

/// Godot 3 compatible ENet relay server.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Args {
    /// UDP port to listen on.
    #[arg(long, env = "RELAY_PORT", default_value_t = 7777)]
    port: u16,
    /// Most clients connected at once (1..=4095).
    #[arg(long, env = "RELAY_MAX_CLIENTS", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=4095))]
    max_clients: u16,
    /// Local IPv4 address to bind.
    #[arg(long, env = "RELAY_BIND", default_value_t = Ipv4Addr::UNSPECIFIED)]
    bind: Ipv4Addr,
    /// Do not relay between clients (and do not announce peers); the server still receives.
    #[arg(long, env = "RELAY_NO_RELAY")]
    no_relay: bool,
    /// Datagram compression; must match the clients' setting.
    #[arg(long, env = "RELAY_COMPRESSION", value_enum, default_value_t = CompressionArg::RangeCoder)]
    compression: CompressionArg,
    /// Most ENet channels a client may negotiate (3..=255); clients asking for fewer get fewer.
    #[arg(long, env = "RELAY_CHANNELS", default_value_t = 255,
          value_parser = clap::value_parser!(u16).range(3..=255))]
    channels: u16,
    /// Peer timeout: ENet's timeout limit (unacknowledged attempts).
    #[arg(long, env = "RELAY_TIMEOUT_LIMIT", default_value_t = 32)]
    timeout_limit: u32,
    /// Peer timeout: minimum milliseconds before a silent client is dropped.
    #[arg(long, env = "RELAY_TIMEOUT_MIN_MS", default_value_t = 5000)]
    timeout_min_ms: u32,
    /// Peer timeout: maximum milliseconds before a silent client is dropped.
    #[arg(long, env = "RELAY_TIMEOUT_MAX_MS", default_value_t = 30000)]
    timeout_max_ms: u32,
    /// Longest a connection may stay half-open (handshake not completed), in milliseconds; forged
    /// connect requests hold a slot this long at most.
    #[arg(long, env = "RELAY_HANDSHAKE_TIMEOUT_MS", default_value_t = enet_multiplayer::DEFAULT_HANDSHAKE_TIMEOUT_MS,
          value_parser = clap::value_parser!(u32).range(1..))]
    handshake_timeout_ms: u32,
    /// Packets per second accepted from one client; the excess is dropped and counted (0 = no limit).
    #[arg(long, env = "RELAY_RATE_LIMIT", default_value_t = 0)]
    rate_limit: u32,
    /// Most clients at once from one IP address, of either transport (0 = no limit).
    #[arg(long, env = "RELAY_MAX_CLIENTS_PER_IP", default_value_t = 0)]
    max_clients_per_ip: usize,
    /// Most connections accepted per second from one IP address, refused ones included
    /// (0 = no limit).
    #[arg(long, env = "RELAY_CONNECTS_PER_IP_PER_S", default_value_t = 0)]
    connects_per_ip_per_s: u32,
    /// Log lines on stderr as text, or as one JSON object per line (`ts`, `level`, `target`,
    /// `msg`) for a log collector.
    #[arg(long, env = "RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Seconds between stats lines on stdout (0 turns them off).
    #[arg(long, env = "RELAY_STATS_INTERVAL", default_value_t = 10.0)]
    stats_interval: f64,
    /// Write stats lines as one JSON object per line.
    #[arg(long, env = "RELAY_STATS_JSON")]
    stats_json: bool,
    /// Do not answer the clients' SIMPLIFY_PATH (Godot's RPC path cache): their broadcast
    /// RPCs then travel as one packet per peer (for measurements).
    #[arg(long, env = "RELAY_NO_CONFIRM_PATHS")]
    no_confirm_paths: bool,
    /// After traffic, keep polling without sleeping for this many microseconds before blocking
    /// in the socket again (saves a wake-up per packet under load; 0 always blocks).
    #[arg(long, env = "RELAY_BUSY_POLL_US", default_value_t = 1000)]
    busy_poll_us: u64,
    /// Most bytes queued or unacknowledged for one ENet client before it is disconnected as a
    /// slow consumer (0 = no cap).
    #[arg(long, env = "RELAY_MAX_QUEUED_BYTES", default_value_t = enet_multiplayer::DEFAULT_MAX_QUEUED_BYTES)]
    max_queued_bytes: usize,
    /// TCP port for Godot WebSocket clients (browser builds), in the same room as the ENet
    /// clients; off unless given (0 picks a free port).
    #[arg(long, env = "RELAY_WS_PORT")]
    ws_port: Option<u16>,
    /// PEM certificate chain: serve wss on the WebSocket port (needs --tls-key).
    #[arg(long, env = "RELAY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "RELAY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Address of the HTTP listener: /metrics (Prometheus), /healthz, /readyz, /status,
    /// /status.json, /admin/* (port 0 picks a free one).
    #[arg(long, env = "RELAY_HTTP", default_value = "127.0.0.1:9777")]
    http: std::net::SocketAddr,
    /// No HTTP listener.
    #[arg(long, env = "RELAY_NO_HTTP")]
    no_http: bool,
    /// Token the admin endpoints require (`Authorization: Bearer TOKEN`): POST /admin/refuse,
    /// /admin/accept, /admin/kick?id=N, /admin/drain. Without it they are off.
    #[arg(long, env = "RELAY_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// On SIGTERM (or SIGINT, or /admin/drain): stop accepting, tell every client the server
    /// is closing, and wait up to this many milliseconds for them to acknowledge; then exit 0.
    /// A second signal ends the wait at once.
    #[arg(long, env = "RELAY_DRAIN_MS", default_value_t = 5000)]
    drain_ms: u64,
    /// Join secret: each client must send a join token made with it (`relay-server token`)
    /// as its first message (`multiplayer.send_bytes`) within --join-timeout-ms; until then it
    /// is not announced and nothing it sends is relayed; an invalid or expired token, or none
    /// in time, disconnects it (refused: codes 10 and 11).
    #[arg(long, env = "RELAY_JOIN_SECRET", hide_env_values = true)]
    join_secret: Option<String>,
    /// How long a client has to send its join token, in milliseconds.
    #[arg(long, env = "RELAY_JOIN_TIMEOUT_MS", default_value_t = 5000)]
    join_timeout_ms: u64,
    /// Exit (0) once the room has been empty this many seconds after someone joined: one match
    /// per process, as orchestrators run game servers (0: never).
    #[arg(long, env = "RELAY_EXIT_WHEN_EMPTY", default_value_t = 0.0)]
    exit_when_empty: f64,
    /// Run as an Agones GameServer: Ready once listening, Health every 2 s, the player count
    /// as the label `players`, Shutdown at exit. The SDK server is on localhost at
    /// AGONES_SDK_GRPC_PORT (default 9357). Needs a build with the `agones` feature.
    #[arg(long, env = "RELAY_AGONES")]
    agones: bool,
}

/// A gated relay's first packet from client `id`: admits it if it is a valid join token.
fn admit(server: &mut ENetMultiplayerPeer, secret: &[u8], port: u16, id: PeerId, data: &[u8]) {
    let checked = match data.split_first() {
        Some((&RAW, token)) => match std::str::from_utf8(token) {
            Ok(token) => token::verify(secret, port, id, token, token::unix_now()),
            Err(_) => Err(token::TokenError::Malformed),
        },
        // Something else first (an RPC, a path): not a token.
        _ => Err(token::TokenError::Malformed),
    };
    match checked {
        Ok(()) => match server.approve(id) {
            Ok(()) => log::info!("client {id} admitted (valid join token)"),
            Err(e) => log::debug!("cannot admit client {id}: {e}"),
        },
        Err(why) => {
            log::info!("client {id} refused: join token {why:?}");
            if let Err(e) = server.reject(id, Refusal::NotAuthorized) {
                log::debug!("cannot refuse client {id}: {e}");
            }
        }
    }
}

/// How often the loop publishes its status and metrics for the HTTP thread.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Starts the drain: refuse new connections, tell every client; returns when it began.
fn start_drain(server: &mut ENetMultiplayerPeer) -> Instant {
    // The library logs the drain (one line).
    server.drain();
    Instant::now()
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// `[time LEVEL target] message`.
    Text,
    /// One JSON object per line.
    Json,
}

/// `relay-server token`: mints a join token.
#[derive(Debug, Parser)]
#[command(
    name = "relay-server token",
    about = "Prints a join token for one client of one server"
)]
struct TokenArgs {
    /// The server's join secret (its --join-secret).
    #[arg(long, env = "RELAY_JOIN_SECRET", hide_env_values = true)]
    secret: String,
    /// The server's ENet port (its --port).
    #[arg(long, env = "RELAY_PORT", default_value_t = 7777)]
    port: u16,
    /// The client's Godot peer id.
    #[arg(long)]
    id: u32,
    /// Seconds from now until the token no longer admits.
    #[arg(long, default_value_t = 300)]
    ttl: u64,
}

fn mint_token() -> ExitCode {
    match TokenArgs::try_parse_from(std::env::args().skip(1)) {
        Ok(t) => {
            println!(
                "{}",
                token::mint(t.secret.as_bytes(), t.port, t.id, token::unix_now() + t.ttl)
            );
            ExitCode::SUCCESS
        }
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            ExitCode::from(2)
        }
    }
}

/// Godot's RAW command byte (`send_bytes`): how a client sends its join token.
const RAW: u8 = 4;

/// The packets for the server a gated relay reads: node paths to confirm, and join tokens.
fn simplify_or_raw(payload: &[u8]) -> bool {
    enet_multiplayer::api::wire::is_simplify_path(payload) || payload.first() == Some(&RAW)
}

/// mimalloc: thread-local heaps, where glibc's malloc takes atomic operations on every call in
/// a process with more than one thread (this one has its HTTP and signal threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Normal pages (mimalloc would have the kernel zero 2 MiB ones through a join storm),
    // and ENet's blocks (several per packet) from mimalloc too, before any host exists.
    enet_wrapper::avoid_huge_pages();
    enet_wrapper::allocate_through_rust();
    if std::env::args().nth(1).as_deref() == Some("token") {
        return mint_token();
    }
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print and succeed.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's first line already says what is wrong with which flag.
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
    };
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if args.log_format == LogFormat::Json {
        logger.format(|buf, record| {
            use std::io::Write as _;
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    logger.init();
    if !(args.stats_interval >= 0.0 && args.stats_interval.is_finite()) {
        eprintln!("error: --stats-interval must be a number of seconds >= 0");
        return ExitCode::from(2);
    }
    if !(args.exit_when_empty >= 0.0 && args.exit_when_empty.is_finite()) {
        eprintln!("error: --exit-when-empty must be a number of seconds >= 0");
        return ExitCode::from(2);
    }
    if args.agones && !cfg!(feature = "agones") {
        eprintln!(
            "error: --agones needs a relay-server built with the agones feature \
             (cargo install --path . --features agones)"
        );
        return ExitCode::from(2);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    // SIGTERM and SIGINT, counted: the first starts the drain, a second ends it at once.
    let signals_seen = Arc::new(AtomicUsize::new(0));
    let mut signals = Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM])
        .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    let signal_handle = signals.handle();
    let counter = Arc::clone(&signals_seen);
    let signal_thread = std::thread::spawn(move || {
        for _ in signals.forever() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let websocket = match args.ws_port {
        None if args.tls_cert.is_some() => return Err("--tls-cert needs --ws-port".into()),
        None => None,
        Some(port) => {
            let mut listen = WebSocketListen::new(port).bind_address(args.bind);
            if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
                listen =
                    listen.tls(TlsIdentity::from_pem_files(cert, key).map_err(|e| e.to_string())?);
            }
            Some(listen)
        }
    };
    let mut builder = ENetMultiplayerPeer::server(args.port)
        .bind_address(args.bind)
        .max_clients(usize::from(args.max_clients))
        .server_relay(!args.no_relay)
        .compression(match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::RangeCoder => Compression::RangeCoder,
        })
        .channel_limit(usize::from(args.channels))
        .peer_timeout(args.timeout_limit, args.timeout_min_ms, args.timeout_max_ms)
        .rate_limit((args.rate_limit > 0).then_some(args.rate_limit))
        .handshake_timeout_ms(args.handshake_timeout_ms)
        .max_queued_bytes(args.max_queued_bytes)
        .max_clients_per_address((args.max_clients_per_ip > 0).then_some(args.max_clients_per_ip))
        .connects_per_address_per_second(
            (args.connects_per_ip_per_s > 0).then_some(args.connects_per_ip_per_s),
        )
        // A pure relay: of the packets addressed to the server (its share of every broadcast)
        // only SIMPLIFY_PATH reaches the loop below; the rest are neither copied nor queued.
        .gated(args.join_secret.is_some())
        .server_packets(if args.join_secret.is_some() {
            ServerPackets::Matching(simplify_or_raw)
        } else if args.no_confirm_paths {
            ServerPackets::None
        } else {
            ServerPackets::Matching(enet_multiplayer::api::wire::is_simplify_path)
        });
    if let Some(listen) = websocket {
        builder = builder.websocket(listen);
    }
    let mut server = builder.build().map_err(|e| match e {
        Error::Enet(enet_wrapper_error) if is_addr_in_use(&enet_wrapper_error) => format!(
            "cannot listen on {}:{}: the port is already in use",
            args.bind, args.port
        ),
        other => format!(
            "cannot start the server on {}:{}: {other}",
            args.bind, args.port
        ),
    })?;
    log::info!(
        "relay server on {}:{}{} (max clients {}, relay {}, compression {:?})",
        args.bind,
        server.local_port().unwrap_or(args.port),
        server
            .websocket_port()
            .map(|p| format!(
                ", websocket port {p}{}",
                if args.tls_cert.is_some() {
                    " (wss)"
                } else {
                    ""
                }
            ))
            .unwrap_or_default(),
        args.max_clients,
        if args.no_relay { "off" } else { "on" },
        args.compression
    );

    #[cfg(feature = "agones")]
    let mut agones = match args.agones {
        true => Some(agones::Agones::start()?),
        false => None,
    };

    let board = Arc::new(Board::new());
    let mut seen = Seen::default();
    // Published before the listener starts: /readyz never answers for a server it has not seen.
    board.publish(&server, &mut seen, false);
    let (commands_tx, commands) = mpsc::channel::<Command>();
    let http = if args.no_http {
        None
    } else {
        let http = Http::start(
            args.http,
            Arc::clone(&board),
            commands_tx,
            args.admin_token.clone(),
        )?;
        log::info!(
            "http on {} (/metrics /healthz /readyz /status{})",
            http.address,
            if args.admin_token.is_some() {
                " /admin"
            } else {
                ""
            }
        );
        Some(http)
    };
    #[cfg(feature = "agones")]
    if let Some(agones) = &mut agones {
        agones.ready();
    }
    let mut last_publish = Some(Instant::now());
    let mut draining: Option<Instant> = None;
    let drain_for = Duration::from_millis(args.drain_ms);
    let exit_when_empty =
        (args.exit_when_empty > 0.0).then(|| Duration::from_secs_f64(args.exit_when_empty));
    // Gated: the clients that have yet to send their join token, and their deadlines.
    let mut awaiting: HashMap<PeerId, Instant> = HashMap::new();
    let join_timeout = Duration::from_millis(args.join_timeout_ms);
    let enet_port = server.local_port().unwrap_or(args.port);
    // Since when the room has been empty, once someone has joined.
    let mut empty_since: Option<Instant> = None;
    let mut ever_joined = false;

    let idle_wait = Duration::from_millis(100);
    let busy_window = Duration::from_micros(args.busy_poll_us);
    let stats_every =
        (args.stats_interval > 0.0).then(|| Duration::from_secs_f64(args.stats_interval));
    let mut last_traffic: Option<Instant> = None;
    let mut last_stats = (Instant::now(), server.stats());
    let end = loop {
        let signalled = signals_seen.load(Ordering::Relaxed);
        if signalled > 1 {
            break "a second signal";
        }
        if signalled == 1 && draining.is_none() {
            draining = Some(start_drain(&mut server));
        }
        if let Some(since) = draining {
            if server.peer_count() == 0 {
                break "every client acknowledged";
            }
            if since.elapsed() >= drain_for {
                break "the drain time passed";
            }
        }
        if let (Some(wait), Some(since)) = (exit_when_empty, empty_since) {
            if since.elapsed() >= wait {
                log::info!(
                    "the room has been empty for {:.1} s: exiting (--exit-when-empty)",
                    since.elapsed().as_secs_f64()
                );
                break "the room stayed empty";
            }
        }
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Refuse(refuse) => {
                    server.set_refuse_new_connections(refuse);
                    log::info!(
                        "{} new connections (admin)",
                        if refuse { "refusing" } else { "accepting" }
                    );
                }
                Command::Kick(id) => match server.disconnect_peer(id, false) {
                    Ok(()) => log::info!("kicking client {id} (admin)"),
                    Err(e) => log::warn!("cannot kick client {id}: {e}"),
                },
                Command::Drain if draining.is_none() => draining = Some(start_drain(&mut server)),
                Command::Drain => {}
            }
        }
        let busy = last_traffic.is_some_and(|t| t.elapsed() < busy_window);
        let polled = if busy {
            server.poll()
        } else {
            server.poll_timeout(idle_wait)
        };
        match polled {
            Ok(polled) if polled.packets > 0 => last_traffic = Some(Instant::now()),
            Ok(_) => {}
            Err(e) => log::error!("poll failed: {e}"),
        }
        while let Some(event) = server.pop_event() {
            match event {
                // The library logs arrivals and departures (with the address), once.
                PeerEvent::PeerConnected(id) => {
                    seen.connected(id);
                    ever_joined = true;
                    if args.join_secret.is_some() {
                        awaiting.insert(id, Instant::now() + join_timeout);
                    }
                }
                PeerEvent::PeerDisconnected(id) => {
                    seen.disconnected(id);
                    awaiting.remove(&id);
                }
                other => log::debug!("{other:?}"),
            }
        }
        #[cfg(feature = "agones")]
        if let Some(agones) = &mut agones {
            if let Err(e) = agones.tick(server.peer_count()) {
                server.close();
                return Err(e);
            }
        }
        if ever_joined && server.peer_count() == 0 {
            empty_since.get_or_insert_with(Instant::now);
        } else {
            empty_since = None;
        }
        if last_publish.map_or(true, |t| t.elapsed() >= PUBLISH_EVERY) {
            board.publish(&server, &mut seen, draining.is_some());
            last_publish = Some(Instant::now());
        }
        // Packets addressed to the server itself (only SIMPLIFY_PATH gets here): a relay has
        // no use for them, but it answers a SIMPLIFY_PATH with CONFIRM_PATH as Godot's own
        // server does, so that a Godot client sends a broadcast RPC as one packet instead of
        // one per peer.
        while let Some(packet) = server.get_packet() {
            if awaiting.remove(&packet.from).is_some() {
                let secret = args.join_secret.as_deref().unwrap_or_default().as_bytes();
                admit(&mut server, secret, enet_port, packet.from, &packet.data);
                continue;
            }
            if let Some(confirm) = enet_multiplayer::api::wire::confirm_for_simplify(&packet.data) {
                let to = Target::Peer(packet.from);
                if let Err(e) = server.send(to, TransferMode::Reliable, 0, &confirm) {
                    log::debug!(
                        "could not confirm a node path to client {}: {e}",
                        packet.from
                    );
                }
            }
        }
        if !awaiting.is_empty() {
            let now = Instant::now();
            awaiting.retain(|&id, deadline| {
                if now < *deadline {
                    return true;
                }
                log::info!(
                    "client {id} refused: no join token within {} ms",
                    join_timeout.as_millis()
                );
                if let Err(e) = server.reject(id, Refusal::AdmissionTimeout) {
                    log::debug!("cannot refuse client {id}: {e}");
                }
                false
            });
        }
        if let Some(every) = stats_every {
            let elapsed = last_stats.0.elapsed();
            if elapsed >= every {
                let now = server.stats();
                println!(
                    "{}",
                    stats_line(&server, &last_stats.1, &now, elapsed, args.stats_json)
                );
                last_stats = (Instant::now(), now);
            }
        }
    };
    let started = Instant::now();
    let clients = server.peer_count();
    server.close();
    log::info!(
        "shut down ({end}): {clients} clients still connected were disconnected, in {:?}",
        started.elapsed()
    );
    #[cfg(feature = "agones")]
    if let Some(agones) = agones {
        agones.shutdown();
    }
    if let Some(http) = http {
        http.stop();
    }
    signal_handle.close();
    let _ = signal_thread.join();
    Ok(())
}

fn is_addr_in_use(e: &enet_multiplayer::EnetError) -> bool {
    matches!(e, enet_multiplayer::EnetError::HostCreate { source, .. }
        if source.kind() == std::io::ErrorKind::AddrInUse)
}

fn stats_line(
    server: &ENetMultiplayerPeer,
    before: &TotalStats,
    now: &TotalStats,
    elapsed: Duration,
    json: bool,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
    let ids = server.peer_ids();
    let peers = ids.len();
    let ws_peers = ids
        .iter()
        .filter(|&&id| server.is_websocket_peer(id))
        .count();
    let fields = [
        ("packets_in_per_s", rate(now.packets_in, before.packets_in)),
        ("bytes_in_per_s", rate(now.bytes_in, before.bytes_in)),
        (
            "packets_out_per_s",
            rate(now.packets_out, before.packets_out),
        ),
        ("bytes_out_per_s", rate(now.bytes_out, before.bytes_out)),
        ("relayed_per_s", rate(now.relayed, before.relayed)),
    ];
    let drops: Vec<(DropReason, u64)> = now.drops.iter().collect();
    if json {
        let mut s = format!("{{\"peers\":{peers}");
        for (k, v) in fields {
            s.push_str(&format!(",\"{k}\":{v:.1}"));
        }
        s.push_str(&format!(
            ",\"packets_in_total\":{},\"bytes_in_total\":{},\"relayed_total\":{},\"refused_total\":{},\"handshakes_total\":{},\"slow_consumers_total\":{}",
            now.packets_in, now.bytes_in, now.relayed, now.refused, now.handshakes, now.slow_consumers
        ));
        s.push_str(",\"drops\":{");
        let parts: Vec<String> = drops
            .iter()
            .map(|(r, n)| format!("\"{}\":{n}", r.name()))
            .collect();
        s.push_str(&parts.join(","));
        s.push('}');
        if let Some(w) = server.websocket_stats() {
            let parts: Vec<String> = w
                .drops
                .iter()
                .map(|(r, n)| format!("\"{}\":{n}", r.name()))
                .collect();
            s.push_str(&format!(
                ",\"websocket\":{{\"peers\":{ws_peers},\"packets_in_total\":{},\"bytes_in_total\":{},\"packets_out_total\":{},\"relayed_total\":{},\"handshakes_total\":{},\"handshakes_failed\":{},\"handshake_timeouts\":{},\"handshakes_evicted\":{},\"closed_too_large\":{},\"closed_protocol\":{},\"slow_consumers\":{},\"drops\":{{{}}}}}",
                w.packets_in, w.bytes_in, w.packets_out, w.relayed, w.handshakes, w.handshakes_failed,
                w.handshake_timeouts, w.handshakes_evicted, w.closed_too_large, w.closed_protocol,
                w.slow_consumers, parts.join(",")
            ));
        }
        s.push('}');
        s
    } else {
        let mut s = format!("stats: peers={peers}");
        for (k, v) in fields {
            s.push_str(&format!(" {k}={v:.1}"));
        }
        s.push_str(&format!(
            " relayed_total={} refused_total={} handshakes_total={} slow_consumers_total={}",
            now.relayed, now.refused, now.handshakes, now.slow_consumers
        ));
        let parts: Vec<String> = drops
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{}={n}", r.name()))
            .collect();
        s.push_str(&format!(
            " drops_total={} [{}]",
            now.drops.total(),
            parts.join(" ")
        ));
        if let Some(w) = server.websocket_stats() {
            s.push_str(&format!(
                " websocket: peers={ws_peers} packets_in_total={} relayed_total={} handshakes_total={} failed={} timeouts={} slow_consumers={} drops_total={}",
                w.packets_in, w.relayed, w.handshakes, w.handshakes_failed, w.handshake_timeouts,
                w.slow_consumers, w.drops.total()
            ));
        }
        s
    }
}
