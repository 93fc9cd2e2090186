//! The echo_server example as a process, driven by Rust clients on the MultiplayerApi over
//! loopback ENet: every behaviour its docs promise, and the path cache seen working.

use enet_multiplayer::api::{ApiEvent, CallKind, MultiplayerApi, RemoteCall, RpcMode};
use enet_multiplayer::variant::{
    Aabb, Basis, Color, Dictionary, ObjectId, Plane, Quat, Rect2, Transform, Transform2D, Variant,
    Vector2, Vector3,
};
use enet_multiplayer::{Compression, ENetMultiplayerPeer, PeerId, Target, TransferMode};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::process::{example, free_port, Proc};

const LIMIT: Duration = Duration::from_secs(15);

type Api = MultiplayerApi<ENetMultiplayerPeer>;

fn echo_server(compression: &str) -> (Proc, u16) {
    let port = free_port();
    let mut cmd = Command::new(example("echo_server"));
    cmd.args(["--port", &port.to_string(), "--compression", compression])
        .env("RUST_LOG", "info");
    let mut p = Proc::spawn(cmd);
    p.wait_line(|l| l == format!("READY port={port}"), LIMIT);
    (p, port)
}

/// A client whose nodes take every answer as an event.
struct Client {
    api: Api,
    events: Vec<ApiEvent>,
}

impl Client {
    fn join(port: u16, compression: Compression) -> Client {
        let peer = ENetMultiplayerPeer::client("127.0.0.1", port)
            .compression(compression)
            .build()
            .unwrap();
        let mut api = MultiplayerApi::new(peer);
        for path in ["Echo", "Echo/Deep/Er"] {
            for method in ["echoed", "echoed_from", "welcome", "report_reply"] {
                api.rpc_config(path, method, RpcMode::Puppet);
            }
            api.register_rset(path, "value", RpcMode::Puppet, Variant::Nil, None);
        }
        Client {
            api,
            events: Vec::new(),
        }
    }

    fn id(&self) -> PeerId {
        self.api.network_unique_id()
    }

    fn pump(&mut self) {
        self.api.poll_timeout(Duration::from_millis(1)).unwrap();
        while let Some(e) = self.api.pop_event() {
            self.events.push(e);
        }
    }

    fn calls(&self, path: &str, name: &str) -> Vec<&RemoteCall> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ApiEvent::Call(c) if c.path == path && c.name == name => Some(c),
                _ => None,
            })
            .collect()
    }

    fn raw(&self) -> Vec<Vec<u8>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ApiEvent::Packet { from: 1, data, .. } => Some(data.to_vec()),
                _ => None,
            })
            .collect()
    }
}

fn pump_until(cs: &mut [&mut Client], what: &str, done: impl Fn(&[&mut Client]) -> bool) {
    let start = Instant::now();
    while !done(cs) {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        for c in cs.iter_mut() {
            c.pump();
        }
    }
}

fn report(c: &mut Client, path: &str) -> Dictionary {
    let before = c.calls(path, "report_reply").len();
    c.api.rpc_id(1, path, "report", &[]).unwrap();
    pump_until(&mut [&mut *c], "report_reply", |cs| {
        cs[0].calls(path, "report_reply").len() > before
    });
    match &c.calls(path, "report_reply")[before].args[..] {
        [Variant::Dictionary(d)] => d.clone(),
        other => panic!("report_reply carried {other:?}"),
    }
}

fn count(d: &Dictionary, key: &str) -> Variant {
    d.get(&Variant::String(key.into()))
        .cloned()
        .unwrap_or_default()
}

