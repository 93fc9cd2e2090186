//! Announcements to ENet clients, paced by each client's acknowledgements.
//!
//! Godot's protocol announces each peer in a packet of its own (ADD_PEER, REMOVE_PEER), so a
//! join storm of N clients is about N² reliable commands. Handed to ENet at once they cost
//! about 170 bytes each until acknowledged (2.9 GB for 4095 clients), and every service call
//! walks them. Here each client's announcements wait in a compact backlog (4 bytes each) and go
//! to ENet a window at a time: more only once ENet has sent what it was handed and fewer than
//! [`IN_FLIGHT_BUDGET`] announcements are unacknowledged (counted on the configuration channel,
//! so a client's game traffic does not hold them back). What is relayed or sent to a client
//! while it has a backlog waits behind it, so each client still hears of a peer before that
//! peer's packets, in Godot's order; a packet at the head of a backlog goes at once.

use crate::peer::PeerId;
use crate::protocol::{SystemMessage, CHANNEL_CONFIG, SYSTEM_MESSAGE_LEN};
use bytes::Bytes;
use enet_wrapper::{Host, Packet, PacketFlags, PeerHandle};
use std::collections::VecDeque;

/// Announcements to a client that may be sent and unacknowledged before more are handed to
/// ENet (each costs ENet about 170 bytes until acknowledged).
pub(crate) const IN_FLIGHT_BUDGET: u32 = 1024;

/// Announcements one client may get straight to ENet in one pass, if ENet is not behind with
/// it (a join storm's passes would otherwise pile up in ENet); the rest wait in its backlog.
pub(crate) const DIRECT_PER_PASS: u32 = 256;

// No fallback that sends without room: the room counts announcements only (the client's game
// traffic cannot take it), so a backlog without room means ENet is behind with the client. A
// storm's backlogs must then wait (a once-a-second fallback let a 4095-client storm pile 8M
// commands, 1.2 GB, into ENet); a client that never catches up is a slow consumer, and the
// cap on what is held for it ends its connection.

/// A backlog item standing for the next held data packet (0 is no Godot peer id).
const DATA: u32 = 0;
/// The bit that makes an item a REMOVE_PEER (Godot ids are below 2³¹).
const REMOVE: u32 = 1 << 31;

/// A packet held behind a client's announcements.
struct HeldData {
    channel: u8,
    flags: PacketFlags,
    data: Bytes,
}

/// One client's backlog.
struct Backlog {
    handle: PeerHandle,
    /// Announcements (an id, with [`REMOVE`] for a departure) and [`DATA`] placeholders.
    items: VecDeque<u32>,
    data: VecDeque<HeldData>,
    /// Payload bytes held (announcements and data), for the slow-consumer cap.
    bytes: usize,
}

/// What pacing keeps for one ENet peer slot.
#[derive(Default)]
struct Slot {
    backlog: Option<Backlog>,
    /// Announcements sent straight to ENet in a pass: (that pass, how many, how many it may).
    direct: (u32, u32, u32),
}

/// The backlogs of a server's ENet clients.
#[derive(Default)]
pub(crate) struct Pacing {
    /// By peer slot index.
    slots: Vec<Slot>,
    /// Slot indices whose backlog is not empty.
    waiting: Vec<u16>,
    pass: u32,
}

impl std::fmt::Debug for Pacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacing")
            .field("backlogs", &self.waiting.len())
            .finish()
    }
}

impl Pacing {
    /// Starts a pass of announcements: each client may get up to [`DIRECT_PER_PASS`] of them
    /// straight to ENet, as far as ENet has room for it (a join or two: no backlog, no copy,
    /// one packet shared by all).
    pub(crate) fn begin_pass(&mut self) {
        self.pass = self.pass.wrapping_add(1);
    }

    /// Whether one more announcement may go straight to `handle` in this pass (it has no
    /// backlog, ENet has room for it, and it has not had its share); counts it.
    pub(crate) fn direct(&mut self, host: &Host, handle: PeerHandle) -> bool {
        if self.holds(handle) {
            return false;
        }
        let current = self.pass;
        let (pass, count, allowed) = &mut slot_of(&mut self.slots, handle).direct;
        if *pass != current {
            *pass = current;
            *count = 0;
            *allowed = room_for(host, handle).min(DIRECT_PER_PASS);
        }
        *count += 1;
        *count <= *allowed
    }

