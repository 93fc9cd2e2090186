//! One WebSocket connection over a non-blocking TCP socket (plain or TLS): the RFC 6455
//! handshake and framing are tungstenite's; this keeps the state machine around them for a
//! readiness loop (nothing here ever blocks).

use bytes::Bytes;
use mio::net::TcpStream;
use rustls::{ClientConnection, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::sync::Arc;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// The byte stream under a WebSocket.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    TlsServer(Box<StreamOwned<ServerConnection, TcpStream>>),
    TlsClient(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::TlsServer(s) => s.read(buf),
            Stream::TlsClient(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::TlsServer(s) => s.write(buf),
            Stream::TlsClient(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::TlsServer(s) => s.flush(),
            Stream::TlsClient(s) => s.flush(),
        }
    }
}

/// The server's answer to an upgrade request: Godot's subprotocol rule (the first protocol
/// the client asks for that the server offers; none asked, none chosen; asked but none
/// offered, refused).
#[derive(Debug, Clone)]
pub(crate) struct Accept {
    pub(crate) protocols: Arc<[String]>,
}

impl Callback for Accept {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        let asked: Vec<&str> = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if asked.is_empty() {
            return Ok(response);
        }
        match asked
            .iter()
            .find(|p| self.protocols.iter().any(|o| o == *p))
        {
            Some(p) => {
                if let Ok(v) = p.parse() {
                    response.headers_mut().insert("Sec-WebSocket-Protocol", v);
                }
                Ok(response)
            }
            None => {
                let mut refusal = ErrorResponse::new(Some("no offered subprotocol".into()));
                *refusal.status_mut() = tungstenite::http::StatusCode::BAD_REQUEST;
                Err(refusal)
            }
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The other end sent a close frame with this code (or none: 1005).
    Closed(u16),
    /// The TCP connection ended or failed without a close frame.
    Reset,
    /// A frame or message above the limit (refused before it was buffered).
    TooLarge,
    /// Not WebSocket (garbage, a bad upgrade request, a protocol violation).
    Protocol,
}

/// What one read produced.
#[derive(Debug)]
pub(crate) enum Got {
    Binary(Bytes),
    Text,
    Nothing,
    Ended(Ended),
}

enum Handshake {
    Server(MidHandshake<ServerHandshake<Stream, Accept>>),
    Client(MidHandshake<ClientHandshake<Stream>>),
}

enum State {
    /// A client's TCP connect in progress, with the request to send once connected.
    Connecting(TcpStream, Box<ConnectRequest>),
    Handshaking(Box<Handshake>),
    Open(Box<WebSocket<Stream>>),
    Gone,
}

/// What a client sends once TCP is up.
pub(crate) struct ConnectRequest {
    pub(crate) request: tungstenite::handshake::client::Request,
    pub(crate) tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
}

/// How a handshake step went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Pending,
    Open,
    Failed(String),
}

/// One connection. See the module docs.
pub(crate) struct Conn {
    state: State,
    config: WebSocketConfig,
    /// Written since the last flush.
    dirty: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Connecting(..) => "connecting",
            State::Handshaking(_) => "handshaking",
            State::Open(_) => "open",
            State::Gone => "gone",
        };
        f.debug_struct("Conn").field("state", &state).finish()
    }
}

