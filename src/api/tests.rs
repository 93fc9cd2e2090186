//! The MultiplayerApi over custom peers in memory: a server (id 1) and clients, with the
//! packets moved by hand so every byte can be looked at.

use super::*;
use crate::{CustomMultiplayerPeer, Outgoing, OutgoingPacket};

type Api = MultiplayerApi<CustomMultiplayerPeer>;

fn server(clients: &[PeerId]) -> Api {
    let mut peer = CustomMultiplayerPeer::new();
    peer.set_connection_status(ConnectionStatus::Connecting)
        .unwrap();
    peer.initialize(SERVER_ID).unwrap();
    peer.set_connection_status(ConnectionStatus::Connected)
        .unwrap();
    for &id in clients {
        peer.add_peer(id).unwrap();
    }
    let mut api = MultiplayerApi::new(peer);
    api.poll().unwrap();
    for &id in clients {
        assert_eq!(api.pop_event(), Some(ApiEvent::PeerConnected(id)));
    }
    api
}

fn client(id: PeerId) -> Api {
    let mut peer = CustomMultiplayerPeer::new();
    peer.set_connection_status(ConnectionStatus::Connecting)
        .unwrap();
    peer.initialize(id).unwrap();
    peer.set_connection_status(ConnectionStatus::Connected)
        .unwrap();
    let mut api = MultiplayerApi::new(peer);
    api.poll().unwrap();
    assert_eq!(api.pop_event(), Some(ApiEvent::PeerConnected(SERVER_ID)));
    assert_eq!(api.pop_event(), Some(ApiEvent::ConnectedToServer));
    api
}

