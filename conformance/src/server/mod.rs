//! Server mode: the suite plays one or many clients against a server and
//! checks what it answers, pushes and closes against `PROTOCOL.md`.
//!
//! A case is an async function of a [`Ctx`]; it opens connections through
//! the context (so every frame lands in its frame log), makes checks that
//! cite requirement ids, and stops early with a
//! [`Stop`](crate::outcome::Stop) when it cannot go on. The runner runs
//! every case on every wire it applies to, a few at a time, each bounded in
//! time.
//!
//! What the cases share: [`Ctx`] (`ctx.rs`: connections, accounts, checks),
//! [`Conn`] (`conn.rs`: one logged connection), `hand.rs` (connections and
//! frames made by hand, below `Conn`), `show.rs` (what check details say)
//! and `events.rs` (room events compared). Every other module holds the
//! cases of one or a few sections of the spec.

mod attention;
mod auth;
mod calls;
mod conn;
mod conversation;
mod ctx;
mod encoding;
mod envelope;
mod events;
mod expiry;
mod files;
mod hand;
mod handshake;
mod history;
mod http;
mod messages;
mod people;
mod rate;
mod resume;
mod rooms;
mod settings;
mod show;
mod state;
mod transport;

use std::{sync::Arc, time::Duration};

pub use conn::{Closing, Conn, Reply};
pub use ctx::{Ctx, Target, User};

use crate::{
    outcome::Outcome,
    runner::{self, Progress},
    wire::Wire,
};

/// A case of this mode.
pub type Case = crate::case::Case<Ctx>;

/// Every server case, in report order.
pub fn cases() -> Vec<Case> {
    [
        handshake::cases(),
        transport::cases(),
        encoding::cases(),
        envelope::cases(),
        state::cases(),
        auth::cases(),
        expiry::cases(),
        rooms::cases(),
        messages::cases(),
        history::cases(),
        resume::cases(),
        conversation::cases(),
        attention::cases(),
        people::cases(),
        settings::cases(),
        files::cases(),
        rate::cases(),
    ]
    .concat()
}

/// Runs `cases` against `target` on each wire they apply to, `jobs` at a
/// time; each case is cut off after `case_timeout`.
pub async fn run(target: Arc<Target>, cases: &[Case], jobs: usize, case_timeout: Duration) -> Vec<Outcome> {
    let mut plan = Vec::new();
    for case in cases {
        let wires = case.wires.select(&target.wires);
        if wires.is_empty() {
            plan.push(runner::Planned::skipped(case.meta("-"), "no wire under test suits this case"));
        }
        for wire in wires {
            let case = case.clone();
            let target = target.clone();
            plan.push(runner::Planned::new(case.meta(wire.name()), move |record| {
                case.run(Ctx::new(target, wire, case.requirements, record))
            }));
        }
    }
    runner::run(plan, jobs, case_timeout, Progress::Stderr).await
}

/// The wires a server offers, from its URLs.
pub fn wires_of(quic: bool, ws: bool) -> Vec<Wire> {
    Wire::ALL
        .into_iter()
        .filter(|wire| match wire.transport {
            crate::wire::Transport::Quic => quic,
            crate::wire::Transport::Ws => ws,
        })
        .collect()
}
