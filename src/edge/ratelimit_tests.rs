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
    // Behind the shop's own load balancer, the host's address is the balancer's: the
    // hop it added is the visitor (before, every visitor was the balancer).
    assert_eq!(
        client_net(Peer::Given(Some("10.0.0.5")), None, xff, true),
        v4("192.0.2.1")
    );
    assert_eq!(
        client_net(Peer::Given(Some("10.0.0.5")), None, Some("junk"), true),
        v4("10.0.0.5"),
        "a hop that is no address: the host's"
    );
    // On Cloudflare its edge's header still decides.
    assert_eq!(
        client_net(Peer::Cloudflare, cf, xff, true),
        v4("203.0.113.7")
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
    // Sandboxed frames (`Origin: null`): a bucket of their own, named as they are.
    let framed = ClientKey {
        origin: ClientKey::OPAQUE,
        ..key("203.0.113.7")
    };
    assert_eq!(framed.text(&origins), "203.0.113.7 null");
}
