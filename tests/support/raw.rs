//! One raw ENet client for the tests, over a bare `enet_wrapper::Host`: it speaks the
//! multiplayer protocol by hand, so it can connect with any id and channel count and send any
//! bytes on any channel (hostile traffic, or traffic counted byte for byte). Packets are built
//! with the library's own encoders (`protocol::Header::encode`, `SystemMessage::encode`).

use super::cluster::Cluster;
use enet_multiplayer::protocol::{Header, SystemMessage, HEADER_LEN};
use enet_multiplayer::{MultiplayerPeer, PeerId};
use enet_wrapper::{Event, Host, HostConfig, Packet as RawPacket, PacketFlags, PeerHandle};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Events taken at most per [`RawClient::pump`] or [`RawClient::drain`] call.
const MAX_EVENTS_PER_PUMP: usize = 4096;

/// A client that speaks the multiplayer protocol by hand over a bare ENet host.
pub struct RawClient {
    pub host: Host,
    pub server: PeerHandle,
    /// The Godot id it passed in its connect request.
    pub id: u32,
    /// Every event [`RawClient::pump`] took (not those handed out by [`RawClient::drain`]).
    pub events: Vec<Event>,
}

impl RawClient {
    /// Connects to 127.0.0.1:`port` with Godot id `id`, asking for the protocol's 3 channels.
    pub fn connect(port: u16, id: u32) -> RawClient {
        RawClient::connect_with(port, id, 3)
    }

    /// Connects asking for `channels` channels.
    pub fn connect_with(port: u16, id: u32, channels: usize) -> RawClient {
        let mut host = Host::new(&HostConfig::client().channel_limit(channels)).expect("raw host");
        let server = host
            .connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), channels, id)
            .expect("raw connect");
        RawClient {
            host,
            server,
            id,
            events: Vec::new(),
        }
    }

    /// Takes every event ENet has (at most 4096 per call) and records them. A failing service
    /// call (a socket error, as after an ICMP "port unreachable") ends the call quietly: hostile
    /// tests keep going, and a wait on the client's events still fails with its bound.
    pub fn pump(&mut self) {
        for _ in 0..MAX_EVENTS_PER_PUMP {
            match self.host.service(Duration::ZERO) {
                Ok(Some(e)) => self.events.push(e),
                _ => break,
            }
        }
    }

    /// Services the host once and hands every event it has to `f` without recording it (at
    /// most 4096 per call), for counting tests that must not keep what they receive.
    pub fn drain(&mut self, mut f: impl FnMut(Event)) {
        let mut next = self.host.service(Duration::ZERO).expect("raw service");
        for _ in 0..MAX_EVENTS_PER_PUMP {
            let Some(event) = next else {
                return;
            };
            f(event);
            next = self.host.check_events().expect("raw check_events");
        }
    }

    pub fn local_port(&self) -> u16 {
        self.host.local_address().expect("raw address").port()
    }

    pub fn connected(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Connect { .. }))
    }

    /// The data of the disconnect event (the refusal code), once there is one.
    pub fn disconnect_data(&self) -> Option<u32> {
        self.events.iter().find_map(|e| match e {
            Event::Disconnect { data, .. } => Some(*data),
            _ => None,
        })
    }

    /// Every packet received so far: (ENet channel, bytes).
    pub fn received(&self) -> Vec<(u8, Vec<u8>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Receive {
                    channel, packet, ..
                } => Some((*channel, packet.data().to_vec())),
                _ => None,
            })
            .collect()
    }

    /// Queues `bytes` on ENet `channel` with `flags`, without flushing.
    pub fn queue(
        &mut self,
        channel: u8,
        bytes: &[u8],
        flags: PacketFlags,
    ) -> enet_wrapper::Result<()> {
        let p = RawPacket::new(bytes, flags)?;
        self.host.peer_mut(self.server)?.send(channel, p)
    }

    /// Queues `bytes` on ENet `channel` with `flags` and flushes.
    pub fn send(
        &mut self,
        channel: u8,
        bytes: &[u8],
        flags: PacketFlags,
    ) -> enet_wrapper::Result<()> {
        self.queue(channel, bytes, flags)?;
        self.host.flush();
        Ok(())
    }

    /// Sends `bytes` reliably on ENet `channel` and flushes; panics if ENet refuses.
    pub fn send_reliable(&mut self, channel: u8, bytes: &[u8]) {
        self.send(channel, bytes, PacketFlags::RELIABLE)
            .unwrap_or_else(|e| panic!("raw send on channel {channel}: {e}"));
    }
}

/// The 8-byte header a client writes before a data packet's payload: `[u32 source][i32 target]`.
pub fn header(source: u32, target: i32) -> [u8; HEADER_LEN] {
    Header { source, target }.encode()
}

/// A data packet as a client writes it: [`header`] followed by `payload`.
pub fn data_packet(source: u32, target: i32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&header(source, target));
    v.extend_from_slice(payload);
    v
}

/// ADD_PEER(`id`) as the server writes it on the config channel.
pub fn add_peer(id: PeerId) -> Vec<u8> {
    SystemMessage::AddPeer(id).encode().to_vec()
}

/// REMOVE_PEER(`id`) as the server writes it on the config channel.
pub fn remove_peer(id: PeerId) -> Vec<u8> {
    SystemMessage::RemovePeer(id).encode().to_vec()
}

/// Pumps the cluster and every raw client once.
pub fn pump_all<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>, raws: &mut [&mut RawClient]) {
    c.pump();
    for r in raws.iter_mut() {
        r.pump();
    }
}

/// Pumps the cluster and the raw clients until `done` holds; panics with `what` after `limit`.
pub fn wait_raw<P: MultiplayerPeer + ?Sized>(
    c: &mut Cluster<P>,
    raws: &mut [&mut RawClient],
    what: &str,
    limit: Duration,
    done: impl Fn(&Cluster<P>, &[&mut RawClient]) -> bool,
) {
    let start = Instant::now();
    loop {
        pump_all(c, raws);
        if done(c, raws) {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
    }
}
