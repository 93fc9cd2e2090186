//! A small authoritative game server speaking Godot 3's high-level multiplayer: peer 1 for real
//! Godot clients, answering their RPCs, RSETs and `send_bytes` (tests drive it).
//!
//! ```text
//! cargo build --release --example echo_server
//! target/release/examples/echo_server --port 7777 [--compression none|range-coder] [--ws-port 7778]
//! ```
//! Nodes `Echo` and `Echo/Deep/Er` (a Godot client's `/root/Echo` and `/root/Echo/Deep/Er`)
//! each have:
//! - `remote func echo(args...)`: answered with `rpc_id(sender, "echoed", args...)` on the same
//!   node, unreliable if the call came unreliable;
//! - `remote func echo_all(args...)`: `rpc("echoed_from", sender, args...)` to every client;
//! - `remote var value`: a set is answered with `rset_id(sender, "value", v)`;
//! - `remote func report()`: `rpc_id(sender, "report_reply", {"echo": n, "rset": n, "raw": n,
//!   "rejected": n})`, that sender's counts so far;
//! - `puppet func puppet_only()`: the server is the master, so every call is refused (and
//!   counted in "rejected", as are unknown methods and paths).
//!
//! Bytes a client sends with `send_bytes` go back to it alone. A client that connects gets
//! `rpc_id(id, "welcome", id)` on `Echo`. Prints `READY port=P` on stdout once listening
//! (`READY port=P ws_port=Q` with `--ws-port`: Godot WebSocket clients join the same session);
//! SIGINT or SIGTERM closes every connection and exits 0.

use clap::{Parser, ValueEnum};
use enet_multiplayer::api::{ApiEvent, CallContext, MultiplayerApi, RpcMode, RsetHandler};
use enet_multiplayer::variant::{Dictionary, Variant};
use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, MultiplayerPeer, PeerId, Target, TransferMode,
    WebSocketListen,
};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    /// No compression (Godot 3.2 and 3.3's default).
    None,
    /// ENet's range coder (Godot 3.4+ and Redot 3's default).
    RangeCoder,
}

/// Godot 3 RPC echo server.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Args {
    /// UDP port for ENet clients.
    #[arg(long, env = "ECHO_PORT", default_value_t = 7777)]
    port: u16,
    /// Datagram compression; must match the clients' setting.
    #[arg(long, env = "ECHO_COMPRESSION", value_enum, default_value_t = CompressionArg::RangeCoder)]
    compression: CompressionArg,
    /// Most clients at once.
    #[arg(long, env = "ECHO_MAX_CLIENTS", default_value_t = 64)]
    max_clients: usize,
    /// TCP port for Godot WebSocket clients (browser builds) in the same session; 0 picks a
    /// free one. Off unless given.
    #[arg(long, env = "ECHO_WS_PORT")]
    ws_port: Option<u16>,
}

type Api = MultiplayerApi<ENetMultiplayerPeer>;

/// Calls of `echo` each client made (the API counts the rest).
type EchoCounts = Arc<Mutex<HashMap<PeerId, i64>>>;

