//! ENetMultiplayerPeer over real UDP sockets on 127.0.0.1: the shared behavioural suite, and the
//! ENet-specific behaviour (relay system messages, refusals, kicks, hostile clients, close).

mod support;

use enet_multiplayer::relay::DropReason;
use enet_multiplayer::{
    Compression, ConnectionStatus, DisconnectReason, ENetMultiplayerPeer, Error, MultiplayerPeer,
    PeerEvent, Refusal, Target, TransferMode,
};
use enet_wrapper::{Event, Host, HostConfig, Packet as RawPacket, PacketFlags};
use std::time::{Duration, Instant};
use support::cluster::{deadline, enet_client, enet_cluster, enet_server, Cluster, Node};
use support::raw::{add_peer, data_packet, header, remove_peer, wait_raw, RawClient};
use support::suite;

fn meshed(clients: usize) -> Cluster<ENetMultiplayerPeer> {
    enet_cluster(clients, enet_server().extra_channels(2), |c| {
        c.extra_channels(2)
    })
}

#[test]
fn suite_every_target_with_every_mode() {
    suite::every_target_with_every_mode(&mut meshed(3));
}

#[test]
fn suite_every_target_with_every_mode_range_coder_and_flush_every_send() {
    let mut c = enet_cluster(
        3,
        enet_server()
            .extra_channels(2)
            .compression(Compression::RangeCoder)
            .flush_every_send(true),
        |c| {
            c.extra_channels(2)
                .compression(Compression::RangeCoder)
                .flush_every_send(true)
        },
    );
    suite::every_target_with_every_mode(&mut c);
}

#[test]
fn suite_logical_channels() {
    suite::logical_channels(&mut meshed(3));
}

#[test]
fn suite_put_packet_and_peek() {
    let mut c = meshed(3);
    suite::put_packet_uses_the_settings(&mut c);
    suite::packet_peek_accessors(&mut c);
    suite::ids_and_roles(&c);
}

#[test]
fn suite_ten_thousand_reliable_in_order() {
    suite::ten_thousand_reliable_in_order(&mut meshed(3));
}

#[test]
fn suite_misuse() {
    suite::misuse_is_a_typed_error(&mut meshed(3));
}

#[test]
fn one_mebibyte_packet_through_the_relay() {
    let mut c = meshed(2);
    let big: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let dest = c.nodes[2].id();
    c.nodes[1]
        .peer
        .send(Target::Peer(dest), TransferMode::Reliable, 1, &big)
        .unwrap();
    c.wait("the 1 MiB packet", |c| !c.nodes[2].packets.is_empty());
    let p = &c.nodes[2].packets[0];
    assert_eq!(p.from, c.nodes[1].id());
    assert_eq!(p.channel, 1);
    assert!(p.data[..] == big[..], "payload differs");
}

#[test]
fn client_sees_server_then_success_and_ids() {
    let server = enet_server().build().unwrap();
    let port = server.local_port().unwrap();
    let client = enet_client(port).build().unwrap();
    assert_eq!(client.connection_status(), ConnectionStatus::Connecting);
    assert!(matches!(
        ENetMultiplayerPeer::client("127.0.0.1", port)
            .build()
            .unwrap()
            .send(Target::Server, TransferMode::Reliable, 0, b"early"),
        Err(Error::NotConnected(ConnectionStatus::Connecting))
    ));
    let mut c = Cluster::new(
        vec![Node::new(Box::new(server)), Node::new(Box::new(client))],
        None,
        Duration::from_millis(1),
    );
    c.wait("connection", |c| {
        c.nodes[1].count(PeerEvent::ConnectionSucceeded) == 1 && !c.nodes[0].events.is_empty()
    });
    assert_eq!(
        c.nodes[1].events,
        vec![PeerEvent::PeerConnected(1), PeerEvent::ConnectionSucceeded],
        "Godot's order: peer_connected(1) just before connection_succeeded"
    );
    assert_eq!(
        c.nodes[0].events,
        vec![PeerEvent::PeerConnected(c.nodes[1].id())]
    );
    assert_eq!(
        c.nodes[1].peer.connection_status(),
        ConnectionStatus::Connected
    );
    assert_eq!(
        c.nodes[0].peer.connection_status(),
        ConnectionStatus::Connected
    );
}

