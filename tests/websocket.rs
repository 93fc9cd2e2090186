//! The WebSocket transport over real TCP sockets on 127.0.0.1: Rust server and clients, the
//! mixed ENet + WebSocket room, TLS, subprotocols, and what Godot's framing makes of bad input.

mod support;

use enet_multiplayer::relay::DropReason;
use enet_multiplayer::websocket::frame::{self, Kind, WsHeader, WS_HEADER_LEN};
use enet_multiplayer::websocket::{close_code, GODOT_MAX_PAYLOAD};
use enet_multiplayer::{
    DisconnectReason, ENetMultiplayerPeer, Error, MultiplayerPeer, PeerEvent, PeerId, Refusal,
    Target, TlsIdentity, TotalStats, TransferMode, WebSocketListen, WebSocketMultiplayerPeer,
    WebSocketStats,
};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::cluster::{deadline, enet_client, enet_server, Cluster, Node};
use support::raw::RawClient;
use tungstenite::{Message, WebSocket};

/// A peer of these tests: either transport, with the server's counters when it is one.
trait Peer: MultiplayerPeer {
    fn counts(&self) -> Option<(TotalStats, WebSocketStats)>;
    fn ids(&self) -> Vec<PeerId>;
}

impl Peer for ENetMultiplayerPeer {
    fn counts(&self) -> Option<(TotalStats, WebSocketStats)> {
        Some((self.stats(), self.websocket_stats()?))
    }
    fn ids(&self) -> Vec<PeerId> {
        self.peer_ids()
    }
}

impl Peer for WebSocketMultiplayerPeer {
    fn ids(&self) -> Vec<PeerId> {
        self.peer_ids()
    }
    fn counts(&self) -> Option<(TotalStats, WebSocketStats)> {
        self.is_server()
            .then(|| (self.stats(), self.websocket_stats().unwrap_or_default()))
    }
}

type Room = Cluster<dyn Peer>;

/// Held by the tests that measure the process's RSS or allocate a lot, so that they do not
/// run at the same time (the test threads share one process).
static MEMORY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn node(p: impl Peer + 'static) -> Node<dyn Peer> {
    Node::new(Box::new(p))
}

fn server_counts(c: &Room) -> (TotalStats, WebSocketStats) {
    c.nodes[0].peer.counts().expect("node 0 is a server")
}

fn localhost() -> std::net::Ipv4Addr {
    "127.0.0.1".parse().unwrap()
}

fn ws_server() -> enet_multiplayer::WebSocketServerBuilder {
    WebSocketMultiplayerPeer::server(0).bind_address(localhost())
}

fn ws_client(port: u16) -> WebSocketMultiplayerPeer {
    WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{port}"))
        .build()
        .expect("ws client")
}

fn listen() -> WebSocketListen {
    WebSocketListen::new(0).bind_address(localhost())
}

/// A mixed server (node 0) with `enet` ENet clients then `ws` WebSocket clients, meshed.
fn mixed(enet: usize, ws: usize, listen: WebSocketListen) -> (Room, u16, u16) {
    let server = enet_server()
        .websocket(listen)
        .build()
        .expect("mixed server");
    let (ep, wp) = (
        server.local_port().unwrap(),
        server.websocket_port().unwrap(),
    );
    let mut nodes = vec![node(server)];
    for _ in 0..enet {
        nodes.push(node(enet_client(ep).build().unwrap()));
    }
    for _ in 0..ws {
        nodes.push(node(ws_client(wp)));
    }
    let mut c: Room = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();
    (c, ep, wp)
}

/// (receiver, sender id, channel, mode, payload)
type Delivery = (usize, PeerId, u8, TransferMode, Vec<u8>);

