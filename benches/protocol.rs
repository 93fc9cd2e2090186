//! Bytes on the wire: the 8-byte data header and the 8-byte system messages, encoded and
//! decoded (`enet_multiplayer::protocol`).

use criterion::{criterion_group, criterion_main, Criterion};
use enet_multiplayer::protocol::{Header, SystemMessage};
use std::hint::black_box;

fn header(c: &mut Criterion) {
    let h = Header {
        source: 1_234_567_890,
        target: -987_654,
    };
    let mut packet = h.encode().to_vec();
    packet.extend_from_slice(&[0xA5; 32]);
    let mut g = c.benchmark_group("protocol/header");
    g.bench_function("encode", |b| b.iter(|| black_box(black_box(h).encode())));
    g.bench_function("decode", |b| {
        b.iter(|| Header::decode(black_box(&packet[..])))
    });
    g.finish();
}

fn system_message(c: &mut Criterion) {
    let add = SystemMessage::AddPeer(1_234_567_890);
    let bytes = SystemMessage::RemovePeer(42).encode();
    let mut g = c.benchmark_group("protocol/system_message");
    g.bench_function("encode", |b| b.iter(|| black_box(black_box(add).encode())));
    g.bench_function("decode", |b| {
        b.iter(|| SystemMessage::decode(black_box(&bytes[..])))
    });
    g.finish();
}

criterion_group!(benches, header, system_message);
criterion_main!(benches);
