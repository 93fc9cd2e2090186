//! CustomMultiplayerPeer over an in-memory network (the shared behavioural suite, with the
//! server's application as the relay of PROTOCOL.md), its state machine, peers, limits and
//! outgoing queue and callback; and OfflineMultiplayerPeer.

mod support;

use bytes::Bytes;
use enet_multiplayer::relay;
use enet_multiplayer::session::Announcement;
use enet_multiplayer::{
    ConnectionStatus, CustomMultiplayerPeer, DisconnectReason, Error, MultiplayerPeer,
    OfflineMultiplayerPeer, Outgoing, OutgoingPacket, PeerEvent, PeerId, Target, TransferMode,
    MAX_PEER_ID, SERVER_ID,
};
use std::sync::mpsc;
use std::time::Duration;
use support::cluster::{enet_server, Cluster, Node, Transport};
use support::suite;

use ConnectionStatus::{Connected, Connecting, Disconnected};

const CLIENT_IDS: [PeerId; 3] = [2, 31_337, MAX_PEER_ID];

// ---- the in-memory network ------------------------------------------------------------------

/// A peer with 3 logical channels that reports relay support, moved to CONNECTED as `id`.
fn connected(id: PeerId) -> CustomMultiplayerPeer {
    let mut p = CustomMultiplayerPeer::builder()
        .logical_channels(3)
        .server_relay(true)
        .build()
        .unwrap();
    p.set_connection_status(Connecting).unwrap();
    p.initialize(id).unwrap();
    p.set_connection_status(Connected).unwrap();
    p
}

/// Carries one item that node `sender` generated. The server (node 0) relays: a client's
/// packet goes to the server's `relay`, whose session core delivers its share and hands back
/// what to forward; the server's announcements go to the clients they name. `ids` are the
/// nodes' ids as they joined.
fn carry(nodes: &mut [Node<CustomMultiplayerPeer>], ids: &[PeerId], sender: usize, item: Outgoing) {
    let node_of = |id: PeerId| (1..nodes.len()).find(|&j| ids[j] == id);
    match item {
        // From the server: its own packets and those it forwards, to the clients it names.
        Outgoing::Packet(p) if sender == 0 => {
            for j in 1..nodes.len() {
                let hit = match p.target {
                    Target::Broadcast => true,
                    Target::Peer(x) => x == ids[j],
                    Target::AllExcept(x) => x != ids[j],
                    Target::Server => false,
                };
                if hit && nodes[0].peer.has_peer(ids[j]) {
                    nodes[j]
                        .peer
                        .deliver(p.from, p.channel, p.mode, p.data.clone())
                        .expect("deliver to a client");
                }
            }
        }
        // From a client: to the server, which relays (or drops, as PROTOCOL.md says).
        Outgoing::Packet(p) => {
            let _ = nodes[0].peer.relay(p);
        }
        Outgoing::Announce { to, what } => {
            if let Some(j) = node_of(to) {
                let result = match what {
                    Announcement::Add(id) => nodes[j].peer.add_peer(id),
                    Announcement::Remove(id) => nodes[j].peer.remove_peer(id),
                };
                result.expect("an announcement the client takes");
            }
        }
        // The server kicked a client (and already forgot it; the others hear of it through
        // announcements): the client learns why.
        Outgoing::Disconnect { peer, .. } if sender == 0 => {
            if let Some(j) = node_of(peer) {
                if nodes[j].peer.connection_status() == Connected {
                    nodes[j]
                        .peer
                        .set_disconnected(DisconnectReason::Kicked)
                        .unwrap();
                }
            }
        }
        Outgoing::Close if sender == 0 => {
            for n in nodes.iter_mut().skip(1) {
                if n.peer.connection_status() == Connected {
                    n.peer
                        .set_disconnected(DisconnectReason::ServerClosed)
                        .unwrap();
                }
            }
        }
        // A client left: the server sees it go (and announces it).
        Outgoing::Disconnect { .. } | Outgoing::Close => {
            let gone = ids[sender];
            if nodes[0].peer.has_peer(gone) {
                nodes[0].peer.remove_peer(gone).unwrap();
            }
        }
    }
}

/// The network, draining each peer's outgoing queue.
fn queue_network(ids: Vec<PeerId>) -> Transport<CustomMultiplayerPeer> {
    Box::new(move |nodes: &mut [Node<CustomMultiplayerPeer>]| {
        for i in 0..nodes.len() {
            for item in nodes[i].peer.take_outgoing() {
                carry(nodes, &ids, i, item);
            }
        }
    })
}

/// The network, fed by each peer's packet_generated callback.
fn callback_network(
    nodes: &mut [Node<CustomMultiplayerPeer>],
    ids: Vec<PeerId>,
) -> Transport<CustomMultiplayerPeer> {
    let (tx, rx) = mpsc::channel::<(usize, Outgoing)>();
    for (i, n) in nodes.iter_mut().enumerate() {
        let tx = tx.clone();
        n.peer
            .set_packet_generated(move |item| tx.send((i, item)).unwrap());
    }
    Box::new(move |nodes: &mut [Node<CustomMultiplayerPeer>]| {
        let items: Vec<(usize, Outgoing)> = rx.try_iter().collect();
        for (i, item) in items {
            carry(nodes, &ids, i, item);
        }
    })
}

