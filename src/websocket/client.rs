//! The WebSocket client: a driver of [`ClientSession`] over one connection.

use super::conn::{ws_config, Conn, ConnectRequest, Ended, Got, Step};
use super::frame::{self, Kind, WsHeader, WS_HEADER_LEN};
use super::{reason_of_close_code, WebSocketClientBuilder, WebSocketStats};
use crate::enet::TotalStats;
use crate::error::{Error, Result};
use crate::peer::{
    check_target, ConnectionStatus, DisconnectReason, Packet, Polled, SendSettings, Target,
    TransferMode, MAX_PEER_ID, SERVER_ID,
};
use crate::relay::{self, DropReason};
use crate::session::ClientSession;
use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;

const CONN: Token = Token(0);
/// Messages handled per poll, so a flood cannot keep a poll from returning.
const MESSAGES_PER_POLL: usize = 8192;

#[derive(Debug)]
pub(crate) struct ClientDriver {
    pub(crate) session: ClientSession,
    pub(crate) settings: SendSettings,
    pub(crate) refuse: bool,
    pub(crate) stats: WebSocketStats,
    conn: Option<Conn>,
    poll: Poll,
    events: Events,
    /// Until the upgrade completes: when to give up.
    deadline: Option<Instant>,
    /// The largest message (header included) sent to the server.
    max_outgoing: usize,
    /// More messages may be waiting than the last poll took.
    backlog: bool,
    url: String,
}

