//! `CustomMultiplayerPeer`: Godot 3's `NetworkedMultiplayerCustom`. The application is the
//! transport: it moves bytes however it likes (a lobby service, a relay, a platform SDK, a test
//! harness) and this peer gives the game Godot's semantics on top: ids, the connection status
//! state machine, peer events, targets, transfer modes, logical channels and typed errors.
//!
//! See [`CustomMultiplayerPeer`] for the state machine, the application's side of the contract
//! and an example of a game switching transports at run time.

use crate::error::{Error, NotAllowed, Result};
use crate::peer::{
    ConnectionStatus, DisconnectReason, MultiplayerPeer, Packet, PeerEvent, PeerId, PeerQueues,
    Polled, Refusal, SendSettings, Target, TransferMode, MAX_PEER_ID, SERVER_ID,
};
use crate::relay::DropReason;
use crate::session::{
    Announcement, ClientSession, Inbound, Limits, PeerRejected, ServerConfig, ServerSession,
};
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// The default largest payload: the same as [`ENetMultiplayerPeer`](crate::ENetMultiplayerPeer)'s,
/// so a game that switches transports keeps its limit.
const DEFAULT_MAX_PACKET_SIZE: usize = crate::protocol::DEFAULT_MAX_PAYLOAD;

/// The most logical channels a custom peer can have (channels are `u8`, 0..=255).
const MAX_LOGICAL_CHANNELS: u16 = 256;

/// A packet the game sent, for the application to carry (Godot's `packet_generated` signal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPacket {
    /// The sender: this peer's own id, or for a packet a relaying server forwards, the client
    /// that sent it.
    pub from: PeerId,
    /// Where it goes, already validated and normalized (`Peer(1)` is written [`Target::Server`]),
    /// so [`Target::to_godot`] always gives its Godot integer.
    pub target: Target,
    /// How it should travel.
    pub mode: TransferMode,
    /// The logical channel (below the peer's logical channel count).
    pub channel: u8,
    /// The payload.
    pub data: Bytes,
}

/// What a [`CustomMultiplayerPeer`] asks its application to do, in the order the game asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// Carry this packet to its target (Godot's `packet_generated`).
    Packet(OutgoingPacket),
    /// The game called `disconnect_peer(peer, force)`: end the connection to `peer` (on a
    /// client, `peer` is 1: leave the server). The peer has already forgotten `peer`; the
    /// application must not call [`remove_peer`](CustomMultiplayerPeer::remove_peer) for it.
    Disconnect {
        /// Who to disconnect.
        peer: PeerId,
        /// Whether the game asked for an immediate, silent disconnect.
        force: bool,
    },
    /// The game called `close()` while connecting or connected: end every connection.
    Close,
    /// A relaying server tells client `to` that a peer joined or left: the application hands
    /// it to that client's [`add_peer`](CustomMultiplayerPeer::add_peer) or
    /// [`remove_peer`](CustomMultiplayerPeer::remove_peer). In Godot's order for every client.
    Announce {
        /// The client to tell.
        to: PeerId,
        /// Who joined or left.
        what: Announcement,
    },
}

type PacketGenerated = Box<dyn FnMut(Outgoing) + Send>;

/// The session core of a connected custom peer, by role (links are peer ids: the application
/// names its peers by id).
#[derive(Debug)]
enum Session {
    None,
    Server(Box<ServerSession<PeerId>>),
    Client(ClientSession),
}

/// Builds a [`CustomMultiplayerPeer`]; start with [`CustomMultiplayerPeer::builder`].
///
/// ```
/// use enet_multiplayer::{CustomMultiplayerPeer, MultiplayerPeer};
/// let peer = CustomMultiplayerPeer::builder()
///     .logical_channels(3)
///     .max_packet_size(1200)
///     .server_relay(true)
///     .build()?;
/// assert_eq!(peer.logical_channels(), 3);
/// assert_eq!(peer.max_packet_size(), 1200);
/// assert!(peer.is_server_relay_supported());
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CustomBuilder {
    logical_channels: u16,
    max_packet_size: usize,
    server_relay: bool,
}

