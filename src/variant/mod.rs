//! Godot 3's `Variant` and its binary encoding (`var2bytes` / `bytes2var`, marshalls.cpp), as
//! used inside RPC, RSET and `send_bytes` packets. A pure module: bytes in, values out, and back.
//!
//! The bytes are described in MULTIPLAYER_API.md.

mod stub;
mod types;

pub use stub::DecodeError;

pub use types::{
    Aabb, Basis, Color, Dictionary, NodePath, ObjectId, Plane, Quat, Rect2, Transform, Transform2D,
    Vector2, Vector3,
};

/// The deepest nesting of arrays and dictionaries a decoder accepts (Godot 3.4+'s limit).
pub const MAX_DEPTH: usize = 1024;

/// A Godot 3 value: one variant per Godot 3 type, in Godot's type-id order (0..=26).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Variant {
    /// 0: `null`.
    #[default]
    Nil,
    /// 1
    Bool(bool),
    /// 2: Godot's ints are 64-bit; 32 bits travel when the value fits.
    Int(i64),
    /// 3: Godot's floats are 64-bit; 32 bits travel when the value survives that.
    Float(f64),
    /// 4
    String(String),
    /// 5
    Vector2(Vector2),
    /// 6
    Rect2(Rect2),
    /// 7
    Vector3(Vector3),
    /// 8
    Transform2D(Transform2D),
    /// 9
    Plane(Plane),
    /// 10
    Quat(Quat),
    /// 11
    Aabb(Aabb),
    /// 12
    Basis(Basis),
    /// 13
    Transform(Transform),
    /// 14
    Color(Color),
    /// 15
    NodePath(NodePath),
    /// 16: a resource id; it travels without a value.
    Rid,
    /// 17: an object as sent to untrusting peers: its instance id (0 = null).
    Object(ObjectId),
    /// 18: ordered as inserted, like Godot's.
    Dictionary(Dictionary),
    /// 19
    Array(Vec<Variant>),
    /// 20
    PoolByteArray(Vec<u8>),
    /// 21
    PoolIntArray(Vec<i32>),
    /// 22
    PoolRealArray(Vec<f32>),
    /// 23
    PoolStringArray(Vec<String>),
    /// 24
    PoolVector2Array(Vec<Vector2>),
    /// 25
    PoolVector3Array(Vec<Vector3>),
    /// 26
    PoolColorArray(Vec<Color>),
}
