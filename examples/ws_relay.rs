//! A Godot-3-compatible WebSocket relay server (Godot's `WebSocketServer` as a game's network
//! peer) with nothing else attached: [`WebSocketMultiplayerPeer::server`] in the same loop as
//! `examples/relay_server.rs` (busy-polls for `--busy-poll-us` after traffic, then blocks in the
//! readiness wait), taking every packet kept for the server and answering SIMPLIFY_PATH as
//! Godot's own server does. What `scripts/bench_ws.sh` measures as "ours (WebSocket only)";
//! `relay_server --ws-port` is the mixed ENet + WebSocket server.
//!
//! ```text
//! cargo run --release --example ws_relay -- [--port 8080] [--bind 127.0.0.1]
//!     [--max-clients 32] [--no-relay] [--busy-poll-us 1000]
//! ```
//!
//! It prints `READY port=<port>` on stdout once listening and runs until SIGINT or SIGTERM.

use clap::Parser;
use enet_multiplayer::{MultiplayerPeer, Target, TransferMode, WebSocketMultiplayerPeer};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Godot 3 compatible WebSocket relay server (benchmark subject).
#[derive(Debug, Parser)]
#[command(long_about = None)]
struct Args {
    /// TCP port to listen on (0 picks one; see the READY line).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Local IPv4 address to bind.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    bind: Ipv4Addr,
    /// Most clients at once.
    #[arg(long, default_value_t = 32)]
    max_clients: usize,
    /// Neither relay nor announce peers.
    #[arg(long)]
    no_relay: bool,
    /// After traffic, keep polling without waiting for this many microseconds (0 always
    /// blocks in the readiness wait).
    #[arg(long, default_value_t = 1000)]
    busy_poll_us: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&stop)) {
            eprintln!("ws_relay: cannot install the signal handler: {e}");
            return ExitCode::from(1);
        }
    }
    let mut server = match WebSocketMultiplayerPeer::server(args.port)
        .bind_address(args.bind)
        .max_clients(args.max_clients)
        .server_relay(!args.no_relay)
        .build()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "ws_relay: cannot listen on {}:{}: {e}",
                args.bind, args.port
            );
            return ExitCode::from(1);
        }
    };
    println!("READY port={}", server.local_port().unwrap_or(args.port));
    let _ = std::io::stdout().flush();

    let idle_wait = Duration::from_millis(100);
    let busy_window = Duration::from_micros(args.busy_poll_us);
    let mut last_traffic: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let busy = last_traffic.is_some_and(|t| t.elapsed() < busy_window);
        let polled = if busy {
            server.poll()
        } else {
            server.poll_timeout(idle_wait)
        };
        match polled {
            Ok(p) if p.packets > 0 => last_traffic = Some(Instant::now()),
            Ok(_) => {}
            Err(e) => eprintln!("ws_relay: poll failed: {e}"),
        }
        while server.pop_event().is_some() {}
        while let Some(packet) = server.get_packet() {
            if let Some(confirm) = enet_multiplayer::api::wire::confirm_for_simplify(&packet.data) {
                let _ = server.send(
                    Target::Peer(packet.from),
                    TransferMode::Reliable,
                    0,
                    &confirm,
                );
            }
        }
    }
    server.close();
    ExitCode::SUCCESS
}
