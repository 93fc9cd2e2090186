//! [`Timeout`]: ENet's peer timeout.

/// ENet's peer timeout (`enet_peer_timeout`): when a peer whose reliable data goes
/// unacknowledged is given up on, ending its connection with a disconnect event.
///
/// ENet measures from the oldest reliable command still unacknowledged:
/// - after `max_ms` milliseconds the peer is dropped, whatever else holds;
/// - after `min_ms` milliseconds it is dropped once that command's retransmission timeout has
///   grown to `limit` times its first value (ENet doubles it on each resend, so the default 32
///   is about five resends).
///
/// A 0 in any field stands for ENet's default for that field (ENet substitutes it when the
/// timeout is set; [`Timeout::or_enet_defaults`] does the same here).
///
/// ```
/// use enet_wrapper::Timeout;
/// assert_eq!(Timeout::ENET_DEFAULT, Timeout::new(32, 5000, 30000));
/// assert_eq!(Timeout::new(0, 1000, 0).or_enet_defaults(), Timeout::new(32, 1000, 30000));
/// assert_eq!(Timeout::from((4, 500, 1500)).max_ms, 1500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "enet_peer_timeout")]
pub struct Timeout {
    /// How far the retransmission timeout of an unacknowledged reliable command may grow, as a
    /// multiple of its first value, before the peer is dropped (once `min_ms` has passed too).
    pub limit: u32,
    /// Milliseconds without acknowledgement before `limit` may drop the peer.
    pub min_ms: u32,
    /// Milliseconds without acknowledgement after which the peer is always dropped.
    pub max_ms: u32,
}

impl Timeout {
    /// ENet 1.3's defaults, `ENET_PEER_TIMEOUT_LIMIT`, `_MINIMUM` and `_MAXIMUM`: 32, 5000 ms,
    /// 30000 ms. Every new connection starts with these.
    pub const ENET_DEFAULT: Timeout = Timeout {
        limit: enet_sys::ENET_PEER_TIMEOUT_LIMIT,
        min_ms: enet_sys::ENET_PEER_TIMEOUT_MINIMUM,
        max_ms: enet_sys::ENET_PEER_TIMEOUT_MAXIMUM,
    };

    /// What a Godot 3 `NetworkedMultiplayerENet` uses: ENet's defaults. Its `create_server`,
    /// `create_client` and `poll` never call `enet_peer_timeout`; only the explicit
    /// `set_peer_timeout(id, limit, min, max)` that later 3.x versions bind does (checked
    /// against the 3.x `modules/enet/networked_multiplayer_enet.cpp`).
    pub const GODOT3: Timeout = Timeout::ENET_DEFAULT;

    /// A timeout of `limit`, `min_ms` and `max_ms` (0 = ENet's default for that field).
    pub const fn new(limit: u32, min_ms: u32, max_ms: u32) -> Timeout {
        Timeout {
            limit,
            min_ms,
            max_ms,
        }
    }

    /// The timeout ENet actually applies: each 0 field replaced by ENet's default, as
    /// `enet_peer_timeout` does.
    pub const fn or_enet_defaults(self) -> Timeout {
        const fn or(value: u32, default: u32) -> u32 {
            if value == 0 {
                default
            } else {
                value
            }
        }
        Timeout {
            limit: or(self.limit, Timeout::ENET_DEFAULT.limit),
            min_ms: or(self.min_ms, Timeout::ENET_DEFAULT.min_ms),
            max_ms: or(self.max_ms, Timeout::ENET_DEFAULT.max_ms),
        }
    }
}

impl Default for Timeout {
    /// [`Timeout::ENET_DEFAULT`].
    fn default() -> Timeout {
        Timeout::ENET_DEFAULT
    }
}

impl From<(u32, u32, u32)> for Timeout {
    /// `(limit, min_ms, max_ms)`, the order of `enet_peer_timeout`'s arguments.
    fn from((limit, min_ms, max_ms): (u32, u32, u32)) -> Timeout {
        Timeout::new(limit, min_ms, max_ms)
    }
}

impl From<Timeout> for (u32, u32, u32) {
    /// `(limit, min_ms, max_ms)`.
    fn from(t: Timeout) -> (u32, u32, u32) {
        (t.limit, t.min_ms, t.max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_enet_1_3s() {
        assert_eq!(
            (Timeout::ENET_DEFAULT.limit, Timeout::ENET_DEFAULT.min_ms),
            (32, 5000)
        );
        assert_eq!(Timeout::ENET_DEFAULT.max_ms, 30000);
        assert_eq!(Timeout::default(), Timeout::ENET_DEFAULT);
        assert_eq!(Timeout::GODOT3, Timeout::ENET_DEFAULT);
        assert_eq!(
            Timeout::new(0, 0, 0).or_enet_defaults(),
            Timeout::ENET_DEFAULT
        );
        assert_eq!(
            <(u32, u32, u32)>::from(Timeout::new(1, 2, 3)),
            (1, 2, 3),
            "tuple order is enet_peer_timeout's"
        );
    }
}
