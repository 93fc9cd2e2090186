//! A read-only look at ENet's wire format: one walker over the commands of a datagram, used to
//! count what ENet itself rejects before the application could see it (payloads above the
//! host's maximum packet size, channels beyond what the connection negotiated) and, behind the
//! `testing` feature, by tests that read or forge datagrams. Mirrors ENet 1.3.17's `protocol.c`;
//! pure code.

/// The low 12 bits of a datagram's first word: the peer id (`ENET_PROTOCOL_MAXIMUM_PEER_ID`
/// there means "no peer yet": a connect request).
pub(crate) const PEER_ID_MASK: u16 = enet_sys::ENET_PROTOCOL_MAXIMUM_PEER_ID as u16;
/// Header flag: a 16-bit sent time follows the peer id.
pub(crate) const HEADER_FLAG_SENT_TIME: u16 =
    enet_sys::_ENetProtocolFlag_ENET_PROTOCOL_HEADER_FLAG_SENT_TIME as u16;
/// Header flag: the commands after the header are compressed.
pub(crate) const HEADER_FLAG_COMPRESSED: u16 =
    enet_sys::_ENetProtocolFlag_ENET_PROTOCOL_HEADER_FLAG_COMPRESSED as u16;
/// The command number's bits in a command's first byte; the others are flags.
const COMMAND_MASK: u8 = enet_sys::_ENetProtocolCommand_ENET_PROTOCOL_COMMAND_MASK as u8;

/// An ENet protocol command (`ENetProtocolCommand`), as the low 4 bits of a command's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CommandKind {
    /// `ENET_PROTOCOL_COMMAND_ACKNOWLEDGE` (1).
    Acknowledge = 1,
    /// `ENET_PROTOCOL_COMMAND_CONNECT` (2).
    Connect = 2,
    /// `ENET_PROTOCOL_COMMAND_VERIFY_CONNECT` (3).
    VerifyConnect = 3,
    /// `ENET_PROTOCOL_COMMAND_DISCONNECT` (4).
    Disconnect = 4,
    /// `ENET_PROTOCOL_COMMAND_PING` (5).
    Ping = 5,
    /// `ENET_PROTOCOL_COMMAND_SEND_RELIABLE` (6).
    SendReliable = 6,
    /// `ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE` (7).
    SendUnreliable = 7,
    /// `ENET_PROTOCOL_COMMAND_SEND_FRAGMENT` (8).
    SendFragment = 8,
    /// `ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED` (9).
    SendUnsequenced = 9,
    /// `ENET_PROTOCOL_COMMAND_BANDWIDTH_LIMIT` (10).
    BandwidthLimit = 10,
    /// `ENET_PROTOCOL_COMMAND_THROTTLE_CONFIGURE` (11).
    ThrottleConfigure = 11,
    /// `ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT` (12).
    SendUnreliableFragment = 12,
}

impl CommandKind {
    /// Every kind, in number order.
    pub const ALL: [CommandKind; 12] = [
        CommandKind::Acknowledge,
        CommandKind::Connect,
        CommandKind::VerifyConnect,
        CommandKind::Disconnect,
        CommandKind::Ping,
        CommandKind::SendReliable,
        CommandKind::SendUnreliable,
        CommandKind::SendFragment,
        CommandKind::SendUnsequenced,
        CommandKind::BandwidthLimit,
        CommandKind::ThrottleConfigure,
        CommandKind::SendUnreliableFragment,
    ];

    /// The kind of command number `number` (the low 4 bits of a command's first byte), if ENet
    /// knows it.
    pub fn from_number(number: u8) -> Option<CommandKind> {
        CommandKind::ALL
            .get(usize::from(number).checked_sub(1)?)
            .copied()
    }

    /// The command number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The size of the command's fixed part, its 4-byte command header included (ENet's
    /// `commandSizes`); a SEND command's data follows it.
    pub fn fixed_size(self) -> usize {
        match self {
            CommandKind::Acknowledge => 8,
            CommandKind::Connect => 48,
            CommandKind::VerifyConnect => 44,
            CommandKind::Disconnect => 8,
            CommandKind::Ping => 4,
            CommandKind::SendReliable => 6,
            CommandKind::SendUnreliable => 8,
            CommandKind::SendFragment => 24,
            CommandKind::SendUnsequenced => 8,
            CommandKind::BandwidthLimit => 12,
            CommandKind::ThrottleConfigure => 16,
            CommandKind::SendUnreliableFragment => 24,
        }
    }

    /// Where a SEND command keeps its 16-bit data length, from the command's start; `None` for
    /// the commands that carry no data.
    fn data_length_at(self) -> Option<usize> {
        match self {
            CommandKind::SendReliable => Some(4),
            CommandKind::SendUnreliable
            | CommandKind::SendUnsequenced
            | CommandKind::SendFragment
            | CommandKind::SendUnreliableFragment => Some(6),
            _ => None,
        }
    }
}

