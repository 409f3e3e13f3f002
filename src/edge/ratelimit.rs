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

/// The caller's network as this runtime knows it. On Cloudflare `cf-connecting-ip`,
/// else, only when the shop trusts its own proxy, the last hop of `x-forwarded-for`
/// (the one that proxy added; earlier hops are the caller's own words). Elsewhere that
/// trusted hop first (the host's address is then the proxy's), else what the host
/// passed.
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
    let forwarded = || {
        forwarded_for
            .filter(|_| trust_forwarded_for)
            .and_then(|f| f.rsplit(',').next())
            .and_then(parse)
    };
    match peer {
        Peer::Cloudflare => cf_connecting_ip.and_then(parse).or_else(forwarded),
        // Behind the shop's own proxy, the host's address is that proxy's: the hop it
        // added comes first.
        Peer::Given(given) => forwarded().or_else(|| given.and_then(parse)),
    }
}

/// One client: a network (or none known: then all callers of that origin share one
/// bucket) and the index of one of the shop's origins in `ALLOWED_ORIGINS`, or
/// [`ClientKey::OPAQUE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub net: Option<ClientNet>,
    pub origin: u32,
}

impl ClientKey {
    /// The origin of `Origin: null` (sandboxed frames, `ALLOW_NULL_ORIGIN`): buckets of
    /// their own, apart from every configured origin's. No index reaches it (a list of
    /// origins that long would not fit in memory; one past it would share this gate).
    pub const OPAQUE: u32 = u32::MAX;

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
        let opaque = (self.origin == Self::OPAQUE).then_some("null");
        k.push_str(origin.map(String::as_str).or(opaque).unwrap_or(""));
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
#[path = "ratelimit_tests.rs"]
mod tests;
