//! What a host is built from: [`HostConfig`], [`Compression`] and ENet's limits.

use crate::{Error, Result};
use std::net::SocketAddrV4;

/// The largest peer limit ENet supports (`ENET_PROTOCOL_MAXIMUM_PEER_ID`).
pub const MAX_PEERS: usize = enet_sys::ENET_PROTOCOL_MAXIMUM_PEER_ID as usize;
/// The largest channel count ENet supports (`ENET_PROTOCOL_MAXIMUM_CHANNEL_COUNT`).
pub const MAX_CHANNELS: usize = enet_sys::ENET_PROTOCOL_MAXIMUM_CHANNEL_COUNT as usize;
/// ENet's default maximum packet size (32 MiB).
pub const DEFAULT_MAX_PACKET_SIZE: usize = enet_sys::ENET_HOST_DEFAULT_MAXIMUM_PACKET_SIZE as usize;

/// How a host compresses its UDP datagrams. Both ends of a connection must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression (ENet's default).
    #[default]
    None,
    /// ENet's built-in adaptive range coder (`enet_host_compress_with_range_coder`).
    RangeCoder,
}

/// What to build a [`Host`](crate::Host) from.
///
/// ```
/// use enet_wrapper::{Compression, HostConfig};
/// let server = HostConfig::server("127.0.0.1:0".parse().unwrap())
///     .peer_limit(32)
///     .channel_limit(3)
///     .compression(Compression::RangeCoder);
/// let client = HostConfig::client().channel_limit(3);
/// # let _ = (server, client);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Where to listen; `None` for a client host on an ephemeral port.
    pub bind: Option<SocketAddrV4>,
    /// Peer slots, 1..=4095.
    pub peer_limit: usize,
    /// Channels per connection, 1..=255.
    pub channel_limit: usize,
    /// Downstream bandwidth in bytes/second; 0 means unlimited.
    pub incoming_bandwidth: u32,
    /// Upstream bandwidth in bytes/second; 0 means unlimited.
    pub outgoing_bandwidth: u32,
    /// Datagram compression.
    pub compression: Compression,
    /// Largest packet this host sends or accepts; `None` keeps ENet's 32 MiB.
    pub max_packet_size: Option<usize>,
}

impl HostConfig {
    /// A host that listens on `bind` (port 0 picks a free port).
    pub fn server(bind: SocketAddrV4) -> HostConfig {
        HostConfig {
            bind: Some(bind),
            ..HostConfig::client()
        }
    }

    /// A host that only connects out: one peer slot, one channel, until changed.
    pub fn client() -> HostConfig {
        HostConfig {
            bind: None,
            peer_limit: 1,
            channel_limit: 1,
            incoming_bandwidth: 0,
            outgoing_bandwidth: 0,
            compression: Compression::None,
            max_packet_size: None,
        }
    }

    /// Sets [`HostConfig::bind`].
    pub fn bind(mut self, bind: Option<SocketAddrV4>) -> Self {
        self.bind = bind;
        self
    }

    /// Sets [`HostConfig::peer_limit`].
    pub fn peer_limit(mut self, peers: usize) -> Self {
        self.peer_limit = peers;
        self
    }

    /// Sets [`HostConfig::channel_limit`].
    pub fn channel_limit(mut self, channels: usize) -> Self {
        self.channel_limit = channels;
        self
    }

    /// Sets both bandwidth limits (bytes/second, 0 = unlimited).
    pub fn bandwidth(mut self, incoming: u32, outgoing: u32) -> Self {
        self.incoming_bandwidth = incoming;
        self.outgoing_bandwidth = outgoing;
        self
    }

    /// Sets [`HostConfig::compression`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`HostConfig::max_packet_size`].
    pub fn max_packet_size(mut self, bytes: Option<usize>) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Checks every value against ENet's limits.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_PEERS).contains(&self.peer_limit) {
            return Err(Error::InvalidConfig(format!(
                "peer limit {} is outside 1..={MAX_PEERS}",
                self.peer_limit
            )));
        }
        if !(1..=MAX_CHANNELS).contains(&self.channel_limit) {
            return Err(Error::InvalidConfig(format!(
                "channel limit {} is outside 1..={MAX_CHANNELS}",
                self.channel_limit
            )));
        }
        if self.max_packet_size == Some(0) {
            return Err(Error::InvalidConfig(
                "maximum packet size must be at least 1 byte".into(),
            ));
        }
        Ok(())
    }
}
