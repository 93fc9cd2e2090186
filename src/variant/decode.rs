//! Decoding: what Godot 3's `decode_variant` (marshalls.cpp) accepts from an untrusted peer,
//! without recursion (containers use an explicit stack) and without allocating from a declared
//! count before checking it against the bytes left.

use super::encode::{pad4, FLAG};
use super::types::Floats;
use super::{Aabb, Basis, Plane, Quat, Rect2, Transform, Transform2D, MAX_DEPTH};
use super::{Color, Dictionary, NodePath, ObjectId, Variant, VariantType, Vector2, Vector3};

/// Why bytes are not a valid Godot 3 Variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the value does: `needed` bytes (from the start of the buffer) are
    /// needed to go on, `available` are there.
    #[error("truncated variant: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes needed, counted from the start of the buffer given to `decode`.
        needed: usize,
        /// The buffer's length.
        available: usize,
    },
    /// The header's type id (its low byte) is 27 or more.
    #[error("invalid variant type id {0}")]
    InvalidType(u32),
    /// A NodePath in Godot's old format (name count without bit 31).
    #[error("node path in the old format (bit 31 of the name count not set)")]
    InvalidNodePath,
    /// A string (or a node path name) that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Arrays and dictionaries nested deeper than [`MAX_DEPTH`].
    #[error("containers nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// An object in full encoding (class name and properties) rather than as an instance id:
    /// Godot refuses it too unless object decoding is allowed.
    #[error("full object encoding refused (only objects sent as instance ids are accepted)")]
    FullObjectNotAllowed,
    /// An array, dictionary or pool declares more elements than the bytes left can hold.
    #[error("declared count {count} cannot fit in the {available} bytes left")]
    CountTooLarge {
        /// The declared count.
        count: u32,
        /// The bytes left after the count.
        available: usize,
    },
}

type Result<T> = std::result::Result<T, DecodeError>;

/// A container being filled. `reserved` counts the elements (pairs) of its initial capacity
/// not filled yet.
enum Frame {
    Array {
        items: Vec<Variant>,
        left: usize,
        reserved: usize,
    },
    Dictionary {
        pairs: Vec<(Variant, Variant)>,
        key: Option<Variant>,
        left: usize,
        reserved: usize,
    },
}

/// Bytes at least each array element / dictionary pair takes.
const ELEMENT_MIN: usize = 4;
const PAIR_MIN: usize = 8;

/// What one header starts: a finished value, or a non-empty array or dictionary of this many
/// elements (pairs) to fill.
enum Step {
    Value(Variant),
    OpenArray(usize),
    OpenDictionary(usize),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[cold]
    fn truncated(&self, n: usize) -> DecodeError {
        DecodeError::Truncated {
            needed: self.pos.saturating_add(n),
            available: self.buf.len(),
        }
    }

