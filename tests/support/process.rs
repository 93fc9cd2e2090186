//! Processes in tests (the example binaries, the Godot engine): find (or build) an example,
//! pick a free port, and [`Proc`], which collects a child's stdout and stderr lines on threads
//! with their arrival times, waits for a line or an exit with a bound, signals the child, dumps
//! everything it said for failure messages, and kills it (and removes its temporary HOME) on drop.

use std::collections::HashSet;
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

/// The example binary next to this test's profile directory, brought up to date by
/// `cargo build --example` once per test process (a no-op when it is), so a test never runs a
/// stale build of it.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "--example", name]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if TEST_ONLY_CARGO_VARS.iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&key);
            }
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_owned());
    }
    path
}

/// Variables cargo sets for a test process that describe the package under test. Build
/// scripts (ring's) declare `rerun-if-env-changed` on some of them, so a `cargo build` run from
/// a test with them set fingerprints differently from one run from a shell, and each rebuilds
/// ring, rustls and this crate (about 50 s) after the other; [`example`] builds without them.
const TEST_ONLY_CARGO_VARS: [&str; 7] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

static HANDED_OUT_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A number that differs between calls and between processes (for ports and directory names).
pub fn pseudo_random() -> u64 {
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

/// A UDP port in 20000..32000 (below Linux's ephemeral range, so that no client socket of this
/// or another test takes it meanwhile) that is free on 127.0.0.1 and 0.0.0.0 right now and was
/// not handed out before by this process: for a child process to listen on.
pub fn free_port() -> u16 {
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
    panic!("free_port: no free UDP port found in 20000..32000");
}

/// A port in [`free_port`]'s range that is free for TCP on 127.0.0.1 right now too (for a
/// WebSocket listener).
pub fn free_tcp_port() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("free_tcp_port: no free TCP port found");
}

/// A fresh, empty directory under the system's temporary directory, named after `tag`, this
/// process and a counter (for a child's HOME: see [`Proc::with_home`]).
pub fn temp_dir(tag: &str) -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "{tag}-{}-{}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        pseudo_random() & 0xffff_ffff
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// "out" or "err", as output dumps tag lines.
    pub fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        }
    }
}

/// One line of a child's output.
#[derive(Clone, Debug)]
pub struct Line {
    /// Time since the child was spawned, when the harness read the line.
    pub at: Duration,
    pub stream: Stream,
    pub text: String,
}

