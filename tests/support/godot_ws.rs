//! The real engine in the WebSocket interop tests: `tests/godot/ws_agent.gd` (a Godot 3.2
//! `WebSocketClient` / `WebSocketServer`, or a `NetworkedMultiplayerENet` peer for mixed rooms,
//! usually as the tree's `network_peer` so that RPCs work), read and driven through [`WsAgent`],
//! and the helpers the tests share: the RAW command byte, big packets and their FNV-1a, a
//! free TCP port, and [`drive`] for one Rust side ([`Side`]) and several agents.
//!
//! An agent is driven through a command file (`AGENT_CMD_FILE`, see ws_agent.gd): every line
//! [`WsAgent::command`] appends is run once the agent reads it (within a frame or two). It
//! reports on stdout with agent.gd's vocabulary (`READY id=N`, `PEER_CONNECTED N`,
//! `RECV from=N channel=C text=T`, ...) plus `RPC from=N method=M text=T`, parsed by
//! [`super::godot::Recv`] and [`Rpc`].
//!
//! This module uses only what every transport has (the `MultiplayerPeer` trait and the
//! `MultiplayerApi`), so every test binary compiles it; the WebSocket peers themselves are named
//! in tests/godot_websocket.rs only.

use super::cluster::Node;
use super::godot::{spawn_engine, Recv};
use super::process::{temp_dir, Proc, Stream, WaitError};
use enet_multiplayer::api::{ApiEvent, MultiplayerApi};
use enet_multiplayer::MultiplayerPeer;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// MultiplayerAPI's RAW command byte (4): what `send_bytes` puts before the payload, and what a
/// packet for an agent that is the tree's network peer (`AGENT_API=1`) must start with to be
/// read as bytes (anything else is taken for an RPC or path message).
pub const RAW: u8 = enet_multiplayer::api::wire::RAW;

/// Payloads over this many bytes are reported as `text=BIG len=<n> fnv=<hex>` (ws_agent.gd).
pub const BIG: usize = 512;

/// How long an agent may take to print READY.
pub const READY_LIMIT: Duration = Duration::from_secs(15);

/// What a Godot agent speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `WebSocketClient` / `WebSocketServer` with Godot's multiplayer framing.
    WebSocket,
    /// `NetworkedMultiplayerENet`, without compression unless configured otherwise.
    Enet,
}

/// How to start one ws_agent.gd; fields are public, or use the chained setters.
#[derive(Clone, Debug)]
pub struct WsAgentConfig {
    pub server: bool,
    pub transport: Transport,
    /// Server: listen port. Client: port to connect to (on 127.0.0.1).
    pub port: u16,
    /// AGENT_API: the tree's network_peer (RPCs, RAW packets) or a bare peer.
    pub api: bool,
    /// AGENT_TIMEOUT: the agent prints TIMEOUT and exits with code 3 after this.
    pub timeout_secs: u64,
    /// Label in diagnostics.
    pub name: String,
    /// More AGENT_* variables (AGENT_POLL, AGENT_URL, AGENT_AUTORUN, ...).
    pub extra_env: Vec<(String, String)>,
}

impl WsAgentConfig {
    fn new(server: bool, transport: Transport, port: u16, name: &str) -> WsAgentConfig {
        WsAgentConfig {
            server,
            transport,
            port,
            api: true,
            timeout_secs: 60,
            name: name.to_string(),
            extra_env: Vec::new(),
        }
    }

    /// A Godot `WebSocketClient` of ws://127.0.0.1:`port`/.
    pub fn ws_client(port: u16) -> WsAgentConfig {
        WsAgentConfig::new(false, Transport::WebSocket, port, "godot-ws-client")
    }

    /// A Godot `WebSocketServer` on 127.0.0.1:`port`.
    pub fn ws_server(port: u16) -> WsAgentConfig {
        WsAgentConfig::new(true, Transport::WebSocket, port, "godot-ws-server")
    }

