//! A terminal chat client for the relay server.
//!
//! ```text
//! cargo run --release --example relay_server -- --port 7777          # one terminal
//! cargo run --example chat -- --connect 127.0.0.1:7777 --name Ann   # another
//! cargo run --example chat -- --connect 127.0.0.1:7777 --name Bob   # a third
//! ```
//! Each line typed is broadcast (reliably) to everyone through the relay; joins and leaves are
//! printed. `/quit` or end of input leaves. Messages on the wire: `NAME <name>` (sent to every
//! peer that joins, so late joiners learn names) and `SAY <text>`.

use clap::Parser;
use enet_multiplayer::{
    Compression, ENetMultiplayerPeer, MultiplayerPeer, PeerEvent, PeerId, Target, TransferMode,
};
use std::collections::HashMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Chat through a Godot-3-compatible relay server.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Server address, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:7777")]
    connect: String,
    /// Your name.
    #[arg(long)]
    name: String,
    /// Datagram compression; must match the server.
    #[arg(long, default_value = "range-coder", value_parser = ["none", "range-coder"])]
    compression: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let Some((host, port)) = args.connect.rsplit_once(':') else {
        eprintln!("error: --connect wants HOST:PORT");
        return ExitCode::from(2);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("error: bad port in --connect {}", args.connect);
        return ExitCode::from(2);
    };
    let compression = if args.compression == "none" {
        Compression::None
    } else {
        Compression::RangeCoder
    };
    let mut peer = match ENetMultiplayerPeer::client(host, port)
        .compression(compression)
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };

    // Lines from the terminal arrive on a channel so the network loop never blocks on input.
    let (lines_tx, lines) = mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(Some(line)).is_err() {
                return;
            }
        }
        let _ = lines_tx.send(None);
    });

    let mut names: HashMap<PeerId, String> = HashMap::new();
    let mut leaving: Option<Instant> = None;
    let mut connected = false;
    let started = Instant::now();
    loop {
        if let Err(e) = peer.poll_timeout(Duration::from_millis(20)) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        while let Some(event) = peer.pop_event() {
            match event {
                PeerEvent::ConnectionSucceeded => {
                    connected = true;
                    println!("* connected as {} ({})", args.name, peer.unique_id());
                    say(&mut peer, Target::Broadcast, &format!("NAME {}", args.name));
                }
                PeerEvent::PeerConnected(1) => {}
                PeerEvent::PeerConnected(id) => {
                    say(&mut peer, Target::Peer(id), &format!("NAME {}", args.name));
                }
                PeerEvent::PeerDisconnected(id) => {
                    let who = names.remove(&id).unwrap_or_else(|| id.to_string());
                    println!("* {who} left");
                }
                PeerEvent::ConnectionFailed(reason) => {
                    eprintln!("error: could not connect to {} ({reason:?})", args.connect);
                    return ExitCode::from(1);
                }
                PeerEvent::ServerDisconnected(reason) => {
                    if leaving.is_none() {
                        eprintln!("* the server closed the connection ({reason:?})");
                    }
                    return ExitCode::SUCCESS;
                }
            }
        }
        while let Some(packet) = peer.get_packet() {
            let text = String::from_utf8_lossy(&packet.data).to_string();
            if let Some(name) = text.strip_prefix("NAME ") {
                if names.insert(packet.from, name.to_string()).is_none() {
                    println!("* {name} joined");
                }
            } else if let Some(said) = text.strip_prefix("SAY ") {
                let who = names
                    .get(&packet.from)
                    .cloned()
                    .unwrap_or_else(|| packet.from.to_string());
                println!("<{who}> {said}");
            }
        }
        if connected && leaving.is_none() {
            while let Ok(line) = lines.try_recv() {
                match line {
                    Some(l) if l.trim() == "/quit" => leaving = Some(Instant::now()),
                    Some(l) if l.trim().is_empty() => {}
                    Some(l) => say(&mut peer, Target::Broadcast, &format!("SAY {l}")),
                    None => leaving = Some(Instant::now()),
                }
                if leaving.is_some() {
                    // Graceful: queued messages go first, then the disconnect.
                    let _ = peer.disconnect_peer(1, false);
                    break;
                }
            }
        }
        if leaving.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            peer.close();
            return ExitCode::SUCCESS;
        }
        if !connected && started.elapsed() > Duration::from_secs(40) {
            eprintln!("error: no answer from {}", args.connect);
            return ExitCode::from(1);
        }
    }
}

fn say(peer: &mut ENetMultiplayerPeer, to: Target, text: &str) {
    if let Err(e) = peer.send(to, TransferMode::Reliable, 0, text.as_bytes()) {
        eprintln!("error: could not send: {e}");
    }
}
