//! The dedicated relay server as a process: flags, signals, stats, rate limit, idle cost, and
//! the chat example talking through it. Spawns the `relay-server` binary Cargo built for this
//! test (feature `relay-server`; scripts/test.sh enables it) and the example binaries.

use enet_multiplayer::{
    Compression, ConnectionStatus, DisconnectReason, ENetMultiplayerPeer, MultiplayerPeer,
    PeerEvent, Refusal, Target, TransferMode, WebSocketMultiplayerPeer,
};
use std::io::Write;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::process::{example, free_port, free_tcp_port, relay_command, start_relay, Proc};

const LIMIT: Duration = Duration::from_secs(15);

/// The relay server binary, built by Cargo for this test (never a stale file).
const RELAY: &str = env!("CARGO_BIN_EXE_relay-server");

/// The relay server on `port` (loopback, no compression), once it says it listens.
fn spawn_relay(port: u16, extra: &[&str]) -> Proc {
    let mut cmd = relay_command(RELAY, port, "none");
    // Any free port: tests run relays side by side.
    cmd.args(["--http", "127.0.0.1:0"]).args(extra);
    start_relay(cmd, LIMIT)
}

struct Client {
    peer: ENetMultiplayerPeer,
    events: Vec<PeerEvent>,
    got: Vec<(u32, Vec<u8>)>,
}

fn clients(port: u16, n: usize) -> Vec<Client> {
    (0..n)
        .map(|_| Client {
            peer: ENetMultiplayerPeer::client("127.0.0.1", port)
                .compression(Compression::None)
                .build()
                .unwrap(),
            events: Vec::new(),
            got: Vec::new(),
        })
        .collect()
}

fn pump_until(cs: &mut [Client], what: &str, done: impl Fn(&[Client]) -> bool) {
    let start = Instant::now();
    loop {
        for c in cs.iter_mut() {
            c.peer.poll_timeout(Duration::from_millis(1)).unwrap();
            while let Some(e) = c.peer.pop_event() {
                c.events.push(e);
            }
            while let Some(p) = c.peer.get_packet() {
                c.got.push((p.from, p.data.to_vec()));
            }
        }
        if done(cs) {
            return;
        }
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
    }
}

fn meshed(cs: &[Client]) -> bool {
    cs.iter().all(|c| {
        c.events
            .iter()
            .filter(|e| matches!(e, PeerEvent::PeerConnected(_)))
            .count()
            == cs.len()
    })
}

#[test]
fn help_lists_every_flag_with_its_default_and_env() {
    let out = Command::new(RELAY).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, default, env) in [
        ("--port", Some("7777"), "RELAY_PORT"),
        ("--max-clients", Some("32"), "RELAY_MAX_CLIENTS"),
        ("--bind", Some("0.0.0.0"), "RELAY_BIND"),
        ("--no-relay", None, "RELAY_NO_RELAY"),
        ("--compression", Some("range-coder"), "RELAY_COMPRESSION"),
        ("--channels", Some("255"), "RELAY_CHANNELS"),
        ("--timeout-limit", Some("32"), "RELAY_TIMEOUT_LIMIT"),
        ("--timeout-min-ms", Some("5000"), "RELAY_TIMEOUT_MIN_MS"),
        ("--timeout-max-ms", Some("30000"), "RELAY_TIMEOUT_MAX_MS"),
        ("--rate-limit", Some("0"), "RELAY_RATE_LIMIT"),
        ("--stats-interval", Some("10"), "RELAY_STATS_INTERVAL"),
        ("--stats-json", None, "RELAY_STATS_JSON"),
        ("--busy-poll-us", Some("1000"), "RELAY_BUSY_POLL_US"),
        ("--no-confirm-paths", None, "RELAY_NO_CONFIRM_PATHS"),
        (
            "--handshake-timeout-ms",
            Some("5000"),
            "RELAY_HANDSHAKE_TIMEOUT_MS",
        ),
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
        let section = &help[at..];
        let end = section[2..]
            .find("\n      --")
            .map_or(section.len(), |e| e + 2);
        let section = &section[..end];
        assert!(
            section.contains(&format!("[env: {env}=")),
            "{flag}: env {env} in {section}"
        );
        if let Some(d) = default {
            assert!(
                section.contains(&format!("[default: {d}]")),
                "{flag}: default {d} in {section}"
            );
        }
    }
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [
        vec!["--port", "seventy"],
        vec!["--port", "70000"],
        vec!["--max-clients", "0"],
        vec!["--max-clients", "4096"],
        vec!["--compression", "zip"],
        vec!["--bind", "not-an-ip"],
        vec!["--stats-interval", "-1"],
        vec!["--frobnicate"],
    ] {
        let out = Command::new(RELAY).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}

#[test]
fn environment_variables_set_flags() {
    let port = free_port();
    let mut cmd = Command::new(RELAY);
    cmd.env("RELAY_PORT", port.to_string())
        .env("RELAY_BIND", "127.0.0.1")
        .env("RELAY_COMPRESSION", "none")
        .env("RELAY_MAX_CLIENTS", "1")
        .env("RELAY_HTTP", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    let mut relay = Proc::spawn(cmd);
    relay.wait_line(
        |l| l.contains(&format!("relay server on 127.0.0.1:{port} (max clients 1")),
        LIMIT,
    );
    // max clients 1 from the environment: the second client is refused.
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "one accepted, one refused", |cs| {
        cs.iter()
            .any(|c| c.events.contains(&PeerEvent::ConnectionSucceeded))
            && cs.iter().any(|c| {
                c.events.iter().any(|e| {
                    matches!(
                        e,
                        PeerEvent::ServerDisconnected(DisconnectReason::Refused(_))
                            | PeerEvent::ConnectionFailed(DisconnectReason::Refused(_))
                    )
                })
            })
    });
}

#[test]
fn port_in_use_exits_1_with_a_clear_message() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(RELAY)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}

fn sigterm_or_sigint_disconnects_everyone_and_exits_0(sig: &str) {
    let port = free_port();
    let mut relay = spawn_relay(port, &[]);
    let mut cs = clients(port, 3);
    pump_until(&mut cs, "the mesh", meshed);
    let to = cs[1].peer.unique_id();
    cs[0]
        .peer
        .send(
            Target::Peer(to),
            TransferMode::Reliable,
            0,
            b"through the relay",
        )
        .unwrap();
    pump_until(&mut cs, "relayed traffic", |cs| !cs[1].got.is_empty());
    assert_eq!(
        cs[1].got[0],
        (cs[0].peer.unique_id(), b"through the relay".to_vec())
    );

    let sent = Instant::now();
    relay.signal(sig);
    pump_until(&mut cs, "server_disconnected at every client", |cs| {
        cs.iter().all(|c| {
            c.events.contains(&PeerEvent::ServerDisconnected(
                DisconnectReason::ServerClosed,
            ))
        })
    });
    let noticed = sent.elapsed();
    let status = relay
        .wait_exit(Duration::from_secs(1))
        .expect("the relay exits within 1 s");
    let exited = sent.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(
        noticed < Duration::from_secs(1),
        "clients noticed after {noticed:?}"
    );
    for c in &cs {
        assert_eq!(c.peer.connection_status(), ConnectionStatus::Disconnected);
    }
    // A drain: every client acknowledged, none was left to cut off.
    relay.wait_line(
        |l| l.contains("shut down (every client acknowledged): 0 clients still connected"),
        LIMIT,
    );
    eprintln!("{sig}: clients noticed after {noticed:?}, process exited after {exited:?}");
}

