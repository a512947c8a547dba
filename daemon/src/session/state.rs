//! Per-user state around the log: read markers, receipts, notification
//! levels, typing and presence.

use confab_protocol::v1::{self, server_frame::Body};

use super::{Reply, Session, not_yet};

impl Session {
    pub(super) async fn set_notification_level(
        &mut self,
        _command: v1::SetNotificationLevel,
    ) -> Result<Body, v1::Error> {
        Err(not_yet())
    }

    pub(super) async fn mark_read(&mut self, _command: v1::MarkRead) -> Reply {
        Reply::Now(Err(not_yet()))
    }

    pub(super) async fn mark_delivered(&mut self, _command: v1::MarkDelivered) -> Reply {
        Reply::Now(Err(not_yet()))
    }

    pub(super) fn get_receipts(&mut self, _command: v1::GetReceipts) -> Result<Body, v1::Error> {
        Err(not_yet())
    }

    pub(super) fn set_typing(&mut self, _command: v1::SetTyping) -> Result<Body, v1::Error> {
        Err(not_yet())
    }

    pub(super) async fn set_presence(&mut self, _command: v1::SetPresence) -> Result<Body, v1::Error> {
        Err(not_yet())
    }
}
