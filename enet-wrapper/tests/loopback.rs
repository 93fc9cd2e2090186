//! The wrapper over real UDP sockets on 127.0.0.1.

use enet_wrapper::{
    Compression, Error, Event, Host, HostConfig, Intercept, Packet, PacketFlags, PeerHandle,
    PeerState, SlotUsage, Timeout,
};
use std::net::SocketAddrV4;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

fn server(peers: usize, channels: usize) -> Host {
    Host::new(
        &HostConfig::server("127.0.0.1:0".parse().unwrap())
            .peer_limit(peers)
            .channel_limit(channels),
    )
    .expect("server host")
}

fn client(channels: usize) -> Host {
    Host::new(&HostConfig::client().channel_limit(channels)).expect("client host")
}

fn addr(host: &Host) -> SocketAddrV4 {
    let a = host.local_address().unwrap();
    SocketAddrV4::new("127.0.0.1".parse().unwrap(), a.port())
}

/// Services every host in turn until `done` returns true for an event, or the deadline passes.
/// Returns every event seen, tagged with the index of the host that produced it.
fn pump_until(
    hosts: &mut [&mut Host],
    mut done: impl FnMut(&[(usize, Event)]) -> bool,
) -> Vec<(usize, Event)> {
    let start = Instant::now();
    let mut events = Vec::new();
    while start.elapsed() < DEADLINE {
        for (i, host) in hosts.iter_mut().enumerate() {
            while let Some(ev) = host.service(Duration::ZERO).expect("service") {
                events.push((i, ev));
            }
        }
        if done(&events) {
            return events;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("deadline passed; events so far: {events:?}");
}

fn count_connects(events: &[(usize, Event)], host: usize) -> usize {
    events
        .iter()
        .filter(|(i, e)| *i == host && matches!(e, Event::Connect { .. }))
        .count()
}

/// Connects `c` to `s`; returns (server-side handle, client-side handle).
fn connect_pair(
    s: &mut Host,
    c: &mut Host,
    channels: usize,
    data: u32,
) -> (PeerHandle, PeerHandle) {
    let to_server = c.connect(addr(s), channels, data).unwrap();
    let events = pump_until(&mut [s, c], |ev| {
        count_connects(ev, 0) == 1 && count_connects(ev, 1) == 1
    });
    let mut on_server = None;
    for (i, e) in events {
        if let (0, Event::Connect { peer, data: d }) = (i, e) {
            assert_eq!(d, data, "connect data reaches the server");
            on_server = Some(peer);
        }
    }
    (on_server.unwrap(), to_server)
}

fn received(events: &[(usize, Event)], host: usize) -> Vec<(u8, Vec<u8>, PacketFlags)> {
    events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::Receive {
                channel, packet, ..
            } if *i == host => Some((*channel, packet.data().to_vec(), packet.flags())),
            _ => None,
        })
        .collect()
}

