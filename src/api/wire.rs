//! The MultiplayerAPI commands inside a peer's payload (MULTIPLAYER_API.md), parsed and built
//! without sockets: the first byte names the command, node paths and names are NUL-terminated
//! UTF-8, integers little-endian.

/// `rpc` / `rpc_id`: `[0][u32 target][name\0][u8 argc][argc Variants]`.
pub const REMOTE_CALL: u8 = 0;
/// `rset` / `rset_id`: `[1][u32 target][name\0][one Variant]`.
pub const REMOTE_SET: u8 = 1;
/// `[2][u32 path id][path\0]`: the sender numbers a node path.
pub const SIMPLIFY_PATH: u8 = 2;
/// `[3][path\0]`: the receiver stored a path the sender numbered.
pub const CONFIRM_PATH: u8 = 3;
/// `[4][bytes]`: `send_bytes`.
pub const RAW: u8 = 4;

/// Bit 31 of an RPC's target: the low 31 bits are the offset of the node path in the packet.
pub const FULL_PATH_FLAG: u32 = 0x8000_0000;

/// Godot drops RPC and RSET packets shorter than this.
pub const MIN_CALL_LEN: usize = 6;

/// Why a packet is not a well-formed MultiplayerAPI command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Empty, or shorter than its command needs.
    #[error("packet too short for its command")]
    TooShort,
    /// A first byte that is no command.
    #[error("unknown command byte {0}")]
    UnknownCommand(u8),
    /// A name that is not NUL-terminated within the packet.
    #[error("name not terminated")]
    Unterminated,
    /// A full-path offset at or past the end of the packet.
    #[error("path offset {0} outside the packet")]
    BadPathOffset(u32),
    /// A name or path that is not UTF-8.
    #[error("name or path not UTF-8")]
    NotUtf8,
}

/// Where an RPC or RSET names its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRef<'a> {
    /// A path id the sender announced with SIMPLIFY_PATH.
    Cached(u32),
    /// The node path itself, appended after the arguments.
    Full(&'a str),
}

/// One parsed command, borrowing from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// An RPC: the node, the method and the bytes from the argument count on.
    RemoteCall {
        /// The node.
        node: NodeRef<'a>,
        /// The method.
        name: &'a str,
        /// `[u8 argc][Variants...]` (and, in the full-path form, the path after them).
        args: &'a [u8],
    },
    /// An RSET: the node, the property and the bytes of its value.
    RemoteSet {
        /// The node.
        node: NodeRef<'a>,
        /// The property.
        name: &'a str,
        /// One Variant (and, in the full-path form, the path after it).
        value: &'a [u8],
    },
    /// The sender numbers `path` as `id`.
    SimplifyPath {
        /// The sender's number for the path.
        id: u32,
        /// The node path.
        path: &'a str,
    },
    /// The receiver confirms it stored `path`.
    ConfirmPath {
        /// The node path.
        path: &'a str,
    },
    /// `send_bytes` data (never empty).
    Raw(&'a [u8]),
}

fn u32_at(packet: &[u8], at: usize) -> Option<u32> {
    let bytes = packet.get(at..at + 4)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The UTF-8 text from `bytes` up to the first NUL, or to the end when `need_nul` is false;
/// with the index just past the NUL.
fn cstr(bytes: &[u8], need_nul: bool) -> Result<(&str, usize), WireError> {
    let (text, used) = match bytes.iter().position(|&b| b == 0) {
        Some(nul) => (&bytes[..nul], nul + 1),
        None if need_nul => return Err(WireError::Unterminated),
        None => (bytes, bytes.len()),
    };
    let text = std::str::from_utf8(text).map_err(|_| WireError::NotUtf8)?;
    Ok((text, used))
}

/// Parses one packet the way Godot's MultiplayerAPI reads it (`_process_packet`).
///
/// ```
/// use enet_multiplayer::api::wire::{parse, Command};
/// // Captured from Godot 3.2.3: a client's CONFIRM of "Main", and send_bytes([9, 8, 7]).
/// assert_eq!(parse(b"\x03Main\0"), Ok(Command::ConfirmPath { path: "Main" }));
/// assert_eq!(parse(&[4, 9, 8, 7]), Ok(Command::Raw(&[9, 8, 7])));
/// ```
pub fn parse(packet: &[u8]) -> Result<Command<'_>, WireError> {
    let (&command, _) = packet.split_first().ok_or(WireError::TooShort)?;
    match command {
        REMOTE_CALL | REMOTE_SET => {
            if packet.len() < MIN_CALL_LEN {
                return Err(WireError::TooShort);
            }
            let target = u32_at(packet, 1).ok_or(WireError::TooShort)?;
            let node = if target & FULL_PATH_FLAG != 0 {
                let offset = target & !FULL_PATH_FLAG;
                let start = offset as usize;
                if start >= packet.len() {
                    return Err(WireError::BadPathOffset(offset));
                }
                NodeRef::Full(cstr(&packet[start..], false)?.0)
            } else {
                NodeRef::Cached(target)
            };
            let (name, used) = cstr(&packet[5..], true)?;
            let rest = &packet[5 + used..];
            if command == REMOTE_CALL {
                if rest.is_empty() {
                    return Err(WireError::TooShort);
                }
                Ok(Command::RemoteCall {
                    node,
                    name,
                    args: rest,
                })
            } else {
                Ok(Command::RemoteSet {
                    node,
                    name,
                    value: rest,
                })
            }
        }
        SIMPLIFY_PATH => {
            let id = u32_at(packet, 1).ok_or(WireError::TooShort)?;
            let (path, _) = cstr(&packet[5..], false)?;
            Ok(Command::SimplifyPath { id, path })
        }
        CONFIRM_PATH => {
            if packet.len() < 2 {
                return Err(WireError::TooShort);
            }
            Ok(Command::ConfirmPath {
                path: cstr(&packet[1..], false)?.0,
            })
        }
        RAW => {
            if packet.len() < 2 {
                return Err(WireError::TooShort);
            }
            Ok(Command::Raw(&packet[1..]))
        }
        other => Err(WireError::UnknownCommand(other)),
    }
}

