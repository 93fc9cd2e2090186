//! The ENet server: a driver of [`ServerSession`] over one ENet host. The session decides; this
//! moves ENet's events in and carries the decisions out, forwarding each received ENet packet
//! itself (one packet, many peers, no copy).

use super::builder::Common;
use super::{HostState, PeerStats, Polled, MAX_EVENTS_PER_POLL};
use crate::error::{Error, Result};
use crate::peer::{
    ConnectionStatus, DisconnectReason, Packet, PeerId, SendSettings, Target, TransferMode,
    SERVER_ID,
};
use crate::protocol::{self, Header, SystemMessage, CHANNEL_CONFIG, HEADER_LEN};
use crate::relay::{DropReason, Forward};
use crate::session::{Announcement, Inbound, Limits, ServerConfig, ServerSession};
use bytes::Bytes;
use enet_wrapper::{Event, Host, HostConfig, PacketFlags, PeerHandle, SlotUsage, Timeout};
use std::time::{Duration, Instant};

/// Extra ENet peer slots beyond `max_clients`, so a server can answer surplus connections with
/// a refusal instead of silence.
const SPARE_SLOTS: usize = 64;

/// The handshake-flood policy: once three quarters or more of the slots are taken, half-open
/// handshakes get the short handshake timeout, so forged connect requests cannot hold the last
/// slots for ENet's ~30 s; with slots to spare they keep ENet's patient defaults (lossy links
/// need them). The wrapper gives a completed connection ENet's defaults back.
fn slots_short(usage: SlotUsage) -> bool {
    usage.in_use * 4 >= usage.limit * 3
}

#[derive(Debug)]
pub(crate) struct ServerDriver {
    pub(crate) state: HostState,
    pub(crate) session: ServerSession<PeerHandle>,
    pub(crate) settings: SendSettings,
}

impl ServerDriver {
    /// The ENet peer slots for `max_clients`.
    pub(crate) fn slots(max_clients: usize) -> usize {
        (max_clients + SPARE_SLOTS).min(enet_wrapper::MAX_PEERS)
    }

    pub(crate) fn new(
        config: &HostConfig,
        session: ServerConfig,
        limits: Limits,
        common: Common,
        handshake: Timeout,
    ) -> Result<ServerDriver> {
        let mut host = Host::new(config)?;
        host.set_handshake_policy(Some(Box::new(move |usage: SlotUsage| {
            slots_short(usage).then_some(handshake)
        })));
        Ok(ServerDriver {
            state: HostState::new(host, limits, common),
            session: ServerSession::new(session),
            settings: SendSettings::default(),
        })
    }

    pub(crate) fn status(&self) -> ConnectionStatus {
        if self.state.host.is_some() {
            ConnectionStatus::Connected
        } else {
            ConnectionStatus::Disconnected
        }
    }

    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<Polled> {
        let mut polled = Polled::default();
        let mut wait = timeout;
        let mut drained = false;
        for _ in 0..MAX_EVENTS_PER_POLL {
            let Some(host) = self.state.host.as_mut() else {
                return Ok(polled);
            };
            let Some(event) = host.service(wait)? else {
                // A service call that returns no event has sent everything queued.
                drained = true;
                break;
            };
            wait = Duration::ZERO;
            let now = Instant::now();
            match event {
                Event::Connect { peer, data } => {
                    polled.events += 1;
                    self.on_connect(peer, data, now);
                }
                Event::Disconnect { peer, .. } => {
                    polled.events += 1;
                    self.session.link_closed(&peer);
                }
                Event::Receive {
                    peer,
                    channel,
                    packet,
                } => {
                    polled.packets += 1;
                    // Announcements first: a client hears of a peer before its packets.
                    self.send_announcements();
                    self.on_receive(peer, channel, packet, now);
                }
            }
        }
        // The announcements of this poll's connects and departures, together, then one flush
        // (also when the event cap stopped the loop with packets still queued).
        if self.send_announcements() || !drained {
            if let Some(host) = self.state.host.as_mut() {
                host.flush();
            }
        }
        Ok(polled)
    }

    fn on_connect(&mut self, peer: PeerHandle, claimed: u32, now: Instant) {
        let Some(host) = self.state.host.as_mut() else {
            return;
        };
        match self.session.connect(peer, Some(claimed), now) {
            Ok(_) => {
                if let (Some(t), Ok(mut p)) = (self.state.common.timeout, host.peer_mut(peer)) {
                    p.set_peer_timeout(t);
                }
            }
            Err(refusal) => {
                let address = host.peer_info(peer).map(|i| i.address.to_string());
                log::info!(
                    "refused connection from {} with id {claimed}: {refusal:?}",
                    address.unwrap_or_default()
                );
                if let Ok(p) = host.peer_mut(peer) {
                    p.disconnect_now(DisconnectReason::Refused(refusal).code());
                }
            }
        }
    }

