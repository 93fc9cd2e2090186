//! The Variant codec on the RPC hot path: decoding and encoding the typical arguments of an
//! RPC (a Vector2, an int, a short String, one after the other as in a packet) and a bigger
//! composite (a dictionary of arrays, pools and strings) (`enet_multiplayer::variant`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use enet_multiplayer::variant::{Dictionary, NodePath, Variant, Vector2, Vector3};
use std::hint::black_box;

fn rpc_args() -> Vec<Variant> {
    vec![Vector2::new(12.5, -3.25).into(), 42.into(), "fire".into()]
}

fn composite() -> Variant {
    let players: Vec<Variant> = (0..16)
        .map(|i| {
            let d: Dictionary = [
                ("id", Variant::from(i * 7919)),
                ("name", format!("player{i}").into()),
                ("pos", Vector2::new(i as f32, -(i as f32)).into()),
                ("hp", (100.0 - f64::from(i)).into()),
            ]
            .into_iter()
            .collect();
            d.into()
        })
        .collect();
    let state: Dictionary = [
        ("tick", Variant::from(123_456)),
        ("players", Variant::Array(players)),
        ("path", NodePath::from("/root/Main/World:position").into()),
        ("terrain", vec![7u8; 256].into()),
        (
            "heights",
            (0..64).map(|i| i as f32).collect::<Vec<f32>>().into(),
        ),
        ("points", vec![Vector3::new(1.0, 2.0, 3.0); 16].into()),
        ("tags", vec!["alpha", "beta", "gamma"].into()),
    ]
    .into_iter()
    .collect();
    state.into()
}

fn rpc(c: &mut Criterion) {
    let args = rpc_args();
    let mut bytes = Vec::new();
    for a in &args {
        a.encode(&mut bytes);
    }
    let mut g = c.benchmark_group("variant/rpc_args");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let bytes = black_box(&bytes[..]);
            let (a, n) = Variant::decode(bytes).unwrap();
            let (b, m) = Variant::decode(&bytes[n..]).unwrap();
            let (c, _) = Variant::decode(&bytes[n + m..]).unwrap();
            (a, b, c)
        })
    });
    let mut out = Vec::with_capacity(256);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            for a in black_box(&args) {
                a.encode(&mut out);
            }
            black_box(out.len())
        })
    });
    for (name, v) in ["vector2", "int", "string"].into_iter().zip(&args) {
        let one = v.to_bytes();
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| Variant::decode(black_box(&one[..])).unwrap())
        });
    }
    g.finish();
}

fn big(c: &mut Criterion) {
    let v = composite();
    let bytes = v.to_bytes();
    let mut g = c.benchmark_group("variant/composite");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| Variant::decode(black_box(&bytes[..])).unwrap())
    });
    let mut out = Vec::with_capacity(bytes.len());
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(&v).encode(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, rpc, big);
criterion_main!(benches);
