//! Conversions between `std::net::SocketAddrV4` and `ENetAddress`.

use enet_sys::ENetAddress;
use std::net::{Ipv4Addr, SocketAddrV4};

/// ENet keeps the IPv4 host in network byte order and the port in host byte order.
pub(crate) fn to_enet(addr: SocketAddrV4) -> ENetAddress {
    ENetAddress {
        host: u32::from_ne_bytes(addr.ip().octets()),
        port: addr.port(),
    }
}

pub(crate) fn from_enet(addr: &ENetAddress) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(addr.host.to_ne_bytes()), addr.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_octet_order() {
        let a = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 7777);
        let e = to_enet(a);
        assert_eq!(e.host.to_ne_bytes(), [127, 0, 0, 1]);
        assert_eq!(e.port, 7777);
        assert_eq!(from_enet(&e), a);
    }
}
