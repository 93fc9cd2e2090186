//! A cluster of multiplayer peers (index 0 is the server) that records every event and packet,
//! bounded waits on it, and ENet builders on 127.0.0.1.

use enet_multiplayer::{
    ClientRole, Compression, ENetBuilder, ENetMultiplayerPeer, MultiplayerPeer, Packet, PeerEvent,
    PeerId, ServerRole,
};
use std::time::{Duration, Instant};

/// How long any single wait may take before the test fails: 15 s, or ten times that under
/// valgrind (`ENET_MP_VALGRIND=1`, set by scripts/valgrind.sh), which runs code ~50x slower.
pub fn deadline() -> Duration {
    let slow = std::env::var("ENET_MP_VALGRIND").is_ok_and(|v| v == "1");
    Duration::from_secs(if slow { 150 } else { 15 })
}

/// One peer and everything it reported so far.
pub struct Node<P: MultiplayerPeer + ?Sized = dyn MultiplayerPeer> {
    pub peer: Box<P>,
    pub events: Vec<PeerEvent>,
    pub packets: Vec<Packet>,
}

impl<P: MultiplayerPeer + ?Sized> Node<P> {
    pub fn new(peer: Box<P>) -> Node<P> {
        Node {
            peer,
            events: Vec::new(),
            packets: Vec::new(),
        }
    }

    pub fn id(&self) -> PeerId {
        self.peer.unique_id()
    }

    /// Polls the peer once, waiting up to `wait` in its socket when that is not zero, and
    /// records the events and packets it reports.
    pub fn poll(&mut self, wait: Duration) {
        let r = if wait.is_zero() {
            self.peer.poll()
        } else {
            self.peer.poll_timeout(wait)
        };
        r.expect("poll");
        while let Some(e) = self.peer.pop_event() {
            self.events.push(e);
        }
        while let Some(p) = self.peer.get_packet() {
            self.packets.push(p);
        }
    }

    /// Takes the packets recorded so far.
    pub fn take_packets(&mut self) -> Vec<Packet> {
        std::mem::take(&mut self.packets)
    }

    pub fn connected_peers(&self) -> Vec<PeerId> {
        let mut ids = Vec::new();
        for e in &self.events {
            match e {
                PeerEvent::PeerConnected(id) => ids.push(*id),
                PeerEvent::PeerDisconnected(id) => ids.retain(|x| x != id),
                _ => {}
            }
        }
        ids.sort_unstable();
        ids
    }

    pub fn count(&self, event: PeerEvent) -> usize {
        self.events.iter().filter(|e| **e == event).count()
    }
}

/// Moves traffic between the nodes' transports (for in-memory transports; ENet needs nothing).
pub type Transport<P> = Box<dyn FnMut(&mut [Node<P>])>;

/// A server (node 0) and its clients.
pub struct Cluster<P: MultiplayerPeer + ?Sized = dyn MultiplayerPeer> {
    pub nodes: Vec<Node<P>>,
    transport: Option<Transport<P>>,
    /// Sleep in the server's socket this long per pump (ENet), so waiting costs no CPU.
    wait: Duration,
}

impl<P: MultiplayerPeer + ?Sized> Cluster<P> {
    pub fn new(nodes: Vec<Node<P>>, transport: Option<Transport<P>>, wait: Duration) -> Cluster<P> {
        Cluster {
            nodes,
            transport,
            wait,
        }
    }

    /// Polls every node once and records what they report.
    pub fn pump(&mut self) {
        if let Some(t) = self.transport.as_mut() {
            t(&mut self.nodes);
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.poll(if i == 0 { self.wait } else { Duration::ZERO });
        }
    }

    /// Moves in-memory traffic without polling the peers.
    pub fn pump_transport_only(&mut self) {
        if let Some(t) = self.transport.as_mut() {
            t(&mut self.nodes);
        }
    }

    /// Pumps until `done` holds; fails the test, showing every node's events, after `deadline()`.
    pub fn wait(&mut self, what: &str, done: impl Fn(&Cluster<P>) -> bool) {
        self.wait_for(what, deadline(), done)
    }

    /// Pumps until `done` holds (true) or `limit` passes (false).
    pub fn try_wait(&mut self, limit: Duration, done: impl Fn(&Cluster<P>) -> bool) -> bool {
        let start = Instant::now();
        loop {
            self.pump();
            if done(self) {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
        }
    }

    pub fn wait_for(&mut self, what: &str, limit: Duration, done: impl Fn(&Cluster<P>) -> bool) {
        let start = Instant::now();
        loop {
            self.pump();
            if done(self) {
                return;
            }
            if start.elapsed() > limit {
                let state: Vec<String> = self
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        format!(
                            "node {i} (id {}): {} packets, events {:?}",
                            n.id(),
                            n.packets.len(),
                            n.events
                        )
                    })
                    .collect();
                panic!("timed out waiting for {what}:\n{}", state.join("\n"));
            }
        }
    }

    /// Pumps for `period` and asserts `never` does not become true (for "nothing arrives").
    pub fn settle(&mut self, period: Duration, never: impl Fn(&Cluster<P>) -> bool, what: &str) {
        let start = Instant::now();
        while start.elapsed() < period {
            self.pump();
            assert!(!never(self), "{what}");
        }
    }

    pub fn ids(&self) -> Vec<PeerId> {
        self.nodes.iter().map(|n| n.id()).collect()
    }

    /// Waits until every client is connected and knows every other client.
    pub fn wait_mesh(&mut self) {
        self.wait("every peer to know every other peer", |c| {
            let ids = c.ids();
            c.nodes.iter().enumerate().all(|(i, n)| {
                let mut want: Vec<PeerId> = ids
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, id)| *id)
                    .collect();
                want.sort_unstable();
                n.id() != 0 && n.connected_peers() == want
            })
        });
    }
}

/// A server builder bound to 127.0.0.1 on a free port, no compression unless a test asks.
pub fn enet_server() -> ENetBuilder<ServerRole> {
    ENetMultiplayerPeer::server(0)
        .bind_address("127.0.0.1".parse().unwrap())
        .compression(Compression::None)
}

pub fn enet_client(port: u16) -> ENetBuilder<ClientRole> {
    ENetMultiplayerPeer::client("127.0.0.1", port).compression(Compression::None)
}

/// An ENet server and `clients` clients built with `server` / `client`, all connected and
/// meshed (each knows every other through ADD_PEER).
pub fn enet_cluster(
    clients: usize,
    server: ENetBuilder<ServerRole>,
    client: impl Fn(ENetBuilder<ClientRole>) -> ENetBuilder<ClientRole>,
) -> Cluster<ENetMultiplayerPeer> {
    let server = server.build().expect("server");
    let port = server.local_port().expect("port");
    let mut nodes = vec![Node::new(Box::new(server))];
    for _ in 0..clients {
        nodes.push(Node::new(Box::new(
            client(enet_client(port)).build().expect("client"),
        )));
    }
    let mut c = Cluster::new(nodes, None, Duration::from_millis(1));
    c.wait_mesh();
    c
}
