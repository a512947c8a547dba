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
    config.rate_limits.resumes_per_user = generous;
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

use confab_sdk::{Client, ClientOptions, Encoding, Trust, v1};

impl TestDaemon {
    /// Client options that trust this daemon's certificate.
    pub fn options(&self, wire: Wire) -> ClientOptions {
        ClientOptions {
            encoding: if wire == Wire::WsJson { Encoding::Json } else { Encoding::Proto },
            trust: Trust::Fingerprint(self.fingerprint().parse().expect("fingerprint")),
            request_timeout: Some(Duration::from_secs(20)),
            // The tests look at the server's answers, RATE_LIMITED included.
            send_retries: 0,
            ..ClientOptions::default()
        }
    }

    /// A connected client that has not logged in.
    pub async fn client(&self, wire: Wire) -> Client {
        Client::connect(&self.url(wire), self.options(wire)).await.expect("client connects")
    }

    /// A client registered (and logged in) as `name`.
    pub async fn user(&self, wire: Wire, name: &str) -> Client {
        let client = self.client(wire).await;
        client.register(name, "correct horse battery").await.expect("registers");
        client
    }

    /// A raw connection that said Hello.
    pub async fn raw(&self, wire: Wire) -> confab_sdk::raw::RawConnection {
        let mut raw = confab_sdk::raw::RawConnection::connect(&self.url(wire), &self.options(wire))
            .await
            .expect("raw connection");
        raw.hello("tests").await.expect("hello");
        raw
    }

    /// Restarts on the same ports, so clients can reconnect.
    pub async fn restart_in_place(&mut self) {
        let daemon = self.daemon.as_ref().expect("running");
        self.config.http.listen = daemon.http_addr;
        self.config.quic.listen = daemon.quic_addr;
        self.stop().await;
        // quinn releases the UDP socket from its endpoint driver task a
        // moment after the endpoint is dropped; a new process would not
        // wait, this in-process restart may have to.
        for _ in 0..100 {
            match Daemon::start(self.config.clone()).await {
                Ok(daemon) => {
                    self.daemon = Some(daemon);
                    return;
                }
                Err(error) if error.to_string().contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(error) => panic!("daemon restarts: {error:#}"),
            }
        }
        panic!("the ports were not released within 2 s");
    }
}

/// The error code of a failed request.
pub fn code(result: Result<impl std::fmt::Debug, confab_sdk::Error>) -> v1::ErrorCode {
    match result {
        Err(confab_sdk::Error::Server(error)) => v1::ErrorCode::try_from(error.code).expect("known code"),
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The next room event, skipping connection notices.
pub async fn next_room_event(client: &Client) -> v1::RoomEvent {
    within("a room event", async {
        loop {
            match client.next_event().await.expect("event stream open") {
                confab_sdk::Event::Room(event) => return event,
                _ => continue,
            }
        }
    })
    .await
}

/// The text of a message event, or None for other kinds.
pub fn text_of(event: &v1::RoomEvent) -> Option<&str> {
    match &event.kind {
        Some(v1::room_event::Kind::Message(message)) => Some(&message.text),
        _ => None,
    }
}
