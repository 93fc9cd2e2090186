//! Unit tests: the bytes (engine-captured where noted), round trips, errors, Display.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn enc(v: &Variant) -> Vec<u8> {
    let out = v.to_bytes();
    assert_eq!(out.len(), v.encoded_len(), "encoded_len of {v:?}");
    assert_eq!(out.len() % 4, 0, "padding of {v:?}");
    out
}

fn dec(bytes: &[u8]) -> Variant {
    let (v, used) = Variant::decode(bytes).unwrap();
    assert_eq!(used, bytes.len());
    v
}

/// Encodes to exactly `hex` and decodes back to `v`.
#[track_caller]
fn check(v: Variant, expected: &str) {
    let bytes = hex(expected);
    assert_eq!(enc(&v), bytes, "encoding of {v:?}");
    assert_eq!(dec(&bytes), v, "decoding of {expected}");
}

fn v2(x: f32, y: f32) -> Vector2 {
    Vector2::new(x, y)
}

fn v3(x: f32, y: f32, z: f32) -> Vector3 {
    Vector3::new(x, y, z)
}

#[test]
fn examples_from_the_wire_contract() {
    // MULTIPLAYER_API.md, seen from the engine. Its int example reads
    // `02000100 f2052a0100000000`, a byte short at the front: Godot 3.2.3 sends
    // 5_000_000_000 = 0x1_2A05_F200 as below.
    check(Variant::Int(5_000_000_000), "02000100 00f2052a 01000000");
    check(Variant::Float(0.1), "03000100 9a9999999999b93f");
    check(
        Variant::from(vec!["ab", "c"]),
        "17000000 02000000 03000000 61620000 02000000 63000000",
    );
    // The RPC `to_client(7)` argument and the RSET `rv = 3` value.
    check(Variant::Int(7), "02000000 07000000");
    check(Variant::Int(3), "02000000 03000000");
}

#[test]
fn scalars_as_the_engine_encodes_them() {
    // All captured from Godot 3.2.3 `var2bytes(...).hex_encode()`.
    check(Variant::Nil, "00000000");
    check(Variant::Bool(true), "01000000 01000000");
    check(Variant::Bool(false), "01000000 00000000");
    check(Variant::Int(-12), "02000000 f4ffffff");
    check(Variant::Int(2147483647), "02000000 ffffff7f");
    check(Variant::Int(2147483648), "02000100 0000008000000000");
    check(Variant::Int(-2147483648), "02000000 00000080");
    check(Variant::Int(i64::MIN), "02000100 0000000000000080");
    check(Variant::Float(0.5), "03000000 0000003f");
    check(Variant::Float(-3.25), "03000000 000050c0");
    check(Variant::Float(1e300), "03000100 9c7500883ce4377e");
    check(Variant::Float(16777217.0), "03000100 0000001000007041");
    check(Variant::Float(f64::INFINITY), "03000000 0000807f");
    check(Variant::Float(f64::NEG_INFINITY), "03000000 000080ff");
    check(Variant::Float(-0.0), "03000000 00000080");
    // NaN never equals itself, so Godot's "survives f32" test sends it as f64.
    let nan = hex("03000100 000000000000f87f");
    assert_eq!(enc(&Variant::Float(f64::NAN)), nan);
    match dec(&nan) {
        Variant::Float(f) => assert!(f.is_nan()),
        other => panic!("{other:?}"),
    }
    check(Variant::Rid, "10000000");
    check(Variant::Object(ObjectId(1288)), "11000100 0805000000000000");
    check(Variant::Object(ObjectId(0)), "11000100 0000000000000000");
}

#[test]
fn strings_and_paths_as_the_engine_encodes_them() {
    check(Variant::from(""), "04000000 00000000");
    check(
        Variant::from("héllo ✓"),
        "04000000 0a000000 68c3a96c 6c6f20e2 9c930000",
    );
    check(
        Variant::NodePath("A/B".into()),
        "0f000000 02000080 00000000 00000000 01000000 41000000 01000000 42000000",
    );
    check(
        Variant::NodePath("..".into()),
        "0f000000 01000080 00000000 00000000 02000000 2e2e0000",
    );
    check(
        Variant::NodePath(":prop".into()),
        "0f000000 00000080 01000000 00000000 04000000 70726f70",
    );
    check(
        Variant::NodePath(NodePath::default()),
        "0f000000 00000080 00000000 00000000",
    );
    // The engine's padding here is not zero (seen: 41 004040): it must be accepted.
    let engine = "0f000000 03000080 02000000 01000000 04000000 726f6f74 01000000 41004040 \
                  01000000 42001041 01000000 78003041 01000000 79000000";
    let path: NodePath = "/root/A/B:x:y".parse().unwrap();
    assert_eq!(dec(&hex(engine)), Variant::NodePath(path.clone()));
    check(
        Variant::NodePath(path),
        "0f000000 03000080 02000000 01000000 04000000 726f6f74 01000000 41000000 \
         01000000 42000000 01000000 78000000 01000000 79000000",
    );
}

