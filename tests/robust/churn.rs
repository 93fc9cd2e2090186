//! Churn: clients join and leave in waves, in every way a client can leave (graceful
//! disconnect, close, drop, a link that goes silent, graceful kick, forced kick), while others
//! join at the same moment. Every remaining client sees exactly one PeerConnected and one
//! PeerDisconnected per departed peer it overlapped with, the server's peer table ends empty,
//! and the process's memory after a second identical round is back at its level after the first.
//!
//! Default: 2 rounds of 8 waves of 8 clients (64 clients per round). ENET_MP_HEAVY=1: 2 rounds
//! of 10 waves of 25 (250 clients per round).

use crate::support::cluster::{enet_client, enet_server, Cluster, Node};
use crate::support::robust::{
    limit, pick, proxy_transport, rss_kib, seed, serial, under_valgrind, Impairment, Proxy,
    SharedProxy,
};
use enet_multiplayer::{DisconnectReason, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, PeerId};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

type Net = Cluster<ENetMultiplayerPeer>;

/// How a client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Leave {
    /// `disconnect_peer(1, false)` at the client.
    Graceful,
    /// `close()` at the client.
    Close,
    /// The client is dropped.
    Dropped,
    /// Its link goes silent both ways: the server times it out.
    Silent,
    /// `disconnect_peer(id, false)` at the server.
    Kicked,
    /// `disconnect_peer(id, true)` at the server: no local event by design.
    ForceKicked,
}

const LEAVES: [Leave; 6] = [
    Leave::Graceful,
    Leave::Close,
    Leave::Dropped,
    Leave::Silent,
    Leave::Kicked,
    Leave::ForceKicked,
];

#[derive(Debug, Clone)]
struct Client {
    id: PeerId,
    joined: usize,
    left: Option<(usize, Leave)>,
}

/// Server timeouts: short, so that silent links go quickly.
fn server_timeouts() -> (u32, u32, u32) {
    if under_valgrind() {
        (1, 5000, 10000)
    } else {
        (1, 500, 1500)
    }
}

struct World {
    c: Net,
    /// The client id of each node of `c` (a closed client reports id 0, so the test keeps
    /// its own list): `ids[0]` is the server's.
    ids: Vec<PeerId>,
    /// Each client's local port, learnt while it is connected (a closed peer has none).
    ports: BTreeMap<PeerId, u16>,
    proxy: SharedProxy,
    rng: StdRng,
}

impl World {
    fn node_of(&self, id: PeerId) -> Option<usize> {
        self.ids.iter().position(|x| *x == id)
    }

    /// The client's local port (its proxy session), once its socket is bound.
    fn port_of(&self, i: usize) -> Option<u16> {
        self.c.nodes[i].peer.local_port().filter(|p| *p != 0)
    }

    /// Removes node `i` (dropping the peer, which closes it) and forgets its proxy session.
    fn remove(&mut self, i: usize) {
        let port = self.port_of(i).or_else(|| self.ports.remove(&self.ids[i]));
        self.ids.remove(i);
        drop(self.c.nodes.remove(i));
        self.proxy.borrow_mut().pump();
        if let Some(p) = port {
            self.proxy.borrow_mut().forget(p);
        }
    }
}

/// The ids the node at `i` currently believes connected (from its events).
fn believed(c: &Net, i: usize) -> BTreeSet<PeerId> {
    c.nodes[i].connected_peers().into_iter().collect()
}

