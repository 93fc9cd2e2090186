//! The small value types a [`Variant`](super::Variant) carries (f32 components, as Godot 3's).

/// Godot's `Vector2`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vector2 {
    /// x
    pub x: f32,
    /// y
    pub y: f32,
}

/// Godot's `Vector3`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vector3 {
    /// x
    pub x: f32,
    /// y
    pub y: f32,
    /// z
    pub z: f32,
}

/// Godot's `Rect2`: position and size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rect2 {
    /// The top-left corner.
    pub position: Vector2,
    /// Width and height.
    pub size: Vector2,
}

/// Godot's `Transform2D`: the x and y axes and the origin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform2D {
    /// The x axis.
    pub x: Vector2,
    /// The y axis.
    pub y: Vector2,
    /// The translation.
    pub origin: Vector2,
}

/// Godot's `Plane`: normal and distance from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Plane {
    /// The normal.
    pub normal: Vector3,
    /// The distance from the origin.
    pub d: f32,
}

/// Godot's `Quat`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quat {
    /// x
    pub x: f32,
    /// y
    pub y: f32,
    /// z
    pub z: f32,
    /// w
    pub w: f32,
}

/// Godot's `AABB`: position and size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Aabb {
    /// The corner with the smallest coordinates.
    pub position: Vector3,
    /// The extent.
    pub size: Vector3,
}

/// Godot's `Basis`: three rows.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Basis {
    /// The rows, as Godot 3 stores (and encodes) them.
    pub rows: [Vector3; 3],
}

/// Godot's `Transform`: a basis and an origin.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Transform {
    /// Rotation, scale, shear.
    pub basis: Basis,
    /// The translation.
    pub origin: Vector3,
}

/// Godot's `Color` (r, g, b, a in 0..=1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Color {
    /// red
    pub r: f32,
    /// green
    pub g: f32,
    /// blue
    pub b: f32,
    /// alpha
    pub a: f32,
}

/// Godot's `NodePath`: names, subnames (after `:`), and whether it starts at `/`.
///
/// Parse Godot's syntax with [`str::parse`] or `From<&str>`, print it back with `Display`:
/// ```
/// use enet_multiplayer::variant::NodePath;
/// let p: NodePath = "/root/A/B:x:y".parse().unwrap();
/// assert!(p.absolute);
/// assert_eq!(p.names, ["root", "A", "B"]);
/// assert_eq!(p.subnames, ["x", "y"]);
/// assert_eq!(p.to_string(), "/root/A/B:x:y");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct NodePath {
    /// The node names, in order.
    pub names: Vec<String>,
    /// The property subnames (`:a:b`).
    pub subnames: Vec<String>,
    /// Whether the path is absolute (starts at `/`).
    pub absolute: bool,
}

/// An object's instance id as sent to peers that do not decode objects (0 = null).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub u64);

impl Vector2 {
    /// A vector from its components.
    pub const fn new(x: f32, y: f32) -> Vector2 {
        Vector2 { x, y }
    }
}

impl Vector3 {
    /// A vector from its components.
    pub const fn new(x: f32, y: f32, z: f32) -> Vector3 {
        Vector3 { x, y, z }
    }
}

impl Color {
    /// A color from its components.
    pub const fn rgba(r: f32, g: f32, b: f32, a: f32) -> Color {
        Color { r, g, b, a }
    }
}

impl ObjectId {
    /// Whether this is the null object (id 0).
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }
}

/// The value types that travel as a fixed number of f32 (in wire order).
pub(crate) trait Floats: Sized + Copy {
    /// How many f32 the value is made of.
    const COUNT: usize;
    /// Calls `f` with each component, in wire order.
    fn visit(&self, f: &mut impl FnMut(f32));
    /// Builds the value from its components, taken in wire order from `next`.
    fn build(next: &mut impl FnMut() -> f32) -> Self;
}

impl Floats for Vector2 {
    const COUNT: usize = 2;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        f(self.x);
        f(self.y);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Vector2 {
            x: next(),
            y: next(),
        }
    }
}

