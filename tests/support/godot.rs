//! Spawns and reads the scriptable Godot 3 agent (`tests/godot/agent.gd`) for interop tests.
//!
//! Include from an integration test with `#[path = "support/godot.rs"] mod godot;`.
//! Plain std only. The agent prints one event per line on stdout (see agent.gd for the list);
//! Godot's own messages (script errors, engine warnings) arrive on stderr. Both streams are read
//! on background threads and kept, in arrival order, for waiting and for failure messages.
//!
//! Typical use:
//! ```ignore
//! let Some(bin) = godot::require_godot() else { return };
//! let port = godot::free_udp_port();
//! let mut server = godot::Agent::spawn(&bin, &godot::AgentConfig::server(port)).unwrap();
//! server.wait_line(|l| l.starts_with("READY "), godot::SECS_10).unwrap();
//! ```
#![allow(dead_code)]

use std::collections::HashSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable that skips Godot interop tests explicitly when set to `1`.
pub const SKIP_ENV: &str = "ENET_MP_SKIP_GODOT";
/// Environment variable naming the Godot 3 binary (default: `godot3-server` on PATH).
pub const BIN_ENV: &str = "GODOT_BIN";
/// When set to `1`, every agent line is also echoed to the test's stderr as it arrives.
pub const ECHO_ENV: &str = "ENET_MP_GODOT_ECHO";
/// Default binary name searched on PATH.
pub const DEFAULT_BIN: &str = "godot3-server";

pub const SECS_5: Duration = Duration::from_secs(5);
pub const SECS_10: Duration = Duration::from_secs(10);
pub const SECS_20: Duration = Duration::from_secs(20);
/// How long `Agent::id()` waits for `READY id=N`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The Godot project holding agent.gd.
pub fn agent_project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("godot")
}

/// `GODOT_BIN` if set (non-empty), else `godot3-server` found on PATH.
pub fn godot_binary() -> Option<PathBuf> {
    if let Some(v) = env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(DEFAULT_BIN))
        .find(|candidate| candidate.is_file())
}

/// The Godot binary, or `None` (after printing a `SKIPPED:` line) when `ENET_MP_SKIP_GODOT=1`.
/// Panics when the engine is missing: interop tests must not pass silently without it.
#[track_caller]
pub fn require_godot() -> Option<PathBuf> {
    if env::var(SKIP_ENV).map(|v| v.trim() == "1").unwrap_or(false) {
        eprintln!("SKIPPED: Godot interop test skipped because {SKIP_ENV}=1");
        return None;
    }
    match godot_binary() {
        Some(bin) if bin.is_file() => Some(bin),
        Some(bin) => panic!(
            "{BIN_ENV}={} does not name a file. Point it at a Godot 3 headless binary, \
             install the engine with `apt-get install -y godot3-server`, \
             or set {SKIP_ENV}=1 to skip the Godot interop tests explicitly.",
            bin.display()
        ),
        None => panic!(
            "Godot 3 engine not found: `{DEFAULT_BIN}` is not on PATH and {BIN_ENV} is not set. \
             Install it with `apt-get install -y godot3-server` (Debian), \
             or set {SKIP_ENV}=1 to skip the Godot interop tests explicitly."
        ),
    }
}

static HANDED_OUT_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn pseudo_random() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64 finalizer
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A UDP port in 20000..32000 (below Linux's ephemeral range) that is free on 127.0.0.1 right
/// now and was not handed out before by this process.
pub fn free_udp_port() -> u16 {
    let mut guard = HANDED_OUT_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let used = guard.get_or_insert_with(HashSet::new);
    for _ in 0..500 {
        let port = 20000 + (pseudo_random() % 12000) as u16;
        if used.contains(&port) {
            continue;
        }
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("0.0.0.0", port)).is_ok()
        {
            used.insert(port);
            return port;
        }
    }
    panic!("free_udp_port: no free UDP port found in 20000..32000");
}

/// `.or_fail()` on the harness's `Result<T, String>`: panics with the message printed as is
/// (multi-line agent output) instead of `unwrap()`'s escaped Debug form.
pub trait OrFail<T> {
    fn or_fail(self) -> T;
}

