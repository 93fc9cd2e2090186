//! MultiplayerApi interop against the real engine: headless Godot 3.2 (`godot3-server`) clients
//! running tests/godot/api_client.gd against the Rust `echo_server` example, with and without
//! ENet's range coder, one client alone and two clients together (echo_all reaches both); and
//! the other way round, a Rust MultiplayerApi client against tests/godot/api_server.gd (Godot's
//! own RPC on a Godot server): RPCs and RSETs both ways, a puppet method accepted from the master
//! and a master method refused, raw bytes, the path cache's short form after the confirm.
//!
//! The client checks every answer itself (every Variant type as RPC arguments on two node paths,
//! 0..=16 arguments, unreliable calls, RSET, send_bytes up to 60000 bytes, refused calls counted
//! by `report()`, a 200-call burst in order) and prints `PASS <name>` / `FAIL <name> ...` and
//! `DONE pass=N fail=M`; these tests require exactly the expected PASS names, no FAIL, DONE with
//! fail=0 and exit code 0. On failure they print everything the server and the clients said.
//!
//! Missing engine: the tests fail with install instructions, unless `ENET_MP_SKIP_GODOT=1`.
//! `ENET_MP_GODOT_ECHO=1` echoes every line of every process to stderr as it arrives.

#[path = "support/godot.rs"]
mod godot;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use process::example;

/// How long the echo server may take to print READY.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// The client's own limit for the whole run (API_TIMEOUT); it exits with code 3 after it.
const CLIENT_TIMEOUT_SECS: u64 = 120;
/// How long the test waits for a client to exit (a little more than its own limit).
const CLIENT_LIMIT: Duration = Duration::from_secs(CLIENT_TIMEOUT_SECS + 20);
/// How long the client waits for each answer (API_STEP_TIMEOUT).
const STEP_TIMEOUT_SECS: u64 = 10;
/// How long the echo server may take to exit after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Labels of api_client.gd's catalog() (every Variant type), in order: keep in sync.
const CATALOG: [&str; 61] = [
    "nil",
    "bool_true",
    "bool_false",
    "int_0",
    "int_neg1",
    "int_max_i32",
    "int_min_i32",
    "int_2p31",
    "int_neg2p31m1",
    "int_5e9",
    "int_max_i64",
    "int_min_i64",
    "float_0",
    "float_0.1",
    "float_0.5",
    "float_neg1e300",
    "float_inf",
    "float_neg_inf",
    "float_nan",
    "string_empty",
    "string_ascii",
    "string_utf8",
    "vector2",
    "rect2",
    "vector3",
    "transform2d",
    "plane",
    "quat",
    "aabb",
    "basis",
    "transform",
    "color",
    "nodepath_abs",
    "nodepath_rel",
    "nodepath_prop",
    "nodepath_plain",
    "nodepath_empty",
    "rid_empty",
    "rid",
    "object_node",
    "object_reference",
    "object_tree",
    "dictionary",
    "dictionary_empty",
    "array",
    "array_with_object",
    "array_empty",
    "pool_byte",
    "pool_int",
    "pool_real",
    "pool_string",
    "pool_vector2",
    "pool_vector3",
    "pool_color",
    "pool_byte_empty",
    "pool_int_empty",
    "pool_real_empty",
    "pool_string_empty",
    "pool_vector2_empty",
    "pool_vector3_empty",
    "pool_color_empty",
];

const PATHS: [&str; 2] = ["Echo", "Echo/Deep/Er"];