#[test]
fn math_types_as_the_engine_encodes_them() {
    check(Variant::Vector2(v2(1.0, 2.5)), "05000000 0000803f 00002040");
    check(
        Variant::Rect2(Rect2 {
            position: v2(1.0, 2.0),
            size: v2(3.0, 4.0),
        }),
        "06000000 0000803f 00000040 00004040 00008040",
    );
    check(
        Variant::Vector3(v3(1.0, 2.0, 3.0)),
        "07000000 0000803f 00000040 00004040",
    );
    check(
        Variant::Transform2D(Transform2D {
            x: v2(1.0, 2.0),
            y: v2(3.0, 4.0),
            origin: v2(5.0, 6.0),
        }),
        "08000000 0000803f 00000040 00004040 00008040 0000a040 0000c040",
    );
    check(
        Variant::Plane(Plane {
            normal: v3(1.0, 2.0, 3.0),
            d: 4.0,
        }),
        "09000000 0000803f 00000040 00004040 00008040",
    );
    check(
        Variant::Quat(Quat {
            x: 1.0,
            y: 2.0,
            z: 3.0,
            w: 4.0,
        }),
        "0a000000 0000803f 00000040 00004040 00008040",
    );
    check(
        Variant::Aabb(Aabb {
            position: v3(1.0, 2.0, 3.0),
            size: v3(4.0, 5.0, 6.0),
        }),
        "0b000000 0000803f 00000040 00004040 00008040 0000a040 0000c040",
    );
    // GDScript's Basis(Vector3(1,2,3), Vector3(4,5,6), Vector3(7,8,9)) takes columns.
    let basis = Basis {
        rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)],
    };
    check(
        Variant::Basis(basis),
        "0c000000 0000803f 00008040 0000e040 00000040 0000a040 00000041 00004040 0000c040 \
         00001041",
    );
    check(
        Variant::Transform(Transform {
            basis,
            origin: v3(10.0, 11.0, 12.0),
        }),
        "0d000000 0000803f 00008040 0000e040 00000040 0000a040 00000041 00004040 0000c040 \
         00001041 00002041 00003041 00004041",
    );
    check(
        Variant::Color(Color::rgba(0.1, 0.2, 0.3, 0.4)),
        "0e000000 cdcccc3d cdcc4c3e 9a99993e cdcccc3e",
    );
}

