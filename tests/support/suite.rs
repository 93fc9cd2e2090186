//! The behavioural suite every transport must pass: written once, run against ENet over
//! loopback and against the custom peer over an in-memory network. Each function takes a
//! meshed cluster (node 0 the server, at least three clients, at least 3 logical channels).

use super::cluster::{deadline, Cluster};
use enet_multiplayer::{Error, MultiplayerPeer, PeerId, Target, TransferMode};
use std::collections::BTreeSet;
use std::time::Duration;

/// (receiver node, sender id, logical channel, mode, payload)
type Delivery = (usize, PeerId, u8, TransferMode, Vec<u8>);

fn expected_receivers<P: MultiplayerPeer + ?Sized>(
    c: &Cluster<P>,
    sender: usize,
    target: Target,
) -> Vec<usize> {
    let ids = c.ids();
    let sid = ids[sender];
    (0..ids.len())
        .filter(|&i| i != sender)
        .filter(|&i| match target {
            Target::Broadcast => true,
            Target::Server => i == 0,
            Target::Peer(x) => ids[i] == x,
            Target::AllExcept(x) => ids[i] != x && ids[i] != sid,
        })
        .collect()
}

/// Sends every planned packet, waits for every expected delivery, then checks for a while that
/// nothing else arrives, and compares what each node got with what it should have got: the exact
/// set of deliveries (receiver, sender, channel, mode, payload), every reliable one exactly once.
/// Unreliable packets may legitimately be lost (ENet's packet throttle drops them when round
/// trips jump, as under valgrind); those a receiver missed are sent again, a bounded number of
/// times, and each must arrive in the end.
fn deliver_and_check<P: MultiplayerPeer + ?Sized>(
    c: &mut Cluster<P>,
    plan: Vec<(usize, Target, TransferMode, u8, Vec<u8>)>,
) {
    for n in c.nodes.iter_mut() {
        n.take_packets();
    }
    let mut expected: BTreeSet<Delivery> = BTreeSet::new();
    for (sender, target, mode, channel, payload) in &plan {
        let sid = c.nodes[*sender].id();
        for r in expected_receivers(c, *sender, *target) {
            expected.insert((r, sid, *channel, *mode, payload.clone()));
        }
    }
    let send = |c: &mut Cluster<P>,
                (sender, target, mode, channel, payload): &(
        usize,
        Target,
        TransferMode,
        u8,
        Vec<u8>,
    )| {
        c.nodes[*sender]
            .peer
            .send(*target, *mode, *channel, payload)
            .unwrap_or_else(|e| panic!("node {sender} send to {target:?}: {e}"));
    };
    for item in &plan {
        send(c, item);
    }
    let seen = |c: &Cluster<P>| -> BTreeSet<Delivery> {
        let mut s = BTreeSet::new();
        for (i, n) in c.nodes.iter().enumerate() {
            for p in &n.packets {
                s.insert((i, p.from, p.channel, p.mode, p.data.to_vec()));
            }
        }
        s
    };
    let rounds = 6;
    for round in 0..rounds {
        let limit = if round + 1 == rounds {
            deadline()
        } else {
            deadline() / 4
        };
        if c.try_wait(limit, |c| expected.is_subset(&seen(c))) {
            break;
        }
        let got = seen(c);
        let missing: Vec<&Delivery> = expected.difference(&got).collect();
        assert!(round + 1 < rounds, "deliveries still missing: {missing:?}");
        for item in &plan {
            let (sender, _, mode, channel, payload) = item;
            let sid = c.nodes[*sender].id();
            let lost = missing
                .iter()
                .any(|d| d.1 == sid && d.2 == *channel && d.3 == *mode && d.4 == *payload);
            if lost {
                assert_ne!(
                    *mode,
                    TransferMode::Reliable,
                    "a reliable packet went missing: {item:?}"
                );
                send(c, item);
            }
        }
    }
    c.settle(Duration::from_millis(150), |_| false, "");
    let mut got: Vec<Delivery> = Vec::new();
    for (i, n) in c.nodes.iter_mut().enumerate() {
        for p in n.take_packets() {
            got.push((i, p.from, p.channel, p.mode, p.data.to_vec()));
        }
    }
    let got_set: BTreeSet<Delivery> = got.iter().cloned().collect();
    assert_eq!(got_set, expected, "deliveries differ from the plan");
    for d in expected.iter().filter(|d| d.3 == TransferMode::Reliable) {
        let n = got.iter().filter(|g| *g == d).count();
        assert_eq!(n, 1, "reliable delivery {d:?} arrived {n} times");
    }
}

