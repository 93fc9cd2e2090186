//! Every rule of the core, with links as plain numbers and time simulated.

use super::*;
use crate::peer::{ConnectionStatus, DisconnectReason, PeerEvent, Refusal, Target};
use crate::relay::{DropReason, Forward};
use std::time::{Duration, Instant};

type Server = ServerSession<u32>;

fn server(config: ServerConfig) -> Server {
    ServerSession::new(config)
}

fn events(s: &mut Server) -> Vec<PeerEvent> {
    std::iter::from_fn(|| s.queues_mut().pop_event()).collect()
}

fn announcements(s: &mut Server) -> Vec<(Announcement, Vec<u32>)> {
    let mut out = Vec::new();
    s.drain_announcements(|what, to| out.push((what, to.to_vec())));
    out
}

/// What each link received, in order.
fn per_link(sent: &[(Announcement, Vec<u32>)], link: u32) -> Vec<Announcement> {
    sent.iter()
        .filter(|(_, to)| to.contains(&link))
        .map(|(what, _)| *what)
        .collect()
}

fn data(source: u32, target: i32) -> Inbound {
    Inbound::Data { source, target }
}

#[test]
fn admission_table() {
    let t = Instant::now();
    let mut s = server(ServerConfig {
        max_clients: 2,
        ..ServerConfig::default()
    });
    let cases: [(u32, Option<u32>, Result<u32, Refusal>); 7] = [
        (100, Some(0), Err(Refusal::InvalidId)),
        (101, Some(1), Err(Refusal::InvalidId)),
        (102, Some(1 << 31), Err(Refusal::InvalidId)),
        (103, Some(5), Ok(5)),
        (104, Some(5), Err(Refusal::IdInUse)),
        (105, Some(crate::MAX_PEER_ID), Ok(crate::MAX_PEER_ID)),
        (106, Some(7), Err(Refusal::ServerFull)),
    ];
    for (link, claimed, want) in cases {
        assert_eq!(
            s.connect(link, claimed, t),
            want,
            "link {link} claiming {claimed:?}"
        );
    }
    // Full beats a bad id? No: the id is checked first, as Godot's server does.
    assert_eq!(s.connect(107, Some(0), t), Err(Refusal::InvalidId));
    s.set_refuse_new_connections(true);
    assert_eq!(s.connect(108, Some(9), t), Err(Refusal::NotAccepting));
    let r = s.refused();
    assert_eq!(
        (
            r.invalid_id,
            r.id_in_use,
            r.server_full,
            r.not_accepting,
            r.total()
        ),
        (4, 1, 1, 1, 7)
    );
    assert_eq!(s.peer_ids().collect::<Vec<_>>(), [5, crate::MAX_PEER_ID]);
    assert_eq!(s.peer_of(&103), Some(5));
    assert_eq!(s.link_of(5), Some(103));
    // Refused links were never admitted: nothing they send counts as theirs.
    assert_eq!(
        s.receive(&104, data(5, 1), t),
        Err(DropReason::UnknownSender)
    );
    assert_eq!(events(&mut s).len(), 2);
}

#[test]
fn the_server_assigns_free_ids_when_none_is_claimed() {
    let t = Instant::now();
    let mut s = server(ServerConfig {
        max_clients: 500,
        ..ServerConfig::default()
    });
    let mut ids = std::collections::BTreeSet::new();
    for link in 0..500 {
        let id = s.connect(link, None, t).unwrap();
        assert!((2..=crate::MAX_PEER_ID).contains(&id));
        assert!(ids.insert(id), "{id} handed out twice");
    }
    // A link cannot be admitted twice.
    s.set_refuse_new_connections(false);
    let mut t2 = server(ServerConfig::default());
    t2.connect(1, None, t).unwrap();
    assert_eq!(t2.connect(1, None, t), Err(Refusal::IdInUse));
}

