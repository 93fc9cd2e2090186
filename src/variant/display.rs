//! `Display` as Godot 3.2's `str()` prints values (checked against the engine).

use std::fmt::{self, Display, Formatter, Write as _};

use super::{
    Aabb, Basis, Color, Dictionary, NodePath, ObjectId, Plane, Quat, Rect2, Transform, Transform2D,
    Variant, Vector2, Vector3,
};

/// Godot 3's `String::num`: `%lf` (six decimals, cut to 255 characters as Godot's buffer
/// does), then trailing zeros and a trailing `.` removed; `nan`, `inf`, `-inf`.
fn real(f: &mut Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        return f.write_str("nan");
    }
    if x.is_infinite() {
        return f.write_str(if x < 0.0 { "-inf" } else { "inf" });
    }
    let mut s = format!("{x:.6}");
    s.truncate(255);
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    f.write_str(&s)
}

fn reals(f: &mut Formatter<'_>, xs: &[f32]) -> fmt::Result {
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        real(f, f64::from(*x))?;
    }
    Ok(())
}

fn list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    f.write_char('[')?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, x)?;
    }
    f.write_char(']')
}

impl Display for Vector2 {
    /// `(1, 2.5)`
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('(')?;
        reals(f, &[self.x, self.y])?;
        f.write_char(')')
    }
}

impl Display for Vector3 {
    /// `(1, 2, 3)`
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('(')?;
        reals(f, &[self.x, self.y, self.z])?;
        f.write_char(')')
    }
}

impl Display for Rect2 {
    /// `(x, y, width, height)`
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('(')?;
        reals(
            f,
            &[self.position.x, self.position.y, self.size.x, self.size.y],
        )?;
        f.write_char(')')
    }
}

impl Display for Transform2D {
    /// `((x.x, x.y), (y.x, y.y), (origin.x, origin.y))`
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {}, {})", self.x, self.y, self.origin)
    }
}

impl Display for Plane {
    /// `nx, ny, nz, d` (no parentheses, as Godot 3.2)
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        reals(f, &[self.normal.x, self.normal.y, self.normal.z, self.d])
    }
}

impl Display for Quat {
    /// `(x, y, z, w)`
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('(')?;
        reals(f, &[self.x, self.y, self.z, self.w])?;
        f.write_char(')')
    }
}

impl Display for Aabb {
    /// `x, y, z - w, h, d` (no parentheses, as Godot 3.2)
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let (p, s) = (self.position, self.size);
        reals(f, &[p.x, p.y, p.z])?;
        f.write_str(" - ")?;
        reals(f, &[s.x, s.y, s.z])
    }
}

impl Display for Basis {
    /// `((row 0), (row 1), (row 2))`
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.rows;
        write!(f, "({a}, {b}, {c})")
    }
}

impl Display for Transform {
    /// The nine basis values row by row, ` - `, the origin, without parentheses (Godot 3.2).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, row) in self.basis.rows.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            reals(f, &[row.x, row.y, row.z])?;
        }
        f.write_str(" - ")?;
        let o = self.origin;
        reals(f, &[o.x, o.y, o.z])
    }
}

impl Display for Color {
    /// `r,g,b,a` (no spaces, as Godot 3.2)
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, x) in [self.r, self.g, self.b, self.a].into_iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            real(f, f64::from(x))?;
        }
        Ok(())
    }
}

impl Display for NodePath {
    /// Godot's syntax: `/root/A/B:x:y`, `A/B`, `:prop`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.absolute {
            f.write_char('/')?;
        }
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                f.write_char('/')?;
            }
            f.write_str(name)?;
        }
        for sub in &self.subnames {
            f.write_char(':')?;
            f.write_str(sub)?;
        }
        Ok(())
    }
}

impl Display for ObjectId {
    /// `[Object:123]`, or `[Object:null]` for 0 (Godot prints the class name, which does not
    /// travel).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("[Object:null]")
        } else {
            write!(f, "[Object:{}]", self.0)
        }
    }
}

impl Display for Dictionary {
    /// `{key:value, ...}` sorted by the printed key, then the printed value, as Godot 3.2.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut pairs: Vec<(String, String)> = self
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.sort();
        f.write_char('{')?;
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}:{v}")?;
        }
        f.write_char('}')
    }
}

impl Display for Variant {
    /// As Godot 3.2's `str(value)`: `Null`, `True`, `5`, `0.1`, `(1, 2)`, `[1, a, (1, 2)]`,
    /// `{a:1, b:2}`, ... (`PoolByteArray` and `PoolColorArray` print as their type name in
    /// brackets, as in Godot 3.2).
    ///
    /// One Godot 3.2 quirk is not copied: its `str()` prints every empty array or dictionary
    /// after the first one met as `[...]` / `{...}` (its recursion guard keys on the data
    /// pointer, null for all empty containers); here `[[], []]` prints as such.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Variant::Nil => f.write_str("Null"),
            Variant::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Variant::Int(i) => write!(f, "{i}"),
            Variant::Float(x) => real(f, *x),
            Variant::String(s) => f.write_str(s),
            Variant::Vector2(v) => v.fmt(f),
            Variant::Rect2(v) => v.fmt(f),
            Variant::Vector3(v) => v.fmt(f),
            Variant::Transform2D(v) => v.fmt(f),
            Variant::Plane(v) => v.fmt(f),
            Variant::Quat(v) => v.fmt(f),
            Variant::Aabb(v) => v.fmt(f),
            Variant::Basis(v) => v.fmt(f),
            Variant::Transform(v) => v.fmt(f),
            Variant::Color(v) => v.fmt(f),
            Variant::NodePath(p) => p.fmt(f),
            Variant::Rid => f.write_str("[RID]"),
            Variant::Object(o) => o.fmt(f),
            Variant::Dictionary(d) => d.fmt(f),
            Variant::Array(a) => list(f, a, |f, v| v.fmt(f)),
            Variant::PoolByteArray(_) => f.write_str("[PoolByteArray]"),
            Variant::PoolIntArray(a) => list(f, a, |f, v| write!(f, "{v}")),
            Variant::PoolRealArray(a) => list(f, a, |f, v| real(f, f64::from(*v))),
            Variant::PoolStringArray(a) => list(f, a, |f, v| f.write_str(v)),
            Variant::PoolVector2Array(a) => list(f, a, |f, v| v.fmt(f)),
            Variant::PoolVector3Array(a) => list(f, a, |f, v| v.fmt(f)),
            Variant::PoolColorArray(_) => f.write_str("[PoolColorArray]"),
        }
    }
}
