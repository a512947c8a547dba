//! Profiles and user search: GetProfile, SetProfile, SearchUsers.

use confab_protocol::v1::{self, ErrorCode, server_frame::Body};

use super::{
    Session,
    account::{refusal, unexpected},
    internal, invalid, rate_limited,
    state::check_status_text,
};
use crate::{
    context::check,
    ids::UserId,
    store::{OpOutput, ProfileChanges, UserRecord, WriteOp},
};

/// Longest display name, in bytes.
const MAX_DISPLAY_NAME_BYTES: usize = 64;
/// Longest search prefix, in characters (a whole name).
const MAX_PREFIX_CHARS: usize = 32;
/// Search results when the client does not say, and at most.
const DEFAULT_SEARCH_LIMIT: u32 = 20;
const MAX_SEARCH_LIMIT: u32 = 50;

impl Session {
    fn limit_lookups(&self, user: UserId) -> Result<(), v1::Error> {
        check(&self.ctx.limiters.lookups, &user).map_err(|wait| rate_limited(wait, "profile lookups and changes"))
    }

    /// A user's profile as `self` sees it.
    fn profile(&self, id: UserId, record: &UserRecord) -> v1::Profile {
        let own = self.identity.as_ref().is_some_and(|i| i.user == id);
        let (presence, last_seen_ms) = self.ctx.hub.presence(id, record);
        v1::Profile {
            user: Some(v1::User {
                user_id: id.0,
                name: record.name.clone(),
                guest: record.is_guest(),
                display_name: record.display_name.clone(),
                avatar_file_id: record.avatar_file_id.clone(),
            }),
            display_name: record.display_name.clone(),
            avatar_file_id: record.avatar_file_id.clone(),
            status_text: record.status_text.clone(),
            presence: presence as i32,
            last_seen_ms,
            created_at_ms: record.created_at_ms,
            share_receipts: own && !record.receipts_private,
        }
    }

    fn stored_user(&self, id: UserId) -> Result<UserRecord, v1::Error> {
        self.ctx
            .store
            .user(id)
            .map_err(internal)?
            .ok_or_else(|| v1::Error::new(ErrorCode::UserNotFound, "no such user"))
    }

    pub(super) fn get_profile(&mut self, command: v1::GetProfile) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        self.limit_lookups(identity.user)?;
        let user = self.find_user(&command.username)?;
        let record = self.stored_user(user)?;
        Ok(Body::Profile(self.profile(user, &record)))
    }

    pub(super) async fn set_profile(&mut self, command: v1::SetProfile) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let v1::SetProfile { display_name, avatar_file_id, status_text, share_receipts } = command;
        if display_name.is_none() && avatar_file_id.is_none() && status_text.is_none() && share_receipts.is_none() {
            return Err(invalid("set at least one of display_name, avatar_file_id, status_text, share_receipts"));
        }
        if identity.guest && (display_name.is_some() || avatar_file_id.is_some() || share_receipts.is_some()) {
            return Err(v1::Error::new(ErrorCode::Forbidden, "guests can change only their status text and presence"));
        }
        if let Some(name) = &display_name {
            if name.len() > MAX_DISPLAY_NAME_BYTES {
                return Err(invalid(format!(
                    "display_name is {} bytes; the limit is {MAX_DISPLAY_NAME_BYTES}",
                    name.len()
                )));
            }
            if name.chars().any(char::is_control) {
                return Err(invalid("display_name must not contain control characters"));
            }
        }
        if let Some(text) = &status_text {
            check_status_text(text)?;
        }
        super::files::check_avatar_id(avatar_file_id.as_deref())?;
        self.limit_lookups(identity.user)?;
        let before = self.stored_user(identity.user)?;
        let status_changed = status_text.as_ref().is_some_and(|text| *text != before.status_text);
        let changes = ProfileChanges { display_name, avatar_file_id, status_text, share_receipts, away: None };
        match self.ctx.writer.write(WriteOp::SetProfile { user: identity.user, changes }).await.map_err(internal)? {
            Ok(OpOutput::Done) => {}
            Ok(other) => return Err(unexpected(other)),
            Err(refused) => return Err(refusal(refused)),
        }
        if status_changed {
            let max_members = self.ctx.config.presence.max_room_members;
            self.ctx.hub.refresh_presence(identity.user, max_members, true).map_err(internal)?;
        }
        let record = self.stored_user(identity.user)?;
        Ok(Body::Profile(self.profile(identity.user, &record)))
    }

    pub(super) fn search_users(&mut self, command: v1::SearchUsers) -> Result<Body, v1::Error> {
        let identity = self.identity()?;
        let length = command.prefix.chars().count();
        if !(1..=MAX_PREFIX_CHARS).contains(&length) {
            return Err(invalid(format!("prefix must be 1 to {MAX_PREFIX_CHARS} characters")));
        }
        let limit = match command.limit {
            0 => DEFAULT_SEARCH_LIMIT,
            n if n <= MAX_SEARCH_LIMIT => n,
            n => return Err(invalid(format!("limit {n} exceeds the maximum of {MAX_SEARCH_LIMIT}"))),
        };
        self.limit_lookups(identity.user)?;
        let found = self.ctx.store.users_by_prefix(&command.prefix, limit as usize).map_err(internal)?;
        let profiles = found.iter().map(|(id, record)| self.profile(*id, record)).collect();
        Ok(Body::Profiles(v1::ProfileList { profiles }))
    }
}