#[test]
fn add_peer_and_remove_peer_with_late_joiners() {
    let server = enet_server().build().unwrap();
    let port = server.local_port().unwrap();
    let mut c = Cluster::new(
        vec![Node::new(Box::new(server))],
        None,
        Duration::from_millis(1),
    );
    // Clients join one by one; each late joiner learns of everyone already there.
    for n in 1..=4 {
        c.nodes
            .push(Node::new(Box::new(enet_client(port).build().unwrap())));
        c.wait_mesh();
        assert_eq!(c.nodes[0].connected_peers().len(), n);
    }
    let ids = c.ids();
    // Exactly one ADD_PEER per other client at every client.
    for (i, n) in c.nodes.iter().enumerate().skip(1) {
        for (j, id) in ids.iter().enumerate().skip(1) {
            let want = usize::from(i != j);
            assert_eq!(
                n.count(PeerEvent::PeerConnected(*id)),
                want,
                "node {i} about {id}"
            );
        }
    }
    // Node 2 leaves gracefully: everyone else gets exactly one REMOVE_PEER.
    let gone = ids[2];
    c.nodes[2].peer.disconnect_peer(1, false).unwrap();
    c.wait("REMOVE_PEER everywhere", |c| {
        [0, 1, 3, 4]
            .iter()
            .all(|&i| c.nodes[i].count(PeerEvent::PeerDisconnected(gone)) == 1)
    });
    c.wait("the leaver's own server_disconnected", |c| {
        c.nodes[2]
            .events
            .iter()
            .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
    });
    // A new joiner does not hear of the departed client.
    c.nodes
        .push(Node::new(Box::new(enet_client(port).build().unwrap())));
    let new_id = {
        c.wait("the new joiner", |c| {
            c.nodes[5].count(PeerEvent::ConnectionSucceeded) == 1
                && c.nodes[5].connected_peers().len() == 4
        });
        c.nodes[5].id()
    };
    assert!(!c.nodes[5].connected_peers().contains(&gone));
    c.settle(
        Duration::from_millis(200),
        |c| {
            [0, 1, 3, 4]
                .iter()
                .any(|&i| c.nodes[i].count(PeerEvent::PeerDisconnected(gone)) != 1)
        },
        "no duplicate PeerDisconnected",
    );
    for i in [1, 3, 4] {
        assert_eq!(c.nodes[i].count(PeerEvent::PeerConnected(new_id)), 1);
    }
}

#[test]
fn disconnect_peer_with_and_without_force() {
    let mut c = meshed(3);
    let ids = c.ids();
    // Graceful kick: the server gets exactly one PeerDisconnected, the others REMOVE_PEER, and
    // the kicked client learns the reason.
    c.nodes[0].peer.disconnect_peer(ids[1], false).unwrap();
    c.wait("graceful kick", |c| {
        c.nodes[0].count(PeerEvent::PeerDisconnected(ids[1])) == 1
            && c.nodes[2].count(PeerEvent::PeerDisconnected(ids[1])) == 1
            && c.nodes[3].count(PeerEvent::PeerDisconnected(ids[1])) == 1
            && c.nodes[1].count(PeerEvent::ServerDisconnected(DisconnectReason::Kicked)) == 1
    });
    // Forced kick: silent locally, the others still get REMOVE_PEER, the client learns at once.
    let started = Instant::now();
    c.nodes[0].peer.disconnect_peer(ids[2], true).unwrap();
    c.wait("forced kick", |c| {
        c.nodes[3].count(PeerEvent::PeerDisconnected(ids[2])) == 1
            && c.nodes[2].count(PeerEvent::ServerDisconnected(DisconnectReason::Kicked)) == 1
    });
    assert!(started.elapsed() < Duration::from_secs(2));
    c.settle(
        Duration::from_millis(300),
        |c| c.nodes[0].count(PeerEvent::PeerDisconnected(ids[2])) != 0,
        "disconnect_peer(force = true) emits no local event",
    );
    assert_eq!(c.nodes[0].peer.peer_ids(), vec![ids[3]]);
    assert!(matches!(
        c.nodes[0]
            .peer
            .send(Target::Peer(ids[2]), TransferMode::Reliable, 0, b"x"),
        Err(Error::UnknownTarget(_))
    ));
    assert_eq!(
        c.nodes[1].peer.connection_status(),
        ConnectionStatus::Disconnected
    );
}

fn refusal_of(node: &Node<ENetMultiplayerPeer>) -> Option<DisconnectReason> {
    node.events.iter().find_map(|e| match e {
        PeerEvent::ServerDisconnected(r) | PeerEvent::ConnectionFailed(r) => Some(*r),
        _ => None,
    })
}