/// Everything `api` sent since the last call.
fn sent(api: &mut Api) -> Vec<OutgoingPacket> {
    api.peer_mut()
        .take_outgoing()
        .into_iter()
        .map(|o| match o {
            Outgoing::Packet(p) => p,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// Delivers `packets` (sent by `from`) to `to`, then polls it.
fn deliver(to: &mut Api, from: PeerId, packets: &[OutgoingPacket]) {
    for p in packets {
        to.peer_mut()
            .deliver(from, p.channel, p.mode, p.data.clone())
            .unwrap();
    }
    to.poll().unwrap();
}

/// Moves the server's packets to the clients they target and the clients' answers back,
/// until nothing moves.
fn pump(server: &mut Api, clients: &mut [&mut Api]) {
    for _ in 0..10 {
        let from_server = sent(server);
        let mut moved = !from_server.is_empty();
        for c in clients.iter_mut() {
            let id = c.network_unique_id();
            let mine: Vec<_> = from_server
                .iter()
                .filter(|p| match p.target {
                    Target::Broadcast => true,
                    Target::Peer(n) => n == id,
                    Target::AllExcept(n) => n != id,
                    Target::Server => false,
                })
                .cloned()
                .collect();
            deliver(c, SERVER_ID, &mine);
            let back = sent(c);
            moved |= !back.is_empty();
            deliver(server, id, &back);
        }
        if !moved {
            return;
        }
    }
    panic!("still moving after 10 rounds");
}

fn recorder(log: &Log) -> impl FnMut(&mut Api, &CallContext<'_>, &[Variant]) + Send + 'static {
    let log = log.clone();
    move |_, ctx, args| {
        log.lock()
            .unwrap()
            .push((ctx.sender, ctx.local, args.to_vec()))
    }
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<(PeerId, bool, Vec<Variant>)>>>;

#[test]
fn first_call_announces_the_path_then_the_short_form_follows_the_confirm() {
    let mut s = server(&[7]);
    let mut c = client(7);
    let log = Log::default();
    c.register_rpc("Main", "to_client", RpcMode::Remote, recorder(&log));

    s.rpc_id(7, "/root/Main", "to_client", &[Variant::Int(7)])
        .unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 2);
    // The bytes MULTIPLAYER_API.md captured from Godot 3.2.3.
    assert_eq!(&out[0].data[..], b"\x02\x01\x00\x00\x00Main\x00");
    let mut full = vec![0x00, 0x18, 0x00, 0x00, 0x80];
    full.extend_from_slice(b"to_client\0\x01\x02\0\0\0\x07\0\0\0Main\0");
    assert_eq!(&out[1].data[..], &full[..]);
    assert!(out.iter().all(|p| p.target == Target::Peer(7)));
    assert_eq!(out[0].mode, TransferMode::Reliable);

    deliver(&mut c, SERVER_ID, &out);
    assert_eq!(*log.lock().unwrap(), [(1, false, vec![Variant::Int(7)])]);
    // The client confirmed, to the server alone, reliably.
    let confirm = sent(&mut c);
    assert_eq!(confirm.len(), 1);
    assert_eq!(&confirm[0].data[..], b"\x03Main\x00");
    assert_eq!(
        (confirm[0].target, confirm[0].mode),
        (Target::Server, TransferMode::Reliable)
    );
    deliver(&mut s, 7, &confirm);
    assert_eq!(s.peer_call_stats(7).confirms, 1);

    // From now on: one packet, the path id instead of the path.
    s.rpc_unreliable_id(7, "Main", "to_client", &[Variant::Int(8)])
        .unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0].data[..],
        b"\x00\x01\x00\x00\x00to_client\x00\x01\x02\0\0\0\x08\0\0\0"
    );
    assert_eq!(out[0].mode, TransferMode::Unreliable);
    deliver(&mut c, SERVER_ID, &out);
    assert_eq!(log.lock().unwrap().len(), 2);
    let stats = c.peer_call_stats(SERVER_ID);
    assert_eq!(
        (stats.full_path_form, stats.cached_form, stats.rpcs),
        (1, 1, 2)
    );
}

#[test]
fn broadcast_goes_per_peer_until_every_peer_confirmed() {
    let mut s = server(&[5, 9]);
    let mut a = client(5);
    let mut b = client(9);
    for c in [&mut a, &mut b] {
        c.rpc_config("Game", "tick", RpcMode::Puppet);
    }
    s.rpc("Game", "tick", &[]).unwrap();
    let out = sent(&mut s);
    // SIMPLIFY to 5 and 9, then one full-path copy each, in ascending id order.
    let targets: Vec<_> = out.iter().map(|p| (p.target, p.data[0])).collect();
    assert_eq!(
        targets,
        [
            (Target::Peer(5), wire::SIMPLIFY_PATH),
            (Target::Peer(9), wire::SIMPLIFY_PATH),
            (Target::Peer(5), wire::REMOTE_CALL),
            (Target::Peer(9), wire::REMOTE_CALL),
        ]
    );
    // Only 5 confirms (9's packets are held back): 5 gets the short form, 9 the full path,
    // still one by one.
    deliver(&mut a, SERVER_ID, &[out[0].clone(), out[2].clone()]);
    let held_for_b = [out[1].clone(), out[3].clone()];
    let confirm = sent(&mut a);
    deliver(&mut s, 5, &confirm);
    s.rpc("Game", "tick", &[]).unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].target, Target::Peer(5));
    assert_eq!(out[0].data[4] & 0x80, 0, "short form to 5");
    assert_eq!(out[1].target, Target::Peer(9));
    assert_eq!(out[1].data[4] & 0x80, 0x80, "full path to 9");
    // No second SIMPLIFY for 9: it was announced already and is only unconfirmed.
    deliver(&mut b, SERVER_ID, &held_for_b);
    deliver(&mut b, SERVER_ID, &out[1..]);
    deliver(&mut a, SERVER_ID, &out[..1]);
    let confirm = sent(&mut b);
    assert_eq!(confirm.len(), 1);
    deliver(&mut s, 9, &confirm);
    pump(&mut s, &mut [&mut a, &mut b]);
    s.rpc("Game", "tick", &[]).unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 1, "one packet once everyone confirmed");
    assert_eq!(out[0].target, Target::Broadcast);
    deliver(&mut a, SERVER_ID, &out);
    deliver(&mut b, SERVER_ID, &out);
    // Exclusion: everyone but 9 is just 5, and 5 confirmed: one packet to AllExcept(9).
    s.rpcp(Target::AllExcept(9), false, "Game", "tick", &[])
        .unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].target, Target::AllExcept(9));
    deliver(&mut a, SERVER_ID, &out);
    // A puppet method from the master runs on each client, once per call that included it
    // (the per-peer copies before the confirms included).
    let calls = |c: &mut Api| {
        std::iter::from_fn(|| c.pop_event())
            .filter(
                |e| matches!(e, ApiEvent::Call(call) if call.name == "tick" && call.sender == 1),
            )
            .count()
    };
    assert_eq!((calls(&mut a), calls(&mut b)), (4, 3));
}