    /// Whether no client has a backlog.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// `handle`'s backlog, if it has one.
    fn held(&self, handle: PeerHandle) -> Option<&Backlog> {
        self.slots
            .get(usize::from(handle.index()))
            .and_then(|s| s.backlog.as_ref())
            .filter(|b| b.handle == handle)
    }

    /// Whether `handle`'s connection has a backlog (sends to it must wait behind it).
    pub(crate) fn holds(&self, handle: PeerHandle) -> bool {
        self.held(handle).is_some()
    }

    /// Payload bytes waiting for `handle`.
    pub(crate) fn held_bytes(&self, handle: PeerHandle) -> usize {
        self.held(handle).map_or(0, |b| b.bytes)
    }

    fn backlog(&mut self, handle: PeerHandle) -> &mut Backlog {
        let index = handle.index();
        let slot = &mut slot_of(&mut self.slots, handle).backlog;
        if slot.as_ref().map_or(true, |b| b.handle != handle) {
            // A new connection in this slot: whatever waited for the old one is moot.
            if slot.is_none() {
                self.waiting.push(index);
            }
            *slot = Some(Backlog {
                handle,
                items: VecDeque::new(),
                data: VecDeque::new(),
                bytes: 0,
            });
        }
        slot.as_mut().expect("just set")
    }

    /// Queues an announcement for `handle`.
    pub(crate) fn announce(&mut self, handle: PeerHandle, message: SystemMessage) {
        let item = match message {
            SystemMessage::AddPeer(id) => id & !REMOVE,
            SystemMessage::RemovePeer(id) => (id & !REMOVE) | REMOVE,
        };
        let backlog = self.backlog(handle);
        backlog.items.push_back(item);
        backlog.bytes += SYSTEM_MESSAGE_LEN;
    }

    /// Holds a packet for `handle` behind its announcements (a copy of `data`).
    pub(crate) fn hold(
        &mut self,
        handle: PeerHandle,
        channel: u8,
        flags: PacketFlags,
        data: &[u8],
    ) {
        let backlog = self.backlog(handle);
        backlog.items.push_back(DATA);
        backlog.data.push_back(HeldData {
            channel,
            flags,
            data: Bytes::copy_from_slice(data),
        });
        backlog.bytes += data.len();
    }

    /// `Host::send_many`, except that a client with a backlog gets a copy held behind it.
    /// Returns how many clients it was sent to or held for. With no backlog anywhere, exactly
    /// `send_many` (no copy, no allocation).
    pub(crate) fn send_many<I>(
        &mut self,
        host: &mut Host,
        peers: I,
        channel: u8,
        packet: Packet,
    ) -> usize
    where
        I: IntoIterator<Item = PeerHandle>,
    {
        if self.is_empty() {
            return host.send_many(peers, channel, packet);
        }
        let mut held = 0;
        let direct: Vec<PeerHandle> = peers
            .into_iter()
            .filter(|&h| {
                if !self.holds(h) {
                    return true;
                }
                self.hold(h, channel, packet.flags(), packet.data());
                held += 1;
                false
            })
            .collect();
        held + host.send_many(direct, channel, packet)
    }

    /// Drops what waits for `handle` (its connection ended or is ending).
    pub(crate) fn forget(&mut self, handle: PeerHandle) {
        if self.holds(handle) {
            self.slots[usize::from(handle.index())].backlog = None;
            self.waiting.retain(|&i| i != handle.index());
        }
    }

