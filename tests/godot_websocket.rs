//! WebSocket interop against the real engine: headless Godot 3.2 (`godot3-server`) running
//! tests/godot/ws_agent.gd as `WebSocketClient`s and `WebSocketServer`s with Godot's multiplayer
//! framing (WEBSOCKET.md), and as `NetworkedMultiplayerENet` clients in the mixed room.
//!
//! - The engine alone (a Godot server, Godot clients): the behaviours WEBSOCKET.md describes,
//!   the reference the Rust side is held to.
//! - Godot WebSocket clients on the Rust `WebSocketMultiplayerPeer` server: ids, views, order,
//!   60 KB packets, broadcasts and exclusions, leaving.
//! - WEBSOCKET.md's edge cases on the Rust server: unknown targets dropped and counted, the
//!   65,535-byte message limit kept.
//! - A Rust WebSocket client on a Godot `WebSocketServer`.
//! - The mixed room: Godot ENet and WebSocket clients on one Rust server, raw packets and RPCs
//!   between every pair, leavers and late joiners; and the echo_server example with
//!   `--ws-port`, an RPC server for both kinds of Godot client.
//!
//! Missing engine: the tests fail with install instructions, unless `ENET_MP_SKIP_GODOT=1`.
//! `ENET_MP_GODOT_ECHO=1` echoes every line of every agent to stderr as it arrives.

mod support;

use enet_multiplayer::api::{ApiEvent, MultiplayerApi, RpcMode};
use enet_multiplayer::relay::DropReason;
use enet_multiplayer::variant::Variant;
use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, MultiplayerPeer, Packet, PeerEvent, PeerId, Target,
    TransferMode, WebSocketListen, WebSocketMultiplayerPeer,
};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use support::cluster::{deadline, Node};
use support::godot::{require_godot, OrFail};
use support::godot_ws::{
    drive, drive_for, pattern, raw, reaches, recv_text, report, settle, unraw, ApiNode, Rpc, Side,
    Transport, WsAgent, WsAgentConfig,
};
use support::process::{example, free_port, free_tcp_port, Proc};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A Rust side that is not there: the Godot-only test waits a millisecond per pump.
struct Nothing;

impl Side for Nothing {
    fn pump(&mut self) {
        thread::sleep(Duration::from_millis(1));
    }

    fn describe(&self) -> String {
        String::new()
    }
}

/// Whether `agent` printed `line` exactly `n` times so far.
fn printed(agent: &mut WsAgent, line: &str, n: usize) -> bool {
    agent.count_exact(line) == n
}

/// The reference: a Godot `WebSocketServer` with two Godot `WebSocketClient`s, all three the
/// tree's network peer. What WEBSOCKET.md says of Godot 3.2.3, observed: ids, the join order,
/// the relay and its `to` < 0 quirk, unknown targets, the 65,535-byte frame limit at a client and
/// what a larger frame does, and `connection_failed` when the server goes away.
#[test]
fn engine_reference_godot_server_and_clients() {
    let Some(bin) = require_godot() else { return };
    let limit = deadline();
    let port = free_tcp_port();
    let mut server = WsAgent::start(
        &bin,
        &WsAgentConfig::ws_server(port).name("godot-ws-server"),
    );
    assert_eq!(server.wait_ready(limit).or_fail(), 1);
    let mut a = WsAgent::start(&bin, &WsAgentConfig::ws_client(port).name("godot-ws-a"));
    let mut b = WsAgent::start(&bin, &WsAgentConfig::ws_client(port).name("godot-ws-b"));
    let (ia, ib) = (a.id(), b.id());
    assert!(ia > 1 && ib > 1 && ia != ib, "ids {ia} {ib}");
    let mut agents = [&mut server, &mut a, &mut b];
    drive(&mut Nothing, &mut agents, limit, "the mesh", |_, ag| {
        ag[0].connected_ids().len() == 2
            && ag[1].connected_ids().len() == 2
            && ag[2].connected_ids().len() == 2
    });
    let mut server_saw = agents[0].connected_ids();
    server_saw.sort_unstable();
    let mut want = vec![ia, ib];
    want.sort_unstable();
    assert_eq!(server_saw, want);
    for (k, other) in [(1, ib), (2, ia)] {
        let lines = agents[k].lines();
        // SYS_ID, then SYS_ADD(1): peer_connected(1), then connection_succeeded with the id.
        let first: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| {
                l.starts_with("PEER_") || l.starts_with("CONNECTION") || l.starts_with("READY")
            })
            .take(3)
            .collect();
        let me = if k == 1 { ia } else { ib };
        assert_eq!(
            first,
            [
                "PEER_CONNECTED 1",
                "CONNECTION_SUCCEEDED",
                &format!("READY id={me}")
            ],
            "{}",
            report(&Nothing, &mut agents)
        );
        assert_eq!(agents[k].connected_ids(), [1, other]);
    }

    // The relay: a to b, to all, to all but b, to all but the server (-1), to nobody (999).
    agents[1].commands(&[
        format!("send reliable {ib} 0 a-to-b"),
        "send reliable 0 0 a-to-all".to_string(),
        format!("send reliable -{ib} 0 a-to-all-but-b"),
        "send reliable -1 0 a-to-all-but-server".to_string(),
        "send reliable 999 0 a-to-nobody".to_string(),
        "send reliable 1 0 a-to-server".to_string(),
    ]);
    drive(&mut Nothing, &mut agents, limit, "the relay", |_, ag| {
        ag[0]
            .recvs()
            .last()
            .is_some_and(|r| r.text == "a-to-server")
            && ag[2].recvs().len() >= 3
    });
    settle(&mut Nothing, &mut agents, Duration::from_millis(200));
    let texts = |ag: &mut WsAgent| -> Vec<(i64, i64, String)> {
        ag.recvs()
            .into_iter()
            .map(|r| (r.from, r.channel, r.text))
            .collect()
    };
    let t = |s: &str| (ia, -1, s.to_string());
    // Quirk of Godot 3.2.3: the server keeps every `to` < 0 frame, even -1 ("all but me").
    assert_eq!(
        texts(agents[0]),
        [
            t("a-to-all"),
            t("a-to-all-but-b"),
            t("a-to-all-but-server"),
            t("a-to-server")
        ]
    );
    assert_eq!(
        texts(agents[2]),
        [t("a-to-b"), t("a-to-all"), t("a-to-all-but-server")]
    );
    // An unknown target: the Godot server drops the frame (and logs it).
    assert!(
        agents[0]
            .engine_errors()
            .iter()
            .any(|e| e.contains("_server_relay") && e.contains("peer_to.is_null()")),
        "{}",
        report(&Nothing, &mut agents)
    );

    // The frame limit at a client: 65,535 bytes arrive (9 header + RAW byte + 65,525), 65,536
    // are dropped by the client with an error on its stderr, and 65,537 close the connection
    // while the client goes on reporting itself connected.
    let fits = pattern(65_525, 2);
    agents[0].commands(&[
        format!("sendbig {ia} 65525 2"),
        format!("sendbig {ia} 65526 2"),
        format!("send reliable {ia} 0 after-65536"),
    ]);
    drive(
        &mut Nothing,
        &mut agents,
        limit,
        "65,535 bytes and the next packet",
        |_, ag| {
            ag[1]
                .recvs()
                .last()
                .is_some_and(|r| r.text == "after-65536")
        },
    );
    let got: Vec<String> = agents[1]
        .recvs()
        .into_iter()
        .filter(|r| r.from == 1)
        .map(|r| r.text)
        .collect();
    assert_eq!(got, [recv_text(&fits), "after-65536".to_string()]);
    assert!(
        agents[1]
            .engine_errors()
            .iter()
            .any(|e| e.contains("Buffer payload full")),
        "{}",
        report(&Nothing, &mut agents)
    );
    agents[0].command(&format!("sendbig {ia} 65527 2"));
    drive(
        &mut Nothing,
        &mut agents,
        limit,
        "a's departure after 65,537 bytes",
        |_, ag| {
            printed(ag[0], &format!("PEER_DISCONNECTED {ia}"), 1)
                && printed(ag[2], &format!("PEER_DISCONNECTED {ia}"), 1)
        },
    );
    settle(&mut Nothing, &mut agents, Duration::from_millis(500));
    for line in [
        "CONNECTION_FAILED",
        "SERVER_DISCONNECTED",
        "PEER_DISCONNECTED 1",
    ] {
        assert!(
            printed(agents[1], line, 0),
            "{}",
            report(&Nothing, &mut agents)
        );
    }

    // A client's 65,536-byte message (RAW byte + 65,526): the Godot server drops it with an
    // error on its stderr and keeps the client.
    agents[2].commands(&[
        "sendbig 1 65526 6".to_string(),
        "send reliable 1 0 b-after-65536".to_string(),
    ]);
    drive(
        &mut Nothing,
        &mut agents,
        limit,
        "b's packet after its 65,536 bytes",
        |_, ag| ag[0].recvs().iter().any(|r| r.text == "b-after-65536"),
    );
    let at_server: Vec<(i64, String)> = agents[0]
        .recvs()
        .into_iter()
        .filter(|r| r.from == ib)
        .map(|r| (r.from, r.text))
        .collect();
    assert_eq!(at_server, [(ib, "b-after-65536".to_string())]);
    assert_eq!(
        agents[0]
            .engine_errors()
            .iter()
            .filter(|e| e.contains("Buffer payload full"))
            .count(),
        1,
        "{}",
        report(&Nothing, &mut agents)
    );
    assert!(printed(agents[0], &format!("PEER_DISCONNECTED {ib}"), 0));

    // The server goes away: b reports connection_failed, not server_disconnected.
    let quit = Instant::now();
    agents[0].command("quit");
    drive(
        &mut Nothing,
        &mut agents,
        limit,
        "connection_failed at b",
        |_, ag| printed(ag[2], "CONNECTION_FAILED", 1),
    );
    assert!(printed(agents[2], "SERVER_DISCONNECTED", 0));
    assert!(
        quit.elapsed() < Duration::from_secs(5),
        "{:?}",
        quit.elapsed()
    );
    for ag in agents.iter_mut() {
        assert!(ag.agent_errors().is_empty(), "{}", ag.output());
    }
}

