//! The session core: Godot's rules for a server and a client, with no socket and no clock.
//!
//! A transport (ENet, the application of a custom peer, WebSocket) is a *driver*: it turns its
//! I/O into a few inputs and carries out the outputs.
//!
//! - [`ServerSession`]: admission (id range, duplicates, refusing, capacity) with refusal
//!   reasons, the id of each link, ADD/REMOVE announcements in Godot's order (queued, so a
//!   driver sends those of a whole poll together), the source-id check, routing through
//!   [`relay::route`](crate::relay::route) with the server's own share, a packet rate limit with
//!   the time passed in, exactly-once events for every way of leaving (and silence for the two
//!   Godot documents: a forced kick and `close`), and drops counted by reason per peer.
//! - [`ClientSession`]: the client's side: `PeerConnected(1)` then `ConnectionSucceeded`, peers
//!   the server announces, `ServerDisconnected` or `ConnectionFailed`, exactly once.
//!
//! Links are the driver's own handles (`L`: an ENet peer handle, a connection number, a peer id),
//! copied and compared, never interpreted. Time is an argument (`now`).
//!
//! ```
//! use enet_multiplayer::session::{Announcement, Inbound, ServerConfig, ServerSession};
//! use enet_multiplayer::{PeerEvent, Refusal};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let mut server: ServerSession<u32> = ServerSession::new(ServerConfig::default());
//! // Two links connect, claiming ids (ENet clients choose theirs); a third claims one in use.
//! assert_eq!(server.connect(10, Some(5), now), Ok(5));
//! assert_eq!(server.connect(11, Some(9), now), Ok(9));
//! assert_eq!(server.connect(12, Some(9), now), Err(Refusal::IdInUse));
//! // Godot's announcements: 5 learns of 9, 9 learns of 5.
//! let mut sent = Vec::new();
//! server.drain_announcements(|what, to| sent.push((what, to.to_vec())));
//! assert_eq!(sent, [(Announcement::Add(9), vec![10]), (Announcement::Add(5), vec![11])]);
//! // 5 sends to 9: relayed, not for the server itself.
//! let accepted = server.receive(&10, Inbound::Data { source: 5, target: 9 }, now).unwrap();
//! assert!(!accepted.route.local);
//! assert_eq!(server.forward_links(accepted.route.forward).collect::<Vec<_>>(), [11]);
//! assert_eq!(server.queues_mut().pop_event(), Some(PeerEvent::PeerConnected(5)));
//! ```

mod client;
mod server;

pub use client::{ClientSession, PeerRejected};
pub use server::{Accepted, Announcement, Inbound, RefusalCounts, ServerConfig, ServerSession};

use crate::error::{Error, Result};
use crate::peer::{check_target, PeerId, Target};

/// What every transport limits: logical channels and payload size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Logical channels (channel `n` needs `n < logical_channels`).
    pub logical_channels: u16,
    /// The largest payload.
    pub max_packet_size: usize,
}

impl Limits {
    /// Checks a send of `size` bytes on `channel` to `target`, from the peer `me` that knows
    /// its connected peers through `known`: Godot's target rules
    /// ([`Error::UnknownTarget`], [`Error::InvalidTarget`]), then the channel
    /// ([`Error::ChannelOutOfRange`]) and the size ([`Error::PacketTooLarge`]). Returns the
    /// normalized target and its Godot integer.
    pub fn check_send(
        &self,
        me: PeerId,
        known: impl Fn(PeerId) -> bool,
        target: Target,
        channel: u8,
        size: usize,
    ) -> Result<(Target, i32)> {
        let checked = check_target(target, me, known)?;
        self.check_channel(channel)?;
        self.check_size(size)?;
        Ok(checked)
    }

    /// [`Error::ChannelOutOfRange`] unless `channel < logical_channels`.
    pub fn check_channel(&self, channel: u8) -> Result<()> {
        let count = self.logical_channels;
        if u16::from(channel) >= count {
            return Err(Error::ChannelOutOfRange { channel, count });
        }
        Ok(())
    }

    /// [`Error::PacketTooLarge`] above `max_packet_size`.
    pub fn check_size(&self, size: usize) -> Result<()> {
        let max = self.max_packet_size;
        if size > max {
            return Err(Error::PacketTooLarge { size, max });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