/// Appends `text` and its NUL.
pub(crate) fn put_cstr(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(0);
}

/// The SIMPLIFY_PATH packet numbering `path` as `id`.
pub fn simplify_path(id: u32, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + path.len());
    out.push(SIMPLIFY_PATH);
    out.extend_from_slice(&id.to_le_bytes());
    put_cstr(&mut out, path);
    out
}

/// The CONFIRM_PATH packet for `path`.
pub fn confirm_path(path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + path.len());
    out.push(CONFIRM_PATH);
    put_cstr(&mut out, path);
    out
}

/// Whether a packet is Godot's SIMPLIFY_PATH (its first byte): the one kind a relay answers,
/// with [`confirm_for_simplify`]. A filter for
/// [`ServerPackets::Matching`](crate::ServerPackets).
///
/// ```
/// use enet_multiplayer::api::wire::is_simplify_path;
/// assert!(is_simplify_path(b"\x02\x01\0\0\0Main\0"));
/// assert!(!is_simplify_path(&[4, 1, 2]));
/// assert!(!is_simplify_path(&[]));
/// ```
pub fn is_simplify_path(packet: &[u8]) -> bool {
    packet.first() == Some(&SIMPLIFY_PATH)
}

/// What Godot answers to a SIMPLIFY_PATH packet: the CONFIRM_PATH for its path, to be sent
/// reliably to its sender alone. `None` for any other packet. A relay that answers this lets
/// Godot clients send broadcast RPCs as one packet (Godot sends the short form only once every
/// target, the server included, confirmed the path).
///
/// A relay also carries games that send raw packets of their own, so only a packet laid out
/// exactly as Godot encodes a SIMPLIFY_PATH is answered: the command byte, a path id below
/// 2^31, a non-empty UTF-8 node path without control characters, and its NUL as the very last
/// byte. A raw payload that merely starts with the byte 2 is left alone.
///
/// ```
/// use enet_multiplayer::api::wire::confirm_for_simplify;
/// // Captured from Godot 3.2.3: SIMPLIFY id 1 "Main"; the answer is CONFIRM "Main".
/// assert_eq!(confirm_for_simplify(b"\x02\x01\0\0\0Main\0").unwrap(), b"\x03Main\0");
/// assert_eq!(confirm_for_simplify(&[4, 1, 2]), None);
/// // A game's own packet that happens to start with 2: not Godot's layout, not answered.
/// assert_eq!(confirm_for_simplify(&[2, 0, 0, 0, 0, 7, 0, 0, 0, 0xaa, 0]), None);
/// ```
pub fn confirm_for_simplify(packet: &[u8]) -> Option<Vec<u8>> {
    let (&last, body) = packet.split_last()?;
    if last != 0 || body.len() < 6 || body[0] != SIMPLIFY_PATH {
        return None;
    }
    let id = u32_at(body, 1)?;
    let path = std::str::from_utf8(&body[5..]).ok()?;
    if id & FULL_PATH_FLAG != 0 || path.chars().any(char::is_control) {
        return None;
    }
    Some(confirm_path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packets MULTIPLAYER_API.md captured from Godot 3.2.3.
    #[test]
    fn captured_packets() {
        let simplify = [2, 1, 0, 0, 0, b'M', b'a', b'i', b'n', 0];
        assert_eq!(
            parse(&simplify),
            Ok(Command::SimplifyPath {
                id: 1,
                path: "Main"
            })
        );
        assert_eq!(simplify_path(1, "Main"), simplify);
        // RPC to_client(7), full-path form, path at 0x18.
        let mut rpc = vec![0, 0x18, 0, 0, 0x80];
        rpc.extend_from_slice(b"to_client\0\x01");
        rpc.extend_from_slice(&[2, 0, 0, 0, 7, 0, 0, 0]);
        rpc.extend_from_slice(b"Main\0");
        assert_eq!(rpc[0x18], b'M');
        match parse(&rpc).unwrap() {
            Command::RemoteCall { node, name, args } => {
                assert_eq!(node, NodeRef::Full("Main"));
                assert_eq!(name, "to_client");
                assert_eq!(args[0], 1);
                assert_eq!(&args[1..9], &[2, 0, 0, 0, 7, 0, 0, 0]);
            }
            other => panic!("{other:?}"),
        }
        // RSET rv = 3.
        let mut rset = vec![1, 0x10, 0, 0, 0x80];
        rset.extend_from_slice(b"rv\0");
        rset.extend_from_slice(&[2, 0, 0, 0, 3, 0, 0, 0]);
        rset.extend_from_slice(b"Main\0");
        match parse(&rset).unwrap() {
            Command::RemoteSet { node, name, value } => {
                assert_eq!((node, name), (NodeRef::Full("Main"), "rv"));
                assert_eq!(&value[..8], &[2, 0, 0, 0, 3, 0, 0, 0]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(confirm_path("Main"), b"\x03Main\0");
        assert_eq!(confirm_for_simplify(&simplify).unwrap(), b"\x03Main\0");
        assert_eq!(
            confirm_for_simplify(&simplify_path(7, "Game/Player 2/é")).unwrap(),
            confirm_path("Game/Player 2/é")
        );
    }

    /// Raw game packets that start with 2 are not taken for SIMPLIFY_PATH.
    #[test]
    fn only_godots_layout_is_confirmed() {
        for bad in [
            &b"\x02\x01\x00\x00\x00Main"[..],            // no NUL
            b"\x02\x01\x00\x00\x00\x00",                 // empty path
            b"\x02\x01\x00\x00\x00Ma\x00in\x00",         // a NUL inside
            b"\x02\x01\x00\x00\x80Main\x00",             // id with bit 31
            b"\x02\x01\x00\x00\x00\xffMain\x00",         // not UTF-8
            b"\x02\x05\x00\x00\x00\x07\x00\x00\x00\x00", // a load-test payload
            b"\x03Main\x00",
        ] {
            assert_eq!(confirm_for_simplify(bad), None, "{bad:?}");
        }
        // Payloads laid out as examples/load.rs lays them out (a counter, a sender index,
        // filler) whose first byte happens to be 2: none is answered.
        for seq in (2..2_000_000u32).step_by(256) {
            let mut p = seq.to_le_bytes().to_vec();
            p.extend_from_slice(&(seq % 64).to_le_bytes());
            p.extend_from_slice(&[0xA5; 24]);
            assert_eq!(p[0], SIMPLIFY_PATH);
            assert_eq!(confirm_for_simplify(&p), None);
        }
    }

    #[test]
    fn cached_form_and_malformed_packets() {
        let call = b"\x00\x05\x00\x00\x00echo\x00\x00";
        assert_eq!(
            parse(call),
            Ok(Command::RemoteCall {
                node: NodeRef::Cached(5),
                name: "echo",
                args: &[0]
            })
        );
        assert_eq!(parse(b""), Err(WireError::TooShort));
        assert_eq!(parse(b"\x00\x01\x00\x00"), Err(WireError::TooShort));
        assert_eq!(
            parse(b"\x00\x01\x00\x00\x00ab"),
            Err(WireError::Unterminated)
        );
        assert_eq!(
            parse(b"\x00\x01\x00\x00\x00ab\x00"),
            Err(WireError::TooShort)
        );
        assert_eq!(
            parse(b"\x00\x40\x00\x00\x80ab\x00\x00"),
            Err(WireError::BadPathOffset(0x40))
        );
        assert_eq!(
            parse(b"\x00\x01\x00\x00\x00\xff\x00\x00"),
            Err(WireError::NotUtf8)
        );
        assert_eq!(parse(b"\x04"), Err(WireError::TooShort));
        assert_eq!(parse(b"\x03"), Err(WireError::TooShort));
        assert_eq!(parse(b"\x02\x01\x00"), Err(WireError::TooShort));
        assert_eq!(parse(b"\x09"), Err(WireError::UnknownCommand(9)));
        // Every prefix of a valid call parses or errs, never panics.
        let full = b"\x00\x0c\x00\x00\x80ab\x00\x00Node\x00";
        for end in 0..=full.len() {
            let _ = parse(&full[..end]);
        }
    }
}