#[test]
fn exchange_all_delivery_kinds_on_several_channels() {
    let mut s = server(4, 4);
    let mut c = client(4);
    let (on_server, to_server) = connect_pair(&mut s, &mut c, 4, 7);
    let kinds = [
        PacketFlags::RELIABLE,
        PacketFlags::NONE,
        PacketFlags::UNSEQUENCED,
    ];
    let mut expected = Vec::new();
    for channel in 0..4u8 {
        for (k, flags) in kinds.iter().enumerate() {
            let body = format!("c{channel}k{k}").into_bytes();
            c.peer_mut(to_server)
                .unwrap()
                .send(channel, Packet::new(&body, *flags).unwrap())
                .unwrap();
            let reply = format!("reply c{channel}k{k}").into_bytes();
            s.peer_mut(on_server)
                .unwrap()
                .send(channel, Packet::new(&reply, *flags).unwrap())
                .unwrap();
            expected.push((channel, body, reply, *flags));
        }
    }
    let events = pump_until(&mut [&mut s, &mut c], |ev| {
        received(ev, 0).len() == expected.len() && received(ev, 1).len() == expected.len()
    });
    let mut at_server = received(&events, 0);
    let mut at_client = received(&events, 1);
    at_server.sort_by(|a, b| a.1.cmp(&b.1));
    at_client.sort_by(|a, b| a.1.cmp(&b.1));
    let mut want_server: Vec<_> = expected
        .iter()
        .map(|(ch, b, _, f)| (*ch, b.clone(), *f))
        .collect();
    let mut want_client: Vec<_> = expected
        .iter()
        .map(|(ch, _, r, f)| (*ch, r.clone(), *f))
        .collect();
    want_server.sort_by(|a, b| a.1.cmp(&b.1));
    want_client.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(at_server, want_server);
    assert_eq!(at_client, want_client);
    let info = s.peer_info(on_server).unwrap();
    assert_eq!(info.state, PeerState::Connected);
    assert_eq!(info.channel_count, 4);
    assert_eq!(info.packets_received, 12);
    assert_eq!(info.packets_sent, 12);
    assert_eq!(info.address.port(), c.local_address().unwrap().port());
}

#[test]
fn one_mebibyte_reliable_packet_arrives_intact() {
    let mut s = server(2, 2);
    let mut c = client(2);
    let (_, to_server) = connect_pair(&mut s, &mut c, 2, 0);
    let big: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    c.peer_mut(to_server)
        .unwrap()
        .send(1, Packet::new(&big, PacketFlags::RELIABLE).unwrap())
        .unwrap();
    let events = pump_until(&mut [&mut s, &mut c], |ev| !received(ev, 0).is_empty());
    let got = received(&events, 0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 1);
    assert!(got[0].1 == big, "payload differs");
}

#[test]
fn connect_and_disconnect_events_carry_their_data() {
    let mut s = server(2, 1);
    let mut c = client(1);
    let (on_server, to_server) = connect_pair(&mut s, &mut c, 1, 0xDEAD_BEEF);
    c.peer_mut(to_server).unwrap().disconnect(4242);
    let events = pump_until(&mut [&mut s, &mut c], |ev| {
        ev.iter()
            .filter(|(_, e)| matches!(e, Event::Disconnect { .. }))
            .count()
            == 2
    });
    for (i, e) in &events {
        if let Event::Disconnect { peer, data } = e {
            if *i == 0 {
                assert_eq!(*peer, on_server);
                assert_eq!(*data, 4242, "the server sees the client's disconnect data");
            } else {
                assert_eq!(*peer, to_server);
            }
        }
    }
    assert!(matches!(
        s.peer_info(on_server),
        Err(Error::StalePeer { .. })
    ));
    assert!(matches!(
        c.peer_mut(to_server),
        Err(Error::StalePeer { .. })
    ));
}

#[test]
fn stale_handle_is_rejected_after_its_slot_is_reused() {
    let mut s = server(1, 1);
    let mut a = client(1);
    let (old, to_server) = connect_pair(&mut s, &mut a, 1, 1);
    a.peer_mut(to_server).unwrap().disconnect(0);
    pump_until(&mut [&mut s, &mut a], |ev| {
        ev.iter()
            .any(|(i, e)| *i == 0 && matches!(e, Event::Disconnect { .. }))
    });
    let mut b = client(1);
    let (new, _) = connect_pair(&mut s, &mut b, 1, 2);
    assert_eq!(old.index(), new.index(), "the only slot is reused");
    assert_ne!(old, new);
    let err = s.peer_mut(old).err().expect("old handle must be rejected");
    assert!(matches!(err, Error::StalePeer { index: 0 }), "{err:?}");
    let sent = s.send_many([old], 0, Packet::new(b"x", PacketFlags::RELIABLE).unwrap());
    assert_eq!(sent, 0, "a stale handle receives nothing");
    assert!(s.peer_mut(new).is_ok());
    // disconnect_now makes the handle stale at once, without an event.
    s.peer_mut(new).unwrap().disconnect_now(9);
    assert!(matches!(s.peer_info(new), Err(Error::StalePeer { .. })));
    let events = pump_until(&mut [&mut s, &mut b], |ev| {
        ev.iter()
            .any(|(i, e)| *i == 1 && matches!(e, Event::Disconnect { .. }))
    });
    assert!(
        events
            .iter()
            .any(|(i, e)| *i == 1 && matches!(e, Event::Disconnect { data: 9, .. })),
        "client learns of disconnect_now with its data: {events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(i, e)| *i == 0 && matches!(e, Event::Disconnect { .. })),
        "disconnect_now emits no event locally"
    );
}

