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

mod support;

use std::collections::BTreeSet;
use std::env;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::godot;
use support::process::{example, free_port, Proc};

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

/// `echo_server --port P --compression C`, echoed (ENET_MP_GODOT_ECHO=1) under its name.
fn echo_server(port: u16, compression: &str) -> Proc {
    let name = format!("echo_server ({compression})");
    let mut cmd = Command::new(example("echo_server"));
    cmd.args(["--port", &port.to_string(), "--compression", compression])
        .env("RUST_LOG", "debug");
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("ECHO_") {
            cmd.env_remove(&key);
        }
    }
    Proc::start(&name, cmd, Stdio::null(), godot::echo_label(&name))
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

/// `godot3-server --no-window --path tests/godot -s res://<script>` with `vars` and a fresh
/// temporary HOME (Godot writes user:// data under it).
fn godot_script(bin: &Path, name: &str, script: &str, vars: &[(&str, String)]) -> Proc {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    godot::spawn_engine(bin, name, &["--no-window"], script, &vars, name)
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
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
    let port = free_port();
    let mut server = echo_server(port, compression);
    let want_ready = format!("READY port={port}");
    if let Err(e) = server.wait_stdout(|l| l == want_ready, READY_LIMIT) {
        panic!("{e}\n{}", server.output());
    }

    let mut clients: Vec<Proc> = (0..n)
        .map(|i| {
            godot_script(
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
        let port = free_port();
        let mut server = godot_script(
            &bin,
            &format!("godot api_server ({gd_compression})"),
            "api_server.gd",
            &[
                ("API_PORT", port.to_string()),
                ("API_COMPRESSION", gd_compression.to_string()),
                ("API_TIMEOUT", "60".to_string()),
            ],
        );
        if let Err(e) = server.wait_stdout(|l| l.starts_with("READY id=1"), READY_LIMIT) {
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
        if let Err(e) = server.wait_stdout(|l| l.starts_with(&call_line), READY_LIMIT) {
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