/// A server (id 1) and three clients, connected and meshed: the server's application accepted
/// each client in turn, and the relaying server's announcements told them of each other.
fn cluster_with(callbacks: bool) -> Cluster<CustomMultiplayerPeer> {
    let mut nodes = vec![Node::new(Box::new(connected(SERVER_ID)))];
    for &id in &CLIENT_IDS {
        nodes[0].peer.add_peer(id).unwrap();
        nodes.push(Node::new(Box::new(connected(id))));
    }
    let ids: Vec<PeerId> = nodes.iter().map(|n| n.id()).collect();
    let transport = if callbacks {
        callback_network(&mut nodes, ids)
    } else {
        queue_network(ids)
    };
    let mut c = Cluster::new(nodes, Some(transport), Duration::ZERO);
    c.wait_mesh();
    c
}

fn cluster() -> Cluster<CustomMultiplayerPeer> {
    cluster_with(false)
}

// ---- the shared suite ---------------------------------------------------------------------

#[test]
fn suite_every_target_with_every_mode() {
    suite::every_target_with_every_mode(&mut cluster());
}

#[test]
fn suite_every_target_with_every_mode_through_callbacks() {
    suite::every_target_with_every_mode(&mut cluster_with(true));
}

#[test]
fn suite_logical_channels() {
    suite::logical_channels(&mut cluster());
}

#[test]
fn suite_put_packet_and_peek() {
    let mut c = cluster();
    suite::put_packet_uses_the_settings(&mut c);
    suite::packet_peek_accessors(&mut c);
    suite::ids_and_roles(&c);
}

#[test]
fn suite_ten_thousand_reliable_in_order() {
    suite::ten_thousand_reliable_in_order(&mut cluster());
}

#[test]
fn suite_ten_thousand_reliable_in_order_through_callbacks() {
    suite::ten_thousand_reliable_in_order(&mut cluster_with(true));
}

#[test]
fn suite_misuse() {
    suite::misuse_is_a_typed_error(&mut cluster());
}

#[test]
fn mesh_events_come_exactly_once_in_godots_order() {
    let c = cluster();
    let ids = c.ids();
    for (i, n) in c.nodes.iter().enumerate().skip(1) {
        assert_eq!(
            n.events[..2],
            [PeerEvent::PeerConnected(1), PeerEvent::ConnectionSucceeded],
            "node {i}"
        );
        for (j, id) in ids.iter().enumerate() {
            assert_eq!(
                n.count(PeerEvent::PeerConnected(*id)),
                usize::from(i != j),
                "node {i} about {id}"
            );
        }
    }
    assert_eq!(
        c.nodes[0].events,
        CLIENT_IDS
            .iter()
            .map(|id| PeerEvent::PeerConnected(*id))
            .collect::<Vec<_>>()
    );
}

#[test]
fn kicks_and_leaves_through_the_network() {
    let mut c = cluster();
    let ids = c.ids();
    // Graceful kick: one PeerDisconnected at the server and at the others; the client learns.
    c.nodes[0].peer.disconnect_peer(ids[1], false).unwrap();
    c.wait("graceful kick", |c| {
        c.nodes[1].count(PeerEvent::ServerDisconnected(DisconnectReason::Kicked)) == 1
            && c.nodes[2].count(PeerEvent::PeerDisconnected(ids[1])) == 1
            && c.nodes[3].count(PeerEvent::PeerDisconnected(ids[1])) == 1
    });
    assert_eq!(c.nodes[0].count(PeerEvent::PeerDisconnected(ids[1])), 1);
    assert_eq!(c.nodes[1].peer.connection_status(), Disconnected);
    // Forced kick: silent at the server, the others still learn.
    c.nodes[0].peer.disconnect_peer(ids[2], true).unwrap();
    c.wait("forced kick", |c| {
        c.nodes[2].count(PeerEvent::ServerDisconnected(DisconnectReason::Kicked)) == 1
            && c.nodes[3].count(PeerEvent::PeerDisconnected(ids[2])) == 1
    });
    assert_eq!(c.nodes[0].count(PeerEvent::PeerDisconnected(ids[2])), 0);
    assert_eq!(c.nodes[0].peer.peer_ids(), vec![ids[3]]);
    assert_eq!(c.nodes[3].peer.peer_ids(), vec![1]);
    // The last client leaves on its own.
    c.nodes[3].peer.disconnect_peer(SERVER_ID, false).unwrap();
    c.wait("the leaver", |c| {
        c.nodes[0].count(PeerEvent::PeerDisconnected(ids[3])) == 1
    });
    assert_eq!(
        c.nodes[3].count(PeerEvent::ServerDisconnected(DisconnectReason::Unspecified)),
        1
    );
    assert!(c.nodes[0].peer.peer_ids().is_empty());
    c.settle(
        Duration::from_millis(50),
        |c| {
            c.nodes.iter().any(|n| {
                ids.iter()
                    .any(|id| n.count(PeerEvent::PeerDisconnected(*id)) > 1)
            })
        },
        "no duplicate PeerDisconnected",
    );
}

#[test]
fn server_close_reaches_every_client_and_is_silent_locally() {
    let mut c = cluster_with(true);
    for n in c.nodes.iter_mut() {
        n.events.clear();
    }
    c.nodes[0].peer.close();
    c.wait("every client to see the server close", |c| {
        c.nodes[1..].iter().all(|n| {
            n.events
                == [PeerEvent::ServerDisconnected(
                    DisconnectReason::ServerClosed,
                )]
        })
    });
    assert!(c.nodes[0].events.is_empty(), "close() emits nothing");
    for n in &c.nodes {
        assert_eq!(n.peer.connection_status(), Disconnected);
        assert_eq!(n.id(), 0);
    }
}