/// Every sender, every target kind, every transfer mode, on the default channel.
pub fn every_target_with_every_mode<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>) {
    let ids = c.ids();
    let mut plan = Vec::new();
    for sender in 0..ids.len() {
        // A client other than the sender, and the one after it.
        let others: Vec<PeerId> = ids[1..]
            .iter()
            .copied()
            .filter(|&x| x != ids[sender])
            .collect();
        let mut targets = vec![
            Target::Broadcast,
            Target::Peer(others[0]),
            Target::AllExcept(others[1]),
        ];
        if sender != 0 {
            targets.push(Target::Server);
            targets.push(Target::AllExcept(1));
        }
        for target in targets {
            for mode in TransferMode::ALL {
                let payload = format!("from {sender} to {target:?} {mode:?}").into_bytes();
                plan.push((sender, target, mode, 0, payload));
            }
        }
    }
    deliver_and_check(c, plan);
}

/// Logical channels 1 and 2 in every mode, client to client, client to server, server to client.
pub fn logical_channels<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>) {
    let ids = c.ids();
    let mut plan = Vec::new();
    for channel in [1u8, 2] {
        for mode in TransferMode::ALL {
            let p = |s: &str| format!("{s} ch{channel} {mode:?}").into_bytes();
            plan.push((1, Target::Peer(ids[2]), mode, channel, p("c2c")));
            plan.push((1, Target::Server, mode, channel, p("c2s")));
            plan.push((0, Target::Peer(ids[3]), mode, channel, p("s2c")));
            plan.push((2, Target::Broadcast, mode, channel, p("bcast")));
        }
    }
    deliver_and_check(c, plan);
}

/// The put_packet path: target, mode and channel set on the peer.
pub fn put_packet_uses_the_settings<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>) {
    let ids = c.ids();
    for n in c.nodes.iter_mut() {
        n.take_packets();
    }
    {
        let p = &mut c.nodes[1].peer;
        p.set_target_peer(Target::Peer(ids[3]));
        p.set_transfer_mode(TransferMode::UnreliableOrdered);
        p.set_transfer_channel(2);
        assert_eq!(p.target_peer(), Target::Peer(ids[3]));
        assert_eq!(p.transfer_mode(), TransferMode::UnreliableOrdered);
        assert_eq!(p.transfer_channel(), 2);
        p.put_packet(b"via put_packet").unwrap();
    }
    c.wait("the put_packet packet", |c| !c.nodes[3].packets.is_empty());
    let got = c.nodes[3].take_packets();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].from, ids[1]);
    assert_eq!(got[0].channel, 2);
    assert_eq!(got[0].mode, TransferMode::UnreliableOrdered);
    assert_eq!(&got[0].data[..], b"via put_packet");
    let p = &mut c.nodes[1].peer;
    p.set_target_peer(Target::Broadcast);
    p.set_transfer_mode(TransferMode::Reliable);
    p.set_transfer_channel(0);
}

/// The next packet's sender, channel and mode are readable before taking it.
pub fn packet_peek_accessors<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>) {
    let ids = c.ids();
    c.nodes[2]
        .peer
        .send(Target::Server, TransferMode::Unreliable, 1, b"peek")
        .unwrap();
    // Poll the server alone so the packet stays in its queue.
    let start = std::time::Instant::now();
    while c.nodes[0].peer.get_available_packet_count() == 0 {
        assert!(start.elapsed() < deadline(), "packet never arrived");
        for n in c.nodes.iter_mut().skip(1) {
            n.peer.poll().unwrap();
        }
        c.pump_transport_only();
        c.nodes[0]
            .peer
            .poll_timeout(Duration::from_millis(1))
            .unwrap();
    }
    let s = &mut c.nodes[0].peer;
    assert_eq!(s.get_available_packet_count(), 1);
    assert_eq!(s.get_packet_peer(), Some(ids[2]));
    assert_eq!(s.get_packet_channel(), Some(1));
    assert_eq!(s.get_packet_mode(), Some(TransferMode::Unreliable));
    let p = s.get_packet().unwrap();
    assert_eq!(&p.data[..], b"peek");
    assert_eq!(s.get_available_packet_count(), 0);
    assert_eq!(s.get_packet_peer(), None);
    assert!(s.get_packet().is_none());
}

