//! Owned ENet packets.

use crate::{Error, Result};
use enet_sys::ENetPacket;
use std::fmt;
use std::ops::BitOr;
use std::ptr::NonNull;

/// The ENet packet flags this crate lets a caller set (a subset of `ENetPacketFlag`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PacketFlags(u32);

impl PacketFlags {
    /// No flag: unreliable and sequenced (late packets are dropped, order is kept).
    pub const NONE: PacketFlags = PacketFlags(0);
    /// `ENET_PACKET_FLAG_RELIABLE`: resent until acknowledged, delivered in order.
    pub const RELIABLE: PacketFlags =
        PacketFlags(enet_sys::_ENetPacketFlag_ENET_PACKET_FLAG_RELIABLE);
    /// `ENET_PACKET_FLAG_UNSEQUENCED`: unreliable and not ordered.
    pub const UNSEQUENCED: PacketFlags =
        PacketFlags(enet_sys::_ENetPacketFlag_ENET_PACKET_FLAG_UNSEQUENCED);
    /// `ENET_PACKET_FLAG_UNRELIABLE_FRAGMENT`: a packet above the MTU is fragmented unreliably.
    pub const UNRELIABLE_FRAGMENT: PacketFlags =
        PacketFlags(enet_sys::_ENetPacketFlag_ENET_PACKET_FLAG_UNRELIABLE_FRAGMENT);

    const SETTABLE: u32 = Self::RELIABLE.0 | Self::UNSEQUENCED.0 | Self::UNRELIABLE_FRAGMENT.0;

    /// The raw ENet bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Keeps only the bits above (drops ENet's internal ones such as `SENT` and `NO_ALLOCATE`).
    pub fn from_bits_truncate(bits: u32) -> PacketFlags {
        PacketFlags(bits & Self::SETTABLE)
    }

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: PacketFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for PacketFlags {
    type Output = PacketFlags;
    fn bitor(self, rhs: PacketFlags) -> PacketFlags {
        PacketFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for PacketFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        for (flag, name) in [
            (Self::RELIABLE, "RELIABLE"),
            (Self::UNSEQUENCED, "UNSEQUENCED"),
            (Self::UNRELIABLE_FRAGMENT, "UNRELIABLE_FRAGMENT"),
        ] {
            if self.contains(flag) {
                names.push(name);
            }
        }
        if names.is_empty() {
            names.push("NONE");
        }
        write!(f, "PacketFlags({})", names.join(" | "))
    }
}

/// An ENet packet owned by Rust.
///
/// Ownership is exact: a `Packet` handed to ENet (through
/// [`PeerMut::send`](crate::PeerMut::send), [`Host::send_many`](crate::Host::send_many) or
/// [`Host::broadcast`](crate::Host::broadcast)) is consumed and ENet frees it once every peer it
/// was queued for is done with it; a `Packet` that is never handed over is freed by `Drop`.
/// ENet reference-counts packets, so one packet queued for many peers is never copied.
///
/// ```
/// use enet_wrapper::{Packet, PacketFlags};
/// let p = Packet::new(b"hello", PacketFlags::RELIABLE).unwrap();
/// assert_eq!(p.data(), b"hello");
/// assert!(p.flags().contains(PacketFlags::RELIABLE));
/// ```
pub struct Packet {
    raw: NonNull<ENetPacket>,
}

// SAFETY: a `Packet` is the only reference to its ENetPacket (ENet's referenceCount is 0 while
// Rust owns it: see `from_raw` and `into_raw`), the memory comes from malloc, which any thread
// may free, and the bytes are only mutated through `&mut self`.
unsafe impl Send for Packet {}
// SAFETY: `&Packet` only reads the packet's bytes, length and flags.
unsafe impl Sync for Packet {}

impl Packet {
    /// Copies `data` into a new ENet packet with `flags`.
    pub fn new(data: &[u8], flags: PacketFlags) -> Result<Packet> {
        Packet::from_parts(&[data], flags)
    }

    /// Builds one packet from several byte slices laid end to end (for example a header and a
    /// payload) with a single allocation.
    pub fn from_parts(parts: &[&[u8]], flags: PacketFlags) -> Result<Packet> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // SAFETY: a null data pointer without NO_ALLOCATE asks ENet to allocate `len` bytes
        // (or none when `len` is 0); the flags are restricted to the settable ones.
        let raw = unsafe {
            enet_sys::enet_packet_create(
                std::ptr::null(),
                len,
                flags.bits() & PacketFlags::SETTABLE,
            )
        };
        let raw = NonNull::new(raw).ok_or(Error::PacketAlloc(len))?;
        let packet = Packet { raw };
        let mut offset = 0;
        for part in parts {
            if part.is_empty() {
                continue;
            }
            // SAFETY: ENet allocated `len` bytes at `data` (non-null because len > 0 here), the
            // parts add up to exactly `len`, so every write lands inside the allocation, and
            // Rust slices never overlap ENet's fresh allocation.
            unsafe {
                let dst = packet.raw.as_ref().data.add(offset);
                std::ptr::copy_nonoverlapping(part.as_ptr(), dst, part.len());
            }
            offset += part.len();
        }
        Ok(packet)
    }

    /// Takes ownership of a packet ENet gave the application (a receive event).
    ///
    /// # Safety
    /// `raw` must be non-null, valid, and owned by nobody else: its referenceCount must be 0.
    pub(crate) unsafe fn from_raw(raw: *mut ENetPacket) -> Option<Packet> {
        NonNull::new(raw).map(|raw| Packet { raw })
    }

    /// Gives up Rust's ownership; the caller hands the pointer to ENet.
    pub(crate) fn into_raw(self) -> *mut ENetPacket {
        let raw = self.raw.as_ptr();
        std::mem::forget(self);
        raw
    }

    /// The packet's bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: the packet is valid while `self` lives; ENet keeps `dataLength` bytes at
        // `data`, or a null pointer when the length is 0.
        unsafe {
            let p = self.raw.as_ref();
            if p.data.is_null() || p.dataLength == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(p.data, p.dataLength)
            }
        }
    }

    /// The packet's bytes, writable (the packet is not shared while Rust owns it).
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` proves nobody else reads the bytes now.
        unsafe {
            let p = self.raw.as_ref();
            if p.data.is_null() || p.dataLength == 0 {
                &mut []
            } else {
                std::slice::from_raw_parts_mut(p.data, p.dataLength)
            }
        }
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether the packet has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The packet's flags (for a received packet: how it travelled).
    pub fn flags(&self) -> PacketFlags {
        // SAFETY: the packet is valid while `self` lives.
        PacketFlags::from_bits_truncate(unsafe { self.raw.as_ref().flags })
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: Rust is the sole owner (referenceCount 0, never handed to ENet, or
        // `into_raw` would have forgotten `self`), so destroying it frees it exactly once.
        unsafe { enet_sys::enet_packet_destroy(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.len())
            .field("flags", &self.flags())
            .finish()
    }
}

impl AsRef<[u8]> for Packet {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}
/// Frees a packet that no peer took a reference to.
///
/// # Safety
/// `raw` must be a valid packet that Rust handed to ENet calls and no longer uses.
pub(crate) unsafe fn release_if_unowned(raw: *mut enet_sys::ENetPacket) {
    // SAFETY: per the contract; a count of 0 means ENet holds no reference, so Rust is the owner.
    unsafe {
        if (*raw).referenceCount == 0 {
            drop(Packet::from_raw(raw));
        }
    }
}