// ---- the state machine ----------------------------------------------------------------------

/// A fresh peer brought to `status` (initialized as `id` if it got past DISCONNECTED), with no
/// events waiting.
fn peer_in(status: ConnectionStatus, id: PeerId) -> CustomMultiplayerPeer {
    let mut p = CustomMultiplayerPeer::new();
    if status != Disconnected {
        p.set_connection_status(Connecting).unwrap();
        p.initialize(id).unwrap();
    }
    if status == Connected {
        p.set_connection_status(Connected).unwrap();
    }
    while p.pop_event().is_some() {}
    p
}

fn events(p: &mut CustomMultiplayerPeer) -> Vec<PeerEvent> {
    std::iter::from_fn(|| p.pop_event()).collect()
}

#[test]
fn every_connection_status_transition() {
    let unspecified = DisconnectReason::Unspecified;
    for id in [SERVER_ID, 77] {
        let client = id != SERVER_ID;
        // (from, to, allowed?, events)
        let table: [(ConnectionStatus, ConnectionStatus, bool, Vec<PeerEvent>); 9] = [
            (Disconnected, Disconnected, false, vec![]),
            (Disconnected, Connecting, true, vec![]),
            (Disconnected, Connected, false, vec![]),
            (
                Connecting,
                Disconnected,
                true,
                vec![PeerEvent::ConnectionFailed(unspecified)],
            ),
            (Connecting, Connecting, false, vec![]),
            (
                Connecting,
                Connected,
                true,
                if client {
                    vec![PeerEvent::PeerConnected(1), PeerEvent::ConnectionSucceeded]
                } else {
                    vec![]
                },
            ),
            (
                Connected,
                Disconnected,
                true,
                if client {
                    vec![PeerEvent::ServerDisconnected(unspecified)]
                } else {
                    vec![]
                },
            ),
            (Connected, Connecting, false, vec![]),
            (Connected, Connected, false, vec![]),
        ];
        assert_eq!(table.iter().filter(|r| r.2).count(), 4);
        for (from, to, allowed, want_events) in table {
            let what = format!("id {id}: {from:?} -> {to:?}");
            let mut p = peer_in(from, id);
            let before_id = p.unique_id();
            let r = p.set_connection_status(to);
            if allowed {
                r.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(p.connection_status(), to, "{what}");
            } else {
                match r {
                    Err(Error::InvalidTransition { from: f, to: t }) => {
                        assert_eq!((f, t), (from, to), "{what}")
                    }
                    other => panic!("{what}: {other:?}"),
                }
                assert_eq!(p.connection_status(), from, "{what}: unchanged");
                assert_eq!(p.unique_id(), before_id, "{what}: id unchanged");
            }
            assert_eq!(events(&mut p), want_events, "{what}");
            let want_id = match p.connection_status() {
                Disconnected => 0,
                Connecting if from == Disconnected => 0,
                _ => id,
            };
            assert_eq!(p.unique_id(), want_id, "{what}: id");
            assert_eq!(p.is_server(), want_id == SERVER_ID, "{what}: role");
        }
    }
}

#[test]
fn connected_needs_initialize_first() {
    let mut p = CustomMultiplayerPeer::new();
    assert_eq!(p.unique_id(), 0);
    p.set_connection_status(Connecting).unwrap();
    assert!(matches!(
        p.set_connection_status(Connected),
        Err(Error::NotAllowed(_))
    ));
    assert_eq!(p.connection_status(), Connecting);
    assert!(events(&mut p).is_empty());
    p.initialize(5).unwrap();
    p.set_connection_status(Connected).unwrap();
    assert_eq!(p.unique_id(), 5);
}

#[test]
fn initialize_in_every_status_with_every_kind_of_id() {
    let ids: [PeerId; 6] = [0, 1, 2, MAX_PEER_ID, MAX_PEER_ID + 1, u32::MAX];
    for status in [Disconnected, Connecting, Connected] {
        for id in ids {
            let mut p = peer_in(status, 9);
            let before = p.unique_id();
            let r = p.initialize(id);
            let what = format!("{status:?}, id {id}");
            match (status, r) {
                (Connecting, Ok(())) if (1..=MAX_PEER_ID).contains(&id) => {
                    assert_eq!(p.unique_id(), id, "{what}")
                }
                (Connecting, Err(Error::InvalidId(bad))) if !(1..=MAX_PEER_ID).contains(&id) => {
                    assert_eq!(bad, id, "{what}");
                    assert_eq!(p.unique_id(), before, "{what}");
                }
                (Disconnected | Connected, Err(Error::NotAllowed(_))) => {
                    assert_eq!(p.unique_id(), before, "{what}")
                }
                (_, r) => panic!("{what}: {r:?}"),
            }
            assert_eq!(p.connection_status(), status, "{what}");
            assert!(events(&mut p).is_empty(), "{what}");
        }
    }
}

