//! The one callback given to C: ENet's `intercept`, which sees every raw datagram before ENet
//! parses it. The trampoline runs the application's [`InterceptFn`], notes connect requests
//! (for the handshake bookkeeping) and counts the data ENet is about to reject (see `inspect`).
//!
//! A panic never unwinds into C. One in the application's callback is caught in the trampoline,
//! its payload kept in [`Hooks::panic`], and ENet's service call ended at once (the callback
//! returns -1, which ENet treats like a socket error: it returns without touching anything
//! else); the `Host` method that called into ENet raises it again with
//! [`std::panic::resume_unwind`] once ENet has returned (the approach of git2-rs's
//! `panic::wrap` and `panic::check`).

use crate::address::from_enet;
use crate::inspect::{
    be16, first_rejection, header_len, Reject, HEADER_FLAG_COMPRESSED, PEER_ID_MASK,
};
use enet_sys::{ENetEvent, ENetHost};
use std::any::Any;
use std::cell::Cell;
use std::net::SocketAddrV4;
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// What an intercept callback decides about a raw datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intercept {
    /// Let ENet process it.
    Pass,
    /// Swallow it: ENet never sees it.
    Drop,
}

/// A callback that sees every raw UDP datagram before ENet parses it, with the address it came
/// from. Installed with [`Host::set_intercept`](crate::Host::set_intercept).
pub type InterceptFn = dyn FnMut(&[u8], SocketAddrV4) -> Intercept + Send;

/// Senders of unreadable compressed datagrams noted per service call at most (the rest of a
/// flood is not worth the memory: one is enough to explain).
const MAX_UNREADABLE_PER_CALL: usize = 64;

/// What the intercept trampoline works with while one host is being serviced. Owned by the
/// host (boxed, so its address is stable) and reachable from C only during a service call.
pub(crate) struct Hooks {
    /// The application's intercept, if any.
    pub(crate) user: Option<Box<InterceptFn>>,
    /// A connect request arrived: new half-open handshakes may need their timeout.
    pub(crate) handshake_seen: bool,
    /// Datagrams ENet is about to reject, by peer slot.
    pub(crate) rejects: Vec<(usize, Reject)>,
    /// Room to decompress a datagram into, to look at it.
    pub(crate) scratch: Vec<u8>,
    /// Senders of compressed datagrams this host cannot read (it has no compressor).
    pub(crate) unreadable_from: Vec<SocketAddrV4>,
    /// Senders of an uncompressed connect request repeated for a handshake still half-open,
    /// while this host compresses: a peer without compression cannot read the answers.
    pub(crate) repeated_connect_from: Vec<SocketAddrV4>,
    /// The payload of a panic of `user` caught during the current ENet call, to be raised
    /// again once ENet has returned.
    pub(crate) panic: Option<Box<dyn Any + Send>>,
}

impl Hooks {
    pub(crate) fn new() -> Hooks {
        Hooks {
            user: None,
            handshake_seen: false,
            rejects: Vec::new(),
            scratch: Vec::new(),
            unreadable_from: Vec::new(),
            repeated_connect_from: Vec::new(),
            panic: None,
        }
    }
}

/// Raises again a panic that was carried out of a C callback (git2-rs's `panic::check`). Call it
/// once ENet has returned, with the payload taken from [`Hooks::panic`].
pub(crate) fn resume_panic(caught: Option<Box<dyn Any + Send>>) {
    if let Some(payload) = caught {
        resume_unwind(payload);
    }
}

thread_local! {
    /// The hooks of the host being serviced on this thread, if any.
    static CURRENT_HOOKS: Cell<*mut Hooks> = const { Cell::new(std::ptr::null_mut()) };
}

/// Installs a host's hooks for the duration of one service call, restoring what was there.
pub(crate) struct HookScope(*mut Hooks);

impl HookScope {
    pub(crate) fn enter(hooks: &mut Hooks) -> HookScope {
        HookScope(CURRENT_HOOKS.with(|c| c.replace(hooks as *mut Hooks)))
    }
}

impl Drop for HookScope {
    fn drop(&mut self) {
        CURRENT_HOOKS.with(|c| c.set(self.0));
    }
}