    /// Sends what the session announced; true if anything went out.
    fn send_announcements(&mut self) -> bool {
        if !self.session.has_announcements() {
            return false;
        }
        let Some(host) = self.state.host.as_mut() else {
            return false;
        };
        let stats = &mut self.state.stats;
        self.session.drain_announcements(|what, to| {
            let msg = match what {
                Announcement::Add(id) => SystemMessage::AddPeer(id),
                Announcement::Remove(id) => SystemMessage::RemovePeer(id),
            };
            match enet_wrapper::Packet::new(&msg.encode(), PacketFlags::RELIABLE) {
                Ok(p) => {
                    let n = host.send_many(to.iter().copied(), CHANNEL_CONFIG, p) as u64;
                    stats.packets_out += n;
                    stats.bytes_out += n * protocol::SYSTEM_MESSAGE_LEN as u64;
                }
                Err(e) => log::error!("could not send {msg:?}: {e}"),
            }
        });
        true
    }

    fn on_receive(
        &mut self,
        peer: PeerHandle,
        channel: u8,
        packet: enet_wrapper::Packet,
        now: Instant,
    ) {
        self.state.stats.packets_in += 1;
        self.state.stats.bytes_in += packet.len() as u64;
        let inbound = if channel == CHANNEL_CONFIG {
            Inbound::Config
        } else {
            match Header::decode(packet.data()) {
                Ok(h) => Inbound::Data {
                    source: h.source,
                    target: h.target,
                },
                Err(_) => Inbound::Short,
            }
        };
        let Ok(accepted) = self.session.receive(&peer, inbound, now) else {
            return;
        };
        if accepted.route.local {
            self.session.queues_mut().push_packet(Packet {
                from: accepted.from,
                channel: protocol::logical_channel(channel).unwrap_or(0),
                mode: protocol::mode_from_flags(packet.flags()),
                data: Bytes::copy_from_slice(&packet.data()[HEADER_LEN..]),
            });
        }
        if accepted.route.forward == Forward::Nobody {
            return;
        }
        let Some(host) = self.state.host.as_mut() else {
            return;
        };
        let len = packet.len() as u64;
        let sent = host.send_many(
            self.session.forward_links(accepted.route.forward),
            channel,
            packet,
        ) as u64;
        let stats = &mut self.state.stats;
        stats.relayed += sent;
        stats.packets_out += sent;
        stats.bytes_out += sent * len;
    }

    pub(crate) fn send(
        &mut self,
        target: Target,
        mode: TransferMode,
        channel: u8,
        data: &[u8],
    ) -> Result<()> {
        if self.state.host.is_none() {
            return Err(Error::NotConnected(ConnectionStatus::Disconnected));
        }
        let (_, int) = self.state.limits.check_send(
            SERVER_ID,
            |id| self.session.contains(id),
            target,
            channel,
            data.len(),
        )?;
        let (packet, enet_channel) = self.state.packet(SERVER_ID, int, mode, channel, data)?;
        let host = self.state.host.as_mut().expect("checked above");
        let sent = match target.normalized() {
            // One peer: ENet's own refusal (a channel that connection lacks) is the caller's.
            Target::Peer(id) => {
                let link = self.session.link_of(id).ok_or(Error::UnknownPeer(id))?;
                host.peer_mut(link)?
                    .send(enet_channel, packet)
                    .map_err(|e| HostState::channel_error(e, channel))?;
                1
            }
            _ => {
                let (_, links) = self.session.send_links(target)?;
                host.send_many(links, enet_channel, packet)
            }
        };
        self.state.sent(sent, data.len());
        Ok(())
    }

    pub(crate) fn kick(&mut self, id: PeerId, force: bool) -> Result<()> {
        let link = self.session.kick(id, force)?;
        let host = self.state.host.as_mut().ok_or(Error::UnknownPeer(id))?;
        let code = DisconnectReason::Kicked.code();
        if force {
            if let Ok(p) = host.peer_mut(link) {
                p.disconnect_now(code);
            }
        } else {
            host.peer_mut(link)?.disconnect_later(code);
        }
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        let links = self.session.close();
        if let Some(host) = self.state.host.as_mut() {
            let code = DisconnectReason::ServerClosed.code();
            for link in links {
                if let Ok(p) = host.peer_mut(link) {
                    p.disconnect_now(code);
                }
            }
            host.flush();
            log::info!("closed");
        }
        self.state.close_host();
    }

    pub(crate) fn peer_stats(&self, id: PeerId) -> Result<PeerStats> {
        let link = self.session.link_of(id).ok_or(Error::UnknownPeer(id))?;
        let drops = self.session.drops_of(id).copied().unwrap_or_default();
        self.state.peer_stats(id, link, drops)
    }

    /// Totals, with the session's refusals and drop counts.
    pub(crate) fn stats(&self) -> super::TotalStats {
        let mut stats = self.state.stats();
        stats.refused = self.session.refused().total();
        for (reason, n) in self.session.drops().iter() {
            if !matches!(reason, DropReason::Oversize | DropReason::ChannelOutOfRange) {
                stats.drops.set(reason, n);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_shortened_only_when_slots_run_short() {
        let usage = |in_use| SlotUsage {
            in_use,
            half_open: 1,
            limit: 96,
        };
        assert!(!slots_short(usage(0)));
        assert!(!slots_short(usage(71)));
        assert!(slots_short(usage(72)));
        assert!(slots_short(usage(96)));
        assert_eq!(ServerDriver::slots(32), 96);
        assert_eq!(ServerDriver::slots(4095), enet_wrapper::MAX_PEERS);
    }
}