#[test]
fn announcements_follow_godots_order_with_late_joiners() {
    let t = Instant::now();
    let mut s = server(ServerConfig::default());
    // 30 joins, 20 joins, then (later poll) 25 joins.
    s.connect(1030, Some(30), t).unwrap();
    s.connect(1020, Some(20), t).unwrap();
    let first = announcements(&mut s);
    assert_eq!(
        first,
        [
            (Announcement::Add(20), vec![1030]),
            (Announcement::Add(30), vec![1020]),
        ]
    );
    s.connect(1025, Some(25), t).unwrap();
    let second = announcements(&mut s);
    // The existing clients learn of 25 in one message; 25 learns of each, ascending.
    assert_eq!(second[0], (Announcement::Add(25), vec![1020, 1030]));
    assert_eq!(
        per_link(&second, 1025),
        [Announcement::Add(20), Announcement::Add(30)]
    );
    // Nobody learns of itself, nor of the server.
    for link in [1020, 1025, 1030] {
        let id = s.peer_of(&link).unwrap();
        let all: Vec<_> = first.iter().chain(&second).cloned().collect();
        assert!(!per_link(&all, link).contains(&Announcement::Add(id)));
        assert!(!per_link(&all, link).contains(&Announcement::Add(1)));
    }
    assert!(!s.has_announcements());
}

#[test]
fn a_newcomer_who_leaves_before_the_flush_is_left_out() {
    let t = Instant::now();
    let mut s = server(ServerConfig::default());
    s.connect(1, Some(2), t).unwrap();
    s.connect(2, Some(3), t).unwrap();
    s.connect(3, Some(4), t).unwrap();
    s.link_closed(&3); // 4 leaves in the same poll
    let sent = announcements(&mut s);
    // 2 and 3 hear of 4 and of its departure, in that order; nothing goes to 4's link.
    assert_eq!(
        per_link(&sent, 1),
        [
            Announcement::Add(3),
            Announcement::Add(4),
            Announcement::Remove(4)
        ]
    );
    assert_eq!(
        per_link(&sent, 2),
        [
            Announcement::Add(2),
            Announcement::Add(4),
            Announcement::Remove(4)
        ]
    );
    assert!(per_link(&sent, 3).is_empty());
}

#[test]
fn every_way_of_leaving_gives_exactly_one_event_but_the_two_silent_ones() {
    let t = Instant::now();
    let mut s = server(ServerConfig::default());
    for id in 2..=6 {
        s.connect(id + 100, Some(id), t).unwrap();
    }
    events(&mut s);
    announcements(&mut s);
    // Disconnect (or time-out: the transport reports both as a closed link).
    assert_eq!(s.link_closed(&102), Some(2));
    assert_eq!(s.link_closed(&102), None, "a second report changes nothing");
    // A graceful kick: the link stays until the transport closes it.
    assert_eq!(s.kick(3, false).unwrap(), 103);
    assert!(s.contains(3));
    assert_eq!(s.link_closed(&103), Some(3));
    // A forced kick: gone at once, silently; the transport's later report is nothing.
    assert_eq!(s.kick(4, true).unwrap(), 104);
    assert!(!s.contains(4));
    assert_eq!(s.link_closed(&104), None);
    assert!(matches!(s.kick(4, true), Err(crate::Error::UnknownPeer(4))));
    assert_eq!(
        events(&mut s),
        [
            PeerEvent::PeerDisconnected(2),
            PeerEvent::PeerDisconnected(3)
        ]
    );
    // The others were told of every departure, the forced one included, once each.
    let sent = announcements(&mut s);
    assert_eq!(
        per_link(&sent, 105),
        [
            Announcement::Remove(2),
            Announcement::Remove(3),
            Announcement::Remove(4)
        ]
    );
    // close: everyone at once, silently.
    let mut links = s.close();
    links.sort_unstable();
    assert_eq!(links, [105, 106]);
    assert_eq!(s.link_closed(&105), None);
    assert!(events(&mut s).is_empty());
    assert!(announcements(&mut s).is_empty());
}

#[test]
fn relay_off_announces_nothing_and_forwards_nothing() {
    let t = Instant::now();
    let mut s = server(ServerConfig {
        relay: false,
        ..ServerConfig::default()
    });
    s.connect(1, Some(2), t).unwrap();
    s.connect(2, Some(3), t).unwrap();
    s.link_closed(&2);
    assert!(announcements(&mut s).is_empty());
    s.connect(3, Some(4), t).unwrap();
    // Broadcast: the server's share only. To a client: dropped.
    let b = s.receive(&1, data(2, 0), t).unwrap();
    assert!(b.route.local);
    assert_eq!(s.forward_links(b.route.forward).count(), 0);
    assert_eq!(s.receive(&1, data(2, 4), t), Err(DropReason::RelayDisabled));
    assert!(s.receive(&1, data(2, 1), t).unwrap().route.local);
}

