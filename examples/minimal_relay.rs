//! The smallest Godot-3-compatible relay that can be written on `enet-wrapper`: the "as fast as
//! ENet allows" ceiling that `scripts/bench.sh` compares the real relay server against.
//!
//! ```text
//! cargo run --release --example minimal_relay -- [--port 7777] [--bind 127.0.0.1]
//!     [--max-clients 1024] [--channels 255] [--compression none|range-coder] [--no-relay]
//! ```
//!
//! What it does, and nothing more:
//! - accepts connections whose connect data is a valid, unused client id (2..=2^31-1), refuses
//!   the others and those beyond `--max-clients` (ENet `disconnect_now`);
//! - sends ADD_PEER / REMOVE_PEER on channel 0 as Godot does (the load tool waits for the mesh);
//! - for each data packet: checks the channel (not 0), the length (>= 8) and that the header's
//!   source is the sender's id, reads the target, and hands the very same `Packet` to
//!   `Host::send_many` for each destination (no copy; nothing is delivered locally);
//! - busy-polls: `service(Duration::ZERO)` in a loop, never sleeping.
//!
//! It prints `READY port=<port>` on stdout once listening and runs until SIGINT or SIGTERM.

use clap::{Parser, ValueEnum};
use enet_wrapper::{Compression, Event, Host, HostConfig, Packet, PacketFlags, PeerHandle};
use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    /// No compression (Godot 3.2/3.3 default).
    None,
    /// ENet's range coder (Godot 3.4+ default).
    RangeCoder,
}

/// Minimal busy-polling Godot 3 relay on enet-wrapper (benchmark baseline).
#[derive(Debug, Parser)]
#[command(about, long_about = None)]
struct Args {
    /// UDP port to listen on (0 picks one; see the READY line).
    #[arg(long, default_value_t = 7777)]
    port: u16,
    /// Local IPv4 address to bind.
    #[arg(long, default_value_t = Ipv4Addr::UNSPECIFIED)]
    bind: Ipv4Addr,
    /// Most clients at once (1..=4095).
    #[arg(long, default_value_t = 1024,
          value_parser = clap::value_parser!(u16).range(1..=4095))]
    max_clients: u16,
    /// Most ENet channels a client may negotiate (3..=255).
    #[arg(long, default_value_t = 255,
          value_parser = clap::value_parser!(u16).range(3..=255))]
    channels: u16,
    /// Datagram compression; must match the clients.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Neither relay nor announce peers (Godot's server_relay off): only accept connections.
    #[arg(long)]
    no_relay: bool,
}

const ADD_PEER: u32 = 0;
const REMOVE_PEER: u32 = 1;
const MAX_ID: u32 = i32::MAX as u32;

/// Connected clients: ascending by id (Godot's order for ADD_PEER, and the broadcast order),
/// plus lookups by id and by ENet slot.
struct Clients {
    list: Vec<(u32, PeerHandle)>,
    by_id: HashMap<u32, PeerHandle>,
    by_slot: Vec<u32>,
}

impl Clients {
    fn add(&mut self, id: u32, handle: PeerHandle) {
        let at = self.list.partition_point(|(i, _)| *i < id);
        self.list.insert(at, (id, handle));
        self.by_id.insert(id, handle);
        self.by_slot[usize::from(handle.index())] = id;
    }

    fn remove(&mut self, handle: PeerHandle) -> Option<u32> {
        let slot = usize::from(handle.index());
        let id = self.by_slot[slot];
        if id == 0 || self.by_id.get(&id) != Some(&handle) {
            return None;
        }
        self.by_slot[slot] = 0;
        self.by_id.remove(&id);
        self.list.retain(|(i, _)| *i != id);
        Some(id)
    }
}

fn system_message(kind: u32, id: u32) -> Option<Packet> {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&kind.to_le_bytes());
    b[4..].copy_from_slice(&id.to_le_bytes());
    Packet::new(&b, PacketFlags::RELIABLE).ok()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("error: cannot install the signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let config = HostConfig::server(SocketAddrV4::new(args.bind, args.port))
        .peer_limit(usize::from(args.max_clients))
        .channel_limit(usize::from(args.channels))
        .compression(match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::RangeCoder => Compression::RangeCoder,
        });
    let mut host = match Host::new(&config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: cannot listen on {}:{}: {e}", args.bind, args.port);
            return ExitCode::from(1);
        }
    };
    let port = host.local_address().map(|a| a.port()).unwrap_or(args.port);
    println!("READY port={port}");
    let _ = std::io::stdout().flush();

    let mut clients = Clients {
        list: Vec::with_capacity(usize::from(args.max_clients)),
        by_id: HashMap::with_capacity(usize::from(args.max_clients)),
        by_slot: vec![0; host.peer_limit()],
    };
    let max_clients = usize::from(args.max_clients);
    let relay = !args.no_relay;
    let mut spins: u32 = 0;
    loop {
        // Checking the stop flag is cheap, but only needed now and then.
        spins = spins.wrapping_add(1);
        if spins % 1024 == 0 && stop.load(Ordering::Relaxed) {
            break;
        }
        let event = match host.service(Duration::ZERO) {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("service failed: {e}");
                continue;
            }
        };
        match event {
            Event::Receive {
                peer,
                channel,
                packet,
            } => {
                let data = packet.data();
                if channel == 0 || data.len() < 8 {
                    continue;
                }
                let source = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                let target = i32::from_le_bytes([data[4], data[5], data[6], data[7]]);
                let sender = clients.by_slot[usize::from(peer.index())];
                if sender == 0 || source != sender || !relay {
                    continue;
                }
                match target {
                    1 => {}
                    0 => {
                        host.send_many(
                            clients
                                .list
                                .iter()
                                .filter(|(id, _)| *id != sender)
                                .map(|(_, h)| *h),
                            channel,
                            packet,
                        );
                    }
                    t if t < 0 => {
                        let excluded = t.unsigned_abs();
                        host.send_many(
                            clients
                                .list
                                .iter()
                                .filter(|(id, _)| *id != sender && *id != excluded)
                                .map(|(_, h)| *h),
                            channel,
                            packet,
                        );
                    }
                    t => {
                        if let Some(h) = clients.by_id.get(&(t as u32)) {
                            host.send_many([*h], channel, packet);
                        }
                    }
                }
            }
            Event::Connect { peer, data: id } => {
                let refuse = !(2..=MAX_ID).contains(&id)
                    || clients.by_id.contains_key(&id)
                    || clients.list.len() >= max_clients;
                if refuse {
                    if let Ok(p) = host.peer_mut(peer) {
                        p.disconnect_now(0);
                    }
                    continue;
                }
                if relay && !clients.list.is_empty() {
                    if let Some(p) = system_message(ADD_PEER, id) {
                        host.send_many(clients.list.iter().map(|(_, h)| *h), 0, p);
                    }
                    for (other, _) in &clients.list {
                        if let Some(p) = system_message(ADD_PEER, *other) {
                            host.send_many([peer], 0, p);
                        }
                    }
                }
                clients.add(id, peer);
            }
            Event::Disconnect { peer, .. } => {
                if let Some(id) = clients.remove(peer).filter(|_| relay) {
                    if let Some(p) = system_message(REMOVE_PEER, id) {
                        host.send_many(clients.list.iter().map(|(_, h)| *h), 0, p);
                    }
                }
            }
        }
    }
    eprintln!("minimal relay: stopping ({} clients)", clients.list.len());
    ExitCode::SUCCESS
}
