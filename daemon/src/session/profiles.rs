//! Profiles and user search: GetProfile, SetProfile, SearchUsers.

use confab_protocol::v1::{self, server_frame::Body};

use super::{Session, not_yet};

impl Session {
    pub(super) fn get_profile(&mut self, _command: v1::GetProfile) -> Result<Body, v1::Error> {
        Err(not_yet())
    }

    pub(super) async fn set_profile(&mut self, _command: v1::SetProfile) -> Result<Body, v1::Error> {
        Err(not_yet())
    }

    pub(super) fn search_users(&mut self, _command: v1::SearchUsers) -> Result<Body, v1::Error> {
        Err(not_yet())
    }
}