/// tungstenite's settings for a connection taking messages of at most `max_message` bytes
/// and queueing at most `max_queued` bytes for the other end.
pub(crate) fn ws_config(max_message: usize, max_queued: usize) -> WebSocketConfig {
    let write_buffer = 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(write_buffer)
        // tungstenite wants room for one more message past the write buffer.
        .max_write_buffer_size(max_queued.max(write_buffer + max_message + 64))
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

impl Conn {
    /// A server's connection accepted on `stream`: starts the upgrade.
    pub(crate) fn accept(stream: Stream, accept: Accept, config: WebSocketConfig) -> Conn {
        let state = match tungstenite::accept_hdr_with_config(stream, accept, Some(config)) {
            Ok(ws) => State::Open(Box::new(ws)),
            Err(HandshakeError::Interrupted(mid)) => {
                State::Handshaking(Box::new(Handshake::Server(mid)))
            }
            Err(HandshakeError::Failure(e)) => {
                log::debug!("websocket upgrade failed at once: {e}");
                State::Gone
            }
        };
        Conn {
            state,
            config,
            dirty: false,
        }
    }

    /// A client's connection: TCP connect started on `tcp`.
    pub(crate) fn connect(
        tcp: TcpStream,
        request: ConnectRequest,
        config: WebSocketConfig,
    ) -> Conn {
        Conn {
            state: State::Connecting(tcp, Box::new(request)),
            config,
            dirty: false,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    pub(crate) fn is_gone(&self) -> bool {
        matches!(self.state, State::Gone)
    }

    /// Moves the connect or the handshake on as far as the socket allows.
    pub(crate) fn advance(&mut self) -> Step {
        loop {
            match std::mem::replace(&mut self.state, State::Gone) {
                State::Connecting(tcp, request) => {
                    match tcp.take_error() {
                        Ok(None) => {}
                        Ok(Some(e)) | Err(e) => return Step::Failed(format!("connect: {e}")),
                    }
                    match tcp.peer_addr() {
                        Ok(_) => {}
                        Err(e)
                            if e.kind() == io::ErrorKind::NotConnected
                                || e.kind() == io::ErrorKind::WouldBlock =>
                        {
                            self.state = State::Connecting(tcp, request);
                            return Step::Pending;
                        }
                        Err(e) => return Step::Failed(format!("connect: {e}")),
                    }
                    let _ = tcp.set_nodelay(true);
                    let ConnectRequest { request, tls } = *request;
                    let stream = match tls {
                        None => Stream::Plain(tcp),
                        Some((config, name)) => match ClientConnection::new(config, name) {
                            Ok(c) => Stream::TlsClient(Box::new(StreamOwned::new(c, tcp))),
                            Err(e) => return Step::Failed(format!("TLS: {e}")),
                        },
                    };
                    self.state = match tungstenite::client::client_with_config(
                        request,
                        stream,
                        Some(self.config),
                    ) {
                        Ok((ws, _)) => State::Open(Box::new(ws)),
                        Err(HandshakeError::Interrupted(mid)) => {
                            State::Handshaking(Box::new(Handshake::Client(mid)))
                        }
                        Err(HandshakeError::Failure(e)) => return Step::Failed(e.to_string()),
                    };
                }
                State::Handshaking(h) => return self.handshake_step(*h),
                open @ State::Open(_) => {
                    self.state = open;
                    return Step::Open;
                }
                State::Gone => return Step::Failed("connection gone".into()),
            }
        }
    }

    fn handshake_step(&mut self, handshake: Handshake) -> Step {
        let (next, step) = match handshake {
            Handshake::Server(mid) => match mid.handshake() {
                Ok(ws) => (State::Open(Box::new(ws)), Step::Open),
                Err(HandshakeError::Interrupted(mid)) => (
                    State::Handshaking(Box::new(Handshake::Server(mid))),
                    Step::Pending,
                ),
                Err(HandshakeError::Failure(e)) => (State::Gone, Step::Failed(e.to_string())),
            },
            Handshake::Client(mid) => match mid.handshake() {
                Ok((ws, _)) => (State::Open(Box::new(ws)), Step::Open),
                Err(HandshakeError::Interrupted(mid)) => (
                    State::Handshaking(Box::new(Handshake::Client(mid))),
                    Step::Pending,
                ),
                Err(HandshakeError::Failure(e)) => (State::Gone, Step::Failed(e.to_string())),
            },
        };
        self.state = next;
        step
    }

    /// Reads one message if one is complete.
    pub(crate) fn read(&mut self) -> Got {
        let State::Open(ws) = &mut self.state else {
            return Got::Nothing;
        };
        loop {
            match ws.read() {
                Ok(Message::Binary(b)) => return Got::Binary(b),
                Ok(Message::Text(_)) => return Got::Text,
                // tungstenite queued the pong; it leaves with the next flush.
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => {
                    self.dirty = true;
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    let _ = ws.flush();
                    self.state = State::Gone;
                    return Got::Ended(Ended::Closed(code));
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Got::Nothing
                }
                Err(e) => {
                    let ended = match e {
                        tungstenite::Error::Capacity(_) => Ended::TooLarge,
                        tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
                            Ended::Protocol
                        }
                        _ => Ended::Reset,
                    };
                    log::debug!("websocket read ended: {e}");
                    self.state = State::Gone;
                    return Got::Ended(ended);
                }
            }
        }
    }

    /// Queues a binary message. `Err(true)` when the queue for this connection is over its cap
    /// (a slow consumer), `Err(false)` when the connection is broken.
    pub(crate) fn send(&mut self, message: Bytes) -> Result<(), bool> {
        let State::Open(ws) = &mut self.state else {
            return Err(false);
        };
        self.dirty = true;
        match ws.write(Message::Binary(message)) {
            Ok(()) => Ok(()),
            // Buffered; it leaves when the socket is writable again.
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(tungstenite::Error::WriteBufferFull(_)) => Err(true),
            Err(e) => {
                log::debug!("websocket write failed: {e}");
                Err(false)
            }
        }
    }

    /// Whether something waits for [`flush`](Self::flush).
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes what is queued as far as the socket takes it. False if the connection broke.
    pub(crate) fn flush(&mut self) -> bool {
        let State::Open(ws) = &mut self.state else {
            self.dirty = false;
            return !self.is_gone();
        };
        match ws.flush() {
            Ok(()) => {
                self.dirty = false;
                true
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => {
                log::debug!("websocket flush failed: {e}");
                false
            }
        }
    }

    /// Starts the closing handshake with `code` (RFC 6455's, or 4000 + one of this crate's
    /// disconnect codes), as far as the socket takes it now.
    pub(crate) fn close(&mut self, code: u16, reason: &'static str) {
        if let State::Open(ws) = &mut self.state {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            let _ = ws.close(Some(frame));
            let _ = ws.flush();
        }
    }
}
