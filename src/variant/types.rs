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

/// Godot's `Dictionary`: keys are unique and keep their insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dictionary {
    entries: Vec<(super::Variant, super::Variant)>,
}

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Dictionary {
        Dictionary::default()
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for `key`.
    pub fn get(&self, key: &super::Variant) -> Option<&super::Variant> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`: an existing key keeps its place, a new one goes last. Returns the
    /// value it replaced.
    pub fn insert(&mut self, key: super::Variant, value: super::Variant) -> Option<super::Variant> {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&super::Variant, &super::Variant)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}
