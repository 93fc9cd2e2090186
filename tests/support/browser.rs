//! Headless Chromium in tests, driven over the Chrome DevTools Protocol (CDP): finding the
//! browser ([`require_chromium`]), starting it with a fresh profile ([`Chromium::launch`]),
//! opening pages ([`Chromium::open`]), evaluating JavaScript in them ([`Chromium::eval`],
//! [`Chromium::wait_for`]) and taking screenshots ([`Chromium::screenshot`]).
//!
//! The browser is started with `--remote-debugging-port=0`; it prints the address it chose as
//! `DevTools listening on ws://127.0.0.1:PORT/devtools/browser/UUID` on stderr. The driver
//! connects there with `tungstenite` and speaks CDP's JSON (`serde_json`), one page per
//! "flattened" session (`Target.attachToTarget` with `flatten: true`, then `sessionId` on each
//! command).
//!
//! The tests are single-threaded and must keep polling their Rust peers while the browser
//! works, so no CDP call blocks: the socket has a short read timeout and every wait for an
//! answer calls `idle` between reads, until its bound. Every wait is bounded.
//!
//! ```ignore
//! let Some(bin) = browser::require_chromium() else { return };
//! let mut chrome = browser::Chromium::launch(&bin).unwrap_or_else(|e| panic!("{e}"));
//! let tab = chrome.open(&browser::page_url("ws://127.0.0.1:9081", "Ann"), &mut || {}).unwrap();
//! let id = chrome.wait_for(&tab, "window.room && window.room.id", LIMIT, &mut || {}).unwrap();
//! ```

