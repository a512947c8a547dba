//! confabd as a library: [`Daemon::start`] brings up the store, the writer,
//! the hub and both listeners from a [`Config`]; [`Daemon::shutdown`] takes
//! them down in order. The `confabd` binary and the tests both use it.

pub mod auth;
pub mod config;
mod context;
mod convert;
mod files;
pub mod hub;
mod outbox;
pub mod rate_limit;
mod session;
pub mod store;
pub mod tls;
mod transport;

pub use confab_protocol::ids;
pub use config::Config;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    context::{Context, Limiters},
    hub::Hub,
    store::{Store, Writer},
};

/// A running daemon.
pub struct Daemon {
    /// Where HTTP and WebSocket (`/ws`) listen.
    pub http_addr: SocketAddr,
    /// Where QUIC listens.
    pub quic_addr: SocketAddr,
    /// SHA-256 fingerprint (lowercase hex) of the certificate, for pinning.
    pub fingerprint: String,
    ctx: Arc<Context>,
    writer: Writer,
    endpoint: quinn::Endpoint,
}

impl Daemon {
    /// Opens the data directory and starts listening.
    pub async fn start(config: Config) -> anyhow::Result<Daemon> {
        let data_dir = config.server.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700));
        }
        let db_path = data_dir.join("confab.redb");
        let store = Store::open(&db_path).with_context(|| format!("cannot open the store {}", db_path.display()))?;
        let identity = tls::load_or_generate(&config.tls, &data_dir)?;
        let fingerprint = identity.fingerprint();

        let limits = &config.limits;
        let hub = Arc::new(Hub::new(
            store.clone(),
            limits.max_resume_events.into(),
            (limits.max_outbound_queue_bytes / 2) as usize,
        ));
        let writer = Writer::start(store.database(), hub.clone());
        let secret = store.jwt_secret()?;
        let files_dir = data_dir.join("files");
        let files = files::Files::open(files_dir.clone())
            .with_context(|| format!("cannot open the files directory {}", files_dir.display()))?;
        files
            .remove_orphans(&store)
            .with_context(|| format!("cannot tidy the files directory {}", files_dir.display()))?;
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen for HTTP on {} (in use? set --http)", config.http.listen))?;
        let http_addr = listener.local_addr()?;
        let http_url = config.http.public_url.clone().unwrap_or_else(|| format!("http://{http_addr}"));
        let ctx = Arc::new(Context {
            auth: auth::Auth::new(config.accounts.clone(), &secret),
            http_url,
            limiters: Limiters::new(&config),
            files,
            writer: writer.handle(),
            store,
            hub,
            guests: Default::default(),
            logins: Default::default(),
            next_session: 1.into(),
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            config,
        });

        let endpoint =
            transport::quic::bind(&identity, &ctx.config).map_err(|e| anyhow::anyhow!("{e} (in use? set --quic)"))?;
        let quic_addr = endpoint.local_addr()?;

        ctx.tracker.spawn(sweep_expired_tokens(ctx.clone()));
        let max_sessions = ctx.config.limits.max_sessions_per_listener as usize;
        ctx.tracker.spawn(transport::http::serve(ctx.clone(), listener, Arc::new(Semaphore::new(max_sessions))));
        ctx.tracker.spawn(transport::quic::serve(
            ctx.clone(),
            endpoint.clone(),
            Arc::new(Semaphore::new(max_sessions)),
        ));
        Ok(Daemon { http_addr, quic_addr, fingerprint, ctx, writer, endpoint })
    }

    /// A token that, when cancelled, starts the same shutdown as
    /// [`Daemon::shutdown`] would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }

    /// Waits until shutdown is requested through [`Daemon::shutdown_token`].
    pub async fn wait_for_shutdown_request(&self) {
        self.ctx.shutdown.cancelled().await
    }

    /// Graceful shutdown: stop accepting, tell every session to reconnect,
    /// drain for up to `server.shutdown_grace_ms`, then finish pending writes
    /// and close the store.
    pub async fn shutdown(self) {
        tracing::info!("shutting down");
        self.ctx.shutdown.cancel();
        self.ctx.tracker.close();
        let grace = Duration::from_millis(self.ctx.config.server.shutdown_grace_ms);
        if tokio::time::timeout(grace, self.ctx.tracker.wait()).await.is_err() {
            tracing::warn!(remaining = self.ctx.tracker.len(), "sessions still open after the grace period");
        }
        self.endpoint.close(quinn::VarInt::from(confab_protocol::v1::CloseCode::ServerShutdown as u32), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
        self.writer.stop().await;
        tracing::info!("stopped");
    }
}

/// Forgets expired refresh tokens at start and then hourly, until shutdown.
async fn sweep_expired_tokens(ctx: Arc<Context>) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every_hour.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        match ctx.writer.write(store::WriteOp::SweepExpiredTokens).await {
            Ok(Ok(store::OpOutput::Swept { tokens })) if tokens > 0 => {
                tracing::info!(tokens, "forgot expired refresh tokens")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sweeping expired refresh tokens failed"),
        }
    }
}
