use ipnet::IpNet;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::Service;

use super::*;
use AddressClass::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn guard(allow: &[&str]) -> Guard {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    Guard::new(&allow, AllowHttp::Yes).unwrap()
}

fn refused_class(result: Result<Target, Refusal>) -> AddressClass {
    match result {
        Err(Refusal::Address { class, .. }) => class,
        other => panic!("expected an address refusal, got {other:?}"),
    }
}

fn assert_classes(cases: &[(&str, Option<AddressClass>)]) {
    for &(addr, expected) in cases {
        assert_eq!(classify(ip(addr)), expected, "{addr}");
    }
}

// Classification: each class in IPv4 and IPv6 (native where the class has
// an IPv6 block, IPv4-mapped where it has none).

#[test]
fn loopback() {
    assert_classes(&[
        ("127.0.0.1", Some(Loopback)),
        ("127.255.255.254", Some(Loopback)),
        ("::1", Some(Loopback)),
        ("::ffff:127.1.2.3", Some(Loopback)),
    ]);
}

#[test]
fn unspecified() {
    assert_classes(&[
        ("0.0.0.0", Some(Unspecified)),
        ("0.1.2.3", Some(Unspecified)),
        ("::", Some(Unspecified)),
        ("::ffff:0.0.0.0", Some(Unspecified)),
    ]);
}

