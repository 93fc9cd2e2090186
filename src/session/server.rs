//! The server's side of a session: who is connected over which link, and what that implies.

use crate::error::{Error, Result};
use crate::peer::{
    generate_unique_id, PeerEvent, PeerId, PeerQueues, Refusal, Target, MAX_PEER_ID, SERVER_ID,
};
use crate::relay::{self, DropCounts, DropReason, Forward, Route};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How a server admits and relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Most clients connected at once (default 32, as Godot's `create_server`).
    pub max_clients: usize,
    /// Relay client-to-client packets and announce peers to each other (Godot's
    /// `server_relay`, default on).
    pub relay: bool,
    /// Packets per second accepted from one client; the excess is dropped and counted.
    pub rate_limit: Option<u32>,
    /// Most clients at once from one IP address (default: no limit).
    pub max_clients_per_address: Option<usize>,
    /// Most connections accepted per second from one IP address, refused ones included
    /// (default: no limit).
    pub connects_per_address_per_second: Option<u32>,
    /// Gated admission (default off): a new client is connected (its `PeerConnected` is
    /// queued, the server hears it) but not admitted: the others are not told of it, it is not
    /// told of them, nothing it sends reaches them and no broadcast reaches it, until the
    /// application [`approve`](ServerSession::approve)s it (after checking a join token, for
    /// example) or [`reject`](ServerSession::reject)s it.
    pub gated: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_clients: 32,
            relay: true,
            rate_limit: None,
            max_clients_per_address: None,
            connects_per_address_per_second: None,
            gated: false,
        }
    }
}

/// A system message for clients: a peer joined or left (ENet's ADD_PEER / REMOVE_PEER,
/// WebSocket's SYS_ADD / SYS_DEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Announcement {
    /// This peer is now connected.
    Add(PeerId),
    /// This peer left.
    Remove(PeerId),
}

/// What a link received, as far as the rules care: the transport decoded its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Data on the system channel, which clients may not use (ENet channel 0).
    Config,
    /// Shorter than the framing's header.
    Short,
    /// A data packet with its header's source and target (Godot's integer).
    Data {
        /// Who the client says it is.
        source: u32,
        /// Godot's target integer.
        target: i32,
    },
}

/// A received packet the rules let through: who sent it and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The sender's id.
    pub from: PeerId,
    /// Whether the server's application gets it, and which clients it is forwarded to.
    pub route: Route,
}

/// Refused connections by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefusalCounts {
    /// An id below 2 or above 2^31-1.
    pub invalid_id: u64,
    /// An id another client holds.
    pub id_in_use: u64,
    /// While refusing new connections.
    pub not_accepting: u64,
    /// At the client limit.
    pub server_full: u64,
    /// At the limit of clients from one address.
    pub too_many_from_address: u64,
    /// Over the connection rate of one address.
    pub connecting_too_often: u64,
    /// Not admitted by a gated server: invalid or expired join token.
    pub not_authorized: u64,
    /// Not admitted by a gated server: nothing in time.
    pub admission_timeout: u64,
}

impl RefusalCounts {
    /// Every refusal.
    pub fn total(&self) -> u64 {
        self.invalid_id
            + self.id_in_use
            + self.not_accepting
            + self.server_full
            + self.too_many_from_address
            + self.connecting_too_often
            + self.not_authorized
            + self.admission_timeout
    }

    /// The count for one reason.
    pub fn get(&self, refusal: Refusal) -> u64 {
        match refusal {
            Refusal::InvalidId => self.invalid_id,
            Refusal::IdInUse => self.id_in_use,
            Refusal::NotAccepting => self.not_accepting,
            Refusal::ServerFull => self.server_full,
            Refusal::TooManyFromAddress => self.too_many_from_address,
            Refusal::ConnectingTooOften => self.connecting_too_often,
            Refusal::NotAuthorized => self.not_authorized,
            Refusal::AdmissionTimeout => self.admission_timeout,
        }
    }

    fn add(&mut self, refusal: Refusal) {
        *match refusal {
            Refusal::InvalidId => &mut self.invalid_id,
            Refusal::IdInUse => &mut self.id_in_use,
            Refusal::NotAccepting => &mut self.not_accepting,
            Refusal::ServerFull => &mut self.server_full,
            Refusal::TooManyFromAddress => &mut self.too_many_from_address,
            Refusal::ConnectingTooOften => &mut self.connecting_too_often,
            Refusal::NotAuthorized => &mut self.not_authorized,
            Refusal::AdmissionTimeout => &mut self.admission_timeout,
        } += 1;
    }
}