#[test]
fn relay_on_routes_to_the_right_links() {
    let t = Instant::now();
    let mut s = server(ServerConfig::default());
    for id in [2, 3, 4] {
        s.connect(id * 10, Some(id), t).unwrap();
    }
    let route = |s: &mut Server, target| {
        let a = s.receive(&20, data(2, target), t).unwrap();
        (
            a.route.local,
            s.forward_links(a.route.forward).collect::<Vec<_>>(),
        )
    };
    assert_eq!(route(&mut s, 0), (true, vec![30, 40]));
    assert_eq!(route(&mut s, 1), (true, vec![]));
    assert_eq!(route(&mut s, 3), (false, vec![30]));
    assert_eq!(
        route(&mut s, 2),
        (false, vec![20]),
        "to itself: back to the sender"
    );
    assert_eq!(route(&mut s, -3), (true, vec![40]));
    assert_eq!(route(&mut s, -1), (false, vec![30, 40]));
    assert_eq!(
        s.receive(&20, data(2, 9), t),
        Err(DropReason::UnknownTarget)
    );
    assert_eq!(
        s.receive(&20, data(2, i32::MIN), t),
        Err(DropReason::InvalidTarget)
    );
    // The server's own sends.
    let (int, links) = s.send_links(Target::AllExcept(3)).unwrap();
    assert_eq!((int, links.collect::<Vec<_>>()), (-3, vec![20, 40]));
    let (int, links) = s.send_links(Target::Broadcast).unwrap();
    assert_eq!((int, links.count()), (0, 3));
    assert!(matches!(
        s.send_links(Target::Server),
        Err(crate::Error::UnknownTarget(1))
    ));
    assert!(matches!(
        s.send_links(Target::Peer(9)),
        Err(crate::Error::UnknownTarget(9))
    ));
}

#[test]
fn spoofed_short_and_config_packets_are_dropped_and_counted_per_peer() {
    let t = Instant::now();
    let mut s = server(ServerConfig::default());
    s.connect(1, Some(2), t).unwrap();
    s.connect(2, Some(3), t).unwrap();
    assert_eq!(s.receive(&1, data(3, 0), t), Err(DropReason::SpoofedSource));
    assert_eq!(s.receive(&1, data(1, 0), t), Err(DropReason::SpoofedSource));
    assert_eq!(
        s.receive(&1, Inbound::Short, t),
        Err(DropReason::ShortPacket)
    );
    assert_eq!(
        s.receive(&2, Inbound::Config, t),
        Err(DropReason::ConfigChannel)
    );
    assert_eq!(s.receive(&9, data(2, 0), t), Err(DropReason::UnknownSender));
    s.count_drop(&2, DropReason::Oversize, "ENet refused it");
    let two = s.drops_of(2).unwrap();
    assert_eq!(
        (
            two.get(DropReason::SpoofedSource),
            two.get(DropReason::ShortPacket)
        ),
        (2, 1)
    );
    let three = s.drops_of(3).unwrap();
    assert_eq!(
        (
            three.get(DropReason::ConfigChannel),
            three.get(DropReason::Oversize)
        ),
        (1, 1)
    );
    assert_eq!(s.drops().get(DropReason::UnknownSender), 1);
    assert_eq!(s.drops().total(), 6);
}

#[test]
fn rate_limit_windows_use_the_time_given() {
    let t0 = Instant::now();
    let mut s = server(ServerConfig {
        rate_limit: Some(3),
        ..ServerConfig::default()
    });
    s.connect(1, Some(2), t0).unwrap();
    s.connect(2, Some(3), t0).unwrap();
    let at = |ms| t0 + Duration::from_millis(ms);
    let mut results = Vec::new();
    for ms in [0, 100, 200, 300, 999, 1000, 1001, 1002, 1003] {
        results.push(s.receive(&1, data(2, 1), at(ms)).is_ok());
    }
    // 3 per window; the window restarts at the first packet a second or more after it began.
    assert_eq!(
        results,
        [true, true, true, false, false, true, true, true, false]
    );
    // Each client has its own window.
    assert!(s.receive(&2, data(3, 1), at(1003)).is_ok());
    assert_eq!(s.drops_of(2).unwrap().get(DropReason::RateLimited), 3);
    // Time going backwards (a driver's clock is monotonic, but be safe) does not panic.
    assert!(s.receive(&2, data(3, 1), t0).is_ok());
}

