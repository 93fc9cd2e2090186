//! MultiplayerApi between Rust peers over loopback ENet, in one process: client-to-client RPCs
//! through the server's relay (the path cache between two clients travels through it too),
//! broadcasts with exclusion, RSETs and raw bytes, and a departure forgetting the caches.

mod support;

use enet_multiplayer::api::{ApiEvent, MultiplayerApi, RemoteCall, RpcMode};
use enet_multiplayer::variant::Variant;
use enet_multiplayer::{ENetMultiplayerPeer, MultiplayerPeer, PeerId, Target, TransferMode};
use std::time::{Duration, Instant};
use support::cluster::{deadline, enet_client, enet_server};

type Api = MultiplayerApi<ENetMultiplayerPeer>;

struct Room {
    apis: Vec<Api>,
    events: Vec<Vec<ApiEvent>>,
}

impl Room {
    /// A server and `n` clients, each with a `Chat` node: `remote func say(text)` and a
    /// `remote var topic`.
    fn new(n: usize) -> Room {
        let server = enet_server().build().unwrap();
        let port = server.local_port().unwrap();
        let mut apis = vec![MultiplayerApi::new(server)];
        for _ in 0..n {
            apis.push(MultiplayerApi::new(enet_client(port).build().unwrap()));
        }
        for api in &mut apis {
            api.rpc_config("Chat", "say", RpcMode::Remote);
            api.register_rset("Chat", "topic", RpcMode::Remote, Variant::Nil, None);
        }
        let mut room = Room {
            events: vec![Vec::new(); apis.len()],
            apis,
        };
        let everyone = n; // each client knows the server and the n-1 others
        room.wait("the mesh", |r| {
            r.apis[1..]
                .iter()
                .all(|a| a.network_connected_peers().len() == everyone)
                && r.apis[0].network_connected_peers().len() == n
        });
        room
    }

    fn id(&self, i: usize) -> PeerId {
        self.apis[i].network_unique_id()
    }

    fn wait(&mut self, what: &str, done: impl Fn(&Room) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(start.elapsed() < deadline(), "timed out waiting for {what}");
            for (api, events) in self.apis.iter_mut().zip(&mut self.events) {
                api.poll_timeout(Duration::from_millis(1)).unwrap();
                events.extend(std::iter::from_fn(|| api.pop_event()));
            }
        }
    }

    fn said(&self, i: usize) -> Vec<(PeerId, Vec<Variant>)> {
        self.events[i]
            .iter()
            .filter_map(|e| match e {
                ApiEvent::Call(RemoteCall {
                    sender, name, args, ..
                }) if name == "say" => Some((*sender, args.clone())),
                _ => None,
            })
            .collect()
    }
}

fn text(s: &str) -> Vec<Variant> {
    vec![Variant::String(s.into())]
}

#[test]
fn clients_call_each_other_through_the_relay() {
    let mut room = Room::new(3);
    let (a, b, c) = (room.id(1), room.id(2), room.id(3));
    // a -> b directly (relayed), twice: the second time in the short form, once b confirmed.
    room.apis[1].rpc_id(b, "Chat", "say", &text("one")).unwrap();
    room.wait("b hears one", |r| r.said(2).len() == 1);
    room.wait("b's confirm reaches a", |r| {
        r.apis[1].peer_call_stats(b).confirms == 1
    });
    room.apis[1].rpc_id(b, "Chat", "say", &text("two")).unwrap();
    room.wait("b hears two", |r| r.said(2).len() == 2);
    assert_eq!(room.said(2), [(a, text("one")), (a, text("two"))]);
    let from_a = room.apis[2].peer_call_stats(a);
    assert_eq!(
        (from_a.full_path_form, from_a.cached_form),
        (1, 1),
        "{from_a:?}"
    );

    // a -> everyone but c: the server and b hear it, c does not.
    room.apis[1]
        .rpcp(Target::AllExcept(c), false, "Chat", "say", &text("not c"))
        .unwrap();
    room.wait("server and b hear it", |r| {
        r.said(0).len() == 1 && r.said(2).len() == 3
    });
    // c -> everyone; then a barrier: everyone hears c's second message after the first.
    room.apis[3].rpc("Chat", "say", &text("all")).unwrap();
    room.apis[3].rpc("Chat", "say", &text("all again")).unwrap();
    room.wait("everyone hears c twice", |r| {
        [0, 1, 2]
            .iter()
            .all(|&i| r.said(i).iter().filter(|(from, _)| *from == c).count() == 2)
    });
    assert!(room.said(3).is_empty(), "the sender does not hear itself");
    assert_eq!(room.said(0)[0], (a, text("not c")));
    assert!(!room.said(1).iter().any(|(from, _)| *from == a));

    // RSET to one client and raw bytes to another.
    room.apis[0]
        .rset_id(b, "Chat", "topic", &Variant::Int(3))
        .unwrap();
    room.apis[2]
        .send_bytes(b"raw!", Target::Peer(c), TransferMode::Unreliable)
        .unwrap();
    room.wait("topic and raw", |r| {
        r.apis[2].property("Chat", "topic") == Some(&Variant::Int(3))
            && r.events[3]
                .iter()
                .any(|e| matches!(e, ApiEvent::Packet { from, data, .. } if *from == b && &data[..] == b"raw!"))
    });

    // a leaves: everyone forgets it; its path numbers mean nothing any more.
    room.apis[1].peer_mut().close();
    room.wait("a's departure", |r| {
        [0, 2, 3]
            .iter()
            .all(|&i| r.events[i].contains(&ApiEvent::PeerDisconnected(a)))
    });
    assert_eq!(room.apis[2].peer_call_stats(a), Default::default());
    assert_eq!(room.apis[2].network_connected_peers().len(), 2);
}