#[test]
fn the_receiver_checks_modes_as_godot_does_and_never_answers_a_refusal() {
    let mut s = server(&[7]);
    let log = Log::default();
    for (name, mode) in [
        ("remote", RpcMode::Remote),
        ("master", RpcMode::Master),
        ("puppet", RpcMode::Puppet),
        ("disabled", RpcMode::Disabled),
        ("remotesync", RpcMode::RemoteSync),
        ("mastersync", RpcMode::MasterSync),
        ("puppetsync", RpcMode::PuppetSync),
    ] {
        s.register_rpc("Echo", name, mode, recorder(&log));
    }
    let mut c = client(7);
    for name in [
        "remote",
        "master",
        "puppet",
        "disabled",
        "remotesync",
        "mastersync",
        "puppetsync",
        "nope",
    ] {
        c.rpc_id(1, "Echo", name, &[]).unwrap();
    }
    c.rpc_id(1, "Nowhere", "remote", &[Variant::Bool(true)])
        .unwrap();
    let out = sent(&mut c);
    deliver(&mut s, 7, &out);
    // The server is the master: remote, master, remotesync, mastersync run.
    assert_eq!(log.lock().unwrap().len(), 4);
    let stats = s.peer_call_stats(7);
    assert_eq!(stats.rpcs, 4);
    assert_eq!(stats.refused_by_mode, 3, "puppet, disabled, puppetsync");
    assert_eq!(stats.unknown_name, 1);
    assert_eq!(stats.unknown_path, 1);
    assert_eq!(stats.rejected(), 5);
    // Only the SIMPLIFY answers went back: two paths, two CONFIRMs; no refusal is answered.
    let answers = sent(&mut s);
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|p| p.data[0] == wire::CONFIRM_PATH));
    // Calls nobody registered come out as values.
    let unhandled: Vec<_> = std::iter::from_fn(|| s.pop_event())
        .filter_map(|e| match e {
            ApiEvent::UnhandledCall(call) => Some((call.path, call.name, call.args)),
            _ => None,
        })
        .collect();
    assert_eq!(
        unhandled,
        [
            ("Echo".to_owned(), "nope".to_owned(), vec![]),
            (
                "Nowhere".to_owned(),
                "remote".to_owned(),
                vec![Variant::Bool(true)]
            ),
        ]
    );
    // The master moves to 7: now `puppet` from 7 is allowed on the server, `master` is not.
    s.set_network_master("Echo", 7);
    c.rpc_id(1, "Echo", "puppet", &[]).unwrap();
    c.rpc_id(1, "Echo", "master", &[]).unwrap();
    let out = sent(&mut c);
    deliver(&mut s, 7, &out);
    assert_eq!(s.peer_call_stats(7).rpcs, 5);
    assert_eq!(s.peer_call_stats(7).refused_by_mode, 4);
}

#[test]
fn sync_modes_also_run_locally_and_calls_on_yourself_follow_the_mode() {
    let mut s = server(&[7]);
    let log = Log::default();
    s.register_rpc("N", "rs", RpcMode::RemoteSync, recorder(&log));
    s.register_rpc("N", "m", RpcMode::Master, recorder(&log));
    s.register_rpc("N", "ms", RpcMode::MasterSync, recorder(&log));
    s.register_rpc("N", "p", RpcMode::Puppet, recorder(&log));
    s.register_rpc("N", "r", RpcMode::Remote, recorder(&log));

    s.rpc("N", "rs", &[Variant::Int(1)]).unwrap();
    assert_eq!(*log.lock().unwrap(), [(1, true, vec![Variant::Int(1)])]);
    assert_eq!(sent(&mut s).len(), 2, "and sent: SIMPLIFY + call");
    // master / mastersync on the master: run here, not sent.
    s.rpc("N", "m", &[]).unwrap();
    s.rpc("N", "ms", &[]).unwrap();
    assert_eq!(log.lock().unwrap().len(), 3);
    assert!(sent(&mut s).is_empty());
    // puppet on the master: sent, not run here.
    s.rpc("N", "p", &[]).unwrap();
    assert_eq!(log.lock().unwrap().len(), 3);
    assert_eq!(sent(&mut s).len(), 1);
    // On yourself: a remote method is refused, a sync one runs.
    assert!(matches!(
        s.rpc_id(1, "N", "r", &[]),
        Err(ApiError::NotAllowedOnSelf { .. })
    ));
    s.rpc_id(1, "N", "rs", &[]).unwrap();
    assert_eq!(log.lock().unwrap().len(), 4);
    assert!(sent(&mut s).is_empty());
    // The sender id is this peer's own during a local call, 0 outside calls.
    s.register_rpc("N", "who", RpcMode::RemoteSync, |api, ctx, _| {
        assert_eq!((api.rpc_sender_id(), ctx.sender), (1, 1));
    });
    s.rpc_id(1, "N", "who", &[]).unwrap();
    assert_eq!(s.rpc_sender_id(), 0);
    // Unknown targets and too many arguments are errors, as in Godot.
    assert!(matches!(
        s.rpc_id(4, "N", "r", &[]),
        Err(ApiError::UnknownTarget(Target::Peer(4)))
    ));
    assert!(matches!(
        s.rpc("N", "r", &vec![Variant::Nil; 256]),
        Err(ApiError::TooManyArguments(256))
    ));
    assert!(matches!(s.rpc("", "r", &[]), Err(ApiError::InvalidName(_))));
}

