//! Bytes on the wire, as Godot 3.x's NetworkedMultiplayerENet writes them (see PROTOCOL.md):
//! the 8-byte data header, the 8-byte system messages and the channel and flag mapping.
//! Pure functions; no sockets.

use crate::peer::{PeerId, TransferMode};
use enet_wrapper::PacketFlags;

/// Length of the data header `[u32 source][i32 target]`.
pub const HEADER_LEN: usize = 8;

/// The largest payload by default: ENet's packet limit less the header, for every transport
/// (a game that switches transports keeps its limit).
pub const DEFAULT_MAX_PAYLOAD: usize = enet_wrapper::DEFAULT_MAX_PACKET_SIZE - HEADER_LEN;
/// Length of a system message `[u32 kind][u32 peer]`.
pub const SYSTEM_MESSAGE_LEN: usize = 8;
/// ENet channel of system messages (server to clients only).
pub const CHANNEL_CONFIG: u8 = 0;
/// ENet channel of logical channel 0, reliable mode.
pub const CHANNEL_RELIABLE: u8 = 1;
/// ENet channel of logical channel 0, unreliable modes.
pub const CHANNEL_UNRELIABLE: u8 = 2;
/// ENet channels reserved by the protocol; logical channel k >= 1 is ENet channel k + 2.
pub const SYSTEM_CHANNELS: usize = 3;
/// The largest logical channel (ENet channel 255 does not exist: ENet has 255 channels, 0..=254).
pub const MAX_LOGICAL_CHANNEL: u8 = 252;

/// The header before every payload on ENet channels >= 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The original sender.
    pub source: u32,
    /// Godot's target integer: 0 all, 1 server, n peer n, -n all but n.
    pub target: i32,
}

/// Why bytes from the network could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed layout needs.
    #[error("too short: {0} bytes")]
    TooShort(usize),
    /// A system message kind other than ADD_PEER (0) and REMOVE_PEER (1).
    #[error("unknown system message kind {0}")]
    UnknownKind(u32),
}

impl Header {
    /// The 8 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.source.to_le_bytes());
        b[4..].copy_from_slice(&self.target.to_le_bytes());
        b
    }

    /// Reads the header at the start of `bytes`; the payload is `&bytes[HEADER_LEN..]`.
    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        let (Some(s), Some(t)) = (bytes.get(0..4), bytes.get(4..8)) else {
            return Err(DecodeError::TooShort(bytes.len()));
        };
        Ok(Header {
            source: u32::from_le_bytes(s.try_into().unwrap_or_default()),
            target: i32::from_le_bytes(t.try_into().unwrap_or_default()),
        })
    }
}

/// A message on the config channel, from the server to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemMessage {
    /// ADD_PEER (kind 0): another client is connected.
    AddPeer(PeerId),
    /// REMOVE_PEER (kind 1): that client left.
    RemovePeer(PeerId),
}

impl SystemMessage {
    /// The 8 bytes of the message.
    pub fn encode(&self) -> [u8; SYSTEM_MESSAGE_LEN] {
        let (kind, id) = match *self {
            SystemMessage::AddPeer(id) => (0u32, id),
            SystemMessage::RemovePeer(id) => (1u32, id),
        };
        let mut b = [0u8; SYSTEM_MESSAGE_LEN];
        b[..4].copy_from_slice(&kind.to_le_bytes());
        b[4..].copy_from_slice(&id.to_le_bytes());
        b
    }

    /// Reads a message. Like Godot, bytes after the first 8 are ignored.
    pub fn decode(bytes: &[u8]) -> Result<SystemMessage, DecodeError> {
        let h = Header::decode(bytes)?;
        let id = h.target as u32;
        match h.source {
            0 => Ok(SystemMessage::AddPeer(id)),
            1 => Ok(SystemMessage::RemovePeer(id)),
            kind => Err(DecodeError::UnknownKind(kind)),
        }
    }
}

/// The ENet channel that carries logical `channel` in `mode`, or `None` above
/// [`MAX_LOGICAL_CHANNEL`].
pub fn enet_channel(mode: TransferMode, channel: u8) -> Option<u8> {
    match channel {
        0 if mode == TransferMode::Reliable => Some(CHANNEL_RELIABLE),
        0 => Some(CHANNEL_UNRELIABLE),
        c if c <= MAX_LOGICAL_CHANNEL => Some(c + 2),
        _ => None,
    }
}

