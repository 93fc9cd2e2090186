//! A server and two clients built on `CustomMultiplayerPeer`, wired through an in-memory network
//! in one process: the application is the transport.
//!
//! ```text
//! cargo run --example custom_transport
//! ```
//! The game code (`frame`) only sees `&mut dyn MultiplayerPeer`, as it would over ENet: each
//! participant says a few lines (broadcast, reliable) and prints who joins, who leaves and what
//! the others said. Then one client leaves and the others see it go. The network (`Network`)
//! carries what the peers generate; the relaying server's own session core decides what is
//! forwarded (`CustomMultiplayerPeer::relay`) and whom it announces. Exits 0 when done, 1 if
//! something did not happen within a bounded number of frames.

use enet_multiplayer::session::Announcement;
use enet_multiplayer::{
    ConnectionStatus, CustomMultiplayerPeer, DisconnectReason, MultiplayerPeer, Outgoing,
    PeerEvent, PeerId, Result, Target, TransferMode, SERVER_ID,
};
use std::collections::VecDeque;

/// Frames each phase may take before the example gives up.
const MAX_FRAMES: usize = 100;

// ---- the game: knows nothing of the transport -----------------------------------------------

struct Player {
    name: &'static str,
    lines: VecDeque<&'static str>,
    heard: usize,
    seen_leaving: Vec<PeerId>,
}

impl Player {
    fn new(name: &'static str, lines: &[&'static str]) -> Player {
        Player {
            name,
            lines: lines.iter().copied().collect(),
            heard: 0,
            seen_leaving: Vec::new(),
        }
    }
}

/// One frame of the game: report what happened, then say the next line to everyone.
fn frame(me: &mut Player, peer: &mut dyn MultiplayerPeer) -> Result<()> {
    peer.poll()?;
    while let Some(event) = peer.pop_event() {
        match event {
            PeerEvent::PeerConnected(id) => println!("[{}] peer {id} joined", me.name),
            PeerEvent::PeerDisconnected(id) => {
                println!("[{}] peer {id} left", me.name);
                me.seen_leaving.push(id);
            }
            PeerEvent::ConnectionSucceeded => {
                println!("[{}] connected as peer {}", me.name, peer.unique_id())
            }
            other => println!("[{}] {other:?}", me.name),
        }
    }
    while let Some(packet) = peer.get_packet() {
        let text = String::from_utf8_lossy(&packet.data);
        println!("[{}] peer {} said \"{text}\"", me.name, packet.from);
        me.heard += 1;
    }
    if peer.connection_status() == ConnectionStatus::Connected {
        if let Some(line) = me.lines.pop_front() {
            let text = format!("{}: {line}", me.name);
            peer.send(
                Target::Broadcast,
                TransferMode::Reliable,
                0,
                text.as_bytes(),
            )?;
        }
    }
    Ok(())
}

// ---- the transport: an in-memory network ------------------------------------------------------

/// Every participant's peer, the server first, with the id each joined as (a peer that left
/// reads id 0, but the network still knows who it was).
struct Network {
    nodes: Vec<(PeerId, CustomMultiplayerPeer)>,
}

impl Network {
    /// A network whose server (id 1) is up.
    fn host() -> Result<Network> {
        let mut server = CustomMultiplayerPeer::builder()
            .server_relay(true)
            .build()?;
        server.set_connection_status(ConnectionStatus::Connecting)?;
        server.initialize(SERVER_ID)?;
        server.set_connection_status(ConnectionStatus::Connected)?;
        Ok(Network {
            nodes: vec![(SERVER_ID, server)],
        })
    }

    /// A new client joins: it picks an id, and the server's application accepts it (the
    /// relaying server then announces it to the others and them to it).
    fn connect(&mut self) -> Result<usize> {
        let mut client = CustomMultiplayerPeer::new();
        client.set_connection_status(ConnectionStatus::Connecting)?;
        let mut id = client.generate_unique_id();
        for _ in 0..16 {
            if self.nodes.iter().all(|(taken, _)| *taken != id) {
                break;
            }
            id = client.generate_unique_id();
        }
        client.initialize(id)?;
        self.nodes[0].1.add_peer(id)?;
        client.set_connection_status(ConnectionStatus::Connected)?;
        self.nodes.push((id, client));
        Ok(self.nodes.len() - 1)
    }

    fn peer(&mut self, index: usize) -> &mut CustomMultiplayerPeer {
        &mut self.nodes[index].1
    }