#[test]
fn refusing_new_connections_tells_the_client_at_once() {
    let mut server = enet_server().build().unwrap();
    server.set_refuse_new_connections(true);
    assert!(server.is_refusing_new_connections());
    let port = server.local_port().unwrap();
    let mut c = Cluster::new(
        vec![
            Node::new(Box::new(server)),
            Node::new(Box::new(enet_client(port).build().unwrap())),
        ],
        None,
        Duration::from_millis(1),
    );
    let started = Instant::now();
    c.wait("the refusal", |c| refusal_of(&c.nodes[1]).is_some());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        refusal_of(&c.nodes[1]),
        Some(DisconnectReason::Refused(Refusal::NotAccepting))
    );
    assert!(
        c.nodes[0].events.is_empty(),
        "a refused client is never a peer"
    );
    assert_eq!(
        c.nodes[1].peer.connection_status(),
        ConnectionStatus::Disconnected
    );
    // Accepting again lets the next client in.
    c.nodes[0].peer.set_refuse_new_connections(false);
    c.nodes
        .push(Node::new(Box::new(enet_client(port).build().unwrap())));
    c.wait("the accepted client", |c| {
        c.nodes[2].count(PeerEvent::ConnectionSucceeded) == 1
    });
}

#[test]
fn max_clients_refuses_the_next_one() {
    let mut c = enet_cluster(2, enet_server().max_clients(2), |c| c);
    let port = c.nodes[0].peer.local_port().unwrap();
    c.nodes
        .push(Node::new(Box::new(enet_client(port).build().unwrap())));
    c.wait("ServerFull", |c| refusal_of(&c.nodes[3]).is_some());
    assert_eq!(
        refusal_of(&c.nodes[3]),
        Some(DisconnectReason::Refused(Refusal::ServerFull))
    );
    assert_eq!(c.nodes[0].connected_peers().len(), 2);
    for i in 1..=2 {
        assert!(
            c.nodes[i].connected_peers().len() == 2,
            "existing clients unaffected"
        );
    }
}

/// The raw clients here ask for the server's 5 channels (3 + 2 extra).
fn raw(port: u16, id: u32) -> RawClient {
    RawClient::connect_with(port, id, 5)
}

#[test]
fn ids_below_two_and_duplicates_are_refused_with_a_reason() {
    let mut c = meshed(1);
    let port = c.nodes[0].peer.local_port().unwrap();
    let taken = c.nodes[1].id();
    let mut zero = raw(port, 0);
    let mut one = raw(port, 1);
    let mut negative = raw(port, (-5i32) as u32);
    let mut dup = raw(port, taken);
    wait_raw(
        &mut c,
        &mut [&mut zero, &mut one, &mut negative, &mut dup],
        "four refusals",
        deadline(),
        |_, r| r.iter().all(|r| r.disconnect_data().is_some()),
    );
    let code = |r: Refusal| DisconnectReason::Refused(r).code();
    assert_eq!(zero.disconnect_data(), Some(code(Refusal::InvalidId)));
    assert_eq!(one.disconnect_data(), Some(code(Refusal::InvalidId)));
    assert_eq!(negative.disconnect_data(), Some(code(Refusal::InvalidId)));
    assert_eq!(dup.disconnect_data(), Some(code(Refusal::IdInUse)));
    assert_eq!(
        c.nodes[0].connected_peers(),
        vec![taken],
        "the server keeps only the real client"
    );
    assert!(
        c.nodes[1].connected_peers() == vec![1],
        "the real client heard of nobody"
    );
}

#[test]
fn hostile_packets_are_dropped_counted_and_harmless() {
    let mut c = meshed(2);
    let port = c.nodes[0].peer.local_port().unwrap();
    let (a, b) = (c.nodes[1].id(), c.nodes[2].id());
    let evil_id = 4242;
    let mut evil = raw(port, evil_id);
    wait_raw(
        &mut c,
        &mut [&mut evil],
        "the raw client",
        deadline(),
        |c, r| r[0].connected() && c.nodes[1].connected_peers().contains(&evil_id),
    );
    evil.send_reliable(1, &header(a, 0)); // spoofed source
    evil.send_reliable(1, &[1, 2, 3]); // shorter than the header
    evil.send_reliable(0, &header(evil_id, 0)); // config channel from a client
    evil.send_reliable(1, &header(evil_id, 99_999)); // unknown target
    evil.send_reliable(1, &header(evil_id, i32::MIN)); // impossible target
    evil.send_reliable(2, &data_packet(evil_id, b as i32, b"legit"));
    wait_raw(
        &mut c,
        &mut [&mut evil],
        "the legit packet",
        deadline(),
        |c, _| !c.nodes[2].packets.is_empty(),
    );
    c.settle(Duration::from_millis(200), |_| false, "");
    assert_eq!(c.nodes[2].packets.len(), 1);
    assert_eq!(c.nodes[2].packets[0].from, evil_id);
    assert_eq!(&c.nodes[2].packets[0].data[..], b"legit");
    assert!(
        c.nodes[1].packets.is_empty(),
        "the spoofed broadcast reached nobody"
    );
    assert!(
        c.nodes[0].packets.is_empty(),
        "the server got none of the bad packets"
    );
    let server = &c.nodes[0].peer;
    let stats = server.peer_stats(evil_id).unwrap();
    for reason in [
        DropReason::SpoofedSource,
        DropReason::ShortPacket,
        DropReason::ConfigChannel,
        DropReason::UnknownTarget,
        DropReason::InvalidTarget,
    ] {
        assert_eq!(stats.drops.get(reason), 1, "{reason:?}");
        assert_eq!(server.stats().drops.get(reason), 1, "{reason:?}");
    }
    assert_eq!(stats.drops.total(), 5);
    assert_eq!(server.peer_stats(a).unwrap().drops.total(), 0);
    // The honest clients still talk.
    c.nodes[1]
        .peer
        .send(Target::Peer(b), TransferMode::Reliable, 0, b"still fine")
        .unwrap();
    c.wait("honest traffic", |c| c.nodes[2].packets.len() == 2);
}