#[test]
fn private() {
    assert_classes(&[
        ("10.0.0.1", Some(Private)),
        ("10.255.255.255", Some(Private)),
        ("172.16.0.1", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("172.15.255.255", None),
        ("172.32.0.1", None),
        ("192.168.1.1", Some(Private)),
        ("192.169.0.1", None),
        ("::ffff:192.168.0.1", Some(Private)),
        ("::ffff:172.20.0.1", Some(Private)),
        ("fec0::1", Some(Private)),
    ]);
}

#[test]
fn carrier_grade_nat() {
    assert_classes(&[
        ("100.64.0.1", Some(CarrierGradeNat)),
        ("100.127.255.255", Some(CarrierGradeNat)),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("::ffff:100.64.0.1", Some(CarrierGradeNat)),
    ]);
}

#[test]
fn link_local() {
    assert_classes(&[
        ("169.254.0.1", Some(LinkLocal)),
        ("169.254.169.253", Some(LinkLocal)),
        ("fe80::1", Some(LinkLocal)),
        ("febf:ffff::1", Some(LinkLocal)),
        ("::ffff:169.254.1.1", Some(LinkLocal)),
    ]);
}

#[test]
fn metadata_before_link_local_and_others() {
    assert_classes(&[
        ("169.254.169.254", Some(Metadata)),
        ("169.254.170.2", Some(Metadata)),
        ("169.254.170.23", Some(Metadata)),
        ("100.100.100.200", Some(Metadata)),
        ("168.63.129.16", Some(Metadata)),
        ("fd00:ec2::254", Some(Metadata)),
        ("fd00:ec2::23", Some(Metadata)),
        ("fd20:ce::254", Some(Metadata)),
        ("::ffff:169.254.169.254", Some(Metadata)),
    ]);
}

#[test]
fn unique_local() {
    assert_classes(&[
        ("fc00::1", Some(UniqueLocal)),
        ("fd12:3456:789a::1", Some(UniqueLocal)),
        ("fdff:ffff::1", Some(UniqueLocal)),
    ]);
}

#[test]
fn multicast() {
    assert_classes(&[
        ("224.0.0.1", Some(Multicast)),
        ("239.255.255.255", Some(Multicast)),
        ("ff02::1", Some(Multicast)),
        ("ff0e::1", Some(Multicast)),
        ("::ffff:224.0.0.251", Some(Multicast)),
    ]);
}

#[test]
fn broadcast() {
    assert_classes(&[
        ("255.255.255.255", Some(Broadcast)),
        ("::ffff:255.255.255.255", Some(Broadcast)),
    ]);
}

#[test]
fn reserved() {
    assert_classes(&[
        ("240.0.0.1", Some(Reserved)),
        ("255.255.255.254", Some(Reserved)),
        ("192.0.0.8", Some(Reserved)),
        ("192.0.2.1", Some(Reserved)),
        ("192.88.99.1", Some(Reserved)),
        ("198.18.0.1", Some(Reserved)),
        ("198.19.255.255", Some(Reserved)),
        ("198.51.100.7", Some(Reserved)),
        ("203.0.113.9", Some(Reserved)),
        ("::ffff:192.0.2.1", Some(Reserved)),
        ("2001:db8::1", Some(Reserved)),
        ("3fff::1", Some(Reserved)),
        ("2001::1", Some(Reserved)),
        ("2001:2::1", Some(Reserved)),
        ("100::1", Some(Reserved)),
        ("64:ff9b:1::1", Some(Reserved)),
        ("5f00::1", Some(Reserved)),
        ("4000::1", Some(Reserved)),
        ("1::1", Some(Reserved)),
    ]);
}

#[test]
fn public_addresses_are_fine() {
    assert_classes(&[
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("93.184.215.14", None),
        ("192.0.3.1", None),
        ("223.255.255.255", None),
        ("2606:4700:4700::1111", None),
        ("2001:4860:4860::8888", None),
        ("2a00:1450:4001::1", None),
        ("::ffff:8.8.8.8", None),
    ]);
}

#[test]
fn embedded_ipv4_forms_are_classified_by_the_ipv4_address() {
    assert_classes(&[
        // IPv4-mapped.
        ("::ffff:127.0.0.1", Some(Loopback)),
        ("::ffff:7f00:1", Some(Loopback)),
        // IPv4-translated.
        ("::ffff:0:127.0.0.1", Some(Loopback)),
        ("::ffff:0:10.0.0.1", Some(Private)),
        // IPv4-compatible.
        ("::127.0.0.1", Some(Loopback)),
        ("::10.1.2.3", Some(Private)),
        ("::169.254.169.254", Some(Metadata)),
        // NAT64.
        ("64:ff9b::127.0.0.1", Some(Loopback)),
        ("64:ff9b::a9fe:a9fe", Some(Metadata)),
        ("64:ff9b::192.168.0.1", Some(Private)),
        ("64:ff9b::8.8.8.8", None),
        // 6to4.
        ("2002:7f00:1::1", Some(Loopback)),
        ("2002:c0a8:101::1", Some(Private)),
        ("2002:a9fe:a9fe::", Some(Metadata)),
        ("2002:808:808::1", None),
    ]);
}

#[test]
fn class_messages() {
    let message = |url: &str| guard(&[]).check_url(url).unwrap_err().to_string();
    assert_eq!(
        message("https://127.0.0.1/"),
        "push notification URL refused: 127.0.0.1 is a loopback address (allow it with --push-allow)"
    );
    assert_eq!(
        message("https://169.254.169.254/latest/meta-data/"),
        "push notification URL refused: 169.254.169.254 is a metadata endpoint"
    );
    assert_eq!(
        message("https://0.0.0.0/"),
        "push notification URL refused: 0.0.0.0 is an unspecified address (allow it with --push-allow)"
    );
    assert_eq!(
        message("https://255.255.255.255/"),
        "push notification URL refused: 255.255.255.255 is the broadcast address (allow it with --push-allow)"
    );
    assert_eq!(
        message("https://[fd00::1]/"),
        "push notification URL refused: fd00::1 is a unique local address (allow it with --push-allow)"
    );
}

// URL rules.

#[test]
fn https_by_default_and_http_only_when_allowed() {
    let strict = Guard::default();
    let target = strict.check_url("https://example.com/hook").unwrap();
    assert_eq!(target.scheme(), Scheme::Https);
    assert_eq!(target.port(), 443);
    let refusal = strict.check_url("http://example.com/hook").unwrap_err();
    assert_eq!(refusal, Refusal::Http);
    assert_eq!(
        refusal.to_string(),
        "push notification URL refused: http:// receivers need --push-allow-http"
    );

    let lax = Guard::new(&[], AllowHttp::Yes).unwrap();
    let target = lax.check_url("http://example.com/hook").unwrap();
    assert_eq!(target.scheme(), Scheme::Http);
    assert_eq!(target.port(), 80);
    assert_eq!(lax.allow_http(), AllowHttp::Yes);
}

#[test]
fn other_schemes_are_refused() {
    for (url, scheme) in [
        ("ftp://example.com/", "ftp"),
        ("FILE://example.com/etc/passwd", "file"),
        ("gopher://example.com:70/", "gopher"),
        ("ws://example.com/", "ws"),
    ] {
        let refusal = guard(&[]).check_url(url).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Scheme {
                scheme: scheme.into()
            },
            "{url}"
        );
    }
    assert_eq!(
        guard(&[])
            .check_url("ftp://example.com/")
            .unwrap_err()
            .to_string(),
        "push notification URL refused: scheme ftp is not http(s)"
    );
}