#[test]
fn rset_stores_the_value_runs_the_handler_and_answers() {
    let mut s = server(&[7]);
    let handler: RsetHandler<CustomMultiplayerPeer> = Box::new(|api, ctx, value| {
        let value = value.clone();
        api.rset_id(ctx.sender, ctx.path, "value", &value).unwrap();
    });
    s.register_rset(
        "Echo",
        "value",
        RpcMode::Remote,
        Variant::Nil,
        Some(handler),
    );
    let mut c = client(7);
    c.register_rset("Echo", "value", RpcMode::Puppet, Variant::Int(0), None);

    c.rset_id(1, "Echo", "value", &Variant::String("hi".into()))
        .unwrap();
    pump(&mut s, &mut [&mut c]);
    assert_eq!(
        s.property("Echo", "value"),
        Some(&Variant::String("hi".into()))
    );
    assert_eq!(
        c.property("Echo", "value"),
        Some(&Variant::String("hi".into()))
    );
    assert_eq!(s.peer_call_stats(7).rsets, 1);
    // Without a handler the client got an event for the set.
    let events: Vec<_> = std::iter::from_fn(|| c.pop_event()).collect();
    assert!(events.iter().any(|e| matches!(e,
        ApiEvent::Call(call) if call.kind == CallKind::Rset && call.args == [Variant::String("hi".into())])));
    // A puppet property set by a puppet is refused on the server.
    c.register_rset("Echo", "hp", RpcMode::Remote, Variant::Nil, None);
    s.register_rset("Echo", "hp", RpcMode::Puppet, Variant::Int(3), None);
    c.rset_id(1, "Echo", "hp", &Variant::Int(99)).unwrap();
    pump(&mut s, &mut [&mut c]);
    assert_eq!(s.property("Echo", "hp"), Some(&Variant::Int(3)));
    assert_eq!(s.peer_call_stats(7).refused_by_mode, 1);
    // RSET on yourself: only a sync mode sets locally.
    s.register_rset("Echo", "sync", RpcMode::RemoteSync, Variant::Nil, None);
    s.rset_id(1, "Echo", "sync", &Variant::Int(5)).unwrap();
    assert_eq!(s.property("Echo", "sync"), Some(&Variant::Int(5)));
    assert!(matches!(
        s.rset_id(1, "Echo", "value", &Variant::Nil),
        Err(ApiError::NotAllowedOnSelf { .. })
    ));
}

#[test]
fn raw_bytes_both_ways() {
    let mut s = server(&[7]);
    let mut c = client(7);
    c.send_bytes(&[9, 8, 7], Target::Server, TransferMode::Reliable)
        .unwrap();
    let out = sent(&mut c);
    assert_eq!(&out[0].data[..], &[4, 9, 8, 7]);
    deliver(&mut s, 7, &out);
    assert_eq!(
        s.pop_event(),
        Some(ApiEvent::Packet {
            from: 7,
            data: Bytes::from_static(&[9, 8, 7]),
            mode: TransferMode::Reliable,
            channel: 0
        })
    );
    assert!(matches!(
        s.send_bytes(&[], Target::Peer(7), TransferMode::Reliable),
        Err(ApiError::EmptyRaw)
    ));
    assert_eq!(s.peer_call_stats(7).raw, 1);
}

#[test]
fn a_departed_peer_is_forgotten_both_ways() {
    let mut s = server(&[7]);
    let mut c = client(7);
    c.rpc_config("Main", "f", RpcMode::Remote);
    s.rpc_config("Main", "g", RpcMode::Remote);
    s.rpc_id(7, "Main", "f", &[]).unwrap();
    c.rpc_id(1, "Main", "g", &[]).unwrap();
    pump(&mut s, &mut [&mut c]);
    // Both directions confirmed: short forms now.
    s.rpc_id(7, "Main", "f", &[]).unwrap();
    assert_eq!(sent(&mut s).len(), 1);
    // 7 leaves and someone else with id 7 comes back.
    s.peer_mut().remove_peer(7).unwrap();
    s.poll().unwrap();
    assert!(std::iter::from_fn(|| s.pop_event()).any(|e| e == ApiEvent::PeerDisconnected(7)));
    assert_eq!(s.network_connected_peers(), Vec::<PeerId>::new());
    s.peer_mut().add_peer(7).unwrap();
    s.poll().unwrap();
    // The server announces the path again, with the same number.
    s.rpc_id(7, "Main", "f", &[]).unwrap();
    let out = sent(&mut s);
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0].data[..], b"\x02\x01\x00\x00\x00Main\x00");
    // The old client's path number means nothing now.
    let stale = b"\x00\x01\x00\x00\x00g\x00\x00";
    s.peer_mut().deliver_packet(stale, 7).unwrap();
    s.poll().unwrap();
    assert_eq!(s.peer_call_stats(7).unknown_path, 1);
}