/// A raw ENet server with the protocol's three channels, for traffic a real server never sends.
fn raw_server() -> (Host, u16) {
    let server = Host::new(
        &HostConfig::server("127.0.0.1:0".parse().unwrap())
            .peer_limit(2)
            .channel_limit(3),
    )
    .unwrap();
    let port = server.local_address().unwrap().port();
    (server, port)
}

#[test]
fn bad_system_messages_at_a_client_are_dropped() {
    // A raw server that sends garbage on the config channel to a real client.
    let (mut server, port) = raw_server();
    let mut client = enet_client(port).build().unwrap();
    let start = Instant::now();
    let mut handle = None;
    let mut events = Vec::new();
    while start.elapsed() < deadline() {
        if let Some(Event::Connect { peer, .. }) = server.service(Duration::from_millis(1)).unwrap()
        {
            handle = Some(peer);
        }
        client.poll().unwrap();
        while let Some(e) = client.pop_event() {
            events.push(e);
        }
        if handle.is_some() && events.contains(&PeerEvent::ConnectionSucceeded) {
            break;
        }
    }
    let handle = handle.expect("connected");
    let me = client.unique_id();
    for bytes in [
        vec![0u8, 0, 0],              // short
        vec![7, 0, 0, 0, 9, 0, 0, 0], // unknown kind
        add_peer(1),                  // ADD_PEER for the server's id
        add_peer(me),                 // ADD_PEER for myself
        remove_peer(77),              // REMOVE_PEER for an unknown peer
        add_peer(50),                 // valid ADD_PEER(50)
        add_peer(50),                 // duplicate ADD_PEER(50)
        vec![5, 0, 0],                // short data packet on channel 1 (sent below)
    ]
    .into_iter()
    .enumerate()
    {
        let channel = if bytes.0 == 7 { 1 } else { 0 };
        server
            .peer_mut(handle)
            .unwrap()
            .send(
                channel,
                RawPacket::new(&bytes.1, PacketFlags::RELIABLE).unwrap(),
            )
            .unwrap();
    }
    server.flush();
    let start = Instant::now();
    while start.elapsed() < deadline() && client.stats().drops.total() < 7 {
        server.service(Duration::from_millis(1)).unwrap();
        client.poll().unwrap();
        while let Some(e) = client.pop_event() {
            events.push(e);
        }
    }
    let drops = client.stats().drops;
    assert_eq!(drops.get(DropReason::BadSystemMessage), 6, "{drops:?}");
    assert_eq!(drops.get(DropReason::ShortPacket), 1, "{drops:?}");
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == PeerEvent::PeerConnected(50))
            .count(),
        1
    );
    assert_eq!(client.get_available_packet_count(), 0);
    assert_eq!(client.connection_status(), ConnectionStatus::Connected);
}

