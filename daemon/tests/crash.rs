//! Crash safety: many clients send while the real `confabd` binary is killed
//! with SIGKILL at a random moment. After a restart, every acknowledged
//! message is in its room's history exactly once, the log has no gap, and
//! the SDK's retries of unacknowledged sends are applied once.

mod support;

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use confab_sdk::{Client, ClientOptions, ReconnectPolicy, Seq, Trust, v1};
use sha2::{Digest as _, Sha256};
use support::{text_of, within};

const WRITERS: usize = 8;
const EACH: usize = 300;

/// The `confabd` binary running on fixed ports and a data directory.
struct Process {
    child: Child,
}

impl Process {
    fn start(config: &Path, http: SocketAddr) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_confabd"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("confabd starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !healthy(http) {
            assert!(Instant::now() < deadline, "confabd did not become healthy");
            std::thread::sleep(Duration::from_millis(25));
        }
        Process { child }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "confabd did not stop within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
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
    let daemon = Process::start(&config, http);
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
    let acked_count = Arc::new(AtomicUsize::new(0));
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
                acked_count.fetch_add(1, Ordering::Relaxed);
            }
            client.close().await;
            acked
        }));
    }

    within("the kill point", async {
        while acked_count.load(Ordering::Relaxed) < kill_after {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let acked_before_kill = acked_count.load(Ordering::Relaxed);
    daemon.kill();
    let daemon = Process::start(&config, http);

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
    let status = daemon.terminate();
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