impl Floats for Vector3 {
    const COUNT: usize = 3;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        f(self.x);
        f(self.y);
        f(self.z);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Vector3 {
            x: next(),
            y: next(),
            z: next(),
        }
    }
}

impl Floats for Rect2 {
    const COUNT: usize = 4;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        self.position.visit(f);
        self.size.visit(f);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Rect2 {
            position: Vector2::build(next),
            size: Vector2::build(next),
        }
    }
}

impl Floats for Transform2D {
    const COUNT: usize = 6;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        self.x.visit(f);
        self.y.visit(f);
        self.origin.visit(f);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Transform2D {
            x: Vector2::build(next),
            y: Vector2::build(next),
            origin: Vector2::build(next),
        }
    }
}

impl Floats for Plane {
    const COUNT: usize = 4;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        self.normal.visit(f);
        f(self.d);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Plane {
            normal: Vector3::build(next),
            d: next(),
        }
    }
}

impl Floats for Quat {
    const COUNT: usize = 4;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        f(self.x);
        f(self.y);
        f(self.z);
        f(self.w);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Quat {
            x: next(),
            y: next(),
            z: next(),
            w: next(),
        }
    }
}

impl Floats for Aabb {
    const COUNT: usize = 6;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        self.position.visit(f);
        self.size.visit(f);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Aabb {
            position: Vector3::build(next),
            size: Vector3::build(next),
        }
    }
}

impl Floats for Basis {
    const COUNT: usize = 9;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        for row in &self.rows {
            row.visit(f);
        }
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Basis {
            rows: [
                Vector3::build(next),
                Vector3::build(next),
                Vector3::build(next),
            ],
        }
    }
}

impl Floats for Transform {
    const COUNT: usize = 12;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        self.basis.visit(f);
        self.origin.visit(f);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Transform {
            basis: Basis::build(next),
            origin: Vector3::build(next),
        }
    }
}

impl Floats for Color {
    const COUNT: usize = 4;
    fn visit(&self, f: &mut impl FnMut(f32)) {
        f(self.r);
        f(self.g);
        f(self.b);
        f(self.a);
    }
    fn build(next: &mut impl FnMut() -> f32) -> Self {
        Color {
            r: next(),
            g: next(),
            b: next(),
            a: next(),
        }
    }
}

/// A string that is not a valid Godot node path (an empty subname in the middle, as in `A::b`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node path {0:?}: empty subname")]
pub struct ParseNodePathError(pub String);

impl NodePath {
    /// Whether the path has no name and no subname (Godot's empty `NodePath()`), absolute or not.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.subnames.is_empty()
    }
}

impl std::str::FromStr for NodePath {
    type Err = ParseNodePathError;

    /// Parses Godot's syntax: names separated by `/` (empty ones skipped, as Godot does),
    /// a leading `/` for an absolute path, then subnames each after a `:`. A trailing `:` is
    /// allowed; an empty subname elsewhere is an error.
    fn from_str(s: &str) -> Result<NodePath, ParseNodePathError> {
        let (path, sub) = match s.find(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let mut subnames = Vec::new();
        if let Some(sub) = sub {
            let parts: Vec<&str> = sub.split(':').collect();
            let last = parts.len() - 1;
            for (i, part) in parts.into_iter().enumerate() {
                if part.is_empty() {
                    if i == last {
                        continue;
                    }
                    return Err(ParseNodePathError(s.to_string()));
                }
                subnames.push(part.to_string());
            }
        }
        let absolute = path.starts_with('/');
        let names = path
            .split('/')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        Ok(NodePath {
            names,
            subnames,
            absolute,
        })
    }
}

impl From<&str> for NodePath {
    /// As Godot's `NodePath(String)`: an invalid path (see [`FromStr`](std::str::FromStr))
    /// gives the empty path.
    fn from(s: &str) -> NodePath {
        s.parse().unwrap_or_default()
    }
}

impl From<String> for NodePath {
    /// As `From<&str>`.
    fn from(s: String) -> NodePath {
        NodePath::from(s.as_str())
    }
}
