//! Starts the `confabd` under test on free loopback ports with a temporary
//! data directory, and reads its resident memory.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};

pub struct Daemon {
    child: Child,
    http: SocketAddr,
    pub fingerprint: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(binary: &Path) -> anyhow::Result<Daemon> {
        anyhow::ensure!(
            binary.exists(),
            "{} not found; build it with `cargo build --release --bin confabd`",
            binary.display()
        );
        let dir = tempfile::tempdir()?;
        let http = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let quic = UdpSocket::bind("127.0.0.1:0")?.local_addr()?;
        let config = dir.path().join("confabd.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\ndata_dir = {:?}\n[http]\nlisten = \"{http}\"\n[quic]\nlisten = \"{quic}\"\n\
                 [rate_limits]\nsends_per_user = {{ per_second = 1000000.0, burst = 1000000 }}\n\
                 logins_per_address = {{ per_second = 1000000.0, burst = 1000000 }}\n\
                 resumes_per_user = {{ per_second = 1000000.0, burst = 1000000 }}\n",
                dir.path().join("data")
            ),
        )?;
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(http) {
            if Instant::now() > deadline {
                bail!("confabd did not answer /healthz within 30 s");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let cert = std::fs::read(dir.path().join("data/tls/cert.der"))?;
        Ok(Daemon { child, http, fingerprint: hex::encode(Sha256::digest(cert)), _dir: dir })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.http)
    }

    /// Resident set size of the daemon process.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn healthy(http: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&http, Duration::from_millis(200)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}