#[test]
fn a_peer_can_connect_again_after_disconnecting() {
    let mut p = peer_in(Connected, 40);
    p.add_peer(41).unwrap();
    p.set_connection_status(Disconnected).unwrap();
    assert!(p.peer_ids().is_empty());
    p.set_connection_status(Connecting).unwrap();
    assert_eq!(p.unique_id(), 0, "the old id is forgotten");
    p.initialize(1).unwrap();
    p.set_connection_status(Connected).unwrap();
    assert!(p.is_server());
    assert!(p.peer_ids().is_empty(), "the old peers are forgotten");
    assert_eq!(
        events(&mut p),
        [
            PeerEvent::PeerConnected(41),
            PeerEvent::ServerDisconnected(DisconnectReason::Unspecified)
        ]
    );
}

#[test]
fn set_disconnected_carries_the_reason() {
    let mut p = peer_in(Connecting, 8);
    p.set_disconnected(DisconnectReason::Refused(
        enet_multiplayer::Refusal::ServerFull,
    ))
    .unwrap();
    assert_eq!(
        events(&mut p),
        [PeerEvent::ConnectionFailed(DisconnectReason::Refused(
            enet_multiplayer::Refusal::ServerFull
        ))]
    );
    let mut p = peer_in(Connected, 8);
    p.set_disconnected(DisconnectReason::Kicked).unwrap();
    assert_eq!(
        events(&mut p),
        [PeerEvent::ServerDisconnected(DisconnectReason::Kicked)]
    );
    assert!(matches!(
        p.set_disconnected(DisconnectReason::Kicked),
        Err(Error::InvalidTransition {
            from: Disconnected,
            to: Disconnected
        })
    ));
}

// ---- peers -------------------------------------------------------------------------------

#[test]
fn server_add_and_remove_peer_fire_exactly_once() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.add_peer(5).unwrap();
    assert!(
        matches!(s.add_peer(5), Err(Error::NotAllowed(_))),
        "duplicate"
    );
    s.add_peer(MAX_PEER_ID).unwrap();
    assert_eq!(s.peer_ids(), vec![5, MAX_PEER_ID]);
    assert!(s.has_peer(5) && !s.has_peer(6) && !s.has_peer(SERVER_ID));
    s.remove_peer(5).unwrap();
    assert!(matches!(s.remove_peer(5), Err(Error::UnknownPeer(5))));
    assert!(matches!(s.remove_peer(6), Err(Error::UnknownPeer(6))));
    assert!(matches!(s.add_peer(0), Err(Error::InvalidId(0))));
    assert!(matches!(s.remove_peer(0), Err(Error::InvalidId(0))));
    assert!(matches!(
        s.add_peer(MAX_PEER_ID + 1),
        Err(Error::InvalidId(n)) if n == MAX_PEER_ID + 1
    ));
    assert!(
        matches!(s.add_peer(SERVER_ID), Err(Error::NotAllowed(_))),
        "own id"
    );
    assert!(matches!(
        s.remove_peer(SERVER_ID),
        Err(Error::UnknownPeer(1))
    ));
    assert_eq!(
        events(&mut s),
        [
            PeerEvent::PeerConnected(5),
            PeerEvent::PeerConnected(MAX_PEER_ID),
            PeerEvent::PeerDisconnected(5)
        ]
    );
    assert_eq!(s.peer_ids(), vec![MAX_PEER_ID]);
}

#[test]
fn client_add_and_remove_peer() {
    let mut c = peer_in(Connected, 10);
    assert_eq!(c.peer_ids(), vec![1], "the server is implicit");
    assert!(c.has_peer(SERVER_ID));
    assert!(matches!(c.add_peer(SERVER_ID), Err(Error::NotAllowed(_))));
    assert!(
        matches!(c.add_peer(10), Err(Error::NotAllowed(_))),
        "own id"
    );
    c.add_peer(20).unwrap();
    assert!(matches!(c.add_peer(20), Err(Error::NotAllowed(_))));
    assert_eq!(c.peer_ids(), vec![1, 20]);
    assert!(matches!(
        c.remove_peer(SERVER_ID),
        Err(Error::NotAllowed(_))
    ));
    c.remove_peer(20).unwrap();
    assert!(matches!(c.remove_peer(20), Err(Error::UnknownPeer(20))));
    assert_eq!(
        events(&mut c),
        [
            PeerEvent::PeerConnected(20),
            PeerEvent::PeerDisconnected(20)
        ]
    );
    assert_eq!(c.connection_status(), Connected);
}

#[test]
fn peers_need_a_connection() {
    for status in [Disconnected, Connecting] {
        let mut p = peer_in(status, SERVER_ID);
        assert!(matches!(p.add_peer(5), Err(Error::NotConnected(s)) if s == status));
        assert!(matches!(p.remove_peer(5), Err(Error::NotConnected(s)) if s == status));
        assert!(p.peer_ids().is_empty() && !p.has_peer(5));
        assert!(events(&mut p).is_empty());
    }
}

#[test]
fn a_refusing_server_refuses_add_peer() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.set_refuse_new_connections(true);
    assert!(s.is_refusing_new_connections());
    assert!(matches!(s.add_peer(5), Err(Error::NotAllowed(_))));
    assert!(events(&mut s).is_empty());
    s.set_refuse_new_connections(false);
    s.add_peer(5).unwrap();
    // A client's announcements are not connections to it.
    let mut c = peer_in(Connected, 9);
    c.set_refuse_new_connections(true);
    c.add_peer(5).unwrap();
}