use super::process::{temp_dir, Proc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Environment variable that skips the browser tests explicitly when set to `1`.
pub const SKIP_ENV: &str = "ENET_MP_SKIP_BROWSER";
/// Environment variable naming the Chromium binary (default: `chromium` on PATH).
pub const BIN_ENV: &str = "CHROMIUM_BIN";
/// When set to `1`, everything the browser prints is echoed to the test's stderr.
pub const ECHO_ENV: &str = "ENET_MP_BROWSER_ECHO";
/// Binary names searched on PATH, in this order.
pub const DEFAULT_BINS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// How long the browser may take to start and print its DevTools address.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a single CDP command may take to be answered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The read timeout of the CDP socket: how long a read waits before `idle` runs again.
const READ_SLICE: Duration = Duration::from_millis(2);
/// Pause between two evaluations of [`Chromium::wait_for`] (spent calling `idle`).
const POLL_EVERY: Duration = Duration::from_millis(20);
/// The viewport of every page (CSS pixels).
pub const VIEWPORT: (u32, u32) = (1100, 680);

/// `CHROMIUM_BIN` if set (non-empty), else the first of [`DEFAULT_BINS`] found on PATH.
pub fn chromium_binary() -> Option<PathBuf> {
    if let Some(v) = env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let path = env::var_os("PATH")?;
    DEFAULT_BINS.iter().find_map(|name| {
        env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The Chromium binary, or `None` (after printing a `SKIPPED:` line) when
/// `ENET_MP_SKIP_BROWSER=1`. Panics when the browser is missing: the browser tests must not pass
/// silently without it.
#[track_caller]
pub fn require_chromium() -> Option<PathBuf> {
    if env::var(SKIP_ENV).map(|v| v.trim() == "1").unwrap_or(false) {
        eprintln!("SKIPPED: browser test skipped because {SKIP_ENV}=1");
        return None;
    }
    match chromium_binary() {
        Some(bin) if bin.is_file() => Some(bin),
        Some(bin) => panic!(
            "{BIN_ENV}={} does not name a file. Point it at a Chromium binary, install it with \
             `apt-get install -y chromium` (or `bash scripts/install-deps.sh`), \
             or set {SKIP_ENV}=1 to skip the browser tests explicitly.",
            bin.display()
        ),
        None => panic!(
            "Chromium not found: none of {DEFAULT_BINS:?} is on PATH and {BIN_ENV} is not set. \
             Install it with `apt-get install -y chromium` (Debian; or \
             `bash scripts/install-deps.sh`), or set {SKIP_ENV}=1 to skip the browser tests \
             explicitly."
        ),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` when `keep_slash`).
fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The file:// URL of `examples/browser/index.html` with `?ws=<ws_url>&name=<name>`.
pub fn page_url(ws_url: &str, name: &str) -> String {
    let page = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join("browser")
        .join("index.html");
    format!(
        "file://{}?ws={}&name={}",
        percent_encode(&page.to_string_lossy(), true),
        percent_encode(ws_url, false),
        percent_encode(name, false)
    )
}

/// The directory for the browser test's artefacts (screenshots): `<target dir>/browser-test`,
/// created if needed. The target dir is found from the test executable
/// (`<target>/<profile>/deps/<test>`).
pub fn artefact_dir() -> PathBuf {
    let exe = env::current_exe().expect("test exe");
    let target = exe
        .parent() // deps
        .and_then(|d| d.parent()) // profile
        .and_then(|d| d.parent()) // target
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-test");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Standard base64 (with or without padding) to bytes, for `Page.captureScreenshot`.
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let digits = digits.strip_suffix(b"==").unwrap_or(&digits);
    let digits = digits.strip_suffix(b"=").unwrap_or(digits);
    if digits.len() % 4 == 1 {
        return Err(format!("base64: bad length {}", digits.len()));
    }
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or_else(|| format!("base64: bad character {:?}", c as char))?;
            acc |= v << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

/// One page of the browser, attached through its own CDP session.
#[derive(Clone, Debug)]
pub struct Tab {
    pub target_id: String,
    pub session_id: String,
    /// The URL it was opened with.
    pub url: String,
}

/// A headless Chromium with a fresh profile and its CDP connection. Killed (by its pid) and its
/// profile removed on drop; [`Chromium::close`] asks it to quit first.
pub struct Chromium {
    /// The browser process (its profile directory goes with it).
    pub proc: Proc,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Answers read while waiting for another one, by command id.
    answers: HashMap<u64, Value>,
    /// What the pages logged (console calls, uncaught exceptions), for failure messages.
    pub console: Vec<String>,
}

impl Chromium {
    /// Starts `bin` headless with a fresh profile and connects to its DevTools socket. The
    /// error carries everything the browser printed.
    pub fn launch(bin: &Path) -> Result<Chromium, String> {
        let profile = temp_dir("enet-mp-chromium").map_err(|e| format!("profile dir: {e}"))?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-dev-shm-usage",
            "--mute-audio",
            "--hide-scrollbars",
            "--password-store=basic",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--window-size={},{}", VIEWPORT.0, VIEWPORT.1))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .env("HOME", &profile);
        let echo = env::var(ECHO_ENV)
            .is_ok_and(|v| v == "1")
            .then(|| "chromium".to_string());
        let mut proc = match Proc::start("chromium", cmd, Stdio::null(), echo) {
            Ok(p) => p.with_home(profile),
            Err(e) => {
                let _ = fs::remove_dir_all(&profile);
                return Err(format!("cannot start {}: {e}", bin.display()));
            }
        };
        const MARK: &str = "DevTools listening on ";
        let found = proc.wait_index(0, &mut |_, l| l.text.contains(MARK), LAUNCH_TIMEOUT);
        let line = match found {
            Ok(i) => proc.lines[i].text.clone(),
            Err(e) => {
                return Err(format!(
                "chromium printed no `{MARK}ws://...` line ({e:?}, limit {LAUNCH_TIMEOUT:?})\n{}",
                proc.output()
            ))
            }
        };
        let url = line[line.find(MARK).unwrap() + MARK.len()..]
            .trim()
            .to_string();
        let ws = connect(&url).map_err(|e| format!("CDP connect {url}: {e}\n{}", proc.output()))?;
        Ok(Chromium {
            proc,
            ws,
            next_id: 1,
            answers: HashMap::new(),
            console: Vec::new(),
        })
    }

    /// Sends one CDP command (on `session`'s page, or the browser's own when `None`) and returns
    /// its id.
    pub fn send(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<u64, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| format!("CDP send {method}: {e}"))?;
        Ok(id)
    }

    /// Reads what the browser sent within about one read slice: stores answers, keeps console
    /// messages and exceptions. Returns an error if the connection is gone.
    fn read_some(&mut self) -> Result<(), String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => self.take(text.as_str())?,
                Ok(Message::Binary(bytes)) => {
                    self.take(std::str::from_utf8(&bytes).map_err(|e| e.to_string())?)?
                }
                Ok(Message::Close(frame)) => return Err(format!("CDP socket closed: {frame:?}")),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Ok(())
                }
                Err(e) => return Err(format!("CDP read: {e}")),
            }
        }
    }

    fn take(&mut self, text: &str) -> Result<(), String> {
        let msg: Value =
            serde_json::from_str(text).map_err(|e| format!("CDP: bad JSON ({e}): {text}"))?;
        if let Some(id) = msg.get("id").and_then(Value::as_u64) {
            self.answers.insert(id, msg);
            return Ok(());
        }
        let params = &msg["params"];
        match msg["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|v| match &v["value"] {
                                Value::String(s) => s.clone(),
                                Value::Null => v["description"].as_str().unwrap_or("").into(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.log(format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("?"),
                    args.join(" ")
                ));
            }
            Some("Runtime.exceptionThrown") => {
                let d = &params["exceptionDetails"];
                let what = d["exception"]["description"]
                    .as_str()
                    .or(d["text"].as_str())
                    .unwrap_or("?");
                self.log(format!("uncaught exception: {what}"));
            }
            Some("Inspector.targetCrashed") => self.log("the page crashed".into()),
            _ => {}
        }
        Ok(())
    }

    fn log(&mut self, line: String) {
        if self.console.len() < 500 {
            self.console.push(line);
        }
    }

    /// Waits at most `limit` for the answer to command `id`, calling `idle` between reads;
    /// its `result`, or the CDP error as text.
    pub fn answer(
        &mut self,
        id: u64,
        what: &str,
        limit: Duration,
        idle: &mut dyn FnMut(),
    ) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(mut msg) = self.answers.remove(&id) {
                if let Some(err) = msg.get("error") {
                    return Err(format!("CDP {what}: {err}"));
                }
                return Ok(msg["result"].take());
            }
            if Instant::now() >= deadline {
                return Err(format!("CDP {what}: no answer within {limit:?}"));
            }
            idle();
            self.read_some()?;
        }
    }

    /// Sends a command and waits (at most [`CALL_TIMEOUT`], calling `idle`) for its result.
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        idle: &mut dyn FnMut(),
    ) -> Result<Value, String> {
        let id = self.send(session, method, params)?;
        self.answer(id, method, CALL_TIMEOUT, idle)
    }

    /// Opens `url` in a new window of [`VIEWPORT`]'s size and attaches to it; console messages
    /// and exceptions of the page are collected in [`Chromium::console`].
    pub fn open(&mut self, url: &str, idle: &mut dyn FnMut()) -> Result<Tab, String> {
        let created = self.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "newWindow": true,
                    "width": VIEWPORT.0, "height": VIEWPORT.1 }),
            idle,
        )?;
        let target_id = created["targetId"]
            .as_str()
            .ok_or_else(|| format!("Target.createTarget: no targetId in {created}"))?
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
            idle,
        )?;
        let session_id = attached["sessionId"]
            .as_str()
            .ok_or_else(|| format!("Target.attachToTarget: no sessionId in {attached}"))?
            .to_string();
        let s = Some(session_id.as_str());
        self.call(s, "Runtime.enable", json!({}), idle)?;
        self.call(s, "Page.enable", json!({}), idle)?;
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": VIEWPORT.0, "height": VIEWPORT.1,
                    "deviceScaleFactor": 1, "mobile": false }),
            idle,
        )?;
        let nav = self.call(s, "Page.navigate", json!({ "url": url }), idle)?;
        if let Some(err) = nav.get("errorText").and_then(Value::as_str) {
            return Err(format!("Page.navigate {url}: {err}"));
        }
        Ok(Tab {
            target_id,
            session_id,
            url: url.to_string(),
        })
    }

    /// Evaluates `expression` in `tab` (promises awaited) and returns its value as JSON
    /// (`undefined` reads as null); an exception is an error.
    pub fn eval(
        &mut self,
        tab: &Tab,
        expression: &str,
        idle: &mut dyn FnMut(),
    ) -> Result<Value, String> {
        let mut r = self.call(
            Some(&tab.session_id),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            idle,
        )?;
        if let Some(d) = r.get("exceptionDetails") {
            let what = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("?");
            return Err(format!("{expression}: threw {what}"));
        }
        Ok(r["result"]["value"].take())
    }

    /// Evaluates `expression` in `tab` every few milliseconds (calling `idle` meanwhile) until
    /// it yields something other than null, false, 0 or "", and returns that; at most `limit`.
    /// The error holds the last value seen (and the page's console).
    pub fn wait_for(
        &mut self,
        tab: &Tab,
        expression: &str,
        limit: Duration,
        idle: &mut dyn FnMut(),
    ) -> Result<Value, String> {
        let deadline = Instant::now() + limit;
        loop {
            let v = match self.eval(tab, expression, idle) {
                Ok(v) => v,
                // A page that is still navigating: its old context is gone, the new one not
                // there yet. Try again.
                Err(e)
                    if e.starts_with("CDP Runtime.evaluate")
                        && e.contains("context")
                        && Instant::now() < deadline =>
                {
                    Value::Null
                }
                Err(e) => return Err(e),
            };
            let truthy = match &v {
                Value::Null | Value::Bool(false) => false,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "`{expression}` still {v} after {limit:?}; page console:\n{}",
                    self.console_text()
                ));
            }
            let pause = Instant::now() + POLL_EVERY;
            while Instant::now() < pause {
                idle();
                self.read_some()?;
            }
        }
    }

    /// Takes a PNG screenshot of `tab`'s viewport and writes it to `path`.
    pub fn screenshot(
        &mut self,
        tab: &Tab,
        path: &Path,
        idle: &mut dyn FnMut(),
    ) -> Result<(), String> {
        let s = Some(tab.session_id.as_str());
        self.call(s, "Page.bringToFront", json!({}), idle)?;
        let shot = self.call(
            s,
            "Page.captureScreenshot",
            json!({ "format": "png", "fromSurface": true }),
            idle,
        )?;
        let data = shot["data"]
            .as_str()
            .ok_or("Page.captureScreenshot: no data")?;
        let png = base64_decode(data)?;
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err("Page.captureScreenshot: not a PNG".into());
        }
        fs::write(path, png).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// The page console lines collected so far, one per line (or a note that there were none).
    pub fn console_text(&self) -> String {
        if self.console.is_empty() {
            return "  (nothing logged)".into();
        }
        self.console.iter().map(|l| format!("  {l}\n")).collect()
    }

    /// Asks the browser to quit (`Browser.close`), waits a few seconds for it, then kills it by
    /// its pid if it is still there. Returns whether it quit by itself.
    pub fn close(&mut self) -> bool {
        let asked = self.send(None, "Browser.close", json!({})).is_ok();
        let quit = asked && self.proc.wait_exit(Duration::from_secs(5)).is_some();
        self.proc.kill();
        quit
    }
}

/// Connects to the DevTools WebSocket at `url` (ws://127.0.0.1:PORT/...), with bounded
/// connect and handshake, then a short read timeout so that reads never block for long.
fn connect(url: &str) -> Result<WebSocket<TcpStream>, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = authority
        .parse()
        .map_err(|e| format!("bad address {authority}: {e}"))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
    stream.set_nodelay(true).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    let (ws, _response) =
        tungstenite::client::client(url, stream).map_err(|e| format!("handshake: {e}"))?;
    ws.get_ref()
        .set_read_timeout(Some(READ_SLICE))
        .map_err(err)?;
    Ok(ws)
}

fn err(e: io::Error) -> String {
    e.to_string()
}