/// Every node sends to every target kind in every mode; every receiver gets exactly what
/// Godot's rules say, once, with the true sender; what touches WebSocket arrives reliable on
/// channel 0. `is_ws[i]`: node i is a WebSocket client.
fn every_pair_every_target(c: &mut Room, is_ws: &[bool]) {
    for n in c.nodes.iter_mut() {
        n.take_packets();
    }
    let ids = c.ids();
    let mut expected = BTreeSet::new();
    for sender in 0..ids.len() {
        let mut targets = vec![Target::Broadcast];
        for (j, &id) in ids.iter().enumerate().skip(1) {
            if j != sender {
                targets.push(Target::Peer(id));
                targets.push(Target::AllExcept(id));
            }
        }
        if sender != 0 {
            targets.push(Target::Server);
        }
        for target in targets {
            for mode in TransferMode::ALL {
                let payload = format!("{sender}>{target:?}/{mode:?}").into_bytes();
                c.nodes[sender]
                    .peer
                    .send(target, mode, 0, &payload)
                    .unwrap_or_else(|e| panic!("node {sender} to {target:?}: {e}"));
                for r in 0..ids.len() {
                    let gets = r != sender
                        && match target {
                            Target::Broadcast => true,
                            Target::Server => r == 0,
                            Target::Peer(x) => ids[r] == x,
                            Target::AllExcept(x) => ids[r] != x,
                        };
                    if gets {
                        let via_ws = is_ws[sender] || is_ws[r];
                        let m = if via_ws { TransferMode::Reliable } else { mode };
                        expected.insert((r, ids[sender], 0u8, m, payload.clone()));
                    }
                }
            }
        }
    }
    let seen = |c: &Room| -> Vec<Delivery> {
        let mut v = Vec::new();
        for (i, n) in c.nodes.iter().enumerate() {
            for p in &n.packets {
                v.push((i, p.from, p.channel, p.mode, p.data.to_vec()));
            }
        }
        v
    };
    c.wait("every delivery", |c| {
        let got: BTreeSet<Delivery> = seen(c).into_iter().collect();
        expected.is_subset(&got)
    });
    c.settle(Duration::from_millis(150), |_| false, "");
    let got = seen(c);
    let got_set: BTreeSet<Delivery> = got.iter().cloned().collect();
    assert_eq!(got_set, expected, "deliveries differ from Godot's rules");
    for d in &expected {
        assert_eq!(
            got.iter().filter(|g| *g == d).count(),
            1,
            "{d:?} not exactly once"
        );
    }
    for n in c.nodes.iter_mut() {
        n.take_packets();
    }
}