/// Why a wait for a line failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The bound passed.
    Timeout,
    /// Both pipes closed (the child exited) without a matching line.
    Exited,
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
                    if let Some(label) = &echo {
                        eprintln!("[{label} {}] {text}", stream.tag());
                    }
                    if tx.send((stream, Instant::now(), text)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// A spawned process whose stdout and stderr lines are collected on threads, in arrival order,
/// with the time each arrived. Killed (by its own pid, through `Child::kill`) and reaped on
/// drop; its temporary HOME, if it has one, is removed then too.
pub struct Proc {
    /// Its label in failure messages.
    pub name: String,
    pub child: Child,
    rx: Receiver<(Stream, Instant, String)>,
    /// Every line read so far, both streams, in arrival order.
    pub lines: Vec<Line>,
    /// Both reader threads have ended (EOF on stdout and stderr).
    streams_closed: bool,
    exit: Option<ExitStatus>,
    started: Instant,
    home: Option<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` with piped stdin (write to `child.stdin`), named after its program; panics
    /// if it cannot start.
    pub fn spawn(cmd: Command) -> Proc {
        let name = Path::new(cmd.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Proc::start(&name, cmd, Stdio::piped(), None)
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
    }

    /// Spawns `cmd` as `name` with `stdin`; with `echo`, every line is also printed to the
    /// test's stderr as it arrives, as `[<echo> out] text` / `[<echo> err] text`.
    pub fn start(
        name: &str,
        mut cmd: Command,
        stdin: Stdio,
        echo: Option<String>,
    ) -> io::Result<Proc> {
        let started = Instant::now();
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        spawn_reader(Stream::Stdout, out, tx.clone(), echo.clone());
        spawn_reader(Stream::Stderr, err, tx, echo);
        Ok(Proc {
            name: name.to_string(),
            child,
            rx,
            lines: Vec::new(),
            streams_closed: false,
            exit: None,
            started,
            home: None,
        })
    }

    /// Makes `home` (the child's temporary HOME) go with the process: removed on drop.
    pub fn with_home(mut self, home: PathBuf) -> Proc {
        self.home = Some(home);
        self
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since spawn.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Both pipes are closed: nothing more will arrive.
    pub fn streams_closed(&self) -> bool {
        self.streams_closed
    }

    fn push(&mut self, (stream, at, text): (Stream, Instant, String)) {
        self.lines.push(Line {
            at: at.saturating_duration_since(self.started),
            stream,
            text,
        });
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

    /// Waits at most `timeout` for one more line (or for the streams to close). Returns false
    /// once both pipes are closed and nothing more can arrive.
    pub fn pump_wait(&mut self, timeout: Duration) -> bool {
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

    fn texts(&mut self, stream: Option<Stream>) -> Vec<String> {
        self.pump();
        self.lines
            .iter()
            .filter(|l| stream.map_or(true, |s| l.stream == s))
            .map(|l| l.text.clone())
            .collect()
    }

    /// The stdout lines so far.
    pub fn stdout(&mut self) -> Vec<String> {
        self.texts(Some(Stream::Stdout))
    }

    /// The stderr lines so far.
    pub fn stderr(&mut self) -> Vec<String> {
        self.texts(Some(Stream::Stderr))
    }

    /// Every line so far, both streams, in arrival order.
    pub fn all_lines(&mut self) -> Vec<String> {
        self.texts(None)
    }

    /// Waits for the first line, at index `from` or later, that `filter(index, line)` accepts,
    /// and returns its index; at most `timeout`.
    pub fn wait_index(
        &mut self,
        from: usize,
        filter: &mut dyn FnMut(usize, &Line) -> bool,
        timeout: Duration,
    ) -> Result<usize, WaitError> {
        let deadline = Instant::now() + timeout;
        self.pump();
        let mut scanned = from;
        loop {
            if let Some(i) = (scanned..self.lines.len()).find(|&i| filter(i, &self.lines[i])) {
                return Ok(i);
            }
            scanned = scanned.max(self.lines.len());
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::Timeout);
            }
            if !self.pump_wait(deadline - now) {
                // Both pipes are closed: the child has exited and nothing more will come.
                self.reap(Duration::from_secs(2));
                return (scanned..self.lines.len())
                    .find(|&i| filter(i, &self.lines[i]))
                    .ok_or(WaitError::Exited);
            }
        }
    }

    /// Waits for a line of either stream matching `pred` among all lines so far and later ones;
    /// panics with everything the process said after `limit`, or when it exits first.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool, limit: Duration) -> String {
        match self.wait_index(0, &mut |_, l| pred(&l.text), limit) {
            Ok(i) => self.lines[i].text.clone(),
            Err(e) => {
                let output = self.output();
                panic!(
                    "{}: no matching line ({e:?}, limit {limit:?}); output so far:\n{output}",
                    self.name
                )
            }
        }
    }

    /// Waits for a stdout line matching `pred` among all lines so far and later ones; the error
    /// says why there was none (the caller adds [`Proc::output`] as it sees fit).
    pub fn wait_stdout(
        &mut self,
        pred: impl Fn(&str) -> bool,
        limit: Duration,
    ) -> Result<String, String> {
        let r = self.wait_index(
            0,
            &mut |_, l| l.stream == Stream::Stdout && pred(&l.text),
            limit,
        );
        match r {
            Ok(i) => Ok(self.lines[i].text.clone()),
            Err(WaitError::Timeout) => {
                Err(format!("{}: no matching line within {limit:?}", self.name))
            }
            Err(WaitError::Exited) => {
                let status = self
                    .refresh_exit()
                    .map_or("its pipes closed".to_string(), |s| format!("exited ({s})"));
                Err(format!(
                    "{}: {status} before printing a matching line",
                    self.name
                ))
            }
        }
    }

    /// After the process exited: collects the remaining lines until both pipes close, at most
    /// `max`.
    pub fn reap(&mut self, max: Duration) {
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

    /// The exit status if the process has exited (non-blocking, no output collection).
    pub fn refresh_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// The exit status if the process has exited (non-blocking); when it has just been seen to
    /// exit, its remaining output is collected first (at most 2 s).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.pump();
        let had_exited = self.exit.is_some();
        if self.refresh_exit().is_some() && !had_exited {
            self.reap(Duration::from_secs(2));
        }
        self.exit
    }

    /// Waits at most `limit` for the process to exit, collecting its output meanwhile. After it
    /// returns Some, `lines` holds everything the process printed.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
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

    /// Sends signal `sig` ("TERM", "INT", ...) through kill(1), by pid; panics if kill fails.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGTERM (unless it has exited already) and waits at most `limit` for the exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.try_exit().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        self.wait_exit(limit)
    }

    /// Kills the process now (by its pid, through `Child::kill`), reaps it and collects the
    /// rest of its output (at most 1 s).
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

    /// utime + stime of the process, in clock ticks, from /proc.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split(' ').collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// The lines so far, both streams, one per line as `  [   1.234s out] text`.
    pub fn format_lines(&self) -> String {
        let mut s = String::new();
        for line in &self.lines {
            let _ = writeln!(
                s,
                "  [{:>8.3}s {}] {}",
                line.at.as_secs_f64(),
                line.stream.tag(),
                line.text
            );
        }
        if self.lines.is_empty() {
            s.push_str("  (no output)\n");
        }
        s
    }

    /// Everything it printed so far, both streams, with times since spawn, under a heading with
    /// its name, pid and state.
    pub fn output(&mut self) -> String {
        self.pump();
        let state = match self.refresh_exit() {
            Some(status) => format!("exited with {status}"),
            None => "still running".to_string(),
        };
        format!(
            "--- {} (pid {}, {state}, {:.3}s after spawn) ---\n{}",
            self.name,
            self.child.id(),
            self.started.elapsed().as_secs_f64(),
            self.format_lines()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if let Some(home) = &self.home {
            let _ = fs::remove_dir_all(home);
        }
    }
}

/// The relay server `binary` (Cargo's `CARGO_BIN_EXE_relay-server`, which only the test
/// binaries built with the feature have) on `port` of the loopback with this `--compression`,
/// logging at info; add flags, then [`start_relay`].
pub fn relay_command(binary: &str, port: u16, compression: &str) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--compression", compression])
        .env("RUST_LOG", "info");
    cmd
}

/// Spawns a relay server and returns once it says it listens (its line names the compression
/// and limits it runs with); panics after `limit`.
pub fn start_relay(cmd: Command, limit: Duration) -> Proc {
    let mut p = Proc::spawn(cmd);
    p.wait_line(|l| l.contains("relay server on"), limit);
    p
}
