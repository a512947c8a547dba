//! Configuration: one sectioned TOML file, every default in this file,
//! unknown keys rejected, validated at start with the key named in the error.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

/// Everything `confabd` can be told. `Config::default()` is what runs with
/// no file at all.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub http: HttpConfig,
    pub quic: QuicConfig,
    pub tls: TlsConfig,
    pub accounts: AccountsConfig,
    pub limits: LimitsConfig,
    pub rate_limits: RateLimitsConfig,
    pub files: FilesConfig,
    pub presence: PresenceConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// Largest file one upload may carry.
    pub max_file_bytes: u64,
    /// Total bytes of files one user may have uploaded.
    pub quota_bytes_per_user: u64,
    /// Most attachments one message may carry.
    pub max_attachments: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Presence changes are pushed through rooms of at most this many
    /// members; in larger rooms clients ask with GetProfile.
    pub max_room_members: u32,
    /// How long a typing state lasts unless renewed.
    pub typing_expiry_ms: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Shown to clients in `Welcome`.
    pub name: String,
    /// Where the redb file, the certificate and the keys live.
    pub data_dir: PathBuf,
    /// How long graceful shutdown waits for sessions to drain.
    pub shutdown_grace_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// HTTP and WebSocket (`/ws`) listener.
    pub listen: SocketAddr,
    /// The listener's address as clients reach it (behind a proxy, say
    /// `https://chat.example.org`), stated in `Welcome.http_url`. Default:
    /// `http://` and the listen address.
    pub public_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuicConfig {
    /// QUIC (UDP) listener.
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; when unset, a self-signed certificate is
    /// generated in the data directory on first start and kept.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Open,
    Closed,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    pub registration: Registration,
    /// Whether guests (a display name, no password) may enter.
    pub guests: bool,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// argon2id cost: memory in KiB, passes, lanes (OWASP's defaults).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_frame_bytes_unauthenticated: u32,
    pub max_frame_bytes: u32,
    pub max_message_bytes: u32,
    pub max_history_page: u32,
    pub max_outbound_queue_bytes: u64,
    pub max_resume_events: u32,
    pub max_sessions_per_listener: u32,
    pub ping_interval_ms: u32,
    pub idle_timeout_ms: u32,
    /// Time a new connection has to complete `Hello`.
    pub handshake_timeout_ms: u32,
}