/// One value of every Godot 3 type but Rid (which travels without a value).
fn arguments() -> Vec<Variant> {
    let v2 = |x, y| Vector2 { x, y };
    let v3 = |x, y, z| Vector3 { x, y, z };
    let mut dict = Dictionary::new();
    dict.insert("b".into(), Variant::Int(2));
    dict.insert(Variant::Int(1), Variant::Array(vec![Variant::Nil]));
    vec![
        Variant::Nil,
        Variant::Bool(true),
        Variant::Int(-7),
        Variant::Int(5_000_000_000),
        Variant::Float(0.5),
        Variant::Float(0.1),
        Variant::String("héllo ✓".into()),
        Variant::Vector2(v2(1.0, -2.5)),
        Variant::Rect2(Rect2 {
            position: v2(1.0, 2.0),
            size: v2(3.0, 4.0),
        }),
        Variant::Vector3(v3(1.0, 2.0, 3.0)),
        Variant::Transform2D(Transform2D {
            x: v2(1.0, 2.0),
            y: v2(3.0, 4.0),
            origin: v2(5.0, 6.0),
        }),
        Variant::Plane(Plane {
            normal: v3(0.0, 1.0, 0.0),
            d: 2.0,
        }),
        Variant::Quat(Quat {
            x: 0.1,
            y: 0.2,
            z: 0.3,
            w: 0.4,
        }),
        Variant::Aabb(Aabb {
            position: v3(1.0, 2.0, 3.0),
            size: v3(4.0, 5.0, 6.0),
        }),
        Variant::Basis(Basis {
            rows: [v3(1.0, 2.0, 3.0), v3(4.0, 5.0, 6.0), v3(7.0, 8.0, 9.0)],
        }),
        Variant::Transform(Transform {
            basis: Basis {
                rows: [v3(1.0, 0.0, 0.0), v3(0.0, 1.0, 0.0), v3(0.0, 0.0, 1.0)],
            },
            origin: v3(7.0, 8.0, 9.0),
        }),
        Variant::Color(Color {
            r: 0.25,
            g: 0.5,
            b: 0.75,
            a: 1.0,
        }),
        Variant::NodePath("/root/A/B:x:y".into()),
        Variant::Object(ObjectId(1234)),
        Variant::Dictionary(dict),
        Variant::Array(vec![Variant::Int(1), Variant::Array(vec!["a".into()])]),
        Variant::PoolByteArray(vec![1, 2, 3]),
        Variant::PoolIntArray(vec![-1, 2]),
        Variant::PoolRealArray(vec![0.5]),
        Variant::PoolStringArray(vec!["ab".into(), "c".into()]),
        Variant::PoolVector2Array(vec![v2(1.0, 2.0)]),
        Variant::PoolVector3Array(vec![]),
        Variant::PoolColorArray(vec![Color {
            r: 1.0,
            g: 0.0,
            b: 0.0,
            a: 1.0,
        }]),
    ]
}

