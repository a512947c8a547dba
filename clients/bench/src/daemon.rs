//! Starts the `confabd` under test on free loopback ports with a temporary
//! data directory, and reads its resident memory.

use std::{
    io::{BufRead as _, BufReader},
    net::{SocketAddr, TcpListener, UdpSocket},
    path::Path,
    process::{Child, Command, Stdio},
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
        let mut child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        // confabd logs "ready" once both listeners are bound; the rest of
        // its log is drained so it never blocks on a full pipe.
        let mut lines = BufReader::new(child.stdout.take().context("piped stdout")?).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains(" ready") => break,
                Some(Ok(_)) => {}
                _ => bail!("confabd exited before it was ready"),
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
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
