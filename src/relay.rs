//! Who gets a packet a client sent to the server: the relay rules of PROTOCOL.md as a pure
//! function, so every rule is a unit test and the server's hot path allocates nothing.

use crate::peer::{PeerId, MAX_PEER_ID, SERVER_ID};

/// Where the server sends a client's packet onward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// Nowhere.
    Nobody,
    /// To this one client.
    One(PeerId),
    /// To every client except the sender and, if given, one more.
    AllExcept {
        /// The client that sent it.
        sender: PeerId,
        /// Another client to leave out (the `-n` of an exclusion target).
        also: Option<PeerId>,
    },
}

impl Forward {
    /// Whether client `id` is a destination.
    pub fn includes(&self, id: PeerId) -> bool {
        match *self {
            Forward::Nobody => false,
            Forward::One(one) => one == id,
            Forward::AllExcept { sender, also } => id != sender && Some(id) != also,
        }
    }
}

/// The decision for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Deliver to the server's own application.
    pub local: bool,
    /// Forward to clients.
    pub forward: Forward,
}

/// Why a packet from the network was dropped. Counted per peer and in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than the 8-byte header (or system message).
    ShortPacket,
    /// The header's source is not the sending client's id.
    SpoofedSource,
    /// A target id that names no connected client.
    UnknownTarget,
    /// A target integer no id can have (`i32::MIN`).
    InvalidTarget,
    /// A client-to-client packet while the server does not relay.
    RelayDisabled,
    /// Data on the config channel 0 from a client (ENet), or a system message from a
    /// WebSocket client.
    ConfigChannel,
    /// A malformed or impossible system message at a client.
    BadSystemMessage,
    /// A packet from a connection that was refused or is unknown.
    UnknownSender,
    /// Over the per-client packet rate limit.
    RateLimited,
    /// A payload above the maximum packet size (rejected inside ENet, counted on the way in).
    Oversize,
    /// A channel the connection did not negotiate (rejected inside ENet, counted on the way in).
    ChannelOutOfRange,
    /// A WebSocket text message (Godot's multiplayer framing is binary).
    TextMessage,
    /// A packet relayed towards a WebSocket client that would not fit its message limit
    /// (Godot 3's clients take at most 65,535 bytes); counted once per such destination.
    TooLargeForWebSocket,
    /// A packet towards other clients from a client the server has not admitted yet (a gated
    /// server: see `ServerConfig::gated`); only the server hears it until then.
    NotAdmitted,
}

impl DropReason {
    /// Every reason, in the order of [`DropReason::index`].
    pub const ALL: [DropReason; 14] = [
        DropReason::ShortPacket,
        DropReason::SpoofedSource,
        DropReason::UnknownTarget,
        DropReason::InvalidTarget,
        DropReason::RelayDisabled,
        DropReason::ConfigChannel,
        DropReason::BadSystemMessage,
        DropReason::UnknownSender,
        DropReason::RateLimited,
        DropReason::Oversize,
        DropReason::ChannelOutOfRange,
        DropReason::TextMessage,
        DropReason::TooLargeForWebSocket,
        DropReason::NotAdmitted,
    ];

    /// A short snake_case name for logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::ShortPacket => "short_packet",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::UnknownTarget => "unknown_target",
            DropReason::InvalidTarget => "invalid_target",
            DropReason::RelayDisabled => "relay_disabled",
            DropReason::ConfigChannel => "config_channel",
            DropReason::BadSystemMessage => "bad_system_message",
            DropReason::UnknownSender => "unknown_sender",
            DropReason::RateLimited => "rate_limited",
            DropReason::Oversize => "oversize",
            DropReason::ChannelOutOfRange => "channel_out_of_range",
            DropReason::TextMessage => "text_message",
            DropReason::TooLargeForWebSocket => "too_large_for_websocket",
            DropReason::NotAdmitted => "not_admitted",
        }
    }

    /// Position in [`DropReason::ALL`] (and in [`DropCounts`]).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Drops counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DropCounts([u64; DropReason::ALL.len()]);

impl DropCounts {
    /// Counts one drop.
    pub fn add(&mut self, reason: DropReason) {
        self.0[reason.index()] += 1;
    }

    /// Sets the count for one reason (for counts kept elsewhere, such as ENet's rejections).
    pub fn set(&mut self, reason: DropReason, count: u64) {
        self.0[reason.index()] = count;
    }

