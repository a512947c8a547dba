//! Message operations: send (with replies, threads, mentions, attachments
//! and locations), edit, delete and react.

use redb::{ReadableTable as _, WriteTransaction};
use sha2::{Digest, Sha256};

use super::{OpOutput, OpResult, Refusal, membership, outsider, room_record};
use crate::{
    ids::{RoomId, UserId},
    store::{StoreError, records::*, tables::*, writer::Batch},
};

/// What a SendMessage asks to append, checked for shape by the session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageContent {
    pub text: String,
    pub reply_to_seq: u64,
    pub thread_root_seq: u64,
    /// The names the text mentions with `@name` (lowercase, deduplicated);
    /// the operation keeps those that are members of the room.
    pub mention_names: Vec<String>,
    pub mentions_room: bool,
    pub attachment_ids: Vec<String>,
    pub location: Option<LocationRecord>,
}

impl MessageContent {
    /// A plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Default::default() }
    }
}

pub(super) fn send(
    txn: &WriteTransaction,
    batch: &mut Batch,
    user: UserId,
    room: RoomId,
    txn_id: String,
    content: MessageContent,
) -> Result<OpResult, StoreError> {
    let text = content.text;
    let digest = Sha256::digest(text.as_bytes()).to_vec();
    let mut txns = txn.open_table(TXNS)?;
    if let Some(claimed) = txns.get((user.0, txn_id.as_str()))?.map(|v| v.value()) {
        if claimed.room_id != room.0 || claimed.text_digest != digest {
            return Ok(Err(Refusal::TxnConflict));
        }
        let epoch = room_record(txn, room)?.map(|r| r.epoch).unwrap_or(1);
        return Ok(Ok(OpOutput::Sent { room, epoch, seq: claimed.seq, time_ms: claimed.time_ms, duplicate: true }));
    }
    let Some(record) = room_record(txn, room)? else {
        return Ok(Err(Refusal::RoomNotFound));
    };
    let current = membership(&txn.open_table(MEMBERSHIPS)?, room, user)?;
    if !current.as_ref().is_some_and(|m| m.is_joined()) {
        return Ok(Err(outsider(&record, current.as_ref())));
    }
    let kind = EventKind::Message(MessageBody { text, client_txn_id: txn_id.clone(), ..Default::default() });
    let seq = batch.append(txn, room, user, kind)?;
    let time_ms = batch.now_ms;
    txns.insert((user.0, txn_id.as_str()), TxnRecord { room_id: room.0, seq, time_ms, text_digest: digest })?;
    Ok(Ok(OpOutput::Sent { room, epoch: record.epoch, seq, time_ms, duplicate: false }))
}

pub(super) fn edit(
    _txn: &WriteTransaction,
    _batch: &mut Batch,
    _user: UserId,
    _room: RoomId,
    _seq: u64,
    _text: String,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn delete(
    _txn: &WriteTransaction,
    _batch: &mut Batch,
    _user: UserId,
    _room: RoomId,
    _seq: u64,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}

pub(super) fn react(
    _txn: &WriteTransaction,
    _batch: &mut Batch,
    _user: UserId,
    _room: RoomId,
    _seq: u64,
    _emoji: String,
    _remove: bool,
) -> Result<OpResult, StoreError> {
    Ok(Err(Refusal::Invalid("not implemented yet".into())))
}
