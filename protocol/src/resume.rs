//! Resumption, both ends: the server plans what to replay for a client's
//! position, the client tracks its positions and drops duplicates.

use std::collections::BTreeMap;

use crate::{Epoch, RoomId, Seq, v1};

/// What the server does for one room on `Resume`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumePlan {
    /// No position given: live events only.
    Live,
    /// Replay events `after+1 ..= head`, then live events.
    Replay { after: Seq, head: Seq },
    /// The gap cannot be filled: the client reloads the room.
    Reset,
}

/// Decides how to resume a room whose log is at (`epoch`, `head`) for a
/// client that last saw `position`, replaying at most `max_events`.
pub fn plan(position: Option<(Epoch, Seq)>, epoch: Epoch, head: Seq, max_events: u64) -> ResumePlan {
    let Some((client_epoch, seen)) = position else {
        return ResumePlan::Live;
    };
    if client_epoch != epoch || seen > head {
        // A position from another generation of the log, or from the future
        // (the server lost data it had acknowledged would be a bug, but the
        // client must not trust its old view either way).
        return ResumePlan::Reset;
    }
    if head.0 - seen.0 > max_events {
        return ResumePlan::Reset;
    }
    ResumePlan::Replay { after: seen, head }
}

/// How a client should treat an incoming room event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The next event: show it.
    Next,
    /// Seen already (a replay overlap): drop it.
    Duplicate,
    /// Events are missing before it: resume or reload before showing more.
    Gap { expected: Seq },
    /// The first event seen in this room, or the first of a new epoch.
    First,
}

/// A client's last seen position per room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    rooms: BTreeMap<RoomId, (Epoch, Seq)>,
}

impl Positions {
    /// Records an incoming event and says what to do with it.
    pub fn observe(&mut self, event: &v1::RoomEvent) -> Observation {
        let (room, epoch, seq) = (RoomId(event.room_id), Epoch(event.epoch), Seq(event.seq));
        match self.rooms.get(&room).copied() {
            Some((known_epoch, seen)) if known_epoch == epoch => {
                if seq <= seen {
                    Observation::Duplicate
                } else if seq == seen.next() {
                    self.rooms.insert(room, (epoch, seq));
                    Observation::Next
                } else {
                    Observation::Gap { expected: seen.next() }
                }
            }
            _ => {
                self.rooms.insert(room, (epoch, seq));
                Observation::First
            }
        }
    }

    /// Sets a room's position (after loading history, or from a resume
    /// answer that reset the room).
    pub fn set(&mut self, room: RoomId, epoch: Epoch, seq: Seq) {
        self.rooms.insert(room, (epoch, seq));
    }

    /// Forgets a room (left, or gone).
    pub fn forget(&mut self, room: RoomId) {
        self.rooms.remove(&room);
    }

    pub fn get(&self, room: RoomId) -> Option<(Epoch, Seq)> {
        self.rooms.get(&room).copied()
    }

    /// Applies the server's answer to a `Resume`.
    ///
    /// Live events may arrive before the answer (the server subscribes the
    /// session before it replies), so a position is only ever moved forward
    /// within an epoch.
    pub fn apply(&mut self, status: &v1::RoomResumeStatus) {
        let room = RoomId(status.room_id);
        match v1::ResumeOutcome::try_from(status.outcome) {
            Ok(v1::ResumeOutcome::Gone) => self.forget(room),
            Ok(v1::ResumeOutcome::Live | v1::ResumeOutcome::Reset) => {
                let (epoch, head) = (Epoch(status.epoch), Seq(status.head_seq));
                match self.get(room) {
                    Some((known, seen)) if known == epoch && seen >= head => {}
                    _ => self.set(room, epoch, head),
                }
            }
            // Replayed events were observed one by one already.
            Ok(v1::ResumeOutcome::Replayed) | Err(_) => {}
        }
    }

