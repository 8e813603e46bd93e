//! Agent host names → IPv4 addresses (marathon-lb's `gethostbyname` with an
//! LRU cache). Only successful lookups are cached; a failure costs only the
//! tasks on that host.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, ToSocketAddrs};

/// A bounded cache of successful lookups, oldest evicted first.
#[derive(Debug)]
pub struct Resolver {
    capacity: usize,
    cache: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Resolver {
    /// A resolver remembering up to `capacity` names.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            cache: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The IPv4 address of `host`: literal addresses as they are, names via
    /// the system resolver.
    pub fn resolve(&mut self, host: &str) -> Option<String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(ip.to_string());
        }
        if let Some(ip) = self.cache.get(host) {
            return Some(ip.clone());
        }
        let ip = (host, 0)
            .to_socket_addrs()
            .ok()?
            .find(|a| a.is_ipv4())
            .map(|a| a.ip().to_string());
        match &ip {
            Some(ip) => {
                if self.order.len() >= self.capacity
                    && let Some(old) = self.order.pop_front()
                {
                    self.cache.remove(&old);
                }
                self.order.push_back(host.to_owned());
                self.cache.insert(host.to_owned(), ip.clone());
            }
            None => tracing::warn!(host, "cannot resolve agent host; its tasks are skipped"),
        }
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost() {
        let mut r = Resolver::new(2);
        assert_eq!(r.resolve("10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(r.resolve("localhost").as_deref(), Some("127.0.0.1"));
        assert_eq!(r.resolve("no-such-host.invalid"), None);
    }
}
