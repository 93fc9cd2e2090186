//! Interop against the real engine: headless Godot 3.2 (`godot3-server`) running our own
//! GDScript agent (tests/godot/agent.gd), in both directions and with both compression settings.
//!
//! - Godot clients joining a Rust server: they see each other through our ADD_PEER and exchange
//!   packets through our relay in every mode and target kind, with the right sender ids.
//! - Rust clients joining a Godot 3.2 server, with a Godot client as the third party: the same.
//!
//! Missing engine: the tests fail with install instructions, unless `ENET_MP_SKIP_GODOT=1`.

mod support;

use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, PeerId, Target, TransferMode,
};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::cluster::Node;
use support::godot::{cmd, cmd_send, require_godot, Agent, AgentConfig, OrFail, Recv};
use support::process::free_port;

const LIMIT: Duration = Duration::from_secs(20);

type RustNode = Node<ENetMultiplayerPeer>;

/// Whether `node` saw `id` connect exactly once and never leave.
fn knows(node: &RustNode, id: PeerId) -> bool {
    node.count(PeerEvent::PeerConnected(id)) == 1
        && node.count(PeerEvent::PeerDisconnected(id)) == 0
}

/// Polls the Rust peers and reads the agents' output until `done` holds or `limit` passes;
/// returns whether `done` held.
fn drive_for(
    rust: &mut [&mut RustNode],
    agents: &mut [&mut Agent],
    limit: Duration,
    mut done: impl FnMut(&[&mut RustNode], &mut [&mut Agent]) -> bool,
) -> bool {
    let start = Instant::now();
    loop {
        for (i, r) in rust.iter_mut().enumerate() {
            r.poll(if i == 0 {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            });
        }
        for a in agents.iter_mut() {
            a.pump();
        }
        if done(rust, agents) {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
    }
}

fn report(rust: &[&mut RustNode], agents: &mut [&mut Agent]) -> String {
    let mut report = String::new();
    for (i, r) in rust.iter().enumerate() {
        let packets: Vec<_> = r
            .packets
            .iter()
            .map(|p| {
                (
                    p.from,
                    p.channel,
                    p.mode,
                    String::from_utf8_lossy(&p.data).to_string(),
                )
            })
            .collect();
        report += &format!(
            "rust node {i} (id {}): events {:?}, packets {packets:?}\n",
            r.peer.unique_id(),
            r.events
        );
    }
    for a in agents.iter_mut() {
        let name = a.name().to_string();
        report += &format!("agent {name}:\n{}\n", a.output());
    }
    report
}

/// `drive_for` with the standard limit; on timeout fails with everything every side said.
fn drive(
    rust: &mut [&mut RustNode],
    agents: &mut [&mut Agent],
    what: &str,
    done: impl FnMut(&[&mut RustNode], &mut [&mut Agent]) -> bool,
) {
    if !drive_for(rust, agents, LIMIT, done) {
        panic!("timed out waiting for {what}\n{}", report(rust, agents));
    }
}

/// A place a packet is observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum At {
    Rust(usize),
    Agent(usize),
}

/// How a planned packet is sent: by a Rust node itself, or by a Godot peer on command (the
/// command travels reliably from a Rust node to that Godot peer).
#[derive(Debug, Clone)]
enum How {
    Rust {
        node: usize,
        target: Target,
    },
    Command {
        node: usize,
        to: Target,
        target: i64,
    },
}

/// One planned packet: unique text, who sends it how, and who must receive it.
#[derive(Debug, Clone)]
struct Planned {
    text: String,
    from: i64,
    mode: TransferMode,
    channel: u8,
    how: How,
    to: Vec<At>,
}

impl Planned {
    /// Packet number `n` of a plan: `from` sends to Godot target `target` (sent as `how`); the
    /// receivers are those of `everyone` that the target reaches, found at `at(id)`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        n: usize,
        from: i64,
        target: i64,
        mode: TransferMode,
        channel: u8,
        how: How,
        everyone: &[i64],
        at: &dyn Fn(i64) -> At,
    ) -> Planned {
        Planned {
            text: format!("p{n} from {from} to {target} {mode:?} ch{channel}"),
            from,
            mode,
            channel,
            how,
            to: everyone
                .iter()
                .filter(|id| reaches(from, target, **id))
                .map(|id| at(*id))
                .collect(),
        }
    }
}

