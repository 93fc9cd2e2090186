//! ENet's next timer: when a host's service call next has work to do without any datagram
//! arriving (a reliable command to resend, a ping to send, a bandwidth throttle round).
//!
//! ENet (1.3.18, vendored by enet-sys) keeps these deadlines per peer but its own
//! `enet_host_service` waits in the socket for the whole timeout it is given: a resend due in
//! 3 ms waits behind a 100 ms poll. [`next_timer_ms`] reads the same deadlines ENet checks in
//! `enet_protocol_send_outgoing_commands`, so a caller can bound its wait by them.

use enet_sys::{ENetHost, ENetList, ENetPeer};

/// ENet's `ENET_HOST_BANDWIDTH_THROTTLE_INTERVAL`, in milliseconds.
const BANDWIDTH_THROTTLE_INTERVAL_MS: u32 = 1000;

/// Ping deadlines are rounded up to a multiple of this many milliseconds of ENet's clock, so
/// that the pings of many peers share one wake-up (ten a second at most) instead of one each: a
/// ping up to this late costs nothing (ENet's ping interval is 500 ms, its timeouts seconds),
/// whereas a resend is woken for exactly.
pub(crate) const PING_GRID_MS: u32 = 100;

/// Milliseconds from ENet time `now` to `deadline`, 0 when it has passed (ENet's 32-bit times
/// wrap; a difference read as negative is a deadline in the past).
fn until(deadline: u32, now: u32) -> u32 {
    let d = deadline.wrapping_sub(now) as i32;
    d.max(0) as u32
}

/// `t` rounded up to a multiple of `grid` (on ENet's wrapping clock).
fn round_up(t: u32, grid: u32) -> u32 {
    match t % grid {
        0 => t,
        r => t.wrapping_add(grid - r),
    }
}

/// Whether an ENet list holds no node.
///
/// # Safety
/// `list` points to a list of a live host's peer.
unsafe fn list_empty(list: *const ENetList) -> bool {
    // SAFETY: the caller's list is initialised (ENet sets every peer's lists up at host
    // creation); an empty list's sentinel points to itself.
    unsafe { std::ptr::eq((*list).sentinel.next, std::ptr::addr_of!((*list).sentinel)) }
}

/// Milliseconds until the earliest timer of `host` at ENet time `now` (0 when one is due), or
/// `None` when nothing is pending: no peer is connecting, connected or waiting on an
/// acknowledgement.
///
/// The deadlines, as `enet_protocol_send_outgoing_commands` checks them: a peer with reliable
/// commands in flight, `nextTimeout` (the first command's send time plus its round-trip
/// timeout: a resend, or the disconnect of a peer that stopped answering); a connected peer with
/// none, `lastReceiveTime + pingInterval` rounded up to [`PING_GRID_MS`] (its ping); a host with a bandwidth limit, the next
/// throttle round.
///
/// # Safety
/// `host` is a live ENet host not being serviced during the call; only fields are read.
pub(crate) unsafe fn next_timer_ms(host: *const ENetHost, now: u32) -> Option<u32> {
    // SAFETY: per the caller, the host is live; `peers` has `peerCount` entries.
    let h = unsafe { &*host };
    let mut earliest: Option<u32> = None;
    let mut consider = |ms: u32| earliest = Some(earliest.map_or(ms, |e| e.min(ms)));
    if h.incomingBandwidth != 0 || h.outgoingBandwidth != 0 {
        consider(until(
            h.bandwidthThrottleEpoch
                .wrapping_add(BANDWIDTH_THROTTLE_INTERVAL_MS),
            now,
        ));
    }
    for i in 0..h.peerCount {
        // SAFETY: i < peerCount, inside ENet's peer array; fields are only read.
        let peer: *const ENetPeer = unsafe { h.peers.add(i) };
        // SAFETY: as above.
        let p = unsafe { &*peer };
        if p.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECTED
            || p.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_ZOMBIE
        {
            continue;
        }
        // SAFETY: the peer's list of a live host.
        let idle = unsafe { list_empty(std::ptr::addr_of!(p.sentReliableCommands)) };
        if !idle {
            consider(until(p.nextTimeout, now));
        } else if p.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTED {
            let due = p.lastReceiveTime.wrapping_add(p.pingInterval);
            consider(until(round_up(due, PING_GRID_MS), now));
        }
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::{round_up, until};

    #[test]
    fn until_wraps_and_clamps() {
        assert_eq!(until(110, 100), 10);
        assert_eq!(until(100, 110), 0);
        assert_eq!(until(5, u32::MAX - 4), 10);
        assert_eq!(until(u32::MAX - 4, 5), 0);
    }

    #[test]
    fn ping_deadlines_round_up_to_the_grid() {
        assert_eq!(round_up(1200, 100), 1200);
        assert_eq!(round_up(1201, 100), 1300);
        assert_eq!(round_up(1299, 100), 1300);
        // Near the wrap the result wraps with the clock (never earlier than `t` in ENet time).
        assert_eq!(
            round_up(u32::MAX, 100),
            u32::MAX.wrapping_add(100 - u32::MAX % 100)
        );
    }
}