/// Every PASS name api_client.gd prints against a Rust server (API_SERVER=rust).
fn expected_passes() -> BTreeSet<String> {
    let mut names: Vec<String> = vec!["connect".into(), "welcome".into()];
    for path in PATHS {
        names.push(format!("echo_all:{path}"));
    }
    for path in PATHS {
        names.push(format!("echo0:{path}"));
        for label in CATALOG {
            names.push(format!("echo1:{path}:{label}"));
        }
        for k in 0..CATALOG.len().div_ceil(16) {
            names.push(format!("echo16:{path}:{k}"));
        }
    }
    for n in 2..16 {
        names.push(format!("echo{n}:Echo"));
    }
    for path in PATHS {
        for n in [0, 1, 16] {
            names.push(format!("echo_unreliable{n}:{path}"));
        }
    }
    for label in CATALOG {
        names.push(format!("rset:Echo:{label}"));
    }
    for label in ["int", "string", "dictionary", "nil"] {
        names.push(format!("rset:Echo/Deep/Er:{label}"));
    }
    for path in PATHS {
        for label in ["int", "vector3", "pool_string"] {
            names.push(format!("rset_unreliable:{path}:{label}"));
        }
    }
    for name in [
        "raw1",
        "raw3",
        "raw256",
        "raw60000",
        "report",
        "refused_no_answer",
        "burst200",
        "report_after_burst",
        "burst_no_extra",
    ] {
        names.push(name.into());
    }
    let set: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(set.len(), names.len(), "duplicate expected PASS names");
    set
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A spawned process (the echo server or a Godot client) whose stdout and stderr lines are
/// collected on threads, in arrival order. Killed (by its own pid) and reaped on drop; a Godot
/// client's temporary HOME is removed then too.
struct Proc {
    name: String,
    child: Child,
    rx: Receiver<(bool, Duration, String)>,
    /// (stdout?, time since spawn, text)
    lines: Vec<(bool, Duration, String)>,
    streams_closed: bool,
    exit: Option<ExitStatus>,
    started: Instant,
    home: Option<PathBuf>,
}

fn spawn_reader<R: Read + Send + 'static>(
    stdout: bool,
    pipe: R,
    started: Instant,
    tx: Sender<(bool, Duration, String)>,
    echo: Option<String>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
                        buf.pop();
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(name) = &echo {
                        eprintln!("[{name} {}] {text}", if stdout { "out" } else { "err" });
                    }
                    if tx.send((stdout, started.elapsed(), text)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, home: Option<PathBuf>) -> Proc {
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let echo = env::var(godot::ECHO_ENV)
            .map(|v| v == "1")
            .unwrap_or(false)
            .then(|| name.to_string());
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        spawn_reader(true, out, started, tx.clone(), echo.clone());
        spawn_reader(false, err, started, tx, echo);
        Proc {
            name: name.to_string(),
            child,
            rx,
            lines: Vec::new(),
            streams_closed: false,
            exit: None,
            started,
            home,
        }
    }

    /// `echo_server --port P --compression C`.
    fn echo_server(port: u16, compression: &str) -> Proc {
        let mut cmd = Command::new(example("echo_server"));
        cmd.args(["--port", &port.to_string(), "--compression", compression])
            .env("RUST_LOG", "debug");
        for (key, _) in env::vars_os() {
            if key.to_string_lossy().starts_with("ECHO_") {
                cmd.env_remove(&key);
            }
        }
        Proc::spawn(&format!("echo_server ({compression})"), cmd, None)
    }

    /// `godot3-server --no-window --path tests/godot -s res://<script>` with `vars` and a fresh
    /// temporary HOME (Godot writes user:// data under it).
    fn godot(bin: &Path, name: &str, script: &str, vars: &[(&str, String)]) -> Proc {
        let project = godot::agent_project_dir();
        assert!(
            project.join(script).is_file(),
            "{} not found",
            project.join(script).display()
        );
        let home = env::temp_dir().join(format!(
            "enet-mp-godot-api-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&home).expect("create the temporary HOME");
        let mut cmd = Command::new(bin);
        cmd.arg("--no-window")
            .arg("--path")
            .arg(&project)
            .arg("-s")
            .arg(format!("res://{script}"));
        // Do not leak API_* / AGENT_* settings from the test's own environment.
        for (key, _) in env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("API_") || key_text.starts_with("AGENT_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            // Godot 3.2 logs "Invalid locale 'C'" errors on stderr without a real locale.
            .env("LANG", "en_US.UTF-8")
            .env_remove("LC_ALL");
        for (key, value) in vars {
            cmd.env(key, value);
        }
        Proc::spawn(name, cmd, Some(home))
    }

    fn push(&mut self, item: (bool, Duration, String)) {
        self.lines.push(item);
    }

    fn pump(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(item) => self.push(item),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.streams_closed = true;
                    break;
                }
            }
        }
    }

    /// Waits at most `timeout` for one more line; false once both pipes are closed.
    fn pump_wait(&mut self, timeout: Duration) -> bool {
        if self.streams_closed {
            return false;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(item) => {
                self.push(item);
                self.pump();
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                self.streams_closed = true;
                false
            }
        }
    }

    fn stdout(&mut self) -> Vec<String> {
        self.pump();
        self.lines
            .iter()
            .filter(|l| l.0)
            .map(|l| l.2.clone())
            .collect()
    }

    fn all_lines(&mut self) -> Vec<String> {
        self.pump();
        self.lines.iter().map(|l| l.2.clone()).collect()
    }

    /// Waits for a stdout line matching `pred` (among all lines so far and later ones).
    fn wait_line(
        &mut self,
        pred: impl Fn(&str) -> bool,
        limit: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            self.pump();
            if let Some(l) = self.lines.iter().find(|l| l.0 && pred(&l.2)) {
                return Ok(l.2.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("{}: no matching line within {limit:?}", self.name));
            }
            if !self.pump_wait((deadline - now).min(Duration::from_millis(50))) {
                if let Some(status) = self.try_exit() {
                    return Err(format!(
                        "{}: exited ({status}) before printing a matching line",
                        self.name
                    ));
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits at most `limit` for the process to exit, then (briefly) for the rest of its output.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_exit() {
                let drain_until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < drain_until && self.pump_wait(Duration::from_millis(50)) {}
                return Some(status);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if !self.pump_wait((deadline - now).min(Duration::from_millis(20))) {
                thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// SIGTERM (by pid, through kill(1)) and waits at most `limit` for the exit.
    fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.try_exit().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        self.wait_exit(limit)
    }

    fn kill(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.exit = Some(status);
            }
        }
    }

    /// Everything it printed, both streams, with times since spawn.
    fn output(&mut self) -> String {
        self.pump();
        let state = match self.try_exit() {
            Some(status) => format!("exited with {status}"),
            None => "still running".to_string(),
        };
        let mut s = format!(
            "--- {} (pid {}, {state}, {:.3}s after spawn) ---\n",
            self.name,
            self.child.id(),
            self.started.elapsed().as_secs_f64()
        );
        for (stdout, at, text) in &self.lines {
            let tag = if *stdout { "out" } else { "err" };
            let _ = writeln!(s, "  [{:>8.3}s {tag}] {text}", at.as_secs_f64());
        }
        if self.lines.is_empty() {
            s.push_str("  (no output)\n");
        }
        s
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if let Some(home) = &self.home {
            let _ = fs::remove_dir_all(home);
        }
    }
}

fn everything(server: &mut Proc, clients: &mut [Proc]) -> String {
    let mut s = server.output();
    for c in clients.iter_mut() {
        s += &c.output();
    }
    s
}

/// What is wrong with a finished client's run ("" when it passed exactly as expected).
fn judge(client: &mut Proc, status: ExitStatus, expected: &BTreeSet<String>) -> String {
    let out = client.stdout();
    let mut problems = Vec::new();
    let fails: Vec<&String> = out.iter().filter(|l| l.starts_with("FAIL")).collect();
    if !fails.is_empty() {
        problems.push(format!(
            "{} FAIL lines, the first: {}",
            fails.len(),
            fails[0]
        ));
    }
    let passes: Vec<String> = out
        .iter()
        .filter_map(|l| l.strip_prefix("PASS "))
        .map(|rest| rest.split(' ').next().unwrap_or("").to_string())
        .collect();
    let seen: BTreeSet<String> = passes.iter().cloned().collect();
    if seen.len() != passes.len() {
        problems.push("some PASS name was printed twice".to_string());
    }
    let missing: Vec<&String> = expected.difference(&seen).collect();
    if !missing.is_empty() {
        let shown: Vec<&&String> = missing.iter().take(20).collect();
        problems.push(format!(
            "{} expected PASS lines missing, among them {shown:?}",
            missing.len()
        ));
    }
    let extra: Vec<&String> = seen.difference(expected).collect();
    if !extra.is_empty() {
        problems.push(format!("unexpected PASS names: {extra:?}"));
    }
    let want_done = format!("DONE pass={} fail=0", expected.len());
    match out.iter().rfind(|l| l.starts_with("DONE ")) {
        None => problems.push(format!("no DONE line (want {want_done:?})")),
        Some(done) if *done != want_done => problems.push(format!("{done:?}, want {want_done:?}")),
        Some(_) => {}
    }
    // Godot 3.2 exits 0 even when the script does not parse: the DONE line is what counts, the
    // exit code must agree with it.
    if status.code() != Some(0) {
        problems.push(format!("exit status {status}, want 0"));
    }
    problems.join("; ")
}

/// Starts the echo server with `compression` (its flag value), runs `n` api_client.gd clients
/// against it together (API_PEERS = n), requires every expected PASS from each, then stops
/// the server with SIGTERM and requires exit code 0.
fn run_clients(compression: &str, n: usize) {
    let Some(bin) = godot::require_godot() else {
        return;
    };
    let godot_compression = match compression {
        "none" => "none",
        "range-coder" => "range",
        other => panic!("unknown compression {other}"),
    };
    let port = godot::free_udp_port();
    let mut server = Proc::echo_server(port, compression);
    let want_ready = format!("READY port={port}");
    if let Err(e) = server.wait_line(|l| l == want_ready, READY_LIMIT) {
        panic!("{e}\n{}", server.output());
    }

    let mut clients: Vec<Proc> = (0..n)
        .map(|i| {
            Proc::godot(
                &bin,
                &format!("godot client {} of {n} ({godot_compression})", i + 1),
                "api_client.gd",
                &[
                    ("API_PORT", port.to_string()),
                    ("API_COMPRESSION", godot_compression.to_string()),
                    ("API_SERVER", "rust".to_string()),
                    ("API_PEERS", n.to_string()),
                    ("API_STEP_TIMEOUT", STEP_TIMEOUT_SECS.to_string()),
                    ("API_TIMEOUT", CLIENT_TIMEOUT_SECS.to_string()),
                ],
            )
        })
        .collect();

    let expected = expected_passes();
    let mut problems = Vec::new();
    let deadline = Instant::now() + CLIENT_LIMIT;
    for client in clients.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now());
        let name = client.name.clone();
        match client.wait_exit(left) {
            None => {
                problems.push(format!("{name}: did not exit within {CLIENT_LIMIT:?}"));
                client.kill();
            }
            Some(status) => {
                let p = judge(client, status, &expected);
                if !p.is_empty() {
                    problems.push(format!("{name}: {p}"));
                }
            }
        }
    }
    if !problems.is_empty() {
        panic!(
            "{}\n{}",
            problems.join("\n"),
            everything(&mut server, &mut clients)
        );
    }

    // The echo server never runs puppet_only's handler (it logs an error if it does).
    let lines = server.all_lines();
    if let Some(l) = lines.iter().find(|l| l.contains("puppet_only ran")) {
        panic!(
            "echo_server ran puppet_only: {l}\n{}",
            everything(&mut server, &mut clients)
        );
    }
    match server.terminate(STOP_LIMIT) {
        Some(status) if status.code() == Some(0) => {}
        Some(status) => panic!(
            "echo_server exited with {status} after SIGTERM, want 0\n{}",
            everything(&mut server, &mut clients)
        ),
        None => panic!(
            "echo_server did not exit within {STOP_LIMIT:?} of SIGTERM\n{}",
            everything(&mut server, &mut clients)
        ),
    }
}