type Seen = BTreeSet<(At, i64, i64, String)>;

fn send_planned(rust: &mut [&mut RustNode], p: &Planned) {
    match &p.how {
        How::Rust { node, target } => rust[*node]
            .peer
            .send(*target, p.mode, p.channel, p.text.as_bytes())
            .unwrap_or_else(|e| panic!("send {p:?}: {e}")),
        How::Command { node, to, target } => {
            let godot_channel = if p.channel == 0 {
                0
            } else {
                i64::from(p.channel) + 2
            };
            let c = cmd_send(mode_word(p.mode), *target, godot_channel, &p.text);
            rust[*node]
                .peer
                .send(*to, TransferMode::Reliable, 0, c.as_bytes())
                .unwrap_or_else(|e| panic!("command {p:?}: {e}"));
        }
    }
}

/// Everything observed so far as (where, sender, ENet channel, text); also checks that every
/// packet a Rust node got carries the mode it was sent with.
fn observed(
    rust: &[&mut RustNode],
    agents: &mut [&mut Agent],
    plan: &[Planned],
) -> (Seen, Vec<(At, String)>) {
    let mut seen = BTreeSet::new();
    let mut all = Vec::new();
    for (i, r) in rust.iter().enumerate() {
        for p in &r.packets {
            let text = String::from_utf8_lossy(&p.data).to_string();
            if let Some(planned) = plan.iter().find(|x| x.text == text) {
                assert_eq!(p.mode, planned.mode, "mode of {text:?} at rust node {i}");
            }
            seen.insert((
                At::Rust(i),
                i64::from(p.from),
                enet_channel(p.mode, p.channel),
                text.clone(),
            ));
            all.push((At::Rust(i), text));
        }
    }
    for (i, a) in agents.iter_mut().enumerate() {
        for Recv {
            from,
            channel,
            text,
        } in a.recvs()
        {
            seen.insert((At::Agent(i), from, channel, text.clone()));
            all.push((At::Agent(i), text));
        }
    }
    (seen, all)
}

/// Sends the plan, waits for every delivery, resends only unreliable packets that a receiver
/// missed (ENet may drop those: its packet throttle discards unreliable packets when round-trip
/// times jump, as they do around Godot's frame sleeps), then checks that each receiver got
/// exactly its share: nothing missing, nothing extra, right sender, channel and mode, and every
/// reliable packet exactly once.
fn exchange(rust: &mut [&mut RustNode], agents: &mut [&mut Agent], plan: &[Planned]) {
    let mut want: Seen = BTreeSet::new();
    for p in plan {
        for at in &p.to {
            want.insert((*at, p.from, enet_channel(p.mode, p.channel), p.text.clone()));
        }
    }
    for p in plan {
        send_planned(rust, p);
    }
    let mut resent = 0;
    for round in 0..8 {
        let complete = drive_for(rust, agents, Duration::from_secs(3), |r, a| {
            let (seen, _) = observed(r, a, plan);
            want.is_subset(&seen)
        });
        if complete {
            break;
        }
        let (seen, _) = observed(rust, agents, plan);
        let missing: Vec<&Planned> = plan
            .iter()
            .filter(|p| {
                p.mode != TransferMode::Reliable
                    && p.to.iter().any(|at| {
                        !seen.contains(&(
                            *at,
                            p.from,
                            enet_channel(p.mode, p.channel),
                            p.text.clone(),
                        ))
                    })
            })
            .collect();
        assert!(
            round < 7,
            "deliveries still missing after {round} rounds:\n{}",
            report(rust, agents)
        );
        for p in missing {
            resent += 1;
            send_planned(rust, p);
        }
    }
    let settle = Instant::now();
    drive_for(rust, agents, Duration::from_millis(300), |_, _| {
        settle.elapsed() > Duration::from_millis(300)
    });
    let (seen, all) = observed(rust, agents, plan);
    let extra: Vec<_> = seen.difference(&want).collect();
    let missing: Vec<_> = want.difference(&seen).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "deliveries differ from the plan (resent {resent} unreliable):\nextra {extra:?}\nmissing {missing:?}"
    );
    for p in plan.iter().filter(|p| p.mode == TransferMode::Reliable) {
        for at in &p.to {
            let n = all.iter().filter(|(a, t)| a == at && *t == p.text).count();
            assert_eq!(n, 1, "reliable {:?} arrived {n} times at {at:?}", p.text);
        }
    }
    for a in agents.iter_mut() {
        assert!(
            !a.lines().iter().any(|l| l.starts_with("ERROR")),
            "agent error:\n{}",
            a.output()
        );
    }
    eprintln!(
        "exchange: {} packets, {} deliveries checked, {resent} unreliable resends",
        plan.len(),
        want.len()
    );
}

