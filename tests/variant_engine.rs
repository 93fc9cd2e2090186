//! The Variant codec byte for byte against the real engine (Godot 3.2 headless).
//!
//! tests/godot/variant_dump.gd prints `var2bytes(value).hex_encode()` and `str(value)` for a
//! list of named values; this test builds the same values in Rust and checks that encoding
//! gives the engine's bytes, decoding the engine's bytes gives the value, and Display gives
//! `str()`. The other direction: the script decodes bytes the Rust encoder wrote (through a
//! file named by VARIANT_DECODE_FILE) and prints what it got.
//!
//! Skipped (with a `SKIPPED:` line) when ENET_MP_SKIP_GODOT=1; fails when the engine is missing.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::godot;

use enet_multiplayer::variant::{
    Aabb, Basis, Color, Dictionary, NodePath, ObjectId, Plane, Quat, Rect2, Transform, Transform2D,
    Variant, VariantType, Vector2, Vector3,
};

/// The engine is killed if it has not exited by then.
const ENGINE_BOUND: Duration = Duration::from_secs(30);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the engine"))
        .collect()
}

/// Runs variant_dump.gd once; returns its stdout lines (panics with its output on failure).
fn run_engine(bin: &std::path::Path, decode_file: &std::path::Path) -> Vec<String> {
    let vars = [(
        "VARIANT_DECODE_FILE".to_string(),
        decode_file.display().to_string(),
    )];
    let mut engine = godot::spawn_engine(
        bin,
        "variant_dump.gd",
        &["--no-window"],
        "variant_dump.gd",
        &vars,
        "variant_dump",
    )
    .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let status = engine.wait_exit(ENGINE_BOUND);
    if status.is_none() {
        engine.kill();
    }
    let lines = engine.stdout();
    if status.is_none() || !lines.iter().any(|l| l == "DONE") {
        panic!(
            "variant_dump.gd {} without DONE\n{}",
            match status {
                Some(s) => format!("exited with {s}"),
                None => format!("killed after {ENGINE_BOUND:?}"),
            },
            engine.output()
        );
    }
    lines
}

fn v2(x: f32, y: f32) -> Vector2 {
    Vector2::new(x, y)
}

fn v3(x: f32, y: f32, z: f32) -> Vector3 {
    Vector3::new(x, y, z)
}

fn basis() -> Basis {
    // GDScript's Basis(x, y, z) takes the columns; rows are what travels.
    Basis {
        rows: [v3(1.0, 4.0, 7.0), v3(2.0, 5.0, 8.0), v3(3.0, 6.0, 9.0)],
    }
}

