//! The validation address policy: which addresses the VA may connect to (http-01 and
//! tls-alpn-01, at every hop) and which `ip` identifiers newOrder accepts (RFC 8738).
//!
//! One table, [`RANGES`], maps address ranges to an [`AddressClass`] (RFC 6890's
//! special-purpose registries and their IPv6 counterparts); each class says whether it is
//! allowed by default and which switch changes that ([`AddressClass::access`]). The most
//! specific range wins. IPv4-mapped IPv6 addresses (`::ffff:0:0/96`, RFC 4291 §2.5.5.2) are
//! classified by the IPv4 address they carry. Transition prefixes that embed or reach an
//! IPv4 address some other way (6to4, Teredo, NAT64) are refused outright: a host reachable
//! through them has its own A record, and a translator could carry a connection into any
//! IPv4 range.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of address an IP is, for the validation address policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable unicast: always allowed.
    Global,
    /// 127.0.0.0/8, ::1: allowed unless `deny_loopback` (test set-ups resolve names to 127.0.0.1).
    Loopback,
    /// RFC 1918 private IPv4: refused unless `allow_private`.
    Private,
    /// RFC 6598 shared address space (carrier-grade NAT): refused unless `allow_private`.
    SharedAddress,
    /// RFC 4193 unique local IPv6: refused unless `allow_private`.
    UniqueLocal,
    /// RFC 3927 / RFC 4291 link-local, including cloud metadata at 169.254.169.254: always refused.
    LinkLocal,
    /// RFC 3879 deprecated IPv6 site-local: always refused.
    SiteLocal,
    /// 0.0.0.0/8 "this network": always refused.
    ThisNetwork,
    /// 0.0.0.0 and `::`: always refused.
    Unspecified,
    /// IETF protocol assignments (192.0.0.0/24, 2001::/23): always refused.
    IetfProtocol,
    /// Documentation ranges (RFC 5737, RFC 3849, RFC 9637): always refused.
    Documentation,
    /// Benchmarking ranges (RFC 2544, RFC 5180): always refused.
    Benchmarking,
    /// Multicast: always refused.
    Multicast,
    /// Reserved or unassigned space: always refused.
    Reserved,
    /// 255.255.255.255: always refused.
    Broadcast,
    /// 6to4 (RFC 3056, relay anycast RFC 7526): always refused.
    SixToFour,
    /// Teredo (RFC 4380): always refused.
    Teredo,
    /// NAT64 translation prefixes (RFC 6052, RFC 8215): always refused.
    Nat64,
    /// The IPv6 discard-only prefix (RFC 6666): always refused.
    DiscardOnly,
}

/// Who may connect to a class, and which switch changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Always allowed.
    Allowed,
    /// Allowed unless [`AddressPolicy::deny_loopback`].
    AllowedUnlessDenyLoopback,
    /// Refused unless [`AddressPolicy::allow_private`].
    RefusedUnlessAllowPrivate,
    /// Always refused, whatever the switches.
    Refused,
}

impl AddressClass {
    /// The class's description (as in "10.0.0.5 is *a private address*") and its access rule.
    pub const fn info(self) -> (&'static str, Access) {
        use Access::*;
        use AddressClass::*;
        match self {
            Global => ("a global unicast address", Allowed),
            Loopback => ("a loopback address", AllowedUnlessDenyLoopback),
            Private => ("a private address", RefusedUnlessAllowPrivate),
            SharedAddress => (
                "a shared (carrier-grade NAT) address",
                RefusedUnlessAllowPrivate,
            ),
            UniqueLocal => ("a unique local address", RefusedUnlessAllowPrivate),
            LinkLocal => ("a link-local address", Refused),
            SiteLocal => ("a deprecated site-local address", Refused),
            ThisNetwork => ("a \"this network\" address", Refused),
            Unspecified => ("the unspecified address", Refused),
            IetfProtocol => ("an IETF protocol assignment", Refused),
            Documentation => ("a documentation address", Refused),
            Benchmarking => ("a benchmarking address", Refused),
            Multicast => ("a multicast address", Refused),
            Reserved => ("a reserved address", Refused),
            Broadcast => ("the limited broadcast address", Refused),
            SixToFour => ("a 6to4 transition address", Refused),
            Teredo => ("a Teredo tunnel address", Refused),
            Nat64 => ("a NAT64 translation address", Refused),
            DiscardOnly => ("a discard-only address", Refused),
        }
    }