// ---- incoming ------------------------------------------------------------------------------

#[test]
fn packets_from_unknown_senders_are_refused() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.add_peer(5).unwrap();
    assert!(matches!(
        s.deliver_packet(b"x", 6),
        Err(Error::UnknownPeer(6))
    ));
    assert!(matches!(
        s.deliver_packet(b"x", 1),
        Err(Error::UnknownPeer(1))
    ));
    s.deliver_packet(b"hello", 5).unwrap();
    s.remove_peer(5).unwrap();
    assert!(matches!(
        s.deliver_packet(b"x", 5),
        Err(Error::UnknownPeer(5))
    ));
    assert_eq!(s.get_available_packet_count(), 1);
    let p = s.get_packet().unwrap();
    assert_eq!(
        (p.from, p.channel, p.mode, &p.data[..]),
        (5, 0, TransferMode::Reliable, &b"hello"[..]),
        "deliver_packet is channel 0, reliable"
    );

    let mut c = peer_in(Connected, 10);
    c.deliver_packet(b"from the server", 1).unwrap();
    c.deliver_packet(b"to myself", 10).unwrap();
    assert!(matches!(
        c.deliver_packet(b"x", 20),
        Err(Error::UnknownPeer(20))
    ));
    c.add_peer(20).unwrap();
    c.deliver(20, 0, TransferMode::Unreliable, b"relayed".to_vec())
        .unwrap();
    let got: Vec<(PeerId, Vec<u8>)> = std::iter::from_fn(|| c.get_packet())
        .map(|p| (p.from, p.data.to_vec()))
        .collect();
    assert_eq!(
        got,
        [
            (1, b"from the server".to_vec()),
            (10, b"to myself".to_vec()),
            (20, b"relayed".to_vec())
        ]
    );
}

#[test]
fn deliver_checks_status_channel_and_size() {
    for status in [Disconnected, Connecting] {
        let mut p = peer_in(status, 10);
        assert!(matches!(
            p.deliver_packet(b"x", 1),
            Err(Error::NotConnected(s)) if s == status
        ));
    }
    let mut p = CustomMultiplayerPeer::builder()
        .logical_channels(2)
        .max_packet_size(4)
        .build()
        .unwrap();
    p.set_connection_status(Connecting).unwrap();
    p.initialize(10).unwrap();
    p.set_connection_status(Connected).unwrap();
    p.deliver(1, 1, TransferMode::UnreliableOrdered, b"abcd".to_vec())
        .unwrap();
    assert!(matches!(
        p.deliver(1, 2, TransferMode::Reliable, b"x".to_vec()),
        Err(Error::ChannelOutOfRange {
            channel: 2,
            count: 2
        })
    ));
    assert!(matches!(
        p.deliver(1, 0, TransferMode::Reliable, b"abcde".to_vec()),
        Err(Error::PacketTooLarge { size: 5, max: 4 })
    ));
    assert_eq!(p.get_available_packet_count(), 1);
    assert_eq!(p.get_packet_channel(), Some(1));
    assert_eq!(p.get_packet_mode(), Some(TransferMode::UnreliableOrdered));
}

// ---- sending -------------------------------------------------------------------------------

fn sent(p: &mut CustomMultiplayerPeer) -> Vec<OutgoingPacket> {
    p.take_outgoing()
        .into_iter()
        .map(|o| match o {
            Outgoing::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        })
        .collect()
}

#[test]
fn sending_needs_a_connection() {
    for status in [Disconnected, Connecting] {
        for id in [SERVER_ID, 9] {
            let mut p = peer_in(status, id);
            assert!(matches!(
                p.put_packet(b"x"),
                Err(Error::NotConnected(s)) if s == status
            ));
            assert_eq!(p.outgoing_count(), 0);
        }
    }
}

#[test]
fn server_targets() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.add_peer(5).unwrap();
    let r = TransferMode::Reliable;
    assert!(matches!(
        s.send(Target::Server, r, 0, b"x"),
        Err(Error::UnknownTarget(1))
    ));
    assert!(matches!(
        s.send(Target::Peer(1), r, 0, b"x"),
        Err(Error::UnknownTarget(1))
    ));
    assert!(matches!(
        s.send(Target::AllExcept(6), r, 0, b"x"),
        Err(Error::UnknownTarget(-6))
    ));
    assert!(matches!(
        s.send(Target::Peer(0), r, 0, b"x"),
        Err(Error::InvalidTarget(Target::Peer(0)))
    ));
    assert!(matches!(
        s.send(Target::AllExcept(MAX_PEER_ID + 1), r, 0, b"x"),
        Err(Error::InvalidTarget(_))
    ));
    assert_eq!(s.outgoing_count(), 0, "refused sends emit nothing");
    for t in [
        Target::Broadcast,
        Target::Peer(5),
        Target::AllExcept(5),
        Target::AllExcept(1),
    ] {
        s.send(t, TransferMode::Unreliable, 0, b"ok").unwrap();
    }
    let out = sent(&mut s);
    assert_eq!(out.len(), 4);
    assert_eq!(out[1].target, Target::Peer(5));
    assert!(out
        .iter()
        .all(|p| p.from == 1 && p.mode == TransferMode::Unreliable && &p.data[..] == b"ok"));
}

