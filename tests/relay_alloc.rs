//! Heap allocations per relayed packet, counted by a global allocator (stats_alloc).
//!
//! An `ENetMultiplayerPeer` server relays between raw `enet-wrapper` clients on 127.0.0.1. After
//! a warm-up, the Rust allocations made while the server polls (and while its application drains
//! the packets addressed to it, as `examples/relay_server.rs` does) are counted during a steady
//! phase of a few thousand packets, per target kind. ENet's own buffers and packets are malloc'd
//! by the C library, not by the Rust allocator, so the counter sees our code only.
//!
//! What holds (asserted):
//! - relaying a packet to one peer (Godot target n > 1) allocates nothing;
//! - broadcast (target 0) and exclusion (target -n) allocate nothing for the relaying itself;
//!   the only allocation is the copy of the payload for the server's own application (those
//!   targets include the server, PROTOCOL.md), at most one per received packet;
//! - the server's own `send` to every client allocates nothing in Rust;
//! - a pure relay (`ServerPackets::None`, as the relay server runs) allocates nothing for
//!   broadcasts and exclusions either: the server's copy is neither made nor queued.
//!
//! Run with `cargo test --release --test relay_alloc -- --nocapture` to see the counts.

mod support;

use enet_multiplayer::protocol::HEADER_LEN;
use enet_multiplayer::{MultiplayerPeer, PeerEvent, ServerPackets, Target, TransferMode};
use enet_wrapper::{Event, PacketFlags};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::cluster::enet_server;
use support::raw::{header, RawClient};

// Every allocation of the process goes through stats_alloc's counting wrapper of the system
// allocator. It counts globally, so this binary holds a single test: while it measures, no
// other test thread allocates.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (and reallocations) and bytes counted inside [`counted`] so far.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Runs `f`, adding the allocations made meanwhile to the counters.
fn counted<T>(f: impl FnOnce() -> T) -> T {
    let region = Region::new(GLOBAL);
    let r = f();
    let change = region.change();
    let count = change.allocations + change.reallocations;
    ALLOCATIONS.fetch_add(count as u64, Ordering::Relaxed);
    let bytes = change.bytes_allocated as i64 + change.bytes_reallocated.max(0) as i64;
    ALLOCATED_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    r
}

fn allocations() -> (u64, u64) {
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    )
}

const CLIENTS: usize = 4;
const CHANNELS: usize = 3;
const RELIABLE_CHANNEL: u8 = 1;
const BATCH: u32 = 64;
const WARMUP: u32 = 2_000;
const MEASURED: u32 = 5_000;
const DEADLINE: Duration = Duration::from_secs(30);

/// A raw client and what it counted (it keeps no event: see [`RawClient::drain`]).
struct Client {
    raw: RawClient,
    connected: bool,
    known: usize,
    received: u64,
}

struct Rig {
    server: enet_multiplayer::ENetMultiplayerPeer,
    clients: Vec<Client>,
    /// Packets the server's application took with get_packet.
    local: u64,
}

impl Rig {
    fn new(server_packets: ServerPackets) -> Rig {
        let server = enet_server()
            .max_clients(8)
            .server_packets(server_packets)
            .build()
            .expect("server");
        let port = server.local_port().unwrap();
        let clients = (0..CLIENTS)
            .map(|i| Client {
                raw: RawClient::connect_with(port, 1_000 + i as u32, CHANNELS),
                connected: false,
                known: 0,
                received: 0,
            })
            .collect();
        let mut rig = Rig {
            server,
            clients,
            local: 0,
        };
        let deadline = Instant::now() + DEADLINE;
        let mut peers = 0;
        while !(peers == CLIENTS
            && rig
                .clients
                .iter()
                .all(|c| c.connected && c.known == CLIENTS - 1))
        {
            assert!(Instant::now() < deadline, "clients did not connect");
            rig.server.poll().unwrap();
            while let Some(e) = rig.server.pop_event() {
                if matches!(e, PeerEvent::PeerConnected(_)) {
                    peers += 1;
                }
            }
            rig.service_clients();
        }
        rig
    }

    fn service_clients(&mut self) {
        for c in &mut self.clients {
            let id = c.raw.id;
            let (connected, known, received) = (&mut c.connected, &mut c.known, &mut c.received);
            c.raw.drain(|event| match event {
                Event::Connect { .. } => *connected = true,
                Event::Disconnect { .. } => panic!("client {id} lost the server"),
                Event::Receive {
                    channel, packet, ..
                } => {
                    if channel == 0 {
                        *known += usize::from(packet.data().first() == Some(&0));
                    } else {
                        *received += 1;
                    }
                }
            });
        }
    }

    /// One server poll and its application draining, counted.
    fn server_turn(&mut self) {
        let server = &mut self.server;
        let local = counted(|| {
            server.poll().unwrap();
            let mut n = 0;
            while server.get_packet().is_some() {
                n += 1;
            }
            n
        });
        self.local += local;
    }

    fn total_received(&self) -> u64 {
        self.clients.iter().map(|c| c.received).sum()
    }