    /// "a private address", "a loopback address", ...
    pub const fn description(self) -> &'static str {
        self.info().0
    }

    /// Whether the class is allowed by default and which switch changes that.
    pub const fn access(self) -> Access {
        self.info().1
    }
}

/// An address range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    /// The first address of the range.
    pub addr: IpAddr,
    /// The prefix length in bits.
    pub prefix: u8,
}

impl Net {
    /// An IPv4 range `a.b.c.d/prefix`.
    pub const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Net {
        Net {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    /// An IPv6 range from its eight 16-bit groups and a prefix length.
    pub const fn v6(s: [u16; 8], prefix: u8) -> Net {
        Net {
            addr: IpAddr::V6(Ipv6Addr::new(
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
            )),
            prefix,
        }
    }

    /// Whether `ip` is in this range (same family, same leading `prefix` bits).
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            match prefix {
                0 => 0,
                p => bits >> (width - p.min(width)),
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One row of the classifier table: a range, its class, and the RFC that sets it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The range.
    pub net: Net,
    /// What addresses in it are.
    pub class: AddressClass,
    /// Where the range is defined, for problem details.
    pub rfc: &'static str,
}

const fn row(net: Net, class: AddressClass, rfc: &'static str) -> Range {
    Range { net, class, rfc }
}

/// The classifier table (RFC 6890 and the IANA special-purpose registries). The most
/// specific matching row decides; the `/0` rows cover everything else. IPv4-mapped IPv6
/// (`::ffff:0:0/96`) is not a row: it is classified by its IPv4 address.
#[rustfmt::skip]
pub const RANGES: &[Range] = {
    use AddressClass::*;
    &[
        // IPv4.
        row(Net::v4(0, 0, 0, 0, 0), Global, "RFC 791"),
        row(Net::v4(0, 0, 0, 0, 8), ThisNetwork, "RFC 1122 §3.2.1.3"),
        row(Net::v4(0, 0, 0, 0, 32), Unspecified, "RFC 1122 §3.2.1.3"),
        row(Net::v4(10, 0, 0, 0, 8), Private, "RFC 1918"),
        row(Net::v4(100, 64, 0, 0, 10), SharedAddress, "RFC 6598"),
        row(Net::v4(127, 0, 0, 0, 8), Loopback, "RFC 1122 §3.2.1.3"),
        row(Net::v4(169, 254, 0, 0, 16), LinkLocal, "RFC 3927"),
        row(Net::v4(172, 16, 0, 0, 12), Private, "RFC 1918"),
        row(Net::v4(192, 0, 0, 0, 24), IetfProtocol, "RFC 6890 §2.2.2"),
        row(Net::v4(192, 0, 2, 0, 24), Documentation, "RFC 5737"),
        row(Net::v4(192, 88, 99, 0, 24), SixToFour, "RFC 7526"),
        row(Net::v4(192, 168, 0, 0, 16), Private, "RFC 1918"),
        row(Net::v4(198, 18, 0, 0, 15), Benchmarking, "RFC 2544"),
        row(Net::v4(198, 51, 100, 0, 24), Documentation, "RFC 5737"),
        row(Net::v4(203, 0, 113, 0, 24), Documentation, "RFC 5737"),
        row(Net::v4(224, 0, 0, 0, 4), Multicast, "RFC 5771"),
        row(Net::v4(240, 0, 0, 0, 4), Reserved, "RFC 1112 §4"),
        row(Net::v4(255, 255, 255, 255, 32), Broadcast, "RFC 919"),
        // IPv6: only 2000::/3 is global unicast; the rest is special or unassigned.
        row(Net::v6([0, 0, 0, 0, 0, 0, 0, 0], 0), Reserved, "RFC 4291 §2.4"),
        row(Net::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Unspecified, "RFC 4291 §2.5.2"),
        row(Net::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Loopback, "RFC 4291 §2.5.3"),
        row(Net::v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), Nat64, "RFC 6052"),
        row(Net::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Nat64, "RFC 8215"),
        row(Net::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), DiscardOnly, "RFC 6666"),
        row(Net::v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3), Global, "RFC 4291 §2.4"),
        row(Net::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), IetfProtocol, "RFC 2928"),
        row(Net::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Teredo, "RFC 4380"),
        row(Net::v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Benchmarking, "RFC 5180"),
        row(Net::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Documentation, "RFC 3849"),
        row(Net::v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), SixToFour, "RFC 3056"),
        row(Net::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Documentation, "RFC 9637"),
        row(Net::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), UniqueLocal, "RFC 4193"),
        row(Net::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), LinkLocal, "RFC 4291 §2.5.6"),
        row(Net::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), SiteLocal, "RFC 3879"),
        row(Net::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Multicast, "RFC 4291 §2.7"),
    ]
};