impl Default for CustomBuilder {
    fn default() -> CustomBuilder {
        CustomBuilder {
            logical_channels: 1,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            server_relay: false,
        }
    }
}

impl CustomBuilder {
    /// How many logical channels the game may use, 1..=256 (default 1: only channel 0).
    /// Sending or delivering on channel `n` needs `n < count`.
    pub fn logical_channels(mut self, count: u16) -> Self {
        self.logical_channels = count;
        self
    }

    /// The largest payload in bytes, at least 1 (default: the same as the ENet peer's default,
    /// [`CustomMultiplayerPeer::DEFAULT_MAX_PACKET_SIZE`]). Can be changed later with
    /// [`CustomMultiplayerPeer::set_max_packet_size`].
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Server: relay (default false). A relaying server announces its clients to each other
    /// ([`Outgoing::Announce`]) and forwards what [`relay`](CustomMultiplayerPeer::relay)
    /// hands it by PROTOCOL.md's rules; it is what
    /// [`is_server_relay_supported`](MultiplayerPeer::is_server_relay_supported) reports.
    pub fn server_relay(mut self, on: bool) -> Self {
        self.server_relay = on;
        self
    }

    /// Creates the peer, DISCONNECTED, or [`Error::InvalidConfig`].
    pub fn build(self) -> Result<CustomMultiplayerPeer> {
        if !(1..=MAX_LOGICAL_CHANNELS).contains(&self.logical_channels) {
            return Err(Error::InvalidConfig(format!(
                "{} logical channels is outside 1..={MAX_LOGICAL_CHANNELS}",
                self.logical_channels
            )));
        }
        if self.max_packet_size == 0 {
            return Err(Error::InvalidConfig("max packet size 0".into()));
        }
        Ok(CustomMultiplayerPeer::from_config(&self))
    }
}

