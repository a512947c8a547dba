//! [`Case`]: one case of either mode, generic over its context (the server
//! mode's or the client mode's `Ctx`).

use std::{future::Future, pin::Pin, sync::Arc};

use crate::{outcome::CaseResult, runner, wire::Wires};

type CaseFn<C> = dyn Fn(C) -> Pin<Box<dyn Future<Output = CaseResult> + Send>> + Send + Sync;

/// One case: what it is, the requirements its checks cite, the wires it
/// runs on, and its body.
pub struct Case<C> {
    /// Stable id, `area/what` (`auth/refresh-rotates`); in client mode the
    /// driver receives it in `CONFAB_CASE`.
    pub id: &'static str,
    /// The section of `PROTOCOL.md`, for grouping in reports.
    pub feature: &'static str,
    /// One sentence on what it checks.
    pub title: &'static str,
    /// Every requirement its checks cite.
    pub requirements: &'static [&'static str],
    pub wires: Wires,
    body: Arc<CaseFn<C>>,
}

impl<C> Clone for Case<C> {
    fn clone(&self) -> Self {
        Case { body: self.body.clone(), ..*self }
    }
}

impl<C> Case<C> {
    pub fn new<F, Fut>(
        id: &'static str,
        feature: &'static str,
        title: &'static str,
        requirements: &'static [&'static str],
        wires: Wires,
        body: F,
    ) -> Case<C>
    where
        F: Fn(C) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Case { id, feature, title, requirements, wires, body: Arc::new(move |cx| Box::pin(body(cx))) }
    }

    /// Runs the case's body in `cx`.
    pub fn run(&self, cx: C) -> Pin<Box<dyn Future<Output = CaseResult> + Send>> {
        (self.body)(cx)
    }

    /// What a report says of this case before it runs on `wire`.
    pub(crate) fn meta(&self, wire: &str) -> runner::Meta {
        runner::Meta {
            case: self.id.into(),
            feature: self.feature.into(),
            title: self.title.into(),
            wire: wire.into(),
            requirements: self.requirements.iter().map(|r| r.to_string()).collect(),
        }
    }
}