/// One command found in a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    /// Where it starts in the bytes walked.
    pub offset: usize,
    /// What it is.
    pub kind: CommandKind,
    /// Its number, `kind` as ENet's integer (the low 4 bits of its first byte).
    pub number: u8,
    /// The high bits of its first byte: `FLAG_ACKNOWLEDGE` (0x80), `FLAG_UNSEQUENCED` (0x40).
    pub flags: u8,
    /// Its channel byte (0xFF for connection commands).
    pub channel: u8,
    /// Its reliable sequence number (the command header's second half).
    pub reliable_sequence_number: u16,
    /// Its fixed part plus its data, as the command declares it (the data may run past the end
    /// of a truncated datagram: see [`Command::is_complete`]).
    pub len: usize,
    /// Where its data starts, for the five SEND commands.
    pub data_offset: Option<usize>,
    /// The data length it declares (0 for commands without data).
    pub data_len: usize,
}

impl Command {
    /// Whether all of the command, data included, lies within `bytes` (the bytes walked).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn is_complete(&self, bytes: &[u8]) -> bool {
        self.offset + self.len <= bytes.len()
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The length of a datagram header whose first word is `word`: 2 bytes, 4 with a sent time, and
/// 4 more when the host uses a checksum.
pub(crate) fn header_len(word: u16, checksum: bool) -> usize {
    let base = if word & HEADER_FLAG_SENT_TIME != 0 {
        4
    } else {
        2
    };
    base + if checksum { 4 } else { 0 }
}

/// Walks the commands in `bytes` from `at`, as ENet reads them: it stops at an unknown command
/// or one whose fixed part does not fit. A SEND command is yielded even when its data runs past
/// the end (ENet rejects it then), and is the last one.
#[derive(Debug, Clone)]
pub(crate) struct Walk<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Walk<'a> {
    pub(crate) fn new(bytes: &'a [u8], at: usize) -> Walk<'a> {
        Walk { bytes, at }
    }
}

impl Iterator for Walk<'_> {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        let (b, at) = (self.bytes, self.at);
        if at.checked_add(4)? > b.len() {
            return None;
        }
        let kind = CommandKind::from_number(b[at] & COMMAND_MASK)?;
        let size = kind.fixed_size();
        if at + size > b.len() {
            self.at = b.len();
            return None;
        }
        let data_len = match kind.data_length_at() {
            Some(field) => usize::from(be16(b, at + field)?),
            None => 0,
        };
        let command = Command {
            offset: at,
            kind,
            number: kind.number(),
            flags: b[at] & !COMMAND_MASK,
            channel: b[at + 1],
            reliable_sequence_number: be16(b, at + 2)?,
            len: size + data_len,
            data_offset: kind.data_length_at().map(|_| at + size),
            data_len,
        };
        // Each command is at least 4 bytes, so the walk always ends.
        self.at = at + command.len;
        Some(command)
    }
}

/// Why ENet will refuse a datagram's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// A payload (or a fragmented packet's total) above the maximum packet size.
    Oversize,
    /// A channel the connection does not have.
    Channel,
}

