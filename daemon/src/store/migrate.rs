//! Schema migrations, one function per version step, all run in the
//! transaction that opens an older store, before anything else reads it.

use redb::{ReadableTable as _, WriteTransaction};

use super::{StoreError, records::*, tables::*};

/// Brings a store of schema version `found` up to [`SCHEMA_VERSION`].
pub(super) fn migrate(txn: &WriteTransaction, found: u64) -> Result<(), StoreError> {
    for from in found..SCHEMA_VERSION {
        match from {
            1 => counts_and_read_markers(txn)?,
            _ => unreachable!("no migration from schema version {from}"),
        }
        tracing::info!(from, to = from + 1, "migrated the store");
    }
    txn.open_table(META)?.insert(meta::SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes().as_slice())?;
    Ok(())
}

/// 1 → 2 (feature level 2): every event learns the room's running message
/// count (`messages_through`) and every room its total, so unread counts
/// need no scan; every joined member without a read marker gets one at the
/// room's head, so what was sent before the upgrade does not show as unread.
fn counts_and_read_markers(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut rooms = txn.open_table(ROOMS)?;
    let mut events = txn.open_table(EVENTS)?;
    let mut read_states = txn.open_table(READ_STATES)?;
    let memberships = txn.open_table(MEMBERSHIPS)?;
    let ids: Vec<u64> = rooms.iter()?.map(|entry| entry.map(|(id, _)| id.value())).collect::<Result<_, _>>()?;
    for id in ids {
        let Some(mut room) = rooms.get(id)?.map(|v| v.value()) else { continue };
        let mut count = 0;
        for seq in 1..=room.head_seq {
            let Some(mut event) = events.get((id, seq))?.map(|v| v.value()) else { continue };
            if matches!(event.kind, Some(EventKind::Message(_))) {
                count += 1;
            }
            event.messages_through = count;
            events.insert((id, seq), event)?;
        }
        room.message_count = count;
        let head = room.head_seq;
        rooms.insert(id, room)?;
        for entry in memberships.range((id, 0)..=(id, u64::MAX))? {
            let (key, membership) = entry?;
            let user = key.value().1;
            if membership.value().is_joined() && read_states.get((id, user))?.is_none() {
                let marker = ReadStateRecord { read_seq: head, delivered_seq: head, updated_at_ms: 0 };
                read_states.insert((id, user), marker)?;
            }
        }
    }
    Ok(())
}
