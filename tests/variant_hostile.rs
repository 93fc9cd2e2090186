//! The Variant decoder facing hostile bytes: truncation, mutation, huge declared counts,
//! deep nesting; plus property tests of encode/decode. What decoding allocates is measured in
//! tests/variant_alloc.rs (a single-test binary, since allocations are counted process-wide).

use enet_multiplayer::variant::{
    Aabb, Basis, Color, DecodeError, Dictionary, NodePath, ObjectId, Plane, Quat, Rect2, Transform,
    Transform2D, Variant, Vector2, Vector3, MAX_DEPTH,
};
use proptest::prelude::*;

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