    /// Hands ENet what each client has room for: once ENet has sent what it was handed,
    /// announcements up to [`IN_FLIGHT_BUDGET`] unacknowledged ones, and the packets held
    /// behind them (a packet at the head of a backlog needs no room). Call it once before
    /// each flush: what it hands over is unsent until then, which leaves no room for more.
    /// Returns the announcements handed over, their bytes, and the held packets handed over
    /// (already counted as sent when they were held). A client that is gone loses its
    /// backlog.
    pub(crate) fn release(&mut self, host: &mut Host) -> Released {
        let mut released = Released::default();
        let mut i = 0;
        while i < self.waiting.len() {
            let index = usize::from(self.waiting[i]);
            let Some(backlog) = self.slots[index].backlog.as_mut() else {
                self.waiting.swap_remove(i);
                continue;
            };
            if !host.is_valid(backlog.handle) {
                self.slots[index].backlog = None;
                self.waiting.swap_remove(i);
                continue;
            }
            let mut room = room_for(host, backlog.handle);
            let mut gone = false;
            loop {
                let is_data = backlog.items.front() == Some(&DATA);
                if !is_data && room == 0 {
                    break;
                }
                let Some(item) = backlog.items.pop_front() else {
                    break;
                };
                let held;
                let encoded;
                let (payload, channel, flags) = if is_data {
                    held = backlog
                        .data
                        .pop_front()
                        .expect("a DATA item has its packet");
                    backlog.bytes -= held.data.len();
                    (&held.data[..], held.channel, held.flags)
                } else {
                    let id: PeerId = item & !REMOVE;
                    let message = if item & REMOVE != 0 {
                        SystemMessage::RemovePeer(id)
                    } else {
                        SystemMessage::AddPeer(id)
                    };
                    backlog.bytes -= SYSTEM_MESSAGE_LEN;
                    encoded = message.encode();
                    (&encoded[..], CHANNEL_CONFIG, PacketFlags::RELIABLE)
                };
                if !is_data {
                    room -= 1;
                }
                let sent = Packet::new(payload, flags)
                    .map_err(|e| e.to_string())
                    .and_then(|p| {
                        host.peer_mut(backlog.handle)
                            .and_then(|mut peer| peer.send(channel, p))
                            .map_err(|e| e.to_string())
                    });
                match sent {
                    Ok(()) if is_data => released.data += 1,
                    Ok(()) => {
                        released.announcements += 1;
                        released.bytes += payload.len() as u64;
                    }
                    Err(_)
                        if host
                            .peer_info(backlog.handle)
                            .is_ok_and(|i| i.state == enet_wrapper::PeerState::Connected) =>
                    {
                        // This packet only (a channel the connection lacks).
                        log::debug!("a packet held for peer slot {index} could not be sent");
                    }
                    Err(e) => {
                        // Not connected any more (disconnecting): the rest is moot too.
                        log::debug!("backlog of peer slot {index} dropped: {e}");
                        gone = true;
                        break;
                    }
                }
            }
            if gone || backlog.items.is_empty() {
                self.slots[index].backlog = None;
                self.waiting.swap_remove(i);
            } else {
                i += 1;
            }
        }
        released
    }
}

/// Announcements ENet may be handed for `handle` now: none while it has commands it has not
/// sent yet (it is behind), else what keeps the unacknowledged ones under the budget.
fn room_for(host: &Host, handle: PeerHandle) -> u32 {
    match host.outgoing(handle) {
        Ok(out) if !out.unsent => {
            let in_flight = host
                .reliable_in_flight(handle, CHANNEL_CONFIG)
                .unwrap_or(IN_FLIGHT_BUDGET);
            IN_FLIGHT_BUDGET.saturating_sub(in_flight)
        }
        _ => 0,
    }
}

/// `handle`'s entry in `slots`, made if the list is shorter.
fn slot_of(slots: &mut Vec<Slot>, handle: PeerHandle) -> &mut Slot {
    let index = usize::from(handle.index());
    if slots.len() <= index {
        slots.resize_with(index + 1, Slot::default);
    }
    &mut slots[index]
}