#[test]
fn godot_client_against_echo_server_no_compression() {
    run_clients("none", 1);
}

#[test]
fn two_godot_clients_against_echo_server_no_compression() {
    run_clients("none", 2);
}

#[test]
fn two_godot_clients_against_echo_server_range_coder() {
    run_clients("range-coder", 2);
}

// ---- a Rust client on a Godot server ----------------------------------------------------------

mod rust_client {
    use super::*;
    use enet_multiplayer::api::{ApiEvent, CallKind, MultiplayerApi, RemoteCall, RpcMode};
    use enet_multiplayer::variant::{Color, NodePath, ObjectId, Variant, Vector2, Vector3};
    use enet_multiplayer::{
        Compression, ENetMultiplayerPeer, MultiplayerPeer, Target, TransferMode,
    };

    type Api = MultiplayerApi<ENetMultiplayerPeer>;

    struct Client {
        api: Api,
        events: Vec<ApiEvent>,
    }

    impl Client {
        fn pump_until(&mut self, server: &mut Proc, what: &str, done: impl Fn(&Client) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(STEP_TIMEOUT_SECS);
            while !done(self) {
                if Instant::now() > deadline {
                    panic!("timed out waiting for {what}\n{}", server.output());
                }
                self.api.poll_timeout(Duration::from_millis(2)).unwrap();
                self.events
                    .extend(std::iter::from_fn(|| self.api.pop_event()));
                server.pump();
            }
        }

