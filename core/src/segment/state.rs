//! The state words of a segment, and their encodings (`docs/LAYOUT.md` §3, §5): a slot's
//! (generation, kind, holder mask) and a consumer-table entry's (status, busy, kind, holds,
//! process slot, generation). Pure functions of a `u64`; no atomics here.

use super::*;

pub(super) const HOLDERS: u64 = 0xFFFF;
pub(super) const KIND_SHIFT: u32 = 16;
pub(super) const GEN_SHIFT: u32 = 18;
pub(super) const GEN_MASK: u64 = (1 << 46) - 1;
pub(super) const POS_MASK: u64 = (1 << 48) - 1;

/// Kind of a slot, from its state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// Unused.
    Free = 0,
    /// Held by the producer for writing.
    Writing = 1,
    /// Published; possibly held by shared readers.
    Ready = 2,
    /// Claimed by a worker (work queue).
    Taken = 3,
}

/// A decoded slot state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotState {
    /// Generation: incremented each time the producer takes the slot for writing.
    pub gen: u64,
    /// Kind.
    pub kind: SlotKind,
    /// Mask of consumer-table indices holding the slot.
    pub holders: u16,
}

impl SlotState {
    pub(super) const fn decode(w: u64) -> Self {
        let kind = match (w >> KIND_SHIFT) & 3 {
            0 => SlotKind::Free,
            1 => SlotKind::Writing,
            2 => SlotKind::Ready,
            _ => SlotKind::Taken,
        };
        SlotState { gen: w >> GEN_SHIFT, kind, holders: (w & HOLDERS) as u16 }
    }
    pub(super) const fn encode(self) -> u64 {
        ((self.gen & GEN_MASK) << GEN_SHIFT) | ((self.kind as u64) << KIND_SHIFT) | self.holders as u64
    }
    pub(super) const fn with(self, kind: SlotKind, holders: u16) -> Self {
        SlotState { gen: self.gen, kind, holders }
    }
}

pub(super) const ENTRY_FREE: u64 = 0;
pub(super) const ENTRY_ALIVE: u64 = 1;
pub(super) const ENTRY_RECLAIMING: u64 = 2;
pub(super) const ENTRY_BUSY: u64 = 1 << 2;
pub(super) const ENTRY_KIND_SHIFT: u32 = 4;
/// Kind 0 in an ALIVE entry: a registration that has not yet said what it is (see `register`).
pub(super) const KIND_JOINING: u64 = 0;
pub(super) const ENTRY_HOLDS_SHIFT: u32 = 8;
pub(super) const ENTRY_HOLDS_MASK: u64 = (1 << 11) - 1;
pub(super) const ENTRY_PROC_SHIFT: u32 = 20;
pub(super) const ENTRY_PROC_MASK: u64 = 0xF;
pub(super) const ENTRY_GEN_SHIFT: u32 = 24;
pub(super) const ENTRY_GEN_MASK: u64 = (1 << 40) - 1;

/// Status of a consumer-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryStatus {
    /// Unused: a consumer may register here.
    Free,
    /// A registered consumer (or one registering: kind not yet set).
    Alive,
    /// Being reclaimed: its holds are being cleared; anyone may finish the job.
    Reclaiming,
    /// Status bits 3: no protocol writes it (a corrupt or hostile word).
    Invalid,
}

/// A decoded consumer-table entry state word (layout v2, `docs/LAYOUT.md` §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    /// Free, alive or being reclaimed.
    pub status: EntryStatus,
    /// Inside an operation right now.
    pub busy: bool,
    /// The consumer kind (when alive; `None` while a registration has not set it yet).
    pub kind: Option<ConsumerKind>,
    /// Frames the consumer holds (as of its last operation).
    pub holds: u16,
    /// Process slot naming the owning process (see [`Segment::process_token`]).
    pub process: u32,
    /// Incremented when a consumer registers and when the entry is freed, so that no operation
    /// or judgement made about one occupant can match another (40 bits, wrapping).
    pub gen: u64,
}

impl EntryState {
    pub(super) const fn decode(w: u64) -> Self {
        // Kind 0 is KIND_JOINING: `from_u32` has no kind with code 0.
        let kind = ConsumerKind::from_u32(((w >> ENTRY_KIND_SHIFT) & 3) as u32);
        let status = match w & 3 {
            ENTRY_FREE => EntryStatus::Free,
            ENTRY_ALIVE => EntryStatus::Alive,
            ENTRY_RECLAIMING => EntryStatus::Reclaiming,
            _ => EntryStatus::Invalid,
        };
        EntryState {
            status,
            busy: w & ENTRY_BUSY != 0,
            kind,
            holds: ((w >> ENTRY_HOLDS_SHIFT) & ENTRY_HOLDS_MASK) as u16,
            process: ((w >> ENTRY_PROC_SHIFT) & ENTRY_PROC_MASK) as u32,
            gen: w >> ENTRY_GEN_SHIFT,
        }
    }
}

