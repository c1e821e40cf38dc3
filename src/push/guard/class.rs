//! Which special-purpose block an address belongs to: the table the guard
//! refuses by.

use super::ALLOW_HINT;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The special-purpose block an address belongs to; see [`classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// A cloud metadata endpoint (169.254.169.254, 169.254.170.2,
    /// 169.254.170.23, 100.100.100.200, 168.63.129.16, fd00:ec2::254,
    /// fd00:ec2::23, fd20:ce::254).
    Metadata,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 0.0.0.0/8 ("this network"), ::.
    Unspecified,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, and the deprecated IPv6
    /// site-local fec0::/10.
    Private,
    /// 100.64.0.0/10, shared address space behind carrier-grade NAT.
    CarrierGradeNat,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// Not globally reachable for another reason: 240.0.0.0/4, the IETF
    /// protocol assignments (192.0.0.0/24, 2001::/23), benchmarking
    /// (198.18.0.0/15), documentation (192.0.2.0/24, 198.51.100.0/24,
    /// 203.0.113.0/24, 2001:db8::/32, 3fff::/20), the deprecated 6to4 relay
    /// anycast (192.88.99.0/24), discard-only (100::/64), local-use NAT64
    /// (64:ff9b:1::/48), SRv6 SIDs (5f00::/16) and any IPv6 address outside
    /// the global unicast space 2000::/3.
    Reserved,
}

impl AddressClass {
    /// The class with its article, as it reads in a sentence.
    pub(super) fn phrase(self) -> String {
        let article = match self {
            AddressClass::Unspecified => "an",
            AddressClass::Broadcast => "the",
            _ => "a",
        };
        format!("{article} {self}")
    }

    /// The hint for the operator; none for metadata endpoints, which a
    /// webhook never legitimately targets.
    pub(super) fn hint(self) -> &'static str {
        match self {
            AddressClass::Metadata => "",
            _ => ALLOW_HINT,
        }
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Metadata => "metadata endpoint",
            AddressClass::Loopback => "loopback address",
            AddressClass::Unspecified => "unspecified address",
            AddressClass::Private => "private address",
            AddressClass::CarrierGradeNat => "carrier-grade NAT address",
            AddressClass::LinkLocal => "link-local address",
            AddressClass::UniqueLocal => "unique local address",
            AddressClass::Multicast => "multicast address",
            AddressClass::Broadcast => "broadcast address",
            AddressClass::Reserved => "reserved address",
        })
    }
}

/// The special-purpose class of an address, or `None` for an ordinary
/// public address that push notifications may target.
///
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002::/16`) addresses are classified by the IPv4 address they embed.
///
/// ```
/// use std::net::IpAddr;
/// use abacus::push::guard::{classify, AddressClass};
///
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// assert_eq!(classify(ip("169.254.169.254")), Some(AddressClass::Metadata));
/// assert_eq!(classify(ip("::ffff:10.0.0.1")), Some(AddressClass::Private));
/// assert_eq!(classify(ip("fe80::1")), Some(AddressClass::LinkLocal));
/// assert_eq!(classify(ip("8.8.8.8")), None);
/// ```
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Cloud metadata endpoints: AWS (IMDS, ECS task metadata, EKS Pod
/// Identity), GCP, Azure, Oracle and others at 169.254.169.254, Alibaba, and
/// Azure's WireServer (a public address only the host answers).
const METADATA_V4: [Ipv4Addr; 5] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(168, 63, 129, 16),
];

/// AWS IMDS and EKS Pod Identity over IPv6, and GCP's metadata server.
const METADATA_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254),
];

/// IPv4 blocks, first match wins (the broadcast address before 240/4).
const V4_BLOCKS: &[(Ipv4Addr, u8, AddressClass)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, AddressClass::Unspecified),
    (Ipv4Addr::new(10, 0, 0, 0), 8, AddressClass::Private),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        AddressClass::CarrierGradeNat,
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, AddressClass::Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, AddressClass::LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, AddressClass::Private),
    (Ipv4Addr::new(192, 0, 0, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(192, 88, 99, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(192, 168, 0, 0), 16, AddressClass::Private),
    (Ipv4Addr::new(198, 18, 0, 0), 15, AddressClass::Reserved),
    (Ipv4Addr::new(198, 51, 100, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(203, 0, 113, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(224, 0, 0, 0), 4, AddressClass::Multicast),
    (Ipv4Addr::BROADCAST, 32, AddressClass::Broadcast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, AddressClass::Reserved),
];

/// IPv6 blocks, first match wins; anything else outside 2000::/3 is
/// reserved too.
const V6_BLOCKS: &[(Ipv6Addr, u8, AddressClass)] = &[
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        AddressClass::Reserved,
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        AddressClass::Reserved,
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        AddressClass::Reserved,
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        AddressClass::Reserved,
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        AddressClass::Reserved,
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        AddressClass::Reserved,
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        AddressClass::UniqueLocal,
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        AddressClass::LinkLocal,
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        AddressClass::Private,
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        AddressClass::Multicast,
    ),
];

const GLOBAL_UNICAST: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    if METADATA_V4.contains(&ip) {
        return Some(AddressClass::Metadata);
    }
    let bits = ip.to_bits();
    V4_BLOCKS.iter().find_map(|&(net, prefix, class)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        (bits & mask == net.to_bits() & mask).then_some(class)
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    if METADATA_V6.contains(&ip) {
        return Some(AddressClass::Metadata);
    }
    if ip == Ipv6Addr::UNSPECIFIED {
        return Some(AddressClass::Unspecified);
    }
    if ip == Ipv6Addr::LOCALHOST {
        return Some(AddressClass::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let in_block = |net: Ipv6Addr, prefix: u8| {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        ip.to_bits() & mask == net.to_bits() & mask
    };
    V6_BLOCKS
        .iter()
        .find_map(|&(net, prefix, class)| in_block(net, prefix).then_some(class))
        .or_else(|| {
            (!in_block(GLOBAL_UNICAST.0, GLOBAL_UNICAST.1)).then_some(AddressClass::Reserved)
        })
}

/// The IPv4 address an IPv6 address stands for, if it embeds one: mapped
/// (`::ffff:0:0/96`), translated (`::ffff:0:0:0/96`), compatible (`::/96`
/// but `::` and `::1`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`).
pub(super) fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::from_bits(ip.to_bits() as u32);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, _, _] if ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST => {
            Some(low)
        }
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, high, low16, ..] => Some(Ipv4Addr::from_bits(
            (u32::from(high) << 16) | u32::from(low16),
        )),
        _ => None,
    }
}