#[test]
fn a_scheme_and_a_host_are_required() {
    let g = guard(&[]);
    assert_eq!(
        g.check_url("example.com:443").unwrap_err(),
        Refusal::MissingScheme
    );
    assert_eq!(g.check_url("/hook").unwrap_err(), Refusal::MissingScheme);
    assert_eq!(
        g.check_url("https://:443/").unwrap_err(),
        Refusal::MissingHost
    );
    assert_eq!(
        g.check_url("https:///hook").unwrap_err(),
        Refusal::InvalidUrl
    );
    assert_eq!(
        g.check_url("https://ex ample.com/").unwrap_err(),
        Refusal::InvalidUrl
    );
    assert_eq!(g.check_url("").unwrap_err(), Refusal::InvalidUrl);
}

#[test]
fn userinfo_is_refused_without_repeating_it() {
    for url in [
        "https://user:s3cret@example.com/hook",
        "https://token@example.com/",
        "https://@example.com/",
        "http://user:s3cret@127.0.0.1/",
    ] {
        let refusal = guard(&[]).check_url(url).unwrap_err();
        assert_eq!(refusal, Refusal::Credentials, "{url}");
        let message = refusal.to_string();
        assert!(
            !message.contains("s3cret") && !message.contains("token"),
            "{message}"
        );
        assert!(message.contains("authentication"), "{message}");
    }
}

#[test]
fn no_message_repeats_credentials() {
    // Whatever else is wrong with the URL, the message carries no userinfo.
    for url in [
        "ftp://user:s3cret@example.com/",
        "https://user:s3cret@example.com:99999/",
        "https://user:s3cret@/",
        "https://user:s3cret@ex ample/",
    ] {
        let message = guard(&[]).check_url(url).unwrap_err().to_string();
        assert!(!message.contains("s3cret"), "{message}");
    }
}

#[test]
fn ports() {
    let g = guard(&[]);
    assert_eq!(
        g.check_url("https://example.com:8443/").unwrap().port(),
        8443
    );
    assert_eq!(
        g.check_url("http://example.com:8080/").unwrap().port(),
        8080
    );
    assert_eq!(g.check_url("https://example.com:/").unwrap().port(), 443);
    assert_eq!(g.check_url("https://[2606:4700::1]:9/").unwrap().port(), 9);
    assert_eq!(
        g.check_url("https://example.com:65535/").unwrap().port(),
        65535
    );
    for url in [
        "https://example.com:0/",
        "https://example.com:65536/",
        "https://example.com:99999/",
        "https://[2606:4700::1]:0/",
    ] {
        assert_eq!(g.check_url(url).unwrap_err(), Refusal::InvalidPort, "{url}");
    }
}

#[test]
fn target_host_is_lowercased_and_unbracketed() {
    let g = guard(&[]);
    let target = g.check_url("HTTPS://Hooks.Example.COM/A2A").unwrap();
    assert_eq!(target.host(), "hooks.example.com");
    assert_eq!(target.kind(), HostKind::Name);

    let target = g.check_url("https://[2606:4700:4700::1111]/").unwrap();
    assert_eq!(target.host(), "2606:4700:4700::1111");
    assert_eq!(target.kind(), HostKind::Ip(ip("2606:4700:4700::1111")));

    let target = g.check_url("https://[2001:4860:4860::8888]/").unwrap();
    assert_eq!(target.host(), "2001:4860:4860::8888");

    let target = g.check_url("https://8.8.8.8:8443/").unwrap();
    assert_eq!(target.host(), "8.8.8.8");
    assert_eq!(target.kind(), HostKind::Ip(ip("8.8.8.8")));
}