/// Encodes an entry word. `holds` ≤ [`crate::layout::MAX_SLOTS`] fits its 11 bits; `process`
/// < 16 its 4; the generation is taken modulo 2⁴⁰.
pub(super) const fn entry_word(status: u64, busy: bool, kind: u64, holds: u16, process: u32, gen: u64) -> u64 {
    status
        | if busy { ENTRY_BUSY } else { 0 }
        | (kind << ENTRY_KIND_SHIFT)
        | ((holds as u64 & ENTRY_HOLDS_MASK) << ENTRY_HOLDS_SHIFT)
        | ((process as u64 & ENTRY_PROC_MASK) << ENTRY_PROC_SHIFT)
        | ((gen & ENTRY_GEN_MASK) << ENTRY_GEN_SHIFT)
}

pub(super) const fn released(st: SlotState, bit: u16) -> SlotState {
    let holders = st.holders & !bit;
    match st.kind {
        SlotKind::Taken if holders == 0 => st.with(SlotKind::Free, 0),
        k => st.with(k, holders),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_word_roundtrips_and_keeps_fields_apart() {
        for kind in [SlotKind::Free, SlotKind::Writing, SlotKind::Ready, SlotKind::Taken] {
            let st = SlotState { gen: GEN_MASK, kind, holders: 0xFFFF };
            assert_eq!(SlotState::decode(st.encode()), st);
            let st = SlotState { gen: 1, kind, holders: 0 };
            assert_eq!(SlotState::decode(st.encode()), st);
        }
        // Generations wrap inside their 46 bits instead of spilling into kind/holders.
        let wrapped = SlotState { gen: (GEN_MASK + 1) & GEN_MASK, kind: SlotKind::Free, holders: 0 };
        assert_eq!(wrapped.encode(), 0);
    }

    #[test]
    fn release_transitions() {
        let taken = SlotState { gen: 5, kind: SlotKind::Taken, holders: 0b101 };
        assert_eq!(released(taken, 0b001), SlotState { gen: 5, kind: SlotKind::Taken, holders: 0b100 });
        assert_eq!(released(released(taken, 0b001), 0b100), SlotState { gen: 5, kind: SlotKind::Free, holders: 0 });
        let ready = SlotState { gen: 5, kind: SlotKind::Ready, holders: 0b1 };
        assert_eq!(released(ready, 0b1), SlotState { gen: 5, kind: SlotKind::Ready, holders: 0 });
    }

    #[test]
    fn entry_word_roundtrips() {
        let w = entry_word(ENTRY_ALIVE, true, ConsumerKind::Latest as u64, 1024, 15, ENTRY_GEN_MASK);
        assert_eq!(
            EntryState::decode(w),
            EntryState {
                status: EntryStatus::Alive,
                busy: true,
                kind: Some(ConsumerKind::Latest),
                holds: 1024,
                process: 15,
                gen: ENTRY_GEN_MASK
            }
        );
        let zero = EntryState::decode(0);
        assert_eq!(
            (zero.status, zero.busy, zero.kind, zero.holds, zero.process, zero.gen),
            (EntryStatus::Free, false, None, 0, 0, 0)
        );
        // Every field keeps to its bits: the largest values of each do not disturb the others.
        assert_eq!(
            EntryState::decode(entry_word(ENTRY_FREE, false, 0, 0, 0, ENTRY_GEN_MASK + 1)).gen,
            0,
            "gen wraps in 40 bits"
        );
        let holds = EntryState::decode(entry_word(ENTRY_RECLAIMING, false, 0, u16::MAX, 0, 0));
        assert_eq!((holds.status, holds.holds, holds.process), (EntryStatus::Reclaiming, 2047, 0));
        assert_eq!(EntryState::decode(3).status, EntryStatus::Invalid);
        assert!(u64::from(crate::layout::MAX_SLOTS) <= ENTRY_HOLDS_MASK, "holds fit");
        assert!(u64::from(MAX_CONSUMERS) <= ENTRY_PROC_MASK + 1, "process slots fit");
    }
}
