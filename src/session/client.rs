//! The client's side of a session: its id, its status, the peers the server announced.

use crate::peer::{
    ConnectionStatus, DisconnectReason, PeerEvent, PeerId, PeerQueues, MAX_PEER_ID, SERVER_ID,
};
use std::collections::BTreeSet;

/// Why an announcement of a peer was not taken (a driver counts it as a bad system message;
/// a custom peer reports it to its application).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRejected {
    /// Not a client id (2..=2^31-1).
    InvalidId,
    /// This client's own id, or the server's.
    OwnId,
    /// Announced already (added), or never announced (removed).
    AlreadyKnown,
    /// Removing a peer that was never announced.
    Unknown,
    /// Not connected.
    NotConnected,
}

/// The client's side of a session. See the [module docs](super).
#[derive(Debug, Default)]
pub struct ClientSession {
    id: PeerId,
    status: ConnectionStatus,
    /// Other clients the server announced, ascending.
    known: BTreeSet<PeerId>,
    queues: PeerQueues,
}

impl ClientSession {
    /// A client connecting as `id` (0 while the server has not assigned one yet).
    pub fn connecting(id: PeerId) -> ClientSession {
        ClientSession {
            id,
            status: ConnectionStatus::Connecting,
            ..ClientSession::default()
        }
    }

    /// This client's id (0 when disconnected, or before the server assigned it).
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Sets the id a server assigned (WebSocket's SYS_ID).
    pub fn set_id(&mut self, id: PeerId) {
        self.id = id;
    }

    /// Disconnected, connecting or connected.
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    /// The events and received packets.
    pub fn queues(&self) -> &PeerQueues {
        &self.queues
    }

    /// The same, mutably.
    pub fn queues_mut(&mut self) -> &mut PeerQueues {
        &mut self.queues
    }

    /// Whether `id` is the server (while connected) or a client the server announced.
    pub fn knows(&self, id: PeerId) -> bool {
        (id == SERVER_ID && self.status == ConnectionStatus::Connected) || self.known.contains(&id)
    }

    /// The server (while connected) and the announced clients, ascending.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        let server = (self.status == ConnectionStatus::Connected).then_some(SERVER_ID);
        server
            .into_iter()
            .chain(self.known.iter().copied())
            .collect()
    }

    /// The connection to the server completed: `PeerConnected(1)` then `ConnectionSucceeded`
    /// (Godot's order). Only once, while connecting.
    pub fn connected(&mut self) {
        if self.status != ConnectionStatus::Connecting {
            return;
        }
        self.status = ConnectionStatus::Connected;
        log::info!("connected to the server as {}", self.id);
        self.queues.push_event(PeerEvent::PeerConnected(SERVER_ID));
        self.queues.push_event(PeerEvent::ConnectionSucceeded);
    }

    /// The server announced a client: `PeerConnected(id)`, once.
    pub fn peer_added(&mut self, id: PeerId) -> Result<(), PeerRejected> {
        self.check(id)?;
        if !self.known.insert(id) {
            return Err(PeerRejected::AlreadyKnown);
        }
        self.queues.push_event(PeerEvent::PeerConnected(id));
        Ok(())
    }

    /// The server announced a client left: `PeerDisconnected(id)`, once.
    pub fn peer_removed(&mut self, id: PeerId) -> Result<(), PeerRejected> {
        self.check(id)?;
        if !self.known.remove(&id) {
            return Err(PeerRejected::Unknown);
        }
        self.queues.push_event(PeerEvent::PeerDisconnected(id));
        Ok(())
    }

    fn check(&self, id: PeerId) -> Result<(), PeerRejected> {
        if self.status != ConnectionStatus::Connected {
            return Err(PeerRejected::NotConnected);
        }
        if id == self.id || id == SERVER_ID {
            return Err(PeerRejected::OwnId);
        }
        if !(2..=MAX_PEER_ID).contains(&id) {
            return Err(PeerRejected::InvalidId);
        }
        Ok(())
    }

    /// The link to the server is gone: `ServerDisconnected` if the connection had completed,
    /// else `ConnectionFailed`, once; the client forgets its id and peers without events
    /// (Godot's client keeps no peers). Received packets stay queued.
    pub fn link_closed(&mut self, reason: DisconnectReason) {
        let event = match self.status {
            ConnectionStatus::Connected => {
                log::info!("server disconnected ({reason:?})");
                PeerEvent::ServerDisconnected(reason)
            }
            ConnectionStatus::Connecting => {
                log::info!("connection failed ({reason:?})");
                PeerEvent::ConnectionFailed(reason)
            }
            ConnectionStatus::Disconnected => return,
        };
        self.forget();
        self.queues.push_event(event);
    }

    /// Godot's `close()`: disconnected at once and silently; queued packets and events are
    /// discarded.
    pub fn close(&mut self) {
        self.forget();
        self.queues.clear();
    }

    fn forget(&mut self) {
        self.status = ConnectionStatus::Disconnected;
        self.id = 0;
        self.known.clear();
    }
}