    /// The `Resume` command that continues from these positions.
    pub fn to_resume(&self) -> v1::Resume {
        v1::Resume {
            positions: self
                .rooms
                .iter()
                .map(|(room, (epoch, seq))| v1::RoomPosition { room_id: room.0, epoch: epoch.0, seq: seq.0 })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(room: u64, epoch: u64, seq: u64) -> v1::RoomEvent {
        v1::RoomEvent { room_id: room, epoch, seq, ..Default::default() }
    }

    #[test]
    fn plan_replays_fillable_gaps_and_resets_the_rest() {
        let e = Epoch(1);
        assert_eq!(plan(None, e, Seq(10), 100), ResumePlan::Live);
        assert_eq!(plan(Some((e, Seq(4))), e, Seq(10), 100), ResumePlan::Replay { after: Seq(4), head: Seq(10) });
        assert_eq!(plan(Some((e, Seq(10))), e, Seq(10), 100), ResumePlan::Replay { after: Seq(10), head: Seq(10) });
        assert_eq!(plan(Some((e, Seq(0))), e, Seq(101), 100), ResumePlan::Reset);
        assert_eq!(plan(Some((Epoch(2), Seq(4))), e, Seq(10), 100), ResumePlan::Reset);
        assert_eq!(plan(Some((e, Seq(11))), e, Seq(10), 100), ResumePlan::Reset);
    }

    #[test]
    fn positions_drop_duplicates_and_report_gaps() {
        let mut p = Positions::default();
        assert_eq!(p.observe(&event(1, 1, 5)), Observation::First);
        assert_eq!(p.observe(&event(1, 1, 6)), Observation::Next);
        assert_eq!(p.observe(&event(1, 1, 6)), Observation::Duplicate);
        assert_eq!(p.observe(&event(1, 1, 3)), Observation::Duplicate);
        assert_eq!(p.observe(&event(1, 1, 9)), Observation::Gap { expected: Seq(7) });
        assert_eq!(p.get(RoomId(1)), Some((Epoch(1), Seq(6))));
        assert_eq!(p.observe(&event(1, 2, 1)), Observation::First);
        let resume = p.to_resume();
        assert_eq!(resume.positions, vec![v1::RoomPosition { room_id: 1, epoch: 2, seq: 1 }]);
    }

    #[test]
    fn resume_answers_update_positions() {
        let mut p = Positions::default();
        p.set(RoomId(1), Epoch(1), Seq(3));
        p.set(RoomId(2), Epoch(1), Seq(3));
        let status = |room, outcome: v1::ResumeOutcome| v1::RoomResumeStatus {
            room_id: room,
            epoch: 1,
            head_seq: 50,
            outcome: outcome as i32,
            replayed: 0,
        };
        p.apply(&status(1, v1::ResumeOutcome::Reset));
        p.apply(&status(2, v1::ResumeOutcome::Gone));
        p.apply(&status(3, v1::ResumeOutcome::Live));
        assert_eq!(p.get(RoomId(1)), Some((Epoch(1), Seq(50))));
        assert_eq!(p.get(RoomId(2)), None);
        assert_eq!(p.get(RoomId(3)), Some((Epoch(1), Seq(50))));
    }

    #[test]
    fn live_events_seen_before_the_resume_answer_are_not_undone() {
        let mut p = Positions::default();
        assert_eq!(p.observe(&event(1, 1, 51)), Observation::First);
        assert_eq!(p.observe(&event(1, 1, 52)), Observation::Next);
        let status = v1::RoomResumeStatus {
            room_id: 1,
            epoch: 1,
            head_seq: 50,
            outcome: v1::ResumeOutcome::Live as i32,
            replayed: 0,
        };
        p.apply(&status);
        assert_eq!(p.get(RoomId(1)), Some((Epoch(1), Seq(52))));
        assert_eq!(p.observe(&event(1, 1, 53)), Observation::Next);
    }
}
