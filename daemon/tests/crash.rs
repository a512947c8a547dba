//! Crash safety: many clients send while the real `confabd` binary is killed
//! with SIGKILL at a random moment. After a restart, every acknowledged
//! message is in its room's history exactly once, the log has no gap, and
//! the SDK's retries of unacknowledged sends are applied once.

mod support;

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener, UdpSocket},
    path::Path,
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use confab_sdk::{Client, ClientOptions, ReconnectPolicy, Seq, Trust, v1};
use sha2::{Digest as _, Sha256};
use support::{text_of, within};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const WRITERS: usize = 8;
const EACH: usize = 300;

/// The `confabd` binary running on fixed ports and a data directory.
struct Process {
    child: tokio::process::Child,
    /// Keeps reading the log so the daemon never blocks on a full pipe.
    log: tokio::task::JoinHandle<()>,
}

impl Process {
    /// Starts confabd and waits for its "ready" line, which it logs once
    /// both listeners are bound.
    async fn start(config: &Path) -> Process {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_confabd"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("confabd starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        within("confabd to be ready", async {
            while let Some(line) = lines.next_line().await.expect("confabd's log") {
                if line.contains(" ready") {
                    return;
                }
            }
            panic!("confabd exited before it was ready");
        })
        .await;
        let log = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Process { child, log }
    }

    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL and reaped");
        self.log.abort();
    }

    /// Sends SIGTERM and waits for the process to exit.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = within("confabd to stop after SIGTERM", self.child.wait()).await.unwrap();
        self.log.abort();
        status
    }
}

fn free_ports() -> (SocketAddr, SocketAddr) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    (tcp.local_addr().unwrap(), udp.local_addr().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (http, quic) = free_ports();
    let config = dir.path().join("confabd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {data:?}\n[http]\nlisten = \"{http}\"\n[quic]\nlisten = \"{quic}\"\n\
             [accounts]\nargon2_memory_kib = 64\nargon2_iterations = 1\n\
             [rate_limits]\nsends_per_user = {{ per_second = 100000.0, burst = 100000 }}\n\
             [limits]\nping_interval_ms = 250\nidle_timeout_ms = 1500\n",
            data = dir.path().join("data"),
        ),
    )
    .unwrap();
    let daemon = Process::start(&config).await;
    let cert = std::fs::read(dir.path().join("data/tls/cert.der")).unwrap();
    let fingerprint = hex::encode(Sha256::digest(&cert));

    // A killed server sends no close: QUIC clients notice through the idle
    // timeout from Welcome, kept short here.
    let options = |encoding| ClientOptions {
        encoding,
        trust: Trust::Fingerprint(fingerprint.parse().unwrap()),
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_attempts: None,
        },
        receive_events: false,
        request_timeout: None,
        ..ClientOptions::default()
    };
    let urls = [format!("quic://{quic}"), format!("ws://{http}"), format!("ws://{http}")];
    let encodings = [confab_sdk::Encoding::Proto, confab_sdk::Encoding::Proto, confab_sdk::Encoding::Json];

    let owner = Client::connect(&urls[1], options(encodings[1])).await.unwrap();
    owner.register("owner", "correct horse battery").await.unwrap();
    owner.create_room("crash", v1::RoomKind::Public).await.unwrap();

    // Kill once this many sends are acknowledged, somewhere in the middle.
    let kill_after = rand::random_range(WRITERS * EACH / 10..WRITERS * EACH / 2);
    let (acked_count, mut acked_seen) = tokio::sync::watch::channel(0usize);
    let acked_count = Arc::new(acked_count);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = Client::connect(&urls[w % 3], options(encodings[w % 3])).await.unwrap();
        client.register(&format!("writer{w}"), "correct horse battery").await.unwrap();
        client.join("crash").await.unwrap();
        let acked_count = acked_count.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::with_capacity(EACH);
            for n in 0..EACH {
                let text = format!("w{w}-{n}");
                let sent = client.send_with_txn("crash", &text, &text).await.expect("the SDK retries until applied");
                acked.push((text, sent.seq));
                acked_count.send_modify(|count| *count += 1);
            }
            client.close().await;
            acked
        }));
    }

    let acked_before_kill = *within("the kill point", acked_seen.wait_for(|count| *count >= kill_after)).await.unwrap();
    daemon.kill().await;
    let daemon = Process::start(&config).await;

    let mut acked: HashMap<String, u64> = HashMap::new();
    for writer in writers {
        let results = tokio::time::timeout(Duration::from_secs(120), writer).await.expect("writers finish").unwrap();
        for (text, seq) in results {
            assert!(acked.insert(text, seq).is_none());
        }
    }
    assert_eq!(acked.len(), WRITERS * EACH);

    // Read the whole log back.
    let reader = Client::connect(&urls[1], options(encodings[1])).await.unwrap();
    reader.login("owner", "correct horse battery").await.unwrap();
    let mut stored: HashMap<String, u64> = HashMap::new();
    let mut expected_seq = 1;
    let mut anchor = Seq(0);
    loop {
        let page = reader.history("crash", v1::HistoryDirection::Forward, anchor, 100).await.unwrap();
        for event in &page.events {
            assert_eq!(event.seq, expected_seq, "no gap in the log");
            expected_seq += 1;
            if let Some(text) = text_of(event) {
                assert!(stored.insert(text.to_owned(), event.seq).is_none(), "{text} stored twice");
            }
        }
        if !page.has_more {
            break;
        }
        anchor = Seq(page.events.last().unwrap().seq);
    }
    assert_eq!(stored, acked, "history holds exactly the acknowledged messages, at their acknowledged positions");
    eprintln!("killed after {acked_before_kill} acknowledged sends; {} messages checked", stored.len());

    // SIGTERM is a graceful stop: connected clients are told, and the
    // process exits cleanly.
    let status = daemon.terminate().await;
    assert!(status.success(), "{status:?}");
    let closed = within("the shutdown notice", async {
        loop {
            match reader.next_event().await {
                Some(confab_sdk::Event::ServerClosed { code, .. }) => return code,
                Some(_) => continue,
                None => panic!("event stream ended without a close"),
            }
        }
    })
    .await;
    assert_eq!(closed, v1::CloseCode::ServerShutdown as i32);
}
