//! What the two load generators (`examples/load.rs` for ENet, `examples/ws_load.rs` for
//! WebSocket) share: their one line of JSON, the server's CPU time and RSS read from /proc, and
//! percentiles of round trips. Included by both with `#[path]`; not an example of its own.

use std::time::Instant;

/// The report: one JSON object (serde_json; its keys come out sorted).
#[derive(Default)]
pub struct Json(serde_json::Map<String, serde_json::Value>);

impl Json {
    fn set(&mut self, k: &str, v: serde_json::Value) -> &mut Self {
        self.0.insert(k.to_string(), v);
        self
    }
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.set(k, v.into())
    }
    pub fn int(&mut self, k: &str, v: impl Into<i128>) -> &mut Self {
        let v = v.into();
        let value = match i64::try_from(v) {
            Ok(i) => i.into(),
            Err(_) => (v as f64).into(),
        };
        self.set(k, value)
    }
    /// A number rounded to three decimals; not finite becomes null.
    pub fn num(&mut self, k: &str, v: f64) -> &mut Self {
        let rounded = (v * 1000.0).round() / 1000.0;
        self.set(
            k,
            serde_json::Number::from_f64(rounded).map_or(serde_json::Value::Null, Into::into),
        )
    }
    pub fn opt(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.set(k, serde_json::Value::Null),
        }
    }
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.set(k, v.into())
    }
    pub fn finish(self) -> String {
        serde_json::Value::Object(self.0).to_string()
    }
}

/// VmRSS of a process, in kB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// A kB field of /proc/PID/status (`VmRSS:`, `VmHWM:` for the peak RSS since the process
/// started, ...).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of a process (this one when `None`), in seconds (USER_HZ is 100 on
/// Linux).
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the state field (index 0).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU use of this process and of the server between two points in time.
pub struct CpuMeter {
    at: Instant,
    own: Option<f64>,
    server: Option<f64>,
    pid: Option<u32>,
}

impl CpuMeter {
    pub fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            at: Instant::now(),
            own: cpu_secs(None),
            server: pid.and_then(|p| cpu_secs(Some(p))),
            pid,
        }
    }

    /// (load %, server %) of one core.
    pub fn percent(&self) -> (Option<f64>, Option<f64>) {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let own = match (self.own, cpu_secs(None)) {
            (Some(a), Some(b)) => Some((b - a) / wall * 100.0),
            _ => None,
        };
        let server = match (self.server, self.pid.and_then(|p| cpu_secs(Some(p)))) {
            (Some(a), Some(b)) => Some((b - a) / wall * 100.0),
            _ => None,
        };
        (own, server)
    }
}

/// The `p`th percentile (nearest rank) of sorted nanoseconds, in microseconds.
pub fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    Some(sorted[rank.min(sorted.len() - 1)] as f64 / 1e3)
}
