//! Godot 3's high-level multiplayer (`MultiplayerAPI`) over any [`MultiplayerPeer`]: RPCs,
//! RSETs, the node path cache and `send_bytes`, byte for byte as a Godot 3 game sends them
//! (MULTIPLAYER_API.md), so a Rust program can be peer 1 of a real Godot game, or a client of
//! a Godot server.
//!
//! There is no scene tree: a *node* is a path as it travels (relative to the root, so a Godot
//! client's `/root/Game/Player` is `Game/Player`), with a network master (default 1, the
//! server), RPC methods and RSET properties, each with one of Godot's seven [`RpcMode`]s.
//! A method has a handler, or its calls arrive as [`ApiEvent::Call`] values; calls nobody
//! registered arrive as [`ApiEvent::UnhandledCall`] (and are counted as unknown).
//!
//! # Example: an authoritative server
//! ```
//! use enet_multiplayer::api::{ApiEvent, MultiplayerApi, RpcMode};
//! use enet_multiplayer::variant::Variant;
//! use enet_multiplayer::{ConnectionStatus, CustomMultiplayerPeer};
//!
//! // Any MultiplayerPeer will do; here the application is the transport.
//! let mut peer = CustomMultiplayerPeer::new();
//! peer.set_connection_status(ConnectionStatus::Connecting)?;
//! peer.initialize(1)?;
//! peer.set_connection_status(ConnectionStatus::Connected)?;
//! let mut api = MultiplayerApi::new(peer);
//!
//! // `remote func move(x)` on /root/Game: clients call it, the server checks and answers.
//! api.register_rpc("Game", "move", RpcMode::Remote, |api, call, args| {
//!     let Ok(x) = args.first().unwrap_or(&Variant::Nil).get::<i64>() else { return };
//!     if (0..100).contains(&x) {
//!         let _ = api.rpc_id(call.sender, "Game", "moved", &[Variant::Int(x)]);
//!     }
//! });
//!
//! // A client (id 7) joins and calls rpc_id(1, "move", 5) in the full-path form.
//! api.peer_mut().add_peer(7)?;
//! let mut packet = vec![0, 0x13, 0, 0, 0x80];
//! packet.extend_from_slice(b"move\0\x01\x02\0\0\0\x05\0\0\0Game\0");
//! api.peer_mut().deliver_packet(&packet, 7)?;
//! api.poll()?;
//! assert_eq!(api.pop_event(), Some(ApiEvent::PeerConnected(7)));
//! // The answer went out: a SIMPLIFY_PATH for "Game", then the RPC `moved(5)`.
//! let out = api.peer_mut().take_outgoing();
//! assert_eq!(out.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod mode;
pub mod wire;

pub use mode::RpcMode;

use crate::error::Error as PeerError;
use crate::peer::{
    ConnectionStatus, DisconnectReason, MultiplayerPeer, Packet, PeerEvent, PeerId, Target,
    TransferMode, SERVER_ID,
};
use crate::variant::{DecodeError, Variant};
use bytes::Bytes;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use wire::{Command, NodeRef, WireError};

/// The API's maps: ahash is DoS-resistant (randomly keyed, like std's SipHash) and several times
/// faster on the short keys of the RPC hot path (ids, node paths, method names).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
type HashSet<K> = std::collections::HashSet<K, ahash::RandomState>;

/// The most node paths one peer may number (SIMPLIFY_PATH) on this side; past it, further
/// paths are not stored nor confirmed (the sender keeps the full-path form, which always
/// works) and the packets are counted as [`CallStats::paths_over_limit`].
pub const MAX_PATHS_PER_PEER: usize = 4096;

/// How many distinct (peer, path, name) refusals are logged before logging stops (each is
/// still counted).
const MAX_LOGGED_REFUSALS: usize = 4096;

/// What a call may fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The peer refused (not connected, packet too large, ...).
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// Sending while the peer is not connected.
    #[error("not connected (status {0:?})")]
    NotConnected(ConnectionStatus),
    /// More than 255 arguments.
    #[error("{0} arguments: an RPC carries at most 255")]
    TooManyArguments(usize),
    /// A target that is not a connected peer (Godot: "Attempt to remote call unexisting ID").
    #[error("target {0:?} is not a connected peer")]
    UnknownTarget(Target),
    /// A call on this peer alone whose mode does not run locally (Godot: "RPC on yourself is
    /// not allowed by selected mode").
    #[error("{name} on yourself is not allowed by its mode")]
    NotAllowedOnSelf {
        /// The method or property.
        name: String,
    },
    /// An empty path, or a path or name with a NUL byte.
    #[error("invalid node path or name {0:?}")]
    InvalidName(String),
    /// `send_bytes` with no bytes (Godot refuses it too).
    #[error("empty raw packet")]
    EmptyRaw,
}

/// RPC or RSET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// A method call (`rpc`).
    Rpc,
    /// A property set (`rset`).
    Rset,
}

/// What a handler learns about the call it runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallContext<'a> {
    /// Who called (Godot's `get_rpc_sender_id`); this peer's own id for a local call.
    pub sender: PeerId,
    /// The node path, as it travels.
    pub path: &'a str,
    /// The method or property.
    pub name: &'a str,
    /// RPC or RSET.
    pub kind: CallKind,
    /// How the packet travelled (`Reliable` for a local call).
    pub mode: TransferMode,
    /// The logical channel it came on.
    pub channel: u8,
    /// Whether this is the local run of a sync mode (not from the network).
    pub local: bool,
}