#[test]
fn websocket_clients_on_a_websocket_server() {
    let server = ws_server().build().unwrap();
    let port = server.local_port().unwrap();
    let mut nodes = vec![node(server)];
    for _ in 0..3 {
        nodes.push(node(ws_client(port)));
    }
    let mut c: Room = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();
    let ids = c.ids();
    assert_eq!(ids[0], 1);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 4, "distinct ids");
    for n in &c.nodes[1..] {
        assert!(n.peer.ids().contains(&1));
        assert_eq!(n.count(PeerEvent::ConnectionSucceeded), 1);
        assert_eq!(n.events[0], PeerEvent::PeerConnected(1), "the server first");
    }
    every_pair_every_target(&mut c, &[false, true, true, true]);

    // 2000 reliable in order, client to client through the relay, and a 60 KB packet.
    let (a, b) = (ids[1], ids[2]);
    for i in 0..2000u32 {
        c.nodes[1]
            .peer
            .send(Target::Peer(b), TransferMode::Reliable, 0, &i.to_le_bytes())
            .unwrap();
    }
    let big: Vec<u8> = (0..60_000u32).map(|i| (i * 7) as u8).collect();
    c.nodes[2]
        .peer
        .send(Target::Peer(a), TransferMode::Unreliable, 0, &big)
        .unwrap();
    c.wait("2000 in order and the big one", |c| {
        c.nodes[2].packets.len() >= 2000 && !c.nodes[1].packets.is_empty()
    });
    let order: Vec<u32> = c.nodes[2]
        .take_packets()
        .iter()
        .map(|p| u32::from_le_bytes(p.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(order, (0..2000).collect::<Vec<_>>());
    let p = &c.nodes[1].packets[0];
    assert_eq!(
        (p.from, p.mode, &p.data[..]),
        (b, TransferMode::Reliable, &big[..])
    );

    // One leaves: the server and the others see it once.
    c.nodes[3].peer.close();
    let gone = ids[3];
    c.wait("the departure", |c| {
        (0..3).all(|i| c.nodes[i].count(PeerEvent::PeerDisconnected(gone)) == 1)
    });
    c.settle(
        Duration::from_millis(200),
        |c| (0..3).any(|i| c.nodes[i].count(PeerEvent::PeerDisconnected(gone)) > 1),
        "a departure reported twice",
    );
}

#[test]
fn mixed_room_every_pair_both_ways() {
    let (mut c, ep, wp) = mixed(2, 2, listen());
    every_pair_every_target(&mut c, &[false, false, false, true, true]);

    // Late joiners of each transport; one of each leaves.
    c.nodes.push(node(enet_client(ep).build().unwrap()));
    c.nodes.push(node(ws_client(wp)));
    c.wait_mesh();
    let leaving = [c.nodes[1].id(), c.nodes[3].id()];
    c.nodes[1].peer.close();
    c.nodes[3].peer.close();
    let stay = [0usize, 2, 4, 5, 6];
    c.wait("both departures everywhere", |c| {
        stay.iter().all(|&i| {
            leaving
                .iter()
                .all(|&id| c.nodes[i].count(PeerEvent::PeerDisconnected(id)) == 1)
        })
    });
    let nodes = std::mem::take(&mut c.nodes);
    let mut c: Room = Cluster::new(
        nodes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| stay.contains(i))
            .map(|(_, n)| n)
            .collect(),
        None,
        Duration::from_millis(1),
    );
    every_pair_every_target(&mut c, &[false, false, true, false, true]);
}

#[test]
fn mixed_room_limits_and_ids() {
    let (mut c, ep, _) = mixed(1, 1, listen());
    let (enet_id, ws_id) = (c.nodes[1].id(), c.nodes[2].id());
    // An ENet client claiming the WebSocket client's id is refused as id-in-use.
    let mut raw = RawClient::connect(ep, ws_id);
    let start = Instant::now();
    let mut refused = None;
    while refused.is_none() && start.elapsed() < deadline() {
        c.pump();
        raw.pump();
        refused = raw.events.iter().find_map(|e| match e {
            enet_wrapper::Event::Disconnect { data, .. } => Some(*data),
            _ => None,
        });
    }
    assert_eq!(
        refused.map(DisconnectReason::from_code),
        Some(DisconnectReason::Refused(Refusal::IdInUse))
    );

    // ENet to WebSocket: what does not fit a Godot WebSocket client is dropped and counted,
    // what fits arrives; the ENet receiver of the same broadcast gets both.
    let fits = vec![1u8; GODOT_MAX_PAYLOAD];
    let too_big = vec![2u8; GODOT_MAX_PAYLOAD + 1];
    for p in [&fits, &too_big] {
        c.nodes[1]
            .peer
            .send(Target::Broadcast, TransferMode::Reliable, 0, p)
            .unwrap();
    }
    c.wait("the fitting packet", |c| {
        c.nodes[2].packets.len() == 1 && c.nodes[0].packets.len() == 2
    });
    c.settle(
        Duration::from_millis(200),
        |c| c.nodes[2].packets.len() > 1,
        "an oversized packet reached the WebSocket client",
    );
    assert_eq!(c.nodes[2].packets[0].data.len(), GODOT_MAX_PAYLOAD);
    let (total, ws) = server_counts(&c);
    assert_eq!(ws.drops.get(DropReason::TooLargeForWebSocket), 1);
    assert_eq!(total.drops.get(DropReason::TooLargeForWebSocket), 1);
    let sender = c.nodes[0].peer.unique_id();
    let _ = sender;
    // The server itself: to that WebSocket client alone it is an error.
    let err = c.nodes[0]
        .peer
        .send(Target::Peer(ws_id), TransferMode::Reliable, 0, &too_big)
        .unwrap_err();
    assert!(matches!(err, Error::PacketTooLarge { max, .. } if max == GODOT_MAX_PAYLOAD));
    // A broadcast of the server's own: the ENet client gets it, the WebSocket one is counted.
    c.nodes[0]
        .peer
        .send(Target::Broadcast, TransferMode::Reliable, 0, &too_big)
        .unwrap();
    c.wait("the ENet client gets the big broadcast", |c| {
        c.nodes[1]
            .packets
            .iter()
            .any(|p| p.data.len() == too_big.len())
    });
    assert_eq!(
        server_counts(&c)
            .1
            .drops
            .get(DropReason::TooLargeForWebSocket),
        2
    );
    assert!(c.nodes[2]
        .packets
        .iter()
        .all(|p| p.data.len() <= GODOT_MAX_PAYLOAD));
    let _ = enet_id;
}

