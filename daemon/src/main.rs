//! `confabd`: the confab daemon. `confabd serve` runs it with sensible
//! defaults and no configuration at all.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use confabd::{Config, Daemon};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "confabd", version, about = "confab chat daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (defaults: data in ./confab-data, WebSocket on
    /// 127.0.0.1:7080, QUIC on 127.0.0.1:7443).
    Serve {
        /// A TOML configuration file (every key is optional).
        #[arg(long, short = 'c', env = "CONFABD_CONFIG")]
        config: Option<PathBuf>,
        /// Where the store, certificate and keys live [default: ./confab-data].
        #[arg(long, env = "CONFABD_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// HTTP and WebSocket listen address, e.g. 0.0.0.0:7080 to serve the network.
        #[arg(long)]
        http: Option<SocketAddr>,
        /// QUIC (UDP) listen address, e.g. 0.0.0.0:7443.
        #[arg(long)]
        quic: Option<SocketAddr>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("confabd: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Command::Serve { config, data_dir, http, quic } = cli.command;
    let mut config = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = data_dir {
        config.server.data_dir = dir;
    }
    if let Some(addr) = http {
        config.http.listen = addr;
    }
    if let Some(addr) = quic {
        config.quic.listen = addr;
    }
    let data_dir = config.server.data_dir.clone();
    let daemon = Daemon::start(config).await?;
    tracing::info!(data_dir = %data_dir.display(), "confabd {} ready", env!("CARGO_PKG_VERSION"));
    tracing::info!("WebSocket  ws://{}/ws  (health: http://{}/healthz)", daemon.http_addr, daemon.http_addr);
    tracing::info!("QUIC       quic://{}", daemon.quic_addr);
    tracing::info!("certificate SHA-256 fingerprint: {}", daemon.fingerprint);
    if daemon.http_addr.ip().is_loopback() {
        tracing::info!("listening on loopback only; use --http 0.0.0.0:7080 --quic 0.0.0.0:7443 to serve the network");
    }

    let token = daemon.shutdown_token();
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = token.cancelled() => {}
    }
    daemon.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