    /// Drops for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.0[reason.index()]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// Decides where a data packet from client `sender`, addressed to Godot target `target`, goes.
/// `relay` is the server's relay switch; `is_client(id)` says whether a client is connected.
/// The sender's identity (header source equals sender) is checked before this is called.
pub fn route(
    sender: PeerId,
    target: i32,
    relay: bool,
    is_client: impl Fn(PeerId) -> bool,
) -> Result<Route, DropReason> {
    match target {
        1 => Ok(Route {
            local: true,
            forward: Forward::Nobody,
        }),
        0 => Ok(Route {
            local: true,
            forward: if relay {
                Forward::AllExcept { sender, also: None }
            } else {
                Forward::Nobody
            },
        }),
        t if t < 0 => {
            let excluded = t.unsigned_abs();
            if excluded > MAX_PEER_ID {
                return Err(DropReason::InvalidTarget);
            }
            Ok(Route {
                local: excluded != SERVER_ID,
                forward: if relay {
                    Forward::AllExcept {
                        sender,
                        also: Some(excluded),
                    }
                } else {
                    Forward::Nobody
                },
            })
        }
        t => {
            let id = t as PeerId;
            if !relay {
                Err(DropReason::RelayDisabled)
            } else if is_client(id) {
                Ok(Route {
                    local: false,
                    forward: Forward::One(id),
                })
            } else {
                Err(DropReason::UnknownTarget)
            }
        }
    }
}

/// Logs a dropped packet: a warning the first time (`nth` = 1) a reason is seen for a sender,
/// then at debug level, so a flood costs one warning, not one per packet.
pub(crate) fn log_drop(from: Option<PeerId>, reason: DropReason, nth: u64, detail: &str) {
    let who = from.map_or_else(|| "unknown sender".to_string(), |id| format!("peer {id}"));
    if nth == 1 {
        log::warn!("dropped packet from {who}: {} ({detail})", reason.name());
    } else {
        log::debug!("dropped packet from {who}: {} ({detail})", reason.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENTS: [PeerId; 3] = [10, 20, 30];

    fn go(sender: PeerId, target: i32, relay: bool) -> Result<(bool, Vec<PeerId>), DropReason> {
        let r = route(sender, target, relay, |id| CLIENTS.contains(&id))?;
        Ok((
            r.local,
            CLIENTS
                .iter()
                .copied()
                .filter(|id| r.forward.includes(*id))
                .collect(),
        ))
    }

    #[test]
    fn server_target_is_local_only() {
        assert_eq!(go(10, 1, true), Ok((true, vec![])));
        assert_eq!(go(10, 1, false), Ok((true, vec![])));
    }

    #[test]
    fn broadcast_reaches_server_and_every_other_client() {
        assert_eq!(go(10, 0, true), Ok((true, vec![20, 30])));
        assert_eq!(
            go(10, 0, false),
            Ok((true, vec![])),
            "relay off: the server still gets it"
        );
    }

    #[test]
    fn exclusion_leaves_out_sender_and_the_excluded() {
        assert_eq!(go(10, -20, true), Ok((true, vec![30])));
        assert_eq!(
            go(10, -1, true),
            Ok((false, vec![20, 30])),
            "-1 excludes the server"
        );
        assert_eq!(
            go(10, -10, true),
            Ok((true, vec![20, 30])),
            "excluding yourself"
        );
        assert_eq!(
            go(10, -99, true),
            Ok((true, vec![20, 30])),
            "unknown exclusion excludes nobody"
        );
        assert_eq!(go(10, -20, false), Ok((true, vec![])));
        assert_eq!(go(10, -1, false), Ok((false, vec![])));
        assert_eq!(go(10, i32::MIN, true), Err(DropReason::InvalidTarget));
    }

    #[test]
    fn direct_targets_reach_one_client() {
        assert_eq!(go(10, 30, true), Ok((false, vec![30])));
        assert_eq!(
            go(10, 10, true),
            Ok((false, vec![10])),
            "own id comes back, as from Godot"
        );
        assert_eq!(go(10, 99, true), Err(DropReason::UnknownTarget));
        assert_eq!(go(10, i32::MAX, true), Err(DropReason::UnknownTarget));
        assert_eq!(go(10, 30, false), Err(DropReason::RelayDisabled));
    }

    #[test]
    fn drop_counts_count() {
        let mut c = DropCounts::default();
        c.add(DropReason::SpoofedSource);
        c.add(DropReason::SpoofedSource);
        c.add(DropReason::RateLimited);
        assert_eq!(c.get(DropReason::SpoofedSource), 2);
        assert_eq!(c.total(), 3);
        assert_eq!(c.iter().count(), DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