    /// A Godot `NetworkedMultiplayerENet` client of 127.0.0.1:`port`, no compression.
    pub fn enet_client(port: u16) -> WsAgentConfig {
        WsAgentConfig::new(false, Transport::Enet, port, "godot-enet-client")
    }

    pub fn name(mut self, name: &str) -> WsAgentConfig {
        self.name = name.to_string();
        self
    }

    /// false: a bare peer the script polls and reads itself (payloads exactly as sent).
    pub fn api(mut self, api: bool) -> WsAgentConfig {
        self.api = api;
        self
    }

    pub fn timeout_secs(mut self, secs: u64) -> WsAgentConfig {
        self.timeout_secs = secs;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> WsAgentConfig {
        self.extra_env.push((key.to_string(), value.to_string()));
        self
    }

    fn env_vars(&self, cmd_file: &Path) -> Vec<(String, String)> {
        let mut vars = vec![
            (
                "AGENT_ROLE".to_string(),
                if self.server { "server" } else { "client" }.to_string(),
            ),
            (
                "AGENT_TRANSPORT".to_string(),
                match self.transport {
                    Transport::WebSocket => "websocket",
                    Transport::Enet => "enet",
                }
                .to_string(),
            ),
            ("AGENT_PORT".to_string(), self.port.to_string()),
            (
                "AGENT_API".to_string(),
                if self.api { "1" } else { "0" }.to_string(),
            ),
            ("AGENT_TIMEOUT".to_string(), self.timeout_secs.to_string()),
            (
                "AGENT_CMD_FILE".to_string(),
                cmd_file.to_string_lossy().into_owned(),
            ),
        ];
        vars.extend(self.extra_env.iter().cloned());
        vars
    }
}

/// A parsed `RPC from=<id> method=<name> text=<argument>` line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rpc {
    pub from: i64,
    pub method: String,
    pub text: String,
}

impl Rpc {
    pub fn parse(line: &str) -> Option<Rpc> {
        let rest = line.strip_prefix("RPC from=")?;
        let (from, rest) = rest.split_once(' ')?;
        let rest = rest.strip_prefix("method=")?;
        let (method, rest) = rest.split_once(' ')?;
        let text = rest.strip_prefix("text=")?;
        Some(Rpc {
            from: from.parse().ok()?,
            method: method.to_string(),
            text: text.to_string(),
        })
    }
}

/// A running ws_agent.gd: a [`Proc`] (killed and reaped on drop, with its temporary HOME) and
/// its command file (removed on drop). Stdout lines can be consumed one by one, as with
/// [`super::godot::Agent`].
pub struct WsAgent {
    proc: Proc,
    consumed: Vec<bool>,
    cmd_dir: PathBuf,
    cmd_file: PathBuf,
    config: WsAgentConfig,
}

impl WsAgent {
    /// Starts `bin --path tests/godot -s res://ws_agent.gd` with the config's variables.
    pub fn spawn(bin: &Path, cfg: &WsAgentConfig) -> io::Result<WsAgent> {
        let cmd_dir = temp_dir("enet-mp-ws-agent")?;
        let cmd_file = cmd_dir.join("commands.txt");
        fs::write(&cmd_file, b"")?;
        let proc = match spawn_engine(
            bin,
            &cfg.name,
            &[],
            "ws_agent.gd",
            &cfg.env_vars(&cmd_file),
            &format!("godot {}", cfg.name),
        ) {
            Ok(p) => p,
            Err(e) => {
                let _ = fs::remove_dir_all(&cmd_dir);
                return Err(e);
            }
        };
        Ok(WsAgent {
            proc,
            consumed: Vec::new(),
            cmd_dir,
            cmd_file,
            config: cfg.clone(),
        })
    }

    /// `WsAgent::spawn`, panicking when the engine cannot start.
    pub fn start(bin: &Path, cfg: &WsAgentConfig) -> WsAgent {
        WsAgent::spawn(bin, cfg).unwrap_or_else(|e| panic!("cannot start {}: {e}", cfg.name))
    }