/// The values of variant_dump.gd, built in Rust (objects are checked apart).
fn expected_values() -> Vec<(&'static str, Variant)> {
    let dict: Dictionary = [
        (Variant::from("a"), Variant::from(1)),
        (2.into(), Variant::Array(vec![3.into()])),
    ]
    .into_iter()
    .collect();
    let inner: Dictionary = [(
        "k",
        Variant::Array(vec![
            1.into(),
            Variant::Array(vec![2.into(), Dictionary::new().into()]),
        ]),
    )]
    .into_iter()
    .collect();
    vec![
        ("nil", Variant::Nil),
        ("bool_true", true.into()),
        ("bool_false", false.into()),
        ("int_0", 0.into()),
        ("int_neg", (-12).into()),
        ("int_i32_max", 2147483647.into()),
        ("int_i32_max_plus_1", 2147483648i64.into()),
        ("int_i32_min", (-2147483648).into()),
        ("int_i32_min_minus_1", (-2147483649i64).into()),
        ("int_5e9", 5_000_000_000i64.into()),
        ("int_i64_max", i64::MAX.into()),
        ("float_0_5", 0.5.into()),
        ("float_0_1", 0.1.into()),
        ("float_1e300", 1e300.into()),
        ("float_third", (1.0 / 3.0).into()),
        ("float_100", 100.0.into()),
        ("float_neg_zero", (-0.0).into()),
        ("float_nan", f64::NAN.into()),
        ("float_inf", f64::INFINITY.into()),
        ("float_neg_inf", f64::NEG_INFINITY.into()),
        ("string_empty", "".into()),
        ("string_ascii", "abc".into()),
        ("string_four", "abcd".into()),
        ("string_latin", "héllo ✓".into()),
        ("string_cjk", "日本".into()),
        ("vector2", v2(1.0, 2.5).into()),
        (
            "rect2",
            Rect2 {
                position: v2(1.0, 2.0),
                size: v2(3.0, 4.0),
            }
            .into(),
        ),
        ("vector3", v3(1.0, 2.0, 3.0).into()),
        (
            "transform2d",
            Transform2D {
                x: v2(1.0, 2.0),
                y: v2(3.0, 4.0),
                origin: v2(5.0, 6.0),
            }
            .into(),
        ),
        (
            "plane",
            Plane {
                normal: v3(1.0, 2.0, 3.0),
                d: 4.0,
            }
            .into(),
        ),
        (
            "quat",
            Quat {
                x: 1.0,
                y: 2.0,
                z: 3.0,
                w: 4.0,
            }
            .into(),
        ),
        (
            "aabb",
            Aabb {
                position: v3(1.0, 2.0, 3.0),
                size: v3(4.0, 5.0, 6.0),
            }
            .into(),
        ),
        ("basis", basis().into()),
        (
            "transform",
            Transform {
                basis: basis(),
                origin: v3(10.0, 11.0, 12.0),
            }
            .into(),
        ),
        ("color", Color::rgba(0.1, 0.2, 0.3, 0.4).into()),
        ("nodepath_absolute", NodePath::from("/root/A/B:x:y").into()),
        ("nodepath_relative", NodePath::from("A/B").into()),
        ("nodepath_parent", NodePath::from("..").into()),
        ("nodepath_property", NodePath::from(":prop").into()),
        ("nodepath_empty", NodePath::default().into()),
        ("rid", Variant::Rid),
        // A freed object: this (debug) engine build sends Nil instead.
        ("object_freed", Variant::Nil),
        ("dictionary", dict.into()),
        (
            "array",
            Variant::Array(vec![1.into(), "a".into(), v2(1.0, 2.0).into()]),
        ),
        (
            "nested",
            Variant::Array(vec![inner.into(), Variant::Array(vec![])]),
        ),
        ("array_empty", Variant::Array(vec![])),
        ("dictionary_empty", Dictionary::new().into()),
        ("pool_byte", vec![1u8, 2, 3].into()),
        ("pool_int", vec![1i32, -2, 2147483647].into()),
        ("pool_real", vec![0.5f32, 0.1].into()),
        ("pool_string", vec!["ab", "c", "", "日本"].into()),
        ("pool_vector2", vec![v2(1.0, 2.0), v2(-3.0, 4.5)].into()),
        ("pool_vector3", vec![v3(1.0, 2.0, 3.0)].into()),
        (
            "pool_color",
            vec![
                Color::rgba(1.0, 0.0, 0.0, 1.0),
                Color::rgba(0.1, 0.2, 0.3, 0.4),
            ]
            .into(),
        ),
        ("pool_byte_empty", Variant::PoolByteArray(vec![])),
        ("pool_int_empty", Variant::PoolIntArray(vec![])),
        ("pool_real_empty", Variant::PoolRealArray(vec![])),
        ("pool_string_empty", Variant::PoolStringArray(vec![])),
        ("pool_vector2_empty", Variant::PoolVector2Array(vec![])),
        ("pool_vector3_empty", Variant::PoolVector3Array(vec![])),
        ("pool_color_empty", Variant::PoolColorArray(vec![])),
    ]
}