    /// Client 0 sends `count` packets to Godot target `target` (in batches, waiting for each
    /// batch to arrive so that nothing piles up), and waits for all `per_packet` deliveries.
    fn relay(&mut self, target: i32, count: u32, per_packet: u64) {
        let mut sent = 0;
        let start = self.total_received();
        let deadline = Instant::now() + DEADLINE;
        while sent < count {
            let batch = BATCH.min(count - sent);
            let c = &mut self.clients[0].raw;
            for _ in 0..batch {
                let mut bytes = [0u8; 40];
                bytes[..HEADER_LEN].copy_from_slice(&header(c.id, target));
                bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&sent.to_le_bytes());
                c.queue(RELIABLE_CHANNEL, &bytes, PacketFlags::RELIABLE)
                    .unwrap();
                sent += 1;
            }
            let want = start + u64::from(sent) * per_packet;
            while self.total_received() < want {
                assert!(Instant::now() < deadline, "relayed packets did not arrive");
                self.service_clients();
                self.server_turn();
            }
        }
    }

    /// The server's application sends `count` packets to every client.
    fn server_broadcast(&mut self, count: u32) {
        let start = self.total_received();
        let deadline = Instant::now() + DEADLINE;
        let payload = [7u8; 32];
        let mut sent = 0;
        while sent < count {
            let server = &mut self.server;
            let batch = BATCH.min(count - sent);
            counted(|| {
                for _ in 0..batch {
                    server
                        .send(Target::Broadcast, TransferMode::Reliable, 0, &payload)
                        .unwrap();
                }
            });
            sent += batch;
            let want = start + u64::from(sent) * CLIENTS as u64;
            while self.total_received() < want {
                assert!(Instant::now() < deadline, "server packets did not arrive");
                self.server_turn();
                self.service_clients();
            }
        }
    }
}

struct Measured {
    allocations: u64,
    bytes: u64,
    received_by_server: u64,
    relayed: u64,
    local: u64,
}

fn measure(rig: &mut Rig, f: impl FnOnce(&mut Rig)) -> Measured {
    let (a0, b0) = allocations();
    let stats0 = rig.server.stats();
    let local0 = rig.local;
    f(rig);
    let (a1, b1) = allocations();
    let stats1 = rig.server.stats();
    Measured {
        allocations: a1 - a0,
        bytes: b1 - b0,
        received_by_server: stats1.packets_in - stats0.packets_in,
        relayed: stats1.relayed - stats0.relayed,
        local: rig.local - local0,
    }
}

fn report(name: &str, m: &Measured) {
    eprintln!(
        "{name:<28} packets in {:>6}  relayed {:>6}  to the server's app {:>6}  \
         Rust allocations {:>6} ({:>7} bytes): {:.4} per packet in, {:.4} per relayed packet",
        m.received_by_server,
        m.relayed,
        m.local,
        m.allocations,
        m.bytes,
        m.allocations as f64 / m.received_by_server.max(1) as f64,
        m.allocations as f64 / m.relayed.max(1) as f64,
    );
}

#[test]
fn relaying_allocates_nothing_per_packet() {
    let mut rig = Rig::new(ServerPackets::All);
    let others = (CLIENTS - 1) as u64;
    let peer = rig.clients[1].raw.id as i32;
    let excluded = -(rig.clients[2].raw.id as i32);

    // Warm up every path once, so that queues have reached their steady capacity.
    rig.relay(peer, WARMUP, 1);
    rig.relay(0, WARMUP, others);
    rig.relay(excluded, WARMUP, others - 1);
    rig.server_broadcast(WARMUP);

    let direct = measure(&mut rig, |r| r.relay(peer, MEASURED, 1));
    report("target peer (n > 1)", &direct);
    let broadcast = measure(&mut rig, |r| r.relay(0, MEASURED, others));
    report("target broadcast (0)", &broadcast);
    let exclusion = measure(&mut rig, |r| r.relay(excluded, MEASURED, others - 1));
    report("target all-but-one (-n)", &exclusion);
    let own = measure(&mut rig, |r| r.server_broadcast(MEASURED));
    eprintln!(
        "{:<28} packets sent {:>6}  Rust allocations {:>6} ({} bytes)",
        "server send to all", MEASURED, own.allocations, own.bytes
    );

    assert_eq!(direct.relayed, u64::from(MEASURED));
    assert_eq!(broadcast.relayed, u64::from(MEASURED) * others);
    assert_eq!(exclusion.relayed, u64::from(MEASURED) * (others - 1));
    assert_eq!(
        direct.allocations, 0,
        "relaying to one peer must not allocate"
    );
    for (name, m) in [("broadcast", &broadcast), ("exclusion", &exclusion)] {
        assert_eq!(
            m.local,
            u64::from(MEASURED),
            "{name}: the server gets its copy"
        );
        assert!(
            m.allocations <= m.local,
            "{name}: {} allocations for {} packets: more than the one payload copy for the \
             server's application per packet",
            m.allocations,
            m.local
        );
    }
    assert_eq!(
        own.allocations, 0,
        "the server's own send must not allocate"
    );

    // A pure relay (the relay server's setting: its application reads none of the packets
    // addressed to it): the server's copy is neither made nor queued, so broadcasts and
    // exclusions allocate nothing either.
    drop(rig);
    let mut rig = Rig::new(ServerPackets::None);
    rig.relay(0, WARMUP, others);
    rig.relay(excluded, WARMUP, others - 1);
    let skipped0 = rig.server.stats().not_for_application;
    let broadcast = measure(&mut rig, |r| r.relay(0, MEASURED, others));
    report("pure relay: broadcast (0)", &broadcast);
    let exclusion = measure(&mut rig, |r| r.relay(excluded, MEASURED, others - 1));
    report("pure relay: all-but-one (-n)", &exclusion);
    for (name, m) in [("broadcast", &broadcast), ("exclusion", &exclusion)] {
        assert_eq!(
            m.local, 0,
            "pure relay {name}: nothing reaches the application"
        );
        assert_eq!(
            m.allocations, 0,
            "pure relay {name}: {} allocations for {} packets",
            m.allocations, m.received_by_server
        );
    }
    assert_eq!(
        rig.server.stats().not_for_application - skipped0,
        2 * u64::from(MEASURED),
        "each left-out server copy is counted"
    );
}
