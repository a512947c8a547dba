//! Presence: a user is present while one of their sessions is resumed,
//! ONLINE unless every such session is idle or they chose AWAY. The hub
//! pushes a user's presence when it changes to the resumed sessions of
//! everyone who shares a small enough joined room with them, and remembers
//! when a user's last session ended until the store has it.

use std::collections::HashSet;

use confab_protocol::v1;

use super::{Hub, SessionId, SharedEvent, State, deliver, detach, push};
use crate::{
    convert,
    ids::UserId,
    store::{StoreError, UserRecord, UserSummary, now_ms},
};

/// A user's presence as last pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Shown {
    state: v1::PresenceState,
    status_text: String,
}

impl Hub {
    /// Marks a resumed session's device idle or not. False when the session
    /// is not resumed (it counts for presence only once it is).
    pub fn set_device_away(&self, session: SessionId, away: bool) -> bool {
        match self.lock().sessions.get_mut(&session) {
            Some(entry) => {
                entry.away = away;
                true
            }
            None => false,
        }
    }

    /// `user`'s presence as others see it: their state, and when their last
    /// session ended (0 while they have one). `record` is their stored
    /// record.
    pub fn presence(&self, user: UserId, record: &UserRecord) -> (v1::PresenceState, u64) {
        let (shown, remembered) = {
            let state = self.lock();
            (aggregate(&state, user, record.away), state.last_seen.get(&user).copied())
        };
        let last_seen = match (shown, remembered) {
            (v1::PresenceState::Offline, Some(at)) => record.last_seen_ms.max(at),
            // Forgotten once stored, maybe after `record` was read: read
            // it again, now that the store has it.
            (v1::PresenceState::Offline, None) => match self.store.user(user) {
                Ok(Some(fresh)) => record.last_seen_ms.max(fresh.last_seen_ms),
                Ok(None) => record.last_seen_ms,
                Err(error) => {
                    tracing::warn!(%error, "reading when the user was last seen failed");
                    record.last_seen_ms
                }
            },
            _ => 0,
        };
        (shown, last_seen)
    }

    /// Recomputes `user`'s presence from their sessions and stored choice,
    /// and pushes it where it travels when it changed (or, with `force`, in
    /// any case: the status text changed). `max_room_members`: presence
    /// travels through rooms of at most this many members.
    ///
    /// The store is read before the hub's lock is taken: the record (their
    /// choice and status), then, when there is something to push, their
    /// small rooms. A join or leave between that read and the lock can
    /// leave a newcomer without this push or an old room's followers with
    /// one more: harmless, presence is a best-effort push, and newcomers
    /// ask with GetProfile. What is pushed is right: the state is computed
    /// under the lock from the session table, and refreshes take turns
    /// (`presence_turn`), each reading the record within its turn, so the
    /// last refresh pushes the record as the last write asking for one
    /// left it.
    pub fn refresh_presence(&self, user: UserId, max_room_members: u32, force: bool) -> Result<(), StoreError> {
        let _turn = self.presence_turn.lock().expect("presence turn");
        let record = self.store.user(user)?.unwrap_or_default();
        if !force && !compare(&self.lock(), user, &record).1 {
            return Ok(());
        }
        // Something to push, most likely: who to.
        let rooms = self.store.small_joined_rooms(user, max_room_members)?;
        let summary = UserSummary::of(user, &record);

        let mut state = self.lock();
        // Sessions may have come or gone meanwhile: compare again.
        let (now, changed) = compare(&state, user, &record);
        let last_seen_ms = match now.state {
            v1::PresenceState::Offline => {
                state.shown.remove(&user);
                record.last_seen_ms.max(state.last_seen.get(&user).copied().unwrap_or(0))
            }
            _ => {
                state.shown.insert(user, now.clone());
                state.last_seen.remove(&user);
                0
            }
        };
        if !changed && !force {
            return Ok(());
        }
        let mut audience: HashSet<SessionId> = state.users.get(&user).cloned().unwrap_or_default();
        for room in rooms {
            if let Some(entry) = state.rooms.get(&room) {
                audience.extend(entry.subscribers.iter().copied());
            }
        }
        let mut frame = SharedEvent::frame(push(v1::server_frame::Body::Presence(v1::Presence {
            user: Some(convert::user(&summary)),
            state: now.state as i32,
            status_text: now.status_text,
            last_seen_ms,
        })));
        deliver(&state.sessions, audience.iter(), &mut frame);
        Ok(())
    }

