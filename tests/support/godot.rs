//! The Godot 3 engine in interop tests: finding it, starting a script of tests/godot in a
//! temporary HOME ([`spawn_engine`]), and the scriptable agent (`tests/godot/agent.gd`), read and
//! driven through [`Agent`].
//!
//! The agent prints one event per line on stdout (see agent.gd for the list); Godot's own
//! messages (script errors, engine warnings) arrive on stderr. Both streams are read on
//! background threads (by `process::Proc`) and kept, in arrival order, for waiting and for
//! failure messages.
//!
//! Typical use:
//! ```ignore
//! let Some(bin) = godot::require_godot() else { return };
//! let port = process::free_port();
//! let mut server = godot::Agent::spawn(&bin, &godot::AgentConfig::server(port)).unwrap();
//! server.wait_line(|l| l.starts_with("READY "), godot::SECS_10).unwrap();
//! ```

use super::process::{temp_dir, Line, Proc, Stream, WaitError};
use std::env;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

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

/// The label under which a process's lines are echoed to the test's stderr as they arrive, when
/// `ENET_MP_GODOT_ECHO=1`.
pub fn echo_label(label: &str) -> Option<String> {
    env::var(ECHO_ENV)
        .is_ok_and(|v| v == "1")
        .then(|| label.to_string())
}

/// Starts `bin <args> --path tests/godot -s res://<script>` as `name`, with `vars` and a fresh
/// temporary HOME (Godot writes user:// data under $HOME/.local/share/godot) that is removed
/// with the process. The test's own AGENT_*, API_* and VARIANT_* settings do not leak into it.
/// Echoed (see [`echo_label`]) as `echo`.
pub fn spawn_engine(
    bin: &Path,
    name: &str,
    args: &[&str],
    script: &str,
    vars: &[(String, String)],
    echo: &str,
) -> io::Result<Proc> {
    let project = agent_project_dir();
    if !project.join(script).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", project.join(script).display()),
        ));
    }
    let home = temp_dir("enet-mp-godot")?;
    let mut command = Command::new(bin);
    command
        .args(args)
        .arg("--path")
        .arg(&project)
        .arg("-s")
        .arg(format!("res://{script}"));
    for (key, _) in env::vars_os() {
        let key_text = key.to_string_lossy();
        if ["AGENT_", "API_", "VARIANT_"]
            .iter()
            .any(|p| key_text.starts_with(p))
        {
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
    for (key, value) in vars {
        command.env(key, value);
    }
    match Proc::start(name, command, Stdio::null(), echo_label(echo)) {
        Ok(p) => Ok(p.with_home(home)),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&home);
            Err(io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", bin.display()),
            ))
        }
    }
}

/// A running Godot agent: a [`Proc`] (killed and reaped on drop, its temporary HOME removed
/// then too) whose stdout lines can be consumed one by one.
pub struct Agent {
    proc: Proc,
    /// consumed[i]: line i was returned by `wait_line`/`wait_recv` (kept as long as
    /// `proc.lines`, see [`Agent::sync`]).
    consumed: Vec<bool>,
    config: AgentConfig,
}

impl Agent {
    /// Starts `bin --path tests/godot -s res://agent.gd` with the config's AGENT_* variables and
    /// a fresh temporary HOME.
    pub fn spawn(bin: &Path, cfg: &AgentConfig) -> io::Result<Agent> {
        let proc = spawn_engine(
            bin,
            &cfg.name,
            &[],
            "agent.gd",
            &cfg.env_vars(),
            &format!("godot {}", cfg.name),
        )?;
        Ok(Agent {
            proc,
            consumed: Vec::new(),
            config: cfg.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.proc.name
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// OS process id of the Godot process.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Time since spawn.
    pub fn elapsed(&self) -> Duration {
        self.proc.elapsed()
    }

    /// Keeps `consumed` as long as the lines.
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
        self.sync();
        self.proc.stdout()
    }

    /// Snapshot of the stderr lines seen so far.
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.sync();
        self.proc.stderr()
    }

    /// Snapshot of every line with its stream and arrival time.
    pub fn timed_lines(&mut self) -> Vec<Line> {
        self.pump();
        self.proc.lines.clone()
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
    /// After it returns Some, `lines()` holds everything the agent printed.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let r = self.proc.wait_exit(timeout);
        self.sync();
        r
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
        self.proc.kill();
        self.sync();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
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