/// The logical channel an ENet channel carries; `None` for the config channel.
pub fn logical_channel(enet_channel: u8) -> Option<u8> {
    match enet_channel {
        CHANNEL_CONFIG => None,
        CHANNEL_RELIABLE | CHANNEL_UNRELIABLE => Some(0),
        c => Some(c - 2),
    }
}

/// The ENet flags Godot 3 uses for `mode`. With `always_ordered`, unreliable packets are
/// sequenced too (Godot's `always_ordered`). Unreliable packets above the MTU are fragmented
/// unreliably, as Godot does.
pub fn packet_flags(mode: TransferMode, always_ordered: bool) -> PacketFlags {
    match mode {
        TransferMode::Reliable => PacketFlags::RELIABLE,
        TransferMode::UnreliableOrdered => PacketFlags::UNRELIABLE_FRAGMENT,
        TransferMode::Unreliable if always_ordered => PacketFlags::UNRELIABLE_FRAGMENT,
        TransferMode::Unreliable => PacketFlags::UNSEQUENCED | PacketFlags::UNRELIABLE_FRAGMENT,
    }
}

/// The mode a received packet travelled in, read back from its ENet flags.
pub fn mode_from_flags(flags: PacketFlags) -> TransferMode {
    if flags.contains(PacketFlags::RELIABLE) {
        TransferMode::Reliable
    } else if flags.contains(PacketFlags::UNSEQUENCED) {
        TransferMode::Unreliable
    } else {
        TransferMode::UnreliableOrdered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_are_little_endian_source_then_target() {
        let h = Header {
            source: 0x0403_0201,
            target: -2,
        };
        assert_eq!(h.encode(), [1, 2, 3, 4, 0xFE, 0xFF, 0xFF, 0xFF]);
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        let mut with_payload = h.encode().to_vec();
        with_payload.extend_from_slice(b"payload");
        assert_eq!(Header::decode(&with_payload).unwrap(), h);
        for n in 0..HEADER_LEN {
            assert_eq!(
                Header::decode(&with_payload[..n]),
                Err(DecodeError::TooShort(n))
            );
        }
    }

    #[test]
    fn system_messages_match_the_protocol() {
        assert_eq!(SystemMessage::AddPeer(5).encode(), [0, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(
            SystemMessage::RemovePeer(0x0100_0002).encode(),
            [1, 0, 0, 0, 2, 0, 0, 1]
        );
        for m in [
            SystemMessage::AddPeer(77),
            SystemMessage::RemovePeer(i32::MAX as u32),
        ] {
            assert_eq!(SystemMessage::decode(&m.encode()), Ok(m));
        }
        assert_eq!(
            SystemMessage::decode(&[2, 0, 0, 0, 5, 0, 0, 0]),
            Err(DecodeError::UnknownKind(2))
        );
        assert_eq!(
            SystemMessage::decode(&[0, 0, 0]),
            Err(DecodeError::TooShort(3))
        );
        assert_eq!(
            SystemMessage::decode(&[0, 0, 0, 0, 9, 0, 0, 0, 0xAA]),
            Ok(SystemMessage::AddPeer(9))
        );
    }

    #[test]
    fn channels_map_as_godot_does() {
        assert_eq!(enet_channel(TransferMode::Reliable, 0), Some(1));
        assert_eq!(enet_channel(TransferMode::Unreliable, 0), Some(2));
        assert_eq!(enet_channel(TransferMode::UnreliableOrdered, 0), Some(2));
        for mode in TransferMode::ALL {
            assert_eq!(enet_channel(mode, 1), Some(3));
            assert_eq!(enet_channel(mode, 252), Some(254));
            assert_eq!(enet_channel(mode, 253), None);
        }
        assert_eq!(logical_channel(0), None);
        assert_eq!(logical_channel(1), Some(0));
        assert_eq!(logical_channel(2), Some(0));
        assert_eq!(logical_channel(3), Some(1));
        assert_eq!(logical_channel(254), Some(252));
    }

    #[test]
    fn flags_match_godot_and_read_back() {
        assert_eq!(
            packet_flags(TransferMode::Reliable, false),
            PacketFlags::RELIABLE
        );
        assert!(packet_flags(TransferMode::Unreliable, false).contains(PacketFlags::UNSEQUENCED));
        assert!(!packet_flags(TransferMode::Unreliable, true).contains(PacketFlags::UNSEQUENCED));
        for mode in TransferMode::ALL {
            assert_eq!(mode_from_flags(packet_flags(mode, false)), mode);
        }
        assert_eq!(
            mode_from_flags(packet_flags(TransferMode::Unreliable, true)),
            TransferMode::UnreliableOrdered
        );
    }
}