/// A raw WebSocket client over a blocking std socket (read timeout set), for what a well
/// behaved client never sends.
fn raw_ws<P: MultiplayerPeer + ?Sized>(port: u16, c: &mut Cluster<P>) -> WebSocket<TcpStream> {
    use tungstenite::handshake::HandshakeError;
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let start = Instant::now();
    let mut step = tungstenite::client(format!("ws://127.0.0.1:{port}/"), tcp);
    loop {
        match step {
            Ok((ws, _)) => return ws,
            Err(HandshakeError::Interrupted(mid)) => {
                assert!(start.elapsed() < deadline(), "raw upgrade timed out");
                c.pump();
                step = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => panic!("raw upgrade: {e}"),
        }
    }
}

/// Reads messages from a raw client until `n` arrived (or fails after the deadline), pumping
/// the cluster meanwhile.
fn raw_read(ws: &mut WebSocket<TcpStream>, c: &mut Room, n: usize) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < n {
        assert!(start.elapsed() < deadline(), "raw client got only {got:?}");
        c.pump();
        match ws.read() {
            Ok(Message::Binary(b)) => got.push(b.to_vec()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("raw client: {e}"),
        }
    }
    got
}

#[test]
fn sys_id_comes_first_then_godots_order() {
    let (mut c, _, wp) = mixed(1, 1, listen());
    let others: BTreeSet<PeerId> = [c.nodes[1].id(), c.nodes[2].id()].into();
    let mut ws = raw_ws(wp, &mut c);
    let got = raw_read(&mut ws, &mut c, 4);
    let head = |m: &Vec<u8>| {
        (
            WsHeader::decode(m).unwrap().kind,
            frame::system_peer(m).unwrap(),
        )
    };
    let (k0, me) = head(&got[0]);
    assert_eq!(k0, Kind::SysId);
    assert!(me >= 2 && !others.contains(&me));
    assert_eq!(head(&got[1]), (Kind::SysAdd, 1));
    let announced: BTreeSet<PeerId> = got[2..]
        .iter()
        .map(|m| {
            let (k, id) = head(m);
            assert_eq!(k, Kind::SysAdd);
            id
        })
        .collect();
    assert_eq!(announced, others);
    c.wait("the others hear of the raw client", |c| {
        c.nodes[1..]
            .iter()
            .all(|n| n.connected_peers().contains(&me))
    });

    // Raw clients may claim any sender and target any id: the server drops what Godot's
    // rules forbid, counted by reason, and relays the rest with the true sender.
    let send = |ws: &mut WebSocket<TcpStream>, from: u32, to: i32, body: &[u8]| {
        ws.send(Message::Binary(frame::data_message(from, to, body).into()))
            .unwrap();
    };
    send(&mut ws, 0, 1, b"before my id");
    send(&mut ws, 12345, 0, b"spoofed");
    send(&mut ws, me, 999_999, b"to nobody");
    ws.send(Message::Binary(
        frame::system_message(Kind::SysAdd, 5).to_vec().into(),
    ))
    .unwrap();
    ws.send(Message::Binary(vec![0u8; 4].into())).unwrap();
    ws.send(Message::Text("text".into())).unwrap();
    send(&mut ws, me, 0, b"fine");
    c.wait("the fine packet everywhere", |c| {
        c.nodes
            .iter()
            .all(|n| n.packets.iter().any(|p| &p.data[..] == b"fine"))
    });
    for n in &c.nodes {
        assert_eq!(n.packets.len(), 1, "only the fine packet: {:?}", n.packets);
        assert_eq!(n.packets[0].from, me);
    }
    let (total, ws_counts) = server_counts(&c);
    for (reason, n) in [
        (DropReason::SpoofedSource, 2),
        (DropReason::UnknownTarget, 1),
        (DropReason::ConfigChannel, 1),
        (DropReason::ShortPacket, 1),
        (DropReason::TextMessage, 1),
    ] {
        assert_eq!(total.drops.get(reason), n, "{reason:?} in total");
        assert_eq!(ws_counts.drops.get(reason), n, "{reason:?} on websocket");
    }
}

#[test]
fn drop_counts_per_reason_and_transport() {
    let server = enet_server().websocket(listen()).build().unwrap();
    let (_ep, wp) = (
        server.local_port().unwrap(),
        server.websocket_port().unwrap(),
    );
    let mut c0: Cluster<ENetMultiplayerPeer> = Cluster::new(
        vec![Node::new(Box::new(server))],
        None,
        Duration::from_millis(1),
    );
    let mut ws = raw_ws(wp, &mut c0);
    let start = Instant::now();
    while c0.nodes[0].peer.peer_ids().is_empty() {
        assert!(start.elapsed() < deadline());
        c0.pump();
    }
    let me = c0.nodes[0].peer.peer_ids()[0];
    let send = |ws: &mut WebSocket<TcpStream>, from: u32, to: i32| {
        ws.send(Message::Binary(frame::data_message(from, to, b"x").into()))
            .unwrap();
    };
    send(&mut ws, 0, 1);
    send(&mut ws, me + 1, 1);
    send(&mut ws, me, 777);
    ws.send(Message::Binary(
        frame::system_message(Kind::SysDel, 3).to_vec().into(),
    ))
    .unwrap();
    ws.send(Message::Binary(vec![0u8; 3].into())).unwrap();
    ws.send(Message::Text("t".into())).unwrap();
    send(&mut ws, me, 1);
    let start = Instant::now();
    while c0.nodes[0].packets.is_empty() {
        assert!(start.elapsed() < deadline());
        c0.pump();
    }
    let s = c0.nodes[0].peer.stats();
    let w = c0.nodes[0].peer.websocket_stats().unwrap();
    let per_peer = c0.nodes[0].peer.peer_stats(me).unwrap().drops;
    for (reason, n) in [
        (DropReason::SpoofedSource, 2),
        (DropReason::UnknownTarget, 1),
        (DropReason::ConfigChannel, 1),
        (DropReason::ShortPacket, 1),
        (DropReason::TextMessage, 1),
    ] {
        assert_eq!(s.drops.get(reason), n, "{reason:?} total");
        assert_eq!(w.drops.get(reason), n, "{reason:?} websocket");
        assert_eq!(per_peer.get(reason), n, "{reason:?} of the peer");
    }
    assert!(c0.nodes[0].peer.is_websocket_peer(me));
    assert_eq!(w.packets_in, 7);
    assert_eq!(c0.nodes[0].packets.len(), 1);
}

#[test]
fn kick_close_and_refusal_reach_websocket_clients() {
    let server = ws_server().max_clients(2).build().unwrap();
    let port = server.local_port().unwrap();
    let mut nodes = vec![node(server)];
    for _ in 0..2 {
        nodes.push(node(ws_client(port)));
    }
    let mut c: Room = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();
    // Full: a third is refused and learns why.
    c.nodes.push(node(ws_client(port)));
    c.wait("the refusal", |c| !c.nodes[3].events.is_empty());
    assert_eq!(
        c.nodes[3].events,
        [PeerEvent::ConnectionFailed(DisconnectReason::Refused(
            Refusal::ServerFull
        ))]
    );
    c.nodes.pop();
    // A kick: the client learns it was kicked; the server and the other see it leave once.
    let kicked = c.nodes[1].id();
    c.nodes[0].peer.disconnect_peer(kicked, false).unwrap();
    c.wait("the kick", |c| {
        c.nodes[1].count(PeerEvent::ServerDisconnected(DisconnectReason::Kicked)) == 1
            && c.nodes[0].count(PeerEvent::PeerDisconnected(kicked)) == 1
            && c.nodes[2].count(PeerEvent::PeerDisconnected(kicked)) == 1
    });
    // A forced kick is silent on the server, heard by the others.
    c.nodes.push(node(ws_client(port)));
    c.wait("the newcomer", |c| {
        c.nodes[3].id() != 0 && c.nodes[3].connected_peers().len() == 2
    });
    let forced = c.nodes[3].id();
    c.nodes[0].peer.disconnect_peer(forced, true).unwrap();
    c.wait("the forced kick", |c| {
        c.nodes[2].count(PeerEvent::PeerDisconnected(forced)) == 1
            && c.nodes[3]
                .events
                .iter()
                .any(|e| matches!(e, PeerEvent::ServerDisconnected(_)))
    });
    assert_eq!(c.nodes[0].count(PeerEvent::PeerDisconnected(forced)), 0);
    // close(): the client hears the server closed.
    c.nodes[0].peer.close();
    c.wait("server closed", |c| {
        c.nodes[2].count(PeerEvent::ServerDisconnected(
            DisconnectReason::ServerClosed,
        )) == 1
    });
}

#[test]
fn wss_with_a_self_signed_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let identity = TlsIdentity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
    let server = ws_server().tls(identity).build().unwrap();
    let port = server.local_port().unwrap();
    let client = |trust: bool| {
        let b = WebSocketMultiplayerPeer::client(format!("wss://localhost:{port}"));
        if trust {
            b.tls_root_certificate(cert_pem.as_bytes()).build().unwrap()
        } else {
            let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            b.tls_root_certificate(other.cert.pem().as_bytes())
                .build()
                .unwrap()
        }
    };
    let mut nodes = vec![node(server)];
    nodes.push(node(client(true)));
    nodes.push(node(client(true)));
    let mut c: Room = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();
    every_pair_every_target(&mut c, &[false, true, true]);
    // A client that does not trust the certificate never connects.
    c.nodes.push(node(client(false)));
    c.wait("the untrusting client fails", |c| {
        !c.nodes[3].events.is_empty()
    });
    assert!(matches!(
        c.nodes[3].events[0],
        PeerEvent::ConnectionFailed(_)
    ));
    assert_eq!(c.nodes[0].peer.ids().len(), 2);
}

