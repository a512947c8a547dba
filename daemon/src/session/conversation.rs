//! Changing messages: EditMessage, DeleteMessage and React; reading threads
//! with GetThread.

use confab_protocol::v1::{self, server_frame::Body};

use super::{Reply, Session, not_yet};

impl Session {
    pub(super) async fn edit_message(&mut self, _command: v1::EditMessage) -> Reply {
        Reply::Now(Err(not_yet()))
    }

    pub(super) async fn delete_message(&mut self, _command: v1::DeleteMessage) -> Reply {
        Reply::Now(Err(not_yet()))
    }

    pub(super) async fn react(&mut self, _command: v1::React) -> Reply {
        Reply::Now(Err(not_yet()))
    }

    pub(super) fn get_thread(&mut self, _command: v1::GetThread) -> Result<Body, v1::Error> {
        Err(not_yet())
    }
}
