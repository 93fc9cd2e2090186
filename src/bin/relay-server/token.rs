//! Join tokens: proof from whoever runs the game (a matchmaker, a lobby service) that a client
//! may join this server, checked by the relay without asking anyone.
//!
//! A token is the text `v1.<id>.<expiry>.<mac>`: `id` the client's Godot peer id (decimal),
//! `expiry` the Unix time in seconds after which it no longer admits (decimal), `mac` the
//! lowercase hex HMAC-SHA256, keyed with the server's join secret, of the bytes
//! `relay-server join v1\n<port>\n<id>\n<expiry>` (`port` the server's ENet port, decimal), so a
//! token admits one client id, on one server, for a while. The client sends it as its first
//! message with `multiplayer.send_bytes(token.to_utf8())` (Godot's RAW command: the packet's
//! payload is the byte 4 then the token). `relay-server token` mints one.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Why a token does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not `v1.<id>.<expiry>.<mac>`.
    Malformed,
    /// Made for another client id.
    OtherClient,
    /// Its expiry has passed.
    Expired,
    /// The MAC does not match: another secret, another port, or altered.
    BadSignature,
}

fn mac(secret: &[u8], port: u16, id: u32, expiry: u64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("relay-server join v1\n{port}\n{id}\n{expiry}").as_bytes());
    mac
}

/// The token admitting client `id` on the server at `port` until `expiry` (Unix seconds).
pub fn mint(secret: &[u8], port: u16, id: u32, expiry: u64) -> String {
    let tag = mac(secret, port, id, expiry).finalize().into_bytes();
    format!("v1.{id}.{expiry}.{}", hex::encode(tag))
}

/// Checks `token` for client `id` on the server at `port` at Unix time `now`.
pub fn verify(secret: &[u8], port: u16, id: u32, token: &str, now: u64) -> Result<(), TokenError> {
    let mut parts = token.trim_end().split('.');
    let (Some("v1"), Some(tid), Some(expiry), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    let tid: u32 = tid.parse().map_err(|_| TokenError::Malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let tag = hex::decode(tag).map_err(|_| TokenError::Malformed)?;
    // The MAC first: what it does not cover is not worth reporting on.
    mac(secret, port, tid, expiry)
        .verify_slice(&tag)
        .map_err(|_| TokenError::BadSignature)?;
    if tid != id {
        return Err(TokenError::OtherClient);
    }
    if now > expiry {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Unix time now, in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_admits_its_client_on_its_server_until_it_expires() {
        let t = mint(b"secret", 7777, 42, 1000);
        assert!(t.starts_with("v1.42.1000."));
        assert_eq!(verify(b"secret", 7777, 42, &t, 999), Ok(()));
        assert_eq!(verify(b"secret", 7777, 42, &t, 1000), Ok(()));
        assert_eq!(
            verify(b"secret", 7777, 42, &t, 1001),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(b"secret", 7777, 43, &t, 999),
            Err(TokenError::OtherClient)
        );
        assert_eq!(
            verify(b"other", 7777, 42, &t, 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(b"secret", 7778, 42, &t, 999),
            Err(TokenError::BadSignature)
        );
        let longer = t.replace(".1000.", ".9999.");
        assert_eq!(
            verify(b"secret", 7777, 42, &longer, 999),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "v1",
            "v2.42.1000.00",
            "v1.x.1000.00",
            "v1.42.1000.zz",
            "v1.42.1000.00.0",
        ] {
            assert_eq!(
                verify(b"secret", 7777, 42, bad, 999),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