#[test]
fn containers_as_the_engine_encodes_them() {
    let mut d = Dictionary::new();
    d.insert("a".into(), 1.into());
    d.insert(2.into(), Variant::Array(vec![3.into()]));
    check(
        Variant::Dictionary(d),
        "12000000 02000000 04000000 01000000 61000000 02000000 01000000 02000000 02000000 \
         13000000 01000000 02000000 03000000",
    );
    check(
        Variant::Array(vec![1.into(), "a".into(), v2(1.0, 2.0).into()]),
        "13000000 03000000 02000000 01000000 04000000 01000000 61000000 05000000 0000803f \
         00000040",
    );
    check(Variant::Array(vec![]), "13000000 00000000");
    check(Variant::Dictionary(Dictionary::new()), "12000000 00000000");
    check(
        Variant::from(&[1u8, 2, 3][..]),
        "14000000 03000000 01020300",
    );
    check(
        Variant::PoolIntArray(vec![1, -2]),
        "15000000 02000000 01000000 feffffff",
    );
    check(
        Variant::PoolRealArray(vec![0.5, 0.1]),
        "16000000 02000000 0000003f cdcccc3d",
    );
    check(
        Variant::PoolVector2Array(vec![v2(1.0, 2.0)]),
        "18000000 01000000 0000803f 00000040",
    );
    check(
        Variant::PoolVector3Array(vec![v3(1.0, 2.0, 3.0)]),
        "19000000 01000000 0000803f 00000040 00004040",
    );
    check(
        Variant::PoolColorArray(vec![Color::rgba(1.0, 0.0, 0.0, 1.0)]),
        "1a000000 01000000 0000803f 00000000 00000000 0000803f",
    );
    for id in 20..=26u8 {
        let v = dec(&[id, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(v.variant_type().id(), id);
        assert_eq!(enc(&v), [id, 0, 0, 0, 0, 0, 0, 0]);
    }
}

fn sample_values() -> Vec<Variant> {
    let mut d = Dictionary::new();
    d.insert("k".into(), Variant::Array(vec![Variant::Nil, 1.5.into()]));
    d.insert(Variant::Vector2(v2(1.0, 2.0)), "v".into());
    vec![
        Variant::Nil,
        true.into(),
        0.into(),
        i64::MAX.into(),
        (-2147483649i64).into(),
        0.1f32.into(),
        1e-300.into(),
        "x".into(),
        "abcd".into(),
        "日本".into(),
        Variant::Vector2(v2(-1.0, f32::MAX)),
        Variant::Rect2(Rect2::default()),
        Variant::Vector3(v3(1.0, -2.0, 3.5)),
        Variant::Transform2D(Transform2D::default()),
        Variant::Plane(Plane::default()),
        Variant::Quat(Quat::default()),
        Variant::Aabb(Aabb::default()),
        Variant::Basis(Basis::default()),
        Variant::Transform(Transform::default()),
        Variant::Color(Color::rgba(0.0, 0.5, 1.0, 0.25)),
        Variant::NodePath("/root/Main/Player:position:x".into()),
        Variant::Rid,
        Variant::Object(ObjectId(u64::MAX)),
        Variant::Dictionary(d.clone()),
        Variant::Array(vec![Variant::Dictionary(d), Variant::Array(vec![])]),
        Variant::PoolByteArray(vec![1, 2, 3, 4, 5]),
        Variant::PoolIntArray(vec![i32::MIN, i32::MAX]),
        Variant::PoolRealArray(vec![1.0, -0.0]),
        Variant::PoolStringArray(vec![String::new(), "abc".into(), "abcd".into()]),
        Variant::PoolVector2Array(vec![v2(1.0, 2.0), v2(3.0, 4.0)]),
        Variant::PoolVector3Array(vec![v3(1.0, 2.0, 3.0)]),
        Variant::PoolColorArray(vec![Color::default()]),
    ]
}

#[test]
fn every_type_round_trips_alone_and_in_sequence() {
    let values = sample_values();
    let mut covered: Vec<VariantType> = values.iter().map(Variant::variant_type).collect();
    covered.dedup();
    assert_eq!(covered, VariantType::ALL);
    let mut all = Vec::new();
    for v in &values {
        let bytes = enc(v);
        assert_eq!(&dec(&bytes), v);
        v.encode(&mut all);
    }
    let mut at = 0;
    for v in &values {
        let (got, used) = Variant::decode(&all[at..]).unwrap();
        assert_eq!(&got, v);
        at += used;
    }
    assert_eq!(at, all.len());
}

#[test]
fn variant_type_ids_and_names() {
    for (i, t) in VariantType::ALL.iter().enumerate() {
        assert_eq!(usize::from(t.id()), i);
        assert_eq!(VariantType::from_id(i as u8), Some(*t));
    }
    assert_eq!(VariantType::from_id(27), None);
    assert_eq!(VariantType::Float.to_string(), "float");
    assert_eq!(VariantType::Aabb.to_string(), "AABB");
    assert_eq!(VariantType::Rid.to_string(), "RID");
    assert_eq!(VariantType::Nil.to_string(), "Nil");
    assert_eq!(VariantType::PoolColorArray.to_string(), "PoolColorArray");
}

#[test]
fn decoding_is_as_permissive_as_godot() {
    // Header bits other than the type and bit 16 are ignored (seen in the engine).
    assert_eq!(dec(&hex("02ff0080 05000000")), Variant::Int(5));
    assert_eq!(dec(&hex("02000200 05000000")), Variant::Int(5));
    // Bit 16 means nothing for a Vector2 in Godot 3.
    assert_eq!(
        dec(&hex("05000100 0000803f 00000040")),
        Variant::Vector2(v2(1.0, 2.0))
    );
    // Bit 31 of an array count is the "shared" flag.
    assert_eq!(
        dec(&hex("13000000 01000080 02000000 07000000")),
        Variant::Array(vec![7.into()])
    );
    // Bit 1 of the NodePath flags: the obsolete format, one more subname.
    assert_eq!(
        dec(&hex(
            "0f000000 01000080 00000000 02000000 01000000 41000000 01000000 78000000"
        )),
        Variant::NodePath("A:x".into())
    );
    // A leading BOM is dropped; the text ends at the first NUL (Godot's parse_utf8).
    assert_eq!(
        dec(&hex("04000000 06000000 efbbbf61 62630000")),
        "abc".into()
    );
    assert_eq!(dec(&hex("04000000 03000000 61006200")), "a".into());
    // A bool is any non-zero u32.
    assert_eq!(dec(&hex("01000000 02000000")), Variant::Bool(true));
    // Duplicate dictionary keys: first place, last value.
    let v = dec(&hex(
        "12000000 02000000 02000000 01000000 02000000 02000000 02000000 01000000 02000000 03000000",
    ));
    let d = v.as_dictionary().unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d.get(&1.into()), Some(&Variant::Int(3)));
}

#[test]
fn decoding_errors() {
    use DecodeError as E;
    let err = |s: &str| Variant::decode(&hex(s)).unwrap_err();
    assert_eq!(err("1b000000"), E::InvalidType(27));
    assert_eq!(err("ff000000"), E::InvalidType(255));
    assert_eq!(
        err(""),
        E::Truncated {
            needed: 4,
            available: 0
        }
    );
    assert_eq!(
        err("02000100 05000000"),
        E::Truncated {
            needed: 12,
            available: 8
        }
    );
    // Old NodePath format (a plain string).
    assert_eq!(err("0f000000 01000000 41000000"), E::InvalidNodePath);
    // Full object encoding.
    assert_eq!(err("11000000 00000000"), E::FullObjectNotAllowed);
    assert_eq!(err("04000000 02000000 fffe0000"), E::InvalidUtf8);
    // A string's padding must be there (Godot: "strlen + pad > len").
    assert!(matches!(
        err("04000000 03000000 616263"),
        E::Truncated { .. }
    ));
    assert!(matches!(
        err("13000000 ffffff7f 00000000"),
        E::CountTooLarge {
            count: 0x7fff_ffff,
            ..
        }
    ));
    assert!(matches!(
        err("12000000 02000000 00000000 00000000"),
        E::CountTooLarge { count: 2, .. }
    ));
    assert!(matches!(err("15000000 ffffffff"), E::CountTooLarge { .. }));
    assert!(matches!(err("14000000 ffffffff"), E::Truncated { .. }));
    assert!(matches!(err("04000000 ffffffff"), E::Truncated { .. }));
    assert!(matches!(
        err("0f000000 ffffffff ffffffff 00000000"),
        E::CountTooLarge { .. }
    ));
    assert!(matches!(
        err("17000000 ffffff7f 00000000"),
        E::CountTooLarge { .. }
    ));
    assert!(err("13000000 02000000 00000000").to_string().contains("2"));
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..depth {
        bytes.extend_from_slice(&[0x13, 0, 0, 0]);
        let n: u32 = if i + 1 == depth { 0 } else { 1 };
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    bytes
}

#[test]
fn nesting_limit_in_a_default_test_thread() {
    // Decoding uses an explicit stack; encoding, Display, Clone, == and Drop recurse: all of
    // them must fit 1024 levels in a 2 MiB stack (the default for test threads), in debug too.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let ok = nested_arrays(MAX_DEPTH);
            let v = dec(&ok);
            assert_eq!(enc(&v), ok);
            let copy = v.clone();
            assert_eq!(copy, v);
            let text = v.to_string();
            assert_eq!(text.len(), 2 * MAX_DEPTH);
            drop(copy);
            assert_eq!(
                Variant::decode(&nested_arrays(MAX_DEPTH + 1)),
                Err(DecodeError::TooDeep)
            );
            // Dictionaries count too.
            let mut dicts = Vec::new();
            for _ in 0..MAX_DEPTH {
                dicts.extend_from_slice(&hex("12000000 01000000 00000000"));
            }
            dicts.extend_from_slice(&hex("13000000 00000000"));
            assert_eq!(Variant::decode(&dicts), Err(DecodeError::TooDeep));
            let fits = &dicts[12..];
            assert_eq!(Variant::decode(fits).unwrap().1, fits.len());
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn nested_declared_counts_do_not_multiply_reservations() {
    // 1000 arrays each declaring as many elements as the rest could hold: decoding fails at
    // the end; the reservations of all levels together stay within the packet's size.
    let depth = 1000;
    let mut bytes = Vec::new();
    for i in 0..depth {
        let left = (depth - i) * 8;
        bytes.extend_from_slice(&[0x13, 0, 0, 0]);
        bytes.extend_from_slice(&((left / 4 - 2) as u32).to_le_bytes());
    }
    assert!(Variant::decode(&bytes).is_err());
}

#[test]
fn large_dictionary_keeps_first_place_last_value() {
    let mut bytes = hex("12000000");
    let n = 200u32;
    bytes.extend_from_slice(&(2 * n).to_le_bytes());
    for round in 0..2 {
        for i in 0..n {
            Variant::Int(i64::from(i)).encode(&mut bytes);
            Variant::Int(i64::from(i + round * 1000)).encode(&mut bytes);
        }
    }
    let v = dec(&bytes);
    let d = v.as_dictionary().unwrap();
    assert_eq!(d.len(), n as usize);
    for (i, (k, v)) in d.iter().enumerate() {
        assert_eq!(k, &Variant::Int(i as i64));
        assert_eq!(v, &Variant::Int(i as i64 + 1000));
    }
    // NaN keys are one key, as in Godot; 1 and 1.0 are two.
    let d: Dictionary = [
        (Variant::Float(f64::NAN), 1),
        (Variant::Float(f64::NAN), 2),
        (Variant::Int(1), 3),
        (Variant::Float(1.0), 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(d.len(), 3);
    assert_eq!(d.get(&Variant::Float(f64::NAN)), Some(&Variant::Int(2)));
}

#[test]
fn dictionary_api() {
    let mut d: Dictionary = [("a", 1), ("b", 2), ("c", 3)].into_iter().collect();
    assert_eq!(d.insert("a".into(), 10.into()), Some(1.into()));
    assert_eq!(d.remove(&"b".into()), Some(2.into()));
    assert!(!d.contains_key(&"b".into()));
    assert!(d.contains_key(&"c".into()));
    for (_, v) in d.iter_mut() {
        *v = Variant::Int(v.get::<i64>().unwrap() + 1);
    }
    let keys: Vec<String> = d.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["a", "c"]);
    let values: Vec<i64> = d.values().map(|v| v.get().unwrap()).collect();
    assert_eq!(values, [11, 4]);
    *d.get_mut(&"c".into()).unwrap() = Variant::Nil;
    assert_eq!(d.to_string(), "{a:11, c:Null}");
    d.clear();
    assert!(d.is_empty());
}

#[test]
fn display_as_godot_prints() {
    // Expected strings printed by Godot 3.2.3's str().
    let cases: Vec<(Variant, &str)> = vec![
        (Variant::Nil, "Null"),
        (true.into(), "True"),
        (false.into(), "False"),
        ((-12).into(), "-12"),
        (2147483648i64.into(), "2147483648"),
        (0.1.into(), "0.1"),
        (0.5.into(), "0.5"),
        (1.5.into(), "1.5"),
        (100.0.into(), "100"),
        ((-0.0).into(), "-0"),
        ((1.0 / 3.0).into(), "0.333333"),
        (1e-7.into(), "0"),
        (1e-5.into(), "0.00001"),
        (0.0078125.into(), "0.007812"),
        (1.0000005.into(), "1.000001"),
        (123456789.0.into(), "123456789"),
        (1e20.into(), "100000000000000000000"),
        // GDScript parsed the literal 3.4e38 one ulp above Rust's 3.4e38.
        (
            f64::from_bits(0x47ef_f933_c78c_dfae).into(),
            "340000000000000033902778449003393581056",
        ),
        (f64::NAN.into(), "nan"),
        (f64::INFINITY.into(), "inf"),
        (f64::NEG_INFINITY.into(), "-inf"),
        ("héllo ✓".into(), "héllo ✓"),
        (v2(1.0, 2.5).into(), "(1, 2.5)"),
        (v2(0.1, 1e-7).into(), "(0.1, 0)"),
        (v2(f32::NAN, f32::NEG_INFINITY).into(), "(nan, -inf)"),
        (
            Rect2 {
                position: v2(1.0, 2.0),
                size: v2(3.0, 4.0),
            }
            .into(),
            "(1, 2, 3, 4)",
        ),
        (v3(1.0, 2.0, 3.0).into(), "(1, 2, 3)"),
        (
            Transform2D {
                x: v2(1.0, 2.0),
                y: v2(3.0, 4.0),
                origin: v2(5.0, 6.0),
            }
            .into(),
            "((1, 2), (3, 4), (5, 6))",
        ),
        (
            Plane {
                normal: v3(1.0, 2.0, 3.0),
                d: 4.0,
            }
            .into(),
            "1, 2, 3, 4",
        ),
        (
            Quat {
                x: 1.0,
                y: 2.0,
                z: 3.0,
                w: 4.0,
            }
            .into(),
            "(1, 2, 3, 4)",
        ),
        (
            Aabb {
                position: v3(1.0, 2.0, 3.0),
                size: v3(4.0, 5.0, 6.0),
            }
            .into(),
            "1, 2, 3 - 4, 5, 6",
        ),
        (
            Basis {
                rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)],
            }
            .into(),
            "((1, 4, 7), (2, 5, 8), (3, 6, 9))",
        ),
        (
            Transform {
                basis: Basis {
                    rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)],
                },
                origin: v3(10.0, 11.0, 12.0),
            }
            .into(),
            "1, 4, 7, 2, 5, 8, 3, 6, 9 - 10, 11, 12",
        ),
        (Color::rgba(0.1, 0.2, 0.3, 0.4).into(), "0.1,0.2,0.3,0.4"),
        (NodePath::from("/root/A/B:x:y").into(), "/root/A/B:x:y"),
        (NodePath::from(":prop").into(), ":prop"),
        (Variant::Rid, "[RID]"),
        (ObjectId(1288).into(), "[Object:1288]"),
        (ObjectId(0).into(), "[Object:null]"),
        (
            Variant::Array(vec![1.into(), "a".into(), v2(1.0, 2.0).into()]),
            "[1, a, (1, 2)]",
        ),
        (
            Variant::Array(vec![Variant::Nil, true.into(), false.into(), "x y".into()]),
            "[Null, True, False, x y]",
        ),
        (
            [
                ("a", Variant::Int(1)),
                ("2", Variant::Array(vec![3.into()])),
            ]
            .into_iter()
            .collect::<Dictionary>()
            .into(),
            "{2:[3], a:1}",
        ),
        (
            [("b", 1), ("a", 2), ("aa", 0), ("B", 3)]
                .into_iter()
                .collect::<Dictionary>()
                .into(),
            "{B:3, a:2, aa:0, b:1}",
        ),
        (
            [(Variant::Int(1), "x"), (Variant::from("1"), "y")]
                .into_iter()
                .collect::<Dictionary>()
                .into(),
            "{1:x, 1:y}",
        ),
        (Variant::Array(vec![]), "[]"),
        (Dictionary::new().into(), "{}"),
        (vec![1u8, 2, 3].into(), "[PoolByteArray]"),
        (Variant::PoolIntArray(vec![1, -2]), "[1, -2]"),
        (Variant::PoolRealArray(vec![0.5, 0.1]), "[0.5, 0.1]"),
        (vec!["ab", "c"].into(), "[ab, c]"),
        (vec![v2(1.0, 2.0)].into(), "[(1, 2)]"),
        (vec![v3(1.0, 2.0, 3.0)].into(), "[(1, 2, 3)]"),
        (vec![Color::default()].into(), "[PoolColorArray]"),
        (Variant::PoolIntArray(vec![]), "[]"),
    ];
    for (v, expected) in cases {
        assert_eq!(v.to_string(), expected, "{v:?}");
    }
    // Godot's buffer cuts a float's text at 255 characters.
    assert_eq!(Variant::Float(1e300).to_string().len(), 255);
}