    #[inline]
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let buf: &'a [u8] = self.buf;
        match buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.truncated(n)),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        match self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.first_chunk::<N>())
        {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.truncated(N)),
        }
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        self.array::<4>().map(u32::from_le_bytes)
    }

    #[inline]
    fn floats<T: Floats>(&mut self) -> Result<T> {
        let s = self.bytes(4 * T::COUNT)?;
        let mut i = 0;
        Ok(T::build(&mut || {
            let x = f32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
            i += 4;
            x
        }))
    }

    /// A count of elements each at least `min_size` bytes: checked against the bytes left.
    #[inline]
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u32()?;
        let count = n as usize;
        if count.saturating_mul(min_size) > self.left() {
            return Err(DecodeError::CountTooLarge {
                count: n,
                available: self.left(),
            });
        }
        Ok(count)
    }

    /// A string body: u32 length, bytes, padding (which must be there, as Godot requires).
    /// As Godot's `parse_utf8`: a leading U+FEFF is dropped and the text ends at the first NUL.
    #[inline]
    fn string_body(&mut self, len: usize) -> Result<String> {
        let total = len.saturating_add(pad4(len));
        let raw = self.bytes(total)?;
        let mut text = &raw[..len];
        if let Some(rest) = text.strip_prefix(b"\xEF\xBB\xBF") {
            text = rest;
        }
        if let Some(nul) = text.iter().position(|&b| b == 0) {
            text = &text[..nul];
        }
        match std::str::from_utf8(text) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8),
        }
    }

    #[inline]
    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        self.string_body(len)
    }

    fn node_path(&mut self) -> Result<NodePath> {
        let names = self.u32()?;
        if names & 0x8000_0000 == 0 {
            return Err(DecodeError::InvalidNodePath);
        }
        let names = (names & 0x7FFF_FFFF) as usize;
        let mut subnames = self.u32()? as usize;
        let flags = self.u32()?;
        if flags & 2 != 0 {
            // Godot's obsolete format kept the property apart from the subnames.
            subnames += 1;
        }
        let total = names.saturating_add(subnames);
        if total > self.left() / 4 {
            return Err(DecodeError::CountTooLarge {
                count: total.min(u32::MAX as usize) as u32,
                available: self.left(),
            });
        }
        let mut path = NodePath {
            names: Vec::with_capacity(names),
            subnames: Vec::with_capacity(subnames),
            absolute: flags & 1 != 0,
        };
        for _ in 0..names {
            path.names.push(self.string()?);
        }
        for _ in 0..subnames {
            path.subnames.push(self.string()?);
        }
        Ok(path)
    }

    fn pool<T>(&mut self, size: usize, read: impl Fn(&[u8]) -> T) -> Result<Vec<T>> {
        let n = self.count(size)?;
        let s = self.bytes(n * size)?;
        Ok(s.chunks_exact(size).map(read).collect())
    }

    fn pool_floats<T: Floats>(&mut self) -> Result<Vec<T>> {
        let n = self.count(4 * T::COUNT)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.floats::<T>()?);
        }
        Ok(out)
    }

    /// Reads one header and, unless it opens a non-empty container, its whole value. The
    /// usual RPC argument types are decoded here, the others in [`Reader::step_other`] (which
    /// keeps this function small).
    #[inline]
    fn step(&mut self) -> Result<Step> {
        let header = self.u32()?;
        let Some(t) = VariantType::from_id((header & 0xFF) as u8) else {
            return Err(DecodeError::InvalidType(header & 0xFF));
        };
        let flag = header & FLAG != 0;
        let v = match t {
            VariantType::Nil => Variant::Nil,
            VariantType::Bool => Variant::Bool(self.u32()? != 0),
            VariantType::Int => {
                if flag {
                    Variant::Int(i64::from_le_bytes(self.array::<8>()?))
                } else {
                    Variant::Int(i64::from(i32::from_le_bytes(self.array::<4>()?)))
                }
            }
            VariantType::Float => {
                if flag {
                    Variant::Float(f64::from_le_bytes(self.array::<8>()?))
                } else {
                    Variant::Float(f64::from(f32::from_le_bytes(self.array::<4>()?)))
                }
            }
            VariantType::String => Variant::String(self.string()?),
            VariantType::Vector2 => Variant::Vector2(self.floats::<Vector2>()?),
            VariantType::Vector3 => Variant::Vector3(self.floats::<Vector3>()?),
            _ => return self.step_other(t, flag),
        };
        Ok(Step::Value(v))
    }

    #[inline(never)]
    fn step_other(&mut self, t: VariantType, flag: bool) -> Result<Step> {
        let v = match t {
            VariantType::Rect2 => Variant::Rect2(self.floats::<Rect2>()?),
            VariantType::Transform2D => Variant::Transform2D(self.floats::<Transform2D>()?),
            VariantType::Plane => Variant::Plane(self.floats::<Plane>()?),
            VariantType::Quat => Variant::Quat(self.floats::<Quat>()?),
            VariantType::Aabb => Variant::Aabb(self.floats::<Aabb>()?),
            VariantType::Basis => Variant::Basis(self.floats::<Basis>()?),
            VariantType::Transform => Variant::Transform(self.floats::<Transform>()?),
            VariantType::Color => Variant::Color(self.floats::<Color>()?),
            VariantType::NodePath => Variant::NodePath(self.node_path()?),
            VariantType::Rid => Variant::Rid,
            VariantType::Object => {
                if !flag {
                    return Err(DecodeError::FullObjectNotAllowed);
                }
                Variant::Object(ObjectId(u64::from_le_bytes(self.array::<8>()?)))
            }
            VariantType::Dictionary => {
                // Bit 31 is Godot's "shared" flag: no meaning on the wire.
                let n = self.count_masked(PAIR_MIN)?;
                if n == 0 {
                    Variant::Dictionary(Dictionary::new())
                } else {
                    return Ok(Step::OpenDictionary(n));
                }
            }
            VariantType::Array => {
                let n = self.count_masked(ELEMENT_MIN)?;
                if n == 0 {
                    Variant::Array(Vec::new())
                } else {
                    return Ok(Step::OpenArray(n));
                }
            }
            VariantType::PoolByteArray => {
                let n = self.u32()? as usize;
                let s = self.bytes(n.saturating_add(pad4(n)))?;
                Variant::PoolByteArray(s[..n].to_vec())
            }
            VariantType::PoolIntArray => Variant::PoolIntArray(
                self.pool(4, |c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))?,
            ),
            VariantType::PoolRealArray => Variant::PoolRealArray(
                self.pool(4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))?,
            ),
            VariantType::PoolStringArray => {
                let n = self.count(4)?;
                let mut out = Vec::with_capacity(n);
                for _ in 0..n {
                    out.push(self.string()?);
                }
                Variant::PoolStringArray(out)
            }
            VariantType::PoolVector2Array => Variant::PoolVector2Array(self.pool_floats()?),
            VariantType::PoolVector3Array => Variant::PoolVector3Array(self.pool_floats()?),
            VariantType::PoolColorArray => Variant::PoolColorArray(self.pool_floats()?),
            VariantType::Nil
            | VariantType::Bool
            | VariantType::Int
            | VariantType::Float
            | VariantType::String
            | VariantType::Vector2
            | VariantType::Vector3 => unreachable!("decoded in step"),
        };
        Ok(Step::Value(v))
    }

    /// An array or dictionary count (bit 31 ignored), checked against the bytes left.
    #[inline]
    fn count_masked(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u32()? & 0x7FFF_FFFF;
        let count = n as usize;
        if count.saturating_mul(min_size) > self.left() {
            return Err(DecodeError::CountTooLarge {
                count: n,
                available: self.left(),
            });
        }
        Ok(count)
    }
}