#[test]
fn relay_off_server_still_receives_broadcasts() {
    let server = enet_server().server_relay(false).build().unwrap();
    assert!(!server.is_server_relay_supported());
    let port = server.local_port().unwrap();
    let mut c = Cluster::new(
        vec![
            Node::new(Box::new(server)),
            Node::new(Box::new(enet_client(port).build().unwrap())),
            Node::new(Box::new(enet_client(port).build().unwrap())),
        ],
        None,
        Duration::from_millis(1),
    );
    c.wait("both connected", |c| {
        c.nodes[0].connected_peers().len() == 2
            && c.nodes[1..]
                .iter()
                .all(|n| n.count(PeerEvent::ConnectionSucceeded) == 1)
    });
    assert_eq!(
        c.nodes[1].connected_peers(),
        vec![1],
        "no ADD_PEER without relay"
    );
    let (a, b) = (c.nodes[1].id(), c.nodes[2].id());
    c.nodes[1]
        .peer
        .send(Target::Broadcast, TransferMode::Reliable, 0, b"bcast")
        .unwrap();
    c.nodes[1]
        .peer
        .send(Target::Server, TransferMode::Reliable, 0, b"server")
        .unwrap();
    c.nodes[1]
        .peer
        .send(Target::AllExcept(b), TransferMode::Reliable, 0, b"excl")
        .unwrap_err();
    c.wait("the server's share", |c| c.nodes[0].packets.len() == 2);
    c.settle(
        Duration::from_millis(200),
        |c| !c.nodes[2].packets.is_empty(),
        "nothing is relayed",
    );
    let got: Vec<&[u8]> = c.nodes[0].packets.iter().map(|p| &p.data[..]).collect();
    assert_eq!(got, vec![&b"bcast"[..], &b"server"[..]]);
    assert!(c.nodes[0].packets.iter().all(|p| p.from == a));
    // The server itself can still reach each client.
    c.nodes[0]
        .peer
        .send(Target::Peer(b), TransferMode::Reliable, 0, b"direct")
        .unwrap();
    c.wait("server to client", |c| c.nodes[2].packets.len() == 1);
}

#[test]
fn close_disconnects_everyone_at_once_and_silently() {
    let mut c = meshed(3);
    let started = Instant::now();
    c.nodes[0].peer.close();
    assert_eq!(
        c.nodes[0].peer.connection_status(),
        ConnectionStatus::Disconnected
    );
    c.wait("every client to see the server go", |c| {
        c.nodes[1..].iter().all(|n| {
            n.count(PeerEvent::ServerDisconnected(
                DisconnectReason::ServerClosed,
            )) == 1
        })
    });
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        c.nodes[0]
            .events
            .iter()
            .all(|e| matches!(e, PeerEvent::PeerConnected(_))),
        "close() emits nothing"
    );
    for n in c.nodes[1..].iter_mut() {
        assert_eq!(n.peer.connection_status(), ConnectionStatus::Disconnected);
        assert!(matches!(
            n.peer.send(Target::Server, TransferMode::Reliable, 0, b"x"),
            Err(Error::NotConnected(ConnectionStatus::Disconnected))
        ));
    }
    // Polling a closed peer is harmless.
    c.pump();
}

#[test]
fn a_client_whose_server_vanishes_sees_server_disconnected() {
    // A raw server that accepts, then forgets the client without telling it.
    let (mut server, port) = raw_server();
    let mut client = enet_client(port).peer_timeout(1, 300, 600).build().unwrap();
    let mut events = Vec::new();
    let start = Instant::now();
    let mut handle = None;
    while start.elapsed() < deadline()
        && !events
            .iter()
            .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
    {
        if let Some(Event::Connect { peer, .. }) = server.service(Duration::from_millis(1)).unwrap()
        {
            handle = Some(peer);
        }
        client.poll().unwrap();
        while let Some(e) = client.pop_event() {
            events.push(e);
        }
        if let (Some(h), true) = (handle, events.contains(&PeerEvent::ConnectionSucceeded)) {
            if server.is_valid(h) {
                server.peer_mut(h).unwrap().reset();
            }
        }
    }
    assert_eq!(
        events,
        vec![
            PeerEvent::PeerConnected(1),
            PeerEvent::ConnectionSucceeded,
            PeerEvent::ServerDisconnected(DisconnectReason::Unspecified)
        ]
    );
    assert_eq!(client.connection_status(), ConnectionStatus::Disconnected);
}

#[test]
fn connecting_to_nobody_fails() {
    let port = {
        let s = enet_server().build().unwrap();
        s.local_port().unwrap()
    };
    let mut client = enet_client(port).peer_timeout(1, 300, 600).build().unwrap();
    let start = Instant::now();
    let mut events = Vec::new();
    while start.elapsed() < deadline() && events.is_empty() {
        client.poll_timeout(Duration::from_millis(5)).unwrap();
        while let Some(e) = client.pop_event() {
            events.push(e);
        }
    }
    assert!(
        matches!(events[..], [PeerEvent::ConnectionFailed(_)]),
        "{events:?}"
    );
    assert_eq!(client.connection_status(), ConnectionStatus::Disconnected);
}

#[test]
fn invalid_configuration_is_a_typed_error() {
    for b in [
        enet_server().max_clients(0),
        enet_server().max_clients(4096),
        enet_server().extra_channels(253),
        enet_server().channel_limit(2),
        enet_server().channel_limit(256),
        enet_server().max_packet_size(0),
        enet_server().rate_limit(Some(0)),
    ] {
        assert!(matches!(b.build(), Err(Error::InvalidConfig(_))));
    }
    assert!(matches!(
        ENetMultiplayerPeer::client("no-such-host.invalid", 1).build(),
        Err(Error::Resolve { .. })
    ));
}

