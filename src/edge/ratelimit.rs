//! Who an unsigned browser call comes from, and a per-client rate limit for it, for
//! workers without Cloudflare's rate-limit binding: one token bucket per client, kept
//! in the isolate (so it is per isolate, best effort: a busy worker runs several).
//!
//! A client is one network and one of the shop's origins. Neither part is raw header
//! bytes, so a caller cannot make itself a new client by spelling a header another way:
//! the origin is the configured one that the `Origin` header names, and the network is
//! the runtime's own view of the caller ([`Peer`]), IPv6 by its /64. Keys are fixed-size
//! values, so the limiter's memory is bounded in bytes by its number of clients
//! ([`ClientLimits::MAX_HEAP_BYTES`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::heap;
use crate::core::limiter::Limiter;

/// Where the caller's address comes from: the runtime's own view, never a header the
/// caller writes (unless the shop's own proxy writes it: `TRUST_FORWARDED_FOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer<'a> {
    /// workerd on Cloudflare: `cf-connecting-ip`, which Cloudflare's edge sets (a
    /// caller's own value never reaches the worker).
    Cloudflare,
    /// Any other runtime (Node, Deno, Bun): the address its host passed to `handle`,
    /// if any. Headers such as `cf-connecting-ip` are the caller's own words there.
    Given(Option<&'a str>),
}

/// A caller's network: an IPv4 address, or the /64 of an IPv6 address (one
/// subscriber's prefix: a host may use any of the 2^64 addresses in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientNet {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl ClientNet {
    /// An address as text (`203.0.113.7`, `2001:db8::1`, `::ffff:203.0.113.7`, spaces
    /// around ignored); `None` for anything else.
    pub fn parse(text: &str) -> Option<ClientNet> {
        let ip: IpAddr = text.trim().parse().ok()?;
        Some(ClientNet::of(ip))
    }

    /// The network of an address.
    pub fn of(ip: IpAddr) -> ClientNet {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientNet::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let mut net = [0; 8];
                net.copy_from_slice(&v6.octets()[..8]);
                ClientNet::V6(net)
            }
        }
    }

    /// `203.0.113.7`, or `2001:db8:1:2::/64`.
    fn push_text(&self, out: &mut String) {
        match self {
            ClientNet::V4(o) => out.push_str(&std::net::Ipv4Addr::from(*o).to_string()),
            ClientNet::V6(n) => {
                let mut full = [0; 16];
                full[..8].copy_from_slice(n);
                out.push_str(&std::net::Ipv6Addr::from(full).to_string());
                out.push_str("/64");
            }
        }
    }
}

/// The caller's network as this runtime knows it: what the host passed, else (on
/// Cloudflare) `cf-connecting-ip`, else, only when the shop trusts its own proxy, the
/// last hop of `x-forwarded-for` (the one that proxy added; earlier hops are the
/// caller's own words).
pub fn client_net(
    peer: Peer,
    cf_connecting_ip: Option<&str>,
    forwarded_for: Option<&str>,
    trust_forwarded_for: bool,
) -> Option<ClientNet> {
    client_ip(peer, cf_connecting_ip, forwarded_for, trust_forwarded_for).map(ClientNet::of)
}

/// The caller's address as this runtime knows it (see [`client_net`]), whole and in
/// canonical form (`::ffff:203.0.113.7` is `203.0.113.7`).
pub fn client_ip(
    peer: Peer,
    cf_connecting_ip: Option<&str>,
    forwarded_for: Option<&str>,
    trust_forwarded_for: bool,
) -> Option<IpAddr> {
    let parse = |t: &str| t.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let seen = match peer {
        Peer::Given(given) => given,
        Peer::Cloudflare => cf_connecting_ip,
    };
    seen.and_then(parse).or_else(|| {
        forwarded_for
            .filter(|_| trust_forwarded_for)
            .and_then(|f| f.rsplit(',').next())
            .and_then(parse)
    })
}