/// `==`, except that NaN equals NaN (only top-level floats hold NaN here).
fn same(a: &Variant, b: &Variant) -> bool {
    match (a, b) {
        (Variant::Float(x), Variant::Float(y)) if x.is_nan() => y.is_nan(),
        _ => a == b,
    }
}

/// The bytes with the padding of a top-level NodePath's strings zeroed: Godot does not clear
/// that padding (it carries leftovers of its buffer).
fn zero_nodepath_padding(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.first() != Some(&15) {
        return out;
    }
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let count = (word(&out, 4) & 0x7fff_ffff) + word(&out, 8);
    let mut at = 16;
    for _ in 0..count {
        let len = word(&out, at) as usize;
        at += 4 + len;
        while at % 4 != 0 {
            out[at] = 0;
            at += 1;
        }
    }
    assert_eq!(at, out.len(), "NodePath layout");
    out
}

/// What Rust sends the engine to decode, with what the engine should print back as str().
fn values_for_the_engine() -> Vec<(&'static str, Variant, &'static str)> {
    let dict: Dictionary = [
        (Variant::from("pos"), Variant::from(v2(1.0, -2.0))),
        (
            Variant::from(7),
            Variant::Array(vec![Variant::Nil, "x".into()]),
        ),
    ]
    .into_iter()
    .collect();
    vec![
        ("nil", Variant::Nil, "Null"),
        ("bool", true.into(), "True"),
        ("int_small", (-7).into(), "-7"),
        ("int_i64_min", i64::MIN.into(), "-9223372036854775808"),
        (
            "int_i32_min_minus_1",
            (-2147483649i64).into(),
            "-2147483649",
        ),
        ("float_0_1", 0.1.into(), "0.1"),
        ("float_f32", 2.75.into(), "2.75"),
        ("float_nan", f64::NAN.into(), "nan"),
        ("float_neg_inf", f64::NEG_INFINITY.into(), "-inf"),
        ("string", "héllo ✓ 日本".into(), "héllo ✓ 日本"),
        ("vector3", v3(0.5, -1.0, 8.0).into(), "(0.5, -1, 8)"),
        (
            "transform",
            Transform {
                basis: basis(),
                origin: v3(10.0, 11.0, 12.0),
            }
            .into(),
            "1, 4, 7, 2, 5, 8, 3, 6, 9 - 10, 11, 12",
        ),
        (
            "nodepath_absolute",
            NodePath::from("/root/Main/Player:position:x").into(),
            "/root/Main/Player:position:x",
        ),
        ("nodepath_property", NodePath::from(":prop").into(), ":prop"),
        ("rid", Variant::Rid, "[RID]"),
        ("object_null", ObjectId(0).into(), "[Object:null]"),
        (
            "object_id",
            ObjectId(123_456_789_012).into(),
            "OBJECTID 123456789012",
        ),
        ("dictionary", dict.into(), "{7:[Null, x], pos:(1, -2)}"),
        (
            "nested",
            Variant::Array(vec![Variant::Array(vec![Variant::Array(vec![1.into()])])]),
            "[[[1]]]",
        ),
        (
            "pool_byte",
            vec![0u8, 255, 7, 1, 2].into(),
            "[PoolByteArray]",
        ),
        (
            "pool_string",
            vec!["", "abc", "日本"].into(),
            "[, abc, 日本]",
        ),
        ("pool_real", vec![0.25f32, -1.0].into(), "[0.25, -1]"),
        (
            "pool_color",
            vec![Color::rgba(0.5, 0.25, 1.0, 1.0)].into(),
            "[PoolColorArray]",
        ),
    ]
}

