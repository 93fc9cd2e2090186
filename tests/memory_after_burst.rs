//! Memory after a burst: a server whose application let 60 MB of packets pile up, then took
//! them all, falls back towards its size before the burst once it is quiet (its queue's
//! memory is freed and the C allocator's free pages go back to the system). One test in this
//! binary: it measures the resident size of the whole process, so no other test may run
//! beside it.

mod support;

use enet_multiplayer::{MultiplayerPeer, Target, TransferMode};
use std::time::{Duration, Instant};
use support::cluster::{enet_client, enet_server};
use support::robust::rss_kib;

const PACKETS: usize = 60_000;
const SIZE: usize = 1000;

#[test]
fn a_server_gives_memory_back_after_a_backlog() {
    let mut server = enet_server().build().unwrap();
    let port = server.local_port().unwrap();
    let mut client = enet_client(port).build().unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    while server.peer_ids().is_empty() || client.peer_ids().is_empty() {
        assert!(Instant::now() < end, "no connection");
        server.poll().unwrap();
        client.poll().unwrap();
    }
    while server.pop_event().is_some() {}
    let before = rss_kib();
    // The client floods the server; the server's application takes nothing meanwhile.
    let payload = vec![0x33; SIZE];
    let mut sent = 0;
    while server.get_available_packet_count() < PACKETS {
        assert!(
            Instant::now() < end,
            "{} of {PACKETS} arrived",
            server.get_available_packet_count()
        );
        while sent < PACKETS && sent - server.get_available_packet_count() < 2000 {
            client
                .send(Target::Peer(1), TransferMode::Reliable, 0, &payload)
                .unwrap();
            sent += 1;
        }
        client.poll().unwrap();
        server.poll().unwrap();
    }
    let peak = rss_kib();
    // It takes them all, then the server is quiet for a moment.
    while server.get_packet().is_some() {}
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_millis(300) {
        server.poll_timeout(Duration::from_millis(20)).unwrap();
        client.poll().unwrap();
    }
    let after = rss_kib();
    eprintln!(
        "resident: before {before} KiB, with {PACKETS} x {SIZE} B queued {peak} KiB, \
         after taking them and a quiet moment {after} KiB"
    );
    let burst = peak.saturating_sub(before);
    assert!(
        burst > 50_000,
        "the backlog should have cost about 60 MB: {burst} KiB"
    );
    assert!(
        after.saturating_sub(before) < burst / 4,
        "kept {} KiB of a {burst} KiB burst",
        after.saturating_sub(before)
    );
}