/// What one [`Pacing::release`] handed to ENet.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Released {
    pub(crate) announcements: u64,
    pub(crate) bytes: u64,
    pub(crate) data: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use enet_wrapper::{Event, HostConfig};
    use std::time::{Duration, Instant};

    #[test]
    fn removes_and_adds_keep_their_ids() {
        for id in [1u32, 2, 0x7fff_ffff] {
            assert_eq!((id & !REMOVE) | REMOVE, id | REMOVE);
            assert_eq!((id | REMOVE) & !REMOVE, id);
            assert_ne!(id, DATA);
        }
    }

    /// A server host and a client host connected over loopback; the server's handle of it.
    fn pair() -> (Host, Host, PeerHandle) {
        let mut server = Host::new(
            &HostConfig::server("127.0.0.1:0".parse().unwrap())
                .peer_limit(4)
                .channel_limit(3),
        )
        .unwrap();
        let port = server.local_address().unwrap().port();
        let mut client = Host::new(&HostConfig::client().channel_limit(3)).unwrap();
        client
            .connect(
                std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port),
                3,
                0,
            )
            .unwrap();
        let start = Instant::now();
        let (mut on_server, mut on_client) = (None, false);
        while on_server.is_none() || !on_client {
            assert!(start.elapsed() < Duration::from_secs(5), "no connection");
            if let Some(Event::Connect { peer, .. }) = server.service(Duration::ZERO).unwrap() {
                on_server = Some(peer);
            }
            if let Some(Event::Connect { .. }) = client.service(Duration::ZERO).unwrap() {
                on_client = true;
            }
        }
        (server, client, on_server.unwrap())
    }

    /// 5000 announcements and then a packet for one client: they arrive in order, the packet
    /// last, while ENet never holds more than twice the budget for the client.
    #[test]
    fn a_long_backlog_goes_out_in_order_a_window_at_a_time() {
        let (mut server, mut client, handle) = pair();
        let mut pacing = Pacing::default();
        let n = 5000u32;
        for id in 2..2 + n {
            let message = if id % 7 == 0 {
                SystemMessage::RemovePeer(id)
            } else {
                SystemMessage::AddPeer(id)
            };
            pacing.announce(handle, message);
        }
        assert!(pacing.holds(handle));
        assert_eq!(pacing.held_bytes(handle), n as usize * SYSTEM_MESSAGE_LEN);
        // Sent while the backlog waits: held behind it.
        let sent = pacing.send_many(
            &mut server,
            [handle],
            1,
            Packet::new(b"after", PacketFlags::RELIABLE).unwrap(),
        );
        assert_eq!(sent, 1);
        let mut got = Vec::new();
        let mut most_in_enet = 0;
        let mut most_in_flight = 0;
        let start = Instant::now();
        while got.len() < n as usize + 1 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "got {}",
                got.len()
            );
            pacing.release(&mut server);
            most_in_enet = most_in_enet.max(server.queued_bytes(handle, usize::MAX).unwrap());
            server.flush();
            most_in_flight =
                most_in_flight.max(server.reliable_in_flight(handle, CHANNEL_CONFIG).unwrap());
            while server.service(Duration::ZERO).unwrap().is_some() {}
            while let Some(e) = client.service(Duration::ZERO).unwrap() {
                if let Event::Receive {
                    channel, packet, ..
                } = e
                {
                    got.push((channel, packet.data().to_vec()));
                }
            }
        }
        for (k, id) in (2..2 + n).enumerate() {
            let want = if id % 7 == 0 {
                SystemMessage::RemovePeer(id)
            } else {
                SystemMessage::AddPeer(id)
            };
            assert_eq!(got[k], (CHANNEL_CONFIG, want.encode().to_vec()), "#{k}");
        }
        assert_eq!(got[n as usize], (1, b"after".to_vec()));
        assert!(
            most_in_flight <= IN_FLIGHT_BUDGET,
            "{most_in_flight} announcements unacknowledged at once"
        );
        assert!(
            most_in_enet <= IN_FLIGHT_BUDGET as usize * SYSTEM_MESSAGE_LEN,
            "{most_in_enet} bytes in ENet at once"
        );
        assert!(!pacing.holds(handle) && pacing.is_empty());
        // Nothing waits now: a packet goes straight to ENet again.
        pacing.send_many(
            &mut server,
            [handle],
            1,
            Packet::new(b"direct", PacketFlags::RELIABLE).unwrap(),
        );
        assert!(server.queued_bytes(handle, usize::MAX).unwrap() >= 6);
    }

    /// A join storm's passes: once ENet holds a budget's worth for a client, its next
    /// announcements go to its backlog, not straight to ENet.
    #[test]
    fn direct_announcements_stop_while_enet_is_behind_with_a_client() {
        let (mut server, _client, handle) = pair();
        let mut pacing = Pacing::default();
        pacing.begin_pass();
        assert!(
            pacing.direct(&server, handle),
            "caught up: straight to ENet"
        );
        // The client never services its host: nothing is acknowledged.
        for id in 0..IN_FLIGHT_BUDGET {
            let encoded = SystemMessage::AddPeer(id + 2).encode();
            let packet = Packet::new(&encoded, PacketFlags::RELIABLE).unwrap();
            server
                .peer_mut(handle)
                .unwrap()
                .send(CHANNEL_CONFIG, packet)
                .unwrap();
        }
        server.flush();
        pacing.begin_pass();
        assert!(
            !pacing.direct(&server, handle),
            "ENet is a budget behind: into the backlog"
        );
    }

    #[test]
    fn a_backlog_is_forgotten_with_its_connection() {
        let (mut server, _client, handle) = pair();
        let mut pacing = Pacing::default();
        pacing.announce(handle, SystemMessage::AddPeer(5));
        pacing.forget(handle);
        assert!(pacing.is_empty() && !pacing.holds(handle));
        // A backlog of a connection that ended is dropped at the next release.
        pacing.announce(handle, SystemMessage::AddPeer(6));
        server.peer_mut(handle).unwrap().disconnect_now(0);
        pacing.release(&mut server);
        assert!(pacing.is_empty());
    }
}