#[test]
fn variant_bytes_match_the_engine_both_ways() {
    let Some(bin) = godot::require_godot() else {
        return;
    };
    let to_engine = values_for_the_engine();
    let decode_file =
        std::env::temp_dir().join(format!("enet-mp-variant-{}.txt", std::process::id()));
    let mut text = String::new();
    for (name, v, _) in &to_engine {
        text.push_str(&format!("{name} {}\n", hex(&v.to_bytes())));
    }
    std::fs::write(&decode_file, text).unwrap();
    let lines = run_engine(&bin, &decode_file);
    let _ = std::fs::remove_file(&decode_file);

    let mut bytes: HashMap<String, Vec<u8>> = HashMap::new();
    let mut strs: HashMap<String, String> = HashMap::new();
    let mut decoded: HashMap<String, (u8, String)> = HashMap::new();
    let mut reencoded: HashMap<String, Vec<u8>> = HashMap::new();
    for line in &lines {
        let mut parts = line.splitn(3, ' ');
        let (kind, name, rest) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or(""),
        );
        match kind {
            "VALUE" => {
                bytes.insert(name, unhex(rest));
            }
            "STR" => {
                strs.insert(name, rest.to_string());
            }
            "DECODED" => {
                let (t, s) = rest.split_once(' ').unwrap_or((rest, ""));
                decoded.insert(name, (t.parse().unwrap(), s.to_string()));
            }
            "REENCODED" => {
                reencoded.insert(name, unhex(rest));
            }
            _ => {}
        }
    }

    // Engine -> Rust.
    let expected = expected_values();
    assert_eq!(bytes.len(), expected.len() + 1, "one VALUE line per value");
    let mut failures = Vec::new();
    for (name, value) in &expected {
        let engine = &bytes[*name];
        let ours = value.to_bytes();
        if zero_nodepath_padding(engine) != ours {
            failures.push(format!(
                "{name}: encode gives {} but the engine sends {}",
                hex(&ours),
                hex(engine)
            ));
        }
        match Variant::decode(engine) {
            Ok((got, used)) if same(&got, value) && used == engine.len() => {}
            other => failures.push(format!(
                "{name}: decoding the engine's bytes gave {other:?}"
            )),
        }
        let printed = value.to_string();
        let engine_str = &strs[*name];
        // Godot 3.2's str() prints every empty array/dictionary after the first one met as
        // `[...]`/`{...}` (its recursion guard keys on the data pointer, null when empty).
        let engine_str = if *name == "nested" {
            assert_eq!(engine_str, "[{k:[1, [2, {}]]}, [...]]");
            "[{k:[1, [2, {}]]}, []]"
        } else if *name == "object_freed" {
            continue;
        } else {
            engine_str.as_str()
        };
        if printed != engine_str {
            failures.push(format!(
                "{name}: Display gives {printed:?}, str() {engine_str:?}"
            ));
        }
    }
    // A live object: flag set, its instance id; it decodes as that id.
    let object = &bytes["object"];
    assert_eq!(object.len(), 12, "object bytes {}", hex(object));
    assert_eq!(&object[..4], &[17, 0, 1, 0], "object header");
    let id = u64::from_le_bytes(object[4..].try_into().unwrap());
    assert_ne!(id, 0);
    assert_eq!(
        Variant::decode(object).unwrap(),
        (Variant::Object(ObjectId(id)), 12)
    );
    assert_eq!(Variant::Object(ObjectId(id)).to_bytes(), *object);
    assert_eq!(strs["object"], format!("[Node:{id}]"));

    // Rust -> engine.
    for (name, value, printed) in &to_engine {
        let Some((t, s)) = decoded.get(*name) else {
            failures.push(format!("{name}: the engine printed no DECODED line"));
            continue;
        };
        if *t != value.variant_type().id() || s != printed {
            failures.push(format!(
                "{name}: the engine decoded type {t} {s:?}, expected {} {printed:?}",
                value.variant_type().id()
            ));
        }
        if value.variant_type() != VariantType::Object {
            if value.to_string() != *printed {
                failures.push(format!("{name}: Display gives {:?}", value.to_string()));
            }
            let again = zero_nodepath_padding(&reencoded[*name]);
            if again != value.to_bytes() {
                failures.push(format!(
                    "{name}: the engine re-encodes {} as {}",
                    hex(&value.to_bytes()),
                    hex(&again)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