    pub fn name(&self) -> &str {
        &self.proc.name
    }

    pub fn config(&self) -> &WsAgentConfig {
        &self.config
    }

    /// Appends commands (without "CMD ") to the agent's command file, in one write.
    pub fn commands<S: AsRef<str>>(&mut self, commands: &[S]) {
        let mut text = String::new();
        for c in commands {
            let c = c.as_ref();
            assert!(!c.contains('\n'), "command {c:?} holds a newline");
            text.push_str(c);
            text.push('\n');
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.cmd_file)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.cmd_file.display()));
        f.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("write {}: {e}", self.cmd_file.display()));
    }

    /// Appends one command.
    pub fn command(&mut self, command: &str) {
        self.commands(&[command]);
    }

    fn sync(&mut self) {
        self.consumed.resize(self.proc.lines.len(), false);
    }

    /// Moves every line already received into the agent's lines without blocking.
    pub fn pump(&mut self) {
        self.proc.pump();
        self.sync();
    }

    fn wait_impl(
        &mut self,
        stream: Stream,
        consume: bool,
        pred: &mut dyn FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.sync();
        let consumed = &self.consumed;
        let found = self.proc.wait_index(
            0,
            &mut |i, line| {
                line.stream == stream
                    && !(consume && consumed.get(i).copied().unwrap_or(false))
                    && pred(&line.text)
            },
            timeout,
        );
        self.sync();
        match found {
            Ok(i) => {
                if consume {
                    self.consumed[i] = true;
                }
                Ok(self.proc.lines[i].text.clone())
            }
            Err(WaitError::Timeout) => {
                Err(self.failure(&format!("no matching line within {timeout:?}")))
            }
            Err(WaitError::Exited) => {
                Err(self.failure("the agent exited before printing a matching line"))
            }
        }
    }

    /// Waits for the first stdout line matching `pred` that no earlier `wait_line` returned,
    /// marks it consumed and returns it.
    pub fn wait_line(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_impl(Stream::Stdout, true, &mut pred, timeout)
    }

    /// Waits for a stdout line matching `pred` among all lines so far and later ones.
    pub fn wait_for(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_impl(Stream::Stdout, false, &mut pred, timeout)
    }

    /// `wait_for` an exact line.
    pub fn wait_exact(&mut self, line: &str, timeout: Duration) -> Result<String, String> {
        self.wait_for(|l| l == line, timeout)
    }

    /// Waits for `READY id=N` and returns N.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<i64, String> {
        let line = self.wait_for(|l| l.starts_with("READY id="), timeout)?;
        line["READY id=".len()..]
            .trim()
            .parse()
            .map_err(|e| self.failure(&format!("bad READY line {line:?}: {e}")))
    }

    /// The agent's id from `READY id=N`, waiting up to [`READY_LIMIT`]; panics otherwise.
    pub fn id(&mut self) -> i64 {
        match self.wait_ready(READY_LIMIT) {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    /// The stdout lines so far.
    pub fn lines(&mut self) -> Vec<String> {
        self.sync();
        self.proc.stdout()
    }

    /// The stderr lines so far (Godot's own messages).
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.sync();
        self.proc.stderr()
    }

    /// Godot's error reports on stderr so far: `ERROR: ...` and `SCRIPT ERROR: ...` lines
    /// with the `At: ...` line after each.
    pub fn engine_errors(&mut self) -> Vec<String> {
        let lines = self.stderr_lines();
        let mut errors = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("ERROR:") || l.starts_with("SCRIPT ERROR:") {
                let at = lines.get(i + 1).map(|a| a.trim()).unwrap_or("");
                errors.push(format!("{l} {at}"));
            }
        }
        errors
    }

    /// The agent's own `ERROR ...` lines (bad commands, failed sends) on stdout so far.
    pub fn agent_errors(&mut self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with("ERROR") || l == "TIMEOUT")
            .collect()
    }

    /// Every RECV line seen so far, parsed.
    pub fn recvs(&mut self) -> Vec<Recv> {
        self.lines().iter().filter_map(|l| Recv::parse(l)).collect()
    }

    /// Every RPC line seen so far, parsed.
    pub fn rpcs(&mut self) -> Vec<Rpc> {
        self.lines().iter().filter_map(|l| Rpc::parse(l)).collect()
    }

    /// Number of stdout lines so far equal to `line`.
    pub fn count_exact(&mut self, line: &str) -> usize {
        self.lines().iter().filter(|l| *l == line).count()
    }

    /// Ids of the PEER_CONNECTED lines so far, in order (repeats kept).
    pub fn connected_ids(&mut self) -> Vec<i64> {
        self.ids_of("PEER_CONNECTED ")
    }

    /// Ids of the PEER_DISCONNECTED lines so far, in order (repeats kept).
    pub fn disconnected_ids(&mut self) -> Vec<i64> {
        self.ids_of("PEER_DISCONNECTED ")
    }

    fn ids_of(&mut self, prefix: &str) -> Vec<i64> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
            .collect()
    }

    /// Whole output so far, both streams, with times since spawn.
    pub fn output(&mut self) -> String {
        self.pump();
        self.proc.format_lines()
    }

    fn failure(&mut self, what: &str) -> String {
        self.pump();
        let state = match self.proc.refresh_exit() {
            Some(status) => format!("exited with {status}"),
            None => "still running".to_string(),
        };
        format!(
            "godot agent '{}' (pid {}, {state}, {:.3}s after spawn): {what}\n\
             --- agent output ---\n{}--- end of agent output ---",
            self.proc.name,
            self.proc.pid(),
            self.proc.elapsed().as_secs_f64(),
            self.proc.format_lines()
        )
    }

    /// The exit status if the agent has exited (non-blocking).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        let r = self.proc.try_exit();
        self.sync();
        r
    }

    /// Waits at most `timeout` for the agent to exit, collecting its output meanwhile.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let r = self.proc.wait_exit(timeout);
        self.sync();
        r
    }

    /// Kills the agent now (by its pid) and reaps it.
    pub fn kill(&mut self) {
        self.proc.kill();
        self.sync();
    }
}