// ---- shared by the tests with a Rust side -----------------------------------------------------

/// How a planned delivery travels: `send_bytes` / a raw packet, or the RPC `hello(text)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    Raw,
    Rpc,
}

/// One member of a room: its label in texts and messages, and its Godot id (1: the server).
#[derive(Clone, Debug)]
struct Member {
    label: String,
    id: i64,
}

/// (receiver label, sender id, how, text): one delivery.
type Delivery = (String, i64, Via, String);

/// What the Rust side received, as deliveries, for the texts starting with `tag`.
trait Observe {
    fn seen(&self, label: &str, tag: &str) -> Vec<Delivery>;
    /// Whether it decodes RPCs (a bare peer only sees them as packets, not counted).
    fn reads_rpcs(&self) -> bool;
}

impl Observe for Node<WebSocketMultiplayerPeer> {
    fn seen(&self, label: &str, tag: &str) -> Vec<Delivery> {
        self.packets
            .iter()
            .filter_map(|p| {
                let text = String::from_utf8_lossy(unraw(&p.data)?).into_owned();
                text.starts_with(tag)
                    .then(|| (label.to_string(), i64::from(p.from), Via::Raw, text))
            })
            .collect()
    }

    fn reads_rpcs(&self) -> bool {
        false
    }
}

impl<P: MultiplayerPeer> Observe for ApiNode<P> {
    fn seen(&self, label: &str, tag: &str) -> Vec<Delivery> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ApiEvent::Packet { from, data, .. } => {
                    let text = String::from_utf8_lossy(data).into_owned();
                    Some((i64::from(*from), Via::Raw, text))
                }
                ApiEvent::Call(c) if c.name == "hello" => match &c.args[..] {
                    [Variant::String(s)] => Some((i64::from(c.sender), Via::Rpc, s.clone())),
                    _ => Some((i64::from(c.sender), Via::Rpc, format!("{:?}", c.args))),
                },
                _ => None,
            })
            .filter(|(_, _, t)| t.starts_with(tag))
            .map(|(from, via, text)| (label.to_string(), from, via, text))
            .collect()
    }

    fn reads_rpcs(&self) -> bool {
        true
    }
}

/// What an agent received (RECV lines and `hello` RPCs) for the texts starting with `tag`.
fn agent_seen(agent: &mut WsAgent, label: &str, tag: &str) -> Vec<Delivery> {
    let mut v: Vec<Delivery> = agent
        .recvs()
        .into_iter()
        .filter(|r| r.text.starts_with(tag))
        .map(|r| (label.to_string(), r.from, Via::Raw, r.text))
        .collect();
    v.extend(
        agent
            .rpcs()
            .into_iter()
            .filter(|r| r.method == "hello" && r.text.starts_with(tag))
            .map(|r| (label.to_string(), r.from, Via::Rpc, r.text)),
    );
    v
}

/// One planned packet or RPC: `from` (a member index; 0 is the Rust server) sends `text` to
/// Godot target `target`.
#[derive(Clone, Debug)]
struct Planned {
    from: usize,
    target: i64,
    via: Via,
    text: String,
}

/// The label Godot target `target` is written as in texts.
fn target_label(members: &[Member], target: i64) -> String {
    let label = |id: i64| {
        members
            .iter()
            .find(|m| m.id == id)
            .map_or_else(|| id.to_string(), |m| m.label.clone())
    };
    match target {
        0 => "all".to_string(),
        t if t > 0 => label(t),
        t => format!("not-{}", label(-t)),
    }
}

/// Every member sends to every other member, to all (0) and to all but the next member, both
/// as a raw packet and as an RPC; texts start with `tag`.
fn full_plan(members: &[Member], tag: &str, server_rpc: bool) -> Vec<Planned> {
    let mut plan = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let next = &members[(i + 1) % members.len()];
        let mut targets: Vec<i64> = members
            .iter()
            .filter(|o| o.id != m.id)
            .map(|o| o.id)
            .collect();
        targets.push(0);
        targets.push(-next.id);
        for target in targets {
            for via in [Via::Raw, Via::Rpc] {
                if via == Via::Rpc && i == 0 && !server_rpc {
                    continue;
                }
                let kind = if via == Via::Raw { "raw" } else { "rpc" };
                plan.push(Planned {
                    from: i,
                    target,
                    via,
                    text: format!("{tag} {kind} {}>{}", m.label, target_label(members, target)),
                });
            }
        }
    }
    plan
}

/// The agent command that sends `p`.
fn agent_command(p: &Planned) -> String {
    match p.via {
        Via::Raw => format!("send reliable {} 0 {}", p.target, p.text),
        Via::Rpc => format!("rpc {} hello {}", p.target, p.text),
    }
}