#[test]
fn client_targets() {
    let mut c = peer_in(Connected, 10);
    let r = TransferMode::Reliable;
    // The server, itself and everyone are always reachable; other clients once announced.
    for t in [
        Target::Server,
        Target::Peer(1),
        Target::Peer(10),
        Target::Broadcast,
        Target::AllExcept(1),
        Target::AllExcept(10),
    ] {
        c.send(t, r, 0, b"ok")
            .unwrap_or_else(|e| panic!("{t:?}: {e}"));
    }
    let out = sent(&mut c);
    assert_eq!(out[1].target, Target::Server, "Peer(1) is normalized");
    assert!(out.iter().all(|p| p.from == 10));
    assert!(matches!(
        c.send(Target::Peer(20), r, 0, b"x"),
        Err(Error::UnknownTarget(20))
    ));
    assert!(matches!(
        c.send(Target::AllExcept(20), r, 0, b"x"),
        Err(Error::UnknownTarget(-20))
    ));
    c.add_peer(20).unwrap();
    c.send(Target::Peer(20), r, 0, b"x").unwrap();
    c.send(Target::AllExcept(20), r, 0, b"x").unwrap();
    assert_eq!(sent(&mut c).len(), 2);
}

#[test]
fn logical_channel_count_is_configurable() {
    let mut p = peer_in(Connected, 10);
    assert_eq!(p.logical_channels(), 1, "default");
    assert!(matches!(
        p.send(Target::Server, TransferMode::Reliable, 1, b"x"),
        Err(Error::ChannelOutOfRange {
            channel: 1,
            count: 1
        })
    ));
    let mut p = CustomMultiplayerPeer::builder()
        .logical_channels(256)
        .build()
        .unwrap();
    p.set_connection_status(Connecting).unwrap();
    p.initialize(10).unwrap();
    p.set_connection_status(Connected).unwrap();
    p.send(Target::Server, TransferMode::Reliable, 255, b"x")
        .unwrap();
    assert_eq!(sent(&mut p)[0].channel, 255);
    for bad in [0, 257] {
        assert!(matches!(
            CustomMultiplayerPeer::builder()
                .logical_channels(bad)
                .build(),
            Err(Error::InvalidConfig(_))
        ));
    }
}

#[test]
fn max_packet_size() {
    let mut p = peer_in(Connected, 10);
    assert_eq!(
        p.max_packet_size(),
        CustomMultiplayerPeer::DEFAULT_MAX_PACKET_SIZE
    );
    let enet = enet_server().build().unwrap();
    assert_eq!(
        CustomMultiplayerPeer::DEFAULT_MAX_PACKET_SIZE,
        enet.max_packet_size(),
        "the same default as the ENet peer"
    );
    p.set_max_packet_size(100).unwrap();
    assert_eq!(p.max_packet_size(), 100);
    p.send(Target::Server, TransferMode::Reliable, 0, &[7; 100])
        .unwrap();
    assert!(matches!(
        p.send(Target::Server, TransferMode::Reliable, 0, &[7; 101]),
        Err(Error::PacketTooLarge {
            size: 101,
            max: 100
        })
    ));
    assert!(matches!(
        p.deliver_packet(&[7; 101], 1),
        Err(Error::PacketTooLarge {
            size: 101,
            max: 100
        })
    ));
    p.deliver_packet(&[7; 100], 1).unwrap();
    assert!(matches!(
        p.set_max_packet_size(0),
        Err(Error::InvalidConfig(_))
    ));
    assert_eq!(p.max_packet_size(), 100);
    assert!(matches!(
        CustomMultiplayerPeer::builder().max_packet_size(0).build(),
        Err(Error::InvalidConfig(_))
    ));
    let built = CustomMultiplayerPeer::builder()
        .max_packet_size(3)
        .build()
        .unwrap();
    assert_eq!(built.max_packet_size(), 3);
}

// ---- outgoing: queue and callback ----------------------------------------------------------------

#[test]
fn the_outgoing_queue_keeps_order() {
    let mut p = peer_in(Connected, 10);
    p.send(Target::Server, TransferMode::Unreliable, 0, b"1")
        .unwrap();
    p.set_target_peer(Target::Broadcast);
    p.set_transfer_mode(TransferMode::UnreliableOrdered);
    p.put_packet(b"2").unwrap();
    assert_eq!(p.outgoing_count(), 2);
    let first = p.pop_outgoing().unwrap();
    assert_eq!(
        first,
        Outgoing::Packet(OutgoingPacket {
            from: 10,
            target: Target::Server,
            mode: TransferMode::Unreliable,
            channel: 0,
            data: b"1".to_vec().into(),
        })
    );
    p.put_packet(b"3").unwrap();
    let rest = sent(&mut p);
    assert_eq!(
        rest.iter().map(|p| p.data.to_vec()).collect::<Vec<_>>(),
        [b"2".to_vec(), b"3".to_vec()]
    );
    assert_eq!(rest[0].mode, TransferMode::UnreliableOrdered);
    assert_eq!(rest[0].target, Target::Broadcast);
    assert!(p.pop_outgoing().is_none());
    assert!(p.take_outgoing().is_empty());
}