#[test]
fn limits_check_target_channel_and_size() {
    let limits = Limits {
        logical_channels: 2,
        max_packet_size: 10,
    };
    let known = |id| id == 5;
    assert_eq!(
        limits.check_send(1, known, Target::Peer(5), 1, 10).unwrap(),
        (Target::Peer(5), 5)
    );
    assert!(matches!(
        limits.check_send(1, known, Target::Peer(5), 2, 1),
        Err(crate::Error::ChannelOutOfRange {
            channel: 2,
            count: 2
        })
    ));
    assert!(matches!(
        limits.check_send(1, known, Target::Peer(5), 0, 11),
        Err(crate::Error::PacketTooLarge { size: 11, max: 10 })
    ));
    assert!(matches!(
        limits.check_send(1, known, Target::Peer(6), 0, 1),
        Err(crate::Error::UnknownTarget(6))
    ));
    // A client may name the server and itself.
    assert!(limits.check_send(7, known, Target::Server, 0, 1).is_ok());
    assert!(limits.check_send(7, known, Target::Peer(7), 0, 1).is_ok());
}

#[test]
fn client_events_exactly_once() {
    let mut c = ClientSession::connecting(7);
    assert_eq!(c.peer_added(5), Err(PeerRejected::NotConnected));
    c.connected();
    c.connected();
    assert_eq!(c.status(), ConnectionStatus::Connected);
    assert_eq!(c.peer_added(5), Ok(()));
    assert_eq!(c.peer_added(5), Err(PeerRejected::AlreadyKnown));
    assert_eq!(c.peer_added(7), Err(PeerRejected::OwnId));
    assert_eq!(c.peer_added(1), Err(PeerRejected::OwnId));
    assert_eq!(c.peer_added(0), Err(PeerRejected::InvalidId));
    assert_eq!(c.peer_removed(6), Err(PeerRejected::Unknown));
    c.peer_added(6).unwrap();
    c.peer_removed(6).unwrap();
    assert!(c.knows(1) && c.knows(5) && !c.knows(6));
    assert_eq!(c.peer_ids(), [1, 5]);
    c.link_closed(DisconnectReason::Kicked);
    c.link_closed(DisconnectReason::Kicked);
    let events: Vec<_> = std::iter::from_fn(|| c.queues_mut().pop_event()).collect();
    assert_eq!(
        events,
        [
            PeerEvent::PeerConnected(1),
            PeerEvent::ConnectionSucceeded,
            PeerEvent::PeerConnected(5),
            PeerEvent::PeerConnected(6),
            PeerEvent::PeerDisconnected(6),
            PeerEvent::ServerDisconnected(DisconnectReason::Kicked),
        ]
    );
    assert_eq!((c.id(), c.peer_ids()), (0, vec![]));

    // A connection that never completed fails; close is silent.
    let mut c = ClientSession::connecting(8);
    c.link_closed(DisconnectReason::Refused(Refusal::IdInUse));
    assert_eq!(
        c.queues_mut().pop_event(),
        Some(PeerEvent::ConnectionFailed(DisconnectReason::Refused(
            Refusal::IdInUse
        )))
    );
    let mut c = ClientSession::connecting(9);
    c.connected();
    c.close();
    assert_eq!(c.queues_mut().pop_event(), None);
    c.link_closed(DisconnectReason::Unspecified);
    assert_eq!(c.queues_mut().pop_event(), None);
}