/// 10 000 reliable packets from one client to another through the server arrive in order.
pub fn ten_thousand_reliable_in_order<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>) {
    const N: u32 = 10_000;
    const BATCH: u32 = 500;
    let dest = c.nodes[2].id();
    for n in c.nodes.iter_mut() {
        n.take_packets();
    }
    let mut sent = 0;
    while sent < N {
        for seq in sent..(sent + BATCH).min(N) {
            c.nodes[1]
                .peer
                .send(
                    Target::Peer(dest),
                    TransferMode::Reliable,
                    0,
                    &seq.to_le_bytes(),
                )
                .unwrap();
        }
        sent = (sent + BATCH).min(N);
        // Pace: a bounded number in flight.
        let want = sent as usize;
        c.wait("a batch of reliable packets", |c| {
            c.nodes[2].packets.len() >= want
        });
    }
    let got: Vec<u32> = c.nodes[2]
        .take_packets()
        .iter()
        .map(|p| u32::from_le_bytes(p.data[..4].try_into().unwrap()))
        .collect();
    assert_eq!(got.len(), N as usize);
    assert!(
        got.iter().copied().eq(0..N),
        "reliable packets out of order or missing"
    );
}

/// Misuse returns typed errors and sends nothing.
pub fn misuse_is_a_typed_error<P: MultiplayerPeer + ?Sized>(c: &mut Cluster<P>) {
    let client = &mut c.nodes[1].peer;
    assert!(matches!(
        client.send(Target::Peer(0), TransferMode::Reliable, 0, b"x"),
        Err(Error::InvalidTarget(_))
    ));
    assert!(matches!(
        client.send(Target::Peer(987_654), TransferMode::Reliable, 0, b"x"),
        Err(Error::UnknownTarget(987_654))
    ));
    assert!(matches!(
        client.send(Target::Broadcast, TransferMode::Reliable, 200, b"x"),
        Err(Error::ChannelOutOfRange { channel: 200, .. })
    ));
    let max = client.max_packet_size();
    assert!(matches!(
        client.send(
            Target::Server,
            TransferMode::Reliable,
            0,
            &vec![0u8; max + 1]
        ),
        Err(Error::PacketTooLarge { .. })
    ));
    let other = c.nodes[2].id();
    assert!(matches!(
        c.nodes[1].peer.disconnect_peer(other, false),
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        c.nodes[0]
            .peer
            .send(Target::Peer(987_654), TransferMode::Reliable, 0, b"x"),
        Err(Error::UnknownTarget(987_654))
    ));
    assert!(matches!(
        c.nodes[0].peer.disconnect_peer(987_654, true),
        Err(Error::UnknownPeer(987_654))
    ));
    c.settle(
        Duration::from_millis(100),
        |c| c.nodes.iter().any(|n| !n.packets.is_empty()),
        "a refused send must not deliver anything",
    );
}

/// Ids and roles.
pub fn ids_and_roles<P: MultiplayerPeer + ?Sized>(c: &Cluster<P>) {
    let ids = c.ids();
    assert_eq!(ids[0], 1);
    assert!(c.nodes[0].peer.is_server());
    for (i, n) in c.nodes.iter().enumerate().skip(1) {
        assert!(!n.peer.is_server());
        assert!((2..=i32::MAX as u32).contains(&ids[i]));
        let g = n.peer.generate_unique_id();
        assert!((2..=i32::MAX as u32).contains(&g));
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "ids are unique");
}