impl Frame {
    /// Adds one decoded element; returns the finished container when this was its last, and
    /// through `unfilled` gives back the reservation the element used.
    #[inline]
    fn push(&mut self, v: Variant, unfilled: &mut usize) -> Option<Variant> {
        match self {
            Frame::Array {
                items,
                left,
                reserved,
            } => {
                items.push(v);
                if *reserved > 0 {
                    *reserved -= 1;
                    *unfilled -= ELEMENT_MIN;
                }
                *left -= 1;
                if *left == 0 {
                    return Some(Variant::Array(std::mem::take(items)));
                }
            }
            Frame::Dictionary {
                pairs,
                key,
                left,
                reserved,
            } => match key.take() {
                None => *key = Some(v),
                Some(k) => {
                    pairs.push((k, v));
                    if *reserved > 0 {
                        *reserved -= 1;
                        *unfilled -= PAIR_MIN;
                    }
                    *left -= 1;
                    if *left == 0 {
                        return Some(Variant::Dictionary(Dictionary::from_pairs(std::mem::take(
                            pairs,
                        ))));
                    }
                }
            },
        }
        None
    }
}

/// Fills the container `first` opens, and everything nested in it.
///
/// Capacity is reserved from the declared counts, but all open containers together never
/// reserve more elements than the bytes left could hold (`unfilled` tracks the bytes their
/// unfilled reservations stand for), so nesting cannot multiply the memory a packet costs.
fn decode_nested(r: &mut Reader<'_>, first: Step) -> Result<Variant> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut unfilled = 0usize;
    let mut step = first;
    loop {
        let mut value = match step {
            Step::Value(v) => {
                // An empty container is a level too.
                if stack.len() >= MAX_DEPTH
                    && matches!(v, Variant::Array(_) | Variant::Dictionary(_))
                {
                    return Err(DecodeError::TooDeep);
                }
                v
            }
            Step::OpenArray(n) | Step::OpenDictionary(n) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                let budget = r.left().saturating_sub(unfilled);
                let frame = if let Step::OpenArray(_) = step {
                    let cap = n.min(budget / ELEMENT_MIN);
                    unfilled += cap * ELEMENT_MIN;
                    Frame::Array {
                        items: Vec::with_capacity(cap),
                        left: n,
                        reserved: cap,
                    }
                } else {
                    let cap = n.min(budget / PAIR_MIN);
                    unfilled += cap * PAIR_MIN;
                    Frame::Dictionary {
                        pairs: Vec::with_capacity(cap),
                        key: None,
                        left: n,
                        reserved: cap,
                    }
                };
                stack.push(frame);
                step = r.step()?;
                continue;
            }
        };
        // Hand the value up through every container it completes.
        loop {
            let Some(top) = stack.last_mut() else {
                return Ok(value);
            };
            match top.push(value, &mut unfilled) {
                None => break,
                Some(done) => {
                    stack.pop();
                    value = done;
                }
            }
        }
        step = r.step()?;
    }
}

