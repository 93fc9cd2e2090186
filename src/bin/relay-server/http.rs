//! The relay server's HTTP listener, on a thread of its own (tiny_http): `/metrics`
//! (Prometheus text format), `/healthz` (the server loop is alive), `/readyz` (listening and
//! accepting, not draining), `/status` (a page for people) and `/status.json`, and, with an
//! admin token, `POST /admin/refuse`, `/admin/accept`, `/admin/kick?id=N`, `/admin/drain`.

use crate::status::{Board, Command};
use prometheus::{Encoder, TextEncoder};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tiny_http::{Header, Method, Request, Response, Server};

/// The page at /status (it fetches /status.json itself).
const STATUS_PAGE: &str = include_str!("status.html");

/// How long /healthz lets the loop go without publishing (it publishes once a second).
const ALIVE_S: f64 = 5.0;

/// The listener: stop it with [`Http::stop`].
pub struct Http {
    pub address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Http {
    /// Listens on `address` and serves from `board`; admin commands go to `commands` when
    /// `admin_token` is set.
    pub fn start(
        address: SocketAddr,
        board: Arc<Board>,
        commands: Sender<Command>,
        admin_token: Option<String>,
    ) -> Result<Http, String> {
        let server = Server::http(address)
            .map_err(|e| format!("cannot listen for HTTP on {address}: {e}"))?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("HTTP listener on {address} has no IP address"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => {
                            handle(request, &board, &commands, admin_token.as_deref())
                        }
                        Ok(None) => {}
                        Err(e) => {
                            log::warn!("HTTP listener failed: {e}");
                            break;
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the HTTP thread: {e}"))?;
        Ok(Http {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops listening and waits for the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn text(status: u16, body: impl Into<String>) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.into())
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

fn handle(request: Request, board: &Board, commands: &Sender<Command>, token: Option<&str>) {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let response = match (request.method(), path) {
        (Method::Get, "/metrics") => {
            let mut body = Vec::new();
            let encoder = TextEncoder::new();
            match encoder.encode(&board.metrics.registry.gather(), &mut body) {
                Ok(()) => Response::from_data(body)
                    .with_header(header("Content-Type", encoder.format_type())),
                Err(e) => text(500, format!("cannot encode the metrics: {e}\n")),
            }
        }
        (Method::Get, "/healthz") => {
            if board.alive(ALIVE_S) {
                text(200, "ok\n")
            } else {
                text(503, "the server loop has not run for 5 s\n")
            }
        }
        (Method::Get, "/readyz") => match board.readiness() {
            (true, true, false) => text(200, "ready\n"),
            (false, _, _) => text(503, "not listening\n"),
            (_, _, true) => text(503, "draining\n"),
            (_, false, _) => text(503, "refusing new connections\n"),
        },
        (Method::Get, "/status") => Response::from_string(STATUS_PAGE)
            .with_header(header("Content-Type", "text/html; charset=utf-8")),
        (Method::Get, "/status.json") => Response::from_string(board.json())
            .with_header(header("Content-Type", "application/json")),
        (Method::Post, admin) if admin.starts_with("/admin/") => {
            match admin_command(&request, admin, query, token) {
                Ok(command) => match commands.send(command) {
                    Ok(()) => text(202, format!("{command:?}\n")),
                    Err(_) => text(503, "the server is shutting down\n"),
                },
                Err((status, why)) => text(status, why),
            }
        }
        (_, "/metrics" | "/healthz" | "/readyz" | "/status" | "/status.json") => {
            text(405, "method not allowed\n")
        }
        _ => text(404, "not found\n"),
    };
    if let Err(e) = request.respond(response) {
        log::debug!("HTTP response to {url} not sent: {e}");
    }
}

/// The command of an admin request, or the status and reason to refuse it with.
fn admin_command(
    request: &Request,
    path: &str,
    query: &str,
    token: Option<&str>,
) -> Result<Command, (u16, String)> {
    let Some(token) = token else {
        return Err((
            404,
            "admin endpoints are off: start the server with --admin-token\n".into(),
        ));
    };
    let given = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let expected = format!("Bearer {token}");
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
        return Err((401, "missing or wrong admin token\n".into()));
    }
    match path {
        "/admin/refuse" => Ok(Command::Refuse(true)),
        "/admin/accept" => Ok(Command::Refuse(false)),
        "/admin/drain" => Ok(Command::Drain),
        "/admin/kick" => {
            let id = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("id="))
                .and_then(|v| v.parse().ok())
                .ok_or((400, "kick needs ?id=N (a client id)\n".to_string()))?;
            Ok(Command::Kick(id))
        }
        _ => Err((404, "unknown admin endpoint\n".into())),
    }
}

/// Compares two byte strings in time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