#[test]
fn packet_size_limit_and_peer_statistics() {
    let mut c = enet_cluster(2, enet_server().max_packet_size(100), |c| {
        c.max_packet_size(100)
    });
    let ids = c.ids();
    assert_eq!(c.nodes[1].peer.max_packet_size(), 100);
    assert!(matches!(
        c.nodes[1]
            .peer
            .send(Target::Server, TransferMode::Reliable, 0, &[0; 101]),
        Err(Error::PacketTooLarge {
            size: 101,
            max: 100
        })
    ));
    c.nodes[1]
        .peer
        .send(Target::Server, TransferMode::Reliable, 0, &[0; 100])
        .unwrap();
    c.wait("the 100-byte packet", |c| c.nodes[0].packets.len() == 1);
    let server = &c.nodes[0].peer;
    let st = server.peer_stats(ids[1]).unwrap();
    let client = &c.nodes[1].peer;
    assert_eq!(st.address.port(), client.local_port().unwrap());
    assert!(st.packets_received >= 1 && st.bytes_received >= 108);
    assert!(server.peer_stats(12345).is_err());
    let cs = client.peer_stats(1).unwrap();
    assert_eq!(cs.address.port(), server.local_port().unwrap());
    assert!(cs.packets_sent >= 1);
}

#[test]
fn boxed_peers_switch_at_run_time() {
    let server = enet_server().extra_channels(2).build().unwrap();
    let port = server.local_port().unwrap();
    let mut nodes: Vec<Node> = vec![Node::new(Box::new(server) as Box<dyn MultiplayerPeer>)];
    for _ in 0..3 {
        let client = enet_client(port).extra_channels(2).build().unwrap();
        nodes.push(Node::new(Box::new(client) as Box<dyn MultiplayerPeer>));
    }
    let mut c: Cluster = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();
    suite::every_target_with_every_mode(&mut c);
}

#[test]
fn data_enet_rejects_is_counted_by_reason() {
    // The client allows bigger packets than the server: the server's ENet rejects them before
    // any event, and the server counts them per peer and in total.
    let mut c = enet_cluster(1, enet_server().max_packet_size(100), |c| {
        c.max_packet_size(1000)
    });
    let id = c.nodes[1].id();
    c.nodes[1]
        .peer
        .send(Target::Server, TransferMode::Unreliable, 0, &[7; 500])
        .unwrap();
    c.nodes[1]
        .peer
        .send(Target::Server, TransferMode::Reliable, 0, b"small")
        .unwrap();
    c.wait("the small packet", |c| c.nodes[0].packets.len() == 1);
    assert_eq!(&c.nodes[0].packets[0].data[..], b"small");
    let per_peer = c.nodes[0].peer.peer_stats(id).unwrap().drops;
    assert!(per_peer.get(DropReason::Oversize) >= 1, "{per_peer:?}");
    assert_eq!(
        c.nodes[0].peer.stats().drops.get(DropReason::Oversize),
        per_peer.get(DropReason::Oversize)
    );
    assert!(c.nodes[0].peer.stats().handshakes >= 1);
}

#[test]
fn servers_ask_for_4_mib_socket_buffers_and_the_size_is_an_option() {
    let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .expect("Linux's rmem_max");
    let server = enet_server().build().unwrap();
    let got = server.socket_buffers().unwrap();
    // Linux reports twice what it grants, up to its cap.
    let want = enet_multiplayer::DEFAULT_SERVER_SOCKET_BUFFER;
    assert_eq!(got.receive, 2 * want.min(cap), "{got:?}");
    let small = enet_server().socket_buffer_size(64 * 1024).build().unwrap();
    assert_eq!(small.socket_buffers().unwrap().receive, 2 * 64 * 1024);
    // Clients keep ENet's 256 KiB unless asked.
    let client = enet_client(server.local_port().unwrap()).build().unwrap();
    assert_eq!(
        client.socket_buffers().unwrap().receive,
        2 * (256 * 1024).min(cap)
    );
}

