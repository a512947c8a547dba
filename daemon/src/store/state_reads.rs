//! Reads of per-user state: read markers and unread counts, receipts,
//! notification levels, user search and the room directory.

use std::{cmp::Reverse, collections::BinaryHeap};

use redb::{ReadableDatabase as _, ReadableTable};

use super::{Store, StoreError, records::*, tables::*};
use crate::ids::{RoomId, UserId};

/// Where a member's read marker stands in a room, and what lies after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub read_seq: u64,
    pub delivered_seq: u64,
    /// Messages after `read_seq` (the sender's own move their marker, so
    /// these are someone else's), capped at `u32::MAX`.
    pub unread: u32,
    /// Of those, the ones that mention the member (by name or @room).
    pub mentions: u32,
}

/// Unread messages and mentions after `read_seq`, for a room whose running
/// message count is `message_count`. Shared by reads and write operations.
pub(super) fn counts(
    events: &impl ReadableTable<(u64, u64), Record<EventRecord>>,
    mentions: &impl ReadableTable<(u64, u64, u64), ()>,
    room: RoomId,
    message_count: u64,
    user: UserId,
    read_seq: u64,
) -> Result<(u32, u32), StoreError> {
    let through = match read_seq {
        0 => 0,
        seq => events.get((room.0, seq))?.map_or(0, |event| event.value().messages_through),
    };
    let unread = message_count.saturating_sub(through).min(u64::from(u32::MAX)) as u32;
    let mut mentioned = 0u32;
    for entry in mentions.range((user.0, room.0, read_seq.saturating_add(1))..=(user.0, room.0, u64::MAX))? {
        entry?;
        mentioned = mentioned.saturating_add(1);
    }
    Ok((unread, mentioned))
}

/// A receipt GetReceipts may list, ordered by how recent it is: by update
/// time, and at equal times the lower user id counts as the newer (and is
/// listed first).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    updated_at_ms: u64,
    user: Reverse<u64>,
    read_seq: u64,
    delivered_seq: u64,
}

impl NotificationLevel {
    /// The level that applies: DEFAULT resolved for a room where members
    /// hear of every message by default (`default_all`) or not.
    pub fn resolve(self, default_all: bool) -> Self {
        match self {
            NotificationLevel::Default if default_all => NotificationLevel::All,
            NotificationLevel::Default => NotificationLevel::Mentions,
            other => other,
        }
    }
}

impl RoomRecord {
    /// Whether members hear of every message unless they chose otherwise.
    pub fn notifies_all_by_default(&self) -> bool {
        self.kind() == RoomKind::Direct || self.group
    }
}