/// The `intercept` ENet calls for each datagram it receives (from `enet_host_service` only):
/// 0 lets ENet process the datagram, 1 drops it, -1 ends the service call with an error.
pub(crate) unsafe extern "C" fn intercept_trampoline(
    host: *mut ENetHost,
    _event: *mut ENetEvent,
) -> c_int {
    let hooks = CURRENT_HOOKS.with(|c| c.get());
    if hooks.is_null() {
        return 0;
    }
    // SAFETY: ENet calls this from inside enet_host_service on this thread, with `host` valid
    // and `receivedData` holding `receivedDataLength` bytes just read from the socket; the slice
    // is only used during this call, before ENet reuses the buffer.
    let (data, from) = unsafe {
        let h = &*host;
        let data = if h.receivedData.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(h.receivedData, h.receivedDataLength)
        };
        (data, from_enet(&h.receivedAddress))
    };
    // SAFETY: the pointer was set by `HookScope::enter` from a `&mut Hooks` owned by the host
    // being serviced, which the `&mut self` of the service call keeps alive and unaliased; the
    // scope is dropped (and the pointer restored) before that borrow ends.
    let hooks = unsafe { &mut *hooks };
    if hooks.panic.is_some() {
        // ENet stops at the -1 below, so this is not reached; should it be, stay stopped.
        return -1;
    }
    if let Some(f) = hooks.user.as_mut() {
        // The callback may be left half-updated by its panic; it is the application's to judge
        // (it is raised again to the application, and the callback stays installed).
        match catch_unwind(AssertUnwindSafe(|| f(data, from))) {
            Ok(Intercept::Pass) => {}
            Ok(Intercept::Drop) => return 1,
            Err(payload) => {
                // Drop the datagram and end ENet's service call; the host raises it again.
                hooks.panic = Some(payload);
                return -1;
            }
        }
    }
    // SAFETY: as above: `host` is valid for the duration of this call.
    let host = unsafe { &*host };
    if catch_unwind(AssertUnwindSafe(|| look_at_datagram(host, hooks, data))).is_err() {
        log::error!("datagram inspection panicked; the datagram from {from} is left to ENet");
    }
    0
}

/// Whether the sender of the datagram being received already has a half-open handshake with
/// this host: its connect request came again, so it did not get (or could not read) the answer.
fn half_open_from_sender(host: &ENetHost) -> bool {
    (0..host.peerCount).any(|i| {
        // SAFETY: i < peerCount, a peer of this valid host; read-only.
        let peer = unsafe { &*host.peers.add(i) };
        peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_ACKNOWLEDGING_CONNECT
            && peer.address.host == host.receivedAddress.host
            && peer.address.port == host.receivedAddress.port
    })
}

/// Notes connect requests and the data ENet is about to reject (see `inspect`).
fn look_at_datagram(host: &ENetHost, hooks: &mut Hooks, data: &[u8]) {
    let Some(word) = be16(data, 0) else {
        return;
    };
    if word & HEADER_FLAG_COMPRESSED != 0 && host.compressor.decompress.is_none() {
        // ENet drops it: the sender compresses, this host does not (a settings mismatch).
        if hooks.unreadable_from.len() < MAX_UNREADABLE_PER_CALL {
            hooks.unreadable_from.push(from_enet(&host.receivedAddress));
        }
        return;
    }
    let slot = usize::from(word & PEER_ID_MASK);
    if slot == usize::from(PEER_ID_MASK) {
        hooks.handshake_seen = true;
        if word & HEADER_FLAG_COMPRESSED == 0
            && host.compressor.compress.is_some()
            && hooks.repeated_connect_from.len() < MAX_UNREADABLE_PER_CALL
            && half_open_from_sender(host)
        {
            hooks
                .repeated_connect_from
                .push(from_enet(&host.receivedAddress));
        }
        return;
    }
    if slot >= host.peerCount {
        return;
    }
    // SAFETY: slot < peerCount, a peer of this valid host; read-only.
    let peer = unsafe { &*host.peers.add(slot) };
    let live = peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_CONNECTED
        || peer.state == enet_sys::_ENetPeerState_ENET_PEER_STATE_DISCONNECT_LATER;
    if !live
        || peer.address.host != host.receivedAddress.host
        || peer.address.port != host.receivedAddress.port
    {
        return; // ENet ignores it without looking further.
    }
    let Some(body) = data.get(header_len(word, host.checksum.is_some())..) else {
        return;
    };
    let body = if word & HEADER_FLAG_COMPRESSED != 0 {
        let Some(decompress) = host.compressor.decompress else {
            return;
        };
        hooks
            .scratch
            .resize(enet_sys::ENET_PROTOCOL_MAXIMUM_MTU as usize, 0);
        // SAFETY: the host's own decompressor and context (ENet uses them the same way right
        // after this callback; the range coder resets its state on every call); input and
        // output buffers are valid for the lengths given.
        let n = unsafe {
            decompress(
                host.compressor.context,
                body.as_ptr(),
                body.len(),
                hooks.scratch.as_mut_ptr(),
                hooks.scratch.len(),
            )
        };
        if n == 0 || n > hooks.scratch.len() {
            return;
        }
        &hooks.scratch[..n]
    } else {
        body
    };
    if let Some(r) = first_rejection(body, peer.channelCount, host.maximumPacketSize) {
        hooks.rejects.push((slot, r));
    }
}
