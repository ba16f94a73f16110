//! Outbound safety for user-supplied URLs (OpenAI-compatible base URLs, HuggingFace endpoint
//! URLs): which addresses a call may reach, checked before any connection and again at
//! connect time.
//!
//! Two checks, because one is not enough:
//! - [`vet_url`] resolves the host and refuses the URL if any address is refused, before the
//!   request is built. It also covers IP literals, which never reach a resolver.
//! - [`VettingResolver`] is the client's DNS resolver: every name the client connects to is
//!   resolved there and refused addresses never reach the connector, so a name that answers
//!   differently the second time (DNS rebinding) is still refused. Hosts of operator-set base
//!   URLs are trusted and skip it (a corporate proxy may sit on a private address).
//!
//! Architecture invariant: no redirect is followed (the client has `redirect::Policy::none`),
//! and no proxy from the environment is used (DNS must happen here, not at a proxy).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::settings::OutboundPolicy;

/// What kind of address an IP is, as far as the outbound policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    Public,
    Loopback,
    Private,
    LinkLocal,
    CloudMetadata,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
}

impl AddressKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private-network",
            Self::LinkLocal => "link-local",
            Self::CloudMetadata => "cloud-metadata",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Reserved => "reserved",
        }
    }
}

/// A destination the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} is {address}, a {} address; the outbound policy refuses it",
    kind.describe()
)]
pub(crate) struct Blocked {
    host: String,
    address: IpAddr,
    kind: AddressKind,
}

/// Why a user-supplied URL cannot be called.
#[derive(Debug)]
pub(crate) enum Refused {
    Blocked(Blocked),
    /// The URL does not parse or its host does not resolve.
    Unresolvable(String),
}

/// Classifies an address. IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4) is judged by the
/// IPv4 address it carries.
pub fn address_kind(ip: IpAddr) -> AddressKind {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

/// Whether `policy` lets a call reach `ip`.
pub fn is_allowed(ip: IpAddr, policy: &OutboundPolicy) -> bool {
    match address_kind(ip) {
        AddressKind::Public => true,
        AddressKind::Loopback => policy.allow_loopback,
        AddressKind::Private => policy.allow_private,
        _ => false,
    }
}

fn v4_kind(ip: Ipv4Addr) -> AddressKind {
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => {
            AddressKind::CloudMetadata
        }
        (0, ..) => AddressKind::Unspecified,
        (127, ..) => AddressKind::Loopback,
        (169, 254, ..) => AddressKind::LinkLocal,
        (10, ..) | (192, 168, ..) => AddressKind::Private,
        (172, 16..=31, ..) | (100, 64..=127, ..) => AddressKind::Private,
        (255, 255, 255, 255) => AddressKind::Broadcast,
        (224..=239, ..) => AddressKind::Multicast,
        (240..=255, ..) => AddressKind::Reserved,
        _ => AddressKind::Public,
    }
}

fn v6_kind(ip: Ipv6Addr) -> AddressKind {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let segments = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return AddressKind::CloudMetadata;
    }
    if ip.is_unspecified() {
        return AddressKind::Unspecified;
    }
    if ip.is_loopback() {
        return AddressKind::Loopback;
    }
    let embedded_v4 = |high: u16, low: u16| {
        Ipv4Addr::new(
            (high >> 8) as u8,
            (high & 0xff) as u8,
            (low >> 8) as u8,
            (low & 0xff) as u8,
        )
    };
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry the address in the low
    // 32 bits; 6to4 (2002:AABB:CCDD::) in bits 16..48.
    if segments[..6] == [0, 0, 0, 0, 0, 0] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_kind(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        let inner = v4_kind(embedded_v4(segments[1], segments[2]));
        if inner != AddressKind::Public {
            return inner;
        }
    }
    match segments[0] {
        0xfe80..=0xfebf => AddressKind::LinkLocal,
        0xfec0..=0xfeff => AddressKind::Private, // deprecated site-local
        0xfc00..=0xfdff => AddressKind::Private,
        0xff00..=0xffff => AddressKind::Multicast,
        _ => AddressKind::Public,
    }
}

fn check(host: &str, address: IpAddr, policy: &OutboundPolicy) -> Result<(), Blocked> {
    if is_allowed(address, policy) {
        return Ok(());
    }
    Err(Blocked {
        host: host.to_owned(),
        address,
        kind: address_kind(address),
    })
}