#[derive(Debug)]
struct Client<L> {
    link: L,
    /// The address it connected from, when the transport said.
    address: Option<IpAddr>,
    /// Admitted: announced, relayed (always, unless the session is gated).
    admitted: bool,
    drops: DropCounts,
    /// Start of the current rate-limit window, and packets in it.
    window: Option<(Instant, u32)>,
}

/// One announcement waiting to be sent, to the clients that were there when it was made.
#[derive(Debug)]
struct Pending {
    what: Announcement,
    to: Recipients,
}

#[derive(Debug)]
enum Recipients {
    One(PeerId),
    Many(Vec<PeerId>),
}

/// Capacity of the pending announcements kept after they went out (more is freed).
const PENDING_KEPT: usize = 4096;

/// The server's side of a session over links of type `L`. See the [module docs](super).
#[derive(Debug)]
pub struct ServerSession<L> {
    config: ServerConfig,
    refuse: bool,
    /// Connected clients, ascending (Godot walks them in this order).
    clients: BTreeMap<PeerId, Client<L>>,
    links: HashMap<L, PeerId, ahash::RandomState>,
    pending: Vec<Pending>,
    scratch: Vec<L>,
    queues: PeerQueues,
    refused: RefusalCounts,
    drops: DropCounts,
    /// Clients connected from each address (only while a per-address limit is set).
    per_address: HashMap<IpAddr, usize, ahash::RandomState>,
    /// Each address's current one-second window of connection attempts: (start, count).
    attempts: HashMap<IpAddr, (Instant, u32), ahash::RandomState>,
}

/// Addresses whose attempt windows are kept before the old ones are swept out.
const ATTEMPT_WINDOWS_KEPT: usize = 4096;

/// The window of the per-address connection rate.
const SECOND: Duration = Duration::from_secs(1);

