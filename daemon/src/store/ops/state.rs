//! Room settings, notification levels, read markers and receipts, and
//! profiles.

use redb::WriteTransaction;

use super::{OpResult, Refusal};
use crate::{
    ids::{RoomId, UserId},
    store::{StoreError, records::*, writer::Batch},
};

/// The settings an UpdateRoom changes (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomChanges {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub avatar_file_id: Option<String>,
    pub archived: Option<bool>,
}

/// The profile fields a SetProfile changes (`None`: unchanged).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileChanges {
    pub display_name: Option<String>,
    pub avatar_file_id: Option<String>,
    pub status_text: Option<String>,
    pub share_receipts: Option<bool>,
    /// SetPresence without `this_device_only`.
    pub away: Option<bool>,
}

pub(super) fn update_room(
    _txn: &WriteTransaction,
    _batch: &mut Batch,
    _user: UserId,
    _room: RoomId,
    _changes: RoomChanges,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn set_notification_level(
    _txn: &WriteTransaction,
    _user: UserId,
    _room: RoomId,
    _level: NotificationLevel,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn mark_read(
    _txn: &WriteTransaction,
    _batch: &mut Batch,
    _user: UserId,
    _room: RoomId,
    _seq: u64,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn mark_delivered(
    _txn: &WriteTransaction,
    _batch: &mut Batch,
    _user: UserId,
    _room: RoomId,
    _seq: u64,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn set_profile(
    _txn: &WriteTransaction,
    _user: UserId,
    _changes: ProfileChanges,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn set_last_seen(_txn: &WriteTransaction, _user: UserId, _at_ms: u64) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}
