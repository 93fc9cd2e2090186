//! ENet through Rust's global allocator (`enet_wrapper::allocate_through_rust`, which the relay
//! server uses with mimalloc): ENet's blocks are counted by a counting global allocator, every
//! block ENet made is given back through it, and hosts work as before. Its own binary with a
//! single test: the switch is process-wide, possible only before ENet's first host, and the
//! counts are global.

use enet_wrapper::{Event, Host, HostConfig, Packet, PacketFlags};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PEERS: usize = 4000;
/// Far less than ENet's array of 4000 peers (several hundred bytes each), far more than what
/// the wrapper allocates beside it (tens of bytes per slot).
const ENET_PEER_ARRAY_AT_LEAST: usize = PEERS * 300;
const PACKETS: usize = 200;
const SIZE: usize = 3000;

#[test]
fn enet_allocates_through_rust_when_asked_before_its_first_host() {
    assert!(
        enet_wrapper::allocate_through_rust(),
        "no host exists yet: the switch must be possible"
    );
    let region = Region::new(GLOBAL);
    let mut server =
        Host::new(&HostConfig::server("127.0.0.1:0".parse().unwrap()).peer_limit(PEERS)).unwrap();
    let made = region.change();
    assert!(
        made.bytes_allocated >= ENET_PEER_ARRAY_AT_LEAST,
        "ENet's peer array did not come through the global allocator: {} bytes counted",
        made.bytes_allocated
    );
    let port = server.local_address().unwrap().port();
    let mut client = Host::new(&HostConfig::client()).unwrap();
    client
        .connect(SocketAddrV4::new([127, 0, 0, 1].into(), port), 3, 0)
        .unwrap();
    // Reliable packets of three fragments each, client to server, all arriving intact.
    let start = Instant::now();
    let mut to_server = None;
    let mut sent = 0;
    let mut received = 0;
    let before_traffic = region.change();
    while received < PACKETS {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{received} of {PACKETS} packets arrived"
        );
        while let Some(event) = client.service(Duration::ZERO).unwrap() {
            if let Event::Connect { peer, .. } = event {
                to_server = Some(peer);
            }
        }
        if let Some(peer) = to_server {
            while sent < PACKETS && sent < received + 32 {
                let payload = vec![(sent % 251) as u8; SIZE];
                let packet = Packet::new(&payload, PacketFlags::RELIABLE).unwrap();
                client.peer_mut(peer).unwrap().send(0, packet).unwrap();
                sent += 1;
            }
        }
        while let Some(event) = server.service(Duration::from_millis(1)).unwrap() {
            if let Event::Receive { packet, .. } = event {
                let expected = (received % 251) as u8;
                assert_eq!(packet.len(), SIZE);
                assert!(
                    packet.data().iter().all(|&b| b == expected),
                    "packet {received}"
                );
                received += 1;
            }
        }
    }
    let traffic = region.change();
    assert!(
        traffic.allocations - before_traffic.allocations >= PACKETS,
        "ENet's packets and commands did not come through the global allocator: {} \
         allocations for {PACKETS} packets",
        traffic.allocations - before_traffic.allocations
    );
    drop(client);
    drop(server);
    // Every block ENet made went back through the same allocator (a block freed elsewhere would
    // leave its bytes counted as live; a foreign one would have crashed the dealloc).
    let end = region.change();
    let live =
        end.bytes_allocated as i64 - end.bytes_deallocated as i64 + end.bytes_reallocated as i64;
    assert!(
        live < 64 * 1024,
        "{live} bytes allocated since the first host are still live after both hosts are gone"
    );
    assert!(
        enet_wrapper::allocate_through_rust(),
        "asking again reports the routing in place"
    );
}
