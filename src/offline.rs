//! `OfflineMultiplayerPeer`: the peer of a game played alone (Godot 4's
//! `OfflineMultiplayerPeer`): always connected, id 1, a server with no peers.

use crate::error::{Error, NotAllowed, Result};
use crate::peer::{
    ConnectionStatus, MultiplayerPeer, Packet, PeerEvent, PeerId, PeerQueues, Polled, SendSettings,
    Target, TransferMode, SERVER_ID,
};
use crate::protocol::DEFAULT_MAX_PAYLOAD as DEFAULT_MAX_PACKET_SIZE;
use std::time::Duration;

/// A [`MultiplayerPeer`] for playing alone: always CONNECTED, id 1, a server that never has a
/// peer. Nothing ever arrives and polling does nothing. A game can start on it and switch to a
/// networked peer later (see [`CustomMultiplayerPeer`](crate::CustomMultiplayerPeer)).
///
/// Sending is always an error, [`Error::NotAllowed`], since there is nobody to send to (a
/// game that runs its own calls locally should not send them at all);
/// [`disconnect_peer`](MultiplayerPeer::disconnect_peer) is always [`Error::UnknownPeer`];
/// [`close`](MultiplayerPeer::close) does nothing: the peer stays CONNECTED.
///
/// ```
/// use enet_multiplayer::{ConnectionStatus, Error, MultiplayerPeer, OfflineMultiplayerPeer};
/// let mut peer = OfflineMultiplayerPeer::new();
/// assert_eq!(peer.connection_status(), ConnectionStatus::Connected);
/// assert_eq!(peer.unique_id(), 1);
/// assert!(peer.is_server());
/// assert!(matches!(peer.put_packet(b"anyone?"), Err(Error::NotAllowed(_))));
/// peer.poll()?;
/// assert!(peer.get_packet().is_none() && peer.pop_event().is_none());
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct OfflineMultiplayerPeer {
    settings: SendSettings,
    refuse: bool,
    /// Always empty: nothing ever arrives.
    queues: PeerQueues,
}

impl OfflineMultiplayerPeer {
    /// The offline peer.
    pub fn new() -> OfflineMultiplayerPeer {
        OfflineMultiplayerPeer::default()
    }
}

impl MultiplayerPeer for OfflineMultiplayerPeer {
    fn queues(&self) -> &PeerQueues {
        &self.queues
    }

    fn pop_event(&mut self) -> Option<PeerEvent> {
        self.queues.pop_event()
    }

    fn get_packet(&mut self) -> Option<Packet> {
        self.queues.pop_packet()
    }

    /// Does nothing.
    fn poll(&mut self) -> Result<Polled> {
        Ok(Polled::default())
    }

    /// Returns at once: nothing can arrive.
    fn poll_timeout(&mut self, _timeout: Duration) -> Result<Polled> {
        Ok(Polled::default())
    }

    /// Always [`Error::NotAllowed`]: an offline peer has nobody to send to.
    fn send(
        &mut self,
        _target: Target,
        _mode: TransferMode,
        _channel: u8,
        _data: &[u8],
    ) -> Result<()> {
        Err(Error::NotAllowed(NotAllowed::Offline))
    }

    fn settings(&self) -> &SendSettings {
        &self.settings
    }

    fn settings_mut(&mut self) -> &mut SendSettings {
        &mut self.settings
    }

    /// Always 1.
    fn unique_id(&self) -> PeerId {
        SERVER_ID
    }

    /// Always CONNECTED.
    fn connection_status(&self) -> ConnectionStatus {
        ConnectionStatus::Connected
    }

    /// Always true.
    fn is_server(&self) -> bool {
        true
    }

    /// Always false.
    fn is_server_relay_supported(&self) -> bool {
        false
    }

    /// Remembered, and without effect: nobody ever connects.
    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    /// Always [`Error::UnknownPeer`]: there are no peers.
    fn disconnect_peer(&mut self, id: PeerId, _force: bool) -> Result<()> {
        Err(Error::UnknownPeer(id))
    }

    /// Does nothing: an offline peer stays CONNECTED.
    fn close(&mut self) {}

    /// The same default as the other peers, so code that sizes its packets behaves the same;
    /// sending still fails.
    fn max_packet_size(&self) -> usize {
        DEFAULT_MAX_PACKET_SIZE
    }
}