#[test]
fn ip_literals_are_classified_at_once() {
    let g = guard(&[]);
    assert_eq!(refused_class(g.check_url("https://0.0.0.0/")), Unspecified);
    assert_eq!(refused_class(g.check_url("https://[::]/")), Unspecified);
    assert_eq!(refused_class(g.check_url("https://[::1]:8080/")), Loopback);
    assert_eq!(
        refused_class(g.check_url("https://[::ffff:127.0.0.1]/")),
        Loopback
    );
    assert_eq!(
        refused_class(g.check_url("https://[::FFFF:7F00:1]/")),
        Loopback
    );
    assert_eq!(
        refused_class(g.check_url("https://[64:ff9b::7f00:1]/")),
        Loopback
    );
    assert_eq!(refused_class(g.check_url("https://10.0.0.1/")), Private);
    assert_eq!(refused_class(g.check_url("https://[fe80::1]/")), LinkLocal);
    assert_eq!(
        refused_class(g.check_url("https://[fd00:ec2::254]/")),
        Metadata
    );
    assert_eq!(
        refused_class(g.check_url("https://100.100.100.200/")),
        Metadata
    );
    assert_eq!(
        g.check_url("https://[::ffff:127.0.0.1]/").unwrap_err(),
        Refusal::Address {
            name: None,
            ip: ip("::ffff:127.0.0.1"),
            class: Loopback
        }
    );
}

#[test]
fn malformed_hosts_are_refused() {
    let g = guard(&[]);
    for url in [
        "https://[fe80::1%25eth0]/",
        "https://[1.2.3.4]/",
        "https://[v1.fe]/",
        "https://a..b/",
        "https://-.example/",
    ] {
        match g.check_url(url) {
            Err(Refusal::InvalidHost { .. } | Refusal::InvalidUrl) => {}
            other => panic!("{url}: {other:?}"),
        }
    }
    assert_eq!(
        g.check_url("https://a..b/").unwrap_err(),
        Refusal::InvalidHost {
            host: "a..b".into()
        }
    );
}

#[test]
fn numeric_ipv4_spellings_are_not_host_names() {
    // http::Uri takes these as host names; resolvers (inet_aton) and browsers
    // read them as 127.0.0.1 and 10.0.0.1.
    let g = guard(&[]);
    for host in [
        "2130706433",
        "0x7f000001",
        "0X7F000001",
        "127.1",
        "0177.0.0.1",
        "10.1",
        "017700000001",
    ] {
        let url = format!("https://{host}/");
        assert_eq!(
            g.check_url(&url).unwrap_err(),
            Refusal::NumericHost {
                host: host.to_ascii_lowercase()
            },
            "{url}"
        );
    }
    // A name that merely contains digits is a name.
    assert!(g.check_url("https://1password.example/").is_ok());
    assert!(g.check_url("https://a1.example.com/").is_ok());
}

#[tokio::test]
async fn numeric_spellings_resolve_to_what_they_spell_and_are_refused() {
    // A connector hands these to its resolver as names; the system resolver
    // maps them to IPv4 addresses without DNS, and the answer is classified.
    let g = guard(&[]);
    for (host, addr, class) in [
        ("2130706433", "127.0.0.1", Loopback),
        ("0x7f000001", "127.0.0.1", Loopback),
        ("127.1", "127.0.0.1", Loopback),
        ("10.1", "10.0.0.1", Private),
        ("2852039166", "169.254.169.254", Metadata),
    ] {
        assert_eq!(
            g.resolve_host(host, 80).await.unwrap_err(),
            Refusal::Address {
                name: Some(host.into()),
                ip: ip(addr),
                class
            },
            "{host}"
        );
    }
}

// localhost names.

#[test]
fn localhost_names_are_loopback_without_resolving() {
    let g = guard(&[]);
    for url in [
        "https://localhost/",
        "https://LOCALHOST./",
        "https://localhost:8080/",
        "https://foo.localhost/",
        "https://a.b.LocalHost/",
    ] {
        assert_eq!(refused_class(g.check_url(url)), Loopback, "{url}");
    }
    assert_eq!(
        g.check_url("https://localhost/").unwrap_err().to_string(),
        "push notification URL refused: localhost resolves to 127.0.0.1, a loopback address \
         (allow it with --push-allow)"
    );
    // Only the label counts.
    assert!(g.check_url("https://notlocalhost/").is_ok());
    assert!(g.check_url("https://localhost.example.com/").is_ok());
}