/// Godot 3's `NetworkedMultiplayerCustom`: a [`MultiplayerPeer`] whose transport is the
/// application.
///
/// # The application's side
/// - **Connecting.** [`set_connection_status`](Self::set_connection_status)`(Connecting)`, then
///   [`initialize`](Self::initialize) with the id the transport settled on (1 for the server,
///   2..=2^31-1 for a client), then `set_connection_status(Connected)`.
/// - **Peers.** [`add_peer`](Self::add_peer) and [`remove_peer`](Self::remove_peer) when peers
///   join and leave: on a server its clients, on a client the other clients (the server, id 1,
///   is implicitly connected to a client). Each fires `PeerConnected` / `PeerDisconnected`
///   exactly once; a duplicate or unknown id is a typed error.
/// - **Incoming.** [`deliver`](Self::deliver) (or Godot's [`deliver_packet`](Self::deliver_packet),
///   channel 0, reliable) hands received bytes in with their sender. The sender must be
///   connected: on a server one of the added clients; on a client the server, an added client
///   or itself (a packet a client addressed to itself comes back, as from Godot's server).
///   Anything else is not queued and returns [`Error::UnknownPeer`]: the application decides
///   whether to log it, count it or drop the connection.
/// - **Outgoing.** What the game sends comes out as [`Outgoing`] items, in order: drain them with
///   [`pop_outgoing`](Self::pop_outgoing) / [`take_outgoing`](Self::take_outgoing), or receive
///   each at once through [`set_packet_generated`](Self::set_packet_generated) (Godot's
///   `packet_generated` signal). Besides packets they carry the game's `disconnect_peer` and
///   `close` requests.
///
/// This peer relays nothing: on a server, a packet a client addressed to another client must be
/// forwarded by the application (see [`relay::route`](crate::relay::route) for the rules of
/// PROTOCOL.md). [`poll`](MultiplayerPeer::poll) does nothing: delivered packets and events are
/// queued at once.
///
/// # The connection status state machine
/// | from \ to | Disconnected | Connecting | Connected |
/// |---|---|---|---|
/// | **Disconnected** | error | ok, no event | error |
/// | **Connecting** | ok, `ConnectionFailed` | error | ok after `initialize`: a client gets `PeerConnected(1)` then `ConnectionSucceeded`, a server (id 1) nothing |
/// | **Connected** | ok: a client gets `ServerDisconnected`, a server nothing | error | error |
///
/// Refused transitions (staying in the same status included) return
/// [`Error::InvalidTransition`] and change nothing. The server gets no event on reaching
/// Connected, as an [`ENetMultiplayerPeer`](crate::ENetMultiplayerPeer) server gets none when it
/// starts listening: `ConnectionSucceeded` is a client's event. Going to Disconnected forgets the
/// id (it reads 0 again) and every peer, without `PeerDisconnected` events (as ENet); received
/// packets stay queued. The events carry [`DisconnectReason::Unspecified`], or the reason given
/// to [`set_disconnected`](Self::set_disconnected).
///
/// # Example: a game switching transports at run time
/// The game only sees `Box<dyn MultiplayerPeer>`; here it starts alone on an
/// [`OfflineMultiplayerPeer`](crate::OfflineMultiplayerPeer), then joins a lobby whose service
/// is the transport.
///
/// ```
/// use enet_multiplayer::{
///     ConnectionStatus, CustomMultiplayerPeer, MultiplayerPeer, OfflineMultiplayerPeer,
///     Outgoing, PeerEvent, Target, TransferMode,
/// };
/// use std::sync::mpsc;
///
/// /// One frame of the game: it says `line` to everyone and reports what happened.
/// fn frame(peer: &mut dyn MultiplayerPeer, line: &str) -> Vec<String> {
///     let mut log = Vec::new();
///     peer.poll().unwrap();
///     while let Some(event) = peer.pop_event() {
///         log.push(format!("{event:?}"));
///     }
///     while let Some(p) = peer.get_packet() {
///         log.push(format!("{} says {}", p.from, String::from_utf8_lossy(&p.data)));
///     }
///     if let Err(e) = peer.send(Target::Broadcast, TransferMode::Reliable, 0, line.as_bytes()) {
///         log.push(format!("not sent: {e}"));
///     }
///     log
/// }
///
/// // Single player: always connected, id 1, nobody to talk to.
/// let mut peer: Box<dyn MultiplayerPeer> = Box::new(OfflineMultiplayerPeer::new());
/// assert!(peer.is_server());
/// assert!(frame(peer.as_mut(), "anyone?")[0].starts_with("not sent"));
///
/// // The player joins a lobby: the lobby service is the transport. It assigned id 7.
/// let mut lobby = CustomMultiplayerPeer::new();
/// let (to_lobby, lobby_inbox) = mpsc::channel();
/// lobby.set_packet_generated(move |item| to_lobby.send(item).unwrap());
/// lobby.set_connection_status(ConnectionStatus::Connecting)?;
/// lobby.initialize(7)?;
/// lobby.set_connection_status(ConnectionStatus::Connected)?;
/// lobby.deliver_packet(b"welcome", 1)?; // the host (id 1) greeted us
///
/// // Switch transports; the game code does not change.
/// peer = Box::new(lobby);
/// assert_eq!(peer.unique_id(), 7);
/// assert_eq!(
///     frame(peer.as_mut(), "hello lobby"),
///     ["PeerConnected(1)", "ConnectionSucceeded", "1 says welcome"]
/// );
/// // What the game said came out to the lobby service.
/// match lobby_inbox.try_recv().unwrap() {
///     Outgoing::Packet(p) => {
///         assert_eq!((p.from, p.target, &p.data[..]), (7, Target::Broadcast, &b"hello lobby"[..]))
///     }
///     other => panic!("{other:?}"),
/// }
///
/// // Leaving the lobby: back to single player.
/// peer.close();
/// assert_eq!(lobby_inbox.try_recv().unwrap(), Outgoing::Close);
/// peer = Box::new(OfflineMultiplayerPeer::new());
/// assert_eq!(peer.connection_status(), ConnectionStatus::Connected);
/// # Ok::<(), enet_multiplayer::Error>(())
/// ```
pub struct CustomMultiplayerPeer {
    status: ConnectionStatus,
    /// 0 until `initialize`, and again after every move to Disconnected.
    self_id: PeerId,
    /// While CONNECTED: the session core of this peer's role (its peers and Godot's rules).
    session: Session,
    refuse: bool,
    limits: Limits,
    relay: bool,
    queues: PeerQueues,
    settings: SendSettings,
    outgoing: VecDeque<Outgoing>,
    packet_generated: Option<PacketGenerated>,
}

