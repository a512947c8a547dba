//! Shared by the integration tests: a real daemon on 127.0.0.1 port 0 with a
//! temporary data directory, and the three ways to reach it.
#![allow(dead_code)] // each test binary uses a different part of this

use std::time::Duration;

use confabd::{Config, Daemon};

/// How a test client reaches the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Quic,
    WsProto,
    WsJson,
}

impl Wire {
    pub const ALL: [Wire; 3] = [Wire::Quic, Wire::WsProto, Wire::WsJson];
}

/// Test settings: ports chosen by the OS, cheap password hashing, generous
/// rate limits (tests that check limits set their own).
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = data_dir.to_owned();
    config.server.shutdown_grace_ms = 2_000;
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.quic.listen = "127.0.0.1:0".parse().unwrap();
    config.accounts.argon2_memory_kib = 64;
    config.accounts.argon2_iterations = 1;
    let generous = confabd::config::Rate { per_second: 10_000.0, burst: 10_000 };
    config.rate_limits.logins_per_address = generous;
    config.rate_limits.sends_per_user = generous;
    config.rate_limits.joins_per_user = generous;
    config
}

/// A daemon with its own data directory, removed at the end.
pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestDaemon {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let daemon = Daemon::start(config.clone()).await.expect("daemon starts");
        Self { daemon: Some(daemon), config, dir }
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("running")
    }

    pub fn url(&self, wire: Wire) -> String {
        match wire {
            Wire::Quic => format!("quic://{}", self.daemon().quic_addr),
            Wire::WsProto | Wire::WsJson => format!("ws://{}", self.daemon().http_addr),
        }
    }

    pub fn fingerprint(&self) -> String {
        self.daemon().fingerprint.clone()
    }

    /// Stops gracefully and starts again on the same data directory (new
    /// ports).
    pub async fn restart(&mut self) {
        self.stop().await;
        let daemon = Daemon::start(self.config.clone()).await.expect("daemon restarts");
        self.daemon = Some(daemon);
    }

    pub async fn stop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await;
        }
    }
}

/// Fails a test that waits too long instead of hanging it.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