#[tokio::test]
async fn localhost_allowed_by_name_or_by_network() {
    let by_name = guard(&["localhost"]);
    let target = by_name.check_url("https://LOCALHOST.:8443/").unwrap();
    assert_eq!(target.host(), "localhost.");
    assert_eq!(
        by_name.resolve(&target).await.unwrap(),
        vec![
            SocketAddr::from(([127, 0, 0, 1], 8443)),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 8443)
        ]
    );
    // The name `localhost` does not allow other localhost names.
    assert_eq!(
        refused_class(by_name.check_url("https://foo.localhost/")),
        Loopback
    );

    let by_net = guard(&["127.0.0.1/32"]);
    let target = by_net.check_url("https://foo.localhost/").unwrap();
    assert_eq!(
        by_net.resolve(&target).await.unwrap(),
        vec![SocketAddr::from(([127, 0, 0, 1], 443))]
    );

    let v6_only = guard(&["::1"]);
    let target = v6_only.check_url("https://localhost/").unwrap();
    assert_eq!(
        v6_only.resolve(&target).await.unwrap(),
        vec![SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 443)]
    );
}

// The allow-list.

#[test]
fn allow_list_parses_cidrs_ips_and_names() {
    let list: AllowList =
        " 127.0.0.1/32, 10.0.0.0/8,::1/128,localhost , Hooks.Internal.,192.168.1.7,fd00::1,, "
            .parse()
            .unwrap();
    assert_eq!(
        list.nets(),
        [
            "127.0.0.1/32",
            "10.0.0.0/8",
            "::1/128",
            "192.168.1.7/32",
            "fd00::1/128"
        ]
        .map(|n| IpNet::from_str(n).unwrap())
    );
    assert_eq!(list.names(), ["localhost", "hooks.internal"]);
    assert!(!list.is_empty());

    // Host bits in a CIDR are dropped.
    let list: AllowList = "10.1.2.3/8".parse().unwrap();
    assert_eq!(list.nets(), [IpNet::from_str("10.0.0.0/8").unwrap()]);

    assert!(AllowList::from_str("").unwrap().is_empty());
    assert!(AllowList::from_str(" , ").unwrap().is_empty());
}

#[test]
fn allow_list_errors_name_the_entry() {
    for (input, error) in [
        (
            "10.0.0.0/8,10.0.0.0/33",
            AllowListError::Cidr {
                entry: "10.0.0.0/33".into(),
            },
        ),
        (
            "hooks/internal",
            AllowListError::Cidr {
                entry: "hooks/internal".into(),
            },
        ),
        (
            "::1/129",
            AllowListError::Cidr {
                entry: "::1/129".into(),
            },
        ),
        (
            "ex ample",
            AllowListError::Entry {
                entry: "ex ample".into(),
            },
        ),
        (
            "*.internal",
            AllowListError::Entry {
                entry: "*.internal".into(),
            },
        ),
        (
            "300.1.1.1",
            AllowListError::Entry {
                entry: "300.1.1.1".into(),
            },
        ),
        (
            "https://hooks.internal",
            AllowListError::Cidr {
                entry: "https://hooks.internal".into(),
            },
        ),
    ] {
        let err = AllowList::from_str(input).unwrap_err();
        assert_eq!(err, error, "{input}");
        assert!(err.to_string().contains(err.entry()), "{err}");
    }
    assert_eq!(
        AllowList::from_str("10.0.0.0/33").unwrap_err().to_string(),
        "--push-allow entry \"10.0.0.0/33\" is not a valid CIDR (address/prefix length)"
    );
}

#[test]
fn guard_new_takes_repeated_and_comma_separated_entries() {
    let allow = ["10.0.0.0/8,hooks.internal".to_string(), "::1".to_string()];
    let g = Guard::new(&allow, AllowHttp::No).unwrap();
    assert_eq!(g.allow_list().nets().len(), 2);
    assert_eq!(g.allow_list().names(), ["hooks.internal"]);
    assert_eq!(g.allow_http(), AllowHttp::No);

    let bad = ["10.0.0.0/8".to_string(), "nope!".to_string()];
    assert_eq!(
        Guard::new(&bad, AllowHttp::No).unwrap_err(),
        AllowListError::Entry {
            entry: "nope!".into()
        }
    );
}