impl ClientDriver {
    pub(crate) fn connect(b: WebSocketClientBuilder) -> Result<ClientDriver> {
        super::check_message_limits(b.max_message_size, b.max_outgoing_message)?;
        let mut request = b
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::InvalidConfig(format!("websocket url {}: {e}", b.url)))?;
        if !b.protocols.is_empty() {
            let list = b.protocols.join(", ");
            let value = list
                .parse()
                .map_err(|_| Error::InvalidConfig(format!("subprotocols {list:?}")))?;
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", value);
        }
        let uri = request.uri().clone();
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "websocket url scheme {other:?}: ws or wss"
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::InvalidConfig(format!("websocket url {} has no host", b.url)))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let address = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| Error::Resolve {
                address: host.clone(),
                reason: e.to_string(),
            })?
            .next()
            .ok_or_else(|| Error::Resolve {
                address: host.clone(),
                reason: "no address".into(),
            })?;
        let tls = if secure {
            let mut roots = rustls::RootCertStore::empty();
            for pem in &b.roots {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| Error::Tls(format!("root certificate: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| Error::Tls(format!("root certificate: {e}")))?;
                }
            }
            if roots.is_empty() {
                return Err(Error::Tls(
                    "wss needs a root certificate (tls_root_certificate)".into(),
                ));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Tls(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(host.clone())
                .map_err(|e| Error::Tls(format!("server name {host}: {e}")))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        let poll = Poll::new().map_err(Error::io("readiness poll"))?;
        let mut tcp =
            mio::net::TcpStream::connect(address).map_err(Error::io("websocket connect"))?;
        poll.registry()
            .register(&mut tcp, CONN, Interest::READABLE | Interest::WRITABLE)
            .map_err(Error::io("websocket connect"))?;
        let config = ws_config(b.max_message_size, usize::MAX / 2);
        let conn = Conn::connect(tcp, ConnectRequest { request, tls }, config);
        log::info!("websocket client connecting to {}", b.url);
        Ok(ClientDriver {
            session: ClientSession::connecting(0),
            settings: SendSettings::default(),
            refuse: false,
            stats: WebSocketStats {
                handshakes: 1,
                ..WebSocketStats::default()
            },
            conn: Some(conn),
            poll,
            events: Events::with_capacity(16),
            deadline: Some(Instant::now() + b.handshake_timeout),
            max_outgoing: b.max_outgoing_message,
            backlog: true,
            url: b.url,
        })
    }

    pub(crate) fn max_payload(&self) -> usize {
        self.max_outgoing - WS_HEADER_LEN
    }

    pub(crate) fn total_stats(&self) -> TotalStats {
        TotalStats {
            packets_in: self.stats.packets_in,
            bytes_in: self.stats.bytes_in,
            packets_out: self.stats.packets_out,
            bytes_out: self.stats.bytes_out,
            drops: self.stats.drops,
            ..TotalStats::default()
        }
    }

    pub(crate) fn poll(&mut self, timeout: Duration) -> Result<Polled> {
        let mut polled = Polled::default();
        if self.conn.is_none() {
            return Ok(polled);
        }
        self.flush();
        let mut wait = if self.backlog {
            Duration::ZERO
        } else {
            timeout
        };
        if let Some(deadline) = self.deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("readiness poll")(e)),
        }
        self.backlog = false;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(polled);
        };
        if !conn.is_open() {
            match conn.advance() {
                Step::Pending => {
                    if self.deadline.is_some_and(|d| Instant::now() >= d) {
                        log::info!("websocket connection to {} timed out", self.url);
                        self.stats.handshake_timeouts += 1;
                        self.ended(DisconnectReason::Unspecified, &mut polled);
                    }
                    return Ok(polled);
                }
                Step::Failed(why) => {
                    log::info!("websocket connection to {} failed: {why}", self.url);
                    self.stats.handshakes_failed += 1;
                    self.ended(DisconnectReason::Unspecified, &mut polled);
                    return Ok(polled);
                }
                Step::Open => {
                    log::debug!("websocket upgrade to {} complete", self.url);
                }
            }
        }
        for _ in 0..MESSAGES_PER_POLL {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(polled);
            };
            match conn.read() {
                Got::Binary(message) => {
                    polled.packets += 1;
                    self.stats.packets_in += 1;
                    self.stats.bytes_in += message.len() as u64;
                    self.on_message(message, &mut polled);
                }
                Got::Text => {
                    polled.packets += 1;
                    self.drop_message(DropReason::TextMessage, "a text message");
                }
                Got::Nothing => {
                    self.flush();
                    return Ok(polled);
                }
                Got::Ended(how) => {
                    let reason = match how {
                        Ended::Closed(code) => reason_of_close_code(code),
                        Ended::TooLarge => {
                            self.stats.closed_too_large += 1;
                            DisconnectReason::Unspecified
                        }
                        Ended::Protocol => {
                            self.stats.closed_protocol += 1;
                            DisconnectReason::Unspecified
                        }
                        Ended::Reset => DisconnectReason::Unspecified,
                    };
                    self.ended(reason, &mut polled);
                    return Ok(polled);
                }
            }
        }
        self.backlog = true;
        Ok(polled)
    }

    fn ended(&mut self, reason: DisconnectReason, polled: &mut Polled) {
        polled.events += 1;
        self.conn = None;
        self.deadline = None;
        self.session.link_closed(reason);
    }

    fn drop_message(&mut self, reason: DropReason, detail: &str) {
        self.stats.drops.add(reason);
        relay::log_drop(
            Some(SERVER_ID),
            reason,
            self.stats.drops.get(reason),
            detail,
        );
    }

    fn on_message(&mut self, message: Bytes, polled: &mut Polled) {
        let header = match WsHeader::decode(&message) {
            Ok(h) => h,
            Err(e) => {
                let reason = match e {
                    frame::WsDecodeError::TooShort(_) => DropReason::ShortPacket,
                    frame::WsDecodeError::UnknownKind(_) => DropReason::BadSystemMessage,
                };
                return self.drop_message(reason, &e.to_string());
            }
        };
        if header.kind == Kind::Data {
            self.session.queues_mut().push_packet(Packet {
                from: header.from,
                channel: 0,
                mode: TransferMode::Reliable,
                data: message.slice(WS_HEADER_LEN..),
            });
            return;
        }
        let Ok(id) = frame::system_peer(&message) else {
            return self.drop_message(DropReason::BadSystemMessage, "no peer id");
        };
        polled.events += 1;
        let outcome = match header.kind {
            Kind::SysId if self.session.id() == 0 && (2..=MAX_PEER_ID).contains(&id) => {
                self.session.set_id(id);
                Ok(())
            }
            Kind::SysId => Err("a second or impossible SYS_ID"),
            Kind::SysAdd if id == SERVER_ID => {
                if self.session.id() == 0 {
                    Err("SYS_ADD(1) before SYS_ID")
                } else if self.session.status() == ConnectionStatus::Connecting {
                    self.deadline = None;
                    self.session.connected();
                    Ok(())
                } else {
                    Err("a second SYS_ADD(1)")
                }
            }
            Kind::SysAdd => self
                .session
                .peer_added(id)
                .map_err(|_| "SYS_ADD of an impossible or known peer"),
            Kind::SysDel => self
                .session
                .peer_removed(id)
                .map_err(|_| "SYS_DEL of an unknown peer"),
            Kind::Data => Ok(()),
        };
        if let Err(why) = outcome {
            self.drop_message(DropReason::BadSystemMessage, &format!("{why} ({id})"));
        }
    }

    pub(crate) fn send(&mut self, target: Target, data: &[u8]) -> Result<()> {
        let status = self.session.status();
        if status != ConnectionStatus::Connected {
            return Err(Error::NotConnected(status));
        }
        let me = self.session.id();
        let (_, int) = check_target(target, me, |id| self.session.knows(id))?;
        let size = WS_HEADER_LEN + data.len();
        if size > self.max_outgoing {
            return Err(Error::PacketTooLarge {
                size: data.len(),
                max: self.max_payload(),
            });
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or(Error::NotConnected(ConnectionStatus::Disconnected))?;
        let message = Bytes::from(frame::data_message(me, int, data));
        conn.send(message)
            .map_err(|_| Error::NotConnected(ConnectionStatus::Disconnected))?;
        self.stats.packets_out += 1;
        self.stats.bytes_out += size as u64;
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.is_dirty() {
                conn.flush();
            }
        }
    }

    pub(crate) fn leave(&mut self, force: bool) -> Result<()> {
        let conn = self
            .conn
            .as_mut()
            .ok_or(Error::NotConnected(self.session.status()))?;
        if force {
            self.close();
        } else {
            // The server's answer ends the connection; `ServerDisconnected` follows then.
            conn.close(1000, "");
        }
        Ok(())
    }

    pub(crate) fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.close(1000, "");
            log::info!("closed");
        }
        self.deadline = None;
        self.session.close();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{close_code, reason_of_close_code};
    use crate::peer::{DisconnectReason, Refusal};

    #[test]
    fn close_codes_carry_disconnect_reasons() {
        for reason in [
            DisconnectReason::Kicked,
            DisconnectReason::ServerClosed,
            DisconnectReason::SlowConsumer,
            DisconnectReason::Refused(Refusal::ServerFull),
        ] {
            assert_eq!(reason_of_close_code(close_code(reason)), reason);
        }
        assert_eq!(close_code(DisconnectReason::Kicked), 4005);
        assert_eq!(reason_of_close_code(1000), DisconnectReason::Unspecified);
    }
}