#[test]
fn the_callback_gets_waiting_items_first_then_each_at_once() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.add_peer(5).unwrap();
    s.send(Target::Peer(5), TransferMode::Reliable, 0, b"queued")
        .unwrap();
    let (tx, rx) = mpsc::channel();
    s.set_packet_generated(move |item| tx.send(item).unwrap());
    assert_eq!(
        s.outgoing_count(),
        0,
        "the waiting item went to the callback"
    );
    let data = |o: Outgoing| match o {
        Outgoing::Packet(p) => p.data.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(data(rx.try_recv().unwrap()), b"queued");
    s.send(Target::Broadcast, TransferMode::Reliable, 0, b"direct")
        .unwrap();
    assert_eq!(data(rx.try_recv().unwrap()), b"direct", "delivered at once");
    assert!(s
        .send(Target::Peer(6), TransferMode::Reliable, 0, b"x")
        .is_err());
    assert!(rx.try_recv().is_err(), "a refused send calls nothing");
    s.disconnect_peer(5, true).unwrap();
    assert_eq!(
        rx.try_recv().unwrap(),
        Outgoing::Disconnect {
            peer: 5,
            force: true
        }
    );
    s.clear_packet_generated();
    s.send(
        Target::Broadcast,
        TransferMode::Reliable,
        0,
        b"queued again",
    )
    .unwrap();
    assert!(rx.try_recv().is_err());
    assert_eq!(s.outgoing_count(), 1);
    s.close();
    assert_eq!(s.take_outgoing().last(), Some(&Outgoing::Close));
}

// ---- disconnect_peer and close ---------------------------------------------------------------

#[test]
fn server_disconnect_peer_with_and_without_force() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.add_peer(5).unwrap();
    s.add_peer(6).unwrap();
    events(&mut s);
    s.disconnect_peer(5, false).unwrap();
    assert_eq!(events(&mut s), [PeerEvent::PeerDisconnected(5)]);
    s.disconnect_peer(6, true).unwrap();
    assert!(events(&mut s).is_empty(), "force is silent");
    assert_eq!(
        s.take_outgoing(),
        [
            Outgoing::Disconnect {
                peer: 5,
                force: false
            },
            Outgoing::Disconnect {
                peer: 6,
                force: true
            }
        ]
    );
    assert!(s.peer_ids().is_empty());
    assert!(matches!(
        s.disconnect_peer(5, false),
        Err(Error::UnknownPeer(5))
    ));
    assert!(matches!(s.remove_peer(6), Err(Error::UnknownPeer(6))));
    assert!(matches!(
        s.send(Target::Peer(5), TransferMode::Reliable, 0, b"x"),
        Err(Error::UnknownTarget(5))
    ));
    assert_eq!(s.connection_status(), Connected);
    assert_eq!(s.outgoing_count(), 0);
}

#[test]
fn client_disconnect_peer() {
    let mut c = peer_in(Connected, 10);
    c.add_peer(20).unwrap();
    assert!(matches!(
        c.disconnect_peer(20, false),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        c.disconnect_peer(20, true),
        Err(Error::NotAllowed(_))
    ));
    c.deliver_packet(b"kept", 1).unwrap();
    events(&mut c);
    c.disconnect_peer(SERVER_ID, false).unwrap();
    assert_eq!(
        c.take_outgoing(),
        [Outgoing::Disconnect {
            peer: 1,
            force: false
        }]
    );
    assert_eq!(c.connection_status(), Disconnected);
    assert_eq!(
        events(&mut c),
        [PeerEvent::ServerDisconnected(DisconnectReason::Unspecified)]
    );
    assert_eq!(c.get_available_packet_count(), 1, "graceful keeps packets");
    assert!(matches!(
        c.disconnect_peer(SERVER_ID, false),
        Err(Error::NotConnected(Disconnected))
    ));

    let mut c = peer_in(Connected, 10);
    c.deliver_packet(b"dropped", 1).unwrap();
    c.disconnect_peer(SERVER_ID, true).unwrap();
    assert_eq!(
        c.take_outgoing(),
        [Outgoing::Disconnect {
            peer: 1,
            force: true
        }]
    );
    assert_eq!(c.connection_status(), Disconnected);
    assert!(events(&mut c).is_empty(), "force is silent");
    assert_eq!(c.get_available_packet_count(), 0);
}

#[test]
fn close_is_silent_and_tells_the_application() {
    let mut s = peer_in(Connected, SERVER_ID);
    s.add_peer(5).unwrap();
    s.deliver_packet(b"x", 5).unwrap();
    s.send(Target::Broadcast, TransferMode::Reliable, 0, b"bye")
        .unwrap();
    s.close();
    assert_eq!(s.connection_status(), Disconnected);
    assert_eq!(s.unique_id(), 0);
    assert!(!s.is_server());
    assert!(
        s.pop_event().is_none(),
        "close() emits nothing, and forgets"
    );
    assert_eq!(s.get_available_packet_count(), 0);
    let out = s.take_outgoing();
    assert_eq!(out.len(), 2, "what was sent before close stays");
    assert_eq!(out[1], Outgoing::Close);
    s.close();
    assert_eq!(s.outgoing_count(), 0, "closing a closed peer asks nothing");
    s.poll().unwrap();

    let mut connecting = peer_in(Connecting, 9);
    connecting.close();
    assert_eq!(connecting.take_outgoing(), [Outgoing::Close]);
    assert!(connecting.pop_event().is_none());
    assert_eq!(connecting.connection_status(), Disconnected);
}

// ---- the rest of the trait ---------------------------------------------------------------

