//! Message commands: SendMessage and GetHistory, and the paging GetThread
//! shares. (Resume lives with the
//! session driver, which owns the subscription.)

use confab_protocol::{
    Encoding, markup,
    v1::{self, ErrorCode, server_frame::Body},
};

use super::{
    Reply, Session,
    account::{refusal, unexpected},
    internal, invalid, rate_limited,
    rooms::VisibleRoom,
};
use crate::{
    context::check,
    convert,
    ids::{RoomId, Seq, UserId},
    store::{EventRecord, LocationRecord, MessageContent, OpOutput, RoomKind, StoreError, WriteOp},
};

const MAX_TXN_ID: usize = 64;
/// Longest location label, in bytes.
const MAX_LOCATION_LABEL: usize = 256;

/// The mentions of a text, parsed for the writer.
pub(super) struct Mentions {
    pub names: Vec<String>,
    pub guests: Vec<UserId>,
    pub room: bool,
}

impl Session {
    pub(super) async fn send_message(&mut self, send: v1::SendMessage) -> Reply {
        match self.prepare_send(send) {
            Ok(op) => self.submit_sent(op).await,
            Err(error) => Reply::Now(Err(error)),
        }
    }

    /// Queues a write that answers SendResult; the reply follows once it is
    /// durable, while this session reads on.
    pub(super) async fn submit_sent(&self, op: WriteOp) -> Reply {
        match self.ctx.writer.submit(op).await {
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
        let content = self.content(&send)?;
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
        Ok(WriteOp::Send { user: identity.user, room, txn_id: send.client_txn_id, content })
    }

    /// The content of a send, checked for shape (the writer checks what
    /// depends on the store: the reply target, the thread, the files).
    fn content(&self, send: &v1::SendMessage) -> Result<MessageContent, v1::Error> {
        if send.text.trim().is_empty() && send.attachment_ids.is_empty() && send.location.is_none() {
            return Err(invalid("text must not be empty (unless the message has attachments or a location)"));
        }
        self.check_text_length(&send.text)?;
        let max = self.ctx.config.files.max_attachments as usize;
        if send.attachment_ids.len() > max {
            return Err(invalid(format!(
                "{} attachments; a message may have at most {max}",
                send.attachment_ids.len()
            )));
        }
        for (i, id) in send.attachment_ids.iter().enumerate() {
            if send.attachment_ids[..i].contains(id) {
                return Err(invalid(format!("attachment {id:?} is listed twice")));
            }
        }
        let location = match &send.location {
            None => None,
            Some(location) => {
                if !(location.latitude.is_finite() && (-90.0..=90.0).contains(&location.latitude)) {
                    return Err(invalid("latitude must be between -90 and 90"));
                }
                if !(location.longitude.is_finite() && (-180.0..=180.0).contains(&location.longitude)) {
                    return Err(invalid("longitude must be between -180 and 180"));
                }
                if location.label.len() > MAX_LOCATION_LABEL {
                    return Err(invalid(format!("the location label must be at most {MAX_LOCATION_LABEL} bytes")));
                }
                Some(LocationRecord {
                    latitude: location.latitude,
                    longitude: location.longitude,
                    label: location.label.clone(),
                })
            }
        };
        let mentions = self.mentions(&send.text);
        Ok(MessageContent {
            text: send.text.clone(),
            reply_to_seq: send.reply_to_seq,
            thread_root_seq: send.thread_root_seq,
            mention_names: mentions.names,
            mention_guests: mentions.guests,
            mentions_room: mentions.room,
            attachment_ids: send.attachment_ids.clone(),
            location,
        })
    }

    /// What `text` mentions: the names (the writer keeps those of joined
    /// members), the connected guests holding some of them (guests have no
    /// entry in the store's name index; only the session knows them), and
    /// whether it mentions `@room`.
    pub(super) fn mentions(&self, text: &str) -> Mentions {
        let parsed = markup::mentions(text);
        let guests = parsed.names.iter().filter_map(|name| self.ctx.guests.holder(name)).collect();
        Mentions { names: parsed.names, guests, room: parsed.room }
    }

    /// MESSAGE_TOO_LONG beyond `limits.max_message_bytes`.
    pub(super) fn check_text_length(&self, text: &str) -> Result<(), v1::Error> {
        let max = self.ctx.config.limits.max_message_bytes as usize;
        if text.len() > max {
            return Err(v1::Error::new(
                ErrorCode::MessageTooLong,
                format!("text is {} bytes; the limit is {max}", text.len()),
            ));
        }
        Ok(())
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
        let room = self.readable_room(get.room.as_ref())?;
        let limit = self.page_limit(get.limit)?;
        let head = room.record.head_seq;
        let store = &self.ctx.store;
        let backward = direction(get.direction)?;
        let (events, has_more) = if backward {
            let before = if get.anchor_seq == 0 { head + 1 } else { get.anchor_seq.min(head + 1) };
            if before <= 1 {
                (Vec::new(), false)
            } else {
                let events = store.events(room.id, Seq(1), Seq(before - 1), limit + 1, true).map_err(internal)?;
                trim_page(events, limit, true)
            }
        } else {
            let events = store
                .events(room.id, Seq(get.anchor_seq.saturating_add(1)), Seq(head), limit + 1, false)
                .map_err(internal)?;
            trim_page(events, limit, false)
        };
        let mut lookup = convert::UserLookup::new(store);
        let (events, has_more) = self.page(&mut lookup, &room, events, has_more, backward)?;
        Ok(Body::History(v1::HistoryPage {
            room_id: room.id.0,
            epoch: room.record.epoch,
            events,
            has_more,
            head_seq: head,
            ..Default::default()
        }))
    }

    /// A room whose log the session may read (HIST-1): joined, or public.
    pub(super) fn readable_room(&self, room: Option<&v1::RoomRef>) -> Result<VisibleRoom, v1::Error> {
        let room = self.visible_room(room)?;
        if room.record.kind() != RoomKind::Public && !room.joined() {
            return Err(v1::Error::new(ErrorCode::NotAMember, "join the room to read its history"));
        }
        Ok(room)
    }

    /// A page size: 0 is the server's maximum.
    pub(super) fn page_limit(&self, limit: u32) -> Result<usize, v1::Error> {
        let max = self.ctx.config.limits.max_history_page;
        match limit {
            0 => Ok(max as usize),
            n if n <= max => Ok(n as usize),
            n => {
                Err(v1::Error::new(ErrorCode::InvalidArgument, format!("limit {n} exceeds the maximum page of {max}")))
            }
        }
    }

    /// Converts a page of events, keeping it well inside the session's
    /// outbound queue: fewer events (those nearest the anchor) and
    /// `has_more` instead.
    pub(super) fn page(
        &self,
        lookup: &mut convert::UserLookup<'_>,
        room: &VisibleRoom,
        events: Vec<(Seq, EventRecord)>,
        has_more: bool,
        backward: bool,
    ) -> Result<(Vec<v1::RoomEvent>, bool), v1::Error> {
        let mut events = events
            .iter()
            .map(|(seq, record)| lookup.event(room.id.0, room.record.epoch, seq.0, record))
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        let budget = self.ctx.config.limits.max_outbound_queue_bytes as usize / 2;
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
        Ok((events, has_more))
    }
}

/// Whether a page goes backward (else forward).
pub(super) fn direction(direction: i32) -> Result<bool, v1::Error> {
    match v1::HistoryDirection::try_from(direction) {
        Ok(v1::HistoryDirection::Backward) => Ok(true),
        Ok(v1::HistoryDirection::Forward) => Ok(false),
        Err(_) => Err(v1::Error::new(ErrorCode::InvalidArgument, "direction must be BACKWARD or FORWARD")),
    }
}

/// Drops the one event read beyond `limit` (the farthest from the anchor)
/// and says whether there was one.
pub(super) fn trim_page(
    mut events: Vec<(Seq, EventRecord)>,
    limit: usize,
    backward: bool,
) -> (Vec<(Seq, EventRecord)>, bool) {
    let more = events.len() > limit;
    if more {
        if backward {
            events.remove(0);
        } else {
            events.truncate(limit);
        }
    }
    (events, more)
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
