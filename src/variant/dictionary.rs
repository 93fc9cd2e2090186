//! Godot's `Dictionary`: unique keys in insertion order.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::types::Floats;
use super::Variant;

/// Godot's `Dictionary`: keys are unique and keep their insertion order.
///
/// Keys compare as Godot compares them: by type and value (`1` and `1.0` are different keys),
/// and a NaN key equals another NaN key (unlike `==` on [`Variant`]). Lookups scan the entries:
/// dictionaries in RPC arguments are small. Decoding a large one from the network stays linear
/// (duplicate keys are found through a hash table, the later value wins as in Godot).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dictionary {
    entries: Vec<(Variant, Variant)>,
}

/// Above this many entries, decoding finds duplicate keys through a hash table.
const LINEAR_DEDUP_MAX: usize = 16;

impl Dictionary {
    /// An empty dictionary.
    pub fn new() -> Dictionary {
        Dictionary::default()
    }

    /// An empty dictionary with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Dictionary {
        Dictionary {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, key: &Variant) -> Option<usize> {
        self.entries.iter().position(|(k, _)| key_eq(k, key))
    }

    /// The value for `key`.
    pub fn get(&self, key: &Variant) -> Option<&Variant> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// The value for `key`, mutably.
    pub fn get_mut(&mut self, key: &Variant) -> Option<&mut Variant> {
        self.position(key).map(|i| &mut self.entries[i].1)
    }