#[test]
fn subprotocols_follow_godots_rule() {
    let server = ws_server().protocols(["godot-game"]).build().unwrap();
    let port = server.local_port().unwrap();
    let with = |p: &[&str]| {
        WebSocketMultiplayerPeer::client(format!("ws://127.0.0.1:{port}"))
            .protocols(p.iter().copied())
            .build()
            .unwrap()
    };
    let mut nodes = vec![node(server)];
    nodes.push(node(with(&["other", "godot-game"])));
    nodes.push(node(with(&[])));
    nodes.push(node(with(&["other"])));
    let mut c: Room = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait("two accepted, one refused", |c| {
        c.nodes[1].count(PeerEvent::ConnectionSucceeded) == 1
            && c.nodes[2].count(PeerEvent::ConnectionSucceeded) == 1
            && !c.nodes[3].events.is_empty()
    });
    assert!(matches!(
        c.nodes[3].events[0],
        PeerEvent::ConnectionFailed(_)
    ));
}

/// Bytes straight onto a TCP socket (no WebSocket client library), for garbage.
fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    s
}

/// Whether the server closed `s` (EOF or reset), pumping meanwhile, within the deadline.
fn closed_by_server(s: &mut TcpStream, c: &mut Room) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < deadline() {
        c.pump();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn garbage_and_hostile_frames_close_only_their_connection() {
    let server = ws_server()
        .listen(
            listen()
                .handshake_timeout(Duration::from_millis(300))
                .max_message_size(1024),
        )
        .build()
        .unwrap();
    let port = server.local_port().unwrap();
    let mut nodes = vec![node(server)];
    nodes.push(node(ws_client(port)));
    nodes.push(node(ws_client(port)));
    let mut c: Room = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();

    // Garbage instead of an upgrade request.
    let mut g = tcp(port);
    g.write_all(b"\x16\x03\x01garbage that is not HTTP\r\n\r\n")
        .unwrap();
    assert!(
        closed_by_server(&mut g, &mut c),
        "garbage upgrade not closed"
    );
    // An upgrade that never finishes: cut at the handshake timeout.
    let mut slow = tcp(port);
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(
        closed_by_server(&mut slow, &mut c),
        "half an upgrade not cut"
    );
    // After the upgrade: an unmasked frame (a protocol violation for a server).
    let mut ws = raw_ws(port, &mut c);
    ws.get_mut().write_all(&[0x82, 0x02, 1, 2]).unwrap();
    assert!(
        closed_by_server(ws.get_mut(), &mut c),
        "unmasked frame not closed"
    );
    // A frame header announcing more than the limit: closed before the payload is sent.
    let mut ws = raw_ws(port, &mut c);
    let mut head = vec![0x82u8, 0x80 | 127];
    head.extend_from_slice(&(1u64 << 30).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    ws.get_mut().write_all(&head).unwrap();
    assert!(
        closed_by_server(ws.get_mut(), &mut c),
        "huge frame not closed"
    );
    // Fragmented messages are reassembled (tungstenite does RFC 6455's continuation frames).
    let mut ws = raw_ws(port, &mut c);
    let me = raw_read(&mut ws, &mut c, 1)[0][WS_HEADER_LEN..].to_vec();
    let me = u32::from_le_bytes(me[..4].try_into().unwrap());
    let whole = frame::data_message(me, 1, b"in two pieces");
    let (a, b) = whole.split_at(6);
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    let mut first = Frame::message(a.to_vec(), OpCode::Data(Data::Binary), false);
    let mut second = Frame::message(b.to_vec(), OpCode::Data(Data::Continue), true);
    first.header_mut().mask = Some([1, 2, 3, 4]);
    second.header_mut().mask = Some([5, 6, 7, 8]);
    let mut bytes = Vec::new();
    first.format(&mut bytes).unwrap();
    second.format(&mut bytes).unwrap();
    ws.get_mut().write_all(&bytes).unwrap();
    c.wait("the fragmented message", |c| {
        c.nodes[0]
            .packets
            .iter()
            .any(|p| &p.data[..] == b"in two pieces")
    });

    // Honest clients were not disturbed.
    every_pair_every_target(&mut c, &[false, true, true]);
    let w = server_counts(&c).1;
    assert_eq!(w.handshakes_failed, 1, "{w:?}");
    assert_eq!(w.handshake_timeouts, 1, "{w:?}");
    assert_eq!(w.closed_protocol, 1, "{w:?}");
    assert_eq!(w.closed_too_large, 1, "{w:?}");
    assert_eq!(server_counts(&c).0.drops.get(DropReason::Oversize), 1);
}

#[test]
fn close_codes_are_godots_disconnect_codes_plus_4000() {
    assert_eq!(close_code(DisconnectReason::ServerClosed), 4006);
    assert_eq!(close_code(DisconnectReason::SlowConsumer), 4007);
}

#[test]
fn a_thousand_idle_half_open_connections_do_not_lock_honest_clients_out() {
    // Reads the whole process's RSS: never beside the flood test of this binary.
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let server = ws_server()
        .max_clients(200)
        .listen(listen().handshake_timeout(Duration::from_millis(1500)))
        .build()
        .unwrap();
    let port = server.local_port().unwrap();
    let mut c: Room = Cluster::new(vec![node(server)], None, Duration::from_millis(1));
    let rss_before = support::robust::rss_kib();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(("127.0.0.1", port)).expect("tcp connect"));
        c.pump();
    }
    c.wait("1000 accepted", |c| server_counts(c).1.handshakes == 1000);
    let grown = support::robust::rss_kib().saturating_sub(rss_before);
    eprintln!("1000 half-open websocket connections: RSS grew {grown} KiB");
    assert!(
        grown < 64 * 1024,
        "1000 half-open connections cost {grown} KiB"
    );
    // Honest clients get in and talk while the thousand wait.
    for _ in 0..3 {
        c.nodes.push(node(ws_client(port)));
    }
    c.wait_mesh();
    every_pair_every_target(&mut c, &[false, true, true, true]);
    // The idle ones are cut at the handshake timeout, each counted once.
    c.wait("the idle ones timed out", |c| {
        server_counts(c).1.handshake_timeouts == 1000
    });
    let mut closed = 0;
    let mut buf = [0u8; 16];
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000, "the server closed every idle connection");
    assert_eq!(c.nodes[0].peer.ids().len(), 3);
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_others_get_everything() {
    // Floods tens of MB: never beside the RSS measurement of this binary.
    let _serial = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let server = ws_server()
        .listen(listen().max_queued_bytes(256 * 1024))
        .build()
        .unwrap();
    let port = server.local_port().unwrap();
    let mut c: Room = Cluster::new(
        vec![node(server), node(ws_client(port)), node(ws_client(port))],
        None,
        Duration::from_millis(1),
    );
    c.wait_mesh();
    // The stuck client: upgraded, then never reads again (its socket buffers fill up).
    let stuck = raw_ws(port, &mut c);
    c.wait("the stuck client announced", |c| {
        c.nodes[1].connected_peers().len() == 3
    });
    let stuck_id = *c.nodes[1]
        .connected_peers()
        .iter()
        .find(|&&id| id != 1 && id != c.nodes[2].id())
        .unwrap();
    let n = 20_000u32;
    let payload = vec![7u8; 1000];
    let mut sent = 0u32;
    let start = Instant::now();
    while sent < n || c.nodes[2].packets.len() < n as usize {
        assert!(
            start.elapsed() < deadline() * 2,
            "flood not through: {sent} sent, {} got",
            c.nodes[2].packets.len()
        );
        for _ in 0..200 {
            if sent < n {
                let mut p = payload.clone();
                p[..4].copy_from_slice(&sent.to_le_bytes());
                c.nodes[1]
                    .peer
                    .send(Target::Broadcast, TransferMode::Reliable, 0, &p)
                    .unwrap();
                sent += 1;
            }
        }
        c.pump();
        let got = c.nodes[2].take_packets();
        for p in got {
            c.nodes[2].packets.push(p);
        }
    }
    let order: Vec<u32> = c.nodes[2]
        .packets
        .iter()
        .map(|p| u32::from_le_bytes(p.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(
        order,
        (0..n).collect::<Vec<_>>(),
        "the honest receiver got all, in order"
    );
    let (_, w) = server_counts(&c);
    assert_eq!(w.slow_consumers, 1, "{w:?}");
    c.wait("everyone saw the stuck client go", |c| {
        c.nodes[0].count(PeerEvent::PeerDisconnected(stuck_id)) == 1
            && c.nodes[1].count(PeerEvent::PeerDisconnected(stuck_id)) == 1
            && c.nodes[2].count(PeerEvent::PeerDisconnected(stuck_id)) == 1
    });
    drop(stuck);
}