#[test]
fn per_address_limits_count_clients_and_attempts() {
    use std::net::{IpAddr, Ipv4Addr};
    let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let t0 = Instant::now();
    let mut s: ServerSession<u32> = ServerSession::new(ServerConfig {
        max_clients_per_address: Some(2),
        connects_per_address_per_second: Some(3),
        ..ServerConfig::default()
    });
    assert_eq!(s.connect_from(1, Some(11), Some(a), t0), Ok(11));
    assert_eq!(s.connect_from(2, Some(12), Some(a), t0), Ok(12));
    // A third client from a: over the per-address limit; b is not.
    assert_eq!(
        s.connect_from(3, Some(13), Some(a), t0),
        Err(Refusal::TooManyFromAddress)
    );
    assert_eq!(s.connect_from(4, Some(14), Some(b), t0), Ok(14));
    // A fourth attempt from a within the second: over the rate (refused ones counted).
    assert_eq!(
        s.connect_from(5, Some(15), Some(a), t0),
        Err(Refusal::ConnectingTooOften)
    );
    // One of a's clients leaves; a second later a may connect again.
    s.link_closed(&1);
    let t1 = t0 + Duration::from_millis(1001);
    assert_eq!(s.connect_from(6, Some(16), Some(a), t1), Ok(16));
    assert_eq!(
        s.connect_from(7, Some(17), Some(a), t1),
        Err(Refusal::TooManyFromAddress)
    );
    // Without an address, only the global rules apply.
    assert_eq!(s.connect(8, Some(18), t1), Ok(18));
    let r = s.refused();
    assert_eq!((r.too_many_from_address, r.connecting_too_often), (2, 1));
    assert_eq!(r.total(), 3);
}

#[test]
fn gated_clients_are_heard_by_the_server_only_until_approved() {
    let t = Instant::now();
    let mut s = server(ServerConfig {
        gated: true,
        ..ServerConfig::default()
    });
    assert_eq!(s.connect(1, Some(11), t), Ok(11));
    assert_eq!(s.connect(2, Some(12), t), Ok(12));
    // Both connected (the application hears of them), neither announced.
    assert_eq!(
        events(&mut s),
        [PeerEvent::PeerConnected(11), PeerEvent::PeerConnected(12)]
    );
    assert!(announcements(&mut s).is_empty());
    assert!(!s.is_admitted(11));
    // Before admission: to the server it goes; a waiting client is no target.
    let r = s.receive(&1, data(11, 1), t).unwrap();
    assert!(r.route.local && r.route.forward == Forward::Nobody);
    assert_eq!(
        s.receive(&1, data(11, 12), t),
        Err(DropReason::UnknownTarget)
    );
    // Approving 12: nobody admitted to tell yet.
    s.approve(12).unwrap();
    assert!(announcements(&mut s).is_empty());
    // 11 still waits: nothing it sends reaches 12, a broadcast only the server...
    assert_eq!(s.receive(&1, data(11, 12), t), Err(DropReason::NotAdmitted));
    let r = s.receive(&1, data(11, 0), t).unwrap();
    assert!(r.route.local && r.route.forward == Forward::Nobody);
    // ...and 12's broadcasts do not reach 11.
    let r = s.receive(&2, data(12, 0), t).unwrap();
    assert_eq!(s.forward_links(r.route.forward).count(), 0);
    // Approving 11: each is told of the other, once.
    s.approve(11).unwrap();
    s.approve(11).unwrap();
    let sent = announcements(&mut s);
    assert_eq!(per_link(&sent, 1), [Announcement::Add(12)]);
    assert_eq!(per_link(&sent, 2), [Announcement::Add(11)]);
    let r = s.receive(&1, data(11, 12), t).unwrap();
    assert_eq!(s.forward_links(r.route.forward).collect::<Vec<_>>(), [2]);
    // A third, rejected: counted, never announced, its departure not announced either.
    assert_eq!(s.connect(3, Some(13), t), Ok(13));
    assert_eq!(s.reject(13, Refusal::NotAuthorized).unwrap(), 3);
    s.link_closed(&3);
    assert!(announcements(&mut s).is_empty());
    assert_eq!(s.refused().not_authorized, 1);
    // An admitted one leaving is announced to the admitted rest.
    s.link_closed(&2);
    assert_eq!(
        per_link(&announcements(&mut s), 1),
        [Announcement::Remove(12)]
    );
    assert!(matches!(s.approve(99), Err(Error::UnknownPeer(99))));
}
