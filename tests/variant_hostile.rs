//! The Variant decoder facing hostile bytes: truncation, mutation, huge declared counts,
//! deep nesting; plus property tests of encode/decode and the allocations of the hot path.
//!
//! A counting global allocator measures, per thread, what a decode allocates.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use enet_multiplayer::variant::{
    Aabb, Basis, Color, DecodeError, Dictionary, NodePath, ObjectId, Plane, Quat, Rect2, Transform,
    Transform2D, Variant, Vector2, Vector3, MAX_DEPTH,
};
use proptest::prelude::*;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            let _ = BYTES.try_with(|b| b.set(b.get() + size));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// const-initialised thread-local `Cell`s, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the allocations and bytes it requested on this thread.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    BYTES.with(|b| b.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (out, ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get))
}

fn v2(x: f32, y: f32) -> Vector2 {
    Vector2::new(x, y)
}

fn v3(x: f32, y: f32, z: f32) -> Vector3 {
    Vector3::new(x, y, z)
}

/// One value of every type, nested.
fn big_composite() -> Variant {
    let mut d = Dictionary::new();
    d.insert("name".into(), "héllo ✓".into());
    d.insert(
        Variant::Vector2(v2(1.0, 2.0)),
        Variant::Array(vec![1.into(), 5_000_000_000i64.into()]),
    );
    d.insert(
        Variant::Int(3),
        Variant::Dictionary(Dictionary::from_iter([("x", 0.1)])),
    );
    Variant::Array(vec![
        Variant::Nil,
        true.into(),
        (-5).into(),
        i64::MIN.into(),
        0.5.into(),
        0.1.into(),
        "abc".into(),
        "".into(),
        v2(1.0, 2.0).into(),
        Rect2::default().into(),
        v3(1.0, 2.0, 3.0).into(),
        Transform2D::default().into(),
        Plane::default().into(),
        Quat::default().into(),
        Aabb::default().into(),
        Basis::default().into(),
        Transform::default().into(),
        Color::rgba(0.1, 0.2, 0.3, 0.4).into(),
        NodePath::from("/root/Main/Player:position:x").into(),
        Variant::Rid,
        ObjectId(42).into(),
        d.into(),
        Variant::Array(vec![Variant::Array(vec![Variant::Nil])]),
        vec![1u8, 2, 3].into(),
        vec![1i32, -1].into(),
        vec![0.25f32].into(),
        vec!["a", "bcd", ""].into(),
        vec![v2(1.0, 2.0)].into(),
        vec![v3(1.0, 2.0, 3.0)].into(),
        vec![Color::default()].into(),
    ])
}

#[test]
fn truncation_at_every_byte_is_an_error() {
    let bytes = big_composite().to_bytes();
    assert!(bytes.len() > 400);
    assert_eq!(Variant::decode(&bytes).unwrap().1, bytes.len());
    for cut in 0..bytes.len() {
        let r = Variant::decode(&bytes[..cut]);
        assert!(r.is_err(), "a {cut}-byte prefix decoded: {r:?}");
    }
}

#[test]
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

#[test]
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

fn nested(depth: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..depth {
        b.extend_from_slice(&[19, 0, 0, 0]);
        b.extend_from_slice(&u32::from(i + 1 != depth).to_le_bytes());
    }
    b
}

#[test]
fn depth_limit() {
    // In this (default-sized) test thread: decoding does not recurse.
    let (v, used) = Variant::decode(&nested(MAX_DEPTH)).unwrap();
    assert_eq!(used, MAX_DEPTH * 8);
    assert_eq!(v.to_bytes(), nested(MAX_DEPTH));
    assert_eq!(
        Variant::decode(&nested(MAX_DEPTH + 1)),
        Err(DecodeError::TooDeep)
    );
    // Far deeper than any stack would allow with recursion.
    assert_eq!(Variant::decode(&nested(200_000)), Err(DecodeError::TooDeep));
}

#[test]
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

fn finite_f32() -> impl Strategy<Value = f32> + Clone {
    prop_oneof![
        any::<f32>().prop_filter("not NaN", |x| !x.is_nan()),
        Just(0.0f32),
        Just(-0.0f32),
        Just(f32::INFINITY),
    ]
}

fn any_f32_bits() -> impl Strategy<Value = f32> + Clone {
    any::<u32>().prop_map(f32::from_bits)
}

fn text() -> impl Strategy<Value = String> {
    // Godot's strings end at a NUL and drop a leading BOM: keep to strings that survive.
    "[^\u{0}\u{feff}]{0,12}"
}