impl fmt::Debug for CustomMultiplayerPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomMultiplayerPeer")
            .field("status", &self.status)
            .field("self_id", &self.self_id)
            .field("peers", &self.peer_ids())
            .field("refuse", &self.refuse)
            .field("limits", &self.limits)
            .field("relay", &self.relay)
            .field("queues", &self.queues)
            .field("settings", &self.settings)
            .field("outgoing", &self.outgoing.len())
            .field("packet_generated", &self.packet_generated.is_some())
            .finish()
    }
}

impl Default for CustomMultiplayerPeer {
    fn default() -> CustomMultiplayerPeer {
        CustomMultiplayerPeer::new()
    }
}

impl CustomMultiplayerPeer {
    /// The default largest payload: the same as the ENet peer's default (ENet's 32 MiB packet
    /// limit minus Godot's 8-byte header), so a game that switches transports keeps its limit.
    pub const DEFAULT_MAX_PACKET_SIZE: usize = DEFAULT_MAX_PACKET_SIZE;

    /// A DISCONNECTED peer with the defaults: 1 logical channel, the default packet size limit,
    /// no server relay reported.
    pub fn new() -> CustomMultiplayerPeer {
        CustomMultiplayerPeer::from_config(&CustomBuilder::default())
    }

    /// A peer from a validated configuration.
    fn from_config(config: &CustomBuilder) -> CustomMultiplayerPeer {
        CustomMultiplayerPeer {
            status: ConnectionStatus::Disconnected,
            self_id: 0,
            session: Session::None,
            refuse: false,
            limits: Limits {
                logical_channels: config.logical_channels,
                max_packet_size: config.max_packet_size,
            },
            relay: config.server_relay,
            queues: PeerQueues::default(),
            settings: SendSettings::default(),
            outgoing: VecDeque::new(),
            packet_generated: None,
        }
    }

    /// A builder for the logical channel count, packet size limit and relay flag.
    pub fn builder() -> CustomBuilder {
        CustomBuilder::default()
    }

    // ---- the state machine ------------------------------------------------------------

    /// Sets this peer's id: 1 for the server, 2..=2^31-1 for a client. Only while CONNECTING
    /// (else [`Error::NotAllowed`]); an id outside 1..=2^31-1 is [`Error::InvalidId`]. May be
    /// called again, until CONNECTED, to change the id.
    pub fn initialize(&mut self, self_id: PeerId) -> Result<()> {
        if self.status != ConnectionStatus::Connecting {
            return Err(Error::NotAllowed(NotAllowed::InitializeWhileNotConnecting));
        }
        if !(1..=MAX_PEER_ID).contains(&self_id) {
            return Err(Error::InvalidId(self_id));
        }
        self.self_id = self_id;
        Ok(())
    }

    /// Moves along the state machine in the type-level table: DISCONNECTED -> CONNECTING ->
    /// CONNECTED, and back to DISCONNECTED from either, with the events listed there. Other
    /// transitions are [`Error::InvalidTransition`]; CONNECTED before [`initialize`](Self::initialize)
    /// is [`Error::NotAllowed`].
    pub fn set_connection_status(&mut self, status: ConnectionStatus) -> Result<()> {
        self.transition(status, DisconnectReason::Unspecified)
    }

    /// Moves to DISCONNECTED, like `set_connection_status(Disconnected)`, with `reason` in the
    /// `ConnectionFailed` / `ServerDisconnected` event (for example
    /// [`DisconnectReason::Kicked`] when the server's application kicked this client).
    pub fn set_disconnected(&mut self, reason: DisconnectReason) -> Result<()> {
        self.transition(ConnectionStatus::Disconnected, reason)
    }

