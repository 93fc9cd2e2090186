//! Property tests of the pure protocol layer: the header and system-message decoders never panic
//! on arbitrary bytes, agree with a plain little-endian reading, and round-trip with the
//! encoders; `relay::route` never panics, follows PROTOCOL.md's table, and never forwards a
//! packet back to its sender except for the self-target echo.

use enet_multiplayer::protocol::{self, DecodeError, Header, SystemMessage, HEADER_LEN};
use enet_multiplayer::relay::{self, DropReason, Forward};
use enet_multiplayer::{PeerId, Target, TransferMode, MAX_PEER_ID};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        // Keep the source tree clean: a failure prints its minimal input instead.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16 | u32::from(b[3]) << 24
}

/// Peer ids: small ones (so that sets collide), the edges, and anything.
fn any_id() -> impl Strategy<Value = PeerId> {
    prop_oneof![
        4 => 0u32..12,
        1 => Just(MAX_PEER_ID),
        1 => Just(MAX_PEER_ID + 1),
        1 => Just(u32::MAX),
        2 => any::<u32>(),
    ]
}

/// Targets: small ones, the extremes, and anything.
fn any_target() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => -12i32..12,
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => Just(-i32::MAX),
        2 => any::<i32>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn header_decode_is_total_and_reads_little_endian(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        match Header::decode(&bytes) {
            Ok(h) => {
                prop_assert!(bytes.len() >= HEADER_LEN);
                prop_assert_eq!(h.source, le_u32(&bytes[0..4]));
                prop_assert_eq!(h.target, le_u32(&bytes[4..8]) as i32);
                prop_assert_eq!(&h.encode()[..], &bytes[..HEADER_LEN]);
            }
            Err(e) => {
                prop_assert!(bytes.len() < HEADER_LEN);
                prop_assert_eq!(e, DecodeError::TooShort(bytes.len()));
            }
        }
    }

    #[test]
    fn header_round_trips_with_any_payload(
        source in any::<u32>(),
        target in any_target(),
        payload in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let h = Header { source, target };
        let mut bytes = h.encode().to_vec();
        prop_assert_eq!(bytes.len(), HEADER_LEN);
        prop_assert_eq!(&bytes[0..4], &source.to_le_bytes()[..]);
        prop_assert_eq!(&bytes[4..8], &target.to_le_bytes()[..]);
        bytes.extend_from_slice(&payload);
        prop_assert_eq!(Header::decode(&bytes), Ok(h));
    }

    #[test]
    fn system_message_decode_is_total_and_reads_little_endian(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let got = SystemMessage::decode(&bytes);
        if bytes.len() < 8 {
            prop_assert_eq!(got, Err(DecodeError::TooShort(bytes.len())));
        } else {
            let (kind, id) = (le_u32(&bytes[0..4]), le_u32(&bytes[4..8]));
            let want = match kind {
                0 => Ok(SystemMessage::AddPeer(id)),
                1 => Ok(SystemMessage::RemovePeer(id)),
                k => Err(DecodeError::UnknownKind(k)),
            };
            prop_assert_eq!(got, want);
            if let Ok(m) = got {
                prop_assert_eq!(&m.encode()[..], &bytes[..8]);
            }
        }
    }

    #[test]
    fn system_messages_round_trip(
        remove in any::<bool>(),
        id in any_id(),
        trailing in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let m = if remove { SystemMessage::RemovePeer(id) } else { SystemMessage::AddPeer(id) };
        let mut bytes = m.encode().to_vec();
        prop_assert_eq!(le_u32(&bytes[0..4]), u32::from(remove));
        prop_assert_eq!(le_u32(&bytes[4..8]), id);
        bytes.extend_from_slice(&trailing);
        prop_assert_eq!(SystemMessage::decode(&bytes), Ok(m));
    }

    #[test]
    fn route_never_panics_follows_the_table_and_never_echoes_but_to_self(
        sender in any_id(),
        others in prop::collection::btree_set(any_id(), 0..8),
        raw_target in any_target(),
        target_kind in 0u8..4,
        relay_on in any::<bool>(),
    ) {
        // The server only routes for connected clients, so the sender is one of them.
        let mut clients: BTreeSet<PeerId> = others;
        clients.insert(sender);
        let target = match target_kind {
            0 => raw_target,
            1 => sender as i32,                  // the sender itself
            2 => (sender as i32).wrapping_neg(), // everyone but the sender
            _ => *clients.iter().nth(raw_target.unsigned_abs() as usize % clients.len()).unwrap() as i32,
        };
        let result = relay::route(sender, target, relay_on, |id| clients.contains(&id));
        let expected_error = if target == i32::MIN {
            Some(DropReason::InvalidTarget)
        } else if target > 1 && !relay_on {
            Some(DropReason::RelayDisabled)
        } else if target > 1 && !clients.contains(&(target as PeerId)) {
            Some(DropReason::UnknownTarget)
        } else {
            None
        };
        match result {
            Err(reason) => prop_assert_eq!(Some(reason), expected_error),
            Ok(route) => {
                prop_assert_eq!(expected_error, None);
                let forwarded: BTreeSet<PeerId> =
                    clients.iter().copied().filter(|id| route.forward.includes(*id)).collect();
                if forwarded.contains(&sender) {
                    prop_assert_eq!(target, sender as i32, "forwarded back to the sender");
                    prop_assert!(target > 1 && relay_on);
                    prop_assert_eq!(route.forward, Forward::One(sender));
                }
                let want_local = target == 0 || target == 1 || (target < 0 && target != -1);
                prop_assert_eq!(route.local, want_local);
                let want: BTreeSet<PeerId> = if !relay_on || target == 1 {
                    BTreeSet::new()
                } else if target > 1 {
                    [target as PeerId].into()
                } else {
                    let excluded = target.unsigned_abs();
                    clients
                        .iter()
                        .copied()
                        .filter(|id| *id != sender && (target == 0 || *id != excluded))
                        .collect()
                };
                prop_assert_eq!(forwarded, want);
            }
        }
    }

    #[test]
    fn godot_target_integers_round_trip(t in any_target()) {
        let target = Target::from_godot(t);
        if t == i32::MIN {
            prop_assert_eq!(target.to_godot(), None);
        } else {
            prop_assert_eq!(target.to_godot(), Some(t));
        }
    }

    #[test]
    fn channels_map_back(channel in any::<u8>(), mode_index in 0usize..3) {
        let mode = TransferMode::ALL[mode_index];
        match protocol::enet_channel(mode, channel) {
            Some(enet) => {
                prop_assert!(channel <= protocol::MAX_LOGICAL_CHANNEL);
                prop_assert!(enet >= 1, "data never on the config channel");
                prop_assert_eq!(protocol::logical_channel(enet), Some(channel));
            }
            None => prop_assert!(channel > protocol::MAX_LOGICAL_CHANNEL),
        }
    }

    #[test]
    fn logical_channel_is_total(enet in any::<u8>()) {
        match protocol::logical_channel(enet) {
            None => prop_assert_eq!(enet, protocol::CHANNEL_CONFIG),
            Some(c) => prop_assert!(enet >= 1 && c <= 253),
        }
    }
}