/// What the table says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The address as given.
    pub addr: IpAddr,
    /// For an IPv4-mapped IPv6 address, the IPv4 address it was classified by.
    pub mapped_v4: Option<Ipv4Addr>,
    /// The row that decided.
    pub range: Range,
}

/// The most specific row of [`RANGES`] holding `ip` (an IPv4-mapped IPv6 address by its IPv4).
pub fn classify(ip: IpAddr) -> Classification {
    let mapped_v4 = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        IpAddr::V4(_) => None,
    };
    let key = mapped_v4.map(IpAddr::V4).unwrap_or(ip);
    let range = *RANGES
        .iter()
        .filter(|r| r.net.contains(key))
        .max_by_key(|r| r.net.prefix)
        .expect("the /0 rows cover every address");
    Classification {
        addr: ip,
        mapped_v4,
        range,
    }
}

/// The policy in force: the two switches over the class table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Open RFC 1918, RFC 6598 (CGNAT) and RFC 4193 (ULA) ranges, for lab networks
    /// (`--va-allow-private`). Link-local and metadata addresses stay refused.
    pub allow_private: bool,
    /// Close loopback, for public-facing deployments (`--va-deny-loopback`).
    pub deny_loopback: bool,
}

impl AddressPolicy {
    /// Whether this policy allows connecting to addresses of `class`.
    pub fn allows(&self, class: AddressClass) -> bool {
        match class.access() {
            Access::Allowed => true,
            Access::AllowedUnlessDenyLoopback => !self.deny_loopback,
            Access::RefusedUnlessAllowPrivate => self.allow_private,
            Access::Refused => false,
        }
    }

    /// Classifies `ip` and allows or refuses it.
    pub fn check(&self, ip: IpAddr) -> Result<Classification, Refusal> {
        let c = classify(ip);
        if self.allows(c.range.class) {
            Ok(c)
        } else {
            Err(Refusal(c))
        }
    }
}

/// A refused address; its `Display` names the address, its class and the RFC, e.g.
/// `10.0.0.5 is a private address (RFC 1918); Cobble does not validate against it ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(pub Classification);

impl Refusal {
    /// The refused address, as given.
    pub fn addr(&self) -> IpAddr {
        self.0.addr
    }