#[test]
fn the_call_filter_has_the_last_word() {
    let mut s = server(&[7, 8]);
    let log = Log::default();
    s.register_rpc("Game", "move", RpcMode::Remote, recorder(&log));
    s.set_call_filter(|ctx, args| ctx.sender == 7 && args.len() == 1);
    let mut a = client(7);
    let mut b = client(8);
    a.rpc_id(1, "Game", "move", &[Variant::Int(1)]).unwrap();
    a.rpc_id(1, "Game", "move", &[]).unwrap();
    b.rpc_id(1, "Game", "move", &[Variant::Int(1)]).unwrap();
    pump(&mut s, &mut [&mut a, &mut b]);
    assert_eq!(*log.lock().unwrap(), [(7, false, vec![Variant::Int(1)])]);
    assert_eq!(s.peer_call_stats(7).denied, 1);
    assert_eq!(s.peer_call_stats(8).denied, 1);
    assert_eq!(s.call_stats().denied, 2);
}

#[test]
fn hostile_packets_are_counted_not_obeyed() {
    let mut s = server(&[7]);
    s.rpc_config("Echo", "f", RpcMode::Remote);
    let bad: [&[u8]; 7] = [
        b"",
        b"\x00\x01",
        b"\x00\x01\x00\x00\x00f",
        b"\x00\x40\x00\x00\x80f\x00\x00",
        b"\x09xyz",
        b"\x04",
        b"\x00\x08\x00\x00\x80f\x00\x05Echo\x00", // 5 arguments promised, none there
    ];
    for packet in bad {
        s.peer_mut().deliver_packet(packet, 7).unwrap();
    }
    s.poll().unwrap();
    assert_eq!(s.peer_call_stats(7).malformed, 7);
    assert!(sent(&mut s).is_empty());
    // A CONFIRM for a path never announced.
    s.peer_mut().deliver_packet(b"\x03Echo\x00", 7).unwrap();
    s.poll().unwrap();
    assert_eq!(s.peer_call_stats(7).bad_confirms, 1);
    // A flood of SIMPLIFYs stores at most MAX_PATHS_PER_PEER paths.
    for id in 0..(MAX_PATHS_PER_PEER as u32 + 10) {
        s.peer_mut()
            .deliver_packet(&wire::simplify_path(id, &format!("P{id}")), 7)
            .unwrap();
    }
    s.poll().unwrap();
    assert_eq!(s.peer_call_stats(7).paths_over_limit, 10);
    assert_eq!(sent(&mut s).len(), MAX_PATHS_PER_PEER);
    // Distinct unknown names are counted without limit but logged at most a bounded number
    // of times.
    for i in 0..(MAX_LOGGED_REFUSALS + 100) {
        let mut p = vec![0, 0x0e, 0, 0, 0x80];
        p.extend_from_slice(format!("m{i:06}\0\0Echo\0").as_bytes());
        s.peer_mut().deliver_packet(&p, 7).unwrap();
    }
    s.poll().unwrap();
    assert_eq!(
        s.peer_call_stats(7).unknown_name,
        (MAX_LOGGED_REFUSALS + 100) as u64
    );
    assert!(s.logged.len() <= MAX_LOGGED_REFUSALS);
}

#[test]
fn a_client_forgets_everything_when_the_server_goes() {
    let mut c = client(7);
    c.rpc_config("Main", "f", RpcMode::Remote);
    c.peer_mut()
        .deliver_packet(b"\x02\x03\x00\x00\x00Main\x00", 1)
        .unwrap();
    c.poll().unwrap();
    c.peer_mut()
        .set_disconnected(DisconnectReason::ServerClosed)
        .unwrap();
    c.poll().unwrap();
    assert_eq!(
        c.pop_event(),
        Some(ApiEvent::ServerDisconnected(DisconnectReason::ServerClosed))
    );
    assert!(c.network_connected_peers().is_empty());
    assert!(c.received_paths.is_empty());
    assert!(matches!(
        c.rpc_id(1, "Main", "f", &[]),
        Err(ApiError::NotConnected(ConnectionStatus::Disconnected))
    ));
}
