//! The relay server as an Agones GameServer (`--agones`, feature `agones`), against the local
//! SDK server of the `dummy-agones` crate, which this test installs into target/tmp the first
//! time (`cargo install`, a few minutes; it needs protoc, which scripts/install-deps.sh
//! installs). What the relay server called is read back two ways: the GameServer record, through
//! the Agones SDK itself (state, labels), and dummy-agones' own log of the calls it served (the
//! health pings leave nothing else behind).

use enet_multiplayer::{Compression, ConnectionStatus, ENetMultiplayerPeer, MultiplayerPeer};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod support;
use support::process::{free_port, relay_command, start_relay, Proc};

/// The relay server binary, built by Cargo for this test.
const RELAY: &str = env!("CARGO_BIN_EXE_relay-server");

/// dummy-agones serves on the SDK's default port only.
const SDK_PORT: u16 = 9357;

const DUMMY_AGONES_VERSION: &str = "0.1.2";

/// Longest the first-time `cargo install dummy-agones` may take.
const INSTALL_LIMIT: Duration = Duration::from_secs(20 * 60);

const LIMIT: Duration = Duration::from_secs(15);

/// One dummy-agones at a time (its port is fixed); also serialises the first install.
static SDK_SERVER: Mutex<()> = Mutex::new(());

/// The dummy-agones binary: `$DUMMY_AGONES` if set, else the copy in target/tmp, installed there
/// first if it is missing.
fn dummy_agones() -> PathBuf {
    if let Some(path) = std::env::var_os("DUMMY_AGONES") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dummy-agones");
    let bin = root.join("bin").join("dummy-agones");
    if bin.is_file() {
        return bin;
    }
    eprintln!(
        "agones test: installing dummy-agones {DUMMY_AGONES_VERSION} into {} (once)",
        root.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "install",
        "--quiet",
        "--locked",
        "dummy-agones",
        "--version",
    ])
    .arg(DUMMY_AGONES_VERSION)
    .arg("--root")
    .arg(&root)
    .arg("--target-dir")
    .arg(root.join("build"))
    .stdin(Stdio::null());
    // The variables Cargo sets for this test describe this package, not dummy-agones.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "OUT_DIR" {
            cmd.env_remove(&key);
        }
    }
    let mut child = cmd.spawn().expect("run cargo install");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo install") {
            break status;
        }
        if started.elapsed() > INSTALL_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cargo install dummy-agones took over {INSTALL_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success() && bin.is_file(),
        "cargo install dummy-agones {DUMMY_AGONES_VERSION} failed ({status}); it needs protoc \
         and the protobuf headers (apt-get install protobuf-compiler libprotobuf-dev, which \
         scripts/install-deps.sh does), and crates.io"
    );
    bin
}

/// A running dummy-agones and an SDK client of it (for reading the GameServer record).
struct SdkServer {
    process: Proc,
    runtime: tokio::runtime::Runtime,
    sdk: agones::Sdk,
}

impl SdkServer {
    fn start() -> SdkServer {
        let bin = dummy_agones();
        assert!(
            std::net::TcpListener::bind(("127.0.0.1", SDK_PORT)).is_ok(),
            "port {SDK_PORT} (the Agones SDK's, where dummy-agones serves) is taken by another \
             process"
        );
        let mut cmd = Command::new(bin);
        cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
        let process = Proc::spawn(cmd);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Sdk::new retries until the server answers, for up to 30 s.
        let sdk = runtime
            .block_on(agones::Sdk::new(Some(SDK_PORT), None))
            .expect("connect to dummy-agones");
        SdkServer {
            process,
            runtime,
            sdk,
        }
    }

    /// The GameServer's state and its `players` label.
    fn record(&mut self) -> (String, Option<String>) {
        let gs = self
            .runtime
            .block_on(self.sdk.get_gameserver())
            .expect("GetGameServer");
        let state = gs.status.map(|s| s.state).unwrap_or_default();
        let players = gs
            .object_meta
            .and_then(|m| m.labels.get("players").cloned());
        (state, players)
    }