impl Store {
    /// A member's read marker, delivered receipt and unread counts in a
    /// room; `None` when they have no position there.
    pub fn position(&self, room: RoomId, user: UserId) -> Result<Option<Position>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(state) = txn.open_table(READ_STATES)?.get((room.0, user.0))?.map(|v| v.value()) else {
            return Ok(None);
        };
        let message_count = txn.open_table(ROOMS)?.get(room.0)?.map_or(0, |r| r.value().message_count);
        let (unread, mentions) =
            counts(&txn.open_table(EVENTS)?, &txn.open_table(MENTIONS)?, room, message_count, user, state.read_seq)?;
        Ok(Some(Position { read_seq: state.read_seq, delivered_seq: state.delivered_seq, unread, mentions }))
    }

    /// The receipts other members may see: joined members who share them
    /// and have received or read something. Of those, the `limit` most
    /// recently updated (GetReceipts passes `[presence] max_room_members`),
    /// newest first, ties in user id order.
    pub fn receipts(&self, room: RoomId, limit: usize) -> Result<Vec<(UserId, ReadStateRecord)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read()?;
        let states = txn.open_table(READ_STATES)?;
        let memberships = txn.open_table(MEMBERSHIPS)?;
        let users = txn.open_table(USERS)?;
        // The newest so far, oldest on top.
        let mut newest: BinaryHeap<Reverse<Listed>> = BinaryHeap::new();
        for entry in states.range((room.0, 0)..=(room.0, u64::MAX))? {
            let (key, state) = entry?;
            let user = key.value().1;
            let state = state.value();
            if state.read_seq == 0 && state.delivered_seq == 0 {
                continue;
            }
            let candidate = Listed {
                updated_at_ms: state.updated_at_ms,
                user: Reverse(user),
                read_seq: state.read_seq,
                delivered_seq: state.delivered_seq,
            };
            if newest.len() >= limit && newest.peek().is_some_and(|Reverse(oldest)| candidate <= *oldest) {
                continue;
            }
            if !memberships.get((room.0, user))?.is_some_and(|m| m.value().is_joined()) {
                continue;
            }
            if users.get(user)?.is_none_or(|u| u.value().receipts_private) {
                continue;
            }
            newest.push(Reverse(candidate));
            if newest.len() > limit {
                newest.pop();
            }
        }
        Ok(newest
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(Listed { updated_at_ms, user: Reverse(user), read_seq, delivered_seq })| {
                (UserId(user), ReadStateRecord { read_seq, delivered_seq, updated_at_ms })
            })
            .collect())
    }

    /// Registered users whose name starts with `prefix` (any case), in name
    /// order, at most `limit`.
    pub fn users_by_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<(UserId, UserRecord)>, StoreError> {
        let txn = self.db.begin_read()?;
        let names = txn.open_table(USER_NAMES)?;
        let users = txn.open_table(USERS)?;
        let prefix = prefix.to_lowercase();
        let mut found = Vec::new();
        for entry in names.range(prefix.as_str()..)? {
            if found.len() >= limit {
                break;
            }
            let (name, id) = entry?;
            if !name.value().starts_with(prefix.as_str()) {
                break;
            }
            let id = id.value();
            if let Some(record) = users.get(id)?.map(|v| v.value()) {
                found.push((UserId(id), record));
            }
        }
        Ok(found)
    }

    /// Public rooms whose name or topic contains `query` (any case); every
    /// public room when it is empty.
    pub fn search_public_rooms(&self, query: &str) -> Result<Vec<(RoomId, RoomRecord)>, StoreError> {
        let query = query.to_lowercase();
        let mut rooms = self.public_rooms()?;
        if !query.is_empty() {
            rooms.retain(|(_, record)| {
                record.name.to_lowercase().contains(&query) || record.topic.to_lowercase().contains(&query)
            });
        }
        Ok(rooms)
    }

    /// The rooms `user` joined that have at most `max_members` members:
    /// the rooms their presence travels through.
    pub fn small_joined_rooms(&self, user: UserId, max_members: u32) -> Result<Vec<RoomId>, StoreError> {
        let txn = self.db.begin_read()?;
        let user_rooms = txn.open_table(USER_ROOMS)?;
        let rooms = txn.open_table(ROOMS)?;
        let mut found = Vec::new();
        for entry in user_rooms.range((user.0, 0)..=(user.0, u64::MAX))? {
            let (key, state) = entry?;
            if state.value() != MembershipState::Joined as i32 {
                continue;
            }
            let room = key.value().1;
            if rooms.get(room)?.is_some_and(|r| r.value().joined_count <= max_members) {
                found.push(RoomId(room));
            }
        }
        Ok(found)
    }

    /// What sending notifications for `room` needs: the room, and its
    /// joined members whose level is not the default. `None` for an unknown
    /// room.
    #[allow(clippy::type_complexity)]
    pub fn notification_levels(
        &self,
        room: RoomId,
    ) -> Result<Option<(RoomRecord, Vec<(UserId, NotificationLevel)>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(record) = txn.open_table(ROOMS)?.get(room.0)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let memberships = txn.open_table(MEMBERSHIPS)?;
        let mut levels = Vec::new();
        for entry in memberships.range((room.0, 0)..=(room.0, u64::MAX))? {
            let (key, membership) = entry?;
            let membership = membership.value();
            let level = membership.notification_level();
            if membership.is_joined() && level != NotificationLevel::Default {
                levels.push((UserId(key.value().1), level));
            }
        }
        Ok(Some((record, levels)))
    }
}
