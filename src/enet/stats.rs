//! What an ENet peer counts: totals since it was created, and per connection.

use crate::relay::DropCounts;
use std::net::SocketAddrV4;

/// Totals since the peer was created, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TotalStats {
    /// Data packets received from the network.
    pub packets_in: u64,
    /// Their bytes, headers included.
    pub bytes_in: u64,
    /// Packets queued for sending (one per destination), system messages included.
    pub packets_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Client packets the server forwarded (one per destination).
    pub relayed: u64,
    /// Connections refused.
    pub refused: u64,
    /// Server: incoming handshakes started, completed or not (a flood of forged connect
    /// requests shows here and nowhere else).
    pub handshakes: u64,
    /// Dropped packets, by reason.
    pub drops: DropCounts,
    /// Server: clients disconnected as slow consumers (more queued for them than the cap:
    /// `ENetBuilder::max_queued_bytes`, `WebSocketListen::max_queued_bytes`).
    pub slow_consumers: u64,
    /// Server: packets for the server that its `ServerPackets` setting kept from the
    /// application (neither copied nor queued).
    pub not_for_application: u64,
}

/// One connected peer as seen from here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerStats {
    /// Its address.
    pub address: SocketAddrV4,
    /// Mean round-trip time, in milliseconds.
    pub round_trip_time: u32,
    /// Round-trip time variance, in milliseconds.
    pub round_trip_time_variance: u32,
    /// Mean loss of reliable packets, 0.0 ..= 1.0.
    pub packet_loss: f32,
    /// Packets sent to it.
    pub packets_sent: u64,
    /// Bytes sent to it.
    pub bytes_sent: u64,
    /// Packets received from it.
    pub packets_received: u64,
    /// Bytes received from it.
    pub bytes_received: u64,
    /// Its packets this peer dropped, by reason.
    pub drops: DropCounts,
}
