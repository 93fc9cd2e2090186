//! The ENet client: a driver of [`ClientSession`] over a one-slot ENet host.

use super::builder::Common;
use super::{HostState, PeerStats, Polled, MAX_EVENTS_PER_POLL};
use crate::error::{Error, Result};
use crate::peer::{
    ConnectionStatus, DisconnectReason, Packet, PeerId, SendSettings, Target, TransferMode,
    SERVER_ID,
};
use crate::protocol::{self, Header, SystemMessage, CHANNEL_CONFIG, HEADER_LEN};
use crate::relay::{self, DropReason};
use crate::session::{ClientSession, Limits};
use bytes::Bytes;
use enet_wrapper::{Event, Host, HostConfig, PeerHandle};
use std::net::SocketAddrV4;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct ClientDriver {
    pub(crate) state: HostState,
    pub(crate) session: ClientSession,
    pub(crate) settings: SendSettings,
    /// The connection to the server, while there is one.
    server: Option<PeerHandle>,
    /// What `set_refuse_new_connections` said (a client accepts no connections either way).
    pub(crate) refuse: bool,
}

impl ClientDriver {
    pub(crate) fn connect(
        config: &HostConfig,
        remote: SocketAddrV4,
        limits: Limits,
        common: Common,
    ) -> Result<ClientDriver> {
        let mut host = Host::new(config)?;
        if let Some(bytes) = common.socket_buffer {
            super::builder::size_socket_buffers(&mut host, bytes)?;
        }
        let id = crate::peer::generate_unique_id();
        let server = host.connect(remote, common.channels(), id)?;
        if let Some(t) = common.timeout {
            host.peer_mut(server)?.set_peer_timeout(t);
        }
        log::info!("client {id} connecting to {remote}");
        Ok(ClientDriver {
            state: HostState::new(host, limits, common),
            session: ClientSession::connecting(id),
            settings: SendSettings::default(),
            server: Some(server),
            refuse: false,
        })
    }

    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<Polled> {
        let mut polled = Polled::default();
        let mut wait = timeout;
        for _ in 0..MAX_EVENTS_PER_POLL {
            let Some(host) = self.state.host.as_mut() else {
                return Ok(polled);
            };
            let Some(event) = host.service(wait)? else {
                return Ok(polled);
            };
            wait = Duration::ZERO;
            match event {
                Event::Connect { peer, .. } if Some(peer) == self.server => {
                    polled.events += 1;
                    if let Some(t) = self.state.common.timeout {
                        if let Ok(mut p) = host.peer_mut(peer) {
                            p.set_peer_timeout(t);
                        }
                    }
                    self.session.connected();
                }
                Event::Connect { peer, .. } => {
                    log::warn!("unexpected connection in client slot {}", peer.index());
                }
                Event::Disconnect { data, .. } => {
                    polled.events += 1;
                    self.server = None;
                    self.state.close_host();
                    self.session.link_closed(DisconnectReason::from_code(data));
                }
                Event::Receive {
                    channel, packet, ..
                } => {
                    polled.packets += 1;
                    self.on_receive(channel, packet);
                }
            }
        }
        // Stopped at the event cap: what the handled events queued still has to go out.
        if let Some(host) = self.state.host.as_mut() {
            host.flush();
        }
        Ok(polled)
    }

    fn on_receive(&mut self, channel: u8, packet: enet_wrapper::Packet) {
        self.state.stats.packets_in += 1;
        self.state.stats.bytes_in += packet.len() as u64;
        if channel == CHANNEL_CONFIG {
            let taken = match SystemMessage::decode(packet.data()) {
                Ok(SystemMessage::AddPeer(id)) => self.session.peer_added(id).map_err(|e| (e, id)),
                Ok(SystemMessage::RemovePeer(id)) => {
                    self.session.peer_removed(id).map_err(|e| (e, id))
                }
                Err(e) => return self.drop_packet(DropReason::BadSystemMessage, &e.to_string()),
            };
            if let Err((why, id)) = taken {
                self.drop_packet(DropReason::BadSystemMessage, &format!("{why:?} for {id}"));
            }
            return;
        }
        let header = match Header::decode(packet.data()) {
            Ok(h) => h,
            Err(e) => return self.drop_packet(DropReason::ShortPacket, &e.to_string()),
        };
        self.session.queues_mut().push_packet(Packet {
            from: header.source,
            channel: protocol::logical_channel(channel).unwrap_or(0),
            mode: protocol::mode_from_flags(packet.flags()),
            data: Bytes::copy_from_slice(&packet.data()[HEADER_LEN..]),
        });
    }

    fn drop_packet(&mut self, reason: DropReason, detail: &str) {
        // A client has one connection: its totals are the server connection's counts.
        let drops = &mut self.state.stats.drops;
        drops.add(reason);
        relay::log_drop(Some(SERVER_ID), reason, drops.get(reason), detail);
    }

    pub(crate) fn send(
        &mut self,
        target: Target,
        mode: TransferMode,
        channel: u8,
        data: &[u8],
    ) -> Result<()> {
        let status = self.session.status();
        let server = match (status, self.server) {
            (ConnectionStatus::Connected, Some(server)) => server,
            _ => return Err(Error::NotConnected(status)),
        };
        let (_, int) = self.state.limits.check_send(
            self.session.id(),
            |id| self.session.knows(id),
            target,
            channel,
            data.len(),
        )?;
        let (packet, enet_channel) =
            self.state
                .packet(self.session.id(), int, mode, channel, data)?;
        let host = self
            .state
            .host
            .as_mut()
            .ok_or(Error::NotConnected(status))?;
        host.peer_mut(server)?
            .send(enet_channel, packet)
            .map_err(|e| HostState::channel_error(e, channel))?;
        self.state.sent(1, data.len());
        Ok(())
    }

    /// Leaves the server: gracefully (the `ServerDisconnected` event follows), or with `force`
    /// at once and silently, as `close`.
    pub(crate) fn leave(&mut self, force: bool) -> Result<()> {
        let server = self
            .server
            .ok_or(Error::NotConnected(self.session.status()))?;
        if force {
            self.close();
        } else if let Some(host) = self.state.host.as_mut() {
            host.peer_mut(server)?.disconnect_later(0);
        }
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        if let Some(host) = self.state.host.as_mut() {
            if let Some(server) = self.server {
                if let Ok(p) = host.peer_mut(server) {
                    p.disconnect_now(0);
                }
            }
            host.flush();
            log::info!("closed");
        }
        self.server = None;
        self.state.close_host();
        self.session.close();
    }

    pub(crate) fn peer_stats(&self, id: PeerId) -> Result<PeerStats> {
        match (id, self.server, self.session.status()) {
            (SERVER_ID, Some(h), ConnectionStatus::Connected) => {
                self.state.peer_stats(id, h, self.state.stats.drops)
            }
            _ => Err(Error::UnknownPeer(id)),
        }
    }
}