impl<T> OrFail<T> for Result<T, String> {
    #[track_caller]
    fn or_fail(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// How to start one agent. Build with `AgentConfig::server(port)` / `AgentConfig::client(port)`
/// and adjust fields (all public) or use the chained setters.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub role: Role,
    /// Server: listen port. Client: port to connect to.
    pub port: u16,
    /// Client: server address (AGENT_ADDRESS). Always keep it on loopback.
    pub address: String,
    /// true = ENet range coder (COMPRESS_RANGE_CODER), false = none.
    pub compression: bool,
    /// server_relay.
    pub relay: bool,
    /// ENet channel_count (>= 3).
    pub channels: u32,
    /// Server: max clients.
    pub max_clients: u32,
    /// The agent prints TIMEOUT and exits with code 3 after this many seconds.
    pub timeout_secs: u64,
    /// Commands (without "CMD ") run once READY was printed and `autorun_after_peers`
    /// PEER_CONNECTED events were seen (a client counts peer 1 too).
    pub autorun: Vec<String>,
    pub autorun_after_peers: u32,
    /// AGENT_EXIT_ON_DISCONNECT: exit after CONNECTION_FAILED (code 4) / SERVER_DISCONNECTED (0).
    pub exit_on_disconnect: bool,
    /// Label used in diagnostics; defaults to "server"/"client".
    pub name: String,
    /// Extra environment variables for the agent (e.g. AGENT_SLEEP_USEC, AGENT_BIND_IP).
    pub extra_env: Vec<(String, String)>,
}

impl AgentConfig {
    fn new(role: Role, port: u16) -> Self {
        AgentConfig {
            role,
            port,
            address: "127.0.0.1".to_string(),
            compression: false,
            relay: true,
            channels: 4,
            max_clients: 32,
            timeout_secs: 30,
            autorun: Vec::new(),
            autorun_after_peers: 0,
            exit_on_disconnect: false,
            name: match role {
                Role::Server => "server".to_string(),
                Role::Client => "client".to_string(),
            },
            extra_env: Vec::new(),
        }
    }

    pub fn server(port: u16) -> Self {
        Self::new(Role::Server, port)
    }

    pub fn client(port: u16) -> Self {
        Self::new(Role::Client, port)
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// true = range coder.
    pub fn compression(mut self, range: bool) -> Self {
        self.compression = range;
        self
    }

    pub fn relay(mut self, relay: bool) -> Self {
        self.relay = relay;
        self
    }

    pub fn channels(mut self, channels: u32) -> Self {
        self.channels = channels;
        self
    }

    pub fn max_clients(mut self, max_clients: u32) -> Self {
        self.max_clients = max_clients;
        self
    }

    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = secs;
        self
    }

    /// Commands (without "CMD "), run after `after_peers` PEER_CONNECTED events.
    pub fn autorun<S: AsRef<str>>(mut self, commands: &[S], after_peers: u32) -> Self {
        self.autorun = commands.iter().map(|c| c.as_ref().to_string()).collect();
        self.autorun_after_peers = after_peers;
        self
    }

    pub fn exit_on_disconnect(mut self, on: bool) -> Self {
        self.exit_on_disconnect = on;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.extra_env.push((key.to_string(), value.to_string()));
        self
    }

    /// The AGENT_* environment this config produces.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        for c in &self.autorun {
            assert!(
                !c.contains(';'),
                "autorun command {c:?} contains ';', the separator"
            );
        }
        let b = |v: bool| if v { "1" } else { "0" }.to_string();
        let mut vars = vec![
            (
                "AGENT_ROLE".to_string(),
                match self.role {
                    Role::Server => "server",
                    Role::Client => "client",
                }
                .to_string(),
            ),
            ("AGENT_PORT".to_string(), self.port.to_string()),
            ("AGENT_ADDRESS".to_string(), self.address.clone()),
            (
                "AGENT_COMPRESSION".to_string(),
                if self.compression { "range" } else { "none" }.to_string(),
            ),
            ("AGENT_RELAY".to_string(), b(self.relay)),
            ("AGENT_CHANNELS".to_string(), self.channels.to_string()),
            (
                "AGENT_MAX_CLIENTS".to_string(),
                self.max_clients.to_string(),
            ),
            ("AGENT_TIMEOUT".to_string(), self.timeout_secs.to_string()),
            ("AGENT_AUTORUN".to_string(), self.autorun.join(";")),
            (
                "AGENT_AUTORUN_AFTER_PEERS".to_string(),
                self.autorun_after_peers.to_string(),
            ),
            (
                "AGENT_EXIT_ON_DISCONNECT".to_string(),
                b(self.exit_on_disconnect),
            ),
        ];
        vars.extend(self.extra_env.iter().cloned());
        vars
    }
}