#[test]
fn sigterm_disconnects_everyone_and_exits_0() {
    sigterm_or_sigint_disconnects_everyone_and_exits_0("TERM");
}

#[test]
fn sigint_disconnects_everyone_and_exits_0() {
    sigterm_or_sigint_disconnects_everyone_and_exits_0("INT");
}

fn json_field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[test]
fn stats_lines_text_and_json() {
    let port = free_port();
    let mut relay = spawn_relay(port, &["--stats-interval", "0.2", "--stats-json"]);
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    for i in 0..50u32 {
        cs[0]
            .peer
            .send(
                Target::Broadcast,
                TransferMode::Reliable,
                0,
                &i.to_le_bytes(),
            )
            .unwrap();
    }
    pump_until(&mut cs, "50 relayed", |cs| cs[1].got.len() == 50);
    let line = relay.wait_line(
        |l| l.starts_with('{') && json_field(l, "relayed_total") == Some(50.0),
        LIMIT,
    );
    assert_eq!(json_field(&line, "peers"), Some(2.0), "{line}");
    assert_eq!(json_field(&line, "handshakes_total"), Some(2.0), "{line}");
    for key in [
        "packets_in_per_s",
        "bytes_in_per_s",
        "packets_out_per_s",
        "bytes_out_per_s",
        "relayed_per_s",
        "refused_total",
        "handshakes_total",
        "rate_limited",
        "spoofed_source",
        "oversize",
        "channel_out_of_range",
    ] {
        assert!(json_field(&line, key).is_some(), "{key} in {line}");
    }
    drop(relay);
    let mut text = spawn_relay(free_port(), &["--stats-interval", "0.2"]);
    let l = text.wait_line(|l| l.starts_with("stats: peers=0"), LIMIT);
    assert!(
        l.contains("packets_in_per_s=") && l.contains("drops_total=0"),
        "{l}"
    );
    // 0 turns stats off.
    let mut quiet = spawn_relay(free_port(), &["--stats-interval", "0"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        quiet.pump();
    }
    let seen = quiet.all_lines();
    assert!(!seen.iter().any(|l| l.starts_with("stats:")), "{seen:?}");
}

#[test]
fn a_flooding_client_is_limited_and_others_get_through() {
    let port = free_port();
    let mut relay = spawn_relay(
        port,
        &[
            "--rate-limit",
            "100",
            "--stats-interval",
            "0.2",
            "--stats-json",
        ],
    );
    let mut cs = clients(port, 3);
    pump_until(&mut cs, "the mesh", meshed);
    let victim = cs[2].peer.unique_id();
    // The flooder sends 1000 packets at once; the honest client sends 20.
    for i in 0..1000u32 {
        cs[0]
            .peer
            .send(
                Target::Peer(victim),
                TransferMode::Reliable,
                0,
                &i.to_le_bytes(),
            )
            .unwrap();
    }
    for i in 0..20u32 {
        cs[1]
            .peer
            .send(
                Target::Peer(victim),
                TransferMode::Reliable,
                0,
                &(10_000 + i).to_le_bytes(),
            )
            .unwrap();
    }
    let honest = cs[1].peer.unique_id();
    pump_until(&mut cs, "the honest client's 20 packets", |cs| {
        cs[2].got.iter().filter(|(from, _)| *from == honest).count() == 20
    });
    let line = relay.wait_line(
        |l| json_field(l, "rate_limited").is_some_and(|n| n > 0.0),
        LIMIT,
    );
    let limited = json_field(&line, "rate_limited").unwrap();
    let flooded = cs[2].got.iter().filter(|(from, _)| *from != honest).count();
    assert!(
        flooded <= 200,
        "at most ~limit per second of the flood passed: {flooded}"
    );
    assert!(limited >= 700.0, "the excess was counted: {line}");
    assert!(cs
        .iter()
        .all(|c| c.peer.connection_status() == ConnectionStatus::Connected));
}

/// With 100 idle clients connected, the server sleeps in its socket: a busy loop would burn a
/// whole core. The bound is loose (shared machine); the note reports the measured figure.
#[test]
fn idle_server_with_100_clients_uses_almost_no_cpu() {
    let port = free_port();
    let relay = spawn_relay(port, &["--max-clients", "200", "--stats-interval", "0"]);
    let mut cs = clients(port, 100);
    pump_until(&mut cs, "100 connections", |cs| {
        cs.iter()
            .all(|c| c.events.contains(&PeerEvent::ConnectionSucceeded))
    });
    // Idle: keep the clients' ENet alive (pings) while measuring the server process.
    let ticks_per_s = 100.0; // Linux USER_HZ
    let before = relay.cpu_ticks();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for c in cs.iter_mut() {
            c.peer.poll().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = (relay.cpu_ticks() - before) as f64 / ticks_per_s;
    let share = used / start.elapsed().as_secs_f64();
    eprintln!(
        "idle relay with 100 clients: {:.2}% of a core",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "idle server used {:.1}% of a core",
        share * 100.0
    );
}

/// A field of /proc/PID/status in KiB (VmRSS, VmHWM).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// A join storm costs the relay the announcements ENet holds until they are acknowledged;
/// once they are, the relay gives that memory back although every client stays connected.
/// (It used to give memory back as soon as the storm's events were handled, while most
/// announcements still waited in ENet, and then kept the whole peak while idle.)
#[test]
fn a_join_storm_s_memory_goes_back_while_the_clients_stay() {
    const N: usize = 600;
    let port = free_port();
    let relay = spawn_relay(port, &["--max-clients", "640", "--stats-interval", "0"]);
    let before = status_kib(relay.pid(), "VmRSS");
    let mut cs = clients(port, N);
    let pump = |cs: &mut [Client]| {
        for c in cs.iter_mut() {
            c.peer.poll().unwrap();
            while let Some(e) = c.peer.pop_event() {
                c.events.push(e);
            }
        }
    };
    let start = Instant::now();
    while !meshed(&cs) {
        assert!(start.elapsed() < LIMIT, "the storm of {N} did not mesh");
        pump(&mut cs);
    }
    let peak = status_kib(relay.pid(), "VmHWM");
    let burst = peak.saturating_sub(before);
    assert!(
        burst > 5_000,
        "{N} clients' announcements should cost the relay megabytes: {burst} KiB"
    );
    // Idle, connected: the clients only keep ENet alive.
    let mut after = status_kib(relay.pid(), "VmRSS");
    let quiet = Instant::now();
    while after.saturating_sub(before) >= burst / 4 && quiet.elapsed() < Duration::from_secs(10) {
        pump(&mut cs);
        std::thread::sleep(Duration::from_millis(5));
        after = status_kib(relay.pid(), "VmRSS");
    }
    eprintln!(
        "relay resident: before {before} KiB, peak {peak} KiB, {:.1} s after the mesh {after} KiB",
        quiet.elapsed().as_secs_f64()
    );
    assert!(
        after.saturating_sub(before) < burst / 4,
        "kept {} KiB of a {burst} KiB storm 10 s after it",
        after.saturating_sub(before)
    );
    assert!(
        cs.iter().all(|c| c.peer.peer_ids().len() == N),
        "every client still sees the other {} and the server",
        N - 1
    );
}

/// Godot's server answers SIMPLIFY_PATH with CONFIRM_PATH; so does the relay (unless told not
/// to), or Godot clients send every broadcast RPC once per peer.
#[test]
fn the_relay_confirms_node_paths_unless_told_not_to() {
    let simplify = enet_multiplayer::api::wire::simplify_path(1, "Main");
    for (flags, answers) in [(&[][..], true), (&["--no-confirm-paths"][..], false)] {
        let port = free_port();
        let mut relay = spawn_relay(port, flags);
        let mut cs = clients(port, 1);
        pump_until(&mut cs, "the connection", meshed);
        let c = &mut cs[0].peer;
        c.send(Target::Server, TransferMode::Reliable, 0, &simplify)
            .unwrap();
        c.send(Target::Server, TransferMode::Reliable, 0, b"not a command")
            .unwrap();
        // Barriers: a packet the client sends itself comes back through the relay. The server
        // answers what it received after the poll that received it, and the answer and the
        // relayed barriers travel on the same reliable channel: once a barrier sent after the
        // server's poll returned is back, an answer would be too. A poll may go on while
        // packets keep coming, so with answers wait for the answer itself; without, let three
        // barriers make the round trip one after another.
        let me = cs[0].peer.unique_id();
        let from_server = |cs: &[Client]| cs[0].got.iter().filter(|(f, _)| *f == 1).count();
        if answers {
            pump_until(&mut cs, "the confirm", |cs| from_server(cs) > 0);
        }
        for barrier in [&b"barrier 1"[..], b"barrier 2", b"barrier 3"] {
            cs[0]
                .peer
                .send(Target::Peer(me), TransferMode::Reliable, 0, barrier)
                .unwrap();
            pump_until(&mut cs, "a barrier", |cs| {
                cs[0].got.iter().any(|(_, d)| d == barrier)
            });
        }
        let confirms: Vec<_> = cs[0].got.iter().filter(|(from, _)| *from == 1).collect();
        if answers {
            assert_eq!(confirms, [&(1, b"\x03Main\x00".to_vec())], "{flags:?}");
        } else {
            assert!(confirms.is_empty(), "{flags:?}: {confirms:?}");
        }
        relay.signal("TERM");
        assert!(relay.wait_exit(LIMIT).is_some_and(|s| s.success()));
    }
}

#[test]
fn two_chat_clients_talk_through_the_relay() {
    let port = free_port();
    let _relay = spawn_relay(port, &[]);
    let chat = |name: &str| {
        let mut cmd = Command::new(example("chat"));
        cmd.args(["--connect", &format!("127.0.0.1:{port}"), "--name", name])
            .args(["--compression", "none"]);
        Proc::spawn(cmd)
    };
    let mut ann = chat("Ann");
    ann.wait_line(|l| l.starts_with("* connected as Ann"), LIMIT);
    let mut bob = chat("Bob");
    bob.wait_line(|l| l.starts_with("* connected as Bob"), LIMIT);
    ann.wait_line(|l| l == "* Bob joined", LIMIT);
    bob.wait_line(|l| l == "* Ann joined", LIMIT);
    writeln!(ann.child.stdin.as_mut().unwrap(), "hello Bob").unwrap();
    bob.wait_line(|l| l == "<Ann> hello Bob", LIMIT);
    writeln!(bob.child.stdin.as_mut().unwrap(), "hi Ann").unwrap();
    ann.wait_line(|l| l == "<Bob> hi Ann", LIMIT);
    writeln!(ann.child.stdin.as_mut().unwrap(), "/quit").unwrap();
    bob.wait_line(|l| l == "* Ann left", LIMIT);
    assert_eq!(
        ann.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

/// A peer with the events and packets it reported.
type Recorded = (
    Box<dyn MultiplayerPeer>,
    Vec<PeerEvent>,
    Vec<(u32, Vec<u8>)>,
);

/// Polls every peer once and records its events and packets.
fn pump_peers(peers: &mut [Recorded]) {
    for (p, events, got) in peers.iter_mut() {
        p.poll().unwrap();
        while let Some(e) = p.pop_event() {
            events.push(e);
        }
        while let Some(pk) = p.get_packet() {
            got.push((pk.from, pk.data.to_vec()));
        }
    }
}

#[test]
fn websocket_and_enet_clients_share_the_relay_room() {
    let (port, ws_port) = (free_port(), free_tcp_port());
    let mut relay = spawn_relay(
        port,
        &[
            "--ws-port",
            &ws_port.to_string(),
            "--stats-interval",
            "0.2",
            "--stats-json",
        ],
    );
    let enet: Box<dyn MultiplayerPeer> = Box::new(
        ENetMultiplayerPeer::client("127.0.0.1", port)
            .compression(Compression::None)
            .build()
            .unwrap(),
    );
    let ws: Box<dyn MultiplayerPeer> = Box::new(
        WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{ws_port}"))
            .build()
            .unwrap(),
    );
    let mut peers = vec![(enet, Vec::new(), Vec::new()), (ws, Vec::new(), Vec::new())];
    let start = Instant::now();
    let know_each_other = |peers: &[Recorded]| {
        let (a, b) = (peers[0].0.unique_id(), peers[1].0.unique_id());
        peers[0].1.contains(&PeerEvent::PeerConnected(b))
            && peers[1].1.contains(&PeerEvent::PeerConnected(a))
    };
    while !know_each_other(&peers) {
        assert!(
            start.elapsed() < LIMIT,
            "no mesh: {:?} {:?}",
            peers[0].1,
            peers[1].1
        );
        pump_peers(&mut peers);
        std::thread::sleep(Duration::from_millis(1));
    }
    let (a, b) = (peers[0].0.unique_id(), peers[1].0.unique_id());
    peers[0]
        .0
        .send(Target::Peer(b), TransferMode::Unreliable, 0, b"from enet")
        .unwrap();
    peers[1]
        .0
        .send(Target::Broadcast, TransferMode::Reliable, 0, b"from ws")
        .unwrap();
    while !(peers[0].2.contains(&(b, b"from ws".to_vec()))
        && peers[1].2.contains(&(a, b"from enet".to_vec())))
    {
        assert!(
            start.elapsed() < LIMIT,
            "packets missing: {:?} {:?}",
            peers[0].2,
            peers[1].2
        );
        pump_peers(&mut peers);
        std::thread::sleep(Duration::from_millis(1));
    }
    // The stats line counts the WebSocket side on its own.
    let line = relay.wait_line(
        |l| l.contains("\"websocket\":{\"peers\":1") && l.contains("\"relayed_total\":1,"),
        LIMIT,
    );
    assert!(line.contains("\"peers\":2"), "{line}");
}

#[test]
fn idle_server_with_100_enet_and_100_websocket_clients_uses_almost_no_cpu() {
    let (port, ws_port) = (free_port(), free_tcp_port());
    let relay = spawn_relay(
        port,
        &[
            "--max-clients",
            "300",
            "--stats-interval",
            "0",
            "--ws-port",
            &ws_port.to_string(),
        ],
    );
    let mut cs = clients(port, 100);
    let mut ws: Vec<WebSocketMultiplayerPeer> = (0..100)
        .map(|_| {
            WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{ws_port}"))
                .build()
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    while ws
        .iter()
        .any(|w| w.connection_status() != ConnectionStatus::Connected)
        || cs
            .iter()
            .any(|c| c.peer.connection_status() != ConnectionStatus::Connected)
    {
        assert!(start.elapsed() < LIMIT, "200 connections not made");
        for c in cs.iter_mut() {
            c.peer.poll().unwrap();
        }
        for w in ws.iter_mut() {
            w.poll().unwrap();
            while w.pop_event().is_some() {}
        }
    }
    let ticks_per_s = 100.0; // Linux USER_HZ
    let before = relay.cpu_ticks();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for c in cs.iter_mut() {
            c.peer.poll().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let used = (relay.cpu_ticks() - before) as f64 / ticks_per_s;
    let share = used / start.elapsed().as_secs_f64();
    eprintln!(
        "idle relay with 100 ENet and 100 WebSocket clients: {:.2}% of a core",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "idle server used {:.1}% of a core",
        share * 100.0
    );
}

// ---- the HTTP listener --------------------------------------------------------------------

/// The port of the relay's HTTP listener, from its log line.
fn http_port(relay: &mut Proc) -> u16 {
    let line = relay.wait_line(|l| l.contains("http on 127.0.0.1:"), LIMIT);
    let after = &line[line.find("http on 127.0.0.1:").unwrap() + "http on 127.0.0.1:".len()..];
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// One request: (status, body). `token` adds `Authorization: Bearer`.
fn http(method: &str, port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut request = ureq::request(method, &url).timeout(Duration::from_secs(5));
    if let Some(t) = token {
        request = request.set("Authorization", &format!("Bearer {t}"));
    }
    match request.call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// One sample of /metrics: name, sorted labels, value (a histogram: its count).
type Sample = (String, Vec<(String, String)>, f64);

/// /metrics parsed with a Prometheus text-format parser.
fn scrape(port: u16) -> Vec<Sample> {
    let (status, body) = http("GET", port, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => return None,
            };
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            labels.sort();
            Some((s.metric, labels, value))
        })
        .collect()
}

/// The value of `name` with `label` (or the only one when `None`), panicking when absent.
fn metric(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|(n, labels, _)| {
            n == name
                && label.map_or(true, |(k, v)| {
                    labels.iter().any(|(lk, lv)| lk == k && lv == v)
                })
        })
        .map(|s| s.2)
        .unwrap_or_else(|| panic!("no {name} {label:?} in /metrics"))
}

#[test]
fn metrics_move_with_traffic() {
    let port = free_port();
    let mut relay = spawn_relay(port, &[]);
    let hp = http_port(&mut relay);
    let before = scrape(hp);
    assert_eq!(
        metric(&before, "relay_peers", Some(("transport", "enet"))),
        0.0
    );
    assert_eq!(metric(&before, "relay_accepting", None), 1.0);
    assert_eq!(
        metric(
            &before,
            "relay_packets_in_total",
            Some(("transport", "enet"))
        ),
        0.0
    );
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    let to = cs[1].peer.unique_id();
    for i in 0..10u8 {
        cs[0]
            .peer
            .send(Target::Peer(to), TransferMode::Reliable, 0, &[i; 100])
            .unwrap();
    }
    pump_until(&mut cs, "ten relayed packets", |cs| cs[1].got.len() == 10);
    // The loop publishes once a second: scrape until the counters show the traffic.
    let start = Instant::now();
    let after = loop {
        let s = scrape(hp);
        if metric(&s, "relay_relayed_total", Some(("transport", "enet"))) >= 10.0 {
            break s;
        }
        assert!(start.elapsed() < LIMIT, "the counters never moved");
        pump_until(&mut cs, "a moment", |_| true);
        std::thread::sleep(Duration::from_millis(50));
    };
    let enet = Some(("transport", "enet"));
    assert_eq!(metric(&after, "relay_peers", enet), 2.0);
    assert_eq!(metric(&after, "relay_packets_in_total", enet), 10.0);
    assert_eq!(metric(&after, "relay_relayed_total", enet), 10.0);
    // 10 packets of 8 + 100 bytes in; out: the relayed ones and the two ADD_PEERs.
    assert_eq!(metric(&after, "relay_bytes_in_total", enet), 1080.0);
    assert!(metric(&after, "relay_packets_out_total", enet) >= 12.0);
    assert!(metric(&after, "relay_handshakes_total", enet) >= 2.0);
    assert_eq!(
        metric(&after, "relay_peers", Some(("transport", "websocket"))),
        0.0
    );
    assert!(metric(&after, "relay_uptime_seconds", None) > 0.0);
    assert!(metric(&after, "relay_rtt_milliseconds_count", None) > 0.0);
    assert_eq!(
        metric(
            &after,
            "relay_drops_total",
            Some(("reason", "unknown_target"))
        ),
        0.0
    );
    // A packet to nobody: dropped and counted by reason.
    cs[0]
        .peer
        .send(Target::Peer(to), TransferMode::Reliable, 0, b"x")
        .unwrap();
    let _ = cs.remove(1);
    let start = Instant::now();
    loop {
        pump_until(&mut cs, "a moment", |_| true);
        let s = scrape(hp);
        if metric(&s, "relay_peers", enet) == 1.0 {
            break;
        }
        assert!(start.elapsed() < LIMIT, "the departure never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Without --admin-token the admin endpoints are off.
    let (status, body) = http("POST", hp, "/admin/refuse", Some("anything"));
    assert_eq!(status, 404, "{body}");
    assert_eq!(http("GET", hp, "/nothing", None).0, 404);
}

#[test]
fn status_json_lists_the_peers_of_both_transports() {
    let port = free_port();
    let ws_port = free_tcp_port();
    let mut relay = spawn_relay(port, &["--ws-port", &ws_port.to_string()]);
    let hp = http_port(&mut relay);
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    let mut ws = WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{ws_port}/"))
        .build()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        pump_until(&mut cs, "a moment", |_| true);
        ws.poll().unwrap();
        while ws.pop_event().is_some() {}
        let (code, body) = http("GET", hp, "/status.json", None);
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["peers"].as_array().is_some_and(|p| p.len() == 3) {
            break v;
        }
        assert!(start.elapsed() < LIMIT, "status never showed 3 peers: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut transports: Vec<&str> = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["transport"].as_str().unwrap())
        .collect();
    transports.sort_unstable();
    assert_eq!(transports, ["enet", "enet", "websocket"]);
    let ids: Vec<u64> = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    for c in &cs {
        assert!(ids.contains(&u64::from(c.peer.unique_id())), "{ids:?}");
    }
    assert_eq!(status["totals"]["websocket_peers"], 1);
    assert_eq!(status["websocket_port"], ws_port);
    let page = http("GET", hp, "/status", None);
    assert_eq!(page.0, 200);
    assert!(
        page.1.contains("/status.json"),
        "the page reads /status.json"
    );
}

#[test]
fn health_and_readiness_through_a_drain_that_waits_for_acknowledgements() {
    use support::raw::RawClient;
    let port = free_port();
    let mut relay = spawn_relay(port, &["--drain-ms", "1500"]);
    let hp = http_port(&mut relay);
    assert_eq!(http("GET", hp, "/healthz", None), (200, "ok\n".into()));
    assert_eq!(http("GET", hp, "/readyz", None), (200, "ready\n".into()));
    // One honest client, and one that will stop servicing its connection (it never
    // acknowledges the server's goodbye).
    let mut cs = clients(port, 1);
    let mut stuck = RawClient::connect(port, 4242);
    let start = Instant::now();
    loop {
        pump_until(&mut cs, "a moment", |_| true);
        stuck.pump();
        let (_, body) = http("GET", hp, "/status.json", None);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["totals"]["peers"] == 2 {
            break;
        }
        assert!(start.elapsed() < LIMIT, "clients did not connect: {v}");
    }
    let sent = Instant::now();
    relay.signal("TERM");
    // Draining: alive, not ready.
    let start = Instant::now();
    loop {
        pump_until(&mut cs, "a moment", |_| true);
        let ready = http("GET", hp, "/readyz", None);
        if ready.0 == 503 {
            assert_eq!(ready.1, "draining\n");
            break;
        }
        assert!(start.elapsed() < LIMIT, "/readyz stayed {ready:?}");
    }
    assert_eq!(http("GET", hp, "/healthz", None).0, 200);
    pump_until(&mut cs, "the honest client told", |cs| {
        cs[0].events.contains(&PeerEvent::ServerDisconnected(
            DisconnectReason::ServerClosed,
        ))
    });
    let told = sent.elapsed();
    let status = relay
        .wait_exit(Duration::from_secs(5))
        .expect("the relay exits after the drain time");
    let exited = sent.elapsed();
    assert_eq!(status.code(), Some(0));
    // The stuck client never acknowledged: the relay waited the whole drain, not much more.
    assert!(
        exited >= Duration::from_millis(1400) && exited < Duration::from_millis(3500),
        "exited {exited:?} after SIGTERM with --drain-ms 1500"
    );
    relay.wait_line(
        |l| l.contains("shut down (the drain time passed): 1 clients still connected"),
        LIMIT,
    );
    eprintln!("drain: honest client told after {told:?}, exit after {exited:?}");
}

#[test]
fn admin_endpoints_refuse_accept_and_kick() {
    let port = free_port();
    let mut relay = spawn_relay(port, &["--admin-token", "s3cret"]);
    let hp = http_port(&mut relay);
    assert_eq!(http("POST", hp, "/admin/refuse", None).0, 401);
    assert_eq!(http("POST", hp, "/admin/refuse", Some("wrong")).0, 401);
    assert_eq!(http("GET", hp, "/admin/refuse", Some("s3cret")).0, 404);
    assert_eq!(http("POST", hp, "/admin/kick", Some("s3cret")).0, 400);
    assert_eq!(http("POST", hp, "/admin/refuse", Some("s3cret")).0, 202);
    let start = Instant::now();
    while http("GET", hp, "/readyz", None).0 != 503 {
        assert!(start.elapsed() < LIMIT, "/readyz never said not ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        http("GET", hp, "/readyz", None).1,
        "refusing new connections\n"
    );
    let mut refused = clients(port, 1);
    pump_until(&mut refused, "the refusal", |cs| {
        cs[0].events.iter().any(|e| {
            matches!(
                e,
                PeerEvent::ServerDisconnected(DisconnectReason::Refused(Refusal::NotAccepting))
                    | PeerEvent::ConnectionFailed(DisconnectReason::Refused(Refusal::NotAccepting))
            )
        })
    });
    assert_eq!(http("POST", hp, "/admin/accept", Some("s3cret")).0, 202);
    let start = Instant::now();
    while http("GET", hp, "/readyz", None).0 != 200 {
        assert!(start.elapsed() < LIMIT, "/readyz never said ready again");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    let victim = cs[1].peer.unique_id();
    let (status, body) = http(
        "POST",
        hp,
        &format!("/admin/kick?id={victim}"),
        Some("s3cret"),
    );
    assert_eq!(status, 202, "{body}");
    pump_until(&mut cs, "the kick", |cs| {
        cs[1]
            .events
            .contains(&PeerEvent::ServerDisconnected(DisconnectReason::Kicked))
            && cs[0].events.contains(&PeerEvent::PeerDisconnected(victim))
    });
    // Published once a second: scrape until the refusal shows.
    let start = Instant::now();
    while metric(
        &scrape(hp),
        "relay_refusals_total",
        Some(("reason", "not_accepting")),
    ) < 1.0
    {
        assert!(start.elapsed() < LIMIT, "the refusal was not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn exit_when_empty_ends_the_process_once_the_room_emptied() {
    let port = free_port();
    let mut relay = spawn_relay(port, &["--exit-when-empty", "0.5"]);
    // Nobody has joined yet: it waits for its match.
    assert!(
        relay.wait_exit(Duration::from_millis(1200)).is_none(),
        "exited before anyone joined"
    );
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    // One leaves: the room is not empty.
    let mut last = cs.pop().unwrap();
    drop(cs);
    assert!(
        relay.wait_exit(Duration::from_millis(1200)).is_none(),
        "exited with a client in the room"
    );
    last.peer.close();
    let left = Instant::now();
    let status = relay
        .wait_exit(LIMIT)
        .expect("exits once the room stayed empty");
    assert_eq!(status.code(), Some(0));
    assert!(
        left.elapsed() >= Duration::from_millis(400),
        "{:?}",
        left.elapsed()
    );
    relay.wait_line(|l| l.contains("--exit-when-empty"), LIMIT);
}

/// /status in headless Chromium: the page lists every connected peer (ENet and WebSocket),
/// draws the last minute's rates, and refreshes itself when a peer leaves. Screenshot:
/// target/browser-test/status.png.
#[test]
fn the_status_page_shows_the_connected_peers_in_a_browser() {
    use support::browser::{self, Chromium};
    let Some(bin) = browser::require_chromium() else {
        return;
    };
    let port = free_port();
    let ws_port = free_tcp_port();
    let mut relay = spawn_relay(port, &["--ws-port", &ws_port.to_string()]);
    let hp = http_port(&mut relay);
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    let mut ws = WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{ws_port}/"))
        .build()
        .unwrap();
    // Some traffic for the charts.
    let to = cs[1].peer.unique_id();
    let pump = |cs: &mut Vec<Client>, ws: &mut WebSocketMultiplayerPeer| {
        let _ = cs[0]
            .peer
            .send(Target::Peer(to), TransferMode::Unreliable, 0, &[1; 64]);
        pump_until(cs, "a moment", |_| true);
        ws.poll().unwrap();
        while ws.pop_event().is_some() {}
        while ws.get_packet().is_some() {}
    };
    let mut chrome = Chromium::launch(&bin).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://127.0.0.1:{hp}/status");
    let tab = chrome
        .open(&url, &mut || pump(&mut cs, &mut ws))
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = "document.querySelectorAll('#peers tr[data-id]').length";
    let limit = Duration::from_secs(20);
    let r = chrome.wait_for(&tab, &format!("{rows} === 3"), limit, &mut || {
        pump(&mut cs, &mut ws)
    });
    r.unwrap_or_else(|e| panic!("{e}\n{}", chrome.console_text()));
    // The charts have a line once two seconds of rates are in.
    let charted =
        "(() => { const l = document.querySelector('svg[data-key=packets_in_per_s] polyline'); \
                   return !!l && l.getAttribute('points').split(' ').length >= 2; })()";
    let r = chrome.wait_for(&tab, charted, limit, &mut || pump(&mut cs, &mut ws));
    r.unwrap_or_else(|e| panic!("{e}\n{}", chrome.console_text()));
    let listed = chrome
        .eval(
            &tab,
            "Array.from(document.querySelectorAll('#peers tr[data-id]')).map(r => \
             [Number(r.dataset.id), r.children[1].textContent])",
            &mut || pump(&mut cs, &mut ws),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = listed.as_array().unwrap().clone();
    for c in &cs {
        let id = u64::from(c.peer.unique_id());
        assert!(
            listed.iter().any(|r| r[0] == id && r[1] == "enet"),
            "{id} missing: {listed:?}"
        );
    }
    assert!(listed.iter().any(|r| r[1] == "websocket"), "{listed:?}");
    let badge = chrome
        .eval(
            &tab,
            "document.getElementById('badge').textContent",
            &mut || pump(&mut cs, &mut ws),
        )
        .unwrap();
    assert_eq!(badge, "accepting");
    let shot = browser::artefact_dir().join("status.png");
    chrome
        .screenshot(&tab, &shot, &mut || pump(&mut cs, &mut ws))
        .unwrap_or_else(|e| panic!("{e}"));
    // A client leaves: the page follows by itself.
    ws.close();
    let r = chrome.wait_for(&tab, &format!("{rows} === 2"), limit, &mut || {
        pump(&mut cs, &mut ws)
    });
    r.unwrap_or_else(|e| panic!("{e}\n{}", chrome.console_text()));
    assert!(chrome.close(), "chromium did not exit");
    eprintln!("status page screenshot: {}", shot.display());
}

fn refused_with(c: &Client, refusal: Refusal) -> bool {
    c.events.iter().any(|e| {
        matches!(
            e,
            PeerEvent::ServerDisconnected(DisconnectReason::Refused(r))
                | PeerEvent::ConnectionFailed(DisconnectReason::Refused(r)) if *r == refusal
        )
    })
}

#[test]
fn per_address_caps_refuse_with_their_reason_and_count() {
    // At most 2 clients from one address: the third from 127.0.0.1 is refused.
    let port = free_port();
    let mut relay = spawn_relay(port, &["--max-clients-per-ip", "2"]);
    let hp = http_port(&mut relay);
    let mut cs = clients(port, 2);
    pump_until(&mut cs, "the mesh", meshed);
    let mut third = clients(port, 1);
    pump_until(&mut third, "the refusal", |cs| {
        refused_with(&cs[0], Refusal::TooManyFromAddress)
    });
    // One leaves: there is room again for that address.
    let _ = cs.pop();
    let mut again = clients(port, 1);
    let start = Instant::now();
    loop {
        pump_until(&mut again, "a moment", |_| true);
        pump_until(&mut cs, "a moment", |_| true);
        if again[0].events.contains(&PeerEvent::ConnectionSucceeded) {
            break;
        }
        if refused_with(&again[0], Refusal::TooManyFromAddress) {
            // It raced the departure: try once more.
            again = clients(port, 1);
        }
        assert!(start.elapsed() < LIMIT, "no room after a departure");
    }
    let start = Instant::now();
    while metric(
        &scrape(hp),
        "relay_refusals_total",
        Some(("reason", "too_many_from_address")),
    ) < 1.0
    {
        assert!(start.elapsed() < LIMIT, "the refusal was not counted");
        std::thread::sleep(Duration::from_millis(50));
    }

    // At most 3 connections a second from one address: of 6 at once, 3 get in.
    let port = free_port();
    let mut relay = spawn_relay(port, &["--connects-per-ip-per-s", "3"]);
    let hp = http_port(&mut relay);
    let mut burst = clients(port, 6);
    pump_until(&mut burst, "three refusals", |cs| {
        cs.iter()
            .filter(|c| refused_with(c, Refusal::ConnectingTooOften))
            .count()
            >= 3
    });
    // The other three are in (the server lists exactly three clients).
    let start = Instant::now();
    loop {
        pump_until(&mut burst, "a moment", |_| true);
        let (_, body) = http("GET", hp, "/status.json", None);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["totals"]["peers"] == 3 {
            break;
        }
        assert!(start.elapsed() < LIMIT, "not three clients in: {v}");
    }
    let refused = burst
        .iter()
        .filter(|c| refused_with(c, Refusal::ConnectingTooOften))
        .count();
    assert_eq!(refused, 3, "of 6 connections in a second, 3 over the rate");
    let start = Instant::now();
    while metric(
        &scrape(hp),
        "relay_refusals_total",
        Some(("reason", "connecting_too_often")),
    ) < 3.0
    {
        assert!(start.elapsed() < LIMIT, "the refusals were not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- join tokens -----------------------------------------------------------------------------

/// A token from `relay-server token` (the subcommand operators and lobby services use).
fn mint(secret: &str, port: u16, id: u32, ttl: u64) -> String {
    let out = Command::new(RELAY)
        .args(["token", "--secret", secret, "--port", &port.to_string()])
        .args(["--id", &id.to_string(), "--ttl", &ttl.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `multiplayer.send_bytes(token)` as Godot sends it: RAW (4) then the bytes, to the server.
fn send_token(c: &mut Client, token: &str) {
    let mut bytes = vec![4u8];
    bytes.extend_from_slice(token.as_bytes());
    c.peer
        .send(Target::Peer(1), TransferMode::Reliable, 0, &bytes)
        .unwrap();
}

fn sees(c: &Client, id: u32) -> bool {
    c.events.contains(&PeerEvent::PeerConnected(id))
}

#[test]
fn join_tokens_admit_valid_clients_only() {
    let port = free_port();
    let mut relay = spawn_relay(
        port,
        &["--join-secret", "hunter2", "--join-timeout-ms", "2500"],
    );
    let hp = http_port(&mut relay);
    // Two clients with valid tokens: admitted, each told of the other.
    let mut good = clients(port, 2);
    pump_until(&mut good, "connected", |cs| {
        cs.iter()
            .all(|c| c.events.contains(&PeerEvent::ConnectionSucceeded))
    });
    let (a, b) = (good[0].peer.unique_id(), good[1].peer.unique_id());
    let token_a = mint("hunter2", port, a, 60);
    send_token(&mut good[0], &token_a);
    // b has not sent its token: a is not told of it, and b's packets do not reach a.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        pump_until(&mut good, "a moment", |_| true);
        let _ = good[1]
            .peer
            .send(Target::Broadcast, TransferMode::Reliable, 0, b"too early");
    }
    assert!(!sees(&good[0], b), "a was told of b before b was admitted");
    assert!(good[0].got.is_empty(), "{:?}", good[0].got);
    let token_b = mint("hunter2", port, b, 60);
    send_token(&mut good[1], &token_b);
    pump_until(&mut good, "each told of the other", |cs| {
        sees(&cs[0], b) && sees(&cs[1], a)
    });
    good[1]
        .peer
        .send(Target::Peer(a), TransferMode::Reliable, 0, b"admitted")
        .unwrap();
    pump_until(&mut good, "the packet of an admitted client", |cs| {
        cs[0]
            .got
            .iter()
            .any(|(from, data)| *from == b && data == b"admitted")
    });

    // Refused: another client's token, a wrong secret, an expired token, nothing in time.
    let mut bad = clients(port, 4);
    pump_until(&mut bad, "connected", |cs| {
        cs.iter()
            .all(|c| c.events.contains(&PeerEvent::ConnectionSucceeded))
    });
    let ids: Vec<u32> = bad.iter().map(|c| c.peer.unique_id()).collect();
    let expired = mint("hunter2", port, ids[2], 0);
    send_token(&mut bad[0], &token_a);
    send_token(&mut bad[1], &mint("wrong", port, ids[1], 60));
    // A token that expires in this second: wait for the next one before sending it.
    let expiry: u64 = expired.split('.').nth(2).unwrap().parse().unwrap();
    let start = Instant::now();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= expiry
    {
        assert!(start.elapsed() < Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(20));
        pump_until(&mut bad, "a moment", |_| true);
    }
    send_token(&mut bad[2], &expired);
    pump_until(&mut bad, "every refusal", |cs| {
        refused_with(&cs[0], Refusal::NotAuthorized)
            && refused_with(&cs[1], Refusal::NotAuthorized)
            && refused_with(&cs[2], Refusal::NotAuthorized)
            && refused_with(&cs[3], Refusal::AdmissionTimeout)
    });
    // The admitted ones never heard of them.
    pump_until(&mut good, "a moment", |_| true);
    for id in ids {
        assert!(
            !sees(&good[0], id) && !sees(&good[1], id),
            "{id} was announced"
        );
    }
    let start = Instant::now();
    loop {
        let s = scrape(hp);
        let refused = |r| metric(&s, "relay_refusals_total", Some(("reason", r)));
        if refused("not_authorized") == 3.0 && refused("admission_timeout") == 1.0 {
            break;
        }
        assert!(start.elapsed() < LIMIT, "refusals not counted");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Real Godot 3.2 clients join a relay with a join secret: the token, sent with
/// `multiplayer.send_bytes`, admits one (it and a Rust client then see each other and talk);
/// a token made with another secret, and no token at all, get the Godot client disconnected
/// without the room ever hearing of it.
#[test]
fn godot_clients_join_with_a_token_sent_by_send_bytes() {
    use support::godot::{require_godot, spawn_engine};
    let Some(bin) = require_godot() else {
        return;
    };
    let port = free_port();
    let _relay = spawn_relay(
        port,
        &["--join-secret", "godot-secret", "--join-timeout-ms", "1500"],
    );
    let mut rust = clients(port, 1);
    pump_until(&mut rust, "connected", |cs| {
        cs[0].events.contains(&PeerEvent::ConnectionSucceeded)
    });
    let rust_id = rust[0].peer.unique_id();
    let token = mint("godot-secret", port, rust_id, 60);
    send_token(&mut rust[0], &token);
    let dir = std::env::temp_dir().join(format!("enet-mp-token-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spawn = |name: &str, file: &std::path::Path| {
        let vars = vec![
            ("TOKEN_PORT".to_string(), port.to_string()),
            ("TOKEN_FILE".to_string(), file.display().to_string()),
            ("TOKEN_TIMEOUT".to_string(), "30".to_string()),
        ];
        spawn_engine(&bin, name, &[], "token_client.gd", &vars, name).expect("godot")
    };
    let id_of = |g: &mut Proc| -> u32 {
        let line = g.wait_line(|l| l.starts_with("READY id="), LIMIT);
        line["READY id=".len()..].trim().parse().unwrap()
    };
    // Written whole, then renamed: the client never reads half a token.
    let give = |file: &std::path::Path, token: &str| {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, token).unwrap();
        std::fs::rename(&tmp, file).unwrap();
    };
    let good_file = dir.join("good");
    let mut good = spawn("godot-token-good", &good_file);
    let good_id = id_of(&mut good);
    give(&good_file, &mint("godot-secret", port, good_id, 60));
    let wrong_file = dir.join("wrong");
    let mut wrong = spawn("godot-token-wrong", &wrong_file);
    let wrong_id = id_of(&mut wrong);
    give(&wrong_file, &mint("not-the-secret", port, wrong_id, 60));
    let mut silent = spawn("godot-token-none", &dir.join("never-written"));
    let silent_id = id_of(&mut silent);

    // The admitted Godot client and the Rust client see each other.
    let start = Instant::now();
    while !sees(&rust[0], good_id) {
        pump_until(&mut rust, "a moment", |_| true);
        good.pump();
        assert!(start.elapsed() < LIMIT, "{}", good.output());
    }
    good.wait_line(|l| l == format!("PEER_CONNECTED {rust_id}"), LIMIT);
    good.wait_line(|l| l == "TOKEN_SENT", LIMIT);
    // RAW from the Rust client reaches the Godot client's network_peer_packet.
    let mut hello = vec![4u8];
    hello.extend_from_slice(b"hello from rust");
    rust[0]
        .peer
        .send(Target::Peer(good_id), TransferMode::Reliable, 0, &hello)
        .unwrap();
    let start = Instant::now();
    loop {
        pump_until(&mut rust, "a moment", |_| true);
        good.pump();
        if good
            .all_lines()
            .iter()
            .any(|l| l == &format!("RAW from={rust_id} hello from rust"))
        {
            break;
        }
        assert!(start.elapsed() < LIMIT, "{}", good.output());
    }
    // The other two are disconnected, and the room never heard of them.
    for g in [&mut wrong, &mut silent] {
        let start = Instant::now();
        while !g.all_lines().iter().any(|l| l == "SERVER_DISCONNECTED") {
            pump_until(&mut rust, "a moment", |_| true);
            assert!(start.elapsed() < LIMIT, "{}", g.output());
        }
        assert_eq!(g.wait_exit(LIMIT).and_then(|s| s.code()), Some(0));
    }
    assert!(wrong.all_lines().iter().any(|l| l == "TOKEN_SENT"));
    pump_until(&mut rust, "a moment", |_| true);
    assert!(!sees(&rust[0], wrong_id) && !sees(&rust[0], silent_id));
    let good_lines = good.all_lines();
    for id in [wrong_id, silent_id] {
        assert!(
            !good_lines.contains(&format!("PEER_CONNECTED {id}")),
            "the admitted Godot client was told of {id}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The relay with the range coder, and whose log says so.
fn spawn_compressing_relay(port: u16) -> Proc {
    let mut cmd = relay_command(RELAY, port, "range-coder");
    cmd.args(["--http", "127.0.0.1:0"]);
    let mut p = start_relay(cmd, LIMIT);
    assert!(
        p.stderr()
            .iter()
            .any(|l| l.contains("compression RangeCoder")),
        "the relay should say it compresses: {}",
        p.format_lines()
    );
    p
}

const NEVER_COMPLETES: &str = "does not complete: it keeps sending its connect request";

/// The other direction: a client without compression on a relay with the range coder cannot
/// read the relay's compressed answers, so its handshake never completes and ENet reports
/// nothing; the relay explains it once for that address. A client whose setting matches
/// joins, and nothing is said about it.
#[test]
fn a_handshake_that_cannot_complete_for_compression_is_explained_once() {
    let port = free_port();
    let mut relay = spawn_compressing_relay(port);
    let mut matching = ENetMultiplayerPeer::client("127.0.0.1", port)
        .compression(Compression::RangeCoder)
        .build()
        .unwrap();
    let mut plain = ENetMultiplayerPeer::client("127.0.0.1", port)
        .compression(Compression::None)
        .build()
        .unwrap();
    let start = Instant::now();
    let line = loop {
        for c in [&mut matching, &mut plain] {
            c.poll_timeout(Duration::from_millis(2)).unwrap();
            while c.pop_event().is_some() {}
        }
        relay.pump();
        if let Some(l) = relay
            .stderr()
            .into_iter()
            .find(|l| l.contains(NEVER_COMPLETES))
        {
            break l;
        }
        assert!(
            start.elapsed() < LIMIT,
            "no explanation\n{}",
            relay.output()
        );
    };
    assert!(
        line.contains("WARN") && line.contains("the handshake with 127.0.0.1:"),
        "{line}"
    );
    assert_eq!(matching.connection_status(), ConnectionStatus::Connected);
    assert_ne!(plain.connection_status(), ConnectionStatus::Connected);
    // It keeps trying: still one line (the client that joined, from another address, would
    // make a second).
    let more = Instant::now();
    while more.elapsed() < Duration::from_secs(3) {
        for c in [&mut matching, &mut plain] {
            c.poll_timeout(Duration::from_millis(5)).unwrap();
        }
    }
    let told: Vec<String> = relay
        .stderr()
        .into_iter()
        .filter(|l| l.contains(NEVER_COMPLETES))
        .collect();
    assert_eq!(told.len(), 1, "{}", relay.output());
}

/// The same with a real Godot 3.2 client, which does not compress by default.
#[test]
fn a_godot_3_2_client_on_a_compressing_relay_is_explained() {
    use support::godot::{require_godot, spawn_engine};
    let Some(bin) = require_godot() else {
        return;
    };
    let port = free_port();
    let mut relay = spawn_compressing_relay(port);
    let vars = vec![
        ("TOKEN_PORT".to_string(), port.to_string()),
        // No token is ever written: the client only joins.
        (
            "TOKEN_FILE".to_string(),
            "/nonexistent/never-written".to_string(),
        ),
        ("TOKEN_TIMEOUT".to_string(), "20".to_string()),
    ];
    let name = "godot-uncompressed";
    let mut godot = spawn_engine(&bin, name, &[], "token_client.gd", &vars, name).expect("godot");
    godot.wait_line(|l| l.starts_with("READY id="), LIMIT);
    let line = relay.wait_line(|l| l.contains(NEVER_COMPLETES), LIMIT);
    assert!(line.contains("127.0.0.1:"), "{line}");
    godot.pump();
    assert!(
        !godot
            .all_lines()
            .iter()
            .any(|l| l == "CONNECTION_SUCCEEDED"),
        "{}",
        godot.output()
    );
}

/// `--log-format json`: every line on stderr is one JSON object; and each event is one line,
/// not one per layer (a connect and a departure are logged once each, with the address).
#[test]
fn log_lines_are_json_and_one_per_event() {
    let port = free_port();
    let mut relay = spawn_relay(port, &["--log-format", "json"]);
    let mut cs = clients(port, 1);
    pump_until(&mut cs, "connected", |cs| {
        cs[0].events.contains(&PeerEvent::ConnectionSucceeded)
    });
    let id = cs[0].peer.unique_id();
    relay.wait_line(
        |l| l.contains(&format!("peer {id} connected from 127.0.0.1:")),
        LIMIT,
    );
    drop(cs);
    relay.wait_line(|l| l.contains(&format!("peer {id} disconnected")), LIMIT);
    let lines = relay.stderr();
    let mut about = 0;
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["ts", "level", "target", "msg"] {
            assert!(v[key].is_string(), "{key} missing: {line}");
        }
        if v["msg"].as_str().unwrap().contains(&format!("peer {id} ")) {
            about += 1;
        }
    }
    assert!(
        lines.iter().any(|l| l.contains("relay server on")),
        "{lines:?}"
    );
    assert_eq!(
        about, 2,
        "one line for the connect, one for the departure: {lines:#?}"
    );
}

/// A client whose compression differs (range coder) on a relay without compression: ENet
/// drops its compressed datagrams; the relay explains it once for that address, however many
/// arrive.
#[test]
fn a_compression_mismatch_is_explained_once_per_address() {
    let port = free_port();
    let mut relay = spawn_relay(port, &[]); // --compression none
    let mut client = ENetMultiplayerPeer::client("127.0.0.1", port)
        .compression(Compression::RangeCoder)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut sent = 0;
    // Whether or not the handshake gets through (small datagrams go uncompressed), what is
    // compressible goes compressed: keep sending until the relay has explained it.
    let line = loop {
        client.poll_timeout(Duration::from_millis(5)).unwrap();
        while client.pop_event().is_some() {}
        if client.connection_status() == ConnectionStatus::Connected && sent < 200 {
            let _ = client.send(Target::Peer(1), TransferMode::Reliable, 0, &[0u8; 1000]);
            sent += 1;
        }
        relay.pump();
        if let Some(l) = relay
            .stderr()
            .into_iter()
            .find(|l| l.contains("compressed datagrams from 127.0.0.1:"))
        {
            break l;
        }
        assert!(
            start.elapsed() < LIMIT,
            "no explanation; sent {sent}\n{}",
            relay.output()
        );
    };
    assert!(
        line.contains("WARN") && line.contains("must match"),
        "{line}"
    );
    // More of them: still one line.
    let more = Instant::now();
    while more.elapsed() < Duration::from_millis(500) {
        client.poll_timeout(Duration::from_millis(5)).unwrap();
        let _ = client.send(Target::Peer(1), TransferMode::Reliable, 0, &[0u8; 1000]);
    }
    relay.pump();
    let told = relay
        .stderr()
        .iter()
        .filter(|l| l.contains("compressed datagrams from"))
        .count();
    assert_eq!(told, 1, "{}", relay.output());
}