    fn transition(&mut self, to: ConnectionStatus, reason: DisconnectReason) -> Result<()> {
        use ConnectionStatus::{Connected, Connecting, Disconnected};
        let from = self.status;
        match (from, to) {
            (Disconnected, Connecting) => {
                self.status = Connecting;
                log::debug!("custom peer connecting");
            }
            (Connecting, Connected) => {
                if self.self_id == 0 {
                    return Err(Error::NotAllowed(NotAllowed::NotInitialized));
                }
                self.status = Connected;
                log::info!("custom peer connected as {}", self.self_id);
                self.session = if self.self_id == SERVER_ID {
                    let mut server = ServerSession::new(ServerConfig {
                        max_clients: usize::MAX,
                        relay: self.relay,
                        ..ServerConfig::default()
                    });
                    server.set_refuse_new_connections(self.refuse);
                    Session::Server(Box::new(server))
                } else {
                    let mut client = ClientSession::connecting(self.self_id);
                    client.connected();
                    Session::Client(client)
                };
                self.absorb();
            }
            (Connecting, Disconnected) => {
                self.reset();
                log::info!("custom peer: connection failed ({reason:?})");
                self.queues.push_event(PeerEvent::ConnectionFailed(reason));
            }
            (Connected, Disconnected) => {
                log::info!("custom peer disconnected ({reason:?})");
                if let Session::Client(client) = &mut self.session {
                    client.link_closed(reason);
                }
                self.absorb();
                self.reset();
            }
            _ => return Err(Error::InvalidTransition { from, to }),
        }
        Ok(())
    }

    /// Forgets the connection (id and peers); queued packets, events and outgoing items stay.
    fn reset(&mut self) {
        self.status = ConnectionStatus::Disconnected;
        self.self_id = 0;
        self.session = Session::None;
    }

    /// Takes what the session produced: its events and packets into this peer's queues, its
    /// announcements to the application.
    fn absorb(&mut self) {
        let mut announced = Vec::new();
        let queues = match &mut self.session {
            Session::None => return,
            Session::Client(client) => client.queues_mut(),
            Session::Server(server) => {
                server.drain_announcements(|what, to| {
                    announced.extend(to.iter().map(|&to| Outgoing::Announce { to, what }))
                });
                server.queues_mut()
            }
        };
        while let Some(event) = queues.pop_event() {
            self.queues.push_event(event);
        }
        while let Some(packet) = queues.pop_packet() {
            self.queues.push_packet(packet);
        }
        for item in announced {
            self.emit(item);
        }
    }

    // ---- peers --------------------------------------------------------------------------

    /// The application reports that peer `id` joined: on a server a client, on a client another
    /// client (as a relaying server announces it). Queues `PeerConnected(id)`.
    ///
    /// Errors: not CONNECTED ([`Error::NotConnected`]); `id` outside 1..=2^31-1
    /// ([`Error::InvalidId`]); this peer's own id, an already connected peer (on a client the
    /// server, id 1, always is), or a server that
    /// [refuses new connections](MultiplayerPeer::set_refuse_new_connections)
    /// ([`Error::NotAllowed`]).
    pub fn add_peer(&mut self, id: PeerId) -> Result<()> {
        self.require_connected()?;
        if !(1..=MAX_PEER_ID).contains(&id) {
            return Err(Error::InvalidId(id));
        }
        if id == self.self_id {
            return Err(Error::NotAllowed(NotAllowed::OwnId));
        }
        let result = match &mut self.session {
            Session::Server(server) => server
                .connect(id, Some(id), Instant::now())
                .map(|_| ())
                .map_err(|refusal| match refusal {
                    Refusal::NotAccepting => Error::NotAllowed(NotAllowed::RefusingConnections),
                    Refusal::InvalidId => Error::InvalidId(id),
                    Refusal::IdInUse
                    | Refusal::ServerFull
                    | Refusal::TooManyFromAddress
                    | Refusal::ConnectingTooOften
                    | Refusal::NotAuthorized
                    | Refusal::AdmissionTimeout => Error::NotAllowed(NotAllowed::AlreadyConnected),
                }),
            Session::Client(client) => client.peer_added(id).map_err(|why| match why {
                PeerRejected::InvalidId => Error::InvalidId(id),
                _ => Error::NotAllowed(NotAllowed::AlreadyConnected),
            }),
            Session::None => Err(Error::NotConnected(self.status)),
        };
        self.absorb();
        result
    }

