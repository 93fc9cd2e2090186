//! A browser in a Godot 3 room: headless Chromium runs examples/browser/index.html (plain
//! JavaScript speaking Godot 3's WebSocket framing, WEBSOCKET.md) against the mixed server
//! (ENet and WebSocket in one room), next to a Rust ENet client; two browser tabs join.
//!
//! Asserted: the tabs get ids and see the ENet client (and each other); the ENet client sees
//! both tabs join; a tab's RAW packet (`send_bytes`, MULTIPLAYER_API.md) to everyone reaches the
//! ENet client byte for byte from the tab's id, as a reliable packet on channel 0, and the
//! server and the other tab too; a tab's RAW packet to the ENet client alone reaches it and
//! nobody else; the ENet client's RAW packets, to one tab and to everyone, show on the pages
//! with its id, the whisper on its addressee only; a tab that closes leaves the room for
//! everyone. The first tab's screenshot is saved as `target/browser-test/room.png` (the second
//! as `room-2.png`).
//!
//! Chromium is driven over the DevTools protocol (tests/support/browser.rs). Missing browser:
//! the test fails with install instructions, unless `ENET_MP_SKIP_BROWSER=1`.

mod support;

use enet_multiplayer::{
    ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, PeerId, Target, TransferMode, WebSocketListen,
};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::browser::{self, Chromium, Tab};
use support::cluster::{deadline, Node};

type RustNode = Node<ENetMultiplayerPeer>;

/// MultiplayerAPI's RAW command: what `send_bytes` puts before the bytes.
const RAW: u8 = 4;

/// A RAW packet of `text`, as Godot's `send_bytes(text.to_utf8())` sends it.
fn raw(text: &str) -> Vec<u8> {
    let mut p = vec![RAW];
    p.extend_from_slice(text.as_bytes());
    p
}

/// Polls the server and the ENet client once without waiting (the browser waits meanwhile).
fn pump(server: &mut RustNode, client: &mut RustNode) {
    server.poll(Duration::ZERO);
    client.poll(Duration::ZERO);
}

/// Polls the Rust peers until `done` holds; panics with `what` after the deadline.
fn drive(
    server: &mut RustNode,
    client: &mut RustNode,
    what: &str,
    mut done: impl FnMut(&RustNode, &RustNode) -> bool,
) {
    let limit = deadline();
    let start = Instant::now();
    loop {
        server.poll(Duration::from_millis(1));
        client.poll(Duration::ZERO);
        if done(server, client) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}\nserver events {:?}\nclient events {:?}",
            server.events,
            client.events
        );
    }
}

/// Whether `node` saw `id` connect exactly once and never leave.
fn knows(node: &RustNode, id: PeerId) -> bool {
    node.count(PeerEvent::PeerConnected(id)) == 1
        && node.count(PeerEvent::PeerDisconnected(id)) == 0
}

/// `r.unwrap()` with the browser's console added to the failure message.
#[track_caller]
fn ok<T>(chrome: &Chromium, r: Result<T, String>) -> T {
    r.unwrap_or_else(|e| panic!("{e}\npage console:\n{}", chrome.console_text()))
}

/// What the page in `tab` received as RAW packets: (from, text), in arrival order.
fn received(
    chrome: &mut Chromium,
    tab: &Tab,
    server: &mut RustNode,
    client: &mut RustNode,
) -> Vec<(PeerId, String)> {
    let v = chrome.eval(
        tab,
        "JSON.stringify(window.room.received.map(r => [r.from, r.text]))",
        &mut || pump(server, client),
    );
    let v = ok(chrome, v);
    let list: Vec<(PeerId, String)> =
        serde_json::from_str(v.as_str().expect("a JSON string")).expect("received list");
    list
}