const NODES: [&str; 2] = ["Echo", "Echo/Deep/Er"];

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot install the signal handler: {e}"))?;
    }
    let mut builder = ENetMultiplayerPeer::server(args.port)
        .max_clients(args.max_clients)
        .compression(match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::RangeCoder => Compression::RangeCoder,
        });
    if let Some(ws) = args.ws_port {
        builder = builder.websocket(WebSocketListen::new(ws));
    }
    let peer = builder
        .build()
        .map_err(|e| format!("cannot listen on port {}: {e}", args.port))?;
    let port = peer.local_port().unwrap_or(args.port);
    let ws_port = peer.websocket_port();
    let mut api = MultiplayerApi::new(peer);
    let echoes = EchoCounts::default();
    for path in NODES {
        register(&mut api, path, &echoes);
    }
    log::info!("echo server on UDP port {port} ({:?})", args.compression);
    match ws_port {
        Some(ws) => println!("READY port={port} ws_port={ws}"),
        None => println!("READY port={port}"),
    }

    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = api.poll_timeout(Duration::from_millis(20)) {
            log::error!("poll failed: {e}");
        }
        while let Some(event) = api.pop_event() {
            match event {
                ApiEvent::PeerConnected(id) => {
                    log::info!("client {id} connected");
                    if let Err(e) = api.rpc_id(id, "Echo", "welcome", &[Variant::Int(id.into())]) {
                        log::warn!("could not welcome {id}: {e}");
                    }
                }
                ApiEvent::PeerDisconnected(id) => {
                    log::info!("client {id} disconnected");
                    lock(&echoes).remove(&id);
                }
                ApiEvent::Packet {
                    from, data, mode, ..
                } => {
                    if let Err(e) = api.send_bytes(&data, Target::Peer(from), mode) {
                        log::warn!("could not send {} bytes back to {from}: {e}", data.len());
                    }
                }
                ApiEvent::UnhandledCall(call) => {
                    log::debug!(
                        "unhandled {:?} {:?} from {}",
                        call.path,
                        call.name,
                        call.sender
                    )
                }
                other => log::debug!("{other:?}"),
            }
        }
    }
    api.peer_mut().close();
    log::info!("stopped");
    Ok(())
}

fn lock(counts: &EchoCounts) -> std::sync::MutexGuard<'_, HashMap<PeerId, i64>> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn register(api: &mut Api, path: &str, echoes: &EchoCounts) {
    let counts = Arc::clone(echoes);
    api.register_rpc(path, "echo", RpcMode::Remote, move |api, call, args| {
        *lock(&counts).entry(call.sender).or_default() += 1;
        answer(api, call, call.sender, "echoed", args);
    });
    api.register_rpc(path, "echo_all", RpcMode::Remote, |api, call, args| {
        let mut with_sender = Vec::with_capacity(args.len() + 1);
        with_sender.push(Variant::Int(call.sender.into()));
        with_sender.extend_from_slice(args);
        if let Err(e) = api.rpc(call.path, "echoed_from", &with_sender) {
            log::warn!("echo_all from {}: {e}", call.sender);
        }
    });
    let counts = Arc::clone(echoes);
    api.register_rpc(path, "report", RpcMode::Remote, move |api, call, _| {
        let stats = api.peer_call_stats(call.sender);
        let echo = lock(&counts).get(&call.sender).copied().unwrap_or(0);
        let mut report = Dictionary::new();
        for (key, n) in [
            ("echo", echo),
            ("rset", stats.rsets as i64),
            ("raw", stats.raw as i64),
            ("rejected", stats.rejected() as i64),
        ] {
            report.insert(Variant::String(key.into()), Variant::Int(n));
        }
        answer(
            api,
            call,
            call.sender,
            "report_reply",
            &[Variant::Dictionary(report)],
        );
    });
    api.register_rpc(path, "puppet_only", RpcMode::Puppet, |_, call, _| {
        log::error!("puppet_only ran for {}: the mode check failed", call.sender);
    });
    let set: RsetHandler<ENetMultiplayerPeer> = Box::new(|api, call, value| {
        let unreliable = call.mode != TransferMode::Reliable;
        let to = Target::Peer(call.sender);
        if let Err(e) = api.rsetp(to, unreliable, call.path, "value", value) {
            log::warn!("could not answer value from {}: {e}", call.sender);
        }
    });
    api.register_rset(path, "value", RpcMode::Remote, Variant::Nil, Some(set));
}

/// `rpc_id(to, method, args)` on the caller's node, as unreliable as the call came.
fn answer(api: &mut Api, call: &CallContext<'_>, to: PeerId, method: &str, args: &[Variant]) {
    let unreliable = call.mode != TransferMode::Reliable;
    if let Err(e) = api.rpcp(Target::Peer(to), unreliable, call.path, method, args) {
        log::warn!("could not send {method} to {to}: {e}");
    }
}
