//! What every session shares: configuration, the store, the writer, the hub,
//! credentials and rate limits. Built once by `Daemon::start` and passed
//! explicitly; there is no global state.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, atomic::AtomicU64},
    time::{Duration, Instant},
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    auth::{Auth, GuestNames, LiveLogins},
    config::Config,
    files::Files,
    hub::Hub,
    ids::UserId,
    rate_limit::RateLimiter,
    store::{Store, WriterHandle},
};

pub struct Context {
    pub config: Config,
    /// Where clients reach the HTTP listener (`Welcome.http_url`).
    pub http_url: String,
    pub store: Store,
    pub writer: WriterHandle,
    pub hub: Arc<Hub>,
    pub auth: Auth,
    pub guests: GuestNames,
    pub logins: LiveLogins,
    pub limiters: Limiters,
    /// The files directory and the uploads in flight.
    pub files: Files,
    pub next_session: AtomicU64,
    /// Password hashes computed at once (each takes argon2's memory cost).
    pub hashing: tokio::sync::Semaphore,
    /// Cancelled when the daemon shuts down.
    pub shutdown: CancellationToken,
    /// Every task the daemon runs.
    pub tracker: TaskTracker,
}

pub struct Limiters {
    pub logins: Mutex<RateLimiter<IpAddr>>,
    pub sends: Mutex<RateLimiter<UserId>>,
    pub guest_sends: Mutex<RateLimiter<UserId>>,
    pub joins: Mutex<RateLimiter<UserId>>,
    pub resumes: Mutex<RateLimiter<UserId>>,
    pub edits: Mutex<RateLimiter<UserId>>,
    pub typing: Mutex<RateLimiter<UserId>>,
    pub receipts: Mutex<RateLimiter<UserId>>,
    pub lookups: Mutex<RateLimiter<UserId>>,
    pub uploads: Mutex<RateLimiter<UserId>>,
}

impl Limiters {
    pub fn new(config: &Config) -> Self {
        let r = &config.rate_limits;
        Self {
            logins: Mutex::new(RateLimiter::new(r.logins_per_address)),
            sends: Mutex::new(RateLimiter::new(r.sends_per_user)),
            guest_sends: Mutex::new(RateLimiter::new(r.sends_per_guest)),
            joins: Mutex::new(RateLimiter::new(r.joins_per_user)),
            resumes: Mutex::new(RateLimiter::new(r.resumes_per_user)),
            edits: Mutex::new(RateLimiter::new(r.edits_per_user)),
            typing: Mutex::new(RateLimiter::new(r.typing_per_user)),
            receipts: Mutex::new(RateLimiter::new(r.receipts_per_user)),
            lookups: Mutex::new(RateLimiter::new(r.lookups_per_user)),
            uploads: Mutex::new(RateLimiter::new(r.uploads_per_user)),
        }
    }
}

/// Takes a token from `limiter` for `key`, or says how long to wait.
pub fn check<K: Eq + std::hash::Hash + Clone>(limiter: &Mutex<RateLimiter<K>>, key: &K) -> Result<(), Duration> {
    limiter.lock().expect("rate limiter lock").check(key, Instant::now())
}
