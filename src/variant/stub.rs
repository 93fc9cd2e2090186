//! TEMPORARY: a minimal codec so the MultiplayerApi builds while the full codec is written on
//! its own branch. Replaced at merge.
#![allow(missing_docs)]

use super::{Variant, Vector2};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated")]
    Truncated,
    #[error("unsupported type {0}")]
    InvalidType(u32),
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, DecodeError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
        .ok_or(DecodeError::Truncated)
}

impl Variant {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Variant::Nil => out.extend_from_slice(&0u32.to_le_bytes()),
            Variant::Bool(b) => {
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&u32::from(*b).to_le_bytes());
            }
            Variant::Int(i) => {
                if let Ok(small) = i32::try_from(*i) {
                    out.extend_from_slice(&2u32.to_le_bytes());
                    out.extend_from_slice(&small.to_le_bytes());
                } else {
                    out.extend_from_slice(&(2u32 | 1 << 16).to_le_bytes());
                    out.extend_from_slice(&i.to_le_bytes());
                }
            }
            Variant::Float(f) => {
                out.extend_from_slice(&(3u32 | 1 << 16).to_le_bytes());
                out.extend_from_slice(&f.to_le_bytes());
            }
            Variant::String(s) => {
                out.extend_from_slice(&4u32.to_le_bytes());
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
                out.resize(out.len() + (4 - s.len() % 4) % 4, 0);
            }
            Variant::Vector2(v) => {
                out.extend_from_slice(&5u32.to_le_bytes());
                out.extend_from_slice(&v.x.to_le_bytes());
                out.extend_from_slice(&v.y.to_le_bytes());
            }
            Variant::Array(a) => {
                out.extend_from_slice(&19u32.to_le_bytes());
                out.extend_from_slice(&(a.len() as u32).to_le_bytes());
                for v in a {
                    v.encode(out);
                }
            }
            _ => out.extend_from_slice(&0u32.to_le_bytes()),
        }
    }

    pub fn decode(b: &[u8]) -> Result<(Variant, usize), DecodeError> {
        let h = u32_at(b, 0)?;
        let flag = h & (1 << 16) != 0;
        Ok(match h & 0xff {
            0 => (Variant::Nil, 4),
            1 => (Variant::Bool(u32_at(b, 4)? != 0), 8),
            2 if flag => {
                let lo = u64::from(u32_at(b, 4)?);
                let hi = u64::from(u32_at(b, 8)?);
                (Variant::Int((hi << 32 | lo) as i64), 12)
            }
            2 => (Variant::Int(i64::from(u32_at(b, 4)? as i32)), 8),
            3 if flag => {
                let lo = u64::from(u32_at(b, 4)?);
                let hi = u64::from(u32_at(b, 8)?);
                (Variant::Float(f64::from_bits(hi << 32 | lo)), 12)
            }
            3 => (Variant::Float(f64::from(f32::from_bits(u32_at(b, 4)?))), 8),
            4 => {
                let n = u32_at(b, 4)? as usize;
                let s = b.get(8..8 + n).ok_or(DecodeError::Truncated)?;
                let s = String::from_utf8_lossy(s).into_owned();
                (Variant::String(s), 8 + n + (4 - n % 4) % 4)
            }
            5 => (
                Variant::Vector2(Vector2 {
                    x: f32::from_bits(u32_at(b, 4)?),
                    y: f32::from_bits(u32_at(b, 8)?),
                }),
                12,
            ),
            19 => {
                let n = u32_at(b, 4)? as usize & 0x7fff_ffff;
                let mut at = 8;
                let mut items = Vec::new();
                for _ in 0..n {
                    let (v, used) = Variant::decode(b.get(at..).ok_or(DecodeError::Truncated)?)?;
                    items.push(v);
                    at += used;
                }
                (Variant::Array(items), at)
            }
            t => return Err(DecodeError::InvalidType(t)),
        })
    }
}

pub trait FromVariant: Sized {
    fn from_variant(v: &Variant) -> Result<Self, DecodeError>;
}

impl FromVariant for i64 {
    fn from_variant(v: &Variant) -> Result<Self, DecodeError> {
        match v {
            Variant::Int(i) => Ok(*i),
            _ => Err(DecodeError::Truncated),
        }
    }
}

impl Variant {
    pub fn get<T: FromVariant>(&self) -> Result<T, DecodeError> {
        T::from_variant(self)
    }
}
