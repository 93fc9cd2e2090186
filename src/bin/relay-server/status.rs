//! What the relay server shows about itself: a snapshot the server loop publishes a few times
//! a second (peers, totals, the last minute's rates), its Prometheus metrics, and the commands
//! the admin endpoints send back to the loop. The HTTP thread reads these; it never touches
//! the server.

use enet_multiplayer::relay::DropReason;
use enet_multiplayer::session::RefusalCounts;
use enet_multiplayer::{
    ENetMultiplayerPeer, MultiplayerPeer, PeerId, Refusal, TotalStats, WebSocketStats,
};
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

/// Seconds of per-second rates kept for /status.
const HISTORY: usize = 60;

/// A command from the admin endpoints to the server loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Refuse new connections (true) or accept them again (false).
    Refuse(bool),
    /// Disconnect this client (Godot's `disconnect_peer`).
    Kick(PeerId),
    /// Start draining, as on SIGTERM.
    Drain,
}

/// The server's state as the HTTP thread sees it.
#[derive(Debug)]
pub struct Board {
    started: Instant,
    pub metrics: Metrics,
    snapshot: Mutex<Snapshot>,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// When the loop last published (the liveness of /healthz).
    heartbeat: Option<Instant>,
    listening: bool,
    accepting: bool,
    draining: bool,
    /// /status.json without its `peers`...
    json: Value,
    /// ...which are made into JSON only when asked for: the loop copies numbers, the HTTP
    /// thread formats them (for a thousand clients, formatting each second was a tenth of an
    /// idle server's time).
    peers: Vec<PeerRow>,
}

/// One client's line of /status.json.
#[derive(Debug, Clone, Copy)]
struct PeerRow {
    id: PeerId,
    websocket: bool,
    address: std::net::SocketAddrV4,
    connected_s: f64,
    rtt_ms: u32,
    loss: f32,
    packets_in: u64,
    packets_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    drops: u64,
}

impl PeerRow {
    fn to_json(self) -> Value {
        let enet = |v: Value| if self.websocket { Value::Null } else { v };
        json!({
            "id": self.id,
            "transport": if self.websocket { "websocket" } else { "enet" },
            "address": self.address.to_string(),
            "connected_s": round1(self.connected_s),
            "rtt_ms": enet(self.rtt_ms.into()),
            "loss": enet(round3(f64::from(self.loss)).into()),
            "packets_in": self.packets_in,
            "packets_out": self.packets_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "drops": self.drops,
        })
    }
}

/// The last totals seen, so that counters move by what happened since.
#[derive(Debug, Default)]
pub struct Seen {
    totals: TotalStats,
    ws: WebSocketStats,
    refusals: RefusalCounts,
    history: VecDeque<Value>,
    last_sample: Option<(Instant, TotalStats)>,
    connected_at: HashMap<PeerId, Instant>,
}

impl Seen {
    /// A client connected now.
    pub fn connected(&mut self, id: PeerId) {
        self.connected_at.insert(id, Instant::now());
    }

    /// A client left.
    pub fn disconnected(&mut self, id: PeerId) {
        self.connected_at.remove(&id);
    }
}

impl Board {
    pub fn new() -> Board {
        Board {
            started: Instant::now(),
            metrics: Metrics::new(),
            snapshot: Mutex::new(Snapshot::default()),
        }
    }

    /// Whether the loop published within `max` seconds.
    pub fn alive(&self, max_s: f64) -> bool {
        let s = self.snapshot.lock().expect("snapshot lock");
        s.heartbeat
            .is_some_and(|t| t.elapsed().as_secs_f64() <= max_s)
    }

    /// (listening, accepting, draining)
    pub fn readiness(&self) -> (bool, bool, bool) {
        let s = self.snapshot.lock().expect("snapshot lock");
        (s.listening, s.accepting, s.draining)
    }

    /// /status.json.
    pub fn json(&self) -> String {
        let (mut json, peers) = {
            let s = self.snapshot.lock().expect("snapshot lock");
            (s.json.clone(), s.peers.clone())
        };
        if let Value::Object(map) = &mut json {
            let rows = peers.into_iter().map(PeerRow::to_json).collect();
            map.insert("peers".to_string(), Value::Array(rows));
        }
        json.to_string()
    }

