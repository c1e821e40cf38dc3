//! The operator's `--push-allow` list.

use super::class::embedded_v4;
use super::{is_host_name, is_numeric_host, normalize_name};
use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

/// A bad `--push-allow` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    /// An entry with a `/` that is not a CIDR.
    #[error("--push-allow entry {entry:?} is not a valid CIDR (address/prefix length)")]
    Cidr {
        /// The entry as given.
        entry: String,
    },
    /// An entry that is neither an IP address, a CIDR nor a host name.
    #[error("--push-allow entry {entry:?} is not an IP address, CIDR or host name")]
    Entry {
        /// The entry as given.
        entry: String,
    },
}

impl AllowListError {
    /// The bad entry.
    pub fn entry(&self) -> &str {
        match self {
            AllowListError::Cidr { entry } | AllowListError::Entry { entry } => entry,
        }
    }
}

/// The operator's `--push-allow` list: networks and host names that push
/// notifications may target although they are private, loopback or
/// otherwise refused.
///
/// Parsed from comma-separated entries: a CIDR (`10.0.0.0/8`, `::1/128`), a
/// single IP (`127.0.0.1`, meaning /32; `::1`, meaning /128) or a host name
/// (`hooks.internal`, `localhost`), matched exactly and case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<IpNet>,
    names: Vec<String>,
}

impl AllowList {
    /// The list from entries, each of which may itself be comma-separated;
    /// blank entries are skipped.
    pub fn from_entries<I, S>(entries: I) -> Result<Self, AllowListError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = AllowList::default();
        for entries in entries {
            for entry in entries.as_ref().split(',').map(str::trim) {
                if !entry.is_empty() {
                    list.add(entry)?;
                }
            }
        }
        Ok(list)
    }

    fn add(&mut self, entry: &str) -> Result<(), AllowListError> {
        if let Ok(net) = entry.parse::<IpNet>() {
            self.nets.push(net.trunc());
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            self.nets.push(IpNet::from(ip));
        } else if entry.contains('/') {
            return Err(AllowListError::Cidr {
                entry: entry.to_owned(),
            });
        } else {
            let name = normalize_name(entry);
            if !is_host_name(&name) || is_numeric_host(&name) {
                return Err(AllowListError::Entry {
                    entry: entry.to_owned(),
                });
            }
            self.names.push(name);
        }
        Ok(())
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.names.is_empty()
    }

    /// The networks on the list.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// The host names on the list, lowercased, without a trailing dot.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `ip`, or the IPv4 address it embeds, is in a listed network.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&v4)))
    }

    /// Whether the host name is listed (case-insensitive, trailing dot
    /// ignored).
    pub fn allows_name(&self, name: &str) -> bool {
        let name = normalize_name(name);
        self.names.contains(&name)
    }
}

impl FromStr for AllowList {
    type Err = AllowListError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AllowList::from_entries([s])
    }
}