impl Variant {
    /// Decodes one value from the start of `bytes`; returns it and the bytes it used (padding
    /// included), so that the next value starts at `bytes[used..]`.
    ///
    /// Accepts what Godot 3's `bytes2var` accepts from a peer (header bits other than the type
    /// and bit 16 ignored, padding bytes not checked, the shared bit of containers ignored)
    /// except objects in full encoding, containers nested deeper than [`MAX_DEPTH`] and
    /// padding missing at the end of the bytes. Never panics, and allocates no more than the
    /// bytes given can fill.
    pub fn decode(bytes: &[u8]) -> Result<(Variant, usize)> {
        // The usual RPC arguments (int, float, String, Vector2) built straight into the
        // result: going through `Step` costs a store-forwarding stall per value (measured: an
        // int took three times as long).
        if let Some(w) = bytes.first_chunk::<8>() {
            let header = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let body = [w[4], w[5], w[6], w[7]];
            match header & (0xFF | FLAG) {
                2 => return Ok((Variant::Int(i64::from(i32::from_le_bytes(body))), 8)),
                3 => return Ok((Variant::Float(f64::from(f32::from_le_bytes(body))), 8)),
                5 => {
                    if let Some(w) = bytes.first_chunk::<12>() {
                        let y = f32::from_le_bytes([w[8], w[9], w[10], w[11]]);
                        let v = Vector2::new(f32::from_le_bytes(body), y);
                        return Ok((Variant::Vector2(v), 12));
                    }
                }
                4 => {
                    let mut r = Reader { buf: bytes, pos: 8 };
                    let s = r.string_body(u32::from_le_bytes(body) as usize)?;
                    return Ok((Variant::String(s), r.pos));
                }
                _ => {}
            }
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let v = match r.step()? {
            Step::Value(v) => v,
            open => decode_nested(&mut r, open)?,
        };
        Ok((v, r.pos))
    }
}
