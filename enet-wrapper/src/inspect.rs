//! A read-only look at ENet's wire format, to count what ENet itself rejects before the
//! application could see it: payloads above the host's maximum packet size, and channels beyond
//! what the connection negotiated. Mirrors the checks of ENet 1.3.17's `protocol.c`; pure code.

/// ENet protocol command numbers (`ENetProtocolCommand`).
const SEND_RELIABLE: u8 = 6;
const SEND_UNRELIABLE: u8 = 7;
const SEND_FRAGMENT: u8 = 8;
const SEND_UNSEQUENCED: u8 = 9;
const SEND_UNRELIABLE_FRAGMENT: u8 = 12;
const COMMAND_MASK: u8 = 0x0F;

/// Size of each command's fixed part (ENet's `commandSizes`), indexed by command number.
const COMMAND_SIZES: [usize; 13] = [0, 8, 48, 44, 8, 4, 6, 8, 24, 8, 12, 16, 24];

/// Why ENet will refuse a datagram's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// A payload (or a fragmented packet's total) above the maximum packet size.
    Oversize,
    /// A channel the connection does not have.
    Channel,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// The first data command in `commands` (a datagram after its header, decompressed) that ENet
/// will reject for size or channel, if any. ENet stops at the first bad command, so do we.
pub(crate) fn first_rejection(
    commands: &[u8],
    channels: usize,
    max_packet: usize,
) -> Option<Reject> {
    let mut at = 0;
    while at + 4 <= commands.len() {
        let number = commands[at] & COMMAND_MASK;
        let size = *COMMAND_SIZES.get(usize::from(number))?;
        if size == 0 || at + size > commands.len() {
            return None;
        }
        let channel = usize::from(commands[at + 1]);
        let data_len = match number {
            SEND_RELIABLE => be16(commands, at + 4)?,
            SEND_UNRELIABLE | SEND_UNSEQUENCED | SEND_FRAGMENT | SEND_UNRELIABLE_FRAGMENT => {
                be16(commands, at + 6)?
            }
            _ => {
                at += size;
                continue;
            }
        };
        if channel >= channels {
            return Some(Reject::Channel);
        }
        if data_len > max_packet {
            return Some(Reject::Oversize);
        }
        if matches!(number, SEND_FRAGMENT | SEND_UNRELIABLE_FRAGMENT)
            && be32(commands, at + 16)? > max_packet
        {
            return Some(Reject::Oversize);
        }
        at += size + data_len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
