//! Message commands: SendMessage and GetHistory. (Resume lives with the
//! session driver, which owns the subscription.)

use confab_protocol::{
    Encoding,
    v1::{self, ErrorCode, server_frame::Body},
};

use super::{
    Reply, Session,
    account::{refusal, unexpected},
    internal, rate_limited,
};
use crate::{
    context::check,
    convert,
    ids::{RoomId, Seq},
    store::{OpOutput, RoomKind, StoreError, WriteOp},
};

const MAX_TXN_ID: usize = 64;

impl Session {
    pub(super) async fn send_message(&mut self, send: v1::SendMessage) -> Reply {
        match self.prepare_send(send) {
            Ok(op) => match self.ctx.writer.submit(op).await {
                // The write is queued in command order; the reply follows
                // once it is durable, while this session reads on.
                Ok(answer) => Reply::Later(Box::pin(async move {
                    let result = answer.await.map_err(|_| StoreError::Closed).and_then(|r| r);
                    match result.map_err(internal)?.map_err(refusal)? {
                        OpOutput::Sent { room, epoch, seq, time_ms, duplicate } => Ok(Body::Sent(v1::SendResult {
                            room_id: room.0,
                            epoch,
                            seq,
                            server_time_ms: time_ms,
                            duplicate,
                        })),
                        other => Err(unexpected(other)),
                    }
                })),
                Err(error) => Reply::Now(Err(internal(error))),
            },
            Err(error) => Reply::Now(Err(error)),
        }
    }

    fn prepare_send(&self, send: v1::SendMessage) -> Result<WriteOp, v1::Error> {
        let identity = self.identity()?;
        if send.client_txn_id.is_empty() || send.client_txn_id.len() > MAX_TXN_ID {
            return Err(v1::Error::new(
                ErrorCode::InvalidArgument,
                format!("client_txn_id must be 1 to {MAX_TXN_ID} bytes"),
            ));
        }
        if send.text.trim().is_empty() {
            return Err(v1::Error::new(ErrorCode::InvalidArgument, "text must not be empty"));
        }
        let max = self.ctx.config.limits.max_message_bytes as usize;
        if send.text.len() > max {
            return Err(v1::Error::new(
                ErrorCode::MessageTooLong,
                format!("text is {} bytes; the limit is {max}", send.text.len()),
            ));
        }
        let limiter = if identity.guest { &self.ctx.limiters.guest_sends } else { &self.ctx.limiters.sends };
        let admitted = self.visible_room(send.room.as_ref()).and_then(|room| {
            check(limiter, &identity.user).map_err(|wait| rate_limited(wait, "messages"))?;
            Ok(room.id)
        });
        let room = match admitted {
            Ok(room) => room,
            // A retry gets its original result (IDEM-2) whatever changed
            // since, rate limit and membership included; only a refused send
            // pays for this lookup. The writer compares room and text and
            // answers the first result or TXN_CONFLICT.
            Err(refused) => match self.ctx.store.txn(identity.user, &send.client_txn_id).map_err(internal)? {
                Some(claimed) => self.claimed_room(send.room.as_ref(), RoomId(claimed.room_id))?,
                None => return Err(refused),
            },
        };
        Ok(WriteOp::Send {
            user: identity.user,
            room,
            txn_id: send.client_txn_id,
            content: crate::store::MessageContent { text: send.text, ..Default::default() },
        })
    }

    /// The room a retried send names, resolved without visibility checks:
    /// the first send already passed them.
    fn claimed_room(&self, room: Option<&v1::RoomRef>, claimed: RoomId) -> Result<RoomId, v1::Error> {
        Ok(match room.and_then(|r| r.room.as_ref()) {
            Some(v1::room_ref::Room::Id(id)) => RoomId(*id),
            Some(v1::room_ref::Room::Name(name)) => {
                let name = name.strip_prefix('#').unwrap_or(name);
                self.ctx.store.room_by_name(name).map_err(internal)?.map_or(RoomId(0), |(id, _)| id)
            }
            None => claimed,
        })
    }

    pub(super) fn get_history(&mut self, get: v1::GetHistory) -> Result<Body, v1::Error> {
        let room = self.visible_room(get.room.as_ref())?;
        if room.record.kind() != RoomKind::Public && !room.joined() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "join the room to read its history"));
        }
        let max = self.ctx.config.limits.max_history_page;
        let limit = match get.limit {
            0 => max,
            n if n <= max => n,
            n => {
                return Err(v1::Error::new(
                    ErrorCode::InvalidArgument,
                    format!("limit {n} exceeds the maximum page of {max}"),
                ));
            }
        } as usize;
        let head = room.record.head_seq;
        let store = &self.ctx.store;
        let (events, has_more) = match v1::HistoryDirection::try_from(get.direction) {
            Ok(v1::HistoryDirection::Backward) => {
                let before = if get.anchor_seq == 0 { head + 1 } else { get.anchor_seq.min(head + 1) };
                if before <= 1 {
                    (Vec::new(), false)
                } else {
                    let mut events =
                        store.events(room.id, Seq(1), Seq(before - 1), limit + 1, true).map_err(internal)?;
                    let more = events.len() > limit;
                    if more {
                        events.remove(0);
                    }
                    (events, more)
                }
            }
            Ok(v1::HistoryDirection::Forward) => {
                let mut events = store
                    .events(room.id, Seq(get.anchor_seq.saturating_add(1)), Seq(head), limit + 1, false)
                    .map_err(internal)?;
                let more = events.len() > limit;
                events.truncate(limit);
                (events, more)
            }
            Err(_) => return Err(v1::Error::new(ErrorCode::InvalidArgument, "direction must be BACKWARD or FORWARD")),
        };
        let mut lookup = convert::UserLookup::new(store);
        let mut events = events
            .iter()
            .map(|(seq, record)| lookup.event(room.id.0, room.record.epoch, seq.0, record))
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        // A page stays well inside the session's outbound queue: fewer
        // events (the ones nearest the anchor) and `has_more` instead.
        let budget = self.ctx.config.limits.max_outbound_queue_bytes as usize / 2;
        let backward = get.direction != v1::HistoryDirection::Forward as i32;
        let encoding = self.encoding;
        let kept = if backward {
            fitting(events.iter().rev(), budget, encoding)
        } else {
            fitting(events.iter(), budget, encoding)
        };
        let has_more = has_more || kept < events.len();
        if backward {
            events.drain(..events.len() - kept);
        } else {
            events.truncate(kept);
        }
        Ok(Body::History(v1::HistoryPage {
            room_id: room.id.0,
            epoch: room.record.epoch,
            events,
            has_more,
            head_seq: head,
            ..Default::default()
        }))
    }
}

/// How many of `events`, taken in order, fit in `budget` bytes of
/// `encoding` (always at least one).
fn fitting<'a>(events: impl Iterator<Item = &'a v1::RoomEvent>, budget: usize, encoding: Encoding) -> usize {
    let mut size = 0;
    let mut count = 0;
    for event in events {
        size += match encoding {
            Encoding::Proto => prost::Message::encoded_len(event),
            Encoding::Json => serde_json::to_vec(event).map_or(0, |json| json.len()),
        };
        if count > 0 && size > budget {
            break;
        }
        count += 1;
    }
    count
}
