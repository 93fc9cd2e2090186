//! What decoding a Variant allocates, counted by stats_alloc (a counting wrapper of the system
//! allocator, no unsafe code here): huge declared counts fail with bounded memory, nesting does
//! not multiply it, and the RPC hot path allocates only the String. Allocations are counted
//! process-wide, so this binary holds one test that runs the checks in turn.

use enet_multiplayer::variant::{Variant, Vector2};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Runs `f` and returns its result with the allocations (and reallocations) and the bytes
/// requested meanwhile.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    let bytes = change.bytes_allocated + change.bytes_reallocated.max(0) as usize;
    (out, change.allocations + change.reallocations, bytes)
}

fn v2(x: f32, y: f32) -> Vector2 {
    Vector2::new(x, y)
}

#[test]
fn decoding_allocates_within_bounds() {
    huge_declared_counts_fail_fast_with_bounded_memory();
    nested_huge_counts_do_not_multiply_memory();
    hot_path_allocates_only_the_string();
}

fn huge_declared_counts_fail_fast_with_bounded_memory() {
    let max = 0x7fff_ffffu32.to_le_bytes();
    let all = 0xffff_ffffu32.to_le_bytes();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for type_id in [4u8, 15, 18, 19, 20, 21, 22, 23, 24, 25, 26] {
        for count in [max, all] {
            let mut b = vec![type_id, 0, 0, 0];
            b.extend_from_slice(&count);
            b.extend_from_slice(&count);
            b.extend_from_slice(&[0; 4]);
            cases.push(b);
        }
    }
    // Nested: an array of one huge array.
    let mut nested = vec![19, 0, 0, 0, 1, 0, 0, 0, 19, 0, 0, 0];
    nested.extend_from_slice(&max);
    cases.push(nested);
    for case in cases {
        let start = Instant::now();
        let (r, _, bytes) = counted(|| Variant::decode(&case));
        assert!(r.is_err(), "{case:02x?} decoded: {r:?}");
        assert!(bytes <= 1024, "{case:02x?}: {bytes} bytes allocated");
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}

fn nested_huge_counts_do_not_multiply_memory() {
    // 1000 levels, each declaring all the elements the rest of the packet could hold.
    let levels = 1000;
    let mut bytes = Vec::new();
    for i in 0..levels {
        let left = (levels - i) * 8 - 8;
        bytes.extend_from_slice(&[19, 0, 0, 0]);
        bytes.extend_from_slice(&((left / 4) as u32).to_le_bytes());
    }
    let (r, _, allocated) = counted(|| Variant::decode(&bytes));
    assert!(r.is_err());
    // Reservations are bounded by the bytes left (a Variant is 32 bytes per 4 input bytes),
    // plus the explicit stack: well under 64 bytes per input byte.
    assert!(
        allocated < 64 * bytes.len(),
        "{allocated} bytes allocated for {} input bytes",
        bytes.len()
    );
}

fn hot_path_allocates_only_the_string() {
    let mut bytes = Vec::new();
    Variant::from(v2(1.5, -2.0)).encode(&mut bytes);
    Variant::from(42).encode(&mut bytes);
    Variant::from("hello").encode(&mut bytes);
    let ((a, b, c), allocations, _) = counted(|| {
        let (a, n) = Variant::decode(&bytes).unwrap();
        let (b, m) = Variant::decode(&bytes[n..]).unwrap();
        let (c, _) = Variant::decode(&bytes[n + m..]).unwrap();
        (a, b, c)
    });
    assert_eq!(allocations, 1);
    assert_eq!(a, v2(1.5, -2.0).into());
    assert_eq!(b, 42.into());
    assert_eq!(c, "hello".into());
    // Encoding into a buffer with room allocates nothing.
    let mut out = Vec::with_capacity(64);
    let ((), allocations, _) = counted(|| {
        a.encode(&mut out);
        b.encode(&mut out);
        c.encode(&mut out);
    });
    assert_eq!(allocations, 0);
    assert_eq!(out, bytes);
}
