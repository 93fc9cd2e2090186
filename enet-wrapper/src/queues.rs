//! What ENet holds for one peer on the way out: commands queued and not yet sent, and reliable
//! commands sent and not yet acknowledged. ENet keeps no running total of these bytes; they are
//! summed from its lists.

use enet_sys::{ENetList, ENetOutgoingCommand, ENetPeer};

/// Payload bytes of the commands in `list`, added to `sum` until it passes `stop_above`.
///
/// # Safety
/// `list` is one of the outgoing-command lists of a live peer of a host not being serviced.
unsafe fn add_list(list: *const ENetList, sum: &mut usize, stop_above: usize) {
    // SAFETY: per the caller; the sentinel's address ends the ring.
    let end = unsafe { std::ptr::addr_of!((*list).sentinel) };
    // SAFETY: as above: an initialised list's sentinel points to its first node.
    let mut node = unsafe { (*list).sentinel.next } as *const enet_sys::ENetListNode;
    while !std::ptr::eq(node, end) && *sum <= stop_above {
        // Each node of these lists is the first field of an ENetOutgoingCommand (repr(C)).
        let command = node as *const ENetOutgoingCommand;
        // SAFETY: `node` is a live node of the list, hence a live command; fields only read.
        unsafe {
            *sum += usize::from((*command).fragmentLength);
            node = (*node).next;
        }
    }
}

/// Payload bytes ENet holds for `peer`: queued (`outgoingCommands`,
/// `outgoingSendReliableCommands`) and sent but not yet acknowledged (`sentReliableCommands`).
/// The walk stops once the sum passes `stop_above`, so a slow peer's long queue costs at most
/// that many bytes' worth of commands to look at.
///
/// # Safety
/// `peer` is a live peer of a host not being serviced during the call.
pub(crate) unsafe fn queued_bytes(peer: *const ENetPeer, stop_above: usize) -> usize {
    let mut sum = 0;
    // SAFETY: per the caller, the three lists belong to a live peer.
    unsafe {
        add_list(
            std::ptr::addr_of!((*peer).outgoingCommands),
            &mut sum,
            stop_above,
        );
        add_list(
            std::ptr::addr_of!((*peer).outgoingSendReliableCommands),
            &mut sum,
            stop_above,
        );
        add_list(
            std::ptr::addr_of!((*peer).sentReliableCommands),
            &mut sum,
            stop_above,
        );
    }
    sum
}