/// One round: `waves` waves of `per_wave` joins, each wave (from the second on) also sending
/// away 60% of the clients present, then everyone leaves. Checks every client's view.
fn round(w: &mut World, waves: usize, per_wave: usize) -> BTreeMap<Leave, usize> {
    let proxy_port = w.proxy.borrow().port();
    let mut clients: Vec<Client> = Vec::new();
    let mut by_kind: BTreeMap<Leave, usize> = BTreeMap::new();
    let mut next_leave = 0usize;
    for wave in 0..waves {
        // Who leaves: a share of those present, chosen at random.
        let mut present: Vec<usize> = (0..clients.len())
            .filter(|&k| clients[k].left.is_none())
            .collect();
        present.shuffle(&mut w.rng);
        let leaving: Vec<usize> = present
            .into_iter()
            .take(if wave == 0 { 0 } else { per_wave * 3 / 5 })
            .collect();
        // Joins and departures start in the same instant.
        for _ in 0..per_wave {
            let peer = enet_client(proxy_port).build().expect("client");
            clients.push(Client {
                id: peer.unique_id(),
                joined: wave,
                left: None,
            });
            w.ids.push(peer.unique_id());
            w.c.nodes.push(Node::new(Box::new(peer)));
        }
        for k in leaving {
            let how = LEAVES[next_leave % LEAVES.len()];
            next_leave += 1;
            *by_kind.entry(how).or_default() += 1;
            let cl = &mut clients[k];
            cl.left = Some((wave, how));
            let i = w.node_of(cl.id).expect("present client");
            match how {
                Leave::Graceful => w.c.nodes[i].peer.disconnect_peer(1, false).expect("leave"),
                Leave::Close => w.c.nodes[i].peer.close(),
                Leave::Dropped => w.remove(i),
                Leave::Silent => {
                    let port = w.port_of(i).expect("a connected client's port");
                    w.proxy.borrow_mut().set_blackhole(port, true, true)
                }
                Leave::Kicked => w.c.nodes[0]
                    .peer
                    .disconnect_peer(cl.id, false)
                    .expect("kick"),
                Leave::ForceKicked => w.c.nodes[0]
                    .peer
                    .disconnect_peer(cl.id, true)
                    .expect("force kick"),
            }
        }
        // Settle: the server has exactly the present clients, and each present client knows
        // exactly the server and the other present clients.
        let present: BTreeSet<PeerId> = clients
            .iter()
            .filter(|c| c.left.is_none())
            .map(|c| c.id)
            .collect();

        let t = Instant::now();
        loop {
            w.c.pump();
            for n in w.c.nodes.iter_mut() {
                n.take_packets();
            }
            let server_ok = w.c.nodes[0]
                .peer
                .peer_ids()
                .into_iter()
                .collect::<BTreeSet<_>>()
                == present;
            let clients_ok = server_ok
                && present.iter().all(|id| {
                    w.node_of(*id).is_some_and(|i| {
                        let mut want = present.clone();
                        want.remove(id);
                        want.insert(1);
                        believed(&w.c, i) == want
                    })
                });
            // A kicked client learns it from the server at once.
            let kicked_told = clients
                .iter()
                .filter(|c| {
                    matches!(
                        c.left,
                        Some((l, Leave::Kicked | Leave::ForceKicked)) if l == wave
                    )
                })
                .all(|c| {
                    w.node_of(c.id).is_some_and(|i| {
                        w.c.nodes[i]
                            .events
                            .iter()
                            .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
                    })
                });
            if clients_ok && kicked_told {
                for i in 1..w.c.nodes.len() {
                    if let Some(p) = w.port_of(i) {
                        w.ports.insert(w.ids[i], p);
                    }
                }
                break;
            }
            if t.elapsed() > limit(Duration::from_secs(20)) {
                let wrong: Vec<String> = present
                    .iter()
                    .filter_map(|id| {
                        let Some(i) = w.node_of(*id) else {
                            return Some(format!("{id}: no node"));
                        };
                        let mut want = present.clone();
                        want.remove(id);
                        want.insert(1);
                        let got = believed(&w.c, i);
                        (got != want).then(|| format!("{id}: believes {got:?}"))
                    })
                    .collect();
                panic!(
                    "wave {wave}: no settled state after {:?}: server has {:?}, want {present:?}; \
                     clients: {}",
                    t.elapsed(),
                    w.c.nodes[0].peer.peer_ids(),
                    wrong.join("; ")
                );
            }
        }
        // The departed: what they saw, then they go.
        for cl in clients
            .iter()
            .filter(|c| c.left.is_some_and(|l| l.0 == wave))
        {
            let Some(i) = w.node_of(cl.id) else {
                continue; // dropped already
            };
            let events = &w.c.nodes[i].events;
            let ended: Vec<&PeerEvent> = events
                .iter()
                .filter(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
                .collect();
            match cl.left.map(|l| l.1) {
                Some(Leave::Kicked | Leave::ForceKicked) => assert_eq!(
                    ended,
                    vec![&PeerEvent::ServerDisconnected(DisconnectReason::Kicked)],
                    "a kicked client learns why"
                ),
                Some(Leave::Graceful) => {
                    // It may still be waiting for the acknowledgement of its disconnect.
                    assert!(ended.len() <= 1, "{events:?}");
                }
                Some(Leave::Close) => assert!(ended.is_empty(), "close() is silent: {events:?}"),
                _ => {}
            }
            w.remove(i);
        }
    }

    // Every client present now saw exactly one connect and one disconnect per departed peer
    // it overlapped with, and exactly one connect and no disconnect per present peer.
    let server = 0;
    for o in clients.iter().filter(|c| c.left.is_none()) {
        let i = w.node_of(o.id).expect("present");
        let n = &w.c.nodes[i];
        for x in clients.iter().filter(|x| x.id != o.id) {
            let (on, off) = (
                n.count(PeerEvent::PeerConnected(x.id)),
                n.count(PeerEvent::PeerDisconnected(x.id)),
            );
            match x.left {
                None => assert_eq!((on, off), (1, 0), "{} about present {}", o.id, x.id),
                Some((l, _)) if l > o.joined => {
                    assert_eq!((on, off), (1, 1), "{} about departed {}", o.id, x.id)
                }
                Some((l, _)) if l == o.joined => assert!(
                    on == off && on <= 1,
                    "{} about {} who left as it joined: {on} connects, {off} disconnects",
                    o.id,
                    x.id
                ),
                Some(_) => assert_eq!((on, off), (0, 0), "{} about {} (gone before)", o.id, x.id),
            }
        }
        assert_eq!(n.count(PeerEvent::ConnectionSucceeded), 1);
        assert!(
            n.count(PeerEvent::PeerConnected(o.id)) == 0,
            "no event about itself"
        );
    }
    let s = &w.c.nodes[server];
    for x in &clients {
        assert_eq!(
            s.count(PeerEvent::PeerConnected(x.id)),
            1,
            "server about {}",
            x.id
        );
        let want_off = match x.left {
            Some((_, Leave::ForceKicked)) | None => 0,
            Some(_) => 1,
        };
        assert_eq!(
            s.count(PeerEvent::PeerDisconnected(x.id)),
            want_off,
            "server about {} ({:?})",
            x.id,
            x.left
        );
    }

    // Everyone left leaves; the table ends empty.
    for i in 1..w.c.nodes.len() {
        w.c.nodes[i].peer.disconnect_peer(1, false).expect("leave");
    }
    w.c.wait_for(
        "the last clients to leave",
        limit(Duration::from_secs(15)),
        |c| {
            c.nodes[0].peer.peer_ids().is_empty()
                && c.nodes[1..].iter().all(|n| {
                    n.events
                        .iter()
                        .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
                })
        },
    );
    while w.c.nodes.len() > 1 {
        w.remove(1);
    }
    assert!(w.c.nodes[0].peer.peer_ids().is_empty());
    assert_eq!(w.proxy.borrow().session_count(), 0);
    // The server's own record is the test's, not the server's memory: start afresh.
    w.c.nodes[0].events.clear();
    by_kind
}

#[test]
fn churn_sees_each_departure_once_empties_the_table_and_returns_memory() {
    let _serial = serial();
    let (waves, per_wave) = pick((8, 8), (10, 25), (3, 4));
    let seed_value = seed(0xC4_0057);
    let (limit_n, min, max) = server_timeouts();
    let server = enet_server()
        .max_clients(per_wave * waves)
        .peer_timeout(limit_n, min, max)
        .build()
        .expect("server");
    let port = server.local_port().expect("port");
    let proxy = Proxy::shared(port, Impairment::CLEAN, seed_value);
    let c = Net::new(
        vec![Node::new(Box::new(server))],
        Some(proxy_transport(&proxy)),
        Duration::from_millis(1),
    );
    let mut w = World {
        c,
        ids: vec![1],
        ports: BTreeMap::new(),
        proxy,
        rng: StdRng::seed_from_u64(seed_value),
    };
    let started = Instant::now();
    let mut rss = Vec::new();
    for r in 0..2 {
        let t = Instant::now();
        let kinds = round(&mut w, waves, per_wave);
        rss.push(rss_kib());
        eprintln!(
            "churn: round {r}: {} clients in {waves} waves, departures {kinds:?}, {:?}, RSS {} KiB",
            waves * per_wave,
            t.elapsed(),
            rss[r]
        );
    }
    let growth = rss[1] as i64 - rss[0] as i64;
    eprintln!(
        "churn: RSS after round 0 {} KiB, after round 1 {} KiB, growth {growth} KiB; total {:?}",
        rss[0],
        rss[1],
        started.elapsed()
    );
    if !under_valgrind() {
        // Each client is an ENet host of its own in this process (its packet buffers alone
        // are over 8 KiB); a leak of one host, or of one server-side peer's channels and
        // queues, per client would exceed 64 clients x 4 KiB. The allocator's page-level
        // noise between identical rounds stays well below (see the note).
        let tolerance = (waves * per_wave * 4) as i64;
        assert!(
            growth < tolerance,
            "RSS grew by {growth} KiB between two identical rounds (tolerance {tolerance} KiB)"
        );
    }
}
