//! Encoding: what Godot 3's `encode_variant` (marshalls.cpp) writes, objects as instance ids.

use super::types::Floats;
use super::{NodePath, Variant, VariantType};

/// Header bit 16: a 64-bit int or float, or an object sent as its instance id.
pub(crate) const FLAG: u32 = 1 << 16;

/// Zero bytes that pad `len` to a multiple of 4.
#[inline]
pub(crate) const fn pad4(len: usize) -> usize {
    len.wrapping_neg() & 3
}

#[inline]
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
fn put_header(out: &mut Vec<u8>, t: VariantType, flag: bool) {
    put_u32(out, u32::from(t.id()) | if flag { FLAG } else { 0 });
}

#[inline]
fn put_floats<T: Floats>(out: &mut Vec<u8>, v: &T) {
    v.visit(&mut |x| out.extend_from_slice(&x.to_le_bytes()));
}

/// A count or length as the u32 Godot writes (Godot's own containers never exceed it).
#[inline]
fn count(n: usize) -> u32 {
    n as u32
}

/// u32 byte length, UTF-8 bytes, zero padding.
#[inline]
fn put_string_body(out: &mut Vec<u8>, s: &str) {
    put_u32(out, count(s.len()));
    out.extend_from_slice(s.as_bytes());
    out.resize(out.len() + pad4(s.len()), 0);
}

#[inline]
fn string_body_len(s: &str) -> usize {
    4 + s.len() + pad4(s.len())
}

/// Whether a float travels as f64: it does not survive a trip through f32. NaN never compares
/// equal, so it travels as f64 (as the engine sends it); infinities survive f32.
#[inline]
fn float_needs_64(v: f64) -> bool {
    f64::from(v as f32) != v
}

#[inline]
fn int_needs_64(v: i64) -> bool {
    i32::try_from(v).is_err()
}

fn nodepath_len(p: &NodePath) -> usize {
    12 + p
        .names
        .iter()
        .chain(&p.subnames)
        .map(|s| string_body_len(s))
        .sum::<usize>()
}

impl Variant {
    /// Appends the value's bytes, as Godot 3's `var2bytes` writes them (objects as instance ids,
    /// padding zeroed).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.encode_into(out);
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let t = self.variant_type();
        match self {
            Variant::Nil | Variant::Rid => put_header(out, t, false),
            Variant::Bool(b) => {
                put_header(out, t, false);
                put_u32(out, u32::from(*b));
            }
            Variant::Int(v) => {
                if int_needs_64(*v) {
                    put_header(out, t, true);
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    put_header(out, t, false);
                    out.extend_from_slice(&(*v as i32).to_le_bytes());
                }
            }
            Variant::Float(v) => {
                if float_needs_64(*v) {
                    put_header(out, t, true);
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    put_header(out, t, false);
                    out.extend_from_slice(&(*v as f32).to_le_bytes());
                }
            }
            Variant::String(s) => {
                put_header(out, t, false);
                put_string_body(out, s);
            }
            Variant::Vector2(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Rect2(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Vector3(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Transform2D(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Plane(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Quat(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Aabb(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Basis(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Transform(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::Color(v) => {
                put_header(out, t, false);
                put_floats(out, v);
            }
            Variant::NodePath(p) => {
                put_header(out, t, false);
                put_u32(out, count(p.names.len()) | 0x8000_0000);
                put_u32(out, count(p.subnames.len()));
                put_u32(out, u32::from(p.absolute));
                for s in p.names.iter().chain(&p.subnames) {
                    put_string_body(out, s);
                }
            }
            Variant::Object(id) => {
                put_header(out, t, true);
                out.extend_from_slice(&id.0.to_le_bytes());
            }
            Variant::Dictionary(d) => {
                put_header(out, t, false);
                put_u32(out, count(d.len()));
                for (k, v) in d.iter() {
                    k.encode_into(out);
                    v.encode_into(out);
                }
            }
            Variant::Array(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                for v in a {
                    v.encode_into(out);
                }
            }
            Variant::PoolByteArray(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                out.extend_from_slice(a);
                out.resize(out.len() + pad4(a.len()), 0);
            }
            Variant::PoolIntArray(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                for v in a {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Variant::PoolRealArray(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                for v in a {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Variant::PoolStringArray(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                for s in a {
                    // Godot counts (and writes) the terminating NUL, then pads.
                    put_u32(out, count(s.len() + 1));
                    out.extend_from_slice(s.as_bytes());
                    out.resize(out.len() + 1 + pad4(s.len() + 1), 0);
                }
            }
            Variant::PoolVector2Array(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                a.iter().for_each(|v| put_floats(out, v));
            }
            Variant::PoolVector3Array(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                a.iter().for_each(|v| put_floats(out, v));
            }
            Variant::PoolColorArray(a) => {
                put_header(out, t, false);
                put_u32(out, count(a.len()));
                a.iter().for_each(|v| put_floats(out, v));
            }
        }
    }

    /// The exact number of bytes [`encode`](Variant::encode) appends.
    pub fn encoded_len(&self) -> usize {
        4 + match self {
            Variant::Nil | Variant::Rid => 0,
            Variant::Bool(_) => 4,
            Variant::Int(v) => {
                if int_needs_64(*v) {
                    8
                } else {
                    4
                }
            }
            Variant::Float(v) => {
                if float_needs_64(*v) {
                    8
                } else {
                    4
                }
            }
            Variant::String(s) => string_body_len(s),
            Variant::Vector2(_) => 8,
            Variant::Rect2(_) | Variant::Plane(_) | Variant::Quat(_) | Variant::Color(_) => 16,
            Variant::Vector3(_) => 12,
            Variant::Transform2D(_) | Variant::Aabb(_) => 24,
            Variant::Basis(_) => 36,
            Variant::Transform(_) => 48,
            Variant::NodePath(p) => nodepath_len(p),
            Variant::Object(_) => 8,
            Variant::Dictionary(d) => {
                4 + d
                    .iter()
                    .map(|(k, v)| k.encoded_len() + v.encoded_len())
                    .sum::<usize>()
            }
            Variant::Array(a) => 4 + a.iter().map(Variant::encoded_len).sum::<usize>(),
            Variant::PoolByteArray(a) => 4 + a.len() + pad4(a.len()),
            Variant::PoolIntArray(a) => 4 + 4 * a.len(),
            Variant::PoolRealArray(a) => 4 + 4 * a.len(),
            Variant::PoolStringArray(a) => {
                4 + a
                    .iter()
                    .map(|s| 4 + s.len() + 1 + pad4(s.len() + 1))
                    .sum::<usize>()
            }
            Variant::PoolVector2Array(a) => 4 + 8 * a.len(),
            Variant::PoolVector3Array(a) => 4 + 12 * a.len(),
            Variant::PoolColorArray(a) => 4 + 16 * a.len(),
        }
    }

    /// The value's bytes in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}
