//! `confab-bench`: measures a `confabd` it starts itself, through the same
//! protocol any client uses. Every run is bounded in count and time and
//! talks only to 127.0.0.1.
//!
//! Scenarios so far:
//! - `sends`: durable sends per second with 1 sender (the baseline) and with
//!   N concurrent senders, reported as a ratio to the baseline: group commit
//!   at work.
//! - `idle`: the daemon's resident memory per idle WebSocket session.

mod daemon;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use confab_sdk::{Client, ClientOptions, Trust, v1};

use daemon::Daemon;

#[derive(Parser)]
#[command(name = "confab-bench", about = "confab load generator")]
struct Cli {
    /// The confabd binary to measure (build it with --release).
    #[arg(long, default_value = "target/release/confabd")]
    confabd: std::path::PathBuf,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Acknowledged (durable) sends per second, 1 sender vs N senders.
    Sends {
        /// Concurrent senders to compare with the single-sender baseline.
        #[arg(long, default_value_t = 100)]
        senders: usize,
        /// Messages per run.
        #[arg(long, default_value_t = 5_000)]
        messages: usize,
    },
    /// Resident memory per idle, logged-in WebSocket session.
    Idle {
        #[arg(long, default_value_t = 1_000)]
        connections: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let daemon = Daemon::start(&cli.confabd)?;
        let result = match cli.scenario {
            Scenario::Sends { senders, messages } => sends(&daemon, senders, messages).await,
            Scenario::Idle { connections } => idle(&daemon, connections).await,
        };
        daemon.stop();
        result
    })
}

fn options(daemon: &Daemon) -> ClientOptions {
    ClientOptions {
        trust: Trust::Fingerprint(daemon.fingerprint.parse().expect("hex fingerprint")),
        receive_events: false,
        ..ClientOptions::default()
    }
}

async fn user(daemon: &Daemon, name: &str) -> anyhow::Result<Client> {
    let client = Client::connect(&daemon.ws_url(), options(daemon)).await?;
    client.register(name, "benchmark password").await.with_context(|| format!("registering {name}"))?;
    Ok(client)
}

/// Sends `messages` in total from `clients`, each sending one after the
/// other; returns acknowledged sends per second.
async fn send_all(clients: &[Arc<Client>], room: &str, messages: usize) -> anyhow::Result<f64> {
    let per_client = messages / clients.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let client = client.clone();
        let room = room.to_owned();
        tasks.push(tokio::spawn(async move {
            for n in 0..per_client {
                client.send(room.as_str(), &format!("{i}:{n} {}", "x".repeat(90))).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(300), task).await.context("run bounded to 5 minutes")???;
    }
    Ok((per_client * clients.len()) as f64 / started.elapsed().as_secs_f64())
}

async fn sends(daemon: &Daemon, senders: usize, messages: usize) -> anyhow::Result<()> {
    let owner = user(daemon, "owner").await?;
    owner.create_room("bench", v1::RoomKind::Public).await?;
    let mut clients = Vec::new();
    for i in 0..senders {
        let client = user(daemon, &format!("sender{i}")).await?;
        client.join("bench").await?;
        clients.push(Arc::new(client));
    }
    // Warm up, then the baseline and the concurrent run, alternately twice.
    send_all(&clients[..1], "bench", 200).await?;
    let mut rows = Vec::new();
    for _ in 0..2 {
        let one = send_all(&clients[..1], "bench", messages / 5).await?;
        let many = send_all(&clients, "bench", messages).await?;
        rows.push((one, many));
    }
    println!("durable sends/s (100-byte messages, WebSocket, each acknowledged after its commit is durable)");
    println!("{:>8}  {:>14}  {:>16}  {:>6}", "run", "1 sender", format!("{senders} senders"), "ratio");
    for (run, (one, many)) in rows.iter().enumerate() {
        println!("{:>8}  {:>14.0}  {:>16.0}  {:>5.1}x", run + 1, one, many, many / one);
    }
    Ok(())
}

async fn idle(daemon: &Daemon, connections: usize) -> anyhow::Result<()> {
    // One account for all sessions: logins are what is measured, not
    // argon2 registrations.
    let first = user(daemon, "idler").await?;
    let tokens = first.tokens().context("tokens after registering")?;
    first.close().await;
    let settle = || tokio::time::sleep(Duration::from_millis(500));
    settle().await;
    let before = daemon.rss_kib()?;
    let started = Instant::now();
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client =
            Client::connect(&daemon.ws_url(), ClientOptions { receive_events: true, ..options(daemon) }).await?;
        client.authenticate(&tokens.access_token, None).await?;
        clients.push(client);
    }
    let connect_rate = connections as f64 / started.elapsed().as_secs_f64();
    settle().await;
    let after = daemon.rss_kib()?;
    println!("idle WebSocket sessions: {connections} (logged in, resumed)");
    println!("daemon RSS before: {before} KiB, after: {after} KiB");
    println!(
        "per session: {:.1} KiB; connect+login rate: {connect_rate:.0}/s",
        (after.saturating_sub(before)) as f64 / connections as f64
    );
    for client in clients {
        client.close().await;
    }
    Ok(())
}