    /// Stops all delivery to a session that ended (or logged out). When it
    /// was its user's last resumed session, the user goes offline: answers
    /// when, for the caller to store (`SetLastSeen`) and then to report
    /// stored (`last_seen_stored`).
    pub fn depart(&self, session: SessionId, max_room_members: u32) -> Option<u64> {
        let (user, ended) = {
            let mut state = self.lock();
            let user = state.sessions.get(&session).map(|entry| entry.subscriber.user)?;
            detach(&mut state, session);
            let ended = if state.users.contains_key(&user) {
                None
            } else {
                let at = now_ms();
                state.last_seen.insert(user, at);
                Some(at)
            };
            (user, ended)
        };
        // Offline now, or still present elsewhere, where the session that
        // ended may have been the only one awake (or away).
        if let Err(error) = self.refresh_presence(user, max_room_members, false) {
            tracing::error!(%error, "no presence push: reading the user failed");
        }
        ended
    }

    /// The store has `user`'s last-seen time `at_ms` (from `depart`):
    /// forgets it here, unless the user came and went again meanwhile.
    /// Takes its turn with refreshes, so none sees neither this entry nor
    /// the stored time.
    pub fn last_seen_stored(&self, user: UserId, at_ms: u64) {
        let _turn = self.presence_turn.lock().expect("presence turn");
        let mut state = self.lock();
        if state.last_seen.get(&user) == Some(&at_ms) {
            state.last_seen.remove(&user);
        }
    }
}

/// `user`'s presence now, from their sessions and `record`, and whether it
/// differs from what was last pushed.
fn compare(state: &State, user: UserId, record: &UserRecord) -> (Shown, bool) {
    let now = Shown { state: aggregate(state, user, record.away), status_text: record.status_text.clone() };
    let changed = match now.state {
        v1::PresenceState::Offline => state.shown.contains_key(&user),
        _ => state.shown.get(&user) != Some(&now),
    };
    (now, changed)
}

/// A user's presence from their resumed sessions and whether they chose
/// AWAY everywhere.
fn aggregate(state: &State, user: UserId, chose_away: bool) -> v1::PresenceState {
    let mut sessions = state.users.get(&user).into_iter().flatten().filter_map(|id| state.sessions.get(id)).peekable();
    if sessions.peek().is_none() {
        v1::PresenceState::Offline
    } else if chose_away || sessions.all(|session| session.away) {
        v1::PresenceState::Away
    } else {
        v1::PresenceState::Online
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use confab_protocol::Encoding;

    use super::*;
    use crate::{
        hub::Subscriber,
        outbox::Outbox,
        store::{OpOutput, Store, TokenGrant, WriteOp, Writer},
    };

    /// The hub remembers when a user was last seen only until the store
    /// has it, and still answers it afterwards (from the store), even to a
    /// caller holding a record read before the write.
    #[tokio::test]
    async fn last_seen_is_forgotten_once_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.redb")).unwrap();
        let hub = Arc::new(Hub::new(store.clone(), 1000, usize::MAX));
        let writer = Writer::start(store.database(), hub.clone());
        let handle = writer.handle();
        let grant = TokenGrant { hash: [1; 32], expires_at_ms: u64::MAX };
        let op =
            WriteOp::Register { name: "alice".into(), password_hash: String::new(), device_name: String::new(), grant };
        let OpOutput::User { user, .. } = handle.write(op).await.unwrap().unwrap() else { panic!() };
        let stale = store.user(user).unwrap().unwrap();
        let subscriber =
            |id| Subscriber { id, user, encoding: Encoding::Proto, outbox: Arc::new(Outbox::new(u64::MAX)) };

        hub.resume(subscriber(1), &[]).unwrap();
        hub.refresh_presence(user, 500, false).unwrap();
        assert_eq!(hub.presence(user, &stale), (v1::PresenceState::Online, 0));
        let at = hub.depart(1, 500).expect("her last session");
        assert_eq!(hub.presence(user, &stale), (v1::PresenceState::Offline, at));
        assert_eq!(hub.lock().last_seen.get(&user), Some(&at));

        handle.write(WriteOp::SetLastSeen { user, at_ms: at }).await.unwrap().unwrap();
        hub.last_seen_stored(user, at);
        assert!(hub.lock().last_seen.is_empty());
        assert_eq!(hub.presence(user, &stale), (v1::PresenceState::Offline, at), "read again from the store");

        // Back and gone again: a report of another time keeps the entry.
        hub.resume(subscriber(2), &[]).unwrap();
        hub.refresh_presence(user, 500, false).unwrap();
        assert!(hub.lock().last_seen.is_empty(), "present: nothing to remember");
        let again = hub.depart(2, 500).expect("her last session");
        hub.last_seen_stored(user, again + 1);
        assert_eq!(hub.lock().last_seen.get(&user), Some(&again));
        writer.stop().await;
    }
}
