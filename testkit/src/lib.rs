//! Test support shared by the crates that test against a real daemon
//! without depending on it (the CLI, the conformance suite): a `confabd
//! serve` process on free loopback ports with a temporary data directory.
//! Every wait is bounded, so a hang fails the test instead of hanging CI.

use std::{
    io::{Read, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use sha2::{Digest as _, Sha256};

/// How long confabd may take to become ready: tries × interval (10 s).
const READY_TRIES: u32 = 200;
const READY_INTERVAL: Duration = Duration::from_millis(50);

/// `target/<profile>/confabd`, next to the directory of the running test
/// executable (`target/<profile>/deps/NAME-HASH`). Crates that must not
/// depend on the daemon cannot ask cargo to build it for their tests:
/// `cargo test --workspace` and `scripts/test` do.
pub fn confabd_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    let dir = exe.parent().and_then(Path::parent).expect("the test executable lives in target/<profile>/deps");
    let path = dir.join(format!("confabd{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "the confabd binary is not at {}; build it first with `cargo build -p confabd` \
         (`cargo test --workspace` and scripts/test build it too)",
        path.display()
    );
    path
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free TCP port").port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free UDP port").port()
}

/// A loopback TCP port nobody listens on (as far as one can know).
pub fn closed_tcp_port() -> u16 {
    free_tcp_port()
}

/// Sends a signal by name (`TERM`, `INT`) to a process this test started.
#[cfg(unix)]
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -s {name} {pid} failed");
}

/// Whether `GET /healthz` answers 200 right now.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

/// What to change in a daemon's configuration.
#[derive(Clone, Debug, Default)]
pub struct DaemonSpec {
    /// Listen for QUIC on this port instead of a free one.
    pub quic_port: Option<u16>,
    /// `accounts.access_token_ttl_secs`.
    pub access_token_ttl_secs: Option<u64>,
    /// `accounts.refresh_token_ttl_secs`.
    pub refresh_token_ttl_secs: Option<u64>,
    /// More TOML sections (`[limits]`, `[rate_limits]`), appended to the
    /// configuration as they are. The `[server]`, `[http]`, `[quic]` and
    /// `[accounts]` sections are the kit's own.
    pub extra_config: String,
}

/// A `confabd serve` process with its own temporary directory (config, log
/// and data), killed when dropped.
pub struct Daemon {
    binary: PathBuf,
    child: Option<Child>,
    root: tempfile::TempDir,
    spec: DaemonSpec,
    pub http: SocketAddr,
    pub quic: SocketAddr,
    /// Lowercase hex SHA-256 of the certificate, as the daemon logs it.
    pub fingerprint: String,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(DaemonSpec::default())
    }

    pub fn start_with(spec: DaemonSpec) -> Daemon {
        let binary = confabd_binary();
        let root = tempfile::tempdir().expect("a temporary directory");
        let mut daemon = Daemon {
            binary,
            child: None,
            root,
            spec,
            http: ([127, 0, 0, 1], 0).into(),
            quic: ([127, 0, 0, 1], 0).into(),
            fingerprint: String::new(),
        };
        // A free port can be taken by someone else before confabd binds it:
        // try again with other ports (unless the test chose them).
        for attempt in 1.. {
            let http = free_tcp_port();
            let quic = daemon.spec.quic_port.unwrap_or_else(free_udp_port);
            match daemon.launch(http, quic) {
                Ok(()) => break,
                Err(log) if attempt < 3 && log.contains("in use") && daemon.spec.quic_port.is_none() => continue,
                Err(log) => panic!("confabd did not start:\n{log}"),
            }
        }
        daemon
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("confabd.log")
    }

    /// What confabd has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts confabd on these ports and waits until it is ready; on
    /// failure, returns its log.
    fn launch(&mut self, http_port: u16, quic_port: u16) -> Result<(), String> {
        let config_path = self.root.path().join("confabd.toml");
        let mut config = format!(
            "[server]\ndata_dir = {data:?}\nshutdown_grace_ms = 2000\n\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\n\
             [quic]\nlisten = \"127.0.0.1:{quic_port}\"\n\n\
             [accounts]\nargon2_memory_kib = 64\nargon2_iterations = 1\n",
            data = self.data_dir().to_str().expect("a UTF-8 temporary path"),
        );
        if let Some(ttl) = self.spec.access_token_ttl_secs {
            config.push_str(&format!("access_token_ttl_secs = {ttl}\n"));
        }
        if let Some(ttl) = self.spec.refresh_token_ttl_secs {
            config.push_str(&format!("refresh_token_ttl_secs = {ttl}\n"));
        }
        config.push('\n');
        config.push_str(&self.spec.extra_config);
        std::fs::write(&config_path, config).expect("write confabd.toml");
        // Only this run's log lines count (a restart appends to the same log).
        let log_start = self.log().len();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open the log");
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env_remove("CONFABD_CONFIG")
            .env_remove("CONFABD_DATA_DIR")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start confabd");
        self.child = Some(child);
        self.http = ([127, 0, 0, 1], http_port).into();
        self.quic = ([127, 0, 0, 1], quic_port).into();

        // tracing writes to stdout: the fingerprint line comes right after
        // both listeners are bound; then /healthz must answer.
        for _ in 0..READY_TRIES {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("poll confabd")) {
                self.child = None;
                return Err(format!("confabd exited with {status}; its log:\n{}", self.log()));
            }
            if let Some(logged) = logged_fingerprint(&self.log()[log_start..])
                && healthy(self.http)
            {
                let cert = std::fs::read(self.data_dir().join("tls").join("cert.der")).expect("read tls/cert.der");
                let computed = hex::encode(Sha256::digest(&cert));
                assert_eq!(logged, computed, "the logged fingerprint is not the SHA-256 of tls/cert.der");
                self.fingerprint = computed;
                return Ok(());
            }
            thread::sleep(READY_INTERVAL);
        }
        self.kill();
        Err(format!("confabd was not ready after {:?}; its log:\n{}", READY_INTERVAL * READY_TRIES, self.log()))
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.http)
    }

    pub fn quic_url(&self) -> String {
        format!("quic://{}", self.quic)
    }

    /// Asserts that the process still runs and `/healthz` answers.
    pub fn assert_serving(&mut self) {
        let child = self.child.as_mut().expect("confabd was started");
        if let Some(status) = child.try_wait().expect("poll confabd") {
            panic!("confabd exited with {status}; its log:\n{}", self.log());
        }
        assert!(healthy(self.http), "confabd runs but /healthz does not answer; its log:\n{}", self.log());
    }

    /// Graceful stop (SIGTERM, as Ctrl-C), bounded; returns how it exited.
    #[cfg(unix)]
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("confabd is running");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().expect("poll confabd") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("confabd did not stop within 15 s of SIGTERM; its log:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops gracefully and starts again with the same data and ports.
    #[cfg(unix)]
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "confabd exited with {status} after SIGTERM; its log:\n{}", self.log());
        let (http, quic) = (self.http.port(), self.quic.port());
        if let Err(log) = self.launch(http, quic) {
            panic!("confabd did not start again:\n{log}");
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("---- confabd log ({}) ----\n{}", self.root.path().display(), self.log());
        }
    }
}

/// The hex after "certificate SHA-256 fingerprint: " in the log.
fn logged_fingerprint(log: &str) -> Option<String> {
    const MARK: &str = "certificate SHA-256 fingerprint: ";
    let start = log.find(MARK)? + MARK.len();
    let hex: String = log[start..].chars().take_while(char::is_ascii_hexdigit).collect();
    (hex.len() == 64).then_some(hex)
}
