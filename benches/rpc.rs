//! The MultiplayerApi's hot path: a typical RPC from a client (cached path id, a short method
//! name, arguments Vector2, int and String) decoded and dispatched to its handler, and the
//! server's reply encoded and handed to the peer. Over an in-memory custom peer, so the figures
//! are the API's own (plus the custom peer's queue), with allocations per call counted.
//!
//! `cargo bench --bench rpc`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use enet_multiplayer::api::{wire, MultiplayerApi, RpcMode};
use enet_multiplayer::variant::{Variant, Vector2};
use enet_multiplayer::{ConnectionStatus, CustomMultiplayerPeer, TransferMode};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CLIENT: u32 = 7;

fn arguments() -> [Variant; 3] {
    [
        Variant::Vector2(Vector2 { x: 1.5, y: -2.0 }),
        Variant::Int(42),
        Variant::String("hello".into()),
    ]
}

/// A server API with client 7, whose path "Game" 7 numbered 1 and the server numbered too
/// (both confirmed), and a `move` handler that reads its three arguments.
fn server(hits: Arc<AtomicU64>) -> MultiplayerApi<CustomMultiplayerPeer> {
    let mut peer = CustomMultiplayerPeer::new();
    peer.set_connection_status(ConnectionStatus::Connecting)
        .unwrap();
    peer.initialize(1).unwrap();
    peer.set_connection_status(ConnectionStatus::Connected)
        .unwrap();
    peer.add_peer(CLIENT).unwrap();
    let mut api = MultiplayerApi::new(peer);
    api.register_rpc("Game", "move", RpcMode::Remote, move |_, call, args| {
        if let [Variant::Vector2(v), Variant::Int(n), Variant::String(s)] = args {
            black_box((v, n, s, call.sender));
            hits.fetch_add(1, Ordering::Relaxed);
        }
    });
    api.peer_mut()
        .deliver_packet(&wire::simplify_path(1, "Game"), CLIENT)
        .unwrap();
    api.poll().unwrap();
    // The server's own number for "Game", confirmed by 7.
    api.rpc_id(CLIENT, "Game", "moved", &arguments()).unwrap();
    api.peer_mut()
        .deliver_packet(&wire::confirm_path("Game"), CLIENT)
        .unwrap();
    api.poll().unwrap();
    while api.pop_event().is_some() {}
    api.peer_mut().take_outgoing();
    api
}

/// `rpc_id(1, "move", Vector2(1.5, -2), 42, "hello")` from 7, in the short form.
fn call_packet() -> Bytes {
    let mut p = vec![wire::REMOTE_CALL];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(b"move\0");
    p.push(3);
    for a in arguments() {
        a.encode(&mut p);
    }
    Bytes::from(p)
}

fn receive_one(api: &mut MultiplayerApi<CustomMultiplayerPeer>, packet: &Bytes) {
    api.peer_mut()
        .deliver(CLIENT, 0, TransferMode::Reliable, packet.clone())
        .unwrap();
    api.process();
}

fn send_one(api: &mut MultiplayerApi<CustomMultiplayerPeer>, args: &[Variant]) {
    api.rpc_id(CLIENT, "Game", "moved", args).unwrap();
    black_box(api.peer_mut().pop_outgoing());
}

/// Allocations per call over `n` calls, measured once, printed beside criterion's figures.
fn allocations_per_call(what: &str, n: u64, mut f: impl FnMut()) {
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        f();
    }
    let stats = region.change();
    eprintln!(
        "{what}: {:.2} allocations and {:.1} bytes allocated per call ({n} calls)",
        stats.allocations as f64 / n as f64,
        stats.bytes_allocated as f64 / n as f64
    );
}

fn rpc(c: &mut Criterion) {
    let hits = Arc::new(AtomicU64::new(0));
    let mut api = server(hits.clone());
    let packet = call_packet();
    let args = arguments();
    let mut g = c.benchmark_group("api/rpc");
    g.bench_function("receive: decode and dispatch", |b| {
        b.iter(|| receive_one(&mut api, &packet))
    });
    g.bench_function("reply: encode and send", |b| {
        b.iter(|| send_one(&mut api, &args))
    });
    g.finish();
    let before = hits.load(Ordering::Relaxed);
    allocations_per_call("api/rpc receive", 10_000, || receive_one(&mut api, &packet));
    assert_eq!(
        hits.load(Ordering::Relaxed) - before,
        10_000,
        "every call dispatched"
    );
    allocations_per_call("api/rpc reply", 10_000, || send_one(&mut api, &args));
    assert_eq!(api.call_stats().rejected() + api.call_stats().malformed, 0);
}

criterion_group!(benches, rpc);
criterion_main!(benches);