    /// The application reports that peer `id` left. Queues `PeerDisconnected(id)`.
    ///
    /// Errors: not CONNECTED ([`Error::NotConnected`]); `id` outside 1..=2^31-1
    /// ([`Error::InvalidId`]); on a client id 1 ([`Error::NotAllowed`]: the server leaving is
    /// `set_connection_status(Disconnected)`); an id that is not connected
    /// ([`Error::UnknownPeer`]).
    pub fn remove_peer(&mut self, id: PeerId) -> Result<()> {
        self.require_connected()?;
        if !(1..=MAX_PEER_ID).contains(&id) {
            return Err(Error::InvalidId(id));
        }
        let result = match &mut self.session {
            Session::Server(server) => server.link_closed(&id).map(|_| ()),
            Session::Client(_) if id == SERVER_ID => {
                return Err(Error::NotAllowed(NotAllowed::RemoveServer))
            }
            Session::Client(client) => client.peer_removed(id).ok(),
            Session::None => None,
        };
        self.absorb();
        result.ok_or(Error::UnknownPeer(id))
    }

    /// A relaying server's application hands it a packet a client sent (as that client's
    /// [`Outgoing::Packet`] carried it). The session core checks and routes it by
    /// PROTOCOL.md's rules: the server's own share is queued for the game, and each client it
    /// is forwarded to gets an [`Outgoing::Packet`] (from the original sender, to
    /// `Target::Peer(that client)`). A packet the rules drop is counted and returned as the
    /// reason. Relay off: only the server's share is kept.
    pub fn relay(&mut self, packet: OutgoingPacket) -> std::result::Result<(), DropReason> {
        let Session::Server(server) = &mut self.session else {
            return Err(DropReason::UnknownSender);
        };
        let target = packet.target.to_godot().ok_or(DropReason::InvalidTarget)?;
        let inbound = Inbound::Data {
            source: packet.from,
            target,
        };
        if self.limits.check_channel(packet.channel).is_err() {
            server.count_drop(
                &packet.from,
                DropReason::ChannelOutOfRange,
                "no such channel",
            );
            return Err(DropReason::ChannelOutOfRange);
        }
        if self.limits.check_size(packet.data.len()).is_err() {
            server.count_drop(&packet.from, DropReason::Oversize, "too large");
            return Err(DropReason::Oversize);
        }
        let accepted = server.receive(&packet.from, inbound, Instant::now())?;
        let forwards: Vec<PeerId> = server.forward_links(accepted.route.forward).collect();
        if accepted.route.local {
            server.queues_mut().push_packet(Packet {
                from: accepted.from,
                channel: packet.channel,
                mode: packet.mode,
                data: packet.data.clone(),
            });
        }
        self.absorb();
        for to in forwards {
            self.emit(Outgoing::Packet(OutgoingPacket {
                target: Target::Peer(to),
                ..packet.clone()
            }));
        }
        Ok(())
    }

    /// Whether `id` is connected: on a server one of its clients; on a client the server or an
    /// added client.
    pub fn has_peer(&self, id: PeerId) -> bool {
        match &self.session {
            Session::Server(server) => server.contains(id),
            Session::Client(client) => client.knows(id),
            Session::None => false,
        }
    }