/// Resolves the URL's host and refuses it if any of its addresses is refused: a name that
/// also points inside the network is not one to call.
pub(crate) async fn vet_url(raw: &str, policy: &OutboundPolicy) -> Result<(), Refused> {
    let url = url::Url::parse(raw).map_err(|e| Refused::Unresolvable(format!("not a URL: {e}")))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let host = match url.host() {
        Some(url::Host::Ipv4(v4)) => {
            return check(&v4.to_string(), IpAddr::V4(v4), policy).map_err(Refused::Blocked);
        }
        Some(url::Host::Ipv6(v6)) => {
            return check(&v6.to_string(), IpAddr::V6(v6), policy).map_err(Refused::Blocked);
        }
        Some(url::Host::Domain(domain)) => domain.to_owned(),
        None => return Err(Refused::Unresolvable("the URL has no host".to_owned())),
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| Refused::Unresolvable(format!("could not resolve {host}: {e}")))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused::Unresolvable(format!("{host} has no address")));
    }
    for address in addresses {
        check(&host, address.ip(), policy).map_err(Refused::Blocked)?;
    }
    Ok(())
}

/// The client's resolver: system resolution, then the policy on every address, except for
/// trusted (operator-configured) hosts.
pub(crate) struct VettingResolver {
    pub(crate) policy: OutboundPolicy,
    /// Lowercase host names that skip the policy.
    pub(crate) trusted: Vec<String>,
    /// A family of trusted hosts by prefix and suffix (Bedrock's regional endpoints).
    pub(crate) trusted_suffix: (&'static str, &'static str),
}

impl VettingResolver {
    fn is_trusted(&self, host: &str) -> bool {
        let (prefix, suffix) = self.trusted_suffix;
        self.trusted.iter().any(|t| t == host)
            || (host.starts_with(prefix) && host.ends_with(suffix))
    }
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let policy = self.policy;
        let trusted = self.is_trusted(&host);
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !trusted {
                for address in &addresses {
                    check(&host, address.ip(), &policy)?;
                }
            }
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        let cases: &[(&str, AddressKind)] = &[
            ("8.8.8.8", AddressKind::Public),
            ("1.1.1.1", AddressKind::Public),
            ("127.0.0.1", AddressKind::Loopback),
            ("127.8.9.10", AddressKind::Loopback),
            ("10.0.0.1", AddressKind::Private),
            ("172.16.0.1", AddressKind::Private),
            ("172.31.255.255", AddressKind::Private),
            ("172.32.0.1", AddressKind::Public),
            ("192.168.1.1", AddressKind::Private),
            ("100.64.0.1", AddressKind::Private),
            ("100.128.0.1", AddressKind::Public),
            ("169.254.169.254", AddressKind::CloudMetadata),
            ("169.254.170.2", AddressKind::CloudMetadata),
            ("100.100.100.200", AddressKind::CloudMetadata),
            ("169.254.1.1", AddressKind::LinkLocal),
            ("0.0.0.0", AddressKind::Unspecified),
            ("0.1.2.3", AddressKind::Unspecified),
            ("224.0.0.1", AddressKind::Multicast),
            ("255.255.255.255", AddressKind::Broadcast),
            ("240.0.0.1", AddressKind::Reserved),
            ("2606:4700::1111", AddressKind::Public),
            ("::1", AddressKind::Loopback),
            ("::", AddressKind::Unspecified),
            ("fe80::1", AddressKind::LinkLocal),
            ("fc00::1", AddressKind::Private),
            ("fd12:3456::1", AddressKind::Private),
            ("fd00:ec2::254", AddressKind::CloudMetadata),
            ("ff02::1", AddressKind::Multicast),
            ("::ffff:169.254.169.254", AddressKind::CloudMetadata),
            ("::ffff:127.0.0.1", AddressKind::Loopback),
            ("::ffff:8.8.8.8", AddressKind::Public),
            ("::10.0.0.1", AddressKind::Private),
            ("64:ff9b::a9fe:a9fe", AddressKind::CloudMetadata),
            ("2002:a9fe:a9fe::1", AddressKind::CloudMetadata),
            ("2002:0808:0808::1", AddressKind::Public),
        ];
        for (text, kind) in cases {
            let ip: IpAddr = text.parse().expect("ip");
            assert_eq!(address_kind(ip), *kind, "{text}");
        }
    }

    #[test]
    fn the_policy_opens_private_and_loopback_only_when_told() {
        let closed = OutboundPolicy::default();
        let open = OutboundPolicy {
            allow_private: true,
            allow_loopback: true,
        };
        for (text, closed_ok, open_ok) in [
            ("8.8.8.8", true, true),
            ("127.0.0.1", false, true),
            ("10.0.0.1", false, true),
            ("fd12::1", false, true),
            ("169.254.169.254", false, false),
            ("100.100.100.200", false, false),
            ("fd00:ec2::254", false, false),
            ("fe80::1", false, false),
            ("0.0.0.0", false, false),
            ("239.1.1.1", false, false),
        ] {
            let ip: IpAddr = text.parse().expect("ip");
            assert_eq!(is_allowed(ip, &closed), closed_ok, "{text} closed");
            assert_eq!(is_allowed(ip, &open), open_ok, "{text} open");
        }
    }
}