fn has_line(a: &mut Agent, line: &str) -> bool {
    a.lines().iter().any(|l| l == line)
}

fn mode_word(mode: TransferMode) -> &'static str {
    match mode {
        TransferMode::Reliable => "reliable",
        TransferMode::Unreliable => "unreliable",
        TransferMode::UnreliableOrdered => "ordered",
    }
}

/// The ENet channel Godot reports for logical `channel` in `mode`.
fn enet_channel(mode: TransferMode, channel: u8) -> i64 {
    enet_multiplayer::protocol::enet_channel(mode, channel).unwrap() as i64
}

fn compression(range: bool) -> Compression {
    if range {
        Compression::RangeCoder
    } else {
        Compression::None
    }
}

/// Who a Godot target integer reaches, given the sender and the ids of all peers.
fn reaches(sender: i64, target: i64, id: i64) -> bool {
    match target {
        0 => id != sender,
        t if t > 0 => id == t,
        t => id != sender && id != -t,
    }
}

/// Three Godot clients join a Rust server; they mesh through our ADD_PEER, then every client
/// sends in every mode to every target kind on the default and a custom channel, and the Rust
/// server sends to them; every receiver gets exactly what it should, with the right sender.
fn godot_clients_on_rust_server(range: bool) {
    let Some(bin) = require_godot() else { return };
    let server = ENetMultiplayerPeer::server(0)
        .bind_address("127.0.0.1".parse().unwrap())
        .extra_channels(1)
        .compression(compression(range))
        .build()
        .unwrap();
    let port = server.local_port().unwrap();
    let mut server = RustNode::new(Box::new(server));
    let mut agents: Vec<Agent> = (0..3)
        .map(|i| {
            let cfg = AgentConfig::client(port)
                .name(&format!("godot-client-{i}"))
                .compression(range)
                .channels(4);
            Agent::spawn(&bin, &cfg).expect("spawn godot")
        })
        .collect();
    let mut refs: Vec<&mut Agent> = agents.iter_mut().collect();
    drive(
        &mut [&mut server],
        &mut refs,
        "three Godot clients to connect",
        |r, _| {
            r[0].events
                .iter()
                .filter(|e| matches!(e, PeerEvent::PeerConnected(_)))
                .count()
                == 3
        },
    );
    let ids: Vec<i64> = refs.iter_mut().map(|a| a.id()).collect();
    for id in &ids {
        assert!(
            knows(&server, *id as PeerId),
            "the Rust server saw {id} connect"
        );
    }
    // Each Godot client hears of the server and of the two others, exactly once each.
    drive(
        &mut [&mut server],
        &mut refs,
        "ADD_PEER at every Godot client",
        |_, a| {
            (0..3).all(|i| {
                let lines = a[i].lines();
                let once = |l: String| lines.iter().filter(|x| **x == l).count() == 1;
                once("PEER_CONNECTED 1".into())
                    && ids
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .all(|(_, id)| once(format!("PEER_CONNECTED {id}")))
            })
        },
    );

    // Every Godot client sends to every target kind in every mode on channels 0 and 1 (on
    // command from the Rust server), and the Rust server sends to every target kind too.
    let everyone: Vec<i64> = std::iter::once(1).chain(ids.iter().copied()).collect();
    let at = |id: i64| {
        if id == 1 {
            At::Rust(0)
        } else {
            At::Agent(ids.iter().position(|x| *x == id).unwrap())
        }
    };
    let mut plan = Vec::new();
    for channel in [0u8, 1] {
        for mode in TransferMode::ALL {
            for (k, &sender) in ids.iter().enumerate() {
                let o1 = ids[(k + 1) % 3];
                for target in [0, 1, o1, -o1, -1] {
                    plan.push(Planned::new(
                        plan.len(),
                        sender,
                        target,
                        mode,
                        channel,
                        How::Command {
                            node: 0,
                            to: Target::Peer(sender as PeerId),
                            target,
                        },
                        &everyone,
                        &at,
                    ));
                }
            }
            for target in [0, ids[2], -ids[1]] {
                plan.push(Planned::new(
                    plan.len(),
                    1,
                    target,
                    mode,
                    channel,
                    How::Rust {
                        node: 0,
                        target: Target::from_godot(target as i32),
                    },
                    &everyone,
                    &at,
                ));
            }
        }
    }
    exchange(&mut [&mut server], &mut refs, &plan);

    // One Godot client quits: the Rust server and the others see it leave, exactly once.
    let c = ids[2];
    server
        .peer
        .send(
            Target::Peer(c as PeerId),
            TransferMode::Reliable,
            0,
            cmd("quit").as_bytes(),
        )
        .unwrap();
    drive(
        &mut [&mut server],
        &mut refs,
        "REMOVE_PEER for the leaver",
        |r, ag| {
            r[0].events
                .contains(&PeerEvent::PeerDisconnected(c as PeerId))
                && (0..2).all(|i| has_line(ag[i], &format!("PEER_DISCONNECTED {c}")))
        },
    );
    // Closing the Rust server tells the Godot clients at once.
    let closed = Instant::now();
    server.peer.close();
    drive(
        &mut [&mut server],
        &mut refs,
        "SERVER_DISCONNECTED at the Godot clients",
        |_, ag| (0..2).all(|i| has_line(ag[i], "SERVER_DISCONNECTED")),
    );
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
}