    /// Ids of the connected peers, ascending: on a server its clients; on a client the server
    /// and the added clients. Empty while not CONNECTED.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        match &self.session {
            Session::Server(server) => server.peer_ids().collect(),
            Session::Client(client) => client.peer_ids(),
            Session::None => Vec::new(),
        }
    }

    fn require_connected(&self) -> Result<()> {
        match self.status {
            ConnectionStatus::Connected => Ok(()),
            other => Err(Error::NotConnected(other)),
        }
    }

    // ---- incoming -----------------------------------------------------------------------

    /// Godot's `deliver_packet(buffer, from_peer_id)`: hands in a packet received from `from`,
    /// as logical channel 0, reliable. See [`deliver`](Self::deliver).
    pub fn deliver_packet(&mut self, data: &[u8], from: PeerId) -> Result<()> {
        self.deliver(
            from,
            0,
            TransferMode::Reliable,
            Bytes::copy_from_slice(data),
        )
    }

    /// Hands in a packet received from `from` on logical `channel` with `mode`; the game gets
    /// it from [`get_packet`](MultiplayerPeer::get_packet) at once.
    ///
    /// Errors, and the packet is not queued: not CONNECTED ([`Error::NotConnected`]); a sender
    /// that is not connected ([`Error::UnknownPeer`]; see the type-level docs); a channel at or
    /// above the logical channel count ([`Error::ChannelOutOfRange`]); a payload above
    /// [`max_packet_size`](MultiplayerPeer::max_packet_size) ([`Error::PacketTooLarge`]).
    pub fn deliver(
        &mut self,
        from: PeerId,
        channel: u8,
        mode: TransferMode,
        data: impl Into<Bytes>,
    ) -> Result<()> {
        self.require_connected()?;
        let known = self.has_peer(from) || (self.self_id != SERVER_ID && from == self.self_id);
        if !known {
            log::debug!("dropped a packet from {from}: not a connected peer");
            return Err(Error::UnknownPeer(from));
        }
        self.limits.check_channel(channel)?;
        let data = data.into();
        self.limits.check_size(data.len())?;
        self.queues.push_packet(Packet {
            from,
            channel,
            mode,
            data,
        });
        Ok(())
    }

    // ---- configuration ------------------------------------------------------------------

    /// Sets the largest payload that sending and delivering accept (at least 1, else
    /// [`Error::InvalidConfig`]).
    pub fn set_max_packet_size(&mut self, bytes: usize) -> Result<()> {
        if bytes == 0 {
            return Err(Error::InvalidConfig("max packet size 0".into()));
        }
        self.limits.max_packet_size = bytes;
        Ok(())
    }

    /// How many logical channels this peer has (set with [`CustomBuilder::logical_channels`]).
    pub fn logical_channels(&self) -> u16 {
        self.limits.logical_channels
    }

    // ---- outgoing -----------------------------------------------------------------------

    /// Takes the oldest item the game generated, if no callback is set.
    pub fn pop_outgoing(&mut self) -> Option<Outgoing> {
        self.outgoing.pop_front()
    }

    /// Takes every waiting item, oldest first.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        self.outgoing.drain(..).collect()
    }

    /// How many items wait in the outgoing queue.
    pub fn outgoing_count(&self) -> usize {
        self.outgoing.len()
    }

    /// Sends every item the game generates to `callback`, at once, instead of queueing it
    /// (Godot's `packet_generated` signal). Items already waiting in the queue go to the callback
    /// first, so the order is kept. Replaces any earlier callback.
    pub fn set_packet_generated(&mut self, callback: impl FnMut(Outgoing) + Send + 'static) {
        let mut callback: PacketGenerated = Box::new(callback);
        for item in self.outgoing.drain(..) {
            callback(item);
        }
        self.packet_generated = Some(callback);
    }

    /// Removes the callback: items are queued again.
    pub fn clear_packet_generated(&mut self) {
        self.packet_generated = None;
    }

    fn emit(&mut self, item: Outgoing) {
        match self.packet_generated.as_mut() {
            Some(callback) => callback(item),
            None => self.outgoing.push_back(item),
        }
    }

    // ---- sending ------------------------------------------------------------------------

    fn send_inner(
        &mut self,
        target: Target,
        mode: TransferMode,
        channel: u8,
        data: &[u8],
    ) -> Result<()> {
        self.require_connected()?;
        let known = |id| match &self.session {
            Session::Server(server) => server.contains(id),
            // The server is named by Target::Server; a client names only announced peers.
            Session::Client(client) => id != SERVER_ID && client.knows(id),
            Session::None => false,
        };
        let (target, _) =
            self.limits
                .check_send(self.self_id, known, target, channel, data.len())?;
        let packet = OutgoingPacket {
            from: self.self_id,
            target,
            mode,
            channel,
            data: Bytes::copy_from_slice(data),
        };
        self.emit(Outgoing::Packet(packet));
        Ok(())
    }
}

impl MultiplayerPeer for CustomMultiplayerPeer {
    fn queues(&self) -> &PeerQueues {
        &self.queues
    }

