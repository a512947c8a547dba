//! The pushes that are not log events, for the sessions that resumed:
//! notifications of new messages (with each room's notification levels
//! cached), read states and receipts after a batch commits, and typing.

use std::collections::{HashMap, hash_map::Entry};

use confab_protocol::v1;

use super::{Hub, RoomEntry, SessionEntry, SessionId, SharedEvent, deliver, push};
use crate::{
    convert,
    ids::{RoomId, UserId},
    store::{AppendedEvent, EventKind, MessageBody, Notice, NotificationLevel},
};

/// Characters of a message a notification carries.
const EXCERPT_CHARS: usize = 100;

/// What a room's notifications need, loaded from the store at the room's
/// first message and kept current by the events and notices that change it.
pub(super) struct RoomNotifications {
    room_name: String,
    /// DEFAULT means ALL here (direct rooms and groups).
    default_all: bool,
    /// Joined members whose level is not DEFAULT.
    levels: HashMap<UserId, NotificationLevel>,
}

/// The reasons a notification gives; a message's notification frames are
/// built lazily, one slot per reason.
const REASONS: [v1::NotificationReason; 3] = [
    v1::NotificationReason::ReasonMessage,
    v1::NotificationReason::ReasonMention,
    v1::NotificationReason::ReasonRoomMention,
];

impl Hub {
    /// Keeps the room's cached notification settings current with a
    /// published event, and sends a new message's notifications to the
    /// room's followers (`entry`) whose level asks for one.
    pub(super) fn keep_notifications(
        &self,
        cache: &mut HashMap<RoomId, RoomNotifications>,
        sessions: &HashMap<SessionId, SessionEntry>,
        entry: &RoomEntry,
        appended: &AppendedEvent,
        sender: &Option<v1::User>,
    ) {
        let room = appended.room;
        match appended.record.kind.as_ref() {
            // A member who joins (again) starts at DEFAULT, one who leaves
            // has none.
            Some(EventKind::MemberJoined(_) | EventKind::MemberLeft(_)) => {
                if let Some(notifications) = cache.get_mut(&room) {
                    notifications.levels.remove(&appended.sender.id);
                }
            }
            Some(EventKind::RoomUpdated(updated)) => {
                if let (Some(name), Some(notifications)) = (&updated.name, cache.get_mut(&room)) {
                    notifications.room_name = name.clone();
                }
            }
            Some(EventKind::Message(body)) if !entry.subscribers.is_empty() => {
                let notifications = match cache.entry(room) {
                    Entry::Occupied(found) => found.into_mut(),
                    // Once per room (a store read under the hub's lock,
                    // which the cache keeps rare).
                    Entry::Vacant(vacant) => match self.store.notification_levels(room) {
                        Ok(Some((record, levels))) => vacant.insert(RoomNotifications {
                            default_all: record.notifies_all_by_default(),
                            room_name: record.name,
                            levels: levels.into_iter().collect(),
                        }),
                        Ok(None) => return,
                        Err(error) => {
                            tracing::error!(%error, room = room.0, "no notifications: reading the room failed");
                            return;
                        }
                    },
                };
                notify_message(notifications, sessions, entry, appended, body, sender);
            }
            _ => {}
        }
    }

