//! Application names: one per protocol, lowercase, as records carry them. A name is a type
//! here; it becomes a string only where a record is written or read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`App`] with each variant's name in one place.
macro_rules! apps {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The application a session carries.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum App {
            $($(#[$doc])* $variant,)*
        }

        impl App {
            /// Every application, in the order declared.
            pub const ALL: &[App] = &[$(App::$variant,)*];

            /// The name records carry.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(App::$variant => $name,)*
                }
            }
        }
    };
}

apps! {
    Dns => "dns",
    /// Multicast DNS (UDP 5353).
    Mdns => "mdns",
    Http => "http",
    Tls => "tls",
    Ssh => "ssh",
    Smtp => "smtp",
    Ftp => "ftp",
    /// An FTP data connection, named by the control connection that opened it.
    FtpData => "ftp-data",
    Mqtt => "mqtt",
    Coap => "coap",
    Ssdp => "ssdp",
    Dhcp => "dhcp",
    Dhcpv6 => "dhcpv6",
    Ntp => "ntp",
    Rtsp => "rtsp",
    Sip => "sip",
    Modbus => "modbus",
    Bacnet => "bacnet",
    /// SMB1 and SMB2/3, direct or over the NetBIOS session service.
    Smb => "smb",
    Kerberos => "kerberos",
    /// DCE/RPC over TCP (the endpoint mapper and the dynamic ports it hands out).
    Dcerpc => "dcerpc",
    /// PostgreSQL's frontend/backend protocol.
    Postgresql => "postgresql",
    /// MySQL and MariaDB.
    Mysql => "mysql",
    /// MS-SQL's Tabular Data Stream.
    Tds => "tds",
    Rdp => "rdp",
    Radius => "radius",
    Tftp => "tftp",
    Pop3 => "pop3",
    Ldap => "ldap",
    Imap => "imap",
    /// ICMP and ICMPv6.
    Icmp => "icmp",
    /// Nothing in the payload or the port said what it is.
    Unknown => "unknown",
}

impl App {
    /// The application named `name`, if this build knows it.
    pub fn from_name(name: &str) -> Option<App> {
        App::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for App {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A name this build does not know (from a newer agent) reads as [`App::Unknown`]: the record
/// stays readable, and says no more than this build can tell.
impl<'de> Deserialize<'de> for App {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(App::from_name(&name).unwrap_or(App::Unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_unique_and_read_back() {
        let mut seen = std::collections::HashSet::new();
        for app in App::ALL {
            let name = app.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
            let json = serde_json::to_string(app).unwrap();
            assert_eq!(serde_json::from_str::<App>(&json).unwrap(), *app);
        }
        assert_eq!(
            serde_json::from_str::<App>("\"from-a-newer-agent\"").unwrap(),
            App::Unknown
        );
    }
}