/// `CMD send <mode> <target> <channel> <text>`: the payload that makes an agent send a packet.
/// mode: "reliable" | "unreliable" | "ordered"; channel 0 = pick from the mode, 3.. = custom.
pub fn cmd_send(mode: &str, target: i64, channel: i64, text: &str) -> String {
    format!("CMD send {mode} {target} {channel} {text}")
}

/// `CMD <command>`, e.g. `cmd("kick 1234")`, `cmd("quit")`.
pub fn cmd(command: &str) -> String {
    format!("CMD {command}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of agent output.
#[derive(Clone, Debug)]
pub struct Line {
    /// Time since the agent was spawned, when the harness read the line.
    pub at: Duration,
    pub stream: Stream,
    pub text: String,
}

/// A parsed `RECV from=<id> channel=<enet channel> text=<payload>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recv {
    pub from: i64,
    pub channel: i64,
    pub text: String,
}

impl Recv {
    pub fn parse(line: &str) -> Option<Recv> {
        let rest = line.strip_prefix("RECV from=")?;
        let (from, rest) = rest.split_once(' ')?;
        let rest = rest.strip_prefix("channel=")?;
        let (channel, rest) = rest.split_once(' ')?;
        let text = rest.strip_prefix("text=")?;
        Some(Recv {
            from: from.parse().ok()?,
            channel: channel.parse().ok()?,
            text: text.to_string(),
        })
    }
}

/// A running Godot agent. Killed (Child::kill, by its own pid) and reaped on drop; its temporary
/// HOME is removed then too.
pub struct Agent {
    name: String,
    child: Child,
    rx: Receiver<(Stream, Instant, String)>,
    /// Every line read so far, both streams, in arrival order.
    lines: Vec<Line>,
    /// consumed[i]: line i was returned by `wait_line`/`wait_recv`.
    consumed: Vec<bool>,
    /// Both reader threads have ended (EOF on stdout and stderr).
    streams_closed: bool,
    exit: Option<ExitStatus>,
    started: Instant,
    home: PathBuf,
    config: AgentConfig,
}

fn spawn_reader<R: Read + Send + 'static>(
    stream: Stream,
    pipe: R,
    tx: Sender<(Stream, Instant, String)>,
    echo: Option<String>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
                        buf.pop();
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(name) = &echo {
                        let tag = if stream == Stream::Stdout {
                            "out"
                        } else {
                            "err"
                        };
                        eprintln!("[godot {name} {tag}] {text}");
                    }
                    if tx.send((stream, Instant::now(), text)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

impl Agent {
    /// Starts `bin --path tests/godot -s res://agent.gd` with the config's AGENT_* variables and
    /// a fresh temporary HOME (Godot writes user:// data under $HOME/.local/share/godot).
    pub fn spawn(bin: &Path, cfg: &AgentConfig) -> io::Result<Agent> {
        let project = agent_project_dir();
        if !project.join("agent.gd").is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", project.join("agent.gd").display()),
            ));
        }
        let home = env::temp_dir().join(format!(
            "enet-mp-godot-{}-{}-{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            pseudo_random() & 0xffff_ffff
        ));
        fs::create_dir_all(&home)?;

        let mut command = Command::new(bin);
        command
            .arg("--path")
            .arg(&project)
            .arg("-s")
            .arg("res://agent.gd")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Do not leak AGENT_* settings from the test's own environment into the agent.
        for (key, _) in env::vars_os() {
            if key.to_string_lossy().starts_with("AGENT_") {
                command.env_remove(&key);
            }
        }
        command
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            // Godot 3.2 logs "Invalid locale 'C'" errors on stderr without a real locale.
            .env("LANG", "en_US.UTF-8")
            .env_remove("LC_ALL");
        for (key, value) in cfg.env_vars() {
            command.env(key, value);
        }

        let started = Instant::now();
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&home);
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", bin.display()),
                ));
            }
        };
        let echo = if env::var(ECHO_ENV).map(|v| v == "1").unwrap_or(false) {
            Some(cfg.name.clone())
        } else {
            None
        };
        let (tx, rx) = mpsc::channel();
        spawn_reader(
            Stream::Stdout,
            child.stdout.take().expect("piped stdout"),
            tx.clone(),
            echo.clone(),
        );
        spawn_reader(
            Stream::Stderr,
            child.stderr.take().expect("piped stderr"),
            tx,
            echo,
        );

        Ok(Agent {
            name: cfg.name.clone(),
            child,
            rx,
            lines: Vec::new(),
            consumed: Vec::new(),
            streams_closed: false,
            exit: None,
            started,
            home,
            config: cfg.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// OS process id of the Godot process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since spawn.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn push(&mut self, (stream, at, text): (Stream, Instant, String)) {
        self.lines.push(Line {
            at: at.saturating_duration_since(self.started),
            stream,
            text,
        });
        self.consumed.push(false);
    }

    /// Moves every line already received into `lines` without blocking.
    pub fn pump(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(item) => self.push(item),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.streams_closed = true;
                    break;
                }
            }
        }
    }

    /// Waits at most `timeout` for one more line (or for the streams to close).
    /// Returns false when nothing more can arrive.
    fn pump_wait(&mut self, timeout: Duration) -> bool {
        if self.streams_closed {
            return false;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(item) => {
                self.push(item);
                self.pump();
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => {
                self.streams_closed = true;
                false
            }
        }
    }

    fn find(
        &self,
        stream: Stream,
        from: usize,
        unconsumed_only: bool,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Option<usize> {
        (from..self.lines.len()).find(|&i| {
            let line = &self.lines[i];
            line.stream == stream && !(unconsumed_only && self.consumed[i]) && pred(&line.text)
        })
    }

    fn wait_impl(
        &mut self,
        stream: Stream,
        consume: bool,
        pred: &mut dyn FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        self.pump();
        let mut scanned = 0;
        loop {
            if let Some(i) = self.find(stream, scanned, consume, pred) {
                if consume {
                    self.consumed[i] = true;
                }
                return Ok(self.lines[i].text.clone());
            }
            scanned = self.lines.len();
            let now = Instant::now();
            if now >= deadline {
                return Err(self.failure(&format!("no matching line within {timeout:?}")));
            }
            if !self.pump_wait(deadline - now) {
                // Both pipes are closed: the agent has exited and nothing more will come.
                self.reap(Duration::from_secs(2));
                if let Some(i) = self.find(stream, scanned, consume, pred) {
                    if consume {
                        self.consumed[i] = true;
                    }
                    return Ok(self.lines[i].text.clone());
                }
                return Err(self.failure("the agent exited before printing a matching line"));
            }
        }
    }

    /// Waits for the first stdout line matching `pred` that no earlier `wait_line` returned
    /// (earlier lines included), marks it consumed and returns it. Repeated identical events can
    /// therefore be waited for one by one, and different events in any order.
    pub fn wait_line(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_impl(Stream::Stdout, true, &mut pred, timeout)
    }

    /// Waits for the first stdout line matching `pred` among all lines seen so far (consumed or
    /// not) and later ones; does not consume.
    pub fn wait_for(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_impl(Stream::Stdout, false, &mut pred, timeout)
    }

    /// `wait_line` for an exact line.
    pub fn wait_exact(&mut self, line: &str, timeout: Duration) -> Result<String, String> {
        self.wait_line(|l| l == line, timeout)
    }

    /// `wait_for` on stderr (Godot's own error messages).
    pub fn wait_stderr(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_impl(Stream::Stderr, false, &mut pred, timeout)
    }

    /// Waits for (and consumes) the first RECV line whose parsed form matches `pred`.
    pub fn wait_recv(
        &mut self,
        mut pred: impl FnMut(&Recv) -> bool,
        timeout: Duration,
    ) -> Result<Recv, String> {
        let line = self.wait_line(
            |l| Recv::parse(l).map(|r| pred(&r)).unwrap_or(false),
            timeout,
        )?;
        Ok(Recv::parse(&line).expect("matched RECV line parses"))
    }

    /// Waits for (and consumes) a RECV line with exactly this payload text.
    pub fn wait_recv_text(&mut self, text: &str, timeout: Duration) -> Result<Recv, String> {
        self.wait_recv(|r| r.text == text, timeout)
    }

    /// Waits for `READY id=N` and returns N.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<i64, String> {
        let line = self.wait_for(|l| l.starts_with("READY id="), timeout)?;
        line["READY id=".len()..]
            .trim()
            .parse()
            .map_err(|e| self.failure(&format!("bad READY line {line:?}: {e}")))
    }

    /// The agent's unique id from `READY id=N`, waiting up to READY_TIMEOUT; panics with the
    /// agent's output otherwise.
    pub fn id(&mut self) -> i64 {
        match self.wait_ready(READY_TIMEOUT) {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    /// Snapshot of the stdout lines seen so far.
    pub fn lines(&mut self) -> Vec<String> {
        self.pump();
        self.lines
            .iter()
            .filter(|l| l.stream == Stream::Stdout)
            .map(|l| l.text.clone())
            .collect()
    }

    /// Snapshot of the stderr lines seen so far.
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.pump();
        self.lines
            .iter()
            .filter(|l| l.stream == Stream::Stderr)
            .map(|l| l.text.clone())
            .collect()
    }

    /// Snapshot of every line with its stream and arrival time.
    pub fn timed_lines(&mut self) -> Vec<Line> {
        self.pump();
        self.lines.clone()
    }

    /// Every RECV line seen so far, parsed (consumed or not).
    pub fn recvs(&mut self) -> Vec<Recv> {
        self.lines().iter().filter_map(|l| Recv::parse(l)).collect()
    }

    /// Number of stdout lines seen so far that match `pred`.
    pub fn count(&mut self, mut pred: impl FnMut(&str) -> bool) -> usize {
        self.lines().iter().filter(|l| pred(l)).count()
    }

    /// Whole output so far, both streams, with times since spawn.
    pub fn output(&mut self) -> String {
        self.pump();
        self.format_output()
    }

    fn format_output(&self) -> String {
        let mut s = String::new();
        for line in &self.lines {
            let tag = match line.stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            let _ = writeln!(s, "  [{:>8.3}s {tag}] {}", line.at.as_secs_f64(), line.text);
        }
        if self.lines.is_empty() {
            s.push_str("  (no output)\n");
        }
        s
    }

    fn failure(&mut self, what: &str) -> String {
        self.pump();
        let state = match self.refresh_exit() {
            Some(status) => format!("exited with {status}"),
            None => "still running".to_string(),
        };
        format!(
            "godot agent '{}' (pid {}, {state}, {:.3}s after spawn): {what}\n\
             --- agent output ---\n{}--- end of agent output ---",
            self.name,
            self.child.id(),
            self.started.elapsed().as_secs_f64(),
            self.format_output()
        )
    }

    /// After the process exited: collect the remaining lines until both pipes close.
    fn reap(&mut self, max: Duration) {
        let deadline = Instant::now() + max;
        while !self.streams_closed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.pump_wait((deadline - now).min(Duration::from_millis(50)));
        }
        self.refresh_exit();
    }

    /// Records the exit status if the process has exited (non-blocking, no output collection).
    fn refresh_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// The exit status if the agent has exited (non-blocking).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.pump();
        let had_exited = self.exit.is_some();
        if self.refresh_exit().is_some() && !had_exited {
            self.reap(Duration::from_secs(2));
        }
        self.exit
    }

    /// Waits at most `timeout` for the agent to exit, collecting its output meanwhile.
    /// After it returns Some, `lines()` holds everything the agent printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let step = (deadline - now).min(Duration::from_millis(10));
            if !self.pump_wait(step) {
                // Pipes closed: the exit is imminent; wait for it without spinning too hard.
                match self.child.try_wait() {
                    Ok(Some(status)) => {
                        self.exit = Some(status);
                        return Some(status);
                    }
                    _ => thread::sleep(step),
                }
            }
        }
    }

    /// Like `wait_exit` but returns the exit code, with the output in the error.
    pub fn expect_exit_code(&mut self, timeout: Duration) -> Result<i32, String> {
        match self.wait_exit(timeout) {
            Some(status) => status
                .code()
                .ok_or_else(|| self.failure(&format!("killed by a signal: {status}"))),
            None => Err(self.failure(&format!("did not exit within {timeout:?}"))),
        }
    }

    /// Kills the agent now (by its pid, through Child::kill) and reaps it.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            if let Ok(status) = self.child.wait() {
                self.exit = Some(status);
            }
            self.reap(Duration::from_secs(1));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            let out = self.format_output();
            eprintln!(
                "--- output of godot agent '{}' (pid {}) ---\n{out}--- end ---",
                self.name,
                self.child.id()
            );
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}