    /// Whether `key` is present (Godot's `has`).
    #[doc(alias = "has")]
    pub fn contains_key(&self, key: &Variant) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value`: an existing key keeps its place, a new one goes last. Returns the
    /// value it replaced.
    pub fn insert(&mut self, key: Variant, value: Variant) -> Option<Variant> {
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Removes `key` (Godot's `erase`), keeping the order of the others; returns its value.
    #[doc(alias = "erase")]
    pub fn remove(&mut self, key: &Variant) -> Option<Variant> {
        self.position(key).map(|i| self.entries.remove(i).1)
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Variant, &Variant)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The entries in insertion order, values mutable.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&Variant, &mut Variant)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// The keys in insertion order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Variant> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in insertion order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Variant> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Builds a dictionary from decoded pairs: a repeated key keeps its first place and takes
    /// its last value (what Godot's `d[key] = value` loop gives).
    pub(crate) fn from_pairs(pairs: Vec<(Variant, Variant)>) -> Dictionary {
        if pairs.len() <= LINEAR_DEDUP_MAX {
            let unique =
                (1..pairs.len()).all(|i| !pairs[..i].iter().any(|(k, _)| key_eq(k, &pairs[i].0)));
            if unique {
                // The usual case: the decoded entries are the dictionary, no copy.
                return Dictionary { entries: pairs };
            }
            let mut dict = Dictionary::with_capacity(pairs.len());
            for (k, v) in pairs {
                dict.insert(k, v);
            }
            return dict;
        }
        let mut dict = Dictionary::with_capacity(pairs.len());
        let mut index: HashMap<u64, Vec<usize>> = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            key_hash(&k, &mut hasher);
            let slot = index.entry(hasher.finish()).or_default();
            match slot.iter().find(|&&i| key_eq(&dict.entries[i].0, &k)) {
                Some(&i) => dict.entries[i].1 = v,
                None => {
                    slot.push(dict.entries.len());
                    dict.entries.push((k, v));
                }
            }
        }
        dict
    }
}

impl IntoIterator for Dictionary {
    type Item = (Variant, Variant);
    type IntoIter = std::vec::IntoIter<(Variant, Variant)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<K: Into<Variant>, V: Into<Variant>> FromIterator<(K, V)> for Dictionary {
    /// Inserts each pair in turn (a repeated key keeps its first place, takes its last value).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Dictionary {
        let pairs = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Dictionary::from_pairs(pairs)
    }
}

impl<K: Into<Variant>, V: Into<Variant>> Extend<(K, V)> for Dictionary {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.into(), v.into());
        }
    }
}

/// The bits a float key compares and hashes by: -0.0 is 0.0, every NaN is one NaN.
fn f64_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

fn f32_key(x: f32) -> u32 {
    if x == 0.0 {
        0
    } else if x.is_nan() {
        f32::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

fn floats_eq<T: Floats>(a: &T, b: &T) -> bool {
    let mut left = [0u32; 12];
    let mut n = 0;
    a.visit(&mut |x| {
        left[n] = f32_key(x);
        n += 1;
    });
    let mut same = true;
    let mut i = 0;
    b.visit(&mut |x| {
        same &= left[i] == f32_key(x);
        i += 1;
    });
    same
}

fn floats_hash<T: Floats>(a: &T, h: &mut impl Hasher) {
    a.visit(&mut |x| h.write_u32(f32_key(x)));
}

/// Godot's key equality: `==` except that NaN equals NaN (floats and float components).
pub(crate) fn key_eq(a: &Variant, b: &Variant) -> bool {
    use Variant as V;
    match (a, b) {
        (V::Float(x), V::Float(y)) => f64_key(*x) == f64_key(*y),
        (V::Vector2(x), V::Vector2(y)) => floats_eq(x, y),
        (V::Rect2(x), V::Rect2(y)) => floats_eq(x, y),
        (V::Vector3(x), V::Vector3(y)) => floats_eq(x, y),
        (V::Transform2D(x), V::Transform2D(y)) => floats_eq(x, y),
        (V::Plane(x), V::Plane(y)) => floats_eq(x, y),
        (V::Quat(x), V::Quat(y)) => floats_eq(x, y),
        (V::Aabb(x), V::Aabb(y)) => floats_eq(x, y),
        (V::Basis(x), V::Basis(y)) => floats_eq(x, y),
        (V::Transform(x), V::Transform(y)) => floats_eq(x, y),
        (V::Color(x), V::Color(y)) => floats_eq(x, y),
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| key_eq(a, b))
        }
        (V::Dictionary(x), V::Dictionary(y)) => {
            x.len() == y.len()
                && x.entries
                    .iter()
                    .zip(&y.entries)
                    .all(|((ka, va), (kb, vb))| key_eq(ka, kb) && key_eq(va, vb))
        }
        (V::PoolRealArray(x), V::PoolRealArray(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| f32_key(*a) == f32_key(*b))
        }
        (V::PoolVector2Array(x), V::PoolVector2Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| floats_eq(a, b))
        }
        (V::PoolVector3Array(x), V::PoolVector3Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| floats_eq(a, b))
        }
        (V::PoolColorArray(x), V::PoolColorArray(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| floats_eq(a, b))
        }
        _ => a == b,
    }
}

/// A hash consistent with [`key_eq`].
fn key_hash(v: &Variant, h: &mut impl Hasher) {
    use Variant as V;
    h.write_u8(v.variant_type().id());
    match v {
        V::Nil | V::Rid => {}
        V::Bool(b) => b.hash(h),
        V::Int(i) => i.hash(h),
        V::Float(f) => h.write_u64(f64_key(*f)),
        V::String(s) => s.hash(h),
        V::Vector2(x) => floats_hash(x, h),
        V::Rect2(x) => floats_hash(x, h),
        V::Vector3(x) => floats_hash(x, h),
        V::Transform2D(x) => floats_hash(x, h),
        V::Plane(x) => floats_hash(x, h),
        V::Quat(x) => floats_hash(x, h),
        V::Aabb(x) => floats_hash(x, h),
        V::Basis(x) => floats_hash(x, h),
        V::Transform(x) => floats_hash(x, h),
        V::Color(x) => floats_hash(x, h),
        V::NodePath(p) => p.hash(h),
        V::Object(o) => o.hash(h),
        V::Dictionary(d) => {
            h.write_usize(d.len());
            for (k, v) in &d.entries {
                key_hash(k, h);
                key_hash(v, h);
            }
        }
        V::Array(a) => {
            h.write_usize(a.len());
            for v in a {
                key_hash(v, h);
            }
        }
        V::PoolByteArray(a) => a.hash(h),
        V::PoolIntArray(a) => a.hash(h),
        V::PoolRealArray(a) => {
            h.write_usize(a.len());
            for x in a {
                h.write_u32(f32_key(*x));
            }
        }
        V::PoolStringArray(a) => a.hash(h),
        V::PoolVector2Array(a) => {
            h.write_usize(a.len());
            a.iter().for_each(|x| floats_hash(x, h));
        }
        V::PoolVector3Array(a) => {
            h.write_usize(a.len());
            a.iter().for_each(|x| floats_hash(x, h));
        }
        V::PoolColorArray(a) => {
            h.write_usize(a.len());
            a.iter().for_each(|x| floats_hash(x, h));
        }
    }
}
