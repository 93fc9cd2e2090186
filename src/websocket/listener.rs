//! The server's WebSocket transport: a TCP listener and its connections, on a `mio` registry.
//! It knows sockets, handshakes, limits and timeouts, and nothing of Godot's rules: it reports
//! connections opened, messages and connections ended, for a server driver to take to the
//! session core.

use super::conn::{ws_config, Accept, Conn, Ended, Got, Step, Stream};
use super::{WebSocketListen, WebSocketStats};
use crate::error::{Error, Result};
use bytes::Bytes;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use rustls::{ServerConnection, StreamOwned};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::protocol::WebSocketConfig;

/// Messages read from one connection before the others get their turn.
const READS_PER_TURN: usize = 256;
/// Connections accepted per readiness event before the rest of the poll gets its turn.
const ACCEPTS_PER_TURN: usize = 256;
/// How long a closing connection may take to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A connection of this listener: slot index and generation (a slot is reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId {
    index: u32,
    generation: u32,
}

/// What happened to the connections.
#[derive(Debug)]
pub(crate) enum WsEvent {
    /// The upgrade completed.
    Opened(ConnId),
    /// A binary message from an open connection.
    Message(ConnId, Bytes),
    /// A text message from an open connection (dropped: Godot's framing is binary).
    Text(ConnId),
    /// An open connection ended (whatever ended it).
    Closed(ConnId, Ended),
}

#[derive(Debug)]
struct Entry {
    conn: Conn,
    address: SocketAddr,
    opened: bool,
    /// When this end started closing it.
    closing: Option<Instant>,
    packets_in: u64,
    bytes_in: u64,
    packets_out: u64,
    bytes_out: u64,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// One connection's traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) address: SocketAddr,
    pub(crate) packets_in: u64,
    pub(crate) bytes_in: u64,
    pub(crate) packets_out: u64,
    pub(crate) bytes_out: u64,
}

fn entry_in(slots: &mut [Slot], id: ConnId) -> Option<&mut Entry> {
    let slot = slots.get_mut(id.index as usize)?;
    (slot.generation == id.generation)
        .then_some(slot.entry.as_mut())
        .flatten()
}

/// The listener and its connections. See the module docs.
#[derive(Debug)]
pub(crate) struct Listener {
    tcp: TcpListener,
    token: Token,
    options: WebSocketListen,
    accept: Accept,
    config: WebSocketConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Upgrades in progress, oldest first, with their deadlines.
    handshaking: VecDeque<(ConnId, Instant)>,
    /// Connections with more to read than one turn took.
    backlog: Vec<ConnId>,
    accept_more: bool,
    /// Connections written to since the last flush.
    dirty: Vec<ConnId>,
    /// Connections this end is closing, oldest first, with when it started.
    closing: VecDeque<(ConnId, Instant)>,
    open: usize,
    /// Connections still upgrading.
    upgrading: usize,
    pub(crate) stats: WebSocketStats,
}

impl Listener {
    /// Listens as `options` say, registering the listener as `token`; connections get the
    /// tokens above it.
    pub(crate) fn bind(
        options: WebSocketListen,
        registry: &Registry,
        token: Token,
    ) -> Result<Listener> {
        let address = SocketAddr::from((options.bind, options.port));
        let mut tcp = TcpListener::bind(address).map_err(Error::io("websocket listen"))?;
        registry
            .register(&mut tcp, token, Interest::READABLE)
            .map_err(Error::io("websocket listen"))?;
        let accept = Accept {
            protocols: options.protocols.clone().into(),
        };
        let config = ws_config(options.max_message_size, options.max_queued_bytes);
        log::debug!(
            "websocket listening on {}{}",
            tcp.local_addr().map_or(address, |a| a),
            if options.tls.is_some() { " (wss)" } else { "" }
        );
        Ok(Listener {
            tcp,
            token,
            options,
            accept,
            config,
            slots: Vec::new(),
            free: Vec::new(),
            handshaking: VecDeque::new(),
            backlog: Vec::new(),
            accept_more: false,
            dirty: Vec::new(),
            closing: VecDeque::new(),
            open: 0,
            upgrading: 0,
            stats: WebSocketStats::default(),
        })
    }