#[test]
fn allow_list_cidrs() {
    let g = guard(&["127.0.0.1/32", "10.0.0.0/8", "::1/128", "169.254.169.254"]);
    assert!(g.check_url("http://127.0.0.1:8080/").is_ok());
    assert_eq!(refused_class(g.check_url("http://127.0.0.2/")), Loopback);
    assert!(g.check_url("https://10.200.3.4/").is_ok());
    assert_eq!(refused_class(g.check_url("https://172.16.0.1/")), Private);
    assert!(g.check_url("https://[::1]/").is_ok());
    // ::2 is IPv4-compatible 0.0.0.2.
    assert_eq!(refused_class(g.check_url("https://[::2]/")), Unspecified);
    // An explicitly listed metadata address is the operator's call.
    assert!(g.check_url("http://169.254.169.254/").is_ok());
    assert_eq!(
        refused_class(g.check_url("http://169.254.170.2/")),
        Metadata
    );
    // Embedded IPv4 addresses match the IPv4 networks.
    assert!(g.check_url("https://[::ffff:127.0.0.1]/").is_ok());
    assert!(g.check_url("https://[64:ff9b::10.1.1.1]/").is_ok());
    assert!(g.check_ip(ip("10.9.9.9")).is_ok());
    assert_eq!(
        g.check_ip(ip("192.168.0.1")),
        Err(Refusal::Address {
            name: None,
            ip: ip("192.168.0.1"),
            class: Private
        })
    );
    // The allow-list does not cover ::1 through 0.0.0.1.
    let v4 = guard(&["0.0.0.0/8"]);
    assert_eq!(refused_class(v4.check_url("https://[::1]/")), Loopback);
}

#[test]
fn allow_list_names() {
    let list: AllowList = "hooks.internal,LocalHost".parse().unwrap();
    assert!(list.allows_name("hooks.internal"));
    assert!(list.allows_name("HOOKS.Internal."));
    assert!(list.allows_name("localhost"));
    assert!(!list.allows_name("sub.hooks.internal"));
    assert!(!list.allows_name("hooks.internal.evil.example"));
    assert!(!list.allows_name("other.internal"));
    assert!(!list.allows_ip(ip("127.0.0.1")));
}

// Resolution.

#[tokio::test]
async fn resolve_an_ip_literal_gives_it_back() {
    let g = guard(&["10.0.0.0/8"]);
    let target = g.check_url("https://10.1.2.3:8443/").unwrap();
    assert_eq!(
        g.resolve(&target).await.unwrap(),
        vec![SocketAddr::from(([10, 1, 2, 3], 8443))]
    );
    let target = g.check_url("https://[2606:4700:4700::1111]/").unwrap();
    assert_eq!(
        g.resolve(&target).await.unwrap(),
        vec![SocketAddr::new(ip("2606:4700:4700::1111"), 443)]
    );
}

#[tokio::test]
async fn resolve_checks_again_with_the_resolving_guard() {
    // A target checked by a lax guard is still refused by a strict one.
    let target = guard(&["10.0.0.0/8"])
        .check_url("https://10.1.2.3/")
        .unwrap();
    assert_eq!(
        Guard::default().resolve(&target).await.unwrap_err(),
        Refusal::Address {
            name: None,
            ip: ip("10.1.2.3"),
            class: Private
        }
    );
    let target = guard(&["localhost"])
        .check_url("https://localhost/")
        .unwrap();
    assert_eq!(
        refused_class_of(Guard::default().resolve(&target).await),
        Loopback
    );
}