/// A client that stops acknowledging (it is never serviced again) while another floods
/// reliable broadcasts: past the server's queue cap it is disconnected as a slow consumer with
/// its reason code, counted, the others are told, and the flood goes on reaching the honest
/// client in full, without the server's memory growing with what the stuck client never took.
/// (With `max_queued_bytes(CAP)`, no cap, the process grows by about 1 KiB per packet.)
#[test]
fn a_client_that_stops_acknowledging_is_disconnected_as_a_slow_consumer() {
    use support::robust::rss_kib;
    const CAP: usize = 256 << 10;
    const PACKETS: usize = 80_000;
    const SIZE: usize = 1000;
    let mut server = enet_server().max_queued_bytes(CAP).build().unwrap();
    let port = server.local_port().unwrap();
    let mut honest = enet_client(port).build().unwrap();
    let mut flooder = enet_client(port).build().unwrap();
    let mut stuck = RawClient::connect(port, 777);
    let mut honest_got = 0usize;
    let mut honest_events = Vec::new();
    let mut server_events = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    let mut poll_all = |server: &mut ENetMultiplayerPeer,
                        honest: &mut ENetMultiplayerPeer,
                        flooder: &mut ENetMultiplayerPeer,
                        honest_got: &mut usize| {
        server.poll().unwrap();
        honest.poll().unwrap();
        flooder.poll().unwrap();
        while let Some(e) = server.pop_event() {
            server_events.push(e);
        }
        // The server's copy of each broadcast, taken as a game server takes it.
        while server.get_packet().is_some() {}
        while let Some(e) = honest.pop_event() {
            honest_events.push(e);
        }
        while let Some(p) = honest.get_packet() {
            assert_eq!(p.data.len(), SIZE);
            *honest_got += 1;
        }
        while flooder.get_packet().is_some() {}
        while flooder.pop_event().is_some() {}
    };
    // Everyone in, and the stuck client told of the others (then it is never serviced again).
    while server.peer_ids().len() < 3 || stuck.received().len() < 2 {
        poll_all(&mut server, &mut honest, &mut flooder, &mut honest_got);
        stuck.pump();
        assert!(Instant::now() < end, "clients did not connect");
    }
    let stuck_id = 777;
    let rss_before = rss_kib();
    let payload = vec![0x5a; SIZE];
    // The process's size once a quarter of the flood is through (the stuck client long gone,
    // the in-flight window and the allocator's pools at their size).
    let mut rss_quarter = None;
    let mut sent = 0;
    while sent < PACKETS || honest_got < PACKETS {
        assert!(
            Instant::now() < end,
            "flood: {sent} sent, {honest_got} reached the honest client"
        );
        // Paced: at most 2000 in flight to the honest client (ENet walks its unacknowledged
        // list per acknowledgement; thousands more would only slow the test down).
        while sent < PACKETS && sent - honest_got < 2000 {
            flooder
                .send(Target::Broadcast, TransferMode::Reliable, 0, &payload)
                .unwrap();
            sent += 1;
        }
        poll_all(&mut server, &mut honest, &mut flooder, &mut honest_got);
        if rss_quarter.is_none() && honest_got >= PACKETS / 4 {
            rss_quarter = Some(rss_kib());
        }
    }
    let rss_end = rss_kib();
    let grown_kib = rss_end.saturating_sub(rss_before);
    let late_kib = rss_end.saturating_sub(rss_quarter.unwrap());
    let stats = server.stats();
    assert_eq!(stats.slow_consumers, 1, "{stats:?}");
    assert!(
        server_events.contains(&PeerEvent::PeerDisconnected(stuck_id)),
        "{server_events:?}"
    );
    assert!(
        honest_events.contains(&PeerEvent::PeerDisconnected(stuck_id)),
        "the honest client is told: {honest_events:?}"
    );
    assert!(!server.peer_ids().contains(&stuck_id));
    assert_eq!(
        honest_got, PACKETS,
        "every packet reached the honest client"
    );
    // 80 MB went through: had the stuck client's share stayed queued, the last three quarters
    // alone would have grown the process by 60 MB.
    assert!(
        late_kib < 4 << 10,
        "the process grew by {late_kib} KiB over the last 60 MB of a flood with a stuck client \
         ({grown_kib} KiB in all)"
    );
    // Serviced again, the stuck client learns why.
    let start = Instant::now();
    while stuck.disconnect_data().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no disconnect reached the stuck client"
        );
        stuck.pump();
        server.poll().unwrap();
    }
    assert_eq!(
        stuck.disconnect_data(),
        Some(DisconnectReason::SlowConsumer.code())
    );
    eprintln!(
        "slow consumer: process grew by {grown_kib} KiB over {PACKETS} x {SIZE} B, \
         {late_kib} KiB over the last three quarters"
    );
}

