//! `put_packet` + `poll` round trip through a loopback pair: an `ENetMultiplayerPeer` server and
//! client on 127.0.0.1 (no compression). One iteration: the client sends 32 bytes to the server,
//! the server polls until it has them and sends them back, the client polls until it has them.
//! Measured with the default (flush once per poll) and with `flush_every_send(true)`.

use criterion::{criterion_group, criterion_main, Criterion};
use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, Target, TransferMode,
};
use std::time::{Duration, Instant};

/// Most polls spent waiting for one packet before the benchmark gives up.
const MAX_SPINS: u32 = 5_000_000;

fn pair(flush_every_send: bool) -> (ENetMultiplayerPeer, ENetMultiplayerPeer, u32) {
    let mut server = ENetMultiplayerPeer::server(0)
        .bind_address("127.0.0.1".parse().unwrap())
        .max_clients(4)
        .compression(Compression::None)
        .flush_every_send(flush_every_send)
        .build()
        .expect("server");
    let port = server.local_port().expect("port");
    let mut client = ENetMultiplayerPeer::client("127.0.0.1", port)
        .compression(Compression::None)
        .flush_every_send(flush_every_send)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut up, mut id) = (false, 0);
    while !(up && id != 0) {
        assert!(Instant::now() < deadline, "loopback pair did not connect");
        server.poll_timeout(Duration::from_millis(1)).unwrap();
        client.poll().unwrap();
        while let Some(e) = client.pop_event() {
            up |= e == PeerEvent::ConnectionSucceeded;
        }
        while let Some(e) = server.pop_event() {
            if let PeerEvent::PeerConnected(c) = e {
                id = c;
            }
        }
    }
    (server, client, id)
}

fn wait_packet(rx: &mut ENetMultiplayerPeer, tx: &mut ENetMultiplayerPeer) {
    for _ in 0..MAX_SPINS {
        rx.poll().unwrap();
        if rx.get_packet().is_some() {
            return;
        }
        tx.poll().unwrap();
    }
    panic!("no packet after {MAX_SPINS} polls");
}

fn round_trip(c: &mut Criterion) {
    let payload = [0x5Au8; 32];
    let mut g = c.benchmark_group("loopback/round_trip");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(3));
    for (name, flush) in [("flush_once_per_poll", false), ("flush_every_send", true)] {
        let (mut server, mut client, id) = pair(flush);
        g.bench_function(name, |b| {
            b.iter(|| {
                client
                    .send(Target::Server, TransferMode::Reliable, 0, &payload)
                    .unwrap();
                wait_packet(&mut server, &mut client);
                server
                    .send(Target::Peer(id), TransferMode::Reliable, 0, &payload)
                    .unwrap();
                wait_packet(&mut client, &mut server);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