/// Sends the plan (the Rust side's share through `rust_send`, the agents' as commands: agent
/// k is member k + 1), waits until every delivery arrived, lets the room settle, then requires
/// exactly the planned deliveries: each once, with the true sender, nothing else. (RPCs that
/// reach a bare Rust peer are not counted there: it sees them as packets it does not decode.)
fn run_plan<S: Side + Observe>(
    side: &mut S,
    agents: &mut [&mut WsAgent],
    members: &[Member],
    plan: &[Planned],
    tag: &str,
    mut rust_send: impl FnMut(&mut S, &Planned),
) {
    let mut want: Vec<Delivery> = Vec::new();
    for p in plan {
        let sender = members[p.from].id;
        for (i, m) in members.iter().enumerate() {
            let unread = i == 0 && p.via == Via::Rpc && !side.reads_rpcs();
            if reaches(sender, p.target, m.id) && !unread {
                want.push((m.label.clone(), sender, p.via, p.text.clone()));
            }
        }
    }
    want.sort();
    let mut per_agent: Vec<Vec<String>> = vec![Vec::new(); agents.len()];
    for p in plan {
        if p.from == 0 {
            rust_send(side, p);
        } else {
            per_agent[p.from - 1].push(agent_command(p));
        }
    }
    for (a, cmds) in agents.iter_mut().zip(&per_agent) {
        a.commands(cmds);
    }
    let observe = |side: &S, agents: &mut [&mut WsAgent]| -> Vec<Delivery> {
        let mut seen = side.seen(&members[0].label, tag);
        for (k, a) in agents.iter_mut().enumerate() {
            seen.extend(agent_seen(a, &members[k + 1].label, tag));
        }
        seen.sort();
        seen
    };
    let complete = drive_for(side, agents, deadline(), |s, a| {
        observe(s, a).len() >= want.len()
    });
    settle(side, agents, Duration::from_millis(300));
    let seen = observe(side, agents);
    if !complete || seen != want {
        let missing: Vec<&Delivery> = want.iter().filter(|d| !seen.contains(d)).collect();
        let extra: Vec<&Delivery> = seen.iter().filter(|d| !want.contains(d)).collect();
        panic!(
            "{tag}: deliveries differ from the plan ({} planned, {} seen)\nmissing {missing:#?}\n\
             extra or repeated {extra:#?}\n{}",
            want.len(),
            seen.len(),
            report(side, agents)
        );
    }
    eprintln!(
        "{tag}: {} sends, {} deliveries checked",
        plan.len(),
        want.len()
    );
}

/// Pumps `side` until every agent printed READY (a Rust server must be polled for Godot's
/// handshakes to complete), then returns their ids.
fn ready_ids<S: Side>(side: &mut S, agents: &mut [&mut WsAgent]) -> Vec<i64> {
    drive(
        side,
        agents,
        deadline(),
        "every agent to print READY",
        |_, a| {
            a.iter_mut()
                .all(|x| x.lines().iter().any(|l| l.starts_with("READY id=")))
        },
    );
    agents.iter_mut().map(|a| a.id()).collect()
}

/// Every agent's own ERROR lines and Godot's error reports on its stderr must be empty.
fn assert_no_errors(agents: &mut [&mut WsAgent]) {
    for a in agents.iter_mut() {
        let mut errors = a.agent_errors();
        errors.extend(a.engine_errors());
        let name = a.name().to_string();
        assert!(errors.is_empty(), "{name}: {errors:#?}\n{}", a.output());
    }
}

/// The ids each agent saw connect, in order, must be exactly `want(k)` as a set, each once.
fn assert_views(agents: &mut [&mut WsAgent], want: impl Fn(usize) -> Vec<i64>) {
    for (k, a) in agents.iter_mut().enumerate() {
        let mut saw = a.connected_ids();
        saw.sort_unstable();
        let mut w = want(k);
        w.sort_unstable();
        let name = a.name().to_string();
        assert_eq!(saw, w, "{name} saw these peers connect\n{}", a.output());
    }
}

/// Whether every agent saw exactly `want(k)` connect (each once).
fn views_are(agents: &mut [&mut WsAgent], want: impl Fn(usize) -> Vec<i64>) -> bool {
    agents.iter_mut().enumerate().all(|(k, a)| {
        let mut saw = a.connected_ids();
        saw.sort_unstable();
        let mut w = want(k);
        w.sort_unstable();
        saw == w
    })
}

/// The RECV texts `agent` got from `from` that start with `prefix`, in arrival order.
fn texts_from(agent: &mut WsAgent, from: i64, prefix: &str) -> Vec<String> {
    agent
        .recvs()
        .into_iter()
        .filter(|r| r.from == from && r.text.starts_with(prefix))
        .map(|r| r.text)
        .collect()
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i}")).collect()
}

type WsNode = Node<WebSocketMultiplayerPeer>;

fn ws_server() -> WsNode {
    let s = WebSocketMultiplayerPeer::server(0)
        .bind_address(LOOPBACK)
        .build()
        .expect("WebSocket server");
    WsNode::new(Box::new(s))
}

fn ws_port(node: &WsNode) -> u16 {
    node.peer.local_port().expect("listening")
}

fn server_packets_from(node: &WsNode, from: i64, prefix: &str) -> Vec<String> {
    node.packets
        .iter()
        .filter(|p| i64::from(p.from) == from)
        .filter_map(|p| unraw(&p.data))
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .filter(|t| t.starts_with(prefix))
        .collect()
}

