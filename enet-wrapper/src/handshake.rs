//! Incoming handshakes: counting them, and the hook through which the application decides how
//! long a half-open one may hold its peer slot.
//!
//! ENet gives a half-open incoming handshake (connect request answered, acknowledgement not yet
//! received) its peer timeout, by default about 30 s. This module is mechanism only: it finds new
//! half-open handshakes after a service call, asks the application's [`HandshakePolicyFn`]
//! whether to give them another timeout, applies the answer, and puts ENet's defaults back once
//! a handshake completes. Which timeout, and when, is the application's decision.

use crate::peer::Slot;
use crate::Timeout;
use enet_sys::{ENetHost, ENetPeer};
use std::ptr::NonNull;

/// How a host's peer slots are used, as a [`HandshakePolicyFn`] sees them (and
/// [`Host::slot_usage`](crate::Host::slot_usage) reports them).
///
/// Plain data, so a policy is a pure function that unit tests can call directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotUsage {
    /// Slots that are not free: connected, connecting, half-open or disconnecting (ENet state
    /// other than `ENET_PEER_STATE_DISCONNECTED`). A new incoming connection needs a free one.
    pub in_use: usize,
    /// Of those, incoming handshakes still half-open (`ENET_PEER_STATE_ACKNOWLEDGING_CONNECT`).
    pub half_open: usize,
    /// Every peer slot of the host ([`Host::peer_limit`](crate::Host::peer_limit)).
    pub limit: usize,
}

impl SlotUsage {
    /// Slots free for a new connection: `limit - in_use`.
    pub fn free(&self) -> usize {
        self.limit - self.in_use
    }
}

/// Decides the timeout of new half-open incoming handshakes, from how the slots are used.
///
/// Installed with [`Host::set_handshake_policy`](crate::Host::set_handshake_policy). After a
/// service call in which a connect request arrived, the host looks for half-open handshakes it
/// has not yet given a timeout; if there are any, it calls the policy once with the current
/// [`SlotUsage`]. `Some(timeout)` gives each of them `timeout` (as
/// [`PeerMut::set_peer_timeout`](crate::PeerMut::set_peer_timeout) would) for the rest of its
/// handshake; `None` leaves them on what they have (ENet's defaults), and they are offered to the
/// policy again after the next connect request. When a handshake that was given a timeout
/// completes (its [`Event::Connect`](crate::Event::Connect)), the peer gets
/// [`Timeout::ENET_DEFAULT`] back.
///
/// It is called from Rust, after ENet returned, so a panic in it simply unwinds out of
/// [`Host::service`](crate::Host::service).
pub type HandshakePolicyFn = dyn FnMut(SlotUsage) -> Option<Timeout> + Send;

/// The handshake bookkeeping of one host.
#[derive(Default)]
pub(crate) struct Handshakes {
    /// The application's policy, if any.
    pub(crate) policy: Option<Box<HandshakePolicyFn>>,
    /// Incoming handshakes seen since the host was created.
    pub(crate) started: u64,
}

impl Handshakes {
    /// After a service call that saw a connect request: counts new half-open handshakes and
    /// offers the ones without a timeout of ours to the policy.
    ///
    /// # Safety
    /// `host` must be a valid ENet host whose peer array has `slots.len()` entries, not in use
    /// by ENet during the call.
    pub(crate) unsafe fn scan(&mut self, host: NonNull<ENetHost>, slots: &mut [Slot]) {
        // SAFETY: per the contract, a valid host; only its `peers` pointer is read.
        let peers = unsafe { host.as_ref().peers };
        let mut free = 0;
        let mut half_open = 0;
        let mut fresh = Vec::new();
        for (i, slot) in slots.iter_mut().enumerate() {
            // SAFETY: i < slots.len() == peerCount: a peer of this valid host; read-only here.
            let peer = unsafe { &*peers.add(i) };
            if peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECTED {
                free += 1;
            } else if peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_ACKNOWLEDGING_CONNECT {
                half_open += 1;
                if slot.handshake != peer.connectID {
                    slot.handshake = peer.connectID;
                    slot.short_handshake = false;
                    self.started += 1;
                }
                if !slot.short_handshake {
                    fresh.push(i);
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        let Some(policy) = self.policy.as_mut() else {
            return;
        };
        let usage = SlotUsage {
            in_use: slots.len() - free,
            half_open,
            limit: slots.len(),
        };
        let Some(timeout) = policy(usage) else {
            return;
        };
        for i in fresh {
            slots[i].short_handshake = true;
            // SAFETY: i < peerCount: a live peer slot of this valid host.
            unsafe { set_timeout(peers.add(i), timeout) };
        }
    }

    /// At a connect event of the peer in `slot`: counts an incoming handshake that completed
    /// before a scan saw it half-open, and gives a peer that got a handshake timeout ENet's
    /// defaults back.
    ///
    /// # Safety
    /// `peer` must be the live ENet peer of `slot`, of a valid host not in use by ENet.
    pub(crate) unsafe fn on_connect(&mut self, peer: *mut ENetPeer, slot: &mut Slot) {
        // SAFETY: per the contract, a live peer; one field read.
        let connect_id = unsafe { (*peer).connectID };
        if slot.handshake != connect_id && slot.connect_id != connect_id {
            // An incoming handshake that completed before a scan saw it half-open.
            slot.handshake = connect_id;
            self.started += 1;
        } else if slot.handshake == connect_id && slot.short_handshake {
            // SAFETY: per the contract, a live peer.
            unsafe { set_timeout(peer, Timeout::ENET_DEFAULT) };
        }
    }
}

/// `enet_peer_timeout` with a [`Timeout`].
///
/// # Safety
/// `peer` must be a live peer of a valid host not in use by ENet.
unsafe fn set_timeout(peer: *mut ENetPeer, t: Timeout) {
    // SAFETY: per the contract; enet_peer_timeout only writes three fields of the peer.
    unsafe { enet_sys::enet_peer_timeout(peer, t.limit, t.min_ms, t.max_ms) };
}

/// How the slots of the `count` peers at `peers` are used.
///
/// # Safety
/// `peers` must point at `count` peers of a valid host.
pub(crate) unsafe fn slot_usage(peers: *const ENetPeer, count: usize) -> SlotUsage {
    let mut usage = SlotUsage {
        in_use: 0,
        half_open: 0,
        limit: count,
    };
    for i in 0..count {
        // SAFETY: per the contract, i < count is a peer of a valid host; one field read.
        let state = unsafe { (*peers.add(i)).state };
        if state != enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECTED {
            usage.in_use += 1;
        }
        if state == enet_sys::_ENetPeerState_ENET_PEER_STATE_ACKNOWLEDGING_CONNECT {
            usage.half_open += 1;
        }
    }
    usage
}
