//! Godot 3's WebSocket multiplayer framing (WEBSOCKET.md): a 9-byte header `[u8 type][i32 from]
//! [i32 to]` (little-endian) before every message's payload. Pure functions; no sockets.

use crate::peer::{PeerId, SERVER_ID};

/// Length of the header before every message.
pub const WS_HEADER_LEN: usize = 9;

/// The largest whole message (header included) a Godot 3 WebSocket client takes with its
/// default 64 KiB buffers: 65,535 bytes arrive, 65,536 are silently dropped.
pub const GODOT_MAX_MESSAGE: usize = 65_535;

/// The largest payload a Godot 3 WebSocket client takes: [`GODOT_MAX_MESSAGE`] less the header.
pub const GODOT_MAX_PAYLOAD: usize = GODOT_MAX_MESSAGE - WS_HEADER_LEN;

/// The message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 0: a data packet.
    Data,
    /// 1: SYS_ADD, a peer joined (or, with id 1, the server accepted this client).
    SysAdd,
    /// 2: SYS_DEL, a peer left.
    SysDel,
    /// 3: SYS_ID, this client's id.
    SysId,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::SysAdd => 1,
            Kind::SysDel => 2,
            Kind::SysId => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            0 => Kind::Data,
            1 => Kind::SysAdd,
            2 => Kind::SysDel,
            3 => Kind::SysId,
            _ => return None,
        })
    }
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsHeader {
    /// The message type.
    pub kind: Kind,
    /// The original sender (1 for system messages).
    pub from: u32,
    /// Godot's target integer (0 for system messages).
    pub to: i32,
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WsDecodeError {
    /// Shorter than the header (or a system message shorter than header + 4).
    #[error("too short: {0} bytes")]
    TooShort(usize),
    /// A type byte other than 0..=3.
    #[error("unknown message type {0}")]
    UnknownKind(u8),
}

impl WsHeader {
    /// A data header.
    pub fn data(from: PeerId, to: i32) -> WsHeader {
        WsHeader {
            kind: Kind::Data,
            from,
            to,
        }
    }

    /// The 9 header bytes.
    pub fn encode(&self) -> [u8; WS_HEADER_LEN] {
        let mut b = [0u8; WS_HEADER_LEN];
        b[0] = self.kind.byte();
        b[1..5].copy_from_slice(&self.from.to_le_bytes());
        b[5..9].copy_from_slice(&self.to.to_le_bytes());
        b
    }

    /// Reads the header at the start of `bytes`; the payload is `&bytes[WS_HEADER_LEN..]`.
    pub fn decode(bytes: &[u8]) -> Result<WsHeader, WsDecodeError> {
        let Some(head) = bytes.get(..WS_HEADER_LEN) else {
            return Err(WsDecodeError::TooShort(bytes.len()));
        };
        let kind = Kind::from_byte(head[0]).ok_or(WsDecodeError::UnknownKind(head[0]))?;
        let word = |at: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&head[at..at + 4]);
            w
        };
        Ok(WsHeader {
            kind,
            from: u32::from_le_bytes(word(1)),
            to: i32::from_le_bytes(word(5)),
        })
    }
}

/// A system message from the server: `kind` with the peer id as its 4-byte payload.
pub fn system_message(kind: Kind, id: PeerId) -> [u8; WS_HEADER_LEN + 4] {
    let mut b = [0u8; WS_HEADER_LEN + 4];
    let header = WsHeader {
        kind,
        from: SERVER_ID,
        to: 0,
    };
    b[..WS_HEADER_LEN].copy_from_slice(&header.encode());
    b[WS_HEADER_LEN..].copy_from_slice(&id.to_le_bytes());
    b
}

/// The peer id of a system message (its first 4 payload bytes).
pub fn system_peer(bytes: &[u8]) -> Result<PeerId, WsDecodeError> {
    let Some(id) = bytes.get(WS_HEADER_LEN..WS_HEADER_LEN + 4) else {
        return Err(WsDecodeError::TooShort(bytes.len()));
    };
    let mut w = [0u8; 4];
    w.copy_from_slice(id);
    Ok(u32::from_le_bytes(w))
}

/// A whole data message: header then payload.
pub fn data_message(from: PeerId, to: i32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(WS_HEADER_LEN + payload.len());
    m.extend_from_slice(&WsHeader::data(from, to).encode());
    m.extend_from_slice(payload);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_are_godots() {
        let h = WsHeader::data(0x0102_0304, -5);
        assert_eq!(h.encode(), [0, 4, 3, 2, 1, 0xfb, 0xff, 0xff, 0xff]);
        assert_eq!(WsHeader::decode(&h.encode()), Ok(h));
        assert_eq!(
            system_message(Kind::SysId, 7),
            [3, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]
        );
        assert_eq!(system_peer(&system_message(Kind::SysAdd, 99)), Ok(99));
        assert_eq!(
            WsHeader::decode(&system_message(Kind::SysDel, 9))
                .unwrap()
                .kind,
            Kind::SysDel
        );
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(WsHeader::decode(&[0; 8]), Err(WsDecodeError::TooShort(8)));
        assert_eq!(
            WsHeader::decode(&[4, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(WsDecodeError::UnknownKind(4))
        );
        assert_eq!(system_peer(&[1; 12]), Err(WsDecodeError::TooShort(12)));
        assert_eq!(data_message(2, 1, b"ab").len(), WS_HEADER_LEN + 2);
        assert_eq!(GODOT_MAX_PAYLOAD, 65_526);
    }
}