/// Scenario 1. Three Godot `WebSocketClient`s (the tree's network peer) join the Rust
/// `WebSocketMultiplayerPeer` server: each gets `connected_to_server` with the id the server
/// gave it (SYS_ID before SYS_ADD(1)) and sees the others once; 200 numbered packets keep their
/// order client -> server, server -> client and client -> client through the relay; 60 KB
/// packets arrive intact every way; broadcasts and exclusions reach exactly their receivers
/// with the true sender; a client leaves and everyone is told once.
#[test]
fn godot_ws_clients_on_rust_server() {
    let Some(bin) = require_godot() else { return };
    let limit = deadline();
    let mut server = ws_server();
    let port = ws_port(&server);
    let mut agents: Vec<WsAgent> = (0..3)
        .map(|i| WsAgent::start(&bin, &WsAgentConfig::ws_client(port).name(&format!("w{i}"))))
        .collect();
    let mut ag: Vec<&mut WsAgent> = agents.iter_mut().collect();
    drive(
        &mut server,
        &mut ag,
        limit,
        "three Godot clients to connect",
        |s, a| {
            s.connected_peers().len() == 3
                && a.iter_mut()
                    .all(|x| x.lines().iter().any(|l| l.starts_with("READY id=")))
        },
    );
    let ids: Vec<i64> = ag.iter_mut().map(|a| a.id()).collect();
    let mut server_ids: Vec<i64> = server
        .connected_peers()
        .iter()
        .map(|&i| i64::from(i))
        .collect();
    server_ids.sort_unstable();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(server_ids, sorted, "{}", report(&server, &mut ag));
    for &id in &ids {
        assert!(id > 1 && id <= i64::from(i32::MAX), "id {id}");
        assert_eq!(server.count(PeerEvent::PeerConnected(id as PeerId)), 1);
    }
    // connected_to_server came after peer_connected(1), with the right id already set.
    for (k, a) in ag.iter_mut().enumerate() {
        let first: Vec<String> = a
            .lines()
            .into_iter()
            .filter(|l| {
                l.starts_with("PEER_") || l.starts_with("CONNECTION") || l.starts_with("READY")
            })
            .take(3)
            .collect();
        assert_eq!(
            first,
            [
                "PEER_CONNECTED 1",
                "CONNECTION_SUCCEEDED",
                &format!("READY id={}", ids[k])
            ],
            "{}",
            a.output()
        );
    }
    let everyone = |k: usize| -> Vec<i64> {
        std::iter::once(1)
            .chain(
                ids.iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, id)| *id),
            )
            .collect()
    };
    drive(
        &mut server,
        &mut ag,
        limit,
        "each client to see the others",
        |_, a| views_are(a, everyone),
    );
    settle(&mut server, &mut ag, Duration::from_millis(200));
    assert_views(&mut ag, everyone);

    // 200 numbered reliable packets each way, and through the relay, in order.
    ag[0].command("sendseq reliable 1 200 c2s");
    ag[2].command(&format!("sendseq reliable {} 200 c2c", ids[0]));
    for i in 0..200 {
        server
            .peer
            .send(
                Target::Peer(ids[1] as PeerId),
                TransferMode::Reliable,
                0,
                &raw(format!("s2c {i}").as_bytes()),
            )
            .unwrap();
    }
    drive(
        &mut server,
        &mut ag,
        limit,
        "3 x 200 numbered packets",
        |s, a| {
            server_packets_from(s, ids[0], "c2s ").len() >= 200
                && texts_from(a[1], 1, "s2c ").len() >= 200
                && texts_from(a[0], ids[2], "c2c ").len() >= 200
        },
    );
    assert_eq!(
        server_packets_from(&server, ids[0], "c2s "),
        numbered("c2s", 200)
    );
    assert_eq!(texts_from(ag[1], 1, "s2c "), numbered("s2c", 200));
    assert_eq!(texts_from(ag[0], ids[2], "c2c "), numbered("c2c", 200));
    for p in &server.packets {
        assert_eq!((p.mode, p.channel), (TransferMode::Reliable, 0), "{p:?}");
    }

    // 60 KB: client -> server, server -> client, client -> client.
    let up = pattern(60_000, 5);
    let down = pattern(60_000, 9);
    let across = pattern(60_000, 11);
    ag[1].command("sendbig 1 60000 5");
    ag[0].command(&format!("sendbig {} 60000 11", ids[2]));
    server
        .peer
        .send(
            Target::Peer(ids[2] as PeerId),
            TransferMode::Reliable,
            0,
            &raw(&down),
        )
        .unwrap();
    let big = |d: &[u8]| recv_text(d);
    drive(
        &mut server,
        &mut ag,
        limit,
        "three 60 KB packets",
        |s, a| {
            s.packets.iter().any(|p| p.data.len() > 50_000)
                && a[2]
                    .recvs()
                    .iter()
                    .filter(|r| r.text.starts_with("BIG "))
                    .count()
                    >= 2
        },
    );
    let got_up: Vec<&[u8]> = server
        .packets
        .iter()
        .filter(|p| p.data.len() > 50_000)
        .map(|p| &p.data[..])
        .collect();
    assert_eq!(got_up.len(), 1);
    assert!(server
        .packets
        .iter()
        .any(|p| i64::from(p.from) == ids[1] && p.data.len() > 50_000));
    assert!(unraw(got_up[0]) == Some(&up[..]), "60 KB up differs");
    let mut at2: Vec<(i64, String)> = ag[2]
        .recvs()
        .into_iter()
        .filter(|r| r.text.starts_with("BIG "))
        .map(|r| (r.from, r.text))
        .collect();
    at2.sort();
    let mut want2 = vec![(1, big(&down)), (ids[0], big(&across))];
    want2.sort();
    assert_eq!(at2, want2);

    // Broadcasts and exclusions, raw (RPCs go client to client through the relay too).
    let mut members = vec![Member {
        label: "s".into(),
        id: 1,
    }];
    for (k, id) in ids.iter().enumerate() {
        members.push(Member {
            label: format!("w{k}"),
            id: *id,
        });
    }
    let plan: Vec<Planned> = full_plan(&members, "b1", false)
        .into_iter()
        .filter(|p| !(p.via == Via::Rpc && p.target == 1))
        .collect();
    run_plan(&mut server, &mut ag, &members, &plan, "b1", |s, p| {
        s.peer
            .send(
                Target::from_godot(p.target as i32),
                TransferMode::Reliable,
                0,
                &raw(p.text.as_bytes()),
            )
            .unwrap()
    });

    // w2 leaves: the server and the two others are told, once.
    let gone = ids[2];
    ag[2].command("quit");
    drive(&mut server, &mut ag, limit, "w2's departure", |s, a| {
        s.count(PeerEvent::PeerDisconnected(gone as PeerId)) == 1
            && a[..2].iter_mut().all(|x| x.disconnected_ids() == [gone])
    });
    settle(&mut server, &mut ag, Duration::from_millis(300));
    assert_eq!(server.count(PeerEvent::PeerDisconnected(gone as PeerId)), 1);
    for a in ag[..2].iter_mut() {
        assert_eq!(a.disconnected_ids(), [gone], "{}", a.output());
    }
    let mut left: Vec<PeerId> = server.peer.peer_ids();
    left.sort_unstable();
    let mut want_left = vec![ids[0] as PeerId, ids[1] as PeerId];
    want_left.sort_unstable();
    assert_eq!(left, want_left);
    assert_no_errors(&mut ag[..2]);
}

