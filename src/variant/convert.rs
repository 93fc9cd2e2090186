//! Reading typed values out of a [`Variant`] ([`FromVariant`]) and making one (`From`).

use super::{
    Aabb, Basis, Color, Dictionary, NodePath, ObjectId, Plane, Quat, Rect2, Transform, Transform2D,
    Variant, VariantType, Vector2, Vector3,
};

/// A [`Variant`] that does not hold what the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The value has another type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type asked for.
        expected: VariantType,
        /// The value's type.
        found: VariantType,
    },
    /// An int that does not fit the Rust integer asked for.
    #[error("int {value} is out of range for {target}")]
    OutOfRange {
        /// The value.
        value: i64,
        /// The Rust type asked for (`i32`, `u32`, ...).
        target: &'static str,
    },
}

impl ConvertError {
    fn wrong(expected: VariantType, v: &Variant) -> ConvertError {
        ConvertError::WrongType {
            expected,
            found: v.variant_type(),
        }
    }
}

/// A Rust type a [`Variant`] argument can be read as, with a typed error:
/// `let pos: Vector2 = args[0].get()?;`.
///
/// Each type reads its own Godot type; the only widening is an int read as a float (`f64`,
/// `f32`), as Godot does. A float read as an int, or an int out of the target's range, is an
/// error.
pub trait FromVariant: Sized {
    /// Reads `v` as `Self`.
    fn from_variant(v: &Variant) -> Result<Self, ConvertError>;
}

impl FromVariant for Variant {
    fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
        Ok(v.clone())
    }
}

impl FromVariant for i64 {
    fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
        match v {
            Variant::Int(i) => Ok(*i),
            _ => Err(ConvertError::wrong(VariantType::Int, v)),
        }
    }
}

macro_rules! narrow_int {
    ($($t:ty),*) => {$(
        impl FromVariant for $t {
            fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
                let i = i64::from_variant(v)?;
                <$t>::try_from(i).map_err(|_| ConvertError::OutOfRange {
                    value: i,
                    target: stringify!($t),
                })
            }
        }
    )*};
}
narrow_int!(i32, u32, i16, u16, i8, u8, u64, usize);

impl FromVariant for f64 {
    fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
        match v {
            Variant::Float(f) => Ok(*f),
            Variant::Int(i) => Ok(*i as f64),
            _ => Err(ConvertError::wrong(VariantType::Float, v)),
        }
    }
}

impl FromVariant for f32 {
    fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
        f64::from_variant(v).map(|f| f as f32)
    }
}

macro_rules! simple {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl FromVariant for $t {
            fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
                match v {
                    Variant::$variant(x) => Ok(x.clone()),
                    _ => Err(ConvertError::wrong(VariantType::$variant, v)),
                }
            }
        }

        impl From<$t> for Variant {
            fn from(x: $t) -> Variant {
                Variant::$variant(x)
            }
        }
    )*};
}
simple!(
    bool => Bool,
    String => String,
    Vector2 => Vector2,
    Rect2 => Rect2,
    Vector3 => Vector3,
    Transform2D => Transform2D,
    Plane => Plane,
    Quat => Quat,
    Aabb => Aabb,
    Basis => Basis,
    Transform => Transform,
    Color => Color,
    NodePath => NodePath,
    ObjectId => Object,
    Dictionary => Dictionary,
    Vec<Variant> => Array,
    Vec<u8> => PoolByteArray,
    Vec<i32> => PoolIntArray,
    Vec<f32> => PoolRealArray,
    Vec<String> => PoolStringArray,
    Vec<Vector2> => PoolVector2Array,
    Vec<Vector3> => PoolVector3Array,
    Vec<Color> => PoolColorArray,
);

impl<'a> TryFrom<&'a Variant> for &'a str {
    type Error = ConvertError;

    fn try_from(v: &'a Variant) -> Result<&'a str, ConvertError> {
        v.as_str()
            .ok_or_else(|| ConvertError::wrong(VariantType::String, v))
    }
}

impl From<i64> for Variant {
    fn from(i: i64) -> Variant {
        Variant::Int(i)
    }
}

macro_rules! widen_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Variant {
            fn from(i: $t) -> Variant {
                Variant::Int(i64::from(i))
            }
        }
    )*};
}
widen_int!(i32, u32, i16, u16, i8, u8);

impl From<f64> for Variant {
    fn from(f: f64) -> Variant {
        Variant::Float(f)
    }
}

impl From<f32> for Variant {
    fn from(f: f32) -> Variant {
        Variant::Float(f64::from(f))
    }
}

impl From<&str> for Variant {
    fn from(s: &str) -> Variant {
        Variant::String(s.to_string())
    }
}

impl From<&String> for Variant {
    fn from(s: &String) -> Variant {
        Variant::String(s.clone())
    }
}

impl From<&[u8]> for Variant {
    /// A `PoolByteArray`.
    fn from(b: &[u8]) -> Variant {
        Variant::PoolByteArray(b.to_vec())
    }
}

impl From<Vec<&str>> for Variant {
    /// A `PoolStringArray`.
    fn from(v: Vec<&str>) -> Variant {
        Variant::PoolStringArray(v.into_iter().map(str::to_string).collect())
    }
}

impl From<&[Variant]> for Variant {
    /// An `Array`.
    fn from(v: &[Variant]) -> Variant {
        Variant::Array(v.to_vec())
    }
}

impl<T: Into<Variant>> From<Option<T>> for Variant {
    /// `None` is `null`.
    fn from(v: Option<T>) -> Variant {
        v.map_or(Variant::Nil, Into::into)
    }
}

impl From<()> for Variant {
    /// `null`.
    fn from(_: ()) -> Variant {
        Variant::Nil
    }
}

impl FromIterator<Variant> for Variant {
    /// An `Array`.
    fn from_iter<I: IntoIterator<Item = Variant>>(iter: I) -> Variant {
        Variant::Array(iter.into_iter().collect())
    }
}

impl<T: FromVariant> FromVariant for Option<T> {
    /// `null` reads as `None`, anything else as `T`.
    fn from_variant(v: &Variant) -> Result<Self, ConvertError> {
        match v {
            Variant::Nil => Ok(None),
            _ => T::from_variant(v).map(Some),
        }
    }
}