    /// The class that refused it.
    pub fn class(&self) -> AddressClass {
        self.0.range.class
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.0;
        write!(f, "{}", c.addr)?;
        if let Some(v4) = c.mapped_v4 {
            write!(f, " (IPv4-mapped {v4})")?;
        }
        write!(
            f,
            " is {} ({}); Cobble does not validate against it",
            c.range.class.description(),
            c.range.rfc
        )?;
        match c.range.class.access() {
            Access::RefusedUnlessAllowPrivate => {
                write!(f, " unless started with --va-allow-private")
            }
            Access::AllowedUnlessDenyLoopback => write!(f, " (--va-deny-loopback is set)"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AddressClass::*;
    use super::*;

    /// One row per range edge: the first and last address of each range and the addresses
    /// just outside it, with the class and the RFC that defines it.
    #[test]
    fn classifier_table() {
        #[rustfmt::skip]
        let rows: &[(&str, AddressClass, &str)] = &[
            // RFC 1122 §3.2.1.3: "this network", the unspecified address, loopback.
            ("0.0.0.0", Unspecified, "RFC 1122"),
            ("0.0.0.1", ThisNetwork, "RFC 1122"),
            ("0.255.255.255", ThisNetwork, "RFC 1122"),
            ("1.0.0.0", Global, "RFC 791"),
            ("8.8.8.8", Global, "RFC 791"),
            // RFC 1918.
            ("9.255.255.255", Global, "RFC 791"),
            ("10.0.0.0", Private, "RFC 1918"),
            ("10.0.0.5", Private, "RFC 1918"),
            ("10.255.255.255", Private, "RFC 1918"),
            ("11.0.0.0", Global, "RFC 791"),
            ("172.15.255.255", Global, "RFC 791"),
            ("172.16.0.0", Private, "RFC 1918"),
            ("172.31.255.255", Private, "RFC 1918"),
            ("172.32.0.0", Global, "RFC 791"),
            ("192.167.255.255", Global, "RFC 791"),
            ("192.168.0.0", Private, "RFC 1918"),
            ("192.168.255.255", Private, "RFC 1918"),
            ("192.169.0.0", Global, "RFC 791"),
            // RFC 6598 shared address space (CGNAT).
            ("100.63.255.255", Global, "RFC 791"),
            ("100.64.0.0", SharedAddress, "RFC 6598"),
            ("100.127.255.255", SharedAddress, "RFC 6598"),
            ("100.128.0.0", Global, "RFC 791"),
            // Loopback.
            ("126.255.255.255", Global, "RFC 791"),
            ("127.0.0.0", Loopback, "RFC 1122"),
            ("127.0.0.1", Loopback, "RFC 1122"),
            ("127.255.255.255", Loopback, "RFC 1122"),
            ("128.0.0.0", Global, "RFC 791"),
            // RFC 3927 link-local, cloud metadata included.
            ("169.253.255.255", Global, "RFC 791"),
            ("169.254.0.0", LinkLocal, "RFC 3927"),
            ("169.254.169.254", LinkLocal, "RFC 3927"),
            ("169.254.255.255", LinkLocal, "RFC 3927"),
            ("169.255.0.0", Global, "RFC 791"),
            // RFC 6890 §2.2.2 IETF protocol assignments; RFC 5737 TEST-NET-1.
            ("191.255.255.255", Global, "RFC 791"),
            ("192.0.0.0", IetfProtocol, "RFC 6890"),
            ("192.0.0.255", IetfProtocol, "RFC 6890"),
            ("192.0.1.0", Global, "RFC 791"),
            ("192.0.2.0", Documentation, "RFC 5737"),
            ("192.0.2.255", Documentation, "RFC 5737"),
            ("192.0.3.0", Global, "RFC 791"),
            // RFC 7526 deprecated 6to4 relay anycast.
            ("192.88.98.255", Global, "RFC 791"),
            ("192.88.99.0", SixToFour, "RFC 7526"),
            ("192.88.99.255", SixToFour, "RFC 7526"),
            ("192.88.100.0", Global, "RFC 791"),
            // RFC 2544 benchmarking.
            ("198.17.255.255", Global, "RFC 791"),
            ("198.18.0.0", Benchmarking, "RFC 2544"),
            ("198.19.255.255", Benchmarking, "RFC 2544"),
            ("198.20.0.0", Global, "RFC 791"),
            // RFC 5737 TEST-NET-2 and TEST-NET-3.
            ("198.51.99.255", Global, "RFC 791"),
            ("198.51.100.0", Documentation, "RFC 5737"),
            ("198.51.100.255", Documentation, "RFC 5737"),
            ("198.51.101.0", Global, "RFC 791"),
            ("203.0.112.255", Global, "RFC 791"),
            ("203.0.113.0", Documentation, "RFC 5737"),
            ("203.0.113.255", Documentation, "RFC 5737"),
            ("203.0.114.0", Global, "RFC 791"),
            // RFC 5771 multicast, RFC 1112 §4 reserved, RFC 919 broadcast.
            ("223.255.255.255", Global, "RFC 791"),
            ("224.0.0.0", Multicast, "RFC 5771"),
            ("239.255.255.255", Multicast, "RFC 5771"),
            ("240.0.0.0", Reserved, "RFC 1112"),
            ("255.255.255.254", Reserved, "RFC 1112"),
            ("255.255.255.255", Broadcast, "RFC 919"),
            // IPv6 (RFC 4291): unspecified, loopback, the rest outside 2000::/3.
            ("::", Unspecified, "RFC 4291 §2.5.2"),
            ("::1", Loopback, "RFC 4291 §2.5.3"),
            ("::2", Reserved, "RFC 4291 §2.4"),
            ("::10.0.0.1", Reserved, "RFC 4291 §2.4"),
            // RFC 4291 §2.5.5.2: IPv4-mapped, classified by the IPv4 address.
            ("::ffff:127.0.0.1", Loopback, "RFC 1122"),
            ("::ffff:10.0.0.5", Private, "RFC 1918"),
            ("::ffff:169.254.169.254", LinkLocal, "RFC 3927"),
            ("::ffff:8.8.8.8", Global, "RFC 791"),
            ("::ffff:0:0", Unspecified, "RFC 1122"),
            // RFC 6052 / RFC 8215 NAT64: refused whatever the IPv4 inside.
            ("64:ff9b::", Nat64, "RFC 6052"),
            ("64:ff9b::8.8.8.8", Nat64, "RFC 6052"),
            ("64:ff9b::ffff:ffff", Nat64, "RFC 6052"),
            ("64:ff9b::1:0:0", Reserved, "RFC 4291 §2.4"),
            ("64:ff9b:1::", Nat64, "RFC 8215"),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Nat64, "RFC 8215"),
            ("64:ff9b:2::", Reserved, "RFC 4291 §2.4"),
            // RFC 6666 discard-only.
            ("100::", DiscardOnly, "RFC 6666"),
            ("100::ffff:ffff:ffff:ffff", DiscardOnly, "RFC 6666"),
            ("100:0:0:1::", Reserved, "RFC 4291 §2.4"),
            // 2000::/3 global unicast and the special ranges inside it.
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved, "RFC 4291 §2.4"),
            ("2000::", Global, "RFC 4291 §2.4"),
            ("2001::", Teredo, "RFC 4380"),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Teredo, "RFC 4380"),
            ("2001:1::", IetfProtocol, "RFC 2928"),
            ("2001:2::", Benchmarking, "RFC 5180"),
            ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Benchmarking, "RFC 5180"),
            ("2001:2:1::", IetfProtocol, "RFC 2928"),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", IetfProtocol, "RFC 2928"),
            ("2001:200::", Global, "RFC 4291 §2.4"),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", Global, "RFC 4291 §2.4"),
            ("2001:db8::", Documentation, "RFC 3849"),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Documentation, "RFC 3849"),
            ("2001:db9::", Global, "RFC 4291 §2.4"),
            ("2001:4860:4860::8888", Global, "RFC 4291 §2.4"),
            ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Global, "RFC 4291 §2.4"),
            // RFC 3056 6to4.
            ("2002::", SixToFour, "RFC 3056"),
            ("2002:a00:1::1", SixToFour, "RFC 3056"),
            ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", SixToFour, "RFC 3056"),
            ("2003::", Global, "RFC 4291 §2.4"),
            // RFC 9637 documentation.
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Global, "RFC 4291 §2.4"),
            ("3fff::", Documentation, "RFC 9637"),
            ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Documentation, "RFC 9637"),
            ("3fff:1000::", Global, "RFC 4291 §2.4"),
            ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Global, "RFC 4291 §2.4"),
            ("4000::", Reserved, "RFC 4291 §2.4"),
            // RFC 4193 unique local.
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved, "RFC 4291 §2.4"),
            ("fc00::", UniqueLocal, "RFC 4193"),
            ("fd00::1", UniqueLocal, "RFC 4193"),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", UniqueLocal, "RFC 4193"),
            ("fe00::", Reserved, "RFC 4291 §2.4"),
            // RFC 4291 §2.5.6 link-local, RFC 3879 site-local, RFC 4291 §2.7 multicast.
            ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved, "RFC 4291 §2.4"),
            ("fe80::", LinkLocal, "RFC 4291 §2.5.6"),
            ("fe80::1", LinkLocal, "RFC 4291 §2.5.6"),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LinkLocal, "RFC 4291 §2.5.6"),
            ("fec0::", SiteLocal, "RFC 3879"),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", SiteLocal, "RFC 3879"),
            ("ff00::", Multicast, "RFC 4291 §2.7"),
            ("ff02::1", Multicast, "RFC 4291 §2.7"),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Multicast, "RFC 4291 §2.7"),
        ];
        for (addr, class, rfc) in rows {
            let ip: IpAddr = addr.parse().unwrap();
            let c = classify(ip);
            assert_eq!(c.range.class, *class, "{addr} matched {}", c.range.net);
            assert!(
                c.range.rfc.starts_with(rfc),
                "{addr}: {} not {rfc}",
                c.range.rfc
            );
        }
    }

    /// Each class's access under the three settings (default, allow-private, deny-loopback).
    #[test]
    fn access_per_class_and_switch() {
        let default = AddressPolicy::default();
        let private = AddressPolicy {
            allow_private: true,
            ..default
        };
        let no_loop = AddressPolicy {
            deny_loopback: true,
            ..default
        };
        let both = AddressPolicy {
            allow_private: true,
            deny_loopback: true,
        };
        // (class, default, allow_private, deny_loopback, both)
        #[rustfmt::skip]
        let rows: &[(AddressClass, bool, bool, bool, bool)] = &[
            (Global, true, true, true, true),
            (Loopback, true, true, false, false),
            (Private, false, true, false, true),
            (SharedAddress, false, true, false, true),
            (UniqueLocal, false, true, false, true),
            (LinkLocal, false, false, false, false),
            (SiteLocal, false, false, false, false),
            (ThisNetwork, false, false, false, false),
            (Unspecified, false, false, false, false),
            (IetfProtocol, false, false, false, false),
            (Documentation, false, false, false, false),
            (Benchmarking, false, false, false, false),
            (Multicast, false, false, false, false),
            (Reserved, false, false, false, false),
            (Broadcast, false, false, false, false),
            (SixToFour, false, false, false, false),
            (Teredo, false, false, false, false),
            (Nat64, false, false, false, false),
            (DiscardOnly, false, false, false, false),
        ];
        for &(class, d, p, l, b) in rows {
            assert_eq!(default.allows(class), d, "{class:?} default");
            assert_eq!(private.allows(class), p, "{class:?} allow-private");
            assert_eq!(no_loop.allows(class), l, "{class:?} deny-loopback");
            assert_eq!(both.allows(class), b, "{class:?} both");
        }
        // Every class that appears in the table has a row above.
        for r in RANGES {
            assert!(rows.iter().any(|row| row.0 == r.class), "{:?}", r.class);
        }
    }

    #[test]
    fn table_rows_are_well_formed() {
        for (i, r) in RANGES.iter().enumerate() {
            let width = if r.net.addr.is_ipv4() { 32 } else { 128 };
            assert!(r.net.prefix <= width, "{}", r.net);
            let bits: u128 = match r.net.addr {
                IpAddr::V4(a) => u32::from(a).into(),
                IpAddr::V6(a) => a.into(),
            };
            let host_bits = width - r.net.prefix;
            let host_mask = if host_bits == 128 {
                u128::MAX
            } else {
                (1u128 << host_bits) - 1
            };
            assert_eq!(bits & host_mask, 0, "{} has host bits set", r.net);
            assert!(r.rfc.starts_with("RFC "), "{}", r.net);
            for other in &RANGES[i + 1..] {
                assert_ne!(r.net, other.net, "duplicate row");
            }
        }
    }

    #[test]
    fn refusals_name_the_address_class_and_rfc() {
        let p = AddressPolicy::default();
        let rows: &[(&str, &str)] = &[
            (
                "10.0.0.5",
                "10.0.0.5 is a private address (RFC 1918); Cobble does not validate against it unless started with --va-allow-private",
            ),
            (
                "169.254.169.254",
                "169.254.169.254 is a link-local address (RFC 3927); Cobble does not validate against it",
            ),
            (
                "::ffff:10.0.0.5",
                "::ffff:10.0.0.5 (IPv4-mapped 10.0.0.5) is a private address (RFC 1918)",
            ),
            (
                "fe80::1",
                "fe80::1 is a link-local address (RFC 4291 §2.5.6)",
            ),
        ];
        for (addr, want) in rows {
            let e = p.check(addr.parse().unwrap()).unwrap_err();
            assert!(e.to_string().starts_with(want), "{addr}: {e}");
        }
        assert!(p.check("127.0.0.1".parse().unwrap()).is_ok());
        let e = AddressPolicy {
            deny_loopback: true,
            ..p
        }
        .check("::1".parse().unwrap())
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "::1 is a loopback address (RFC 4291 §2.5.3); Cobble does not validate against it (--va-deny-loopback is set)"
        );
        assert_eq!(e.class(), Loopback);
    }
}