#[test]
fn node_path_syntax() {
    let p: NodePath = "/root/A/B:x:y".parse().unwrap();
    assert_eq!(
        p,
        NodePath {
            names: vec!["root".into(), "A".into(), "B".into()],
            subnames: vec!["x".into(), "y".into()],
            absolute: true,
        }
    );
    let rel = NodePath::from("A/B");
    assert!(!rel.absolute);
    assert_eq!(rel.names, ["A", "B"]);
    assert_eq!(NodePath::from("..").names, [".."]);
    let prop = NodePath::from(":prop");
    assert!(prop.names.is_empty());
    assert_eq!(prop.subnames, ["prop"]);
    // Empty names are skipped, a trailing ':' is allowed; an empty subname inside is not.
    assert_eq!(NodePath::from("A//B/").to_string(), "A/B");
    assert_eq!(NodePath::from("A:b:").to_string(), "A:b");
    assert!("A::b".parse::<NodePath>().is_err());
    assert!(NodePath::from("A::b").is_empty());
    let root = NodePath::from("/");
    assert!(root.absolute && root.is_empty());
    assert_eq!(root.to_string(), "/");
    assert!(NodePath::from("").is_empty());
    for s in [
        "/root/A/B:x:y",
        "A/B",
        "..",
        ":prop",
        "../a/b:c",
        "/root",
        "",
    ] {
        assert_eq!(NodePath::from(s).to_string(), s);
    }
}