    /// Moves everything the peers generated since the last call.
    fn carry(&mut self) -> Result<()> {
        let mut items = Vec::new();
        for (i, (_, peer)) in self.nodes.iter_mut().enumerate() {
            items.extend(peer.take_outgoing().into_iter().map(|item| (i, item)));
        }
        for (from, item) in items {
            let sender = self.nodes[from].0;
            match item {
                // The server's own packets, and those it forwards, go to the clients they
                // name; a client's packet goes to the server, whose session core keeps its
                // share and hands back what to forward.
                Outgoing::Packet(p) if from == 0 => {
                    for (id, peer) in self.nodes.iter_mut().skip(1) {
                        let named = match p.target {
                            Target::Broadcast => true,
                            Target::Peer(to) => to == *id,
                            Target::AllExcept(not) => not != *id,
                            Target::Server => false,
                        };
                        if named && peer.connection_status() == ConnectionStatus::Connected {
                            peer.deliver(p.from, p.channel, p.mode, p.data.clone())?;
                        }
                    }
                }
                Outgoing::Packet(p) => {
                    if let Err(reason) = self.nodes[0].1.relay(p) {
                        eprintln!("relay dropped a packet from {sender}: {}", reason.name());
                    }
                }
                // The relaying server tells a client of a peer that joined or left.
                Outgoing::Announce { to, what } => {
                    if let Some((_, peer)) = self.nodes.iter_mut().find(|(id, _)| *id == to) {
                        match what {
                            Announcement::Add(id) => peer.add_peer(id)?,
                            Announcement::Remove(id) => peer.remove_peer(id)?,
                        }
                    }
                }
                // A client left (or closed): the server sees it go (and announces it).
                Outgoing::Disconnect { .. } | Outgoing::Close if from != 0 => {
                    let server = &mut self.nodes[0].1;
                    if server.has_peer(sender) {
                        server.remove_peer(sender)?;
                    }
                }
                // The server kicked `peer` (and already forgot it; it announces it too).
                Outgoing::Disconnect { peer: kicked, .. } => {
                    for (id, peer) in self.nodes.iter_mut().skip(1) {
                        if *id == kicked && peer.connection_status() == ConnectionStatus::Connected
                        {
                            peer.set_disconnected(DisconnectReason::Kicked)?;
                        }
                    }
                }
                // The server closed: every client loses it.
                Outgoing::Close => {
                    for (_, peer) in self.nodes.iter_mut().skip(1) {
                        if peer.connection_status() == ConnectionStatus::Connected {
                            peer.set_disconnected(DisconnectReason::ServerClosed)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

// ---- the two together ------------------------------------------------------------------------

/// Runs frames (each player's, then the network's) until `done` holds; an error after
/// MAX_FRAMES.
fn run(
    net: &mut Network,
    players: &mut [Player],
    what: &str,
    done: impl Fn(&[Player]) -> bool,
) -> Result<(), String> {
    for _ in 0..MAX_FRAMES {
        for (i, player) in players.iter_mut().enumerate() {
            frame(player, net.peer(i)).map_err(|e| format!("{}: {e}", player.name))?;
        }
        net.carry().map_err(|e| format!("network: {e}"))?;
        if done(players) {
            return Ok(());
        }
    }
    Err(format!("{what} did not happen within {MAX_FRAMES} frames"))
}

fn main() -> Result<(), String> {
    let lines = ["hello", "nice weather in memory", "bye for now"];
    let mut net = Network::host().map_err(|e| e.to_string())?;
    let mut players = vec![Player::new("host", &lines)];
    for name in ["ada", "bob"] {
        net.connect().map_err(|e| e.to_string())?;
        players.push(Player::new(name, &lines));
    }

    // Everyone talks until everyone heard everyone else's lines.
    let want = (players.len() - 1) * lines.len();
    run(&mut net, &mut players, "the chat", |p| {
        p.iter().all(|p| p.heard == want)
    })?;

    // Bob leaves; the host and Ada see him go.
    let bob = net.peer(2).unique_id();
    println!("[bob] leaving");
    net.peer(2)
        .disconnect_peer(SERVER_ID, false)
        .map_err(|e| e.to_string())?;
    run(&mut net, &mut players, "bob leaving", |p| {
        p[..2].iter().all(|p| p.seen_leaving == [bob])
    })?;
    println!("done");
    Ok(())
}