fn every_behaviour(compression: &str, client_compression: Compression) {
    let (mut server, port) = echo_server(compression);
    let mut a = Client::join(port, client_compression);
    let mut b = Client::join(port, client_compression);
    pump_until(&mut [&mut a, &mut b], "the welcomes", |cs| {
        cs.iter().all(|c| c.calls("Echo", "welcome").len() == 1)
    });
    for c in [&a, &b] {
        // The welcome names the client's own id, and came from the server.
        let welcome = c.calls("Echo", "welcome")[0];
        assert_eq!(
            (welcome.sender, &welcome.args[..]),
            (1, &[Variant::Int(c.id().into())][..])
        );
    }

    // echo on both nodes, reliable and unreliable, 0 to 16 arguments.
    let args = arguments();
    for path in ["Echo", "Echo/Deep/Er"] {
        for n in [0, 1, 16] {
            a.api.rpc_id(1, path, "echo", &args[..n]).unwrap();
        }
        // The other twelve types.
        a.api.rpc_id(1, path, "echo", &args[16..]).unwrap();
        a.api
            .rpc_id(1, path, "echo", &vec![Variant::Int(16); 16])
            .unwrap();
        a.api
            .rpc_unreliable_id(1, path, "echo", &[Variant::Int(9)])
            .unwrap();
    }
    pump_until(&mut [&mut a], "the echoes", |cs| {
        ["Echo", "Echo/Deep/Er"]
            .iter()
            .all(|p| cs[0].calls(p, "echoed").len() == 6)
    });
    for path in ["Echo", "Echo/Deep/Er"] {
        let echoed = a.calls(path, "echoed");
        let got: Vec<_> = echoed.iter().map(|c| c.args.clone()).collect();
        assert_eq!(
            got[..3],
            [vec![], args[..1].to_vec(), args[..16].to_vec()],
            "{path}"
        );
        assert_eq!(got[3], args[16..]);
        assert_eq!(got[4], vec![Variant::Int(16); 16]);
        assert_eq!(got[5], [Variant::Int(9)]);
        assert_eq!(
            echoed[5].mode,
            TransferMode::Unreliable,
            "unreliable in, unreliable out"
        );
        assert!(echoed[..5].iter().all(|c| c.mode == TransferMode::Reliable));
    }
    assert!(
        b.calls("Echo", "echoed").is_empty(),
        "echo answers the caller alone"
    );

    // echo_all reaches every client, with the sender first.
    b.api
        .rpc_id(
            1,
            "Echo/Deep/Er",
            "echo_all",
            &[Variant::String("hi".into())],
        )
        .unwrap();
    pump_until(&mut [&mut a, &mut b], "echoed_from", |cs| {
        cs.iter()
            .all(|c| c.calls("Echo/Deep/Er", "echoed_from").len() == 1)
    });
    for c in [&a, &b] {
        let call = c.calls("Echo/Deep/Er", "echoed_from")[0];
        assert_eq!(
            call.args,
            [Variant::Int(b.id().into()), Variant::String("hi".into())]
        );
    }

    // RSET value: set back on the caller.
    a.api
        .rset_id(1, "Echo", "value", &Variant::Float(1.5))
        .unwrap();
    pump_until(&mut [&mut a], "value", |cs| {
        cs[0].api.property("Echo", "value") == Some(&Variant::Float(1.5))
    });
    assert!(a
        .events
        .iter()
        .any(|e| matches!(e, ApiEvent::Call(c) if c.kind == CallKind::Rset && c.sender == 1)));

    // Raw bytes come back to the sender alone.
    a.api
        .send_bytes(&[1, 2, 3], Target::Server, TransferMode::Reliable)
        .unwrap();
    let big: Vec<u8> = (0..60_000u32).map(|i| i as u8).collect();
    a.api
        .send_bytes(&big, Target::Server, TransferMode::Reliable)
        .unwrap();
    pump_until(&mut [&mut a], "raw", |cs| cs[0].raw().len() == 2);
    assert_eq!(a.raw(), [vec![1, 2, 3], big]);

    // Refused: a puppet method, an unknown method, an unknown path. Nothing comes back.
    a.api.rpc_id(1, "Echo", "puppet_only", &[]).unwrap();
    a.api.rpc_id(1, "Echo", "no_such_method", &[]).unwrap();
    a.api.rpc_id(1, "Nope", "echo", &[Variant::Int(1)]).unwrap();
    let d = report(&mut a, "Echo");
    assert_eq!(count(&d, "echo"), Variant::Int(12), "{d:?}");
    assert_eq!(count(&d, "rset"), Variant::Int(1), "{d:?}");
    assert_eq!(count(&d, "raw"), Variant::Int(2), "{d:?}");
    assert_eq!(count(&d, "rejected"), Variant::Int(3), "{d:?}");
    let keys: Vec<&Variant> = d.iter().map(|(k, _)| k).collect();
    let want = ["echo", "rset", "raw", "rejected"].map(|k| Variant::String(k.into()));
    assert_eq!(
        keys,
        want.iter().collect::<Vec<_>>(),
        "keys in insertion order"
    );
    let d = report(&mut b, "Echo/Deep/Er");
    assert_eq!(
        count(&d, "echo"),
        Variant::Int(0),
        "echo_all is not echo: {d:?}"
    );

    // Nothing refused or malformed in what the server sent us.
    let before = a.api.call_stats();
    assert_eq!(before.malformed + before.rejected(), 0, "{before:?}");

    // A burst stays in order. The path cache at work: both sides confirmed both paths by now,
    // so each of the 200 answers travels in the short form (a path id, no path).
    for i in 0..200 {
        a.api.rpc_id(1, "Echo", "echo", &[Variant::Int(i)]).unwrap();
    }
    pump_until(&mut [&mut a], "the burst", |cs| {
        cs[0].calls("Echo", "echoed").len() == 206
    });
    let burst: Vec<_> = a.calls("Echo", "echoed")[6..]
        .iter()
        .map(|c| c.args.clone())
        .collect();
    assert_eq!(
        burst,
        (0..200).map(|i| vec![Variant::Int(i)]).collect::<Vec<_>>()
    );
    let after = a.api.call_stats();
    assert_eq!(after.cached_form - before.cached_form, 200, "{after:?}");
    assert_eq!(after.full_path_form, before.full_path_form, "{after:?}");
    assert!(
        after.confirms >= 2,
        "the server confirmed our paths: {after:?}"
    );

    server.signal("TERM");
    let status = server.wait_exit(LIMIT).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn every_behaviour_without_compression() {
    every_behaviour("none", Compression::None);
}

#[test]
fn every_behaviour_with_the_range_coder() {
    every_behaviour("range-coder", Compression::RangeCoder);
}