#[test]
fn handle_from_another_host_is_rejected() {
    let mut s = server(2, 1);
    let mut c = client(1);
    let (on_server, _) = connect_pair(&mut s, &mut c, 1, 0);
    let other = server(2, 1);
    assert!(other.peer_info(on_server).is_err());
}

#[test]
fn invalid_configuration_is_a_typed_error() {
    let base = HostConfig::server("127.0.0.1:0".parse().unwrap());
    for cfg in [
        base.clone().peer_limit(0),
        base.clone().peer_limit(4096),
        base.clone().channel_limit(0),
        base.clone().channel_limit(256),
        base.clone().max_packet_size(Some(0)),
    ] {
        match Host::new(&cfg) {
            Err(Error::InvalidConfig(msg)) => assert!(!msg.is_empty()),
            other => panic!("{cfg:?} gave {other:?}"),
        }
    }
    assert!(Host::new(&base.clone().peer_limit(4095).channel_limit(255)).is_ok());
    let mut c = client(1);
    let target: SocketAddrV4 = "127.0.0.1:9".parse().unwrap();
    assert!(matches!(
        c.connect(target, 0, 0),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        c.connect(target, 256, 0),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        c.set_channel_limit(0),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn binding_a_port_in_use_is_a_typed_error() {
    let s = server(1, 1);
    let taken = addr(&s);
    match Host::new(&HostConfig::server(taken)) {
        Err(Error::HostCreate { bind, .. }) => assert_eq!(bind, taken),
        other => panic!("expected HostCreate, got {other:?}"),
    }
}

#[test]
fn sending_misuse_is_a_typed_error() {
    let mut s = Host::new(
        &HostConfig::server("127.0.0.1:0".parse().unwrap())
            .peer_limit(2)
            .channel_limit(2)
            .max_packet_size(Some(1000)),
    )
    .unwrap();
    let mut c = client(2);
    let (on_server, _) = connect_pair(&mut s, &mut c, 2, 0);
    let mut peer = s.peer_mut(on_server).unwrap();
    assert!(matches!(
        peer.send(2, Packet::new(b"x", PacketFlags::RELIABLE).unwrap()),
        Err(Error::ChannelOutOfRange {
            channel: 2,
            count: 2
        })
    ));
    assert!(matches!(
        peer.send(0, Packet::new(&[0u8; 1001], PacketFlags::RELIABLE).unwrap()),
        Err(Error::PacketTooLarge {
            size: 1001,
            max: 1000
        })
    ));
    assert!(peer
        .send(0, Packet::new(&[0u8; 1000], PacketFlags::RELIABLE).unwrap())
        .is_ok());
}

#[test]
fn dropping_a_host_with_connected_peers_tells_them() {
    let mut s = server(4, 1);
    let mut c1 = client(1);
    let mut c2 = client(1);
    connect_pair(&mut s, &mut c1, 1, 0);
    connect_pair(&mut s, &mut c2, 1, 0);
    // Queue packets that will never be sent: ENet must free them when the host goes.
    s.broadcast(0, Packet::new(&[7u8; 5000], PacketFlags::RELIABLE).unwrap());
    let started = Instant::now();
    drop(s);
    pump_until(&mut [&mut c1, &mut c2], |ev| {
        ev.iter()
            .filter(|(_, e)| matches!(e, Event::Disconnect { .. }))
            .count()
            == 2
    });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "clients learn at once, not after a timeout ({:?})",
        started.elapsed()
    );
}

#[test]
fn one_packet_reaches_three_peers() {
    let mut s = server(4, 2);
    let mut cs = [client(2), client(2), client(2)];
    let mut handles = Vec::new();
    for c in cs.iter_mut() {
        handles.push(connect_pair(&mut s, c, 2, 0).0);
    }
    let sent = s.send_many(
        handles.clone(),
        1,
        Packet::new(b"to all three", PacketFlags::RELIABLE).unwrap(),
    );
    assert_eq!(sent, 3);
    let [c0, c1, c2] = &mut cs;
    let events = pump_until(&mut [&mut s, c0, c1, c2], |ev| {
        (1..=3).all(|h| received(ev, h).len() == 1)
    });
    for h in 1..=3 {
        assert_eq!(
            received(&events, h),
            vec![(1, b"to all three".to_vec(), PacketFlags::RELIABLE)]
        );
    }
    assert_eq!(
        s.broadcast(0, Packet::new(b"b", PacketFlags::NONE).unwrap()),
        3
    );
}

#[test]
fn range_coder_hosts_talk() {
    let cfg = |c: HostConfig| c.compression(Compression::RangeCoder).channel_limit(2);
    let mut s = Host::new(&cfg(
        HostConfig::server("127.0.0.1:0".parse().unwrap()).peer_limit(2)
    ))
    .unwrap();
    let mut c = Host::new(&cfg(HostConfig::client())).unwrap();
    let (_, to_server) = connect_pair(&mut s, &mut c, 2, 0);
    let body = vec![b'a'; 4000];
    c.peer_mut(to_server)
        .unwrap()
        .send(1, Packet::new(&body, PacketFlags::RELIABLE).unwrap())
        .unwrap();
    let events = pump_until(&mut [&mut s, &mut c], |ev| !received(ev, 0).is_empty());
    assert_eq!(received(&events, 0)[0].1, body);
}

/// A client without compression cannot read a compressing server's answers: it repeats its
/// connect request, and the server counts the repeats. A client that compresses too connects,
/// and nothing is counted.
#[test]
fn repeated_uncompressed_connects_are_counted_by_a_compressing_host() {
    let cfg = |c: HostConfig| c.compression(Compression::RangeCoder).channel_limit(2);
    let mut s = Host::new(&cfg(
        HostConfig::server("127.0.0.1:0".parse().unwrap()).peer_limit(4)
    ))
    .unwrap();
    let mut matching = Host::new(&cfg(HostConfig::client())).unwrap();
    connect_pair(&mut s, &mut matching, 2, 0);
    assert_eq!(s.repeated_uncompressed_connects(), 0);
    let mut plain = client(2);
    plain.connect(addr(&s), 2, 0).unwrap();
    let start = Instant::now();
    let mut connects = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        for h in [&mut s, &mut plain] {
            while let Some(e) = h.service(Duration::ZERO).unwrap() {
                connects += usize::from(matches!(e, Event::Connect { .. }));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(connects, 0, "the handshake cannot complete");
    // ENet resends a connect request after 500 ms, then 1 s: at least two repeats by now.
    assert!(
        s.repeated_uncompressed_connects() >= 2,
        "{}",
        s.repeated_uncompressed_connects()
    );
}

/// The payload a test intercept panics with, to recognise it where it comes out.
#[derive(Debug, PartialEq)]
struct InterceptPanic(usize);

#[test]
fn a_panic_in_the_intercept_reaches_the_caller_of_service_and_the_host_goes_on() {
    let mut s = server(2, 1);
    let mut calls = 0u32;
    s.set_intercept(Some(Box::new(move |data: &[u8], _from| {
        calls += 1;
        if calls == 1 {
            std::panic::panic_any(InterceptPanic(data.len()));
        }
        Intercept::Pass
    })));
    let mut c = client(1);
    c.connect(addr(&s), 1, 5).unwrap();
    // The client's connect request makes the intercept panic inside ENet's service call; the
    // panic comes out of `service`, with its own payload, after ENet returned.
    let start = Instant::now();
    let payload = loop {
        assert!(start.elapsed() < DEADLINE, "the intercept never panicked");
        c.service(Duration::ZERO).unwrap();
        match catch_unwind(AssertUnwindSafe(|| s.service(Duration::from_millis(1)))) {
            Ok(r) => assert!(r.unwrap().is_none(), "no event before the first datagram"),
            Err(payload) => break payload,
        }
    };
    let payload = payload
        .downcast::<InterceptPanic>()
        .expect("the intercept's own payload");
    assert!(payload.0 > 0, "{payload:?}");
    // The host is usable afterwards: the dropped connect request is resent by the client's
    // ENet and the connection completes through the still installed intercept.
    let events = pump_until(&mut [&mut s, &mut c], |ev| {
        count_connects(ev, 0) == 1 && count_connects(ev, 1) == 1
    });
    let on_server = events
        .iter()
        .find_map(|(i, e)| match e {
            Event::Connect { peer, data: 5 } if *i == 0 => Some(*peer),
            _ => None,
        })
        .expect("server connect");
    s.peer_mut(on_server)
        .unwrap()
        .send(0, Packet::new(b"after", PacketFlags::RELIABLE).unwrap())
        .unwrap();
    let events = pump_until(&mut [&mut s, &mut c], |ev| !received(ev, 1).is_empty());
    assert_eq!(received(&events, 1)[0].1, b"after");
    // And it drops cleanly: the client hears of it at once.
    drop(s);
    pump_until(&mut [&mut c], |ev| {
        ev.iter()
            .any(|(_, e)| matches!(e, Event::Disconnect { .. }))
    });
}

#[test]
fn an_intercept_can_drop_datagrams() {
    let mut s = server(2, 1);
    s.set_intercept(Some(Box::new(|_: &[u8], _| Intercept::Drop)));
    let mut c = client(1);
    c.connect(addr(&s), 1, 0).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        assert!(s.service(Duration::from_millis(5)).unwrap().is_none());
        assert!(c.service(Duration::ZERO).unwrap().is_none());
    }
}

#[test]
fn hosts_on_many_threads_share_one_initialisation() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..3 {
                    let mut s = server(2, 1);
                    let mut c = client(1);
                    connect_pair(&mut s, &mut c, 1, 3);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
}

#[test]
fn a_host_moves_to_another_thread() {
    let mut s = server(2, 1);
    let mut c = client(1);
    let (on_server, _) = connect_pair(&mut s, &mut c, 1, 0);
    let mut s = std::thread::spawn(move || {
        s.peer_mut(on_server)
            .unwrap()
            .send(0, Packet::new(b"moved", PacketFlags::RELIABLE).unwrap())
            .unwrap();
        s
    })
    .join()
    .unwrap();
    let events = pump_until(&mut [&mut s, &mut c], |ev| !received(ev, 1).is_empty());
    assert_eq!(received(&events, 1)[0].1, b"moved");
}

#[test]
fn connecting_to_nobody_ends_in_a_disconnect_event() {
    let mut c = client(1);
    let dead = {
        let s = server(1, 1);
        addr(&s)
    };
    let h = c.connect(dead, 1, 0).unwrap();
    c.peer_mut(h)
        .unwrap()
        .set_peer_timeout(Timeout::new(1, 200, 400));
    let events = pump_until(&mut [&mut c], |ev| {
        ev.iter()
            .any(|(_, e)| matches!(e, Event::Disconnect { .. }))
    });
    assert!(events
        .iter()
        .any(|(_, e)| matches!(e, Event::Disconnect { peer, .. } if *peer == h)));
}

#[test]
fn oversize_data_is_counted_when_enet_rejects_it() {
    for compression in [Compression::None, Compression::RangeCoder] {
        let mut s = Host::new(
            &HostConfig::server("127.0.0.1:0".parse().unwrap())
                .peer_limit(2)
                .channel_limit(2)
                .compression(compression)
                .max_packet_size(Some(1000)),
        )
        .unwrap();
        let mut c = Host::new(
            &HostConfig::client()
                .channel_limit(2)
                .compression(compression),
        )
        .unwrap();
        let (on_server, to_server) = connect_pair(&mut s, &mut c, 2, 0);
        // The client's own limit is ENet's 32 MiB, so it sends; the server's ENet rejects.
        c.peer_mut(to_server)
            .unwrap()
            .send(
                1,
                Packet::new(&[1u8; 1200], PacketFlags::UNSEQUENCED).unwrap(),
            )
            .unwrap();
        c.peer_mut(to_server)
            .unwrap()
            .send(1, Packet::new(b"fine", PacketFlags::RELIABLE).unwrap())
            .unwrap();
        let events = pump_until(&mut [&mut s, &mut c], |ev| !received(ev, 0).is_empty());
        assert_eq!(
            received(&events, 0).len(),
            1,
            "only the small packet arrives"
        );
        let info = s.peer_info(on_server).unwrap();
        assert!(info.rejected_oversize >= 1, "{compression:?}: {info:?}");
        assert_eq!(info.rejected_channel, 0);
        assert_eq!(s.rejected().0, info.rejected_oversize);
    }
}

/// A client that sends its connect request but never hears the answer, so the server's slot
/// for it stays half-open.
fn deaf_client(to: SocketAddrV4) -> Host {
    let mut deaf = client(1);
    deaf.set_intercept(Some(Box::new(|_: &[u8], _| Intercept::Drop)));
    let h = deaf.connect(to, 1, 0).unwrap();
    deaf.peer_mut(h)
        .unwrap()
        .set_peer_timeout(Timeout::new(1, 200, 400));
    deaf
}

/// Services `s` (and `others`) until `s` has seen `n` handshakes start.
fn until_handshakes(s: &mut Host, others: &mut [&mut Host], n: u64) {
    let start = Instant::now();
    while s.handshakes_started() < n {
        assert!(
            start.elapsed() < DEADLINE,
            "{} handshakes",
            s.handshakes_started()
        );
        s.service(Duration::from_millis(1)).unwrap();
        for o in others.iter_mut() {
            o.service(Duration::ZERO).unwrap();
        }
    }
}

#[test]
fn half_open_handshakes_time_out_with_the_policys_timeout() {
    let mut s = server(1, 1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    s.set_handshake_policy(Some(Box::new(move |u: SlotUsage| {
        log.lock().unwrap().push(u);
        Some(Timeout::new(1, 200, 400))
    })));
    let mut deaf = deaf_client(addr(&s));
    until_handshakes(&mut s, &mut [&mut deaf], 1);
    assert_eq!(
        *seen.lock().unwrap(),
        [SlotUsage {
            in_use: 1,
            half_open: 1,
            limit: 1
        }]
    );
    // Within the handshake timeout the slot frees and a real client gets in.
    let mut real = client(1);
    let started = Instant::now();
    let (on_server, _) = connect_pair(&mut s, &mut real, 1, 7);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Once connected, the peer has ENet's default timeouts again.
    let info = s.peer_info(on_server).unwrap();
    assert_eq!(info.timeout, Timeout::ENET_DEFAULT);
}

#[test]
fn a_declined_handshake_is_offered_to_the_policy_again() {
    let mut s = server(4, 1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    s.set_handshake_policy(Some(Box::new(move |u: SlotUsage| {
        log.lock().unwrap().push(u);
        None
    })));
    let mut deaf1 = deaf_client(addr(&s));
    until_handshakes(&mut s, &mut [&mut deaf1], 1);
    let one = SlotUsage {
        in_use: 1,
        half_open: 1,
        limit: 4,
    };
    assert_eq!(*seen.lock().unwrap(), [one]);
    assert_eq!(s.slot_usage(), one);
    assert_eq!(one.free(), 3);
    let mut deaf2 = deaf_client(addr(&s));
    until_handshakes(&mut s, &mut [&mut deaf1, &mut deaf2], 2);
    let two = SlotUsage {
        in_use: 2,
        half_open: 2,
        limit: 4,
    };
    assert_eq!(seen.lock().unwrap().last(), Some(&two));
    // Without a policy, handshakes are still counted.
    s.set_handshake_policy(None);
    let mut deaf3 = deaf_client(addr(&s));
    let calls = seen.lock().unwrap().len();
    until_handshakes(&mut s, &mut [&mut deaf1, &mut deaf2, &mut deaf3], 3);
    assert_eq!(seen.lock().unwrap().len(), calls);
}

#[test]
fn socket_buffers_are_granted_up_to_the_kernel_cap() {
    let mut host = Host::new(&HostConfig::server("127.0.0.1:0".parse().unwrap())).unwrap();
    let cap = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    let asked = 1 << 20;
    let granted = host.set_socket_buffers(asked).unwrap();
    // Linux reports twice what it grants, and grants at most the sysctl cap.
    if let (Some(r), Some(w)) = (cap("rmem_max"), cap("wmem_max")) {
        assert_eq!(granted.receive, 2 * asked.min(r), "{granted:?}");
        assert_eq!(granted.send, 2 * asked.min(w), "{granted:?}");
    } else {
        assert!(granted.receive > 0 && granted.send > 0);
    }
    // Absurd sizes are an error, not a truncation.
    assert!(host.set_socket_buffers(usize::MAX).is_err());
}

#[test]
fn queued_bytes_counts_what_a_peer_has_not_acknowledged() {
    let mut s = server(2, 1);
    let mut c = client(1);
    let (on_server, _) = connect_pair(&mut s, &mut c, 1, 0);
    assert_eq!(s.queued_bytes(on_server, usize::MAX).unwrap(), 0);
    // The client is not serviced: nothing is acknowledged, so all of it stays with ENet, queued
    // or in flight.
    for _ in 0..100 {
        s.peer_mut(on_server)
            .unwrap()
            .send(0, Packet::new(&[7u8; 1000], PacketFlags::RELIABLE).unwrap())
            .unwrap();
    }
    assert_eq!(s.queued_bytes(on_server, usize::MAX).unwrap(), 100_000);
    s.service(Duration::ZERO).unwrap();
    assert_eq!(s.queued_bytes(on_server, usize::MAX).unwrap(), 100_000);
    // The walk stops once past the bound.
    let capped = s.queued_bytes(on_server, 10_000).unwrap();
    assert!(capped > 10_000 && capped <= 11_000, "{capped}");
    // Once the client has them all, ENet holds nothing.
    let events = pump_until(&mut [&mut s, &mut c], |ev| received(ev, 1).len() == 100);
    assert_eq!(received(&events, 1).len(), 100);
    let start = Instant::now();
    while s.queued_bytes(on_server, usize::MAX).unwrap() != 0 {
        assert!(start.elapsed() < DEADLINE, "acknowledgements never came");
        s.service(Duration::from_millis(1)).unwrap();
        c.service(Duration::ZERO).unwrap();
    }
}

/// ENet's allocator cannot change once ENet made blocks with the C library's: with a host
/// alive (this binary never asks for the switch first), the switch is refused.
#[test]
fn the_allocator_switch_is_refused_once_enet_was_initialised() {
    let _host = client(1);
    assert!(!enet_wrapper::allocate_through_rust());
    assert!(!enet_wrapper::allocate_through_rust(), "still refused");
}