#[test]
fn relay_flag_poll_debug_and_send() {
    fn assert_send<T: Send>() {}
    assert_send::<CustomMultiplayerPeer>();
    let mut p = CustomMultiplayerPeer::default();
    assert!(!p.is_server_relay_supported(), "default off");
    assert!(CustomMultiplayerPeer::builder()
        .server_relay(true)
        .build()
        .unwrap()
        .is_server_relay_supported());
    p.poll().unwrap();
    let start = std::time::Instant::now();
    p.poll_timeout(Duration::from_secs(5)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(1), "returns at once");
    p.set_packet_generated(|_| {});
    let debug = format!("{p:?}");
    assert!(debug.contains("packet_generated: true"), "{debug}");
    let g = p.generate_unique_id();
    assert!((2..=MAX_PEER_ID).contains(&g));
}

// ---- OfflineMultiplayerPeer ------------------------------------------------------------------

#[test]
fn offline_peer_is_a_lonely_server() {
    let mut p: Box<dyn MultiplayerPeer> = Box::new(OfflineMultiplayerPeer::new());
    assert_eq!(p.connection_status(), Connected);
    assert_eq!(p.unique_id(), SERVER_ID);
    assert!(p.is_server());
    assert!(!p.is_server_relay_supported());
    for target in [
        Target::Broadcast,
        Target::Server,
        Target::Peer(5),
        Target::AllExcept(5),
    ] {
        for mode in TransferMode::ALL {
            assert!(matches!(
                p.send(target, mode, 0, b"x"),
                Err(Error::NotAllowed(_))
            ));
        }
    }
    assert!(matches!(p.put_packet(b"x"), Err(Error::NotAllowed(_))));
    p.set_target_peer(Target::Peer(9));
    p.set_transfer_channel(3);
    assert_eq!(p.target_peer(), Target::Peer(9));
    assert_eq!(p.transfer_channel(), 3);
    p.poll().unwrap();
    p.poll_timeout(Duration::from_millis(1)).unwrap();
    assert!(p.pop_event().is_none());
    assert!(p.get_packet().is_none() && p.peek_packet().is_none());
    assert_eq!(p.get_available_packet_count(), 0);
    assert_eq!(p.get_packet_peer(), None);
    assert!(matches!(
        p.disconnect_peer(5, false),
        Err(Error::UnknownPeer(5))
    ));
    assert!(matches!(
        p.disconnect_peer(1, true),
        Err(Error::UnknownPeer(1))
    ));
    p.set_refuse_new_connections(true);
    assert!(p.is_refusing_new_connections());
    p.close();
    assert_eq!(p.connection_status(), Connected, "offline stays connected");
    assert_eq!(p.unique_id(), SERVER_ID);
    assert_eq!(
        p.max_packet_size(),
        CustomMultiplayerPeer::DEFAULT_MAX_PACKET_SIZE
    );
}

/// A relaying custom server: its session core announces, checks and routes what the
/// application hands it with `relay`.
#[test]
fn a_relaying_server_announces_and_routes_through_its_core() {
    let mut s = connected(SERVER_ID);
    s.add_peer(5).unwrap();
    s.add_peer(9).unwrap();
    let announced: Vec<_> = s.take_outgoing();
    assert_eq!(
        announced,
        [
            Outgoing::Announce {
                to: 5,
                what: Announcement::Add(9)
            },
            Outgoing::Announce {
                to: 9,
                what: Announcement::Add(5)
            },
        ]
    );
    let packet = |from, target, data: &'static [u8]| OutgoingPacket {
        from,
        target,
        mode: TransferMode::Reliable,
        channel: 0,
        data: Bytes::from_static(data),
    };
    // 5 to everyone: the server keeps its share, 9 gets a forwarded copy from 5.
    s.relay(packet(5, Target::Broadcast, b"hi")).unwrap();
    assert_eq!(
        s.get_packet().map(|p| (p.from, p.data)),
        Some((5, Bytes::from_static(b"hi")))
    );
    assert_eq!(
        s.take_outgoing(),
        [Outgoing::Packet(packet(5, Target::Peer(9), b"hi"))]
    );
    // Spoofed, unknown target, bad channel: dropped, counted by the core, nothing forwarded.
    assert_eq!(
        s.relay(packet(9, Target::Peer(5), b"x")).map(|_| ()),
        Ok(())
    );
    s.take_outgoing();
    let mut spoofed = packet(5, Target::Peer(9), b"x");
    spoofed.from = 7;
    assert_eq!(s.relay(spoofed), Err(relay::DropReason::UnknownSender));
    assert_eq!(
        s.relay(packet(5, Target::Peer(77), b"x")),
        Err(relay::DropReason::UnknownTarget)
    );
    let mut odd = packet(5, Target::Peer(9), b"x");
    odd.channel = 9;
    assert_eq!(s.relay(odd), Err(relay::DropReason::ChannelOutOfRange));
    assert!(s.take_outgoing().is_empty());
    // 9 leaves: 5 is told.
    s.remove_peer(9).unwrap();
    assert_eq!(
        s.take_outgoing(),
        [Outgoing::Announce {
            to: 5,
            what: Announcement::Remove(9)
        }]
    );
    // A client cannot relay.
    let mut c = connected(5);
    assert_eq!(
        c.relay(packet(5, Target::Server, b"x")),
        Err(relay::DropReason::UnknownSender)
    );
}