fn refused_class_of(result: Result<Vec<SocketAddr>, Refusal>) -> AddressClass {
    match result {
        Err(Refusal::Address { class, .. }) => class,
        other => panic!("expected an address refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_name_resolving_to_refused_addresses_is_refused() {
    // localhost's addresses (fixed) and a numeric name (the system resolver,
    // no DNS) both stand for a name that resolves to private addresses.
    let g = guard(&[]);
    assert_eq!(
        g.resolve_name("localhost", 443).await.unwrap_err(),
        Refusal::Address {
            name: Some("localhost".into()),
            ip: ip("127.0.0.1"),
            class: Loopback
        }
    );
    let refusal = g.resolve_host("10.1", 443).await.unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "push notification URL refused: 10.1 resolves to 10.0.0.1, a private address \
         (allow it with --push-allow)"
    );
    assert!(!refusal.is_unresolvable());
    // Allowed by network, the same answer passes.
    assert_eq!(
        guard(&["10.0.0.0/8"])
            .resolve_host("10.1", 443)
            .await
            .unwrap(),
        vec![SocketAddr::from(([10, 0, 0, 1], 443))]
    );
}

#[tokio::test]
async fn names_from_etc_hosts_are_screened() {
    // The system resolver reads /etc/hosts (this machine's host name often
    // maps to a loopback or private address there): resolve never hands out
    // a refused address, and a name whose entries are all refused is refused.
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut entries: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for line in hosts.lines() {
        let mut fields = line
            .split('#')
            .next()
            .unwrap_or_default()
            .split_whitespace();
        let Some(addr) = fields.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in fields.filter(|n| is_host_name(n) && !is_numeric_host(n) && !is_localhost(n)) {
            let name = normalize_name(name);
            match entries.iter_mut().find(|(n, _)| *n == name) {
                Some((_, addrs)) => addrs.push(addr),
                None => entries.push((name, vec![addr])),
            }
        }
    }
    let g = guard(&[]);
    for (name, file_addrs) in entries {
        let result = g.resolve_name(&name, 443).await;
        if let Ok(addrs) = &result {
            for addr in addrs {
                assert_eq!(classify(addr.ip()), None, "{name} gave {addr}");
            }
        }
        if file_addrs.iter().all(|a| classify(*a).is_some()) {
            assert!(
                matches!(result, Err(Refusal::Address { .. })),
                "{name} ({file_addrs:?}): {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_unresolvable_name_is_told_apart() {
    // .invalid never resolves (RFC 6761).
    let g = guard(&[]).with_resolve_timeout(Duration::from_secs(10));
    let target = g
        .check_url("https://no-such-receiver.invalid/hook")
        .unwrap();
    let refusal = g.resolve(&target).await.unwrap_err();
    assert!(refusal.is_unresolvable(), "{refusal:?}");
    assert!(
        refusal
            .to_string()
            .starts_with("push notification URL refused: no-such-receiver.invalid "),
        "{refusal}"
    );
}

#[tokio::test]
async fn resolution_is_bounded_in_time() {
    let limit = Duration::from_millis(20);
    let g = guard(&[]).with_resolve_timeout(limit);
    let refusal = g
        .screen("slow-receiver.example", std::future::pending())
        .await
        .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Unresolvable {
            host: "slow-receiver.example".into(),
            why: Unresolved::TimedOut(limit)
        }
    );
    assert!(refusal.is_unresolvable());
    assert_eq!(
        refusal.to_string(),
        "push notification URL refused: slow-receiver.example did not resolve within 20ms"
    );
    assert_eq!(io::Error::from(refusal).kind(), io::ErrorKind::TimedOut);
    assert_eq!(RESOLVE_TIMEOUT, Duration::from_secs(5));
}

fn answer(addrs: &[&str]) -> impl Future<Output = io::Result<Vec<SocketAddr>>> {
    let addrs = addrs
        .iter()
        .map(|a| SocketAddr::new(ip(a), 443))
        .collect::<Vec<_>>();
    std::future::ready(Ok(addrs))
}

#[tokio::test]
async fn a_dns_answer_is_screened() {
    let g = guard(&[]);
    // Only private addresses: refused, naming the first.
    assert_eq!(
        g.screen("hooks.example", answer(&["10.0.0.7", "fd00::7"]))
            .await,
        Err(Refusal::Address {
            name: Some("hooks.example".into()),
            ip: ip("10.0.0.7"),
            class: Private
        })
    );
    assert_eq!(
        g.screen("meta.example", answer(&["169.254.169.254"]))
            .await
            .unwrap_err()
            .to_string(),
        "push notification URL refused: meta.example resolves to 169.254.169.254, a metadata endpoint"
    );
    // Mixed: the refused ones are dropped, the order and duplicates kept out.
    assert_eq!(
        g.screen(
            "mixed.example",
            answer(&[
                "127.0.0.1",
                "93.184.215.14",
                "::1",
                "2606:4700::1",
                "93.184.215.14"
            ])
        )
        .await
        .unwrap(),
        vec![
            SocketAddr::new(ip("93.184.215.14"), 443),
            SocketAddr::new(ip("2606:4700::1"), 443)
        ]
    );
    // No addresses at all, or a failed lookup: unresolvable.
    assert_eq!(
        g.screen("empty.example", answer(&[])).await,
        Err(Refusal::Unresolvable {
            host: "empty.example".into(),
            why: Unresolved::NoAddresses
        })
    );
    let failed = std::future::ready(Err(io::Error::other("no such name")));
    let refusal = g.screen("gone.example", failed).await.unwrap_err();
    assert!(refusal.is_unresolvable());
    assert_eq!(
        refusal.to_string(),
        "push notification URL refused: gone.example does not resolve (no such name)"
    );
}

#[tokio::test]
async fn allowed_names_skip_classification() {
    let g = guard(&["hooks.internal"]);
    assert_eq!(
        g.screen("HOOKS.internal.", answer(&["10.0.0.7", "127.0.0.1"]))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(g
        .screen("other.internal", answer(&["10.0.0.7"]))
        .await
        .is_err());
    assert!(g
        .screen("hooks.internal", answer(&[]))
        .await
        .unwrap_err()
        .is_unresolvable());
    // `localhost` on the list gives both loopback addresses; numeric
    // lookalikes cannot be listed as names at all.
    let g = guard(&["localhost"]);
    assert_eq!(g.resolve_name("localhost", 1).await.unwrap().len(), 2);
    assert!(AllowList::from_str("2130706433").is_err());
}

// The resolver for hyper-util's connector.

fn resolver(allow: &[&str]) -> GuardedResolver {
    GuardedResolver::new(Arc::new(guard(allow)))
}

async fn call(resolver: &mut GuardedResolver, name: &str) -> io::Result<Vec<SocketAddr>> {
    let name = Name::from_str(name).unwrap();
    std::future::poll_fn(|cx| resolver.poll_ready(cx)).await?;
    Ok(resolver.call(name).await?.collect())
}

#[tokio::test]
async fn guarded_resolver_refuses_with_a_downcastable_refusal() {
    let mut r = resolver(&[]);
    for (name, addr, class) in [
        ("localhost", "127.0.0.1", Loopback),
        ("2130706433", "127.0.0.1", Loopback),
        ("0x7f000001", "127.0.0.1", Loopback),
    ] {
        let err = call(&mut r, name).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            Refusal::find_in(&err),
            Some(&Refusal::Address {
                name: Some(name.into()),
                ip: ip(addr),
                class
            })
        );
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Refusal>());
        assert!(inner.is_some(), "{err:?}");
    }
    // IP literals too, should a connector ask about one.
    for name in ["127.0.0.1", "[::1]", "::ffff:10.0.0.1"] {
        let err = call(&mut r, name).await.unwrap_err();
        assert!(
            matches!(
                Refusal::find_in(&err),
                Some(Refusal::Address { name: None, .. })
            ),
            "{name}: {err:?}"
        );
    }
    let err = call(&mut r, "no-such-receiver.invalid").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(Refusal::find_in(&err).is_some_and(Refusal::is_unresolvable));
}

#[tokio::test]
async fn guarded_resolver_returns_the_allowed_addresses_with_port_zero() {
    let mut r = resolver(&["127.0.0.1/32"]);
    assert_eq!(
        call(&mut r, "localhost").await.unwrap(),
        vec![SocketAddr::from(([127, 0, 0, 1], 0))]
    );
    assert_eq!(
        call(&mut r, "8.8.8.8").await.unwrap(),
        vec![SocketAddr::from(([8, 8, 8, 8], 0))]
    );
}

/// A one-response HTTP server on 127.0.0.1 that counts its connections.
async fn tiny_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, accepted)
}

fn client(guard: Guard) -> Client<HttpConnector<GuardedResolver>, Empty<Bytes>> {
    let connector = HttpConnector::new_with_resolver(GuardedResolver::new(Arc::new(guard)));
    Client::builder(TokioExecutor::new()).build(connector)
}

#[tokio::test]
async fn hyper_client_with_the_guarded_resolver() {
    let (port, accepted) = tiny_server().await;
    let uri: http::Uri = format!("http://localhost:{port}/hook").parse().unwrap();

    let err = client(guard(&[])).get(uri.clone()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(
        Refusal::find_in(&err),
        Some(&Refusal::Address {
            name: Some("localhost".into()),
            ip: ip("127.0.0.1"),
            class: Loopback
        })
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "a refused request must not connect"
    );

    let response = client(guard(&["127.0.0.1/32"])).get(uri).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}