/// Scenario 2. WEBSOCKET.md's observations against the Rust server: a Godot WebSocket client
/// sends raw packets to an id it was never told about (Godot does not check): the server drops
/// them and counts them, nothing arrives anywhere. The largest message a Godot client takes
/// (65,535 bytes: 65,526 of payload) arrives whole; the Rust server refuses to send more (an
/// error or a counted drop), and the client stays connected. A Godot client that sends a
/// 65,536-byte message is closed (counted as oversize). Bare agents (not the tree's peer):
/// payloads are exactly the bytes sent.
#[test]
fn rust_server_drops_unknown_targets_and_keeps_to_godots_frame_limit() {
    let Some(bin) = require_godot() else { return };
    let limit = deadline();
    let mut server = ws_server();
    let port = ws_port(&server);
    let mut a = WsAgent::start(
        &bin,
        &WsAgentConfig::ws_client(port).name("bare-a").api(false),
    );
    let mut b = WsAgent::start(
        &bin,
        &WsAgentConfig::ws_client(port).name("bare-b").api(false),
    );
    let mut ag = [&mut a, &mut b];
    let ids = ready_ids(&mut server, &mut ag);
    let (ia, ib) = (ids[0], ids[1]);
    drive(&mut server, &mut ag, limit, "the mesh", |_, x| {
        x[0].connected_ids().len() == 2 && x[1].connected_ids().len() == 2
    });
    let before = server.peer.stats().drops;
    let nobody = (1..)
        .map(|k| 424_242 + k)
        .find(|id| *id != ia && *id != ib)
        .unwrap();
    ag[0].commands(&[
        format!("send reliable {nobody} 0 to-nobody"),
        format!("send reliable -{nobody} 0 to-all-but-nobody"),
        format!("send reliable {ib} 0 to-b-after"),
        "send reliable 1 0 to-server-after".to_string(),
    ]);
    drive(
        &mut server,
        &mut ag,
        limit,
        "the packets after the dropped one",
        |s, x| {
            s.packets.iter().any(|p| &p.data[..] == b"to-server-after")
                && x[1].recvs().iter().any(|r| r.text == "to-b-after")
        },
    );
    settle(&mut server, &mut ag, Duration::from_millis(300));
    let at_server: Vec<(i64, String)> = server
        .packets
        .iter()
        .map(|p| {
            (
                i64::from(p.from),
                String::from_utf8_lossy(&p.data).into_owned(),
            )
        })
        .collect();
    // An exclusion of an unknown id is still "everyone but the sender": it is delivered.
    assert_eq!(
        at_server,
        [
            (ia, "to-all-but-nobody".to_string()),
            (ia, "to-server-after".to_string())
        ]
    );
    let at_b: Vec<(i64, String)> = ag[1]
        .recvs()
        .into_iter()
        .map(|r| (r.from, r.text))
        .collect();
    assert_eq!(
        at_b,
        [
            (ia, "to-all-but-nobody".to_string()),
            (ia, "to-b-after".to_string())
        ]
    );
    let after = server.peer.stats().drops;
    assert_eq!(
        after.get(DropReason::UnknownTarget),
        before.get(DropReason::UnknownTarget) + 1,
        "drops before {before:?}, after {after:?}"
    );
    assert_eq!(after.total(), before.total() + 1, "{after:?}");

    // 65,526 bytes of payload (a 65,535-byte message) each way and relayed; one more byte is
    // refused by the Rust server.
    let max = pattern(65_526, 1);
    server
        .peer
        .send(Target::Peer(ia as PeerId), TransferMode::Reliable, 0, &max)
        .unwrap();
    ag[1].command(&format!("sendbig {ia} 65526 4"));
    ag[0].command("sendbig 1 65526 3");
    drive(
        &mut server,
        &mut ag,
        limit,
        "65,526-byte payloads",
        |s, x| {
            s.packets.iter().any(|p| p.data.len() == 65_526)
                && x[0]
                    .recvs()
                    .iter()
                    .filter(|r| r.text.starts_with("BIG "))
                    .count()
                    == 2
        },
    );
    let mut at_a: Vec<(i64, String)> = ag[0]
        .recvs()
        .into_iter()
        .filter(|r| r.text.starts_with("BIG "))
        .map(|r| (r.from, r.text))
        .collect();
    at_a.sort();
    let mut want_a = vec![(1, recv_text(&max)), (ib, recv_text(&pattern(65_526, 4)))];
    want_a.sort();
    assert_eq!(at_a, want_a);
    let up: Vec<&Packet> = server
        .packets
        .iter()
        .filter(|p| p.data.len() > 1000)
        .collect();
    assert_eq!(up.len(), 1);
    assert_eq!(
        (i64::from(up[0].from), &up[0].data[..]),
        (ia, &pattern(65_526, 3)[..])
    );

    let drops_before = server.peer.stats().drops;
    let too_big = pattern(65_527, 1);
    let refused = server.peer.send(
        Target::Peer(ia as PeerId),
        TransferMode::Reliable,
        0,
        &too_big,
    );
    let broadcast = server
        .peer
        .send(Target::Broadcast, TransferMode::Reliable, 0, &too_big);
    server
        .peer
        .send(
            Target::Broadcast,
            TransferMode::Reliable,
            0,
            b"after-too-big",
        )
        .unwrap();
    drive(
        &mut server,
        &mut ag,
        limit,
        "the packet after the refused ones",
        |_, x| {
            x.iter_mut()
                .all(|y| y.recvs().iter().any(|r| r.text == "after-too-big"))
        },
    );
    settle(&mut server, &mut ag, Duration::from_millis(300));
    let drops_after = server.peer.stats().drops;
    let counted = drops_after.get(DropReason::TooLargeForWebSocket)
        - drops_before.get(DropReason::TooLargeForWebSocket);
    // Either an error from send, or a drop counted per destination.
    let want_counted = u64::from(refused.is_ok()) + 2 * u64::from(broadcast.is_ok());
    assert_eq!(
        counted, want_counted,
        "send results {refused:?} {broadcast:?}, drops {drops_after:?}"
    );
    eprintln!("65,527 bytes: send to one {refused:?}, broadcast {broadcast:?}, counted {counted}");
    for x in ag.iter_mut() {
        let bigs = x
            .recvs()
            .iter()
            .filter(|r| r.text.contains("len=65527"))
            .count();
        assert_eq!(bigs, 0, "{}", x.output());
        assert_eq!(x.count_exact("CONNECTION_FAILED"), 0, "{}", x.output());
        assert!(x.disconnected_ids().is_empty(), "{}", x.output());
    }
    assert_eq!(server.connected_peers().len(), 2);
    assert_no_errors(&mut ag);

    // A Godot client that sends a 65,536-byte message (Godot's client sends it; a Godot 3.2.3
    // server drops it and keeps the client, see engine_reference_godot_server_and_clients):
    // the Rust server closes that connection from the frame's header, counts it as oversize,
    // and the others are told the client left; the Godot client reports connection_failed.
    let mut c = WsAgent::start(
        &bin,
        &WsAgentConfig::ws_client(port).name("bare-c").api(false),
    );
    let ic = ready_ids(&mut server, &mut [&mut c])[0];
    let mut ag = [&mut a, &mut b, &mut c];
    drive(&mut server, &mut ag, limit, "c to meet a and b", |_, x| {
        x[0].connected_ids().len() == 3 && x[1].connected_ids().len() == 3
    });
    let oversize = server.peer.stats().drops.get(DropReason::Oversize);
    ag[2].commands(&["sendbig 1 65527 6", "send reliable 1 0 after-65536"]);
    drive(&mut server, &mut ag, limit, "c to be closed", |s, x| {
        s.count(PeerEvent::PeerDisconnected(ic as PeerId)) == 1
            && x[0].disconnected_ids() == [ic]
            && x[1].disconnected_ids() == [ic]
            && x[2].count_exact("CONNECTION_FAILED") == 1
    });
    assert_eq!(
        server.peer.stats().drops.get(DropReason::Oversize),
        oversize + 1,
        "{:?}",
        server.peer.stats()
    );
    assert!(
        !server.packets.iter().any(|p| i64::from(p.from) == ic),
        "{}",
        report(&server, &mut ag)
    );
}