/// A call as a value: what [`ApiEvent::Call`] and [`ApiEvent::UnhandledCall`] carry.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCall {
    /// Who called.
    pub sender: PeerId,
    /// The node path, as it travels.
    pub path: String,
    /// The method or property.
    pub name: String,
    /// RPC or RSET.
    pub kind: CallKind,
    /// The arguments (for an RSET, the one value).
    pub args: Vec<Variant>,
    /// How it travelled.
    pub mode: TransferMode,
    /// The logical channel.
    pub channel: u8,
}

/// What happened, as values (Godot's MultiplayerAPI signals, and calls for applications that
/// prefer one `match` to handlers).
#[derive(Debug, Clone, PartialEq)]
pub enum ApiEvent {
    /// `network_peer_connected(id)`.
    PeerConnected(PeerId),
    /// `network_peer_disconnected(id)`; both path caches of the peer are forgotten.
    PeerDisconnected(PeerId),
    /// `connected_to_server` (client).
    ConnectedToServer,
    /// `connection_failed` (client).
    ConnectionFailed(DisconnectReason),
    /// `server_disconnected` (client).
    ServerDisconnected(DisconnectReason),
    /// `network_peer_packet(id, packet)`: bytes a peer sent with `send_bytes`.
    Packet {
        /// The sender.
        from: PeerId,
        /// The bytes (without the RAW command byte).
        data: Bytes,
        /// How they travelled.
        mode: TransferMode,
        /// The logical channel.
        channel: u8,
    },
    /// A call to a registered method or property that has no handler, allowed by its mode
    /// (and by the call filter).
    Call(RemoteCall),
    /// A call on a path or of a name nobody registered. Counted as unknown, never answered.
    UnhandledCall(RemoteCall),
}

/// Counts of what one peer (or every peer) sent, and what was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallStats {
    /// RPCs run (handler or event).
    pub rpcs: u64,
    /// RSETs applied.
    pub rsets: u64,
    /// RAW packets received.
    pub raw: u64,
    /// Calls whose node was named by a cached path id.
    pub cached_form: u64,
    /// Calls whose node was named by its full path.
    pub full_path_form: u64,
    /// Refused by the receiver's mode check (includes DISABLED).
    pub refused_by_mode: u64,
    /// Refused by the application's call filter.
    pub denied: u64,
    /// On a path nobody registered (or a path id the sender never announced).
    pub unknown_path: u64,
    /// Of a method or property the node does not have.
    pub unknown_name: u64,
    /// Packets that are no well-formed command, or arguments that do not decode.
    pub malformed: u64,
    /// SIMPLIFY_PATHs not stored because the sender numbered [`MAX_PATHS_PER_PEER`] already.
    pub paths_over_limit: u64,
    /// CONFIRM_PATHs for paths this side announced: from then on that peer gets short forms.
    pub confirms: u64,
    /// CONFIRM_PATHs for a path never announced to that peer.
    pub bad_confirms: u64,
}

impl CallStats {
    /// Every refused call: by mode, by the filter, unknown path, unknown name.
    pub fn rejected(&self) -> u64 {
        self.refused_by_mode + self.denied + self.unknown_path + self.unknown_name
    }

    fn add(&mut self, field: fn(&mut CallStats) -> &mut u64) {
        *field(self) += 1;
    }
}