/// One client: a network (or none known: then all callers of that origin share one
/// bucket) and the index of one of the shop's origins in `ALLOWED_ORIGINS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub net: Option<ClientNet>,
    pub origin: u32,
}

impl ClientKey {
    /// The key as text, for Cloudflare's rate-limit binding: `<network> <origin>`, with
    /// `-` for no known network. Its length is bounded by the configured origins.
    pub fn text(&self, origins: &[String]) -> String {
        let mut k = String::new();
        match &self.net {
            Some(n) => n.push_text(&mut k),
            None => k.push('-'),
        }
        k.push(' ');
        let origin = usize::try_from(self.origin)
            .ok()
            .and_then(|i| origins.get(i));
        k.push_str(origin.map_or("", String::as_str));
        k
    }
}

/// Buckets for at most `max_clients` clients; the least recently created go first.
pub struct ClientLimits {
    per_minute: u32,
    max_clients: usize,
    buckets: HashMap<ClientKey, Limiter>,
    order: VecDeque<ClientKey>,
}

impl ClientLimits {
    /// The clients an isolate keeps a bucket for. Past it the oldest bucket goes: a
    /// caller needs that many networks of its own to get one back early.
    pub const MAX_CLIENTS: usize = 20_000;

    /// What [`ClientLimits::MAX_CLIENTS`] buckets hold on the heap at most, counted as
    /// [`ClientLimits::heap_bytes`] does (see `heap.rs`).
    pub const MAX_HEAP_BYTES: usize = heap::bound(
        Self::MAX_CLIENTS,
        std::mem::size_of::<(ClientKey, Limiter)>(),
        std::mem::size_of::<ClientKey>(),
    );