/// Scenario 3. A Rust `WebSocketMultiplayerPeer` client joins a real Godot `WebSocketServer`
/// (the tree's network peer) with a Godot `WebSocketClient` there: it gets its id (SYS_ID, then
/// peer 1 and connection_succeeded), sees the Godot client, exchanges packets with the server
/// and with the client through Godot's relay (with Godot's `to` < 0 quirk: the server keeps
/// even `-1`), 60 KB both ways; then it leaves, and a second Rust client is kicked.
#[test]
fn rust_ws_client_on_godot_server() {
    let Some(bin) = require_godot() else { return };
    let limit = deadline();
    let port = free_tcp_port();
    let mut gs = WsAgent::start(&bin, &WsAgentConfig::ws_server(port).name("godot-server"));
    assert_eq!(gs.wait_ready(limit).or_fail(), 1);
    let mut gc = WsAgent::start(&bin, &WsAgentConfig::ws_client(port).name("godot-client"));
    let g = gc.id();
    let url = format!("ws://127.0.0.1:{port}/");
    let mut r = WsNode::new(Box::new(
        WebSocketMultiplayerPeer::client(url.clone())
            .build()
            .expect("client"),
    ));
    let mut ag = [&mut gs, &mut gc];
    drive(&mut r, &mut ag, limit, "the Rust client to join", |r, a| {
        r.count(PeerEvent::ConnectionSucceeded) == 1
            && r.connected_peers().len() == 2
            && a[0].connected_ids().len() == 2
            && a[1].connected_ids().len() == 2
    });
    let me = i64::from(r.id());
    assert!(me > 1 && me != g, "id {me}");
    assert_eq!(
        r.events[..2],
        [PeerEvent::PeerConnected(1), PeerEvent::ConnectionSucceeded],
        "{}",
        report(&r, &mut ag)
    );
    let mut peers = r.connected_peers();
    peers.sort_unstable();
    let mut want = vec![1, g as PeerId];
    want.sort_unstable();
    assert_eq!(peers, want);
    assert_eq!(
        ag[0].connected_ids().iter().filter(|&&x| x == me).count(),
        1
    );
    assert_eq!(ag[1].connected_ids(), [1, me]);

    // Raw packets every way. The Godot server keeps every `to` < 0 frame, even -1.
    let sends: [(Target, &str); 5] = [
        (Target::Server, "r-to-server"),
        (Target::Peer(g as PeerId), "r-to-g"),
        (Target::Broadcast, "r-to-all"),
        (Target::AllExcept(g as PeerId), "r-not-g"),
        (Target::AllExcept(1), "r-not-server"),
    ];
    for (target, text) in sends {
        r.peer
            .send(target, TransferMode::Reliable, 0, &raw(text.as_bytes()))
            .unwrap();
    }
    r.peer
        .send(
            Target::Peer(g as PeerId),
            TransferMode::Reliable,
            0,
            &raw(&pattern(60_000, 21)),
        )
        .unwrap();
    ag[0].commands(&[
        format!("send reliable {me} 0 gs-to-r"),
        "send reliable 0 0 gs-to-all".to_string(),
        format!("send reliable -{g} 0 gs-not-g"),
        format!("send reliable -{me} 0 gs-not-r"),
    ]);
    ag[1].commands(&[
        format!("send reliable {me} 0 gc-to-r"),
        "send reliable 0 0 gc-to-all".to_string(),
        format!("send reliable -{me} 0 gc-not-r"),
        "send reliable -1 0 gc-not-server".to_string(),
        format!("sendbig {me} 60000 22"),
        format!("sendseq reliable {me} 200 gc-seq"),
    ]);
    ag[1].command("echo sent");
    let at_r = |r: &WsNode| -> Vec<(i64, String)> {
        r.packets
            .iter()
            .map(|p| {
                let d = unraw(&p.data).unwrap_or(b"<no RAW byte>");
                (i64::from(p.from), recv_text(d))
            })
            .filter(|(_, t)| !t.starts_with("gc-seq"))
            .collect()
    };
    drive(
        &mut r,
        &mut ag,
        limit,
        "everything at the Rust client",
        |r, a| {
            let from = |x: &mut WsAgent, id: i64| x.recvs().iter().filter(|m| m.from == id).count();
            server_packets_from(r, g, "gc-seq ").len() >= 200
                && at_r(r).len() >= 7
                && from(a[0], me) >= 4
                && from(a[0], g) >= 3
                && from(a[1], me) >= 4
        },
    );
    settle(&mut r, &mut ag, Duration::from_millis(300));
    assert_eq!(
        server_packets_from(&r, g, "gc-seq "),
        numbered("gc-seq", 200)
    );
    let mut got = at_r(&r);
    got.sort();
    let mut want: Vec<(i64, String)> = vec![
        (1, "gs-to-r".into()),
        (1, "gs-to-all".into()),
        (1, "gs-not-g".into()),
        (g, "gc-to-r".into()),
        (g, "gc-to-all".into()),
        (g, "gc-not-server".into()),
        (g, recv_text(&pattern(60_000, 22))),
    ];
    want.sort();
    assert_eq!(got, want, "{}", report(&r, &mut ag));
    for p in &r.packets {
        assert_eq!((p.mode, p.channel), (TransferMode::Reliable, 0), "{p:?}");
    }
    let from_r = |a: &mut WsAgent| -> Vec<String> {
        let mut v: Vec<String> = a
            .recvs()
            .into_iter()
            .filter(|x| x.from == me)
            .map(|x| x.text)
            .collect();
        v.sort();
        v
    };
    let sorted = |v: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        from_r(ag[0]),
        sorted(&["r-to-server", "r-to-all", "r-not-g", "r-not-server"]),
        "{}",
        ag[0].output()
    );
    let big = recv_text(&pattern(60_000, 21));
    assert_eq!(
        from_r(ag[1]),
        sorted(&["r-to-g", "r-to-all", "r-not-server", &big]),
        "{}",
        ag[1].output()
    );
    // The Godot client's own sends that were not for us.
    let at_gs: Vec<String> = ag[0]
        .recvs()
        .into_iter()
        .filter(|x| x.from == g)
        .map(|x| x.text)
        .collect();
    assert_eq!(at_gs, ["gc-to-all", "gc-not-r", "gc-not-server"]);

    // The Rust client leaves: the Godot server and client are told once.
    r.peer.disconnect_peer(1, false).unwrap();
    drive(
        &mut r,
        &mut ag,
        limit,
        "the Rust client's departure",
        |_, a| a[0].disconnected_ids() == [me] && a[1].disconnected_ids() == [me],
    );
    settle(&mut r, &mut ag, Duration::from_millis(300));
    assert_eq!(ag[0].disconnected_ids(), [me]);
    assert_eq!(ag[1].disconnected_ids(), [me]);
    eprintln!("the Rust client after leaving: {:?}", r.events);

    // A second Rust client is kicked by the Godot server: it is told the server went away.
    let mut r2 = WsNode::new(Box::new(
        WebSocketMultiplayerPeer::client(url)
            .build()
            .expect("client"),
    ));
    drive(
        &mut r2,
        &mut ag,
        limit,
        "the second Rust client to join",
        |r, a| {
            r.count(PeerEvent::ConnectionSucceeded) == 1
                && r.connected_peers().len() == 2
                && a[1].connected_ids().len() == 3
        },
    );
    let me2 = i64::from(r2.id());
    ag[0].command(&format!("kick {me2}"));
    let kicked = Instant::now();
    drive(&mut r2, &mut ag, limit, "the kick", |r, a| {
        r.events
            .iter()
            .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
            && a[1].disconnected_ids() == [me, me2]
    });
    assert!(
        kicked.elapsed() < Duration::from_secs(5),
        "{:?}",
        kicked.elapsed()
    );
    assert_eq!(
        r2.peer.connection_status(),
        enet_multiplayer::ConnectionStatus::Disconnected
    );
    assert_no_errors(&mut ag[1..]);
}

// ---- the mixed room -----------------------------------------------------------------------------

type MixedServer = ApiNode<ENetMultiplayerPeer>;

fn mixed_server() -> (MixedServer, u16, u16) {
    let peer = ENetMultiplayerPeer::server(0)
        .bind_address(LOOPBACK)
        .compression(Compression::None)
        .websocket(WebSocketListen::new(0).bind_address(LOOPBACK))
        .build()
        .expect("mixed server");
    let enet_port = peer.local_port().expect("ENet port");
    let ws = peer.websocket_port().expect("WebSocket port");
    let mut api = MultiplayerApi::new(peer);
    api.rpc_config("Echo", "hello", RpcMode::Remote);
    (ApiNode::new(api), enet_port, ws)
}