#[test]
fn conversions() {
    let v = Variant::from(5);
    assert_eq!(v.get::<i64>(), Ok(5));
    assert_eq!(v.get::<i32>(), Ok(5));
    assert_eq!(v.get::<u32>(), Ok(5));
    assert_eq!(v.get::<f64>(), Ok(5.0));
    assert_eq!(v.get::<f32>(), Ok(5.0));
    assert_eq!(
        v.get::<bool>(),
        Err(ConvertError::WrongType {
            expected: VariantType::Bool,
            found: VariantType::Int
        })
    );
    assert_eq!(
        Variant::Float(1.0).get::<i64>(),
        Err(ConvertError::WrongType {
            expected: VariantType::Int,
            found: VariantType::Float
        })
    );
    let big = Variant::from(1i64 << 40);
    assert_eq!(
        big.get::<i32>(),
        Err(ConvertError::OutOfRange {
            value: 1 << 40,
            target: "i32"
        })
    );
    assert_eq!(
        Variant::from(-1).get::<u32>().unwrap_err().to_string(),
        "int -1 is out of range for u32"
    );
    assert_eq!(
        Variant::Nil.get::<String>().unwrap_err().to_string(),
        "expected String, found Nil"
    );
    assert_eq!(Variant::from("hi").as_str(), Some("hi"));
    assert_eq!(<&str>::try_from(&Variant::from("hi")), Ok("hi"));
    assert!(<&str>::try_from(&Variant::Nil).is_err());
    assert_eq!(Variant::from(2).as_str(), None);
    assert_eq!(Variant::from("hi").get::<String>().unwrap(), "hi");
    assert_eq!(Variant::from(true).get::<bool>(), Ok(true));
    assert_eq!(Variant::from(vec![1u8, 2]).get::<Vec<u8>>(), Ok(vec![1, 2]));
    assert_eq!(
        Variant::from(vec![Variant::Nil]).get::<Vec<Variant>>(),
        Ok(vec![Variant::Nil])
    );
    assert_eq!(
        Variant::from(vec!["a".to_string()]),
        Variant::PoolStringArray(vec!["a".into()])
    );
    assert_eq!(
        Variant::from(ObjectId(3)).get::<ObjectId>(),
        Ok(ObjectId(3))
    );
    assert_eq!(
        Variant::from(NodePath::from("A")).get::<NodePath>(),
        Ok(NodePath::from("A"))
    );
    assert_eq!(
        Variant::from(v3(1.0, 2.0, 3.0)).get::<Vector3>(),
        Ok(v3(1.0, 2.0, 3.0))
    );
    assert_eq!(
        Variant::from(Dictionary::new()).get::<Dictionary>(),
        Ok(Dictionary::new())
    );
    assert_eq!(Variant::from(None::<i32>), Variant::Nil);
    assert_eq!(Variant::Nil.get::<Option<i32>>(), Ok(None));
    assert_eq!(Variant::from(4).get::<Option<i32>>(), Ok(Some(4)));
    assert_eq!(Variant::from(0.25f32), Variant::Float(0.25));
    let arr: Variant = (0..3).map(Variant::from).collect();
    assert_eq!(arr.to_string(), "[0, 1, 2]");
}