/// Runs an RPC: the API (to answer, call others, ...), the call, its arguments.
pub type RpcHandler<P> =
    Box<dyn FnMut(&mut MultiplayerApi<P>, &CallContext<'_>, &[Variant]) + Send>;
/// Runs after an RSET stored its value: the API, the call, the new value.
pub type RsetHandler<P> = Box<dyn FnMut(&mut MultiplayerApi<P>, &CallContext<'_>, &Variant) + Send>;
/// Decides whether a remote call the mode allows may run (server authority): false refuses it.
pub type CallFilter = Box<dyn FnMut(&CallContext<'_>, &[Variant]) -> bool + Send>;

struct Method<P: MultiplayerPeer> {
    mode: RpcMode,
    /// Registered with a handler (which is taken out while it runs).
    has_handler: bool,
    handler: Option<RpcHandler<P>>,
}

struct Property<P: MultiplayerPeer> {
    mode: RpcMode,
    value: Variant,
    has_handler: bool,
    handler: Option<RsetHandler<P>>,
}

struct Node<P: MultiplayerPeer> {
    path: Arc<str>,
    master: PeerId,
    methods: HashMap<Box<str>, Method<P>>,
    properties: HashMap<Box<str>, Property<P>>,
}

/// The sender's side of the path cache for one path (Godot's `PathSentCache`).
#[derive(Default)]
struct SentPath {
    id: u32,
    /// Peers sent a SIMPLIFY_PATH: true once they confirmed.
    confirmed: HashMap<PeerId, bool>,
}

/// Godot's `MultiplayerAPI` over a [`MultiplayerPeer`]. See the [module docs](self).
pub struct MultiplayerApi<P: MultiplayerPeer> {
    peer: P,
    nodes: HashMap<Arc<str>, Node<P>>,
    /// Peers as Godot's `connected_peers`: on a server its clients, on a client the server and
    /// the clients it was told of. Ordered, as Godot walks them.
    connected: BTreeSet<PeerId>,
    /// Paths numbered by each peer (Godot's `path_get_cache`).
    received_paths: HashMap<PeerId, HashMap<u32, Arc<str>>>,
    /// Paths this side numbered (Godot's `path_send_cache`).
    sent_paths: HashMap<Arc<str>, SentPath>,
    next_path_id: u32,
    events: VecDeque<ApiEvent>,
    filter: Option<CallFilter>,
    stats: HashMap<PeerId, CallStats>,
    totals: CallStats,
    logged: HashSet<(PeerId, Box<str>, Box<str>)>,
    rpc_sender: PeerId,
    packet: Vec<u8>,
    args: Vec<Variant>,
}

impl<P: MultiplayerPeer> fmt::Debug for MultiplayerApi<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiplayerApi")
            .field("unique_id", &self.peer.unique_id())
            .field("nodes", &self.nodes.len())
            .field("connected", &self.connected)
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

/// Godot's node paths travel relative to the root: `/root/Game` is `Game`.
fn wire_path(path: &str) -> &str {
    path.strip_prefix("/root/").unwrap_or(path)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.contains('\0') {
        Err(ApiError::InvalidName(name.to_owned()))
    } else {
        Ok(())
    }
}

impl<P: MultiplayerPeer> MultiplayerApi<P> {
    /// The API over `peer` (Godot's `multiplayer.network_peer = peer`). Peers the transport
    /// announces from now on are tracked; call [`poll`](Self::poll) every frame.
    pub fn new(peer: P) -> MultiplayerApi<P> {
        MultiplayerApi {
            peer,
            nodes: HashMap::default(),
            connected: BTreeSet::new(),
            received_paths: HashMap::default(),
            sent_paths: HashMap::default(),
            next_path_id: 1,
            events: VecDeque::new(),
            filter: None,
            stats: HashMap::default(),
            totals: CallStats::default(),
            logged: HashSet::default(),
            rpc_sender: 0,
            packet: Vec::with_capacity(256),
            args: Vec::with_capacity(16),
        }
    }

    /// The peer.
    pub fn peer(&self) -> &P {
        &self.peer
    }

    /// The peer, mutably (to configure it, kick, close; take its packets only through the API).
    pub fn peer_mut(&mut self) -> &mut P {
        &mut self.peer
    }

    /// The peer back, and the API gone.
    pub fn into_peer(self) -> P {
        self.peer
    }

    /// This peer's id (Godot's `get_network_unique_id`).
    #[doc(alias = "get_network_unique_id")]
    pub fn network_unique_id(&self) -> PeerId {
        self.peer.unique_id()
    }

    /// Whether this peer is the server (Godot's `is_network_server`).
    pub fn is_network_server(&self) -> bool {
        self.peer.is_server()
    }

    /// The connected peers as Godot's `get_network_connected_peers`, ascending.
    #[doc(alias = "get_network_connected_peers")]
    pub fn network_connected_peers(&self) -> Vec<PeerId> {
        self.connected.iter().copied().collect()
    }

    /// The sender of the call being handled (Godot's `get_rpc_sender_id`): 0 outside a call.
    #[doc(alias = "get_rpc_sender_id")]
    pub fn rpc_sender_id(&self) -> PeerId {
        self.rpc_sender
    }

    // ---- registration -------------------------------------------------------------------

    fn node_mut(&mut self, path: &str) -> &mut Node<P> {
        let path = wire_path(path);
        if !self.nodes.contains_key(path) {
            let key: Arc<str> = Arc::from(path);
            self.nodes.insert(
                key.clone(),
                Node {
                    path: key,
                    master: SERVER_ID,
                    methods: HashMap::default(),
                    properties: HashMap::default(),
                },
            );
        }
        self.nodes.get_mut(path).expect("inserted above")
    }

    /// Registers a node with no methods yet (calls on it are then unknown *names*, not unknown
    /// paths). Registering a method or property registers its node too.
    pub fn add_node(&mut self, path: &str) {
        self.node_mut(path);
    }

    /// Forgets a node with its methods, properties and master.
    pub fn remove_node(&mut self, path: &str) -> bool {
        self.nodes.remove(wire_path(path)).is_some()
    }

    /// Whether a node is registered at `path`.
    pub fn has_node(&self, path: &str) -> bool {
        self.nodes.contains_key(wire_path(path))
    }

    /// Registers method `name` on the node at `path` with `mode` and a handler (replacing any
    /// earlier registration). GDScript's `remote func name(...)` is `RpcMode::Remote`.
    pub fn register_rpc(
        &mut self,
        path: &str,
        name: &str,
        mode: RpcMode,
        handler: impl FnMut(&mut MultiplayerApi<P>, &CallContext<'_>, &[Variant]) + Send + 'static,
    ) {
        let method = Method {
            mode,
            has_handler: true,
            handler: Some(Box::new(handler)),
        };
        self.node_mut(path).methods.insert(name.into(), method);
    }

    /// Registers method `name` with `mode` and no handler: its calls arrive as
    /// [`ApiEvent::Call`]. Godot's `rpc_config(name, mode)`.
    pub fn rpc_config(&mut self, path: &str, name: &str, mode: RpcMode) {
        let node = self.node_mut(path);
        match node.methods.get_mut(name) {
            Some(method) => method.mode = mode,
            None => {
                node.methods.insert(
                    name.into(),
                    Method {
                        mode,
                        has_handler: false,
                        handler: None,
                    },
                );
            }
        }
    }

    /// Registers property `name` with `mode`, its initial value and an optional handler run
    /// after each remote or local set. Godot's `remote var name = initial` (and `rset_config`).
    pub fn register_rset(
        &mut self,
        path: &str,
        name: &str,
        mode: RpcMode,
        initial: Variant,
        handler: Option<RsetHandler<P>>,
    ) {
        let property = Property {
            mode,
            value: initial,
            has_handler: handler.is_some(),
            handler,
        };
        self.node_mut(path).properties.insert(name.into(), property);
    }

    /// A registered property's value.
    pub fn property(&self, path: &str, name: &str) -> Option<&Variant> {
        let node = self.nodes.get(wire_path(path))?;
        node.properties.get(name).map(|p| &p.value)
    }

    /// Sets a registered property locally (no network). Returns false if it is not registered.
    pub fn set_property(&mut self, path: &str, name: &str, value: Variant) -> bool {
        match self
            .nodes
            .get_mut(wire_path(path))
            .and_then(|n| n.properties.get_mut(name))
        {
            Some(p) => {
                p.value = value;
                true
            }
            None => false,
        }
    }

    /// Sets the node's network master (Godot's `set_network_master`; default 1).
    pub fn set_network_master(&mut self, path: &str, id: PeerId) {
        self.node_mut(path).master = id;
    }

    /// The node's network master (1 for an unregistered node).
    pub fn network_master(&self, path: &str) -> PeerId {
        self.nodes
            .get(wire_path(path))
            .map_or(SERVER_ID, |n| n.master)
    }

    /// Whether this peer is the node's network master (Godot's `is_network_master`).
    pub fn is_network_master(&self, path: &str) -> bool {
        self.network_master(path) == self.peer.unique_id()
    }

    /// Sets the application's veto over remote calls that their mode allows: return false to
    /// refuse (counted as [`CallStats::denied`], logged once per peer, path and name, never
    /// answered). The authoritative server's check ("is this player allowed to move that?").
    pub fn set_call_filter(
        &mut self,
        filter: impl FnMut(&CallContext<'_>, &[Variant]) -> bool + Send + 'static,
    ) {
        self.filter = Some(Box::new(filter));
    }

    // ---- events and statistics ----------------------------------------------------------

    /// The oldest event not yet taken.
    pub fn pop_event(&mut self) -> Option<ApiEvent> {
        self.events.pop_front()
    }

    /// What `id` sent so far (zero for a peer not connected: its counts go when it leaves).
    pub fn peer_call_stats(&self, id: PeerId) -> CallStats {
        self.stats.get(&id).copied().unwrap_or_default()
    }

    /// What every peer sent so far, departed peers included.
    pub fn call_stats(&self) -> CallStats {
        self.totals
    }

    fn count(&mut self, from: PeerId, field: fn(&mut CallStats) -> &mut u64) {
        self.totals.add(field);
        if let Some(stats) = self.stats.get_mut(&from) {
            stats.add(field);
        }
    }

    /// Counts a refused call and logs it the first time for this (peer, path, name).
    fn refuse(
        &mut self,
        from: PeerId,
        path: &str,
        name: &str,
        why: &str,
        field: fn(&mut CallStats) -> &mut u64,
    ) {
        self.count(from, field);
        if self.logged.len() < MAX_LOGGED_REFUSALS {
            let key = (from, Box::<str>::from(path), Box::<str>::from(name));
            if self.logged.insert(key) {
                log::warn!("refused {name:?} on {path:?} from peer {from}: {why} (logged once)");
            }
        }
    }

    // ---- polling ------------------------------------------------------------------------

    /// Polls the peer, then handles its events and every received packet: runs handlers,
    /// answers SIMPLIFY_PATH, queues [`ApiEvent`]s. Never blocks.
    pub fn poll(&mut self) -> Result<(), ApiError> {
        self.peer.poll()?;
        self.process();
        Ok(())
    }

    /// Like [`poll`](Self::poll), but first waits in the peer up to `timeout` for traffic.
    pub fn poll_timeout(&mut self, timeout: Duration) -> Result<(), ApiError> {
        self.peer.poll_timeout(timeout)?;
        self.process();
        Ok(())
    }

    /// Handles what the peer queued, without polling it.
    pub fn process(&mut self) {
        while let Some(event) = self.peer.pop_event() {
            self.on_peer_event(event);
        }
        while let Some(packet) = self.peer.get_packet() {
            self.process_packet(packet);
        }
    }

    fn on_peer_event(&mut self, event: PeerEvent) {
        let event = match event {
            PeerEvent::PeerConnected(id) => {
                self.connected.insert(id);
                self.stats.entry(id).or_default();
                ApiEvent::PeerConnected(id)
            }
            PeerEvent::PeerDisconnected(id) => {
                self.forget_peer(id);
                ApiEvent::PeerDisconnected(id)
            }
            PeerEvent::ConnectionSucceeded => ApiEvent::ConnectedToServer,
            PeerEvent::ConnectionFailed(reason) => {
                self.forget_everyone();
                ApiEvent::ConnectionFailed(reason)
            }
            PeerEvent::ServerDisconnected(reason) => {
                self.forget_everyone();
                ApiEvent::ServerDisconnected(reason)
            }
        };
        self.events.push_back(event);
    }

    fn forget_peer(&mut self, id: PeerId) {
        self.connected.remove(&id);
        self.received_paths.remove(&id);
        for sent in self.sent_paths.values_mut() {
            sent.confirmed.remove(&id);
        }
        self.stats.remove(&id);
        self.logged.retain(|(peer, _, _)| *peer != id);
    }

    fn forget_everyone(&mut self) {
        for id in std::mem::take(&mut self.connected) {
            self.forget_peer(id);
        }
        // The path ids stay: Godot keeps its send cache across connections too.
    }

    fn process_packet(&mut self, packet: Packet) {
        let Packet {
            from,
            channel,
            mode,
            data,
        } = packet;
        let command = match wire::parse(&data) {
            Ok(command) => command,
            Err(e) => {
                log::debug!("malformed packet from peer {from}: {e}");
                self.count(from, |s| &mut s.malformed);
                return;
            }
        };
        match command {
            Command::SimplifyPath { id, path } => self.on_simplify(from, id, path),
            Command::ConfirmPath { path } => self.on_confirm(from, path),
            Command::Raw(bytes) => {
                self.count(from, |s| &mut s.raw);
                let data = data.slice_ref(bytes);
                self.events.push_back(ApiEvent::Packet {
                    from,
                    data,
                    mode,
                    channel,
                });
            }
            Command::RemoteCall { node, name, args } => {
                self.on_call(from, mode, channel, CallKind::Rpc, node, name, args)
            }
            Command::RemoteSet { node, name, value } => {
                self.on_call(from, mode, channel, CallKind::Rset, node, name, value)
            }
        }
    }

    fn on_simplify(&mut self, from: PeerId, id: u32, path: &str) {
        let paths = self.received_paths.entry(from).or_default();
        if paths.len() >= MAX_PATHS_PER_PEER && !paths.contains_key(&id) {
            log::debug!("peer {from} numbered more than {MAX_PATHS_PER_PEER} paths: not stored");
            self.count(from, |s| &mut s.paths_over_limit);
            return;
        }
        paths.insert(id, Arc::from(path));
        let answer = wire::confirm_path(path);
        let channel = self.peer.transfer_channel();
        if let Err(e) = self
            .peer
            .send(Target::Peer(from), TransferMode::Reliable, channel, &answer)
        {
            log::debug!("could not confirm path {path:?} to peer {from}: {e}");
        }
    }

    fn on_confirm(&mut self, from: PeerId, path: &str) {
        match self
            .sent_paths
            .get_mut(path)
            .and_then(|sent| sent.confirmed.get_mut(&from))
        {
            Some(confirmed) => {
                *confirmed = true;
                self.count(from, |s| &mut s.confirms);
            }
            None => {
                log::debug!("peer {from} confirmed {path:?}, a path never announced to it");
                self.count(from, |s| &mut s.bad_confirms);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_call(
        &mut self,
        from: PeerId,
        mode: TransferMode,
        channel: u8,
        kind: CallKind,
        node: NodeRef<'_>,
        name: &str,
        body: &[u8],
    ) {
        // Which node: the full path, or the sender's number for it.
        let cached: Arc<str>;
        let path: &str = match node {
            NodeRef::Full(path) => {
                self.count(from, |s| &mut s.full_path_form);
                path
            }
            NodeRef::Cached(id) => {
                self.count(from, |s| &mut s.cached_form);
                let known = self.received_paths.get(&from).and_then(|p| p.get(&id));
                let Some(known) = known else {
                    let path = format!("<path id {id}>");
                    return self.refuse(from, &path, name, "unknown path id", |s| {
                        &mut s.unknown_path
                    });
                };
                cached = known.clone();
                &cached
            }
        };
        // One look-up: the node's master, the entry's mode and, if the mode allows the call,
        // the handler, taken out to run (and put back after).
        let me = self.peer.unique_id();
        let Some(node) = self.nodes.get_mut(path) else {
            return self.unhandled(from, mode, channel, kind, path, name, body);
        };
        let master = node.master;
        let entry = match kind {
            CallKind::Rpc => node.methods.get_mut(name).map(|m| {
                let allowed = m.mode.allows(from, master, me);
                let handler = if allowed { m.handler.take() } else { None };
                (m.mode, allowed, m.has_handler, handler)
            }),
            CallKind::Rset => node
                .properties
                .get(name)
                .map(|p| (p.mode, p.mode.allows(from, master, me), p.has_handler, None)),
        };
        let Some((call_mode, allowed, has_handler, handler)) = entry else {
            return self.unhandled(from, mode, channel, kind, path, name, body);
        };
        if !allowed {
            let why = format!("mode {call_mode:?}, master {master}");
            return self.refuse(from, path, name, &why, |s| &mut s.refused_by_mode);
        }
        let mut args = std::mem::take(&mut self.args);
        let ctx = CallContext {
            sender: from,
            path,
            name,
            kind,
            mode,
            channel,
            local: false,
        };
        let refusal = match decode_args(kind, body, &mut args) {
            Err(e) => {
                log::debug!("undecodable {kind:?} {name:?} on {path:?} from peer {from}: {e}");
                self.count(from, |s| &mut s.malformed);
                true
            }
            Ok(()) => {
                let denied = self.filter.as_mut().is_some_and(|f| !f(&ctx, &args));
                if denied {
                    self.refuse(from, path, name, "denied by the call filter", |s| {
                        &mut s.denied
                    });
                }
                denied
            }
        };
        if refusal {
            if let Some(handler) = handler {
                self.put_back(path, name, handler);
            }
        } else {
            match kind {
                CallKind::Rpc => {
                    self.count(from, |s| &mut s.rpcs);
                    let previous_sender = std::mem::replace(&mut self.rpc_sender, from);
                    self.run_rpc_with(&ctx, &args, has_handler, handler);
                    self.rpc_sender = previous_sender;
                }
                CallKind::Rset => {
                    self.count(from, |s| &mut s.rsets);
                    self.run(&ctx, &mut args);
                }
            }
        }
        args.clear();
        self.args = args;
    }

    /// Runs a call that passed its checks: the handler, or an [`ApiEvent::Call`].
    fn run(&mut self, ctx: &CallContext<'_>, args: &mut Vec<Variant>) {
        let previous_sender = std::mem::replace(&mut self.rpc_sender, ctx.sender);
        match ctx.kind {
            CallKind::Rpc => self.run_rpc(ctx, args),
            CallKind::Rset => self.run_rset(ctx, args),
        }
        self.rpc_sender = previous_sender;
    }

    fn run_rpc(&mut self, ctx: &CallContext<'_>, args: &[Variant]) {
        let Some(method) = self
            .nodes
            .get_mut(ctx.path)
            .and_then(|n| n.methods.get_mut(ctx.name))
        else {
            return;
        };
        let has_handler = method.has_handler;
        let handler = method.handler.take();
        self.run_rpc_with(ctx, args, has_handler, handler);
    }

    /// Runs a method's handler (taken out of its registration), or queues the call as an event
    /// for a method registered without one.
    fn run_rpc_with(
        &mut self,
        ctx: &CallContext<'_>,
        args: &[Variant],
        has_handler: bool,
        handler: Option<RpcHandler<P>>,
    ) {
        if !has_handler {
            self.events.push_back(ApiEvent::Call(call_value(ctx, args)));
            return;
        }
        let Some(mut handler) = handler else {
            log::warn!(
                "{:?} on {:?} called itself: not run again",
                ctx.name,
                ctx.path
            );
            return;
        };
        handler(self, ctx, args);
        self.put_back(ctx.path, ctx.name, handler);
    }

    /// Returns a method's handler to its registration, unless the registration was replaced
    /// or removed meanwhile.
    fn put_back(&mut self, path: &str, name: &str, handler: RpcHandler<P>) {
        if let Some(method) = self
            .nodes
            .get_mut(path)
            .and_then(|n| n.methods.get_mut(name))
            .filter(|m| m.has_handler)
        {
            method.handler.get_or_insert(handler);
        }
    }

    fn run_rset(&mut self, ctx: &CallContext<'_>, args: &mut Vec<Variant>) {
        let value = args.pop().unwrap_or_default();
        let Some(property) = self
            .nodes
            .get_mut(ctx.path)
            .and_then(|n| n.properties.get_mut(ctx.name))
        else {
            return;
        };
        property.value = value;
        if !property.has_handler {
            let value = property.value.clone();
            self.events.push_back(ApiEvent::Call(call_value(
                ctx,
                std::slice::from_ref(&value),
            )));
            return;
        }
        let Some(mut handler) = property.handler.take() else {
            log::warn!(
                "{:?} on {:?} set itself: handler not run again",
                ctx.name,
                ctx.path
            );
            return;
        };
        let value = property.value.clone();
        handler(self, ctx, &value);
        if let Some(property) = self
            .nodes
            .get_mut(ctx.path)
            .and_then(|n| n.properties.get_mut(ctx.name))
            .filter(|p| p.has_handler)
        {
            property.handler.get_or_insert(handler);
        }
    }

    /// A call nobody registered: counted, logged once, offered as an event.
    #[allow(clippy::too_many_arguments)]
    fn unhandled(
        &mut self,
        from: PeerId,
        mode: TransferMode,
        channel: u8,
        kind: CallKind,
        path: &str,
        name: &str,
        body: &[u8],
    ) {
        let known_path = self.nodes.contains_key(path);
        if known_path {
            self.refuse(from, path, name, "no such method or property", |s| {
                &mut s.unknown_name
            });
        } else {
            self.refuse(from, path, name, "no such node", |s| &mut s.unknown_path);
        }
        let mut args = Vec::new();
        if decode_args(kind, body, &mut args).is_ok() {
            self.events.push_back(ApiEvent::UnhandledCall(RemoteCall {
                sender: from,
                path: path.to_owned(),
                name: name.to_owned(),
                kind,
                args,
                mode,
                channel,
            }));
        }
    }

    // ---- sending ------------------------------------------------------------------------

    /// `rpc(method, args...)` on the node at `path`: to every connected peer (and locally for
    /// the sync modes), reliably.
    pub fn rpc(&mut self, path: &str, method: &str, args: &[Variant]) -> Result<(), ApiError> {
        self.rpcp(Target::Broadcast, false, path, method, args)
    }

    /// `rpc_id(id, method, args...)`: to one peer (this peer's own id runs it locally if the
    /// mode allows).
    pub fn rpc_id(
        &mut self,
        id: PeerId,
        path: &str,
        method: &str,
        args: &[Variant],
    ) -> Result<(), ApiError> {
        self.rpcp(Target::Peer(id), false, path, method, args)
    }

    /// `rpc_unreliable(method, args...)`.
    pub fn rpc_unreliable(
        &mut self,
        path: &str,
        method: &str,
        args: &[Variant],
    ) -> Result<(), ApiError> {
        self.rpcp(Target::Broadcast, true, path, method, args)
    }

    /// `rpc_unreliable_id(id, method, args...)`.
    pub fn rpc_unreliable_id(
        &mut self,
        id: PeerId,
        path: &str,
        method: &str,
        args: &[Variant],
    ) -> Result<(), ApiError> {
        self.rpcp(Target::Peer(id), true, path, method, args)
    }

    /// `rset(property, value)` on the node at `path`: to every connected peer, reliably.
    pub fn rset(&mut self, path: &str, property: &str, value: &Variant) -> Result<(), ApiError> {
        self.rsetp(Target::Broadcast, false, path, property, value)
    }

    /// `rset_id(id, property, value)`.
    pub fn rset_id(
        &mut self,
        id: PeerId,
        path: &str,
        property: &str,
        value: &Variant,
    ) -> Result<(), ApiError> {
        self.rsetp(Target::Peer(id), false, path, property, value)
    }

    /// `rset_unreliable(property, value)`.
    pub fn rset_unreliable(
        &mut self,
        path: &str,
        property: &str,
        value: &Variant,
    ) -> Result<(), ApiError> {
        self.rsetp(Target::Broadcast, true, path, property, value)
    }

    /// `rset_unreliable_id(id, property, value)`.
    pub fn rset_unreliable_id(
        &mut self,
        id: PeerId,
        path: &str,
        property: &str,
        value: &Variant,
    ) -> Result<(), ApiError> {
        self.rsetp(Target::Peer(id), true, path, property, value)
    }

    /// Godot's `rpcp`: an RPC to any target (`AllExcept(n)` is Godot's `-n`), reliable or
    /// unreliable. The sync modes also run locally, as Godot's `_should_call_local` decides.
    pub fn rpcp(
        &mut self,
        target: Target,
        unreliable: bool,
        path: &str,
        method: &str,
        args: &[Variant],
    ) -> Result<(), ApiError> {
        self.require_connected()?;
        let path = wire_path(path);
        check_name(path)?;
        check_name(method)?;
        if args.len() > 255 {
            return Err(ApiError::TooManyArguments(args.len()));
        }
        let (local, skip) =
            self.local_share(target, path, |n| n.methods.get(method).map(|m| m.mode));
        if !skip {
            self.send_call(target, unreliable, CallKind::Rpc, path, method, args)?;
        }
        if local {
            let path = self.nodes.get(path).map(|n| n.path.clone());
            if let Some(path) = path {
                let ctx = self.local_context(&path, method, CallKind::Rpc);
                let mut args = args.to_vec();
                self.run(&ctx, &mut args);
            }
        } else if self.is_only_me(target) {
            return Err(ApiError::NotAllowedOnSelf {
                name: method.to_owned(),
            });
        }
        Ok(())
    }

    /// Godot's `rsetp`: an RSET to any target, reliable or unreliable.
    pub fn rsetp(
        &mut self,
        target: Target,
        unreliable: bool,
        path: &str,
        property: &str,
        value: &Variant,
    ) -> Result<(), ApiError> {
        self.require_connected()?;
        let path = wire_path(path);
        check_name(path)?;
        check_name(property)?;
        let (local, skip) =
            self.local_share(target, path, |n| n.properties.get(property).map(|p| p.mode));
        if local {
            let path = self.nodes.get(path).map(|n| n.path.clone());
            if let Some(path) = path {
                let ctx = self.local_context(&path, property, CallKind::Rset);
                let mut args = vec![value.clone()];
                self.run(&ctx, &mut args);
            }
        }
        if skip {
            if !local {
                return Err(ApiError::NotAllowedOnSelf {
                    name: property.to_owned(),
                });
            }
            return Ok(());
        }
        self.send_call(
            target,
            unreliable,
            CallKind::Rset,
            path,
            property,
            std::slice::from_ref(value),
        )
    }

    /// `send_bytes(bytes, id, mode)`: a RAW packet, received as [`ApiEvent::Packet`] (Godot's
    /// `network_peer_packet`).
    pub fn send_bytes(
        &mut self,
        data: &[u8],
        target: Target,
        mode: TransferMode,
    ) -> Result<(), ApiError> {
        if data.is_empty() {
            return Err(ApiError::EmptyRaw);
        }
        self.require_connected()?;
        self.packet.clear();
        self.packet.push(wire::RAW);
        self.packet.extend_from_slice(data);
        let channel = self.peer.transfer_channel();
        self.peer.send(target, mode, channel, &self.packet)?;
        Ok(())
    }

    fn require_connected(&self) -> Result<(), ApiError> {
        match self.peer.connection_status() {
            ConnectionStatus::Connected => Ok(()),
            other => Err(ApiError::NotConnected(other)),
        }
    }

    fn is_only_me(&self, target: Target) -> bool {
        matches!(target.normalized(), Target::Peer(id) if id == self.peer.unique_id())
            || (target.normalized() == Target::Server && self.peer.unique_id() == SERVER_ID)
    }

    /// Godot's local-call decision for a call to `target`: `(run locally, skip sending)`.
    fn local_share(
        &self,
        target: Target,
        path: &str,
        mode_of: impl Fn(&Node<P>) -> Option<RpcMode>,
    ) -> (bool, bool) {
        let me = self.peer.unique_id();
        let only_me = self.is_only_me(target);
        let includes_me = match target.normalized() {
            Target::Broadcast => true,
            Target::AllExcept(id) => id != me,
            _ => only_me,
        };
        let Some(node) = self.nodes.get(path) else {
            return (false, only_me);
        };
        let (local, skip) = match mode_of(node) {
            Some(mode) if includes_me => mode.local_call(node.master == me),
            _ => (false, false),
        };
        (local, skip || only_me)
    }

    fn local_context<'a>(&self, path: &'a str, name: &'a str, kind: CallKind) -> CallContext<'a> {
        CallContext {
            sender: self.peer.unique_id(),
            path,
            name,
            kind,
            mode: TransferMode::Reliable,
            channel: self.peer.transfer_channel(),
            local: true,
        }
    }

    /// Godot's `_send_rpc`: encodes the call once, announces the path to peers that lack it,
    /// and sends one packet to the target when every peer confirmed the path, else one per
    /// peer (the short form to those who confirmed, the full-path form to the others).
    fn send_call(
        &mut self,
        target: Target,
        unreliable: bool,
        kind: CallKind,
        path: &str,
        name: &str,
        args: &[Variant],
    ) -> Result<(), ApiError> {
        let target = target.normalized();
        let me = self.peer.unique_id();
        let destination_ok = match target {
            Target::Broadcast => true,
            Target::Server => self.connected.contains(&SERVER_ID),
            Target::Peer(id) | Target::AllExcept(id) => self.connected.contains(&id),
        };
        if !destination_ok || target == Target::Peer(me) {
            return Err(ApiError::UnknownTarget(target));
        }
        let includes = |id: PeerId| match target {
            Target::Broadcast => true,
            Target::Server => id == SERVER_ID,
            Target::Peer(one) => id == one,
            Target::AllExcept(not) => id != not,
        };

        // The path's number, and SIMPLIFY_PATH to each destination that never had it.
        if !self.sent_paths.contains_key(path) {
            let id = self.next_path_id;
            self.next_path_id = (id + 1) & !wire::FULL_PATH_FLAG;
            let sent = SentPath {
                id,
                confirmed: HashMap::default(),
            };
            self.sent_paths.insert(Arc::from(path), sent);
        }
        let sent = self.sent_paths.get_mut(path).expect("inserted above");
        let path_id = sent.id;
        let mut all_confirmed = true;
        let mut announce = Vec::new();
        for &id in self.connected.iter().filter(|&&id| includes(id)) {
            match sent.confirmed.get(&id) {
                Some(true) => {}
                Some(false) => all_confirmed = false,
                None => {
                    all_confirmed = false;
                    announce.push(id);
                }
            }
        }
        let channel = self.peer.transfer_channel();
        if !announce.is_empty() {
            let simplify = wire::simplify_path(path_id, path);
            for &id in &announce {
                sent.confirmed.insert(id, false);
            }
            for id in announce {
                self.peer
                    .send(Target::Peer(id), TransferMode::Reliable, channel, &simplify)?;
            }
        }

        // The call itself.
        let packet = &mut self.packet;
        packet.clear();
        packet.push(match kind {
            CallKind::Rpc => wire::REMOTE_CALL,
            CallKind::Rset => wire::REMOTE_SET,
        });
        packet.extend_from_slice(&path_id.to_le_bytes());
        wire::put_cstr(packet, name);
        if kind == CallKind::Rpc {
            packet.push(args.len() as u8);
        }
        for arg in args {
            arg.encode(packet);
        }
        let mode = if unreliable {
            TransferMode::Unreliable
        } else {
            TransferMode::Reliable
        };
        if all_confirmed {
            self.peer.send(target, mode, channel, &self.packet)?;
            return Ok(());
        }
        let short_len = self.packet.len();
        let offset = short_len as u32 | wire::FULL_PATH_FLAG;
        wire::put_cstr(&mut self.packet, path);
        let confirmed = &self.sent_paths[path].confirmed;
        for &id in self.connected.iter().filter(|&&id| includes(id)) {
            let short = confirmed.get(&id) == Some(&true);
            let (header, len) = if short {
                (path_id, short_len)
            } else {
                (offset, self.packet.len())
            };
            self.packet[1..5].copy_from_slice(&header.to_le_bytes());
            self.peer
                .send(Target::Peer(id), mode, channel, &self.packet[..len])?;
        }
        Ok(())
    }
}

/// Decodes an RPC's `[argc][Variants]` or an RSET's one Variant into `args`.
fn decode_args(
    kind: CallKind,
    body: &[u8],
    args: &mut Vec<Variant>,
) -> Result<(), CallDecodeError> {
    args.clear();
    match kind {
        CallKind::Rpc => {
            let (&argc, mut rest) = body
                .split_first()
                .ok_or(CallDecodeError::Wire(WireError::TooShort))?;
            for _ in 0..argc {
                if rest.is_empty() {
                    return Err(CallDecodeError::Wire(WireError::TooShort));
                }
                let (value, used) = Variant::decode(rest)?;
                args.push(value);
                rest = &rest[used.min(rest.len())..];
            }
        }
        CallKind::Rset => {
            let (value, _) = Variant::decode(body)?;
            args.push(value);
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum CallDecodeError {
    #[error(transparent)]
    Wire(WireError),
    #[error(transparent)]
    Variant(#[from] DecodeError),
}

fn call_value(ctx: &CallContext<'_>, args: &[Variant]) -> RemoteCall {
    RemoteCall {
        sender: ctx.sender,
        path: ctx.path.to_owned(),
        name: ctx.name.to_owned(),
        kind: ctx.kind,
        args: args.to_vec(),
        mode: ctx.mode,
        channel: ctx.channel,
    }
}

#[cfg(test)]
mod tests;