impl<L: Copy + Eq + Hash> ServerSession<L> {
    /// An empty session.
    pub fn new(config: ServerConfig) -> ServerSession<L> {
        ServerSession {
            config,
            refuse: false,
            clients: BTreeMap::new(),
            links: HashMap::default(),
            pending: Vec::new(),
            scratch: Vec::new(),
            queues: PeerQueues::default(),
            refused: RefusalCounts::default(),
            drops: DropCounts::default(),
            per_address: HashMap::default(),
            attempts: HashMap::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Refuses (or again accepts) new connections.
    pub fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
    }

    /// Whether new connections are refused.
    pub fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    /// The events and the packets for the server's own application.
    pub fn queues(&self) -> &PeerQueues {
        &self.queues
    }

    /// The same, mutably (a driver queues the packets [`receive`](Self::receive) routes to the
    /// server; the application takes events and packets).
    pub fn queues_mut(&mut self) -> &mut PeerQueues {
        &mut self.queues
    }

    /// Connected client ids, ascending.
    pub fn peer_ids(&self) -> impl ExactSizeIterator<Item = PeerId> + '_ {
        self.clients.keys().copied()
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether `id` is a connected client.
    pub fn contains(&self, id: PeerId) -> bool {
        self.clients.contains_key(&id)
    }

    /// The link of a connected client.
    pub fn link_of(&self, id: PeerId) -> Option<L> {
        self.clients.get(&id).map(|c| c.link)
    }

    /// The client on a link.
    pub fn peer_of(&self, link: &L) -> Option<PeerId> {
        self.links.get(link).copied()
    }

    /// Packets dropped from a connected client, by reason.
    pub fn drops_of(&self, id: PeerId) -> Option<&DropCounts> {
        self.clients.get(&id).map(|c| &c.drops)
    }

    /// Packets dropped from every client, by reason, since the session began.
    pub fn drops(&self) -> &DropCounts {
        &self.drops
    }

    /// Connections refused, by reason, since the session began.
    pub fn refused(&self) -> &RefusalCounts {
        &self.refused
    }

    // ---- inputs from the transport --------------------------------------------------------

    /// A link connected, claiming `claimed` as its id (an ENet client chooses its own), or
    /// with `None` for the server to choose one no client has (WebSocket). Admits it or says
    /// why not: refusing new connections, an id outside 2..=2^31-1, an id in use, the client
    /// limit, in that order. Admitting queues `PeerConnected` and, when relaying, the
    /// announcements (the others learn of it, it learns of each of them, ascending). The
    /// driver disconnects a refused link with [`DisconnectReason::Refused`](crate::DisconnectReason).
    pub fn connect(
        &mut self,
        link: L,
        claimed: Option<PeerId>,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        self.connect_from(link, claimed, None, now)
    }

    /// [`connect`](Self::connect) from a known IP address, held against the per-address
    /// limits of the [`ServerConfig`] as well: the connection rate (every attempt counts,
    /// refused or not) right after refusing new connections, the number of clients from the
    /// address after the id checks.
    pub fn connect_from(
        &mut self,
        link: L,
        claimed: Option<PeerId>,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<PeerId, Refusal> {
        let too_often = address.is_some_and(|a| self.attempt(a, now));
        let crowded = address.is_some_and(|a| {
            self.config
                .max_clients_per_address
                .is_some_and(|max| self.per_address.get(&a).copied().unwrap_or(0) >= max)
        });
        let refusal = if self.refuse {
            Some(Refusal::NotAccepting)
        } else if too_often {
            Some(Refusal::ConnectingTooOften)
        } else {
            match claimed {
                Some(id) if !(2..=MAX_PEER_ID).contains(&id) => Some(Refusal::InvalidId),
                Some(id) if self.clients.contains_key(&id) => Some(Refusal::IdInUse),
                _ if crowded => Some(Refusal::TooManyFromAddress),
                _ if self.clients.len() >= self.config.max_clients => Some(Refusal::ServerFull),
                _ if self.links.contains_key(&link) => Some(Refusal::IdInUse),
                _ => None,
            }
        };
        if let Some(refusal) = refusal {
            self.refused.add(refusal);
            return Err(refusal);
        }
        let id = claimed.unwrap_or_else(|| loop {
            let id = generate_unique_id();
            if !self.clients.contains_key(&id) {
                break id;
            }
        });
        if !self.config.gated {
            self.announce_arrival(id);
        }
        if let (Some(a), Some(_)) = (address, self.config.max_clients_per_address) {
            *self.per_address.entry(a).or_insert(0) += 1;
        }
        self.clients.insert(
            id,
            Client {
                link,
                address,
                admitted: !self.config.gated,
                drops: DropCounts::default(),
                window: None,
            },
        );
        self.links.insert(link, id);
        // The driver logs the arrival, with the address it knows (one line per event).
        log::debug!(
            "peer {id} connected{}",
            if self.config.gated {
                " (waiting for admission)"
            } else {
                ""
            }
        );
        self.queues.push_event(PeerEvent::PeerConnected(id));
        Ok(id)
    }

    /// A gated session: admits a connected client. The others are told of it and it of them,
    /// in Godot's order, and its packets and theirs flow from now on. Admitting an admitted
    /// client does nothing.
    pub fn approve(&mut self, id: PeerId) -> Result<()> {
        let client = self.clients.get(&id).ok_or(Error::UnknownPeer(id))?;
        if client.admitted {
            return Ok(());
        }
        self.announce_arrival(id);
        if let Some(c) = self.clients.get_mut(&id) {
            c.admitted = true;
        }
        log::debug!("peer {id} admitted");
        Ok(())
    }

    /// A client the application will not have: counted as refused for `refusal`; returns its
    /// link for the driver to disconnect with [`DisconnectReason::Refused`](crate::DisconnectReason)
    /// (the client stays until the transport reports the link gone, as for a kick).
    pub fn reject(&mut self, id: PeerId, refusal: Refusal) -> Result<L> {
        let link = self.link_of(id).ok_or(Error::UnknownPeer(id))?;
        self.refused.add(refusal);
        log::debug!("peer {id} rejected: {refusal:?}");
        Ok(link)
    }

    /// Whether a connected client is admitted (always, unless the session is gated).
    pub fn is_admitted(&self, id: PeerId) -> bool {
        self.clients.get(&id).is_some_and(|c| c.admitted)
    }

    /// Queues the announcements of `id`'s arrival to the admitted clients (not yet `id` itself
    /// if it is already in the map): they learn of it, it learns of each of them, ascending.
    fn announce_arrival(&mut self, id: PeerId) {
        if !self.config.relay {
            return;
        }
        let others: Vec<PeerId> = self
            .clients
            .iter()
            .filter(|(other, c)| **other != id && c.admitted)
            .map(|(other, _)| *other)
            .collect();
        if others.is_empty() {
            return;
        }
        for &other in &others {
            self.pending.push(Pending {
                what: Announcement::Add(other),
                to: Recipients::One(id),
            });
        }
        self.pending.insert(
            self.pending.len() - others.len(),
            Pending {
                what: Announcement::Add(id),
                to: Recipients::Many(others),
            },
        );
    }

    /// A link is gone (disconnected, timed out, reset). If it carried a client that was not
    /// already removed (a forced kick), the others are told and `PeerDisconnected` is queued:
    /// exactly once per client, whatever ended it. Returns that client.
    pub fn link_closed(&mut self, link: &L) -> Option<PeerId> {
        let id = self.links.get(link).copied()?;
        self.remove(id);
        log::info!("peer {id} disconnected");
        self.queues.push_event(PeerEvent::PeerDisconnected(id));
        Some(id)
    }

    /// What arrived on `link` at `now`: checks the sender (an admitted link), the rate limit,
    /// the system channel, the header, the claimed source and the target, counting and logging
    /// each drop by reason; and routes what passes (PROTOCOL.md).
    pub fn receive(
        &mut self,
        link: &L,
        inbound: Inbound,
        now: Instant,
    ) -> Result<Accepted, DropReason> {
        let Some(&id) = self.links.get(link) else {
            return Err(self.drop_packet(None, DropReason::UnknownSender, "not an admitted link"));
        };
        if let Some(limit) = self.config.rate_limit {
            let client = self.clients.get_mut(&id).expect("a link's client exists");
            let window = client.window.get_or_insert((now, 0));
            if now.saturating_duration_since(window.0) >= Duration::from_secs(1) {
                *window = (now, 0);
            }
            window.1 += 1;
            if window.1 > limit {
                return Err(self.drop_packet(Some(id), DropReason::RateLimited, "over the limit"));
            }
        }
        let (source, target) = match inbound {
            Inbound::Config => {
                return Err(self.drop_packet(Some(id), DropReason::ConfigChannel, "channel 0"))
            }
            Inbound::Short => {
                return Err(self.drop_packet(Some(id), DropReason::ShortPacket, "no header"))
            }
            Inbound::Data { source, target } => (source, target),
        };
        if source != id {
            let detail = format!("claims to be {source}");
            return Err(self.drop_packet(Some(id), DropReason::SpoofedSource, &detail));
        }
        let clients = &self.clients;
        // Only admitted clients are targets a client may name.
        let routed = relay::route(id, target, self.config.relay, |c| {
            clients.get(&c).is_some_and(|c| c.admitted)
        });
        match routed {
            Ok(mut route) => {
                if !self.is_admitted(id) && route.forward != Forward::Nobody {
                    // Not admitted yet: only the server hears it.
                    if !route.local {
                        let detail = format!("target {target} before admission");
                        return Err(self.drop_packet(Some(id), DropReason::NotAdmitted, &detail));
                    }
                    route.forward = Forward::Nobody;
                }
                Ok(Accepted { from: id, route })
            }
            Err(reason) => {
                let detail = format!("target {target}");
                Err(self.drop_packet(Some(id), reason, &detail))
            }
        }
    }

    /// Counts a packet the transport itself refused (for example ENet's oversize payloads),
    /// against the client on `link` if there is one.
    pub fn count_drop(&mut self, link: &L, reason: DropReason, detail: &str) {
        let id = self.links.get(link).copied();
        self.drop_packet(id, reason, detail);
    }

    fn drop_packet(
        &mut self,
        from: Option<PeerId>,
        reason: DropReason,
        detail: &str,
    ) -> DropReason {
        self.drops.add(reason);
        let nth = match from.and_then(|id| self.clients.get_mut(&id)) {
            Some(c) => {
                c.drops.add(reason);
                c.drops.get(reason)
            }
            None => self.drops.get(reason),
        };
        relay::log_drop(from, reason, nth, detail);
        reason
    }

    // ---- outputs for the transport --------------------------------------------------------

    /// The links a routed packet goes to, ascending by client id.
    pub fn forward_links(&self, forward: Forward) -> impl Iterator<Item = L> + '_ {
        // One destination is one look-up; only "all but" walks the clients.
        let (one, all) = match forward {
            Forward::One(id) => (self.clients.get(&id).map(|c| c.link), None),
            Forward::AllExcept { .. } => (None, Some(self.clients.iter())),
            Forward::Nobody => (None, None),
        };
        one.into_iter().chain(
            all.into_iter()
                .flatten()
                .filter(move |(id, c)| c.admitted && forward.includes(**id))
                .map(|(_, c)| c.link),
        )
    }

    /// Checks a send of the server's application (Godot's rules: the server cannot target
    /// itself and names only connected clients) and returns the Godot integer for the header
    /// with the links it goes to.
    pub fn send_links(&self, target: Target) -> Result<(i32, impl Iterator<Item = L> + '_)> {
        let (target, int) = crate::peer::check_target(target, SERVER_ID, |id| self.contains(id))?;
        let forward = match target {
            Target::Peer(id) => Forward::One(id),
            Target::AllExcept(id) => Forward::AllExcept {
                sender: SERVER_ID,
                also: Some(id),
            },
            _ => Forward::AllExcept {
                sender: SERVER_ID,
                also: None,
            },
        };
        Ok((int, self.forward_links(forward)))
    }

    /// Hands each queued announcement to `send` with the links it goes to (in the order made,
    /// which is Godot's for every recipient), then forgets them. Clients that left since are
    /// left out; an announcement nobody is left to receive is skipped. A driver calls this
    /// once its events are handled, so the announcements of a whole poll leave together.
    pub fn drain_announcements(&mut self, mut send: impl FnMut(Announcement, &[L])) {
        let mut links = std::mem::take(&mut self.scratch);
        for pending in self.pending.drain(..) {
            links.clear();
            let ids: &[PeerId] = match &pending.to {
                Recipients::One(id) => std::slice::from_ref(id),
                Recipients::Many(ids) => ids,
            };
            links.extend(
                ids.iter()
                    .filter_map(|id| self.clients.get(id).map(|c| c.link)),
            );
            if !links.is_empty() {
                send(pending.what, &links);
            }
        }
        self.scratch = links;
        // A join storm of N clients queues about N²/2 of them (16 MB for 1000): give the
        // room back rather than keep it for the next storm.
        if self.pending.capacity() > PENDING_KEPT {
            self.pending = Vec::new();
        }
    }

    /// Whether announcements wait for [`drain_announcements`](Self::drain_announcements).
    pub fn has_announcements(&self) -> bool {
        !self.pending.is_empty()
    }

    // ---- the application's calls ----------------------------------------------------------

    /// Godot's `disconnect_peer(id, force)`: returns the link the driver disconnects (with
    /// [`DisconnectReason::Kicked`](crate::DisconnectReason)). With `force` the client is
    /// removed at once and silently (the others are still told); without, it stays until the
    /// transport reports the link gone, and its `PeerDisconnected` follows then.
    pub fn kick(&mut self, id: PeerId, force: bool) -> Result<L> {
        let link = self.link_of(id).ok_or(Error::UnknownPeer(id))?;
        if force {
            self.remove(id);
            log::info!("peer {id} kicked");
        }
        Ok(link)
    }

    /// Godot's `close()`: every client forgotten at once, silently; returns their links for
    /// the driver to disconnect. Queued events, packets and announcements are discarded.
    pub fn close(&mut self) -> Vec<L> {
        let links = self.clients.values().map(|c| c.link).collect();
        self.clients.clear();
        self.links.clear();
        self.per_address.clear();
        self.pending.clear();
        self.queues.clear();
        links
    }

    /// Counts a connection attempt from `address` at `now`; true when it is over the rate.
    fn attempt(&mut self, address: IpAddr, now: Instant) -> bool {
        let Some(limit) = self.config.connects_per_address_per_second else {
            return false;
        };
        if self.attempts.len() >= ATTEMPT_WINDOWS_KEPT {
            // Bounded memory under a flood from many addresses: forget finished windows.
            self.attempts
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < SECOND);
        }
        let window = self.attempts.entry(address).or_insert((now, 0));
        if now.saturating_duration_since(window.0) >= SECOND {
            *window = (now, 0);
        }
        window.1 += 1;
        window.1 > limit
    }

    fn remove(&mut self, id: PeerId) {
        if let Some(client) = self.clients.remove(&id) {
            self.links.remove(&client.link);
            if let Some(a) = client.address {
                if let Some(n) = self.per_address.get_mut(&a) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_address.remove(&a);
                    }
                }
            }
            // Only an admitted client was ever announced.
            if self.config.relay && client.admitted && !self.clients.is_empty() {
                self.pending.push(Pending {
                    what: Announcement::Remove(id),
                    to: Recipients::Many(
                        self.clients
                            .iter()
                            .filter(|(_, c)| c.admitted)
                            .map(|(id, _)| *id)
                            .collect(),
                    ),
                });
            }
        }
    }
}
