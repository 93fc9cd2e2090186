//! [`Event`]: what servicing a host reports.

use crate::{Packet, PeerHandle};

/// What a host reported from [`Host::service`](crate::Host::service) or
/// [`Host::check_events`](crate::Host::check_events).
#[derive(Debug)]
pub enum Event {
    /// A connection completed, incoming or started by [`Host::connect`](crate::Host::connect).
    Connect {
        /// The peer.
        peer: PeerHandle,
        /// The 32-bit value the remote side passed when it connected (0 for an outgoing one).
        data: u32,
    },
    /// A connection ended (remote disconnect, timeout, failed connect, or our own graceful
    /// disconnect completing). After this event the handle is stale.
    Disconnect {
        /// The peer.
        peer: PeerHandle,
        /// The value passed to the disconnect, 0 for a timeout.
        data: u32,
    },
    /// A packet arrived.
    Receive {
        /// The sender.
        peer: PeerHandle,
        /// The channel it came on.
        channel: u8,
        /// The packet; its flags tell how it travelled.
        packet: Packet,
    },
}