#[test]
fn godot_clients_on_rust_server_no_compression() {
    godot_clients_on_rust_server(false);
}

#[test]
fn godot_clients_on_rust_server_range_coder() {
    godot_clients_on_rust_server(true);
}

/// Two Rust clients join a Godot 3.2 server, with a Godot client as the third party; everyone
/// meshes through Godot's ADD_PEER, and packets flow through Godot's relay in every mode and
/// target kind, in both directions, with the right sender ids.
fn rust_clients_on_godot_server(range: bool) {
    let Some(bin) = require_godot() else { return };
    let port = free_port();
    let mut gserver = Agent::spawn(
        &bin,
        &AgentConfig::server(port)
            .name("godot-server")
            .compression(range)
            .channels(4),
    )
    .expect("spawn");
    gserver.wait_ready(LIMIT).or_fail();
    let mut gclient = Agent::spawn(
        &bin,
        &AgentConfig::client(port)
            .name("godot-client")
            .compression(range)
            .channels(4),
    )
    .expect("spawn");
    let g = gclient.wait_ready(LIMIT).or_fail();
    let client = |_: ()| {
        ENetMultiplayerPeer::client("127.0.0.1", port)
            .extra_channels(1)
            .compression(compression(range))
            .build()
            .unwrap()
    };
    let mut r1 = RustNode::new(Box::new(client(())));
    let mut r2 = RustNode::new(Box::new(client(())));
    let (i1, i2) = (r1.peer.unique_id() as i64, r2.peer.unique_id() as i64);
    let gid = g as PeerId;
    drive(
        &mut [&mut r1, &mut r2],
        &mut [&mut gserver, &mut gclient],
        "the mesh through Godot's ADD_PEER",
        |r, a| {
            r.iter().all(|n| {
                n.events.contains(&PeerEvent::ConnectionSucceeded) && knows(n, 1) && knows(n, gid)
            }) && knows(r[0], i2 as PeerId)
                && knows(r[1], i1 as PeerId)
                && has_line(a[1], &format!("PEER_CONNECTED {i1}"))
                && has_line(a[1], &format!("PEER_CONNECTED {i2}"))
                && has_line(a[0], &format!("PEER_CONNECTED {i1}"))
                && has_line(a[0], &format!("PEER_CONNECTED {i2}"))
        },
    );
    assert_eq!(
        r1.events[..2],
        [PeerEvent::PeerConnected(1), PeerEvent::ConnectionSucceeded]
    );

    // R1 sends to every target kind in every mode, on channels 0 and 1; the Godot client and
    // the Godot server send to every target kind on command.
    let everyone = [1, g, i1, i2];
    let at = |id: i64| match id {
        1 => At::Agent(0),
        x if x == g => At::Agent(1),
        x if x == i1 => At::Rust(0),
        _ => At::Rust(1),
    };
    let mut plan = Vec::new();
    for channel in [0u8, 1] {
        for mode in TransferMode::ALL {
            for target in [0, 1, i2, g, -i2, -g, -1] {
                plan.push(Planned::new(
                    plan.len(),
                    i1,
                    target,
                    mode,
                    channel,
                    How::Rust {
                        node: 0,
                        target: Target::from_godot(target as i32),
                    },
                    &everyone,
                    &at,
                ));
            }
            for (sender, target) in [(g, 0), (g, i1), (g, -i2), (g, 1), (1, 0), (1, i2), (1, -g)] {
                let to = if sender == 1 {
                    Target::Server
                } else {
                    Target::Peer(gid)
                };
                plan.push(Planned::new(
                    plan.len(),
                    sender,
                    target,
                    mode,
                    channel,
                    How::Command {
                        node: 0,
                        to,
                        target,
                    },
                    &everyone,
                    &at,
                ));
            }
        }
    }
    exchange(
        &mut [&mut r1, &mut r2],
        &mut [&mut gserver, &mut gclient],
        &plan,
    );

    // R2 leaves: the Godot server, the Godot client and R1 each see it exactly once.
    r2.peer.disconnect_peer(1, false).unwrap();
    drive(
        &mut [&mut r1, &mut r2],
        &mut [&mut gserver, &mut gclient],
        "R2's departure",
        |r, a| {
            r[0].events
                .iter()
                .filter(|e| **e == PeerEvent::PeerDisconnected(i2 as PeerId))
                .count()
                == 1
                && has_line(a[0], &format!("PEER_DISCONNECTED {i2}"))
                && has_line(a[1], &format!("PEER_DISCONNECTED {i2}"))
                && r[1]
                    .events
                    .iter()
                    .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
        },
    );
    // The Godot server kicks R1: R1 sees server_disconnected at once.
    let kicked = Instant::now();
    r1.peer
        .send(
            Target::Server,
            TransferMode::Reliable,
            0,
            cmd(&format!("kick {i1}")).as_bytes(),
        )
        .unwrap();
    drive(
        &mut [&mut r1],
        &mut [&mut gserver, &mut gclient],
        "the kick",
        |r, a| {
            r[0].events
                .iter()
                .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
                && has_line(a[1], &format!("PEER_DISCONNECTED {i1}"))
        },
    );
    assert!(kicked.elapsed() < Duration::from_secs(5));
}