    /// Waits until the record matches, at most `LIMIT`; returns it.
    fn wait_record(
        &mut self,
        what: &str,
        tick: &mut dyn FnMut(),
        done: impl Fn(&str, Option<&str>) -> bool,
    ) -> (String, Option<String>) {
        let start = Instant::now();
        loop {
            let (state, players) = self.record();
            if done(&state, players.as_deref()) {
                return (state, players);
            }
            assert!(
                start.elapsed() < LIMIT,
                "timed out waiting for {what}: state {state:?}, players {players:?}; \
                 dummy-agones said:\n{}",
                self.process.output()
            );
            tick();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many lines of dummy-agones' log contain `text`.
    fn calls(&mut self, text: &str) -> usize {
        self.process
            .stdout()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
}

/// The relay server under Agones on `port`, once it says it listens.
fn spawn_relay(port: u16, extra: &[&str]) -> Proc {
    let mut cmd = relay_command(RELAY, port, "none");
    cmd.args(["--agones", "--no-http"])
        .args(extra)
        .env("AGONES_SDK_GRPC_PORT", SDK_PORT.to_string());
    start_relay(cmd, LIMIT)
}

fn client(port: u16) -> ENetMultiplayerPeer {
    ENetMultiplayerPeer::client("127.0.0.1", port)
        .compression(Compression::None)
        .build()
        .unwrap()
}

fn pump(clients: &mut [ENetMultiplayerPeer]) {
    for c in clients.iter_mut() {
        c.poll_timeout(Duration::from_millis(1)).unwrap();
        while c.pop_event().is_some() {}
        while c.get_packet().is_some() {}
    }
}

fn connect(port: u16, n: usize) -> Vec<ENetMultiplayerPeer> {
    let mut clients: Vec<_> = (0..n).map(|_| client(port)).collect();
    let start = Instant::now();
    while clients
        .iter()
        .any(|c| c.connection_status() != ConnectionStatus::Connected)
    {
        assert!(start.elapsed() < LIMIT, "clients did not connect");
        pump(&mut clients);
    }
    clients
}

#[test]
fn ready_health_player_count_and_shutdown_when_the_room_empties() {
    let _one = SDK_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let mut sdk = SdkServer::start();
    let port = free_port();
    let mut relay = spawn_relay(port, &["--exit-when-empty", "1"]);
    let mut none = || {};
    sdk.wait_record("Ready and 0 players", &mut none, |state, players| {
        state == "Ready" && players == Some("0")
    });
    assert_eq!(sdk.calls("Got ready call"), 1);

    let mut clients = connect(port, 3);
    sdk.wait_record("3 players", &mut || pump(&mut clients), |_, players| {
        players == Some("3")
    });
    // Health pings come from the server's loop every 2 s: wait for three.
    let start = Instant::now();
    while sdk.calls("Got health message") < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} health pings in 10 s; dummy-agones said:\n{}",
            sdk.calls("Got health message"),
            sdk.process.output()
        );
        pump(&mut clients);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sdk.calls("Got health call"), 1, "one health stream");
    let (state, _) = sdk.record();
    assert_eq!(state, "Ready", "nothing else changed the state");

    // One leaves, then the others: the count follows; the empty room ends the process.
    clients[0].close();
    let mut rest = clients.split_off(1);
    sdk.wait_record("2 players", &mut || pump(&mut rest), |_, players| {
        players == Some("2")
    });
    for c in &mut rest {
        c.close();
    }
    sdk.wait_record("0 players", &mut none, |_, players| players == Some("0"));
    let exited = relay.wait_exit(Duration::from_secs(10));
    assert!(
        exited.is_some_and(|s| s.success()),
        "relay did not exit 0 after --exit-when-empty 1: {exited:?}\n{}",
        relay.output()
    );
    let (state, _) = sdk.record();
    assert_eq!(state, "Shutdown", "\n{}", sdk.process.output());
    assert_eq!(sdk.calls("Got shutdown call"), 1);
    relay.wait_line(|l| l.contains("agones: Shutdown sent"), LIMIT);
}

#[test]
fn shutdown_only_once_a_sigterm_drain_has_ended() {
    let _one = SDK_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let mut sdk = SdkServer::start();
    let port = free_port();
    let mut relay = spawn_relay(port, &["--drain-ms", "1500"]);
    let mut clients = connect(port, 1);
    sdk.wait_record("Ready and 1 player", &mut || pump(&mut clients), |s, p| {
        s == "Ready" && p == Some("1")
    });

    // The client stops servicing its connection, so it never acknowledges the drain's
    // disconnect: the server waits the whole --drain-ms, and stays Ready in Agones meanwhile
    // (a Shutdown now would have Agones delete the pod, and its SIGTERM cut the drain short).
    relay.signal("TERM");
    relay.wait_line(|l| l.contains("draining"), LIMIT);
    let drain_began = Instant::now();
    while drain_began.elapsed() < Duration::from_millis(1000) {
        let (state, _) = sdk.record();
        assert_eq!(state, "Ready", "Agones told of the shutdown while draining");
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = relay.wait_exit(Duration::from_secs(10));
    assert!(
        exited.is_some_and(|s| s.success()),
        "relay did not exit 0 after the drain: {exited:?}\n{}",
        relay.output()
    );
    assert!(
        drain_began.elapsed() >= Duration::from_millis(1000),
        "the drain ended before --drain-ms"
    );
    let (state, _) = sdk.record();
    assert_eq!(state, "Shutdown", "\n{}", sdk.process.output());
    assert_eq!(sdk.calls("Got shutdown call"), 1);
    drop(clients);
}

#[test]
fn a_peer_event_never_waits_for_the_sdk() {
    // The loop hands calls to the SDK thread: a client's whole join and leave completes while
    // the relay server is still connecting to a slow SDK server (here: none yet at all).
    let _one = SDK_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    // Installed first (if this test is the first to need it, the install takes minutes,
    // longer than the relay server's 30 s for reaching the SDK server).
    dummy_agones();
    let port = free_port();
    let mut relay = spawn_relay(port, &[]);
    let mut clients = connect(port, 2);
    let start = Instant::now();
    // Each client knows the server and the other client.
    while clients.iter().any(|c| c.peer_ids().len() < 2) {
        assert!(
            start.elapsed() < LIMIT,
            "the clients were not announced to each other"
        );
        pump(&mut clients);
    }
    // Now the SDK server appears: the calls queued meanwhile reach it.
    let mut sdk = SdkServer::start();
    sdk.wait_record("Ready and 2 players", &mut || pump(&mut clients), |s, p| {
        s == "Ready" && p == Some("2")
    });
    relay.signal("TERM");
    let exited = relay.wait_exit(Duration::from_secs(10));
    assert!(exited.is_some_and(|s| s.success()), "{}", relay.output());
}