    /// The local port.
    pub(crate) fn local_port(&self) -> Option<u16> {
        self.tcp.local_addr().ok().map(|a| a.port())
    }

    /// The options it listens with.
    pub(crate) fn options(&self) -> &WebSocketListen {
        &self.options
    }

    /// Open connections.
    pub(crate) fn open_count(&self) -> usize {
        self.open
    }

    /// Whether work is left that readiness will not announce again (edge-triggered): more to
    /// read or to accept than the last turn took.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty() || self.accept_more
    }

    /// The earliest deadline (a handshake or a closing connection to give up on).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let closing = self.closing.front().map(|&(_, t)| t + CLOSE_GRACE);
        let handshake = self.handshaking.front().map(|&(_, t)| t);
        match (closing, handshake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn token_of(&self, index: u32) -> Token {
        Token(self.token.0 + 1 + index as usize)
    }

    /// Whether `token` is this listener's (or one of its connections').
    pub(crate) fn owns(&self, token: Token) -> bool {
        token.0 >= self.token.0
    }

    fn entry(&self, id: ConnId) -> Option<&Entry> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.entry.as_ref())
            .flatten()
    }

    fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry> {
        entry_in(&mut self.slots, id)
    }

    /// The address and traffic of a connection.
    pub(crate) fn info(&self, id: ConnId) -> Option<ConnInfo> {
        self.entry(id).map(|e| ConnInfo {
            address: e.address,
            packets_in: e.packets_in,
            bytes_in: e.bytes_in,
            packets_out: e.packets_out,
            bytes_out: e.bytes_out,
        })
    }

    /// Handles readiness of `token` at `now`.
    pub(crate) fn ready(
        &mut self,
        token: Token,
        registry: &Registry,
        now: Instant,
        out: &mut Vec<WsEvent>,
    ) {
        if token == self.token {
            self.accept(registry, now, out);
            return;
        }
        let index = (token.0 - self.token.0 - 1) as u32;
        let Some(slot) = self.slots.get(index as usize) else {
            return;
        };
        if slot.entry.is_none() {
            return;
        }
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        self.turn(id, out);
    }

    /// Gives every connection with a backlog (and the listener) another turn.
    pub(crate) fn run_backlog(
        &mut self,
        registry: &Registry,
        now: Instant,
        out: &mut Vec<WsEvent>,
    ) {
        if self.accept_more {
            self.accept(registry, now, out);
        }
        let backlog = std::mem::take(&mut self.backlog);
        for id in backlog {
            self.turn(id, out);
        }
    }

    fn accept(&mut self, registry: &Registry, now: Instant, out: &mut Vec<WsEvent>) {
        self.accept_more = false;
        for _ in 0..ACCEPTS_PER_TURN {
            match self.tcp.accept() {
                Ok((stream, address)) => self.admit(stream, address, registry, now, out),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // Out of descriptors, for example: keep listening, try again next turn.
                    log::warn!("websocket accept failed: {e}");
                    self.accept_more = true;
                    return;
                }
            }
        }
        self.accept_more = true;
    }

    fn admit(
        &mut self,
        mut stream: TcpStream,
        address: SocketAddr,
        registry: &Registry,
        now: Instant,
        out: &mut Vec<WsEvent>,
    ) {
        self.stats.handshakes += 1;
        // At the cap of pending upgrades the oldest gives way, so idle half-open
        // connections cannot lock honest clients out.
        while self.upgrading >= self.options.max_handshakes {
            let Some((old, _)) = self.handshaking.pop_front() else {
                break;
            };
            if self.entry(old).is_some_and(|e| !e.opened) {
                self.stats.handshakes_evicted += 1;
                log::debug!("websocket upgrade {} evicted", old.index);
                self.remove(old);
            }
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        if let Err(e) = registry.register(
            &mut stream,
            self.token_of(index),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("websocket connection from {address} not registered: {e}");
            self.free.push(index);
            return;
        }
        let _ = stream.set_nodelay(true);
        let stream = match &self.options.tls {
            None => Stream::Plain(stream),
            Some(identity) => match ServerConnection::new(identity.config.clone()) {
                Ok(c) => Stream::TlsServer(Box::new(StreamOwned::new(c, stream))),
                Err(e) => {
                    log::warn!("TLS session for {address} failed: {e}");
                    self.free.push(index);
                    return;
                }
            },
        };
        let slot = &mut self.slots[index as usize];
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        slot.entry = Some(Entry {
            conn: Conn::accept(stream, self.accept.clone(), self.config),
            address,
            opened: false,
            closing: None,
            packets_in: 0,
            bytes_in: 0,
            packets_out: 0,
            bytes_out: 0,
        });
        self.upgrading += 1;
        log::debug!("websocket connection {index} from {address}");
        self.handshaking
            .push_back((id, now + self.options.handshake_timeout));
        // The upgrade request may already be waiting (its readiness edge came before the
        // registration): give the connection a turn now.
        self.turn(id, out);
    }

    /// One connection's turn: the handshake, then reading.
    fn turn(&mut self, id: ConnId, out: &mut Vec<WsEvent>) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        if !entry.opened {
            match entry.conn.advance() {
                Step::Pending => return,
                Step::Failed(why) => {
                    log::info!("websocket upgrade from {} failed: {why}", entry.address);
                    self.stats.handshakes_failed += 1;
                    self.remove(id);
                    return;
                }
                Step::Open => {
                    entry.opened = true;
                    self.open += 1;
                    self.upgrading -= 1;
                    out.push(WsEvent::Opened(id));
                }
            }
        }
        let entry = self.entry_mut(id).expect("present");
        if entry.conn.is_dirty() && !entry.conn.flush() {
            self.end(id, Ended::Reset, out);
            return;
        }
        for _ in 0..READS_PER_TURN {
            let entry = entry_in(&mut self.slots, id).expect("present");
            match entry.conn.read() {
                Got::Binary(b) => {
                    entry.packets_in += 1;
                    entry.bytes_in += b.len() as u64;
                    self.stats.packets_in += 1;
                    self.stats.bytes_in += b.len() as u64;
                    if entry.closing.is_none() {
                        out.push(WsEvent::Message(id, b));
                    }
                }
                Got::Text => {
                    entry.packets_in += 1;
                    self.stats.packets_in += 1;
                    out.push(WsEvent::Text(id));
                }
                Got::Nothing => {
                    if entry.conn.is_dirty() {
                        self.mark_dirty(id);
                    }
                    return;
                }
                Got::Ended(how) => {
                    self.end(id, how, out);
                    return;
                }
            }
        }
        self.backlog.push(id);
    }

    fn end(&mut self, id: ConnId, how: Ended, out: &mut Vec<WsEvent>) {
        let Some(entry) = self.entry(id) else {
            return;
        };
        log::debug!("websocket {} ended: {how:?}", entry.address);
        let opened = entry.opened;
        match how {
            Ended::TooLarge => self.stats.closed_too_large += 1,
            Ended::Protocol => self.stats.closed_protocol += 1,
            Ended::Closed(_) | Ended::Reset => {}
        }
        self.remove(id);
        if opened {
            out.push(WsEvent::Closed(id, how));
        }
    }

    fn remove(&mut self, id: ConnId) {
        let slot = &mut self.slots[id.index as usize];
        if let Some(entry) = slot.entry.take() {
            if entry.opened {
                self.open -= 1;
            } else {
                self.upgrading -= 1;
            }
            slot.generation = slot.generation.wrapping_add(1);
            self.free.push(id.index);
        }
    }

    fn mark_dirty(&mut self, id: ConnId) {
        self.dirty.push(id);
    }

    /// Queues a message for an open connection. Past the connection's cap it is closed as a
    /// slow consumer (counted; `Err(true)`); `Err(false)` if it is gone.
    pub(crate) fn send(&mut self, id: ConnId, message: Bytes) -> Result<(), bool> {
        let len = message.len() as u64;
        let Some(entry) = self.entry_mut(id) else {
            return Err(false);
        };
        if entry.closing.is_some() {
            return Err(false);
        }
        let was_dirty = entry.conn.is_dirty();
        match entry.conn.send(message) {
            Ok(()) => {
                entry.packets_out += 1;
                entry.bytes_out += len;
                self.stats.packets_out += 1;
                self.stats.bytes_out += len;
                if !was_dirty {
                    self.mark_dirty(id);
                }
                Ok(())
            }
            Err(slow) => Err(slow),
        }
    }

    /// Queues `message` for each of `ids` ([`send`](Self::send)), noting in `slow` those over
    /// their cap; returns how many took it.
    pub(crate) fn send_each(
        &mut self,
        ids: &[ConnId],
        message: &Bytes,
        slow: &mut Vec<ConnId>,
    ) -> u64 {
        let mut sent = 0;
        for &id in ids {
            match self.send(id, message.clone()) {
                Ok(()) => sent += 1,
                Err(true) => slow.push(id),
                Err(false) => {}
            }
        }
        sent
    }

    /// Writes every connection's queued messages; connections that broke are reported.
    pub(crate) fn flush(&mut self, out: &mut Vec<WsEvent>) {
        let dirty = std::mem::take(&mut self.dirty);
        for id in dirty {
            let Some(entry) = self.entry_mut(id) else {
                continue;
            };
            if !entry.conn.flush() {
                self.end(id, Ended::Reset, out);
            } else if entry.conn.is_dirty() {
                // The socket is full; its writable edge gives it another turn.
            }
        }
    }

    /// Starts closing an open connection with `code` (it ends when the other end answers or
    /// after a grace period).
    pub(crate) fn close(&mut self, id: ConnId, code: u16, reason: &'static str, now: Instant) {
        if let Some(entry) = self.entry_mut(id) {
            entry.conn.close(code, reason);
            if entry.closing.is_none() {
                entry.closing = Some(now);
                self.closing.push_back((id, now));
            }
        }
    }

    /// Drops a connection at once (silently for the session: no event).
    pub(crate) fn drop_conn(&mut self, id: ConnId) {
        if let Some(entry) = self.entry_mut(id) {
            entry.conn.close(1000, "");
        }
        self.remove(id);
    }

    /// Closes every connection and stops listening.
    pub(crate) fn shutdown(&mut self, code: u16, reason: &'static str) {
        for slot in &mut self.slots {
            if let Some(entry) = slot.entry.as_mut() {
                entry.conn.close(code, reason);
            }
            slot.entry = None;
        }
        self.open = 0;
        self.handshaking.clear();
        self.backlog.clear();
        self.dirty.clear();
        self.closing.clear();
    }

    /// Ends upgrades past their deadline and closing connections past their grace.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<WsEvent>) {
        while let Some(&(id, deadline)) = self.handshaking.front() {
            if self.entry(id).map_or(true, |e| e.opened) {
                self.handshaking.pop_front();
                continue;
            }
            if deadline > now {
                break;
            }
            self.handshaking.pop_front();
            self.stats.handshake_timeouts += 1;
            if let Some(e) = self.entry(id) {
                log::info!("websocket upgrade from {} timed out", e.address);
            }
            self.remove(id);
        }
        while let Some(&(id, since)) = self.closing.front() {
            if self.entry(id).is_none() {
                self.closing.pop_front();
                continue;
            }
            if now.saturating_duration_since(since) < CLOSE_GRACE {
                break;
            }
            self.closing.pop_front();
            self.end(id, Ended::Reset, out);
        }
    }
}