#[test]
fn rust_clients_on_godot_server_no_compression() {
    rust_clients_on_godot_server(false);
}

#[test]
fn rust_clients_on_godot_server_range_coder() {
    rust_clients_on_godot_server(true);
}

/// A mismatch in compression never connects: documented behaviour, checked so that the docs
/// stay true. A Rust client with the range coder against a Godot 3.2 server without compression.
#[test]
fn compression_mismatch_never_connects() {
    let Some(bin) = require_godot() else { return };
    let port = free_port();
    let mut gserver = Agent::spawn(
        &bin,
        &AgentConfig::server(port)
            .name("godot-server")
            .compression(false),
    )
    .expect("spawn");
    gserver.wait_ready(LIMIT).or_fail();
    let mut r = RustNode::new(Box::new(
        ENetMultiplayerPeer::client("127.0.0.1", port)
            .compression(Compression::RangeCoder)
            .peer_timeout(1, 500, 1500)
            .build()
            .unwrap(),
    ));
    drive(
        &mut [&mut r],
        &mut [&mut gserver],
        "connection failure",
        |r, _| {
            r[0].events
                .iter()
                .any(|e| matches!(e, PeerEvent::ConnectionFailed(_)))
        },
    );
    assert!(!r.events.contains(&PeerEvent::ConnectionSucceeded));
    assert!(!gserver
        .lines()
        .iter()
        .any(|l| l.starts_with("PEER_CONNECTED")));
}