/// The first data command in `commands` (a datagram after its header, decompressed) that ENet
/// will reject for size or channel, if any. ENet stops at the first bad command, so do we.
pub(crate) fn first_rejection(
    commands: &[u8],
    channels: usize,
    max_packet: usize,
) -> Option<Reject> {
    for c in Walk::new(commands, 0) {
        if c.data_offset.is_none() {
            continue;
        }
        if usize::from(c.channel) >= channels {
            return Some(Reject::Channel);
        }
        if c.data_len > max_packet {
            return Some(Reject::Oversize);
        }
        // A fragment also declares the whole packet's length, 16 bytes in.
        if matches!(
            c.kind,
            CommandKind::SendFragment | CommandKind::SendUnreliableFragment
        ) && be32(commands, c.offset + 16)? as usize > max_packet
        {
            return Some(Reject::Oversize);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    const SEND_RELIABLE: u8 = 6;
    const SEND_FRAGMENT: u8 = 8;

    fn reliable(channel: u8, len: u16) -> Vec<u8> {
        let mut v = vec![SEND_RELIABLE | 0x80, channel, 0, 1];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend(std::iter::repeat(0xAB).take(usize::from(len)));
        v
    }

    fn fragment(channel: u8, len: u16, total: u32) -> Vec<u8> {
        let mut v = vec![SEND_FRAGMENT | 0x80, channel, 0, 1, 0, 1];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&1u32.to_be_bytes()); // fragment count
        v.extend_from_slice(&0u32.to_be_bytes()); // fragment number
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&0u32.to_be_bytes()); // offset
        v.extend(std::iter::repeat(0xCD).take(usize::from(len)));
        v
    }

    #[test]
    fn fixed_sizes_are_the_sizes_of_enets_protocol_structs() {
        use enet_sys::*;
        use CommandKind::*;
        let sizes = [
            (Acknowledge, size_of::<ENetProtocolAcknowledge>()),
            (Connect, size_of::<ENetProtocolConnect>()),
            (VerifyConnect, size_of::<ENetProtocolVerifyConnect>()),
            (Disconnect, size_of::<ENetProtocolDisconnect>()),
            (Ping, size_of::<ENetProtocolPing>()),
            (SendReliable, size_of::<ENetProtocolSendReliable>()),
            (SendUnreliable, size_of::<ENetProtocolSendUnreliable>()),
            (SendFragment, size_of::<ENetProtocolSendFragment>()),
            (SendUnsequenced, size_of::<ENetProtocolSendUnsequenced>()),
            (BandwidthLimit, size_of::<ENetProtocolBandwidthLimit>()),
            (
                ThrottleConfigure,
                size_of::<ENetProtocolThrottleConfigure>(),
            ),
            (
                SendUnreliableFragment,
                size_of::<ENetProtocolSendFragment>(),
            ),
        ];
        for (kind, size) in sizes {
            assert_eq!(kind.fixed_size(), size, "{kind:?}");
        }
        for (i, kind) in CommandKind::ALL.iter().enumerate() {
            assert_eq!(usize::from(kind.number()), i + 1);
            assert_eq!(CommandKind::from_number(kind.number()), Some(*kind));
        }
        assert_eq!(CommandKind::from_number(0), None);
        assert_eq!(CommandKind::from_number(13), None);
        assert_eq!(
            CommandKind::SendUnreliableFragment.number(),
            _ENetProtocolCommand_ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT as u8
        );
    }

    #[test]
    fn walks_commands_with_their_fields() {
        let mut d = vec![5 | 0x80, 0xFF, 0x12, 0x34]; // a ping
        d.extend(reliable(1, 10));
        d.extend(fragment(2, 20, 100));
        let cs: Vec<Command> = Walk::new(&d, 0).collect();
        assert_eq!(cs.len(), 3);
        assert_eq!(
            cs[0],
            Command {
                offset: 0,
                kind: CommandKind::Ping,
                number: 5,
                flags: 0x80,
                channel: 0xFF,
                reliable_sequence_number: 0x1234,
                len: 4,
                data_offset: None,
                data_len: 0,
            }
        );
        assert_eq!(
            (cs[1].kind, cs[1].offset, cs[1].data_offset, cs[1].data_len),
            (CommandKind::SendReliable, 4, Some(10), 10)
        );
        assert_eq!((cs[1].channel, cs[1].reliable_sequence_number), (1, 1));
        assert_eq!(
            (cs[2].kind, cs[2].offset, cs[2].len, cs[2].data_offset),
            (CommandKind::SendFragment, 20, 44, Some(44))
        );
        assert!(cs.iter().all(|c| c.is_complete(&d)));
        // Truncated data: yielded, incomplete, and last.
        let cut = &d[..d.len() - 1];
        let cs: Vec<Command> = Walk::new(cut, 0).collect();
        assert_eq!(cs.len(), 3);
        assert!(!cs[2].is_complete(cut));
        // An unknown command or a short fixed part ends the walk.
        assert_eq!(Walk::new(&[0, 0, 0, 0, 5, 0, 0, 0], 0).count(), 0);
        assert_eq!(Walk::new(&[1, 0, 0, 0, 0, 0], 0).count(), 0);
        assert_eq!(Walk::new(&d, d.len() + 10).count(), 0);
    }

    #[test]
    fn accepts_what_enet_accepts() {
        let mut d = vec![5, 0xFF, 0, 2]; // a ping
        d.extend(reliable(1, 10));
        d.extend(fragment(2, 20, 100));
        assert_eq!(first_rejection(&d, 3, 100), None);
        assert_eq!(first_rejection(&[], 3, 100), None);
        assert_eq!(
            first_rejection(&[0xFF, 1, 2], 3, 100),
            None,
            "truncated: ENet stops too"
        );
    }

    #[test]
    fn finds_bad_channels_and_oversize() {
        assert_eq!(
            first_rejection(&reliable(3, 1), 3, 100),
            Some(Reject::Channel)
        );
        assert_eq!(
            first_rejection(&reliable(0, 101), 3, 100),
            Some(Reject::Oversize)
        );
        assert_eq!(
            first_rejection(&fragment(0, 10, 101), 3, 100),
            Some(Reject::Oversize)
        );
        let mut d = reliable(0, 5);
        d.extend(reliable(9, 5));
        assert_eq!(
            first_rejection(&d, 3, 100),
            Some(Reject::Channel),
            "after a good command"
        );
        let declared_too_long = &reliable(0, 200)[..50];
        assert_eq!(
            first_rejection(declared_too_long, 3, 100),
            Some(Reject::Oversize),
            "a declared length above the limit, data cut short"
        );
    }
}
