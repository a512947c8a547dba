//! Server URLs: `quic://host:port`, `ws://host:port[/path]` and
//! `wss://host:port[/path]`, parsed once into a [`ServerUrl`].

use std::{fmt, str::FromStr};

use crate::Error;

/// The port of `quic://host` when the URL names none (confabd's default).
pub const DEFAULT_QUIC_PORT: u16 = 7443;
/// The WebSocket path used when a `ws://` or `wss://` URL has none.
pub const DEFAULT_WS_PATH: &str = "/ws";

/// How to reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// QUIC with ALPN `confab/1`, one bidirectional stream.
    Quic,
    /// WebSocket over plain TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Scheme {
    /// The URL scheme: `quic`, `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Quic => "quic",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// Whether the transport is encrypted (and so needs a trust decision).
    pub fn uses_tls(self) -> bool {
        !matches!(self, Scheme::Ws)
    }

    /// The port when the URL names none: 7443 for QUIC, 80 and 443 for
    /// WebSocket as for HTTP.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Quic => DEFAULT_QUIC_PORT,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }
}

/// A parsed server URL.
///
/// ```
/// use confab_sdk::{ServerUrl, Scheme};
/// let url: ServerUrl = "ws://127.0.0.1:7080".parse().unwrap();
/// assert_eq!(url.scheme(), Scheme::Ws);
/// assert_eq!(url.path(), "/ws");
/// assert_eq!(url.to_string(), "ws://127.0.0.1:7080/ws");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerUrl {
    scheme: Scheme,
    /// Host name or IP address, IPv6 without brackets.
    host: String,
    port: u16,
    /// WebSocket request path with its query; empty for QUIC.
    path: String,
}

impl ServerUrl {
    /// Parses `quic://host[:port]`, `ws://host[:port][/path]` or
    /// `wss://host[:port][/path]`.
    ///
    /// A WebSocket URL without a path (or with just `/`) gets `/ws`; any other
    /// path, with its query, is used as given. QUIC URLs take no path.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUrl { url: input.to_owned(), reason: reason.to_owned() };
        let url = url::Url::parse(input.trim()).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                invalid("no scheme; write quic://host:port, ws://host:port or wss://host:port")
            }
            other => invalid(&other.to_string()),
        })?;
        let scheme = match url.scheme() {
            "quic" => Scheme::Quic,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            other => return Err(invalid(&format!("unsupported scheme {other:?}; use quic, ws or wss"))),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("credentials in the URL are not supported; log in instead"));
        }
        if url.fragment().is_some() {
            return Err(invalid("a fragment (#...) has no meaning here"));
        }
        let host = match url.host_str() {
            Some(host) if !host.is_empty() => host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            _ => return Err(invalid("no host")),
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        if port == 0 {
            return Err(invalid("port 0 cannot be connected to"));
        }
        let path = match scheme {
            Scheme::Quic => {
                if !matches!(url.path(), "" | "/") || url.query().is_some() {
                    return Err(invalid("QUIC URLs take no path or query"));
                }
                String::new()
            }
            Scheme::Ws | Scheme::Wss => {
                let mut path = match url.path() {
                    "" | "/" => DEFAULT_WS_PATH.to_owned(),
                    path => path.to_owned(),
                };
                if let Some(query) = url.query() {
                    path.push('?');
                    path.push_str(query);
                }
                path
            }
        };
        Ok(ServerUrl { scheme, host, port, path })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket request path (with query); empty for QUIC.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `host:port` (`[v6]:port` for IPv6): the key under which a
    /// certificate fingerprint is remembered.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme.as_str(), self.host_port(), self.path)
    }
}

impl FromStr for ServerUrl {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        ServerUrl::parse(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> ServerUrl {
        ServerUrl::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    #[test]
    fn parses_each_scheme_with_defaults() {
        let quic = parse("quic://127.0.0.1:7443");
        assert_eq!((quic.scheme(), quic.host(), quic.port(), quic.path()), (Scheme::Quic, "127.0.0.1", 7443, ""));
        assert_eq!(parse("quic://example.org").port(), 7443);
        assert_eq!(parse("quic://example.org/").to_string(), "quic://example.org:7443");

        let ws = parse("ws://localhost:7080");
        assert_eq!((ws.scheme(), ws.host(), ws.port(), ws.path()), (Scheme::Ws, "localhost", 7080, "/ws"));
        assert_eq!(parse("ws://localhost/").port(), 80);
        assert_eq!(parse("wss://chat.example.org").port(), 443);
        assert_eq!(parse("WSS://Chat.Example.org:8443").to_string(), "wss://chat.example.org:8443/ws");
    }

    #[test]
    fn explicit_paths_and_queries_are_kept() {
        assert_eq!(parse("ws://h:1/confab/ws").path(), "/confab/ws");
        assert_eq!(parse("wss://h:1/ws?token=x").path(), "/ws?token=x");
        assert_eq!(parse("ws://h:1/?a=b").path(), "/ws?a=b");
    }

    #[test]
    fn ipv6_hosts_lose_and_regain_brackets() {
        let url = parse("quic://[::1]:7443");
        assert_eq!(url.host(), "::1");
        assert_eq!(url.host_port(), "[::1]:7443");
        assert_eq!(url.to_string(), "quic://[::1]:7443");
        assert_eq!(parse("ws://[fe80::1]:7080").to_string(), "ws://[fe80::1]:7080/ws");
    }

    #[test]
    fn refuses_what_cannot_be_connected_to() {
        for (input, needle) in [
            ("127.0.0.1:7080", "scheme"),
            ("localhost:7080", "scheme"),
            ("http://h:1", "unsupported scheme"),
            ("quic://h:1/path", "no path"),
            ("quic://h:1?x=y", "no path"),
            ("ws://user:pw@h:1", "credentials"),
            ("ws://h:1/#frag", "fragment"),
            ("quic://:7443", ""),
            ("ws://h:0", "port 0"),
            ("ws://h:99999", ""),
        ] {
            let error = ServerUrl::parse(input).expect_err(input);
            assert!(matches!(error, Error::InvalidUrl { .. }), "{input}: {error}");
            assert!(error.to_string().contains(needle), "{input}: {error}");
        }
    }
}