/// Any Variant; `float` makes the f32 components (NaN-free for equality checks).
fn variant<F: Strategy<Value = f32> + Clone + 'static>(
    float: F,
    f64s: BoxedStrategy<f64>,
) -> impl Strategy<Value = Variant> {
    let f = float;
    let vec2 = (f.clone(), f.clone()).prop_map(|(x, y)| Vector2 { x, y });
    let vec3 = (f.clone(), f.clone(), f.clone()).prop_map(|(x, y, z)| Vector3 { x, y, z });
    let color =
        (f.clone(), f.clone(), f.clone(), f.clone()).prop_map(|(r, g, b, a)| Color { r, g, b, a });
    let basis =
        (vec3.clone(), vec3.clone(), vec3.clone()).prop_map(|(a, b, c)| Basis { rows: [a, b, c] });
    let leaf = prop_oneof![
        Just(Variant::Nil),
        any::<bool>().prop_map(Variant::Bool),
        any::<i64>().prop_map(Variant::Int),
        any::<i32>().prop_map(Variant::from),
        f64s.prop_map(Variant::Float),
        text().prop_map(Variant::String),
        vec2.clone().prop_map(Variant::Vector2),
        (vec2.clone(), vec2.clone())
            .prop_map(|(position, size)| Variant::Rect2(Rect2 { position, size })),
        vec3.clone().prop_map(Variant::Vector3),
        (vec2.clone(), vec2.clone(), vec2.clone())
            .prop_map(|(x, y, origin)| Variant::Transform2D(Transform2D { x, y, origin })),
        (vec3.clone(), f.clone()).prop_map(|(normal, d)| Variant::Plane(Plane { normal, d })),
        color.clone().prop_map(|c| Variant::Quat(Quat {
            x: c.r,
            y: c.g,
            z: c.b,
            w: c.a
        })),
        (vec3.clone(), vec3.clone())
            .prop_map(|(position, size)| Variant::Aabb(Aabb { position, size })),
        basis.clone().prop_map(Variant::Basis),
        (basis, vec3.clone())
            .prop_map(|(basis, origin)| Variant::Transform(Transform { basis, origin })),
        color.clone().prop_map(Variant::Color),
        (
            prop::collection::vec(text(), 0..4),
            prop::collection::vec(text(), 0..3),
            any::<bool>()
        )
            .prop_map(|(names, subnames, absolute)| Variant::NodePath(NodePath {
                names,
                subnames,
                absolute
            })),
        Just(Variant::Rid),
        any::<u64>().prop_map(|id| Variant::Object(ObjectId(id))),
        prop::collection::vec(any::<u8>(), 0..9).prop_map(Variant::PoolByteArray),
        prop::collection::vec(any::<i32>(), 0..4).prop_map(Variant::PoolIntArray),
        prop::collection::vec(f.clone(), 0..4).prop_map(Variant::PoolRealArray),
        prop::collection::vec(text(), 0..4).prop_map(Variant::PoolStringArray),
        prop::collection::vec(vec2, 0..3).prop_map(Variant::PoolVector2Array),
        prop::collection::vec(vec3, 0..3).prop_map(Variant::PoolVector3Array),
        prop::collection::vec(color, 0..3).prop_map(Variant::PoolColorArray),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Variant::Array),
            prop::collection::vec((inner.clone(), inner), 0..5)
                .prop_map(|pairs| Variant::Dictionary(pairs.into_iter().collect())),
        ]
    })
}

fn equatable() -> impl Strategy<Value = Variant> {
    variant(
        finite_f32(),
        any::<f64>().prop_filter("not NaN", |x| !x.is_nan()).boxed(),
    )
}

fn any_bits() -> impl Strategy<Value = Variant> {
    variant(
        any_f32_bits(),
        any::<u64>().prop_map(f64::from_bits).boxed(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_is_identity(v in equatable()) {
        let bytes = v.to_bytes();
        prop_assert_eq!(bytes.len(), v.encoded_len());
        prop_assert_eq!(bytes.len() % 4, 0);
        let (back, used) = Variant::decode(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, v);
    }

    #[test]
    fn decode_then_encode_reproduces_canonical_bytes(v in any_bits()) {
        // NaN payloads included: what the encoder writes decodes to what encodes the same.
        let bytes = v.to_bytes();
        let (back, used) = Variant::decode(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        v in any_bits(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let mut bytes = v.to_bytes();
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ if i < bytes.len() => { bytes.remove(i); }
                _ => {}
            }
        }
        if let Ok((v, used)) = Variant::decode(&bytes) {
            prop_assert!(used <= bytes.len());
            let _ = v.to_bytes();
            let _ = v.to_string();
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok((v, used)) = Variant::decode(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(used % 4, 0);
            let _ = v.to_string();
        }
    }

    #[test]
    fn random_words_with_valid_headers_never_panic(
        words in prop::collection::vec(
            prop_oneof![0u32..27, (0u32..27).prop_map(|t| t | 1 << 16), any::<u32>(), 0u32..16],
            0..64,
        ),
    ) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        if let Ok((_, used)) = Variant::decode(&bytes) {
            prop_assert!(used <= bytes.len());
        }
    }
}