    fn pop_event(&mut self) -> Option<PeerEvent> {
        self.queues.pop_event()
    }

    fn get_packet(&mut self) -> Option<Packet> {
        self.queues.pop_packet()
    }

    /// Does nothing: the application delivers packets and reports peers directly.
    fn poll(&mut self) -> Result<Polled> {
        Ok(Polled::default())
    }

    /// Returns at once: there is no socket to wait in, and nothing can arrive while the
    /// application is in this call.
    fn poll_timeout(&mut self, _timeout: Duration) -> Result<Polled> {
        Ok(Polled::default())
    }

    /// Validates like the ENet peer (status, target, channel, size, then whether the target is
    /// connected) and hands the packet to the application as an [`Outgoing::Packet`].
    fn send(&mut self, target: Target, mode: TransferMode, channel: u8, data: &[u8]) -> Result<()> {
        self.send_inner(target, mode, channel, data)
    }

    fn settings(&self) -> &SendSettings {
        &self.settings
    }

    fn settings_mut(&mut self) -> &mut SendSettings {
        &mut self.settings
    }

    /// The id given to [`initialize`](CustomMultiplayerPeer::initialize); 0 before it and while
    /// DISCONNECTED.
    fn unique_id(&self) -> PeerId {
        self.self_id
    }

    fn connection_status(&self) -> ConnectionStatus {
        self.status
    }

    /// Whether the id is 1.
    fn is_server(&self) -> bool {
        self.self_id == SERVER_ID
    }

    /// The builder's [`server_relay`](CustomBuilder::server_relay) setting (default false): the
    /// application, not this peer, decides whether client-to-client packets are carried.
    fn is_server_relay_supported(&self) -> bool {
        self.relay
    }

    /// On a server, [`add_peer`](CustomMultiplayerPeer::add_peer) is refused while this is set.
    fn set_refuse_new_connections(&mut self, refuse: bool) {
        self.refuse = refuse;
        if let Session::Server(server) = &mut self.session {
            server.set_refuse_new_connections(refuse);
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refuse
    }

    /// Emits [`Outgoing::Disconnect`] for the application and forgets the peer at once.
    ///
    /// A server disconnects one of its clients (else [`Error::UnknownPeer`]): without `force`
    /// `PeerDisconnected(id)` is queued, with `force` nothing (the silent exit). A client may
    /// only disconnect from the server, id 1 (else [`Error::NotAllowed`]), and is then
    /// DISCONNECTED: without `force` `ServerDisconnected` is queued, with `force` nothing and,
    /// as [`close`](MultiplayerPeer::close), the received packets and events are discarded.
    /// Not CONNECTED: [`Error::NotConnected`].
    fn disconnect_peer(&mut self, id: PeerId, force: bool) -> Result<()> {
        self.require_connected()?;
        if let Session::Server(server) = &mut self.session {
            // The application is told to end the connection, and the peer forgets it at once:
            // silently with `force`, else with its PeerDisconnected.
            server.kick(id, force)?;
            if !force {
                server.link_closed(&id);
            }
            self.emit(Outgoing::Disconnect { peer: id, force });
            self.absorb();
        } else if id == SERVER_ID {
            self.emit(Outgoing::Disconnect { peer: id, force });
            self.reset();
            log::info!("left the server");
            if force {
                self.queues.clear();
            } else {
                self.queues
                    .push_event(PeerEvent::ServerDisconnected(DisconnectReason::Unspecified));
            }
        } else {
            return Err(Error::NotAllowed(NotAllowed::ClientDisconnectsClient));
        }
        Ok(())
    }

    /// Moves to DISCONNECTED at once, silently, discarding received packets and events. If it
    /// was connecting or connected, emits [`Outgoing::Close`] for the application (items
    /// already in the outgoing queue stay there).
    fn close(&mut self) {
        if self.status != ConnectionStatus::Disconnected {
            self.emit(Outgoing::Close);
            log::info!("closed");
        }
        self.reset();
        self.queues.clear();
    }

    fn max_packet_size(&self) -> usize {
        self.limits.max_packet_size
    }
}