    /// Delivers the pushes of a committed batch that are not room events.
    pub fn notify(&self, notices: &[Notice]) {
        // Who each shared receipt is from, read before taking the lock (a
        // name read a moment early is as good as one read under it).
        let mut lookup = convert::UserLookup::new(&self.store);
        let senders: Vec<Option<v1::User>> = notices
            .iter()
            .map(|notice| match notice {
                Notice::PositionMoved { user, shared: true, .. } => match lookup.get(user.0) {
                    Ok(summary) => Some(convert::user(&summary)),
                    Err(error) => {
                        tracing::error!(%error, "no receipt push: reading the user failed");
                        None
                    }
                },
                _ => None,
            })
            .collect();

        let mut state = self.lock();
        let state = &mut *state;
        for (notice, sender) in notices.iter().zip(senders) {
            match notice {
                Notice::PositionMoved { origin, user, room, read_moved, record, shared: _, unread, mentions } => {
                    if *read_moved && let Some(sessions) = state.users.get(user) {
                        let mut frame = SharedEvent::frame(push(v1::server_frame::Body::ReadState(v1::ReadState {
                            room_id: room.0,
                            read_seq: record.read_seq,
                            unread_count: *unread,
                            mention_count: *mentions,
                        })));
                        deliver(&state.sessions, sessions.iter().filter(|id| *id != origin), &mut frame);
                    }
                    // Only shared receipts have a sender.
                    let Some(sender) = sender else { continue };
                    let Some(entry) = state.rooms.get(room).filter(|e| !e.subscribers.is_empty()) else { continue };
                    let mut frame = SharedEvent::frame(push(v1::server_frame::Body::Receipt(v1::Receipt {
                        room_id: room.0,
                        user: Some(sender),
                        delivered_seq: record.delivered_seq,
                        read_seq: record.read_seq,
                        updated_at_ms: record.updated_at_ms,
                    })));
                    deliver(&state.sessions, entry.subscribers.iter(), &mut frame);
                }
                Notice::NotificationLevelSet { user, room, level } => {
                    if let Some(notifications) = state.notifications.get_mut(room) {
                        if *level == NotificationLevel::Default {
                            notifications.levels.remove(user);
                        } else {
                            notifications.levels.insert(*user, *level);
                        }
                    }
                }
            }
        }
    }

    /// Tells the room's followers, except the typist's own sessions, that
    /// `user` started or stopped typing.
    pub fn typing(&self, room: RoomId, user: v1::User, typing: bool, expires_in_ms: u32) {
        let state = self.lock();
        let Some(entry) = state.rooms.get(&room) else { return };
        let typist = UserId(user.user_id);
        let mut frame = SharedEvent::frame(push(v1::server_frame::Body::Typing(v1::Typing {
            room_id: room.0,
            user: Some(user),
            typing,
            expires_in_ms,
        })));
        let others =
            entry.subscribers.iter().filter(|id| state.sessions.get(id).is_some_and(|s| s.subscriber.user != typist));
        deliver(&state.sessions, others, &mut frame);
    }
}

/// Sends a new message's notification to each follower of the room, other
/// than the sender, whose level asks for it. A frame is built for a reason
/// only when someone gets it, and then shared by all who do.
fn notify_message(
    notifications: &RoomNotifications,
    sessions: &HashMap<SessionId, SessionEntry>,
    entry: &RoomEntry,
    appended: &AppendedEvent,
    body: &MessageBody,
    sender: &Option<v1::User>,
) {
    let mut frames: [Option<SharedEvent>; REASONS.len()] = Default::default();
    for id in &entry.subscribers {
        let Some(session) = sessions.get(id) else { continue };
        let subscriber = &session.subscriber;
        if subscriber.user == appended.sender.id {
            continue;
        }
        let reason = if body.mentions.contains(&subscriber.user.0) {
            v1::NotificationReason::ReasonMention
        } else if body.mentions_room {
            v1::NotificationReason::ReasonRoomMention
        } else {
            v1::NotificationReason::ReasonMessage
        };
        let level = notifications
            .levels
            .get(&subscriber.user)
            .copied()
            .unwrap_or(NotificationLevel::Default)
            .resolve(notifications.default_all);
        let wanted = match level {
            NotificationLevel::None => false,
            NotificationLevel::Mentions => reason != v1::NotificationReason::ReasonMessage,
            NotificationLevel::All | NotificationLevel::Default => true,
        };
        if !wanted {
            continue;
        }
        let slot = REASONS.iter().position(|r| *r == reason).unwrap_or_default();
        let frame = frames[slot].get_or_insert_with(|| {
            SharedEvent::frame(push(v1::server_frame::Body::Notification(v1::Notification {
                room_id: appended.room.0,
                seq: appended.seq,
                sender: sender.clone(),
                reason: reason as i32,
                excerpt: body.text.chars().take(EXCERPT_CHARS).collect(),
                room_name: notifications.room_name.clone(),
            })))
        });
        subscriber.outbox.push(frame.bytes(subscriber.encoding));
    }
}