    /// Called by the loop: reads the server, moves the metrics, replaces the snapshot.
    pub fn publish(&self, server: &ENetMultiplayerPeer, seen: &mut Seen, draining: bool) {
        let now = Instant::now();
        let totals = server.stats();
        let ws = server.websocket_stats().unwrap_or_default();
        let refusals = server.refusals();
        let uptime = now.duration_since(self.started).as_secs_f64();
        self.metrics.advance(
            &seen.totals,
            &totals,
            &seen.ws,
            &ws,
            &seen.refusals,
            &refusals,
        );
        let mut rows = Vec::with_capacity(server.peer_count());
        let (mut enet_peers, mut ws_peers) = (0, 0);
        for id in server.peer_ids() {
            let websocket = server.is_websocket_peer(id);
            if websocket {
                ws_peers += 1;
            } else {
                enet_peers += 1;
            }
            let Ok(p) = server.peer_stats(id) else {
                continue;
            };
            if !websocket {
                self.metrics.rtt.observe(f64::from(p.round_trip_time));
            }
            let connected_for = seen
                .connected_at
                .get(&id)
                .map_or(0.0, |t| now.duration_since(*t).as_secs_f64());
            rows.push(PeerRow {
                id,
                websocket,
                address: p.address,
                connected_s: connected_for,
                rtt_ms: p.round_trip_time,
                loss: p.packet_loss,
                packets_in: p.packets_received,
                packets_out: p.packets_sent,
                bytes_in: p.bytes_received,
                bytes_out: p.bytes_sent,
                drops: p.drops.total(),
            });
        }
        self.metrics
            .peers
            .with_label_values(&["enet"])
            .set(enet_peers);
        self.metrics
            .peers
            .with_label_values(&["websocket"])
            .set(ws_peers);
        self.metrics.uptime.set(uptime);
        let accepting = !server.is_refusing_new_connections();
        self.metrics.accepting.set(i64::from(accepting));
        self.metrics.draining.set(i64::from(draining));
        // One sample a second for the charts.
        match seen.last_sample {
            Some((t, ref before)) if now.duration_since(t).as_secs_f64() >= 1.0 => {
                let dt = now.duration_since(t).as_secs_f64();
                let rate = |a: u64, b: u64| round1(a.saturating_sub(b) as f64 / dt);
                seen.history.push_back(json!({
                    "t": round1(uptime),
                    "peers": enet_peers + ws_peers,
                    "packets_in_per_s": rate(totals.packets_in, before.packets_in),
                    "packets_out_per_s": rate(totals.packets_out, before.packets_out),
                    "bytes_in_per_s": rate(totals.bytes_in, before.bytes_in),
                    "bytes_out_per_s": rate(totals.bytes_out, before.bytes_out),
                    "relayed_per_s": rate(totals.relayed, before.relayed),
                }));
                while seen.history.len() > HISTORY {
                    seen.history.pop_front();
                }
                seen.last_sample = Some((now, totals));
            }
            Some(_) => {}
            None => seen.last_sample = Some((now, totals)),
        }
        let drops: serde_json::Map<String, Value> = totals
            .drops
            .iter()
            .map(|(reason, n)| (reason.name().to_string(), n.into()))
            .collect();
        let json = json!({
            "uptime_s": round1(uptime),
            "enet_port": server.local_port(),
            "websocket_port": server.websocket_port(),
            "accepting": accepting,
            "draining": draining,
            "totals": {
                "peers": enet_peers + ws_peers,
                "enet_peers": enet_peers,
                "websocket_peers": ws_peers,
                "packets_in": totals.packets_in,
                "bytes_in": totals.bytes_in,
                "packets_out": totals.packets_out,
                "bytes_out": totals.bytes_out,
                "relayed": totals.relayed,
                "handshakes": totals.handshakes,
                "refused": refusals.total(),
                "slow_consumers": totals.slow_consumers,
                "drops": drops,
            },
            "history": seen.history.iter().cloned().collect::<Vec<_>>(),
        });
        let mut s = self.snapshot.lock().expect("snapshot lock");
        *s = Snapshot {
            heartbeat: Some(now),
            listening: server.local_port().is_some(),
            accepting,
            draining,
            json,
            peers: rows,
        };
        seen.totals = totals;
        seen.ws = ws;
        seen.refusals = refusals;
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The Prometheus metrics (names under `relay_`).
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    peers: IntGaugeVec,
    packets_in: IntCounterVec,
    bytes_in: IntCounterVec,
    packets_out: IntCounterVec,
    bytes_out: IntCounterVec,
    relayed: IntCounterVec,
    drops: IntCounterVec,
    refusals: IntCounterVec,
    handshakes: IntCounterVec,
    slow_consumers: IntCounter,
    rtt: Histogram,
    uptime: Gauge,
    accepting: IntGauge,
    draining: IntGauge,
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("metric");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let packets_in = counter(
            "relay_packets_in_total",
            "Data packets received from clients.",
            &["transport"],
        );
        let bytes_in = counter(
            "relay_bytes_in_total",
            "Bytes of the data packets received, headers included.",
            &["transport"],
        );
        let packets_out = counter(
            "relay_packets_out_total",
            "Packets queued for clients (one per destination), system messages included.",
            &["transport"],
        );
        let bytes_out = counter(
            "relay_bytes_out_total",
            "Bytes of the packets queued for clients.",
            &["transport"],
        );
        let relayed = counter(
            "relay_relayed_total",
            "Client packets forwarded to other clients (one per destination).",
            &["transport"],
        );
        let drops = counter(
            "relay_drops_total",
            "Packets dropped, by reason.",
            &["reason"],
        );
        let refusals = counter(
            "relay_refusals_total",
            "Connections refused, by reason.",
            &["reason"],
        );
        let handshakes = counter(
            "relay_handshakes_total",
            "Incoming handshakes started (completed or not).",
            &["transport"],
        );
        let slow_consumers = IntCounter::new(
            "relay_slow_consumers_total",
            "Clients disconnected because more was queued for them than the cap.",
        )
        .expect("metric");
        registry
            .register(Box::new(slow_consumers.clone()))
            .expect("register");
        let peers = IntGaugeVec::new(
            Opts::new("relay_peers", "Clients connected now."),
            &["transport"],
        )
        .expect("metric");
        registry
            .register(Box::new(peers.clone()))
            .expect("register");
        let rtt = Histogram::with_opts(
            HistogramOpts::new(
                "relay_rtt_milliseconds",
                "ENet clients' mean round-trip times, one observation per client each time the \
                 server publishes its status (once a second).",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
            ]),
        )
        .expect("metric");
        registry.register(Box::new(rtt.clone())).expect("register");
        let uptime = Gauge::new("relay_uptime_seconds", "Seconds since the server started.")
            .expect("metric");
        registry
            .register(Box::new(uptime.clone()))
            .expect("register");
        let accepting = IntGauge::new(
            "relay_accepting",
            "1 while the server accepts new connections.",
        )
        .expect("metric");
        registry
            .register(Box::new(accepting.clone()))
            .expect("register");
        let draining =
            IntGauge::new("relay_draining", "1 while the server drains.").expect("metric");
        registry
            .register(Box::new(draining.clone()))
            .expect("register");
        // Every label value present from the start, at 0.
        for t in ["enet", "websocket"] {
            for c in [
                &packets_in,
                &bytes_in,
                &packets_out,
                &bytes_out,
                &relayed,
                &handshakes,
            ] {
                c.with_label_values(&[t]);
            }
            peers.with_label_values(&[t]);
        }
        for r in DropReason::ALL {
            drops.with_label_values(&[r.name()]);
        }
        for r in REFUSALS {
            refusals.with_label_values(&[refusal_name(r)]);
        }
        Metrics {
            registry,
            peers,
            packets_in,
            bytes_in,
            packets_out,
            bytes_out,
            relayed,
            drops,
            refusals,
            handshakes,
            slow_consumers,
            rtt,
            uptime,
            accepting,
            draining,
        }
    }

    /// Moves the counters by what happened between two readings.
    fn advance(
        &self,
        before: &TotalStats,
        now: &TotalStats,
        ws_before: &WebSocketStats,
        ws_now: &WebSocketStats,
        refused_before: &RefusalCounts,
        refused_now: &RefusalCounts,
    ) {
        // The totals include the WebSocket side; ENet's share is the rest.
        let by_transport = |c: &IntCounterVec, total: (u64, u64), ws: (u64, u64)| {
            let enet = (total.0.saturating_sub(ws.0), total.1.saturating_sub(ws.1));
            c.with_label_values(&["enet"])
                .inc_by(enet.1.saturating_sub(enet.0));
            c.with_label_values(&["websocket"])
                .inc_by(ws.1.saturating_sub(ws.0));
        };
        by_transport(
            &self.packets_in,
            (before.packets_in, now.packets_in),
            (ws_before.packets_in, ws_now.packets_in),
        );
        by_transport(
            &self.bytes_in,
            (before.bytes_in, now.bytes_in),
            (ws_before.bytes_in, ws_now.bytes_in),
        );
        by_transport(
            &self.packets_out,
            (before.packets_out, now.packets_out),
            (ws_before.packets_out, ws_now.packets_out),
        );
        by_transport(
            &self.bytes_out,
            (before.bytes_out, now.bytes_out),
            (ws_before.bytes_out, ws_now.bytes_out),
        );
        by_transport(
            &self.relayed,
            (before.relayed, now.relayed),
            (ws_before.relayed, ws_now.relayed),
        );
        by_transport(
            &self.handshakes,
            (before.handshakes, now.handshakes),
            (ws_before.handshakes, ws_now.handshakes),
        );
        for r in DropReason::ALL {
            self.drops
                .with_label_values(&[r.name()])
                .inc_by(now.drops.get(r).saturating_sub(before.drops.get(r)));
        }
        for r in REFUSALS {
            self.refusals
                .with_label_values(&[refusal_name(r)])
                .inc_by(refused_now.get(r).saturating_sub(refused_before.get(r)));
        }
        self.slow_consumers
            .inc_by(now.slow_consumers.saturating_sub(before.slow_consumers));
    }
}

const REFUSALS: [Refusal; 8] = [
    Refusal::InvalidId,
    Refusal::IdInUse,
    Refusal::NotAccepting,
    Refusal::ServerFull,
    Refusal::TooManyFromAddress,
    Refusal::ConnectingTooOften,
    Refusal::NotAuthorized,
    Refusal::AdmissionTimeout,
];

fn refusal_name(r: Refusal) -> &'static str {
    match r {
        Refusal::InvalidId => "invalid_id",
        Refusal::IdInUse => "id_in_use",
        Refusal::NotAccepting => "not_accepting",
        Refusal::ServerFull => "server_full",
        Refusal::TooManyFromAddress => "too_many_from_address",
        Refusal::ConnectingTooOften => "connecting_too_often",
        Refusal::NotAuthorized => "not_authorized",
        Refusal::AdmissionTimeout => "admission_timeout",
    }
}