fn mixed_send(s: &mut MixedServer, p: &Planned) {
    let target = Target::from_godot(p.target as i32);
    match p.via {
        Via::Raw => s
            .api
            .send_bytes(p.text.as_bytes(), target, TransferMode::Reliable)
            .unwrap(),
        Via::Rpc => s
            .api
            .rpcp(
                target,
                false,
                "Echo",
                "hello",
                &[Variant::String(p.text.clone())],
            )
            .unwrap(),
    }
}

fn api_count(s: &MixedServer, e: &ApiEvent) -> usize {
    s.events.iter().filter(|x| *x == e).count()
}

/// ENet agents must read every relayed packet on ENet channel 1 (reliable, logical channel 0),
/// WebSocket agents on no channel (-1).
fn assert_channels(agents: &mut [&mut WsAgent], tag: &str) {
    for a in agents.iter_mut() {
        let want = match a.config().transport {
            Transport::Enet => 1,
            Transport::WebSocket => -1,
        };
        for r in a.recvs().iter().filter(|r| r.text.starts_with(tag)) {
            assert_eq!(r.channel, want, "{}: {r:?}", a.name());
        }
    }
}

/// Scenario 4. The mixed room: one Rust server (a `MultiplayerApi` over an ENet server with a
/// WebSocket listener), two Godot ENet clients and two Godot WebSocket clients. Everyone sees
/// everyone once, in one id space; raw packets and RPCs go between every pair both ways and to
/// and from the server, to all and to all but one, each arriving once with the true sender
/// (ENet clients read the WebSocket clients' traffic on channel 1); a packet too large for
/// WebSocket reaches the ENet side only (counted); one client of each transport leaves, a late
/// joiner of each joins, and everyone's view is exact; the server closes.
#[test]
fn mixed_room_enet_and_websocket_godot_clients() {
    let Some(bin) = require_godot() else { return };
    let limit = deadline();
    let (mut server, enet_port, ws) = mixed_server();
    let spawn = |cfg: WsAgentConfig| WsAgent::start(&bin, &cfg);
    let mut e0 = spawn(WsAgentConfig::enet_client(enet_port).name("e0"));
    let mut e1 = spawn(WsAgentConfig::enet_client(enet_port).name("e1"));
    let mut w0 = spawn(WsAgentConfig::ws_client(ws).name("w0"));
    let mut w1 = spawn(WsAgentConfig::ws_client(ws).name("w1"));
    let ids = ready_ids(&mut server, &mut [&mut e0, &mut e1, &mut w0, &mut w1]);
    let mut set: Vec<i64> = ids.clone();
    set.sort_unstable();
    set.dedup();
    assert_eq!(set.len(), 4, "one id space: {ids:?}");
    let labels = ["e0", "e1", "w0", "w1"];
    let members: Vec<Member> = std::iter::once(Member {
        label: "s".into(),
        id: 1,
    })
    .chain(labels.iter().zip(&ids).map(|(l, id)| Member {
        label: l.to_string(),
        id: *id,
    }))
    .collect();
    let view = |members: &[Member], k: usize| -> Vec<i64> {
        members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k + 1)
            .map(|(_, m)| m.id)
            .collect()
    };
    {
        let mut ag = [&mut e0, &mut e1, &mut w0, &mut w1];
        drive(&mut server, &mut ag, limit, "the room to mesh", |s, a| {
            s.api.network_connected_peers().len() == 4 && views_are(a, |k| view(&members, k))
        });
        settle(&mut server, &mut ag, Duration::from_millis(300));
        assert_views(&mut ag, |k| view(&members, k));
        for id in &ids {
            assert_eq!(
                api_count(&server, &ApiEvent::PeerConnected(*id as PeerId)),
                1
            );
        }
        let mut peers: Vec<i64> = server
            .api
            .peer()
            .peer_ids()
            .iter()
            .map(|&i| i64::from(i))
            .collect();
        peers.sort_unstable();
        assert_eq!(peers, set);

        let plan = full_plan(&members, "m1", true);
        run_plan(&mut server, &mut ag, &members, &plan, "m1", mixed_send);
        assert_channels(&mut ag, "m1");

        // The largest payload a WebSocket client takes crosses from ENet; one byte more is
        // dropped towards WebSocket only, and counted once per WebSocket destination.
        let iw0 = ids[2];
        let before = server
            .api
            .peer()
            .stats()
            .drops
            .get(DropReason::TooLargeForWebSocket);
        ag[0].commands(&[
            format!("sendbig {iw0} 65525 3"),
            "sendbig 0 65526 4".to_string(),
            "send reliable 0 0 m2 after-big".to_string(),
        ]);
        drive(
            &mut server,
            &mut ag,
            limit,
            "the packet after the big ones",
            |_, a| {
                a[1..]
                    .iter_mut()
                    .all(|x| x.recvs().iter().any(|r| r.text == "m2 after-big"))
            },
        );
        settle(&mut server, &mut ag, Duration::from_millis(300));
        let bigs = |a: &mut WsAgent| -> Vec<String> {
            a.recvs()
                .into_iter()
                .filter(|r| r.text.starts_with("BIG ") && r.from == ids[0])
                .map(|r| r.text)
                .collect()
        };
        let fits = recv_text(&pattern(65_525, 3));
        let over = recv_text(&pattern(65_526, 4));
        assert_eq!(
            bigs(ag[1]),
            std::slice::from_ref(&over),
            "{}",
            ag[1].output()
        );
        assert_eq!(bigs(ag[2]), [fits], "{}", ag[2].output());
        assert!(bigs(ag[3]).is_empty(), "{}", ag[3].output());
        let at_server: Vec<usize> = server
            .events
            .iter()
            .filter_map(|e| match e {
                ApiEvent::Packet { from, data, .. }
                    if i64::from(*from) == ids[0] && data.len() > 60_000 =>
                {
                    Some(data.len())
                }
                _ => None,
            })
            .collect();
        assert_eq!(at_server, [65_526]);
        let after = server
            .api
            .peer()
            .stats()
            .drops
            .get(DropReason::TooLargeForWebSocket);
        assert_eq!(after - before, 2, "{:?}", server.api.peer().stats().drops);
        assert_no_errors(&mut ag);
    }

    // e1 and w1 leave; everyone left is told once.
    let (ie1, iw1) = (ids[1], ids[3]);
    e1.command("quit");
    w1.command("quit");
    {
        let mut ag = [&mut e0, &mut w0, &mut e1, &mut w1];
        drive(&mut server, &mut ag, limit, "e1 and w1 to leave", |s, a| {
            api_count(s, &ApiEvent::PeerDisconnected(ie1 as PeerId)) == 1
                && api_count(s, &ApiEvent::PeerDisconnected(iw1 as PeerId)) == 1
                && a[..2].iter_mut().all(|x| {
                    let mut d = x.disconnected_ids();
                    d.sort_unstable();
                    let mut w = vec![ie1, iw1];
                    w.sort_unstable();
                    d == w
                })
        });
        for a in ag[2..].iter_mut() {
            assert!(
                a.wait_exit(limit).is_some_and(|s| s.success()),
                "{}",
                a.output()
            );
        }
    }
    drop(e1);
    drop(w1);

    // Late joiners of each transport.
    let mut e2 = spawn(WsAgentConfig::enet_client(enet_port).name("e2"));
    let mut w2 = spawn(WsAgentConfig::ws_client(ws).name("w2"));
    let late = ready_ids(&mut server, &mut [&mut e2, &mut w2]);
    let (ie2, iw2) = (late[0], late[1]);
    let members2: Vec<Member> = [
        ("s", 1),
        ("e0", ids[0]),
        ("w0", ids[2]),
        ("e2", ie2),
        ("w2", iw2),
    ]
    .iter()
    .map(|(l, id)| Member {
        label: l.to_string(),
        id: *id,
    })
    .collect();
    let mut ag = [&mut e0, &mut w0, &mut e2, &mut w2];
    // The old members saw the leavers connect once, before; the new ones never hear of them.
    let view2 = |k: usize| -> Vec<i64> {
        let mut v = view(&members2, k);
        if k < 2 {
            v.extend([ie1, iw1]);
        }
        v
    };
    drive(
        &mut server,
        &mut ag,
        limit,
        "the late joiners to mesh",
        |s, a| s.api.network_connected_peers().len() == 4 && views_are(a, view2),
    );
    settle(&mut server, &mut ag, Duration::from_millis(300));
    assert_views(&mut ag, view2);
    for a in ag[2..].iter_mut() {
        assert!(a.disconnected_ids().is_empty(), "{}", a.output());
    }
    let mut peers: Vec<i64> = server
        .api
        .peer()
        .peer_ids()
        .iter()
        .map(|&i| i64::from(i))
        .collect();
    peers.sort_unstable();
    let mut want: Vec<i64> = members2[1..].iter().map(|m| m.id).collect();
    want.sort_unstable();
    assert_eq!(peers, want);
    assert_eq!(
        api_count(&server, &ApiEvent::PeerConnected(ie2 as PeerId)),
        1
    );
    assert_eq!(
        api_count(&server, &ApiEvent::PeerConnected(iw2 as PeerId)),
        1
    );

    let plan = full_plan(&members2, "m3", true);
    run_plan(&mut server, &mut ag, &members2, &plan, "m3", mixed_send);
    assert_channels(&mut ag, "m3");
    assert_no_errors(&mut ag);

    // The server closes: ENet clients are told server_disconnected, WebSocket clients
    // connection_failed (Godot 3.2's WebSocket client has no other word for it).
    server.api.peer_mut().close();
    drive(
        &mut server,
        &mut ag,
        limit,
        "everyone to see the server go",
        |_, a| {
            a.iter_mut().all(|x| {
                let line = match x.config().transport {
                    Transport::Enet => "SERVER_DISCONNECTED",
                    Transport::WebSocket => "CONNECTION_FAILED",
                };
                x.count_exact(line) == 1
            })
        },
    );
}

