//! Godot 3's `Variant` and its binary encoding (`var2bytes` / `bytes2var`, marshalls.cpp), as
//! used inside RPC, RSET and `send_bytes` packets. A pure module: bytes in, values out, and back.
//!
//! The bytes are described in MULTIPLAYER_API.md.
//!
//! ```
//! use enet_multiplayer::variant::{Variant, Vector2};
//! let mut bytes = Vec::new();
//! Variant::from(Vector2::new(1.0, 2.5)).encode(&mut bytes);
//! Variant::from(5).encode(&mut bytes);
//! let (first, used) = Variant::decode(&bytes).unwrap();
//! assert_eq!(first.get::<Vector2>().unwrap(), Vector2::new(1.0, 2.5));
//! let (second, _) = Variant::decode(&bytes[used..]).unwrap();
//! assert_eq!(second.get::<i64>().unwrap(), 5);
//! assert_eq!(second.to_string(), "5");
//! ```

mod convert;
mod decode;
mod dictionary;
mod display;
mod encode;
mod types;

pub use convert::{ConvertError, FromVariant};
pub use decode::DecodeError;
pub use dictionary::Dictionary;
pub use types::{
    Aabb, Basis, Color, NodePath, ObjectId, ParseNodePathError, Plane, Quat, Rect2, Transform,
    Transform2D, Vector2, Vector3,
};

/// The deepest nesting of arrays and dictionaries [`Variant::decode`] accepts: 1024 nested
/// containers decode (the outermost counts as one, an empty one counts too), 1025 are
/// [`DecodeError::TooDeep`]. Godot 3.4+ has the same limit (Godot 3.2 has none).
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

/// The 27 Godot 3 types, with their wire ids; `Display` gives Godot's type names (`int`,
/// `PoolStringArray`, ...), as `typeof()` / `Variant::get_type_name` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)] // one variant per Godot type, named as in Godot
pub enum VariantType {
    Nil = 0,
    Bool = 1,
    Int = 2,
    Float = 3,
    String = 4,
    Vector2 = 5,
    Rect2 = 6,
    Vector3 = 7,
    Transform2D = 8,
    Plane = 9,
    Quat = 10,
    Aabb = 11,
    Basis = 12,
    Transform = 13,
    Color = 14,
    NodePath = 15,
    Rid = 16,
    Object = 17,
    Dictionary = 18,
    Array = 19,
    PoolByteArray = 20,
    PoolIntArray = 21,
    PoolRealArray = 22,
    PoolStringArray = 23,
    PoolVector2Array = 24,
    PoolVector3Array = 25,
    PoolColorArray = 26,
}

impl VariantType {
    /// Every type, in id order.
    pub const ALL: [VariantType; 27] = [
        VariantType::Nil,
        VariantType::Bool,
        VariantType::Int,
        VariantType::Float,
        VariantType::String,
        VariantType::Vector2,
        VariantType::Rect2,
        VariantType::Vector3,
        VariantType::Transform2D,
        VariantType::Plane,
        VariantType::Quat,
        VariantType::Aabb,
        VariantType::Basis,
        VariantType::Transform,
        VariantType::Color,
        VariantType::NodePath,
        VariantType::Rid,
        VariantType::Object,
        VariantType::Dictionary,
        VariantType::Array,
        VariantType::PoolByteArray,
        VariantType::PoolIntArray,
        VariantType::PoolRealArray,
        VariantType::PoolStringArray,
        VariantType::PoolVector2Array,
        VariantType::PoolVector3Array,
        VariantType::PoolColorArray,
    ];

    /// The wire id (the low byte of a value's header).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// The type with this wire id (`None` for 27 and above).
    pub fn from_id(id: u8) -> Option<VariantType> {
        VariantType::ALL.get(usize::from(id)).copied()
    }

    /// Godot's name for the type.
    pub const fn name(self) -> &'static str {
        match self {
            VariantType::Nil => "Nil",
            VariantType::Bool => "bool",
            VariantType::Int => "int",
            VariantType::Float => "float",
            VariantType::String => "String",
            VariantType::Vector2 => "Vector2",
            VariantType::Rect2 => "Rect2",
            VariantType::Vector3 => "Vector3",
            VariantType::Transform2D => "Transform2D",
            VariantType::Plane => "Plane",
            VariantType::Quat => "Quat",
            VariantType::Aabb => "AABB",
            VariantType::Basis => "Basis",
            VariantType::Transform => "Transform",
            VariantType::Color => "Color",
            VariantType::NodePath => "NodePath",
            VariantType::Rid => "RID",
            VariantType::Object => "Object",
            VariantType::Dictionary => "Dictionary",
            VariantType::Array => "Array",
            VariantType::PoolByteArray => "PoolByteArray",
            VariantType::PoolIntArray => "PoolIntArray",
            VariantType::PoolRealArray => "PoolRealArray",
            VariantType::PoolStringArray => "PoolStringArray",
            VariantType::PoolVector2Array => "PoolVector2Array",
            VariantType::PoolVector3Array => "PoolVector3Array",
            VariantType::PoolColorArray => "PoolColorArray",
        }
    }
}

impl std::fmt::Display for VariantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Variant {
    /// The value's Godot type.
    pub fn variant_type(&self) -> VariantType {
        match self {
            Variant::Nil => VariantType::Nil,
            Variant::Bool(_) => VariantType::Bool,
            Variant::Int(_) => VariantType::Int,
            Variant::Float(_) => VariantType::Float,
            Variant::String(_) => VariantType::String,
            Variant::Vector2(_) => VariantType::Vector2,
            Variant::Rect2(_) => VariantType::Rect2,
            Variant::Vector3(_) => VariantType::Vector3,
            Variant::Transform2D(_) => VariantType::Transform2D,
            Variant::Plane(_) => VariantType::Plane,
            Variant::Quat(_) => VariantType::Quat,
            Variant::Aabb(_) => VariantType::Aabb,
            Variant::Basis(_) => VariantType::Basis,
            Variant::Transform(_) => VariantType::Transform,
            Variant::Color(_) => VariantType::Color,
            Variant::NodePath(_) => VariantType::NodePath,
            Variant::Rid => VariantType::Rid,
            Variant::Object(_) => VariantType::Object,
            Variant::Dictionary(_) => VariantType::Dictionary,
            Variant::Array(_) => VariantType::Array,
            Variant::PoolByteArray(_) => VariantType::PoolByteArray,
            Variant::PoolIntArray(_) => VariantType::PoolIntArray,
            Variant::PoolRealArray(_) => VariantType::PoolRealArray,
            Variant::PoolStringArray(_) => VariantType::PoolStringArray,
            Variant::PoolVector2Array(_) => VariantType::PoolVector2Array,
            Variant::PoolVector3Array(_) => VariantType::PoolVector3Array,
            Variant::PoolColorArray(_) => VariantType::PoolColorArray,
        }
    }

    /// Whether this is `null`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Variant::Nil)
    }

    /// The text of a `String` value (`None` for any other type).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Variant::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of an `Array` value.
    pub fn as_array(&self) -> Option<&[Variant]> {
        match self {
            Variant::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The dictionary of a `Dictionary` value.
    pub fn as_dictionary(&self) -> Option<&Dictionary> {
        match self {
            Variant::Dictionary(d) => Some(d),
            _ => None,
        }
    }

    /// Reads the value as `T` (see [`FromVariant`] for what converts):
    /// `args[0].get::<Vector2>()?`.
    pub fn get<T: FromVariant>(&self) -> Result<T, ConvertError> {
        T::from_variant(self)
    }
}

#[cfg(test)]
mod tests;
