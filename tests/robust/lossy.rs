//! Clients behind a lossy loopback proxy (20% loss, 5% duplicates, 5% held back 40 ms so that
//! later datagrams overtake, up to 10 ms of jitter; seeded): every reliable packet arrives
//! exactly once and in order, unreliable-ordered packets never arrive out of order, and when the
//! proxy starts dropping everything (both ways, or one way only) both ends report the
//! disconnect within the configured timeout.

use crate::support::cluster::{enet_client, enet_server, Cluster, Node};
use crate::support::robust::{
    limit, pick, proxy_transport, seed, serial, under_valgrind, Impairment, Proxy, SharedProxy,
};
use enet_multiplayer::{
    ENetBuilder, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, PeerId, Target, TransferMode,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

type Net = Cluster<ENetMultiplayerPeer>;

/// Short ENet peer timeouts for the black-hole test: (limit, min ms, max ms). Valgrind slows
/// the loop down.
fn short_timeouts() -> (u32, u32, u32) {
    if under_valgrind() {
        (1, 3000, 9000)
    } else {
        (1, 500, 1500)
    }
}

/// Timeouts for the lossy streams. ENet declares a peer gone when one reliable command, its
/// retransmission timeout doubled at each loss, stays unacknowledged for `min` ms (after at
/// least 6 attempts with limit 32), or `max` ms. An attempt fails when the datagram or its
/// acknowledgement is lost: 1 - 0.8 x 0.8 = 36% here, so among tens of thousands of commands
/// some command fails 8 or 10 times in a row, and any timeout of seconds or minutes is reached
/// sooner or later (a heavy run with 30 s / 60 s lost a connection after 80 s; with 1/500/1500
/// five failures in a row suffice, and a 20% link drops within a second or two). This test is
/// about delivery, so it gives ENet 10 minutes; the black-hole test below measures detection
/// with short timeouts.
const STREAM_TIMEOUTS: (u32, u32, u32) = (32, 600_000, 600_000);

/// Both ends of a proxied cluster: these peer timeouts and one extra channel.
fn tuned<R>(b: ENetBuilder<R>, (limit, min, max): (u32, u32, u32)) -> ENetBuilder<R> {
    b.peer_timeout(limit, min, max).extra_channels(1)
}

/// Jitter, duplicates and reordering, but no random loss.
fn jittery() -> Impairment {
    Impairment {
        drop: 0.0,
        ..Impairment::lossy()
    }
}

fn proxied_cluster(
    timeouts: (u32, u32, u32),
    impair: Impairment,
    seed_value: u64,
    proxied: usize,
    direct: usize,
) -> (Net, SharedProxy) {
    let server = tuned(enet_server(), timeouts).build().expect("server");
    let port = server.local_port().expect("port");
    let proxy = Proxy::shared(port, impair, seed_value);
    let proxy_port = proxy.borrow().port();
    let mut nodes = vec![Node::new(Box::new(server))];
    for i in 0..proxied + direct {
        let to = if i < proxied { proxy_port } else { port };
        nodes.push(Node::new(Box::new(
            tuned(enet_client(to), timeouts).build().expect("client"),
        )));
    }
    let c = Net::new(
        nodes,
        Some(proxy_transport(&proxy)),
        Duration::from_millis(1),
    );
    (c, proxy)
}

/// A stream of numbered packets: `[stream][seq u32 LE][filler]`, the filler derived from both.
fn payload(stream: u8, seq: u32) -> Vec<u8> {
    let len = if seq % 10 == 7 {
        3000 // fragmented
    } else {
        5 + (seq as usize * 37) % 200
    };
    let mut v = vec![stream];
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend((5..len).map(|i| (i as u32 ^ seq) as u8 ^ stream));
    v
}

fn parse(data: &[u8]) -> Option<(u8, u32)> {
    if data.len() < 5 || data[0] == b'k' {
        return None;
    }
    let seq = u32::from_le_bytes(data[1..5].try_into().ok()?);
    assert_eq!(
        data,
        &payload(data[0], seq)[..],
        "stream {} packet {seq} corrupted",
        data[0]
    );
    Some((data[0], seq))
}

struct Stream {
    id: u8,
    from: usize,
    to: usize,
    target: Target,
    mode: TransferMode,
    channel: u8,
    count: u32,
    sent: u32,
}

#[test]
fn lossy_link_reliable_exactly_once_in_order_unreliable_ordered_never_reordered() {
    // Not beside the binary's RSS and log-capture tests (see main.rs).
    let _serial = serial();
    let seed_value = seed(0x10_55);
    let reliable = pick(300u32, 3000, 40);
    let unreliable = pick(600u32, 6000, 80);
    eprintln!("lossy: seed {seed_value}, {reliable} reliable per stream, {unreliable} unreliable");
    let started = Instant::now();

    // Nodes 1, 2, 3 behind the lossy proxy (they connect through it); node 4 direct.
    let (mut c, proxy) = proxied_cluster(STREAM_TIMEOUTS, Impairment::lossy(), seed_value, 3, 1);
    c.wait_for(
        "everyone to connect through the lossy link",
        limit(Duration::from_secs(30)),
        |c| {
            let others = c.nodes.len() - 1;
            c.nodes.iter().all(|n| n.connected_peers().len() == others)
        },
    );
    let ids = c.ids();
    let (a, b) = (1usize, 2usize);

    let mut streams = vec![
        Stream {
            id: 1,
            from: a,
            to: b,
            target: Target::Peer(ids[b]),
            mode: TransferMode::Reliable,
            channel: 0,
            count: reliable,
            sent: 0,
        },
        Stream {
            id: 2,
            from: a,
            to: b,
            target: Target::Peer(ids[b]),
            mode: TransferMode::Reliable,
            channel: 1,
            count: reliable,
            sent: 0,
        },
        Stream {
            id: 3,
            from: b,
            to: 0,
            target: Target::Server,
            mode: TransferMode::Reliable,
            channel: 0,
            count: reliable,
            sent: 0,
        },
        Stream {
            id: 4,
            from: 0,
            to: a,
            target: Target::Peer(ids[a]),
            mode: TransferMode::Reliable,
            channel: 1,
            count: reliable,
            sent: 0,
        },
        Stream {
            id: 5,
            from: a,
            to: b,
            target: Target::Peer(ids[b]),
            mode: TransferMode::UnreliableOrdered,
            channel: 0,
            count: unreliable,
            sent: 0,
        },
        Stream {
            id: 6,
            from: b,
            to: a,
            target: Target::Peer(ids[a]),
            mode: TransferMode::UnreliableOrdered,
            channel: 1,
            count: unreliable,
            sent: 0,
        },
        Stream {
            id: 7,
            from: a,
            to: 0,
            target: Target::Server,
            mode: TransferMode::Unreliable,
            channel: 0,
            count: unreliable,
            sent: 0,
        },
    ];
    // What each node received of the streams, in arrival order: (stream, seq).
    let mut got: BTreeMap<usize, Vec<(u8, u32)>> = BTreeMap::new();
    let collect = |c: &mut Net, got: &mut BTreeMap<usize, Vec<(u8, u32)>>| {
        for (i, n) in c.nodes.iter_mut().enumerate() {
            for p in n.take_packets() {
                if let Some(s) = parse(&p.data) {
                    got.entry(i).or_default().push(s);
                }
            }
        }
    };
    let reliable_done = |got: &BTreeMap<usize, Vec<(u8, u32)>>, streams: &[Stream]| {
        streams
            .iter()
            .filter(|s| s.mode == TransferMode::Reliable)
            .all(|s| {
                got.get(&s.to).is_some_and(|v| {
                    v.iter().filter(|(id, _)| *id == s.id).count() >= s.count as usize
                })
            })
    };
    // A command that fails 12 times in a row waits 4095 retransmission timeouts.
    let deadline = limit(Duration::from_secs(pick(120, 400, 60)));
    let t = Instant::now();
    let mut pumps = 0u64;
    loop {
        for s in streams.iter_mut() {
            // A few per pump: the unreliable ones spread over the whole exchange.
            let burst = if s.mode == TransferMode::Reliable {
                4
            } else {
                2
            };
            for _ in 0..burst {
                if s.sent < s.count {
                    c.nodes[s.from]
                        .peer
                        .send(s.target, s.mode, s.channel, &payload(s.id, s.sent))
                        .expect("stream send");
                    s.sent += 1;
                }
            }
        }
        c.pump();
        pumps += 1;
        collect(&mut c, &mut got);
        if reliable_done(&got, &streams) && streams.iter().all(|s| s.sent == s.count) {
            break;
        }
        for (i, n) in c.nodes.iter().enumerate() {
            assert!(
                !n.events.iter().any(|e| matches!(
                    e,
                    PeerEvent::ServerDisconnected(_) | PeerEvent::PeerDisconnected(_)
                )),
                "node {i} lost a connection on the lossy link: {:?}",
                n.events
            );
        }
        let elapsed = t.elapsed();
        assert!(
            elapsed < deadline,
            "reliable streams incomplete after {elapsed:?}: {:?}",
            streams
                .iter()
                .map(|s| (
                    s.id,
                    got.get(&s.to)
                        .map_or(0, |v| v.iter().filter(|(id, _)| *id == s.id).count())
                ))
                .collect::<Vec<_>>()
        );
    }
    let transfer = t.elapsed();
    // Late duplicates would show up now.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(300) {
        c.pump();
        collect(&mut c, &mut got);
    }

    for s in &streams {
        let seqs: Vec<u32> = got
            .get(&s.to)
            .map(|v| {
                v.iter()
                    .filter(|(id, _)| *id == s.id)
                    .map(|x| x.1)
                    .collect()
            })
            .unwrap_or_default();
        match s.mode {
            TransferMode::Reliable => {
                let want: Vec<u32> = (0..s.count).collect();
                assert!(
                    seqs == want,
                    "reliable stream {}: {} received, first difference at {:?}",
                    s.id,
                    seqs.len(),
                    seqs.iter().zip(&want).position(|(g, w)| g != w)
                );
            }
            TransferMode::UnreliableOrdered => {
                assert!(
                    seqs.windows(2).all(|w| w[0] < w[1]),
                    "unreliable-ordered stream {} out of order or duplicated: {seqs:?}",
                    s.id
                );
                assert!(!seqs.is_empty(), "stream {}: nothing arrived", s.id);
                eprintln!(
                    "lossy: unreliable-ordered stream {}: {}/{} arrived, in order",
                    s.id,
                    seqs.len(),
                    s.count
                );
            }
            TransferMode::Unreliable => {
                let mut sorted = seqs.clone();
                sorted.sort_unstable();
                sorted.dedup();
                let inversions = seqs.windows(2).filter(|w| w[0] > w[1]).count();
                assert!(seqs.iter().all(|q| *q < s.count));
                eprintln!(
                    "lossy: unreliable stream {}: {}/{} arrived, {} duplicates, {inversions} \
                     arrivals out of order",
                    s.id,
                    seqs.len(),
                    s.count,
                    seqs.len() - sorted.len()
                );
            }
        }
    }
    let loss: Vec<String> = [1usize, 2]
        .iter()
        .map(|i| {
            let st = c.nodes[0].peer.peer_stats(ids[*i]).unwrap_or_else(|e| {
                panic!("{e}: {:?} / {:?}", c.nodes[0].events, c.nodes[*i].events)
            });
            format!(
                "client {i}: rtt {} ms, loss {:.1}%",
                st.round_trip_time,
                st.packet_loss * 100.0
            )
        })
        .collect();
    eprintln!(
        "lossy: reliable streams complete in {transfer:?} ({pumps} pumps); proxy {:?}; {}",
        proxy.borrow().stats,
        loss.join(", ")
    );

    eprintln!("lossy: total {:?}", started.elapsed());
}

