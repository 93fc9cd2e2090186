//! The relay's routing decision for one packet with 8, 64, 512 and 4095 connected clients:
//! `relay::route()` plus walking the destination set over a `BTreeMap` of that many ids, as
//! `ENetMultiplayerPeer`'s server does for every packet it relays (the map's values stand in
//! for the peer handles handed to `send_many`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use enet_multiplayer::relay::{route, Forward};
use enet_multiplayer::PeerId;
use std::collections::BTreeMap;
use std::hint::black_box;

/// Spread-out ids, as random client ids are.
fn ids(n: usize) -> Vec<PeerId> {
    (0..n as u64)
        .map(|i| (2 + (i * 2_654_435_761) % (i32::MAX as u64 - 2)) as PeerId)
        .collect()
}

/// Routes one packet and walks its destinations; returns (local?, destinations, handle sum).
fn decide(clients: &BTreeMap<PeerId, u64>, sender: PeerId, target: i32) -> (bool, usize, u64) {
    let Ok(r) = route(sender, target, true, |id| clients.contains_key(&id)) else {
        return (false, 0, 0);
    };
    let (mut n, mut sum) = (0, 0u64);
    match r.forward {
        Forward::Nobody => {}
        Forward::One(id) => {
            if let Some(h) = clients.get(&id) {
                n = 1;
                sum = *h;
            }
        }
        all @ Forward::AllExcept { .. } => {
            for (_, h) in clients.iter().filter(|(id, _)| all.includes(**id)) {
                n += 1;
                sum = sum.wrapping_add(*h);
            }
        }
    }
    (r.local, n, sum)
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay/route");
    for n in [8usize, 64, 512, 4095] {
        let list = ids(n);
        let clients: BTreeMap<PeerId, u64> = list
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as u64))
            .collect();
        let sender = list[n / 3];
        let other = list[(n / 3 + 1) % n];
        let cases = [
            ("broadcast", 0i32, n - 1),
            ("exclude", -(other as i32), n.saturating_sub(2)),
            ("peer", other as i32, 1),
        ];
        for (name, target, dests) in cases {
            assert_eq!(decide(&clients, sender, target).1, dests, "{name} {n}");
            g.throughput(Throughput::Elements(dests as u64));
            g.bench_with_input(BenchmarkId::new(name, n), &target, |b, t| {
                b.iter(|| decide(black_box(&clients), black_box(sender), black_box(*t)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