// ---- the echo_server example with --ws-port -----------------------------------------------------

/// The echo_server example as the Rust side: its output is read between looks at the agents.
struct EchoServer(Proc);

impl Side for EchoServer {
    fn pump(&mut self) {
        self.0.pump_wait(Duration::from_millis(1));
    }

    fn describe(&self) -> String {
        format!("--- {} ---\n{}", self.0.name, self.0.format_lines())
    }
}

/// Scenario 4 with the example: `echo_server --ws-port` (an authoritative RPC server) takes a
/// Godot ENet client and a Godot WebSocket client into one session: both are welcomed with
/// their own id, their `echo` RPCs come back, `echo_all` reaches both with the caller's id,
/// `send_bytes` (60 KB too) comes back to the sender alone, packets cross between the two
/// transports through its relay, and SIGTERM ends it with exit code 0 and both clients told.
#[test]
fn godot_enet_and_ws_clients_on_echo_server_example() {
    let Some(bin) = require_godot() else { return };
    let limit = deadline();
    let (port, ws) = (free_port(), free_tcp_port());
    let mut cmd = Command::new(example("echo_server"));
    cmd.args(["--port", &port.to_string(), "--compression", "none"])
        .args(["--ws-port", &ws.to_string()]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ECHO_") {
            cmd.env_remove(&key);
        }
    }
    let name = "echo_server --ws-port";
    let proc = Proc::start(name, cmd, Stdio::null(), support::godot::echo_label(name))
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut server = EchoServer(proc);
    let want_ready = format!("READY port={port} ws_port={ws}");
    if let Err(e) = server.0.wait_stdout(|l| l == want_ready, limit) {
        panic!("{e}\n{}", server.0.output());
    }
    let mut e = WsAgent::start(&bin, &WsAgentConfig::enet_client(port).name("e"));
    let mut w = WsAgent::start(&bin, &WsAgentConfig::ws_client(ws).name("w"));
    let mut ag = [&mut e, &mut w];
    let ids = ready_ids(&mut server, &mut ag);
    let (ie, iw) = (ids[0], ids[1]);
    assert_ne!(ie, iw);
    drive(
        &mut server,
        &mut ag,
        limit,
        "the two clients to meet",
        |_, a| views_are(a, |k| vec![1, ids[1 - k]]),
    );
    let labels = ["e", "w"];
    for (k, a) in ag.iter_mut().enumerate() {
        let l = labels[k];
        let other = ids[1 - k];
        a.commands(&[
            format!("rpc 1 echo hi-{l}"),
            format!("rpc 1 echo_all all-{l}"),
            format!("send reliable 1 0 raw-{l}"),
            format!("sendbig 1 60000 {k}"),
            format!("send reliable {other} 0 {l}-to-other"),
        ]);
    }
    drive(&mut server, &mut ag, limit, "every answer", |_, a| {
        a.iter_mut()
            .all(|x| x.rpcs().len() >= 4 && x.recvs().len() >= 3)
    });
    settle(&mut server, &mut ag, Duration::from_millis(300));
    for (k, a) in ag.iter_mut().enumerate() {
        let l = labels[k];
        let (me, other) = (ids[k], ids[1 - k]);
        let mut rpcs = a.rpcs();
        rpcs.sort();
        let rpc = |method: &str, text: String| Rpc {
            from: 1,
            method: method.to_string(),
            text,
        };
        let mut want = vec![
            rpc("welcome", format!("[{me}]")),
            rpc("echoed", format!("hi-{l}")),
            rpc("echoed_from", format!("[{ie}, all-e]")),
            rpc("echoed_from", format!("[{iw}, all-w]")),
        ];
        want.sort();
        let name = a.name().to_string();
        assert_eq!(rpcs, want, "{name}\n{}", a.output());
        let mut recvs: Vec<(i64, String)> =
            a.recvs().into_iter().map(|r| (r.from, r.text)).collect();
        recvs.sort();
        let mut want = vec![
            (1, format!("raw-{l}")),
            (1, recv_text(&pattern(60_000, k as u8))),
            (other, format!("{}-to-other", labels[1 - k])),
        ];
        want.sort();
        assert_eq!(recvs, want, "{name}\n{}", a.output());
    }
    assert_channels(&mut ag, "");
    assert_no_errors(&mut ag);

    server.0.signal("TERM");
    drive(
        &mut server,
        &mut ag,
        limit,
        "both clients to see the server go",
        |_, a| {
            a[0].count_exact("SERVER_DISCONNECTED") == 1
                && a[1].count_exact("CONNECTION_FAILED") == 1
        },
    );
    match server.0.wait_exit(limit) {
        Some(status) if status.code() == Some(0) => {}
        other => panic!(
            "echo_server after SIGTERM: {other:?}\n{}",
            server.0.output()
        ),
    }
}
