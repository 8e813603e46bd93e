//! Server names and stable server ids.

use std::collections::HashSet;
use std::fmt::Write;

use sha2::{Digest, Sha256};

use mlb_model::sanitize;

/// `host_ip_port` when the agent host and the address differ, else `ip_port`,
/// sanitised.
pub fn server_name(host: &str, ip: &str, port: i64) -> String {
    if host != ip {
        sanitize(&format!("{host}_{ip}_{port}"))
    } else {
        sanitize(&format!("{ip}_{port}"))
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `sha256(name) mod 32767`, computed on the big-endian digest.
fn digest_mod(digest: &[u8]) -> u32 {
    digest
        .iter()
        .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % 32767)
}

/// A server id in 1..=32767 derived from the name: stable as long as servers
/// are processed in the same order; on a collision with `taken` (or 0) the
/// name is extended with its own hex digest and hashed again.
pub fn calculate_server_id(name: &str, taken: &mut HashSet<u32>) -> u32 {
    let mut current = name.to_owned();
    loop {
        let digest = Sha256::digest(current.as_bytes());
        let id = digest_mod(&digest);
        if id != 0 && taken.insert(id) {
            return id;
        }
        current = format!("{current} {}", hex(&digest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_marathon_lb() {
        assert_eq!(server_name("10.0.0.1", "10.0.0.1", 31000), "10_0_0_1_31000");
        assert_eq!(
            server_name("agent-1.dc", "172.17.0.2", 80),
            "agent-1_dc_172_17_0_2_80"
        );
    }

    #[test]
    fn ids_match_the_original() {
        // From the golden corpus (http-vhost-single).
        let mut taken = HashSet::new();
        assert_eq!(
            calculate_server_id("198_51_100_21_31111", &mut taken),
            30722
        );
        assert_eq!(
            calculate_server_id("198_51_100_22_31112", &mut taken),
            13086
        );
    }

    #[test]
    fn collisions_rehash_to_a_fresh_id() {
        let mut taken = HashSet::new();
        let a = calculate_server_id("x", &mut taken);
        let b = calculate_server_id("x", &mut taken);
        assert_ne!(a, b);
        assert!((1..=32767).contains(&b));
    }
}
