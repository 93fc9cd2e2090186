//! The host socket's descriptor, registered with mio, tells when a datagram has arrived.
#![cfg(unix)]

use enet_wrapper::{Event, Host, HostConfig};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

const SERVER: Token = Token(7);

#[test]
fn the_socket_turns_readable_when_a_datagram_arrives() {
    let mut server = Host::new(&HostConfig::server("127.0.0.1:0".parse().unwrap())).unwrap();
    let fd = server.socket_fd();
    assert_eq!(fd, server.as_raw_fd());
    assert_eq!(fd, server.as_fd().as_raw_fd());
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut SourceFd(&fd), SERVER, Interest::READABLE)
        .unwrap();
    let mut events = Events::with_capacity(8);

    // Nothing sent yet: not readable.
    poll.poll(&mut events, Some(Duration::from_millis(50)))
        .unwrap();
    assert!(events.is_empty(), "readable before anything was sent");

    // A client's connect request makes the server's socket readable, without servicing it.
    let mut client = Host::new(&HostConfig::client()).unwrap();
    let port = server.local_address().unwrap().port();
    client
        .connect(SocketAddrV4::new([127, 0, 0, 1].into(), port), 1, 0)
        .unwrap();
    client.flush();
    poll.poll(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    let ready: Vec<_> = events
        .iter()
        .map(|e| (e.token(), e.is_readable()))
        .collect();
    assert_eq!(ready, [(SERVER, true)]);

    // Servicing on readiness (and on a timer) completes the connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut connected = (false, false);
    while connected != (true, true) {
        assert!(Instant::now() < deadline, "no connection: {connected:?}");
        poll.poll(&mut events, Some(Duration::from_millis(5)))
            .unwrap();
        while let Some(ev) = server.service(Duration::ZERO).unwrap() {
            connected.0 |= matches!(ev, Event::Connect { .. });
        }
        while let Some(ev) = client.service(Duration::ZERO).unwrap() {
            connected.1 |= matches!(ev, Event::Connect { .. });
        }
    }
    poll.registry().deregister(&mut SourceFd(&fd)).unwrap();
}
