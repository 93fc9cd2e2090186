//! ENet's datagram format for tests (cargo feature `testing`): the same command walker the
//! host uses to count what ENet rejects, for tests that read, mutate or forge datagrams.
//!
//! ```
//! use enet_wrapper::testing::{self, CommandKind};
//! // A datagram to no peer yet, with a sent time, holding one ping.
//! let d = [0x8F, 0xFF, 0x00, 0x00, 0x85, 0xFF, 0x00, 0x01];
//! assert_eq!(testing::header_len(&d), Some(4));
//! let cs = testing::commands(&d);
//! assert_eq!(cs.len(), 1);
//! assert_eq!(cs[0].kind, CommandKind::Ping);
//! assert_eq!(cs[0].number, testing::PING);
//! assert_eq!(cs[0].flags, testing::FLAG_ACKNOWLEDGE);
//! assert_eq!((cs[0].offset, cs[0].channel, cs[0].reliable_sequence_number), (4, 0xFF, 1));
//! ```

use crate::inspect::{self, Walk};
pub use crate::inspect::{Command, CommandKind};

/// `ENET_PROTOCOL_COMMAND_ACKNOWLEDGE`.
pub const ACKNOWLEDGE: u8 = CommandKind::Acknowledge as u8;
/// `ENET_PROTOCOL_COMMAND_CONNECT`.
pub const CONNECT: u8 = CommandKind::Connect as u8;
/// `ENET_PROTOCOL_COMMAND_VERIFY_CONNECT`.
pub const VERIFY_CONNECT: u8 = CommandKind::VerifyConnect as u8;
/// `ENET_PROTOCOL_COMMAND_DISCONNECT`.
pub const DISCONNECT: u8 = CommandKind::Disconnect as u8;
/// `ENET_PROTOCOL_COMMAND_PING`.
pub const PING: u8 = CommandKind::Ping as u8;
/// `ENET_PROTOCOL_COMMAND_SEND_RELIABLE`.
pub const SEND_RELIABLE: u8 = CommandKind::SendReliable as u8;
/// `ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE`.
pub const SEND_UNRELIABLE: u8 = CommandKind::SendUnreliable as u8;
/// `ENET_PROTOCOL_COMMAND_SEND_FRAGMENT`.
pub const SEND_FRAGMENT: u8 = CommandKind::SendFragment as u8;
/// `ENET_PROTOCOL_COMMAND_SEND_UNSEQUENCED`.
pub const SEND_UNSEQUENCED: u8 = CommandKind::SendUnsequenced as u8;
/// `ENET_PROTOCOL_COMMAND_BANDWIDTH_LIMIT`.
pub const BANDWIDTH_LIMIT: u8 = CommandKind::BandwidthLimit as u8;
/// `ENET_PROTOCOL_COMMAND_THROTTLE_CONFIGURE`.
pub const THROTTLE_CONFIGURE: u8 = CommandKind::ThrottleConfigure as u8;
/// `ENET_PROTOCOL_COMMAND_SEND_UNRELIABLE_FRAGMENT`.
pub const SEND_UNRELIABLE_FRAGMENT: u8 = CommandKind::SendUnreliableFragment as u8;

/// Command flag (`ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE`): the receiver must acknowledge.
pub const FLAG_ACKNOWLEDGE: u8 =
    enet_sys::_ENetProtocolFlag_ENET_PROTOCOL_COMMAND_FLAG_ACKNOWLEDGE as u8;
/// Command flag (`ENET_PROTOCOL_COMMAND_FLAG_UNSEQUENCED`), set on SEND_UNSEQUENCED.
pub const FLAG_UNSEQUENCED: u8 =
    enet_sys::_ENetProtocolFlag_ENET_PROTOCOL_COMMAND_FLAG_UNSEQUENCED as u8;
/// Header flag (`ENET_PROTOCOL_HEADER_FLAG_SENT_TIME`): a 16-bit sent time follows the peer id.
pub const HEADER_SENT_TIME: u16 = inspect::HEADER_FLAG_SENT_TIME;
/// Header flag (`ENET_PROTOCOL_HEADER_FLAG_COMPRESSED`): the commands are compressed.
pub const HEADER_COMPRESSED: u16 = inspect::HEADER_FLAG_COMPRESSED;
/// The peer-id bits of the header's first word; all ones (`NO_PEER`) addresses no peer yet.
pub const PEER_ID_MASK: u16 = inspect::PEER_ID_MASK;
/// The peer id of a datagram to a host that has not assigned one yet (a connect request).
pub const NO_PEER: u16 = inspect::PEER_ID_MASK;

/// The length of an uncompressed datagram's header: 2, or 4 with a sent time. `None` for a
/// datagram shorter than 2 bytes or a compressed one (whose commands cannot be walked without
/// the decompressor). Hosts of this crate never use ENet's checksum, so none is counted.
pub fn header_len(datagram: &[u8]) -> Option<usize> {
    let word = inspect::be16(datagram, 0)?;
    if word & HEADER_COMPRESSED != 0 {
        return None;
    }
    Some(inspect::header_len(word, false))
}

/// The commands of an uncompressed datagram, offsets counted from the datagram's start,
/// stopping where ENet would stop reading: at an unknown command, or one (data included) that
/// does not fit. Empty for a compressed datagram.
pub fn commands(datagram: &[u8]) -> Vec<Command> {
    match header_len(datagram) {
        Some(at) => commands_from(datagram, at),
        None => Vec::new(),
    }
}

/// The commands in `bytes` from offset `start` (for instance a decompressed body, from 0),
/// stopping as [`commands`] does.
pub fn commands_from(bytes: &[u8], start: usize) -> Vec<Command> {
    Walk::new(bytes, start)
        .take_while(|c| c.is_complete(bytes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_where_data_runs_out_and_skips_compressed() {
        let mut d = vec![0x00, 0x01]; // peer 1, no sent time
        d.extend([
            SEND_UNSEQUENCED | FLAG_UNSEQUENCED,
            2,
            0,
            0,
            0,
            1,
            0,
            3,
            9,
            9,
            9,
        ]);
        d.extend([SEND_RELIABLE | FLAG_ACKNOWLEDGE, 0, 0, 7, 0, 5, 1]); // 5 declared, 1 there
        let cs = commands(&d);
        assert_eq!(cs.len(), 1, "{cs:?}");
        assert_eq!(cs[0].kind, CommandKind::SendUnsequenced);
        assert_eq!(
            (cs[0].offset, cs[0].len, cs[0].data_offset),
            (2, 11, Some(10))
        );
        assert_eq!((cs[0].channel, cs[0].data_len, cs[0].flags), (2, 3, 0x40));
        let mut compressed = d.clone();
        compressed[0] |= 0x40;
        assert_eq!(header_len(&compressed), None);
        assert!(commands(&compressed).is_empty());
        assert!(commands(&[0x80]).is_empty());
        assert_eq!(commands_from(&d, 2), cs);
    }
}
