//! The CLI's profile: `profile.json` in the profile directory, with the
//! server, the stored login (tokens) and the certificate fingerprints trusted
//! per `host:port`. Written atomically, readable by its owner only.

use std::{
    collections::BTreeMap,
    fmt, fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use confab_sdk::Tokens;
use serde::{Deserialize, Serialize};

/// What `profile.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The server used when neither `--server` nor `CONFAB_SERVER` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The session of the last `login`, `register` or `guest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<StoredLogin>,
    /// Lowercase hex SHA-256 of each server certificate trusted, by
    /// `host:port`.
    #[serde(default)]
    pub known_fingerprints: BTreeMap<String, String>,
}

/// A logged-in session, valid on `server` only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredLogin {
    pub server: String,
    pub username: String,
    #[serde(default)]
    pub guest: bool,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub access_expires_at_ms: u64,
    #[serde(default)]
    pub refresh_expires_at_ms: u64,
}

impl fmt::Debug for StoredLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredLogin")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("guest", &self.guest)
            .finish_non_exhaustive()
    }
}

impl StoredLogin {
    pub fn new(server: &str, username: &str, guest: bool, tokens: &Tokens) -> Self {
        let mut login = StoredLogin {
            server: server.to_owned(),
            username: username.to_owned(),
            guest,
            access_token: String::new(),
            refresh_token: None,
            access_expires_at_ms: 0,
            refresh_expires_at_ms: 0,
        };
        login.set_tokens(tokens);
        login
    }

    pub fn tokens(&self) -> Tokens {
        Tokens {
            access_token: self.access_token.clone(),
            access_expires_at_ms: self.access_expires_at_ms,
            refresh_token: self.refresh_token.clone(),
            refresh_expires_at_ms: self.refresh_expires_at_ms,
        }
    }

    pub fn set_tokens(&mut self, tokens: &Tokens) {
        self.access_token = tokens.access_token.clone();
        self.access_expires_at_ms = tokens.access_expires_at_ms;
        self.refresh_token = tokens.refresh_token.clone();
        self.refresh_expires_at_ms = tokens.refresh_expires_at_ms;
    }
}

impl Profile {
    /// The stored login if it is for `server`.
    pub fn login_for(&self, server: &str) -> Option<&StoredLogin> {
        self.login.as_ref().filter(|login| login.server == server)
    }
}

/// Where the profile lives.
#[derive(Clone, Debug)]
pub struct ProfileDir {
    dir: PathBuf,
}

impl ProfileDir {
    /// `explicit` (from `--profile` or `CONFAB_PROFILE`), else
    /// `$XDG_CONFIG_HOME/confab`, else `~/.config/confab`.
    pub fn locate(explicit: Option<PathBuf>) -> anyhow::Result<Self> {
        if let Some(dir) = explicit {
            return Ok(ProfileDir { dir });
        }
        let config = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => dir,
            _ => dirs::home_dir()
                .context("cannot find the home directory; pass --profile DIR or set CONFAB_PROFILE")?
                .join(".config"),
        };
        Ok(ProfileDir { dir: config.join("confab") })
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("profile.json")
    }

    /// The profile, or an empty one when there is no file yet.
    pub fn load(&self) -> anyhow::Result<Profile> {
        let path = self.file();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profile::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid profile (fix or remove it)", path.display()))
    }

    /// Writes the profile: directory mode 0700, file mode 0600, replaced
    /// atomically.
    pub fn save(&self, profile: &Profile) -> anyhow::Result<()> {
        create_private_dir(&self.dir)?;
        let path = self.file();
        let temporary = self.dir.join(".profile.json.tmp");
        let mut text = serde_json::to_string_pretty(profile).context("serialize the profile")?;
        text.push('\n');
        let write = || -> std::io::Result<()> {
            let _ = fs::remove_file(&temporary);
            let mut file = private_file(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &path)
        };
        write().with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_profile_is_empty_and_saved_profiles_round_trip_privately() {
        let temp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::locate(Some(temp.path().join("nested").join("confab"))).unwrap();
        assert_eq!(dir.load().unwrap(), Profile::default());

        let tokens = Tokens::new("access", Some("refresh".into()));
        let mut profile = Profile {
            server: Some("quic://127.0.0.1:7443".into()),
            login: Some(StoredLogin::new("quic://127.0.0.1:7443", "alice", false, &tokens)),
            known_fingerprints: BTreeMap::new(),
        };
        profile.known_fingerprints.insert("127.0.0.1:7443".into(), "ab".repeat(32));
        dir.save(&profile).unwrap();
        dir.save(&profile).unwrap();
        assert_eq!(dir.load().unwrap(), profile);
        assert_eq!(profile.login_for("quic://127.0.0.1:7443").unwrap().tokens(), tokens);
        assert!(profile.login_for("ws://127.0.0.1:7080").is_none());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.file()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let shown = format!("{:?}", profile.login);
        assert!(!shown.contains("access") && !shown.contains("refresh"), "{shown}");
    }

    #[test]
    fn a_corrupt_profile_is_a_clear_error() {
        let temp = tempfile::tempdir().unwrap();
        let dir = ProfileDir::locate(Some(temp.path().to_owned())).unwrap();
        fs::write(dir.file(), "{ not json").unwrap();
        let error = format!("{:#}", dir.load().unwrap_err());
        assert!(error.contains("is not a valid profile"), "{error}");
    }
}