#[test]
fn blackholed_links_are_reported_on_both_sides_within_the_timeout() {
    // Not beside the binary's RSS and log-capture tests (see main.rs).
    let _serial = serial();
    let seed_value = seed(0xB1AC);
    // Nodes 1, 2, 3 behind a proxy that jitters, duplicates and reorders; node 4 direct.
    let (mut c, proxy) = proxied_cluster(short_timeouts(), jittery(), seed_value, 3, 1);
    c.wait_mesh();
    let ids = c.ids();
    // Some traffic over the jittery link first.
    for i in 1..=3 {
        c.nodes[i]
            .peer
            .send(Target::Peer(ids[4]), TransferMode::Reliable, 0, b"hello")
            .expect("send");
    }
    c.wait("traffic over the jittery link", |c| {
        c.nodes[4].packets.len() == 3
    });

    // The proxy starts dropping everything: both ways for node 1, server-to-client only for
    // node 2, client-to-server only for node 3. Node 4 (direct) watches.
    let port_of = |c: &Net, i: usize| c.nodes[i].peer.local_port().expect("port");
    let cut: [(usize, bool, bool); 3] = [(1, true, true), (2, false, true), (3, true, false)];
    for (i, up, down) in cut {
        let p = port_of(&c, i);
        proxy.borrow_mut().set_blackhole(p, up, down);
    }
    let t0 = Instant::now();
    let mut seen: BTreeMap<(usize, PeerId), Duration> = BTreeMap::new();
    let (_, _, max_ms) = short_timeouts();
    // The link is idle at the cut: the clock starts with the next ping, which ENet sends after
    // 500 ms (ENET_PEER_PING_INTERVAL) without traffic; then ENet declares the peer gone at the
    // first retransmission timeout after `min` without an acknowledgement, and at `max` at the
    // latest. One second of slack for the polling loop.
    const PING_INTERVAL: Duration = Duration::from_millis(500);
    let bound =
        PING_INTERVAL + Duration::from_millis(u64::from(max_ms)) + limit(Duration::from_secs(1));
    let hard_limit = bound * 3;
    loop {
        c.pump();
        for n in c.nodes.iter_mut() {
            n.take_packets();
        }
        for (i, n) in c.nodes.iter().enumerate() {
            for e in &n.events {
                let key = match e {
                    PeerEvent::PeerDisconnected(id) => (i, *id),
                    PeerEvent::ServerDisconnected(_) => (i, 1),
                    _ => continue,
                };
                seen.entry(key).or_insert_with(|| t0.elapsed());
            }
        }
        let mut want: Vec<(usize, PeerId)> = Vec::new();
        for (i, _, _) in cut {
            want.push((0, ids[i])); // the server
            want.push((i, 1)); // the client itself
            want.push((4, ids[i])); // the watcher, through REMOVE_PEER
        }
        if want.iter().all(|k| seen.contains_key(k)) {
            break;
        }
        assert!(
            t0.elapsed() < hard_limit,
            "disconnects not reported after {:?}: seen {seen:?}, want {want:?}",
            t0.elapsed()
        );
    }
    for ((node, about), after) in &seen {
        eprintln!("lossy: cut -> node {node} reported {about} gone after {after:?}");
        assert!(
            *after <= bound,
            "node {node} reported {about} gone only after {after:?} (bound {bound:?})"
        );
    }
    // Exactly one report each, and the watcher's own connection is fine.
    for (i, _, _) in cut {
        assert_eq!(c.nodes[0].count(PeerEvent::PeerDisconnected(ids[i])), 1);
        assert_eq!(c.nodes[4].count(PeerEvent::PeerDisconnected(ids[i])), 1);
    }
    assert_eq!(c.nodes[0].peer.peer_ids(), vec![ids[4]]);
    c.nodes[4]
        .peer
        .send(Target::Server, TransferMode::Reliable, 0, b"still here")
        .expect("watcher");
    c.wait("the watcher's packet", |c| {
        c.nodes[0]
            .packets
            .iter()
            .any(|p| &p.data[..] == b"still here")
    });
}