        fn calls(&self, name: &str) -> Vec<&RemoteCall> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    ApiEvent::Call(c) if c.name == name => Some(c),
                    _ => None,
                })
                .collect()
        }
    }

    fn arguments() -> Vec<Variant> {
        vec![
            Variant::Nil,
            Variant::Bool(false),
            Variant::Int(-2_147_483_649),
            Variant::Float(0.1),
            Variant::Float(f64::INFINITY),
            Variant::String("日本 ✓".into()),
            Variant::Vector2(Vector2 { x: 1.5, y: 2.0 }),
            Variant::Vector3(Vector3 {
                x: 1.0,
                y: -2.0,
                z: 3.0,
            }),
            Variant::Color(Color {
                r: 0.5,
                g: 0.25,
                b: 1.0,
                a: 0.0,
            }),
            Variant::NodePath(NodePath::from("../A:b")),
            Variant::Array(vec![Variant::Int(1), Variant::PoolIntArray(vec![2, 3])]),
            Variant::PoolStringArray(vec!["ab".into(), "".into()]),
            Variant::PoolByteArray(vec![]),
            Variant::Object(ObjectId(77)),
        ]
    }

    /// A Rust MultiplayerApi client joins tests/godot/api_server.gd (real Godot RPC), calls its
    /// RPCs and RSETs with values of many types, gets its RPCs and RSETs, accepts a puppet
    /// method from the master and refuses a master method, and sees the path cache at work.
    fn against_godot_server(compression: Compression) {
        let Some(bin) = godot::require_godot() else {
            return;
        };
        let gd_compression = match compression {
            Compression::None => "none",
            _ => "range",
        };
        let port = godot::free_udp_port();
        let mut server = Proc::godot(
            &bin,
            &format!("godot api_server ({gd_compression})"),
            "api_server.gd",
            &[
                ("API_PORT", port.to_string()),
                ("API_COMPRESSION", gd_compression.to_string()),
                ("API_TIMEOUT", "60".to_string()),
            ],
        );
        if let Err(e) = server.wait_line(|l| l.starts_with("READY id=1"), READY_LIMIT) {
            panic!("{e}\n{}", server.output());
        }
        let peer = ENetMultiplayerPeer::client("127.0.0.1", port)
            .compression(compression)
            .build()
            .unwrap();
        let mut api = MultiplayerApi::new(peer);
        for name in ["welcome", "echoed", "on_puppet"] {
            api.rpc_config("Echo", name, RpcMode::Puppet);
        }
        api.rpc_config("Echo", "on_master", RpcMode::Master);
        for prop in ["greeting", "value"] {
            api.register_rset("Echo", prop, RpcMode::Puppet, Variant::Nil, None);
        }
        let mut c = Client {
            api,
            events: Vec::new(),
        };

        // The server's welcome RPC and greeting RSET.
        c.pump_until(&mut server, "welcome and greeting", |c| {
            !c.calls("welcome").is_empty() && !c.calls("greeting").is_empty()
        });
        let me = c.api.network_unique_id();
        assert_eq!(c.calls("welcome")[0].args, [Variant::Int(me.into())]);
        assert_eq!(c.calls("welcome")[0].sender, 1);
        assert_eq!(
            c.api.property("Echo", "greeting"),
            Some(&Variant::String("hi".into()))
        );
        assert_eq!(c.calls("greeting")[0].kind, CallKind::Rset);

        // echo: the Godot server calls echoed back with the same arguments. Objects come back
        // as the server's own (non-zero) instance id.
        let args = arguments();
        c.api.rpc_id(1, "Echo", "echo", &args).unwrap();
        c.api
            .rpc_unreliable_id(1, "Echo", "echo", &[Variant::Int(5)])
            .unwrap();
        c.pump_until(&mut server, "two echoes", |c| c.calls("echoed").len() == 2);
        let echoed = c.calls("echoed");
        let (objects, rest): (Vec<_>, Vec<_>) = echoed[0]
            .args
            .iter()
            .partition(|v| matches!(v, Variant::Object(_)));
        assert_eq!(rest, args[..args.len() - 1].iter().collect::<Vec<_>>());
        assert!(
            matches!(objects[..], [Variant::Object(ObjectId(id))] if *id != 0),
            "{objects:?}"
        );
        assert_eq!(echoed[1].args, [Variant::Int(5)]);
        assert_eq!(echoed[1].mode, TransferMode::Unreliable);
        let call_line = format!(
            "CALL from={me} ch=1 path=Echo method=echo argc={}",
            args.len()
        );
        if let Err(e) = server.wait_line(|l| l.starts_with(&call_line), READY_LIMIT) {
            panic!("{e}\n{}", server.output());
        }

        // RSET value: set back on us by the server.
        c.api
            .rset_id(
                1,
                "Echo",
                "value",
                &Variant::PoolVector2Array(vec![Vector2::default()]),
            )
            .unwrap();
        c.pump_until(&mut server, "value", |c| {
            c.api.property("Echo", "value")
                == Some(&Variant::PoolVector2Array(vec![Vector2::default()]))
        });

        // Raw bytes come back.
        c.api
            .send_bytes(&[7, 0, 7], Target::Server, TransferMode::Reliable)
            .unwrap();
        c.pump_until(&mut server, "raw", |c| {
            c.events.iter().any(
                |e| matches!(e, ApiEvent::Packet { from: 1, data, .. } if data[..] == [7, 0, 7]),
            )
        });

        // The master calls a puppet method: it runs. It calls a master method: refused here.
        for (method, arg) in [("on_master", 6), ("on_puppet", 5)] {
            let call = [
                Variant::String("Echo".into()),
                Variant::String(method.into()),
                Variant::Array(vec![Variant::Int(arg)]),
            ];
            c.api.rpc_id(1, "Echo", "call_me_back", &call).unwrap();
        }
        c.pump_until(&mut server, "on_puppet", |c| {
            !c.calls("on_puppet").is_empty()
        });
        assert_eq!(c.calls("on_puppet")[0].args, [Variant::Int(5)]);
        assert!(c.calls("on_master").is_empty());
        assert_eq!(c.api.peer_call_stats(1).refused_by_mode, 1);

        // The path cache: we confirmed the server's path; its answers come in the short form.
        let before = c.api.call_stats();
        for i in 0..20 {
            c.api.rpc_id(1, "Echo", "echo", &[Variant::Int(i)]).unwrap();
        }
        c.pump_until(&mut server, "20 more echoes", |c| {
            c.calls("echoed").len() == 22
        });
        let after = c.api.call_stats();
        assert_eq!(after.cached_form - before.cached_form, 20, "{after:?}");
        assert_eq!(after.full_path_form, before.full_path_form, "{after:?}");
        assert!(after.confirms >= 1, "Godot confirmed our path: {after:?}");

        // shutdown: the Godot server closes; we are told.
        c.api.rpc_id(1, "Echo", "shutdown", &[]).unwrap();
        c.pump_until(&mut server, "server_disconnected", |c| {
            c.events
                .iter()
                .any(|e| matches!(e, ApiEvent::ServerDisconnected(_)))
        });
        assert!(!c
            .events
            .iter()
            .any(|e| matches!(e, ApiEvent::ConnectionFailed(_))));
        assert!(c.events.contains(&ApiEvent::ConnectedToServer));
        match server.wait_exit(STOP_LIMIT) {
            Some(status) if status.success() => {}
            other => panic!("api_server.gd: {other:?}\n{}", server.output()),
        }
        assert_eq!(
            c.api.peer().connection_status(),
            enet_multiplayer::ConnectionStatus::Disconnected
        );
    }

    #[test]
    fn rust_client_against_godot_server_no_compression() {
        against_godot_server(Compression::None);
    }

    #[test]
    fn rust_client_against_godot_server_range_coder() {
        against_godot_server(Compression::RangeCoder);
    }
}