/// `ServerPackets::Matching`: the server's application gets only the packets the filter
/// accepts (the rest counted, not queued); the relaying is untouched.
#[test]
fn server_packets_matching_keeps_the_rest_from_the_application() {
    use enet_multiplayer::ServerPackets;
    let mut c = enet_cluster(
        2,
        enet_server().server_packets(ServerPackets::Matching(|p| p.first() == Some(&9))),
        |c| c,
    );
    for first in [8u8, 9, 8] {
        c.nodes[1]
            .peer
            .send(Target::Broadcast, TransferMode::Reliable, 0, &[first, 1, 2])
            .unwrap();
    }
    c.wait("the other client has all three", |c| {
        c.nodes[2].packets.len() == 3
    });
    c.wait("the server has its one", |c| !c.nodes[0].packets.is_empty());
    c.settle(
        Duration::from_millis(100),
        |c| c.nodes[0].packets.len() > 1,
        "the server's application gets only the matching packet",
    );
    assert_eq!(&c.nodes[0].packets[0].data[..], &[9, 1, 2]);
    assert_eq!(c.nodes[0].peer.stats().not_for_application, 2);
}

/// `drain()`: new connections refused, every client told the server is closing (ENet and
/// WebSocket alike), each gone once it acknowledged, the packets queued before it delivered.
#[test]
fn drain_tells_every_client_and_waits_for_them() {
    use enet_multiplayer::{WebSocketListen, WebSocketMultiplayerPeer};
    use std::net::Ipv4Addr;
    let mut server = enet_server()
        .websocket(WebSocketListen::new(0).bind_address(Ipv4Addr::LOCALHOST))
        .build()
        .unwrap();
    let port = server.local_port().unwrap();
    let ws_port = server.websocket_port().unwrap();
    let mut enet = enet_client(port).build().unwrap();
    let mut ws = WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{ws_port}/"))
        .build()
        .unwrap();
    let mut enet_events = Vec::new();
    let mut ws_events = Vec::new();
    let mut server_events = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    let mut pump = |server: &mut ENetMultiplayerPeer,
                    enet: &mut ENetMultiplayerPeer,
                    ws: &mut WebSocketMultiplayerPeer,
                    enet_events: &mut Vec<PeerEvent>,
                    ws_events: &mut Vec<PeerEvent>| {
        assert!(Instant::now() < end, "timed out");
        server.poll_timeout(Duration::from_millis(1)).unwrap();
        enet.poll().unwrap();
        ws.poll().unwrap();
        while let Some(e) = server.pop_event() {
            server_events.push(e);
        }
        while let Some(e) = enet.pop_event() {
            enet_events.push(e);
        }
        while let Some(e) = ws.pop_event() {
            ws_events.push(e);
        }
    };
    while server.peer_ids().len() < 2
        || !enet_events.contains(&PeerEvent::ConnectionSucceeded)
        || !ws_events.contains(&PeerEvent::ConnectionSucceeded)
    {
        pump(
            &mut server,
            &mut enet,
            &mut ws,
            &mut enet_events,
            &mut ws_events,
        );
    }
    // Something queued just before the drain still arrives.
    server
        .send(Target::Broadcast, TransferMode::Reliable, 0, b"last words")
        .unwrap();
    assert_eq!(server.drain(), 2);
    assert!(server.is_refusing_new_connections());
    let mut late = enet_client(port).build().unwrap();
    let mut late_events = Vec::new();
    let mut enet_got = Vec::new();
    let mut ws_got = Vec::new();
    while !server.peer_ids().is_empty()
        || !enet_events
            .iter()
            .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
        || !ws_events
            .iter()
            .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
        || !late_events.iter().any(|e| {
            matches!(
                e,
                PeerEvent::ServerDisconnected(_) | PeerEvent::ConnectionFailed(_)
            )
        })
    {
        pump(
            &mut server,
            &mut enet,
            &mut ws,
            &mut enet_events,
            &mut ws_events,
        );
        late.poll().unwrap();
        while let Some(e) = late.pop_event() {
            late_events.push(e);
        }
        while let Some(p) = enet.get_packet() {
            enet_got.push(p.data.to_vec());
        }
        while let Some(p) = ws.get_packet() {
            ws_got.push(p.data.to_vec());
        }
    }
    let closed = PeerEvent::ServerDisconnected(DisconnectReason::ServerClosed);
    assert!(enet_events.contains(&closed), "{enet_events:?}");
    assert!(ws_events.contains(&closed), "{ws_events:?}");
    assert_eq!(enet_got, vec![b"last words".to_vec()]);
    assert_eq!(ws_got, vec![b"last words".to_vec()]);
    let refused = DisconnectReason::Refused(Refusal::NotAccepting);
    assert!(
        late_events.contains(&PeerEvent::ServerDisconnected(refused))
            || late_events.contains(&PeerEvent::ConnectionFailed(refused)),
        "{late_events:?}"
    );
    assert_eq!(
        server_events
            .iter()
            .filter(|e| matches!(e, PeerEvent::PeerDisconnected(_)))
            .count(),
        2
    );
    assert_eq!(server.refusals().not_accepting, 1);
    server.close();
}