#[test]
fn browser_and_enet_client_in_one_room() {
    let Some(bin) = browser::require_chromium() else {
        return;
    };
    let started = Instant::now();
    let limit = deadline();

    // The mixed server and the ENet client.
    let peer = ENetMultiplayerPeer::server(0)
        .bind_address(Ipv4Addr::LOCALHOST)
        .websocket(WebSocketListen::new(0).bind_address(Ipv4Addr::LOCALHOST))
        .build()
        .expect("mixed server");
    let enet_port = peer.local_port().expect("ENet port");
    let ws_port = peer.websocket_port().expect("WebSocket port");
    let mut server = RustNode::new(Box::new(peer));
    let mut client = RustNode::new(Box::new(
        ENetMultiplayerPeer::client("127.0.0.1", enet_port)
            .build()
            .expect("ENet client"),
    ));
    drive(&mut server, &mut client, "the ENet client joins", |_, c| {
        c.count(PeerEvent::ConnectionSucceeded) == 1
    });
    let enet_id = client.id();
    drive(
        &mut server,
        &mut client,
        "the server sees the ENet client",
        |s, _| knows(s, enet_id),
    );
    assert!(!server.peer.is_websocket_peer(enet_id));

    // The browser, with a first tab.
    let mut chrome = Chromium::launch(&bin).unwrap_or_else(|e| panic!("{e}"));
    let ws_url = format!("ws://127.0.0.1:{ws_port}");
    let ann = chrome.open(&browser::page_url(&ws_url, "Ann"), &mut || {
        pump(&mut server, &mut client)
    });
    let ann = ok(&chrome, ann);
    let joined = "window.room && window.room.status === 'connected' && window.room.id";
    let ann_id = chrome.wait_for(&ann, joined, limit, &mut || pump(&mut server, &mut client));
    let ann_id = ok(&chrome, ann_id).as_u64().expect("an id") as PeerId;
    assert!((2..=i32::MAX as PeerId).contains(&ann_id), "id {ann_id}");
    assert_ne!(ann_id, enet_id);
    let sees_enet = format!("window.room.peers.includes({enet_id})");
    let r = chrome.wait_for(&ann, &sees_enet, limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    drive(
        &mut server,
        &mut client,
        "the ENet client sees Ann",
        |s, c| knows(s, ann_id) && knows(c, ann_id),
    );
    assert!(server.peer.is_websocket_peer(ann_id));

    // A second tab: everyone sees everyone.
    let bob = chrome.open(&browser::page_url(&ws_url, "Bob"), &mut || {
        pump(&mut server, &mut client)
    });
    let bob = ok(&chrome, bob);
    let bob_id = chrome.wait_for(&bob, joined, limit, &mut || pump(&mut server, &mut client));
    let bob_id = ok(&chrome, bob_id).as_u64().expect("an id") as PeerId;
    assert!(![1, enet_id, ann_id].contains(&bob_id), "id {bob_id}");
    let mut bob_expects = vec![1, enet_id, ann_id];
    bob_expects.sort_unstable();
    let everyone = format!(
        "JSON.stringify(window.room.peers) === {:?}",
        json!(bob_expects).to_string()
    );
    let r = chrome.wait_for(&bob, &everyone, limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    let sees_bob = format!("window.room.peers.includes({bob_id})");
    let r = chrome.wait_for(&ann, &sees_bob, limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    drive(
        &mut server,
        &mut client,
        "the ENet client sees Bob",
        |s, c| knows(s, bob_id) && knows(c, bob_id),
    );
    let ann_peers = chrome.eval(&ann, "window.room.peers", &mut || {
        pump(&mut server, &mut client)
    });
    let mut expected = vec![1, enet_id, bob_id];
    expected.sort_unstable();
    assert_eq!(ok(&chrome, ann_peers), json!(expected), "Ann's peer list");

    // Ann -> everyone: the ENet client gets exactly the RAW packet, from Ann's id; so do the
    // server (to = 0 includes it) and Bob.
    let hello = "Hello everyone! Ann here, in headless Chromium \u{2713}";
    let sent = chrome.eval(
        &ann,
        &format!("window.sendRaw(0, {})", json!(hello)),
        &mut || pump(&mut server, &mut client),
    );
    assert_eq!(ok(&chrome, sent), Value::Bool(true));
    drive(
        &mut server,
        &mut client,
        "Ann's RAW packet arrives",
        |s, c| !c.packets.is_empty() && !s.packets.is_empty(),
    );
    let got = client.take_packets();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, ann_id);
    assert_eq!(&got[0].data[..], &raw(hello)[..]);
    assert_eq!(got[0].data[0], RAW);
    assert_eq!(got[0].mode, TransferMode::Reliable);
    assert_eq!(got[0].channel, 0);
    let got = server.take_packets();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].from, &got[0].data[..]), (ann_id, &raw(hello)[..]));
    let r = chrome.wait_for(&bob, "window.room.received.length >= 1", limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    assert_eq!(
        received(&mut chrome, &bob, &mut server, &mut client),
        vec![(ann_id, hello.to_string())]
    );

    // Bob -> the ENet client only.
    let note = "Bob to the ENet client only";
    let sent = chrome.eval(
        &bob,
        &format!("window.sendRaw({enet_id}, {})", json!(note)),
        &mut || pump(&mut server, &mut client),
    );
    assert_eq!(ok(&chrome, sent), Value::Bool(true));
    drive(
        &mut server,
        &mut client,
        "Bob's RAW packet arrives",
        |_, c| !c.packets.is_empty(),
    );
    let got = client.take_packets();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].from, &got[0].data[..]), (bob_id, &raw(note)[..]));

    // The ENet client -> Ann only, then -> everyone. In order on one reliable channel through
    // the server: once Bob has the second, he would have had the first (and Ann Bob's note).
    let whisper = "Ann only: a whisper from the Rust ENet client";
    let hi = "Hi browsers! This is the Rust ENet client";
    client
        .peer
        .send(
            Target::Peer(ann_id),
            TransferMode::Reliable,
            0,
            &raw(whisper),
        )
        .expect("send to Ann");
    client
        .peer
        .send(Target::Broadcast, TransferMode::Reliable, 0, &raw(hi))
        .expect("send to everyone");
    let r = chrome.wait_for(&ann, "window.room.received.length >= 2", limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    let r = chrome.wait_for(&bob, "window.room.received.length >= 2", limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    assert_eq!(
        received(&mut chrome, &ann, &mut server, &mut client),
        vec![(enet_id, whisper.to_string()), (enet_id, hi.to_string())],
        "Ann's RAW packets"
    );
    assert_eq!(
        received(&mut chrome, &bob, &mut server, &mut client),
        vec![(ann_id, hello.to_string()), (enet_id, hi.to_string())],
        "Bob's RAW packets"
    );
    drive(
        &mut server,
        &mut client,
        "the server gets the broadcast",
        |s, _| !s.packets.is_empty(),
    );
    let got = server.take_packets();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].from, &got[0].data[..]), (enet_id, &raw(hi)[..]));
    // Nothing but RAW packets and system messages reached the pages.
    for tab in [&ann, &bob] {
        let other = chrome.eval(tab, "window.room.other", &mut || {
            pump(&mut server, &mut client)
        });
        assert_eq!(
            ok(&chrome, other),
            json!([]),
            "{}: frames other than RAW",
            tab.url
        );
    }

    // The screenshots: Ann's page shows her id, the ENet client and Bob in the peer list, and
    // every message; Bob's his. The framing carries no names: label the peers for the reader.
    let labels = [
        (1, "Rust server: ENet + WebSocket"),
        (enet_id, "Rust ENet client"),
        (ann_id, "Ann \u{b7} browser tab"),
        (bob_id, "Bob \u{b7} browser tab"),
    ];
    for tab in [&ann, &bob] {
        for (id, label) in labels {
            let r = chrome.eval(
                tab,
                &format!("window.setPeerLabel({id}, {})", json!(label)),
                &mut || pump(&mut server, &mut client),
            );
            ok(&chrome, r);
        }
    }
    let dir = browser::artefact_dir();
    let shot = dir.join("room.png");
    let r = chrome.screenshot(&ann, &shot, &mut || pump(&mut server, &mut client));
    ok(&chrome, r);
    let r = chrome.screenshot(&bob, &dir.join("room-2.png"), &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    eprintln!("browser test: screenshot at {}", shot.display());

    // Bob's tab closes: he leaves the room for everyone.
    let r = chrome.call(
        None,
        "Target.closeTarget",
        json!({ "targetId": bob.target_id }),
        &mut || pump(&mut server, &mut client),
    );
    ok(&chrome, r);
    drive(&mut server, &mut client, "Bob leaves", |s, c| {
        s.count(PeerEvent::PeerDisconnected(bob_id)) == 1
            && c.count(PeerEvent::PeerDisconnected(bob_id)) == 1
    });
    let r = chrome.wait_for(&ann, &format!("!{sees_bob}"), limit, &mut || {
        pump(&mut server, &mut client)
    });
    ok(&chrome, r);
    assert!(knows(&client, ann_id) && knows(&server, ann_id));

    let console = chrome.console_text();
    assert!(
        !chrome.console.iter().any(|l| l.starts_with("uncaught")),
        "the page threw:\n{console}"
    );
    chrome.close();
    assert!(
        chrome.proc.try_exit().is_some(),
        "chromium (pid {}) still running",
        chrome.proc.pid()
    );
    eprintln!(
        "browser test: done in {:.2}s",
        started.elapsed().as_secs_f64()
    );
}