    pub fn new(per_minute: u32, max_clients: usize) -> ClientLimits {
        ClientLimits {
            per_minute,
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `client` may make one more call now (and counts it).
    pub fn allow(&mut self, client: ClientKey, per_minute: u32, now_ms: u64) -> bool {
        if per_minute != self.per_minute {
            // The setting changed (a new config): start over.
            self.per_minute = per_minute;
            self.buckets.clear();
            self.order.clear();
        }
        if !self.buckets.contains_key(&client) {
            if self.buckets.len() >= self.max_clients {
                if let Some(old) = self.order.pop_front() {
                    self.buckets.remove(&old);
                }
            }
            // A minute's allowance, up to a tenth of it at once.
            let burst = (per_minute / 10).max(1);
            self.buckets.insert(client, Limiter::new(burst, per_minute));
            self.order.push_back(client);
        }
        self.buckets
            .get_mut(&client)
            .is_some_and(|b| b.try_take(now_ms))
    }

    /// The heap the buckets hold now: the map's slots (entry and control byte each) and
    /// the creation order, by capacity.
    pub fn heap_bytes(&self) -> usize {
        heap::slots(self.buckets.capacity()) * (std::mem::size_of::<(ClientKey, Limiter)>() + 1)
            + self.order.capacity() * std::mem::size_of::<ClientKey>()
    }

    /// How many clients have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no client has a bucket.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

// The figure the README gives: 5.8 MiB (20,000 clients).
const _: () = assert!(ClientLimits::MAX_HEAP_BYTES <= 6 * 1024 * 1024);

#[cfg(test)]
mod tests {
    use super::*;

    fn key(net: &str) -> ClientKey {
        ClientKey {
            net: ClientNet::parse(net),
            origin: 0,
        }
    }

    #[test]
    fn each_client_gets_its_own_allowance() {
        let mut l = ClientLimits::new(60, 100);
        let a = key("203.0.113.7");
        let allowed = (0..20).filter(|_| l.allow(a, 60, 0)).count();
        assert_eq!(allowed, 6, "a tenth of the minute at once");
        assert!(
            l.allow(key("198.51.100.1"), 60, 0),
            "another client is not affected"
        );
        assert!(
            l.allow(ClientKey { origin: 1, ..a }, 60, 0),
            "nor the same network on another of the shop's origins"
        );
        assert!(!l.allow(a, 60, 10));
        assert!(l.allow(a, 60, 1_000), "tokens come back over the minute");
    }

    #[test]
    fn memory_is_bounded_by_the_number_of_clients() {
        let mut l = ClientLimits::new(60, 3);
        for c in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"] {
            assert!(l.allow(key(c), 60, 0));
        }
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn memory_is_bounded_in_bytes_whatever_the_clients() {
        let mut l = ClientLimits::new(60, ClientLimits::MAX_CLIENTS);
        for i in 0..200_000u32 {
            let net = if i % 2 == 0 {
                ClientNet::V4(i.to_be_bytes())
            } else {
                let mut n = [0; 8];
                n[..4].copy_from_slice(&i.to_be_bytes());
                ClientNet::V6(n)
            };
            l.allow(
                ClientKey {
                    net: Some(net),
                    origin: i % 3,
                },
                60,
                0,
            );
            assert!(l.heap_bytes() <= ClientLimits::MAX_HEAP_BYTES);
        }
        assert_eq!(l.len(), ClientLimits::MAX_CLIENTS);
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a = ClientNet::parse("2001:db8:1:2:aaaa::1");
        assert_eq!(a, ClientNet::parse("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_ne!(a, ClientNet::parse("2001:db8:1:3::1"));
        assert_eq!(
            ClientNet::parse("::ffff:203.0.113.7"),
            ClientNet::parse("203.0.113.7"),
            "an IPv4 address written as IPv6 is that IPv4 address"
        );
        assert_eq!(
            ClientNet::parse(" 203.0.113.7 "),
            Some(ClientNet::V4([203, 0, 113, 7]))
        );
        for junk in [
            "",
            "unknown",
            "203.0.113",
            "203.0.113.7:443",
            "[::1]",
            "x".repeat(100_000).as_str(),
        ] {
            assert_eq!(ClientNet::parse(junk), None, "{}", junk.len());
        }
    }

    #[test]
    fn the_address_is_the_runtimes_view_not_the_callers_headers() {
        let cf = Some("203.0.113.7");
        let xff = Some("198.51.100.9, 192.0.2.1");
        let v4 = |s: &str| ClientNet::parse(s);
        // On Cloudflare, its own header; a forwarded-for chain counts only when trusted.
        assert_eq!(
            client_net(Peer::Cloudflare, cf, xff, false),
            v4("203.0.113.7")
        );
        assert_eq!(client_net(Peer::Cloudflare, None, xff, false), None);
        assert_eq!(
            client_net(Peer::Cloudflare, None, xff, true),
            v4("192.0.2.1")
        );
        // Elsewhere, what the host passed; `cf-connecting-ip` is just a header there.
        assert_eq!(client_net(Peer::Given(None), cf, xff, false), None);
        assert_eq!(
            client_net(Peer::Given(Some("192.0.2.50")), cf, xff, false),
            v4("192.0.2.50")
        );
        // Trusted, the LAST hop is the one the shop's proxy added.
        assert_eq!(
            client_net(Peer::Given(None), cf, xff, true),
            v4("192.0.2.1")
        );
        assert_eq!(
            client_net(Peer::Given(None), None, Some("junk"), true),
            None
        );
    }

    #[test]
    fn the_binding_key_is_the_network_and_the_configured_origin() {
        let origins = vec!["https://shop.example".to_string()];
        assert_eq!(
            key("203.0.113.7").text(&origins),
            "203.0.113.7 https://shop.example"
        );
        assert_eq!(
            key("2001:db8:1:2:3:4:5:6").text(&origins),
            "2001:db8:1:2::/64 https://shop.example"
        );
        let nobody = ClientKey {
            net: None,
            origin: 0,
        };
        assert_eq!(nobody.text(&origins), "- https://shop.example");
    }
}