impl Drop for WsAgent {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.cmd_dir);
        if std::thread::panicking() {
            eprintln!(
                "--- output of godot agent '{}' (pid {}) ---\n{}--- end ---",
                self.proc.name,
                self.proc.pid(),
                self.proc.format_lines()
            );
        }
    }
}

/// `payload` behind the RAW command byte: a packet an `AGENT_API=1` agent reads as bytes.
pub fn raw(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(RAW);
    v.extend_from_slice(payload);
    v
}

/// `data` without its RAW command byte, or None when it does not start with one.
pub fn unraw(data: &[u8]) -> Option<&[u8]> {
    data.strip_prefix(&[RAW])
}

/// What ws_agent.gd's `sendbig <target> <len> <seed>` sends: byte i = (i * 7 + seed) % 256.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + usize::from(seed)) % 256) as u8)
        .collect()
}

/// FNV-1a, 32 bits, as ws_agent.gd computes it.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(2_166_136_261u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(16_777_619)
    })
}

/// The RECV text ws_agent.gd prints for `bytes` (long payloads as `BIG len=<n> fnv=<hex>`).
pub fn recv_text(bytes: &[u8]) -> String {
    if bytes.len() > BIG {
        format!("BIG len={} fnv={:08x}", bytes.len(), fnv1a(bytes))
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Who a Godot target integer reaches, given the sender: 0 everyone but the sender, `-id`
/// everyone but the sender and `id`, `id` that peer.
pub fn reaches(sender: i64, target: i64, id: i64) -> bool {
    match target {
        0 => id != sender,
        t if t > 0 => id == t,
        t => id != sender && id != -t,
    }
}

/// The Rust end of a test: something to poll between looks at the agents, and to describe in
/// failure messages.
pub trait Side {
    /// Polls once (waiting a millisecond at most) and records what it reports.
    fn pump(&mut self);
    /// Everything recorded, for failure messages.
    fn describe(&self) -> String;
}

impl<P: MultiplayerPeer + ?Sized> Side for Node<P> {
    fn pump(&mut self) {
        self.poll(Duration::from_millis(1));
    }

    fn describe(&self) -> String {
        let packets: Vec<_> = self
            .packets
            .iter()
            .map(|p| {
                let d = unraw(&p.data).unwrap_or(&p.data);
                (p.from, p.channel, p.mode, recv_text(d))
            })
            .collect();
        format!(
            "rust peer (id {}): events {:?}\npackets (RAW byte removed) {packets:?}\n",
            self.id(),
            self.events
        )
    }
}

/// A `MultiplayerApi` and every event it reported.
pub struct ApiNode<P: MultiplayerPeer> {
    pub api: MultiplayerApi<P>,
    pub events: Vec<ApiEvent>,
}

impl<P: MultiplayerPeer> ApiNode<P> {
    pub fn new(api: MultiplayerApi<P>) -> ApiNode<P> {
        ApiNode {
            api,
            events: Vec::new(),
        }
    }
}

impl<P: MultiplayerPeer> Side for ApiNode<P> {
    fn pump(&mut self) {
        self.api
            .poll_timeout(Duration::from_millis(1))
            .expect("MultiplayerApi poll");
        while let Some(e) = self.api.pop_event() {
            self.events.push(e);
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "rust MultiplayerApi (id {}), call stats {:?}, events:\n",
            self.api.network_unique_id(),
            self.api.call_stats()
        );
        for e in &self.events {
            match e {
                ApiEvent::Packet {
                    from,
                    data,
                    mode,
                    channel,
                } => {
                    s += &format!(
                        "  Packet from {from} {mode:?} ch{channel} {:?}\n",
                        recv_text(data)
                    )
                }
                other => s += &format!("  {other:?}\n"),
            }
        }
        s
    }
}

/// Everything the Rust side and the agents said, for failure messages.
pub fn report<S: Side + ?Sized>(side: &S, agents: &mut [&mut WsAgent]) -> String {
    let mut s = side.describe();
    for a in agents.iter_mut() {
        let name = a.name().to_string();
        s += &format!("--- agent {name} ---\n{}", a.output());
    }
    s
}

/// Pumps `side` and reads the agents until `done` holds (true) or `limit` passes (false).
pub fn drive_for<S: Side + ?Sized>(
    side: &mut S,
    agents: &mut [&mut WsAgent],
    limit: Duration,
    mut done: impl FnMut(&S, &mut [&mut WsAgent]) -> bool,
) -> bool {
    let start = Instant::now();
    loop {
        side.pump();
        for a in agents.iter_mut() {
            a.pump();
        }
        if done(side, agents) {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
    }
}

/// `drive_for` with `limit`; on timeout fails with everything every side said.
pub fn drive<S: Side + ?Sized>(
    side: &mut S,
    agents: &mut [&mut WsAgent],
    limit: Duration,
    what: &str,
    done: impl FnMut(&S, &mut [&mut WsAgent]) -> bool,
) {
    if !drive_for(side, agents, limit, done) {
        panic!(
            "timed out ({limit:?}) waiting for {what}\n{}",
            report(side, agents)
        );
    }
}

/// Pumps for `period` (the agents' commands and packets in flight settle), then returns.
pub fn settle<S: Side + ?Sized>(side: &mut S, agents: &mut [&mut WsAgent], period: Duration) {
    let start = Instant::now();
    drive_for(side, agents, period, |_, _| start.elapsed() >= period);
}