/// A token bucket: `burst` at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Login, registration, refresh and guest attempts per client address.
    pub logins_per_address: Rate,
    /// Messages per registered user.
    pub sends_per_user: Rate,
    /// Messages per guest.
    pub sends_per_guest: Rate,
    /// Room creations and joins per user.
    pub joins_per_user: Rate,
    /// `Resume` commands per user (each replays from the store).
    pub resumes_per_user: Rate,
    /// Edits, deletions and reactions per user.
    pub edits_per_user: Rate,
    /// Typing notices per user.
    pub typing_per_user: Rate,
    /// Read markers, delivered receipts and presence changes per user.
    pub receipts_per_user: Rate,
    /// Profile changes, searches and other lookups per user.
    pub lookups_per_user: Rate,
    /// File uploads per user.
    pub uploads_per_user: Rate,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self { max_file_bytes: 25 * 1024 * 1024, quota_bytes_per_user: 1024 * 1024 * 1024, max_attachments: 10 }
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self { max_room_members: 500, typing_expiry_ms: 6_000 }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { name: "confab".into(), data_dir: "confab-data".into(), shutdown_grace_ms: 5_000 }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 7080)), public_url: None }
    }
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 7443)) }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            registration: Registration::Open,
            guests: true,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes_unauthenticated: 16 * 1024,
            max_frame_bytes: 256 * 1024,
            max_message_bytes: 16 * 1024,
            max_history_page: 100,
            max_outbound_queue_bytes: 1024 * 1024,
            max_resume_events: 1_000,
            max_sessions_per_listener: 15_000,
            ping_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            logins_per_address: Rate { per_second: 1.0, burst: 20 },
            sends_per_user: Rate { per_second: 50.0, burst: 200 },
            sends_per_guest: Rate { per_second: 2.0, burst: 10 },
            joins_per_user: Rate { per_second: 2.0, burst: 30 },
            resumes_per_user: Rate { per_second: 1.0, burst: 30 },
            edits_per_user: Rate { per_second: 10.0, burst: 50 },
            typing_per_user: Rate { per_second: 2.0, burst: 10 },
            receipts_per_user: Rate { per_second: 20.0, burst: 100 },
            lookups_per_user: Rate { per_second: 10.0, burst: 50 },
            uploads_per_user: Rate { per_second: 1.0, burst: 20 },
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: `{key}` {problem}")]
    Invalid { path: PathBuf, key: &'static str, problem: String },
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates TOML text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the values serde cannot.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid =
            |key, problem: &str| Err(ConfigError::Invalid { path: path.to_owned(), key, problem: problem.to_owned() });
        let l = &self.limits;
        if l.max_frame_bytes_unauthenticated < 1024 {
            return invalid("limits.max_frame_bytes_unauthenticated", "must be at least 1024");
        }
        if l.max_frame_bytes < l.max_frame_bytes_unauthenticated {
            return invalid("limits.max_frame_bytes", "must be at least limits.max_frame_bytes_unauthenticated");
        }
        if l.max_message_bytes == 0 || l.max_message_bytes + 1024 > l.max_frame_bytes {
            return invalid("limits.max_message_bytes", "must be between 1 and limits.max_frame_bytes - 1024");
        }
        if l.max_history_page == 0 {
            return invalid("limits.max_history_page", "must be at least 1");
        }
        if l.max_outbound_queue_bytes < u64::from(l.max_frame_bytes) {
            return invalid("limits.max_outbound_queue_bytes", "must be at least limits.max_frame_bytes");
        }
        if l.ping_interval_ms < 100 || l.idle_timeout_ms < 2 * l.ping_interval_ms {
            return invalid("limits.idle_timeout_ms", "must be at least twice limits.ping_interval_ms (>= 100)");
        }
        if l.max_sessions_per_listener == 0 {
            return invalid("limits.max_sessions_per_listener", "must be at least 1");
        }
        let a = &self.accounts;
        if a.access_token_ttl_secs == 0 || a.refresh_token_ttl_secs < a.access_token_ttl_secs {
            return invalid("accounts.refresh_token_ttl_secs", "must be at least accounts.access_token_ttl_secs (> 0)");
        }
        if argon2::Params::new(a.argon2_memory_kib, a.argon2_iterations, a.argon2_parallelism, None).is_err() {
            return invalid(
                "accounts.argon2_memory_kib",
                "with argon2_iterations and argon2_parallelism is not a valid argon2id cost",
            );
        }
        for (key, rate) in [
            ("rate_limits.logins_per_address", self.rate_limits.logins_per_address),
            ("rate_limits.sends_per_user", self.rate_limits.sends_per_user),
            ("rate_limits.sends_per_guest", self.rate_limits.sends_per_guest),
            ("rate_limits.joins_per_user", self.rate_limits.joins_per_user),
            ("rate_limits.resumes_per_user", self.rate_limits.resumes_per_user),
            ("rate_limits.edits_per_user", self.rate_limits.edits_per_user),
            ("rate_limits.typing_per_user", self.rate_limits.typing_per_user),
            ("rate_limits.receipts_per_user", self.rate_limits.receipts_per_user),
            ("rate_limits.lookups_per_user", self.rate_limits.lookups_per_user),
            ("rate_limits.uploads_per_user", self.rate_limits.uploads_per_user),
        ] {
            if !rate.per_second.is_finite() || rate.per_second <= 0.0 || rate.burst == 0 {
                return invalid(key, "needs per_second > 0 and burst >= 1");
            }
        }
        if self.files.max_file_bytes == 0 || self.files.quota_bytes_per_user < self.files.max_file_bytes {
            return invalid("files.quota_bytes_per_user", "must be at least files.max_file_bytes (> 0)");
        }
        if self.presence.typing_expiry_ms < 1000 {
            return invalid("presence.typing_expiry_ms", "must be at least 1000");
        }
        if let Some(url) = &self.http.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("http.public_url", "must start with http:// or https://");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.cert", "and tls.key must be set together");
        }
        Ok(())
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.limits.ping_interval_ms.into())
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.limits.idle_timeout_ms.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("confabd.toml"))
    }

    #[test]
    fn empty_file_means_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:7080");
        assert_eq!(config.quic.listen.to_string(), "127.0.0.1:7443");
        assert_eq!(config.accounts.registration, Registration::Open);
    }

    #[test]
    fn sections_override_defaults() {
        let config = parse("[http]\nlisten = \"0.0.0.0:80\"\n[accounts]\nregistration = \"closed\"\n").unwrap();
        assert_eq!(config.http.listen.port(), 80);
        assert_eq!(config.accounts.registration, Registration::Closed);
        assert!(config.accounts.guests);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = parse("[limits]\nmax_frame_byte = 5\n").unwrap_err().to_string();
        assert!(err.contains("confabd.toml") && err.contains("max_frame_byte"), "{err}");
        let err = parse("[nonsense]\n").unwrap_err().to_string();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = parse("[limits]\nmax_history_page = 0\n").unwrap_err().to_string();
        assert!(err.contains("limits.max_history_page"), "{err}");
        let err = parse("[limits]\nping_interval_ms = 1000\nidle_timeout_ms = 1500\n").unwrap_err().to_string();
        assert!(err.contains("limits.idle_timeout_ms"), "{err}");
        let err = parse("[rate_limits]\nsends_per_user = { per_second = 0.0, burst = 1 }\n").unwrap_err().to_string();
        assert!(err.contains("rate_limits.sends_per_user"), "{err}");
    }
}
