//! The segment protocol: one producer, up to [`MAX_CONSUMERS`] consumers, a fixed pool of
//! slots, and three ways of delivering frames (work queue, broadcast, latest).
//!
//! # State
//!
//! Each slot has one 64-bit **state word** (its own 128-byte line, with the frame descriptor):
//!
//! ```text
//!  63                        18 17 16 15            0
//! +----------------------------+-----+---------------+
//! | generation (46 bits)       |kind | holder mask   |
//! +----------------------------+-----+---------------+
//! kind: 0 FREE, 1 WRITING (producer owns it), 2 READY (published), 3 TAKEN (claimed by a worker)
//! ```
//!
//! Every ownership change is a single compare-and-swap on that word, so a process that dies
//! between two steps never leaves a slot half-owned:
//!
//! | transition | who | when |
//! |---|---|---|
//! | FREE(g) → WRITING(g+1) | producer | acquiring a free slot |
//! | READY(g,0) → WRITING(g+1) | producer | recycling a consumed broadcast frame, or dropping the oldest |
//! | WRITING(g) → READY(g,0) | producer | publish (plain Release store: nobody else writes a WRITING word) |
//! | READY(g,h) → TAKEN(g,h∣w) | worker w | work-queue claim (exclusive among workers) |
//! | READY/TAKEN(g,h) → same(g,h∣c) | subscriber / latest reader c | shared claim |
//! | X(g,h) → X(g,h∖c), TAKEN(g,0) → FREE(g) | holder c, or `reclaim(c)` | release |
//!
//! Published frames are found through the **publish ring**: cell `pos % R` holds
//! `(pos mod 2⁴⁸) << 16 | slot`, written before `write_pos` is advanced past `pos`. `pos` counts
//! published frames (dense); `seq`, in the descriptor, counts every frame the producer was
//! given, so frames dropped by `DropNewest` appear to consumers as gaps in `seq`.
//!
//! # Invariants and why the protocol keeps them
//!
//! 1. *No torn frames.* The producer writes a payload only in WRITING, which it enters by CAS
//!    from FREE or from READY with an empty holder mask; consumers read only while their bit is
//!    set. A consumer sets its bit by CAS from READY/TAKEN with the generation it validated, so
//!    it can never set a bit on a slot the producer has taken (the CAS would see WRITING or a
//!    new generation). SYNC POINTs `slot-ready` and `slot-release` carry the payload bytes.
//! 2. *Conservation.* Every slot is in exactly one kind; holders are a mask of registered
//!    consumers. Work queue: `write_pos = delivered + dropped_oldest + ready` once drained, and
//!    `next_seq = write_pos + dropped_newest`. Broadcast: per subscriber,
//!    `cursor − joined_pos = delivered + skipped`.
//! 3. *Order.* Workers claim only the frame at the shared claim cursor, which moves past a frame
//!    only once it has left READY; subscribers walk their own cursor. Neither can claim a frame
//!    older than one already claimed through the same cursor.
//! 4. *Fixed memory, no system call.* Everything lives in the region; operations are loads,
//!    stores and CAS loops bounded by [`RETRY_LIMIT`] (a hostile peer flipping words yields
//!    [`ClaimError::Contended`], never a hang).
//! 5. *Crash safety.* A consumer operation runs inside a *busy* bracket on its own table entry
//!    (CAS `ALIVE(g, holds)` → `+busy`), and leaves it publishing how many frames it holds.
//!    [`Segment::reclaim`] turns an `ALIVE(g)` entry into `RECLAIMING(g)`, clears its bit from
//!    every slot and leaves `FREE(g+1)`; a late operation of the evicted consumer fails its
//!    bracket CAS with [`ClaimError::Evicted`] and touches nothing. [`Reclaim::Idle`] takes only
//!    an idle entry holding no frame — so a live reader never loses a slot; [`Reclaim::Dead`]
//!    (process known dead) takes anything, but only while the entry still names the process
//!    judged dead. If a reclaim hits a live consumer anyway, its operation notices on leaving
//!    the bracket and gives back what it claimed.
//!
//!    *The consumer table survives a kill anywhere.* An entry names its owner by process-slot
//!    index inside its state word, written by the same CAS that claims it, and every
//!    registration moves the generation: no judgement about one occupant can match another
//!    (DESIGN invariant 9). A RECLAIMING entry can be finished by any process at any time, even
//!    by several at once: each hold is cleared by a CAS validated against the entry still being
//!    RECLAIMING at its generation (SYNC POINT `reclaim-validate`), so a registrant, an
//!    unregistrant or a reaper killed at any step leaves nothing [`Segment::reap`] cannot
//!    finish. A consumer killed asleep leaves its bit in the frame-waiter mask, which its
//!    reclaim clears the same way.
//! 6. *Untrusted memory.* Slot indices from the ring, positions and cursors are range-checked
//!    before use; inconsistent values give [`ClaimError::Corrupt`].
//!
//! Progress: lock-free for honest peers (a CAS fails only because another one succeeded);
//! bounded for dishonest ones. Generations wrap after 2⁴⁶ rewrites of one slot (≈2 200 years at
//! 1000 frames/s); a wrap could only let a stalled consumer claim a *newer, complete* frame,
//! which the descriptor's `pos` exposes, so it is harmless. Ring positions are compared modulo
//! 2⁴⁸ for the same reason.
//!
//! # Files
//!
//! One protocol, split for reading; every public item is re-exported here, so paths are
//! `framebus_core::segment::X` whatever file `X` lives in.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | this doc; [`Segment`]: create, open, header, counters, census |
//! | `state.rs` | the slot and entry state words and their encodings |
//! | `frame.rs` | [`FrameMeta`], [`Frame`], [`content_checksum`] |
//! | `error.rs` | one error type per operation |
//! | `producer.rs` | attach and take over; [`Producer`], [`WriteSlot`], publish |
//! | `consumer.rs` | register, the busy bracket, hold, read, release, unregister |
//! | `delivery/` | one file per pattern: `work.rs`, `broadcast.rs`, `latest.rs` |
//! | `reclaim.rs` | [`Segment::reclaim`], the validated finish, [`Segment::reap`] |
//! | `wake.rs` | the sleep handshakes' words, and the waker's half |

use core::fmt;

use crate::layout::{
    ctl, HeaderError, Layout, OverflowPolicy, Pattern, SegmentSpec, SpecError, HEADER_SIZE, HEADER_USED, LINE,
    MAX_CONSUMERS,
};
use crate::region::Region;
use crate::sync::{fence, prefetch_read, AtomicU64, Ordering};
use crate::Creator;

/// Upper bound on CAS retries and ring steps in one operation.
pub const RETRY_LIMIT: u32 = 4096;

/// A kill step no operation has: run to completion.
const NEVER: u32 = 0;

/// Fault injection for crash tests: how many steps the operations that
/// [`Segment::register_dying`], [`Consumer::unregister_dying`] and [`Segment::reclaim_dying`]
/// can be stopped after have (a reclaim has the steps of `unregister`).
#[doc(hidden)]
pub mod fault {
    /// Steps of `register`: 1 process slot claimed, 2 entry claimed (joining), 3 counters
    /// initialised, 4 kind published and start stored (the last CAS not yet made).
    pub const REGISTER_STEPS: u32 = 4;
    /// Steps of `unregister`: 1 entry RECLAIMING, 2 holds cleared, 3 waiter bit cleared (the
    /// FREE CAS not yet made).
    pub const UNREGISTER_STEPS: u32 = 3;
}

mod consumer;
mod delivery;
mod error;
mod frame;
mod producer;
mod reclaim;
mod results;
mod state;
mod wake;

pub use crate::vocab::ConsumerKind;
pub use consumer::Consumer;
pub use error::{AttachError, BeginError, ClaimError, CreateError, PostError, ReadError, ReclaimError, RegisterError};
pub use frame::{content_checksum, Frame, FrameMeta, FLAG_CHECKSUM};
pub use producer::{PendingSlot, Producer, Published, WriteSlot};
pub use reclaim::{Reclaim, Reclaimed};
pub use results::{CellState, Next, Posted, ResultReader};
pub use state::{EntryState, EntryStatus, SlotKind, SlotState};
// The protocol's private vocabulary (word encodings, helpers), shared by every file of it.
use state::*;
use wake::*;

/// A validated segment over a region: the entry point to every protocol.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    region: Region<'a>,
    layout: Layout,
}

/// Counter snapshot of a segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Producer epoch (incremented by each attach).
    pub epoch: u64,
    /// Frames published (ring position).
    pub write_pos: u64,
    /// Frames offered to the producer (published + dropped newest).
    pub next_seq: u64,
    /// Published frames taken back unclaimed (`DropOldest`).
    pub dropped_oldest: u64,
    /// Frames never published (`DropNewest`, or no slot droppable).
    pub dropped_newest: u64,
    /// Work-queue frames claimed by workers.
    pub delivered: u64,
    /// Work-queue claim cursor.
    pub claim_cursor: u64,
    /// Slot holds cleared by `reclaim` (redelivered frames included).
    pub reclaimed: u64,
    /// Frames a dead worker held that went back to the workers (segments with results).
    pub redelivered: u64,
}

/// Slot counts by kind, and holds per consumer entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// FREE slots.
    pub free: u32,
    /// WRITING slots.
    pub writing: u32,
    /// READY slots.
    pub ready: u32,
    /// TAKEN slots.
    pub taken: u32,
    /// READY slots no consumer holds.
    pub ready_unheld: u32,
    /// Slots held by each consumer entry.
    pub held_by: [u32; MAX_CONSUMERS as usize],
}

impl<'a> Segment<'a> {
    /// Initialises a new segment in `region` (which must be exactly `Layout::total_size` bytes;
    /// its previous content is overwritten) and returns it.
    ///
    /// The header is written first with a zero magic, the control area is zeroed, and the magic
    /// is stored last with Release, so an opener never validates a half-written header.
    ///
    /// # Examples
    /// ```
    /// use framebus_core::{Creator, FrameGeometry, HeapRegion, Layout, PixelFormat, Segment, SegmentSpec};
    /// let spec = SegmentSpec::new(FrameGeometry::new(64, 48, PixelFormat::Bgr24), 4);
    /// let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// assert_eq!(Segment::open(heap.region()).unwrap().layout(), seg.layout());
    /// ```
    ///
    /// # Errors
    /// [`CreateError::Spec`] for an invalid spec, [`CreateError::RegionSize`] for a region of the
    /// wrong size.
    pub fn create(region: Region<'a>, spec: &SegmentSpec, creator: Creator) -> Result<Self, CreateError> {
        let layout = Layout::compute(spec).map_err(CreateError::Spec)?;
        if region.len() as u64 != layout.total_size {
            return Err(CreateError::RegionSize { need: layout.total_size, have: region.len() as u64 });
        }
        let seg = Segment { region, layout };
        let header = layout.encode_header(&creator);
        // Relaxed: nobody may look at the segment before the Release store of the magic below.
        region.word(0).store(0, Ordering::Relaxed);
        for (i, chunk) in header.chunks_exact(8).enumerate().skip(1) {
            region.word(i * 8).store(u64::from_le_bytes(chunk.try_into().expect("8 bytes")), Ordering::Relaxed);
        }
        let mut off = 0;
        while off < layout.control_size {
            seg.ctl(off).store(0, Ordering::Relaxed);
            off += 8;
        }
        // SYNC POINT segment-init: pairs with the Acquire load of the magic in `open`; makes
        // the header and the zeroed control area visible before the segment looks valid.
        region.word(0).store(u64::from_le_bytes(header[..8].try_into().expect("8 bytes")), Ordering::Release);
        Ok(seg)
    }

    /// Validates the header of an existing segment in `region`.
    ///
    /// # Errors
    /// A [`HeaderError`] naming what is wrong with the header.
    pub fn open(region: Region<'a>) -> Result<Self, HeaderError> {
        if (region.len() as u64) < HEADER_SIZE {
            return Err(HeaderError::TooSmall { len: region.len() as u64 });
        }
        let (layout, _) = Self::read_header(region)?;
        Ok(Segment { region, layout })
    }

    /// Reads and validates the header, returning the creator too.
    ///
    /// # Errors
    /// As [`Segment::open`].
    pub fn read_header(region: Region<'a>) -> Result<(Layout, Creator), HeaderError> {
        if (region.len() as u64) < HEADER_SIZE {
            return Err(HeaderError::TooSmall { len: region.len() as u64 });
        }
        let mut bytes = [0u8; HEADER_USED];
        // SYNC POINT segment-init: pairs with the Release store of the magic in `create`.
        let magic = region.word(0).load(Ordering::Acquire);
        bytes[..8].copy_from_slice(&magic.to_le_bytes());
        for i in 1..HEADER_USED / 8 {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&region.word(i * 8).load(Ordering::Relaxed).to_le_bytes());
        }
        Layout::decode_header(&bytes, region.len() as u64)
    }

    /// The validated layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The region.
    pub fn region(&self) -> Region<'a> {
        self.region
    }

    #[inline]
    fn ctl(&self, rel: u64) -> &'a AtomicU64 {
        self.region.word((self.layout.control_offset + rel) as usize)
    }

    #[inline]
    fn slot_word(&self, slot: u32, field: u64) -> &'a AtomicU64 {
        debug_assert!(slot < self.layout.spec.slot_count, "slot index {slot} unchecked");
        self.ctl(self.layout.ctl_slots + u64::from(slot) * LINE + field)
    }

    #[inline]
    fn ring_cell(&self, pos: u64) -> &'a AtomicU64 {
        let r = u64::from(self.layout.ring_capacity);
        self.ctl(self.layout.ctl_ring + (pos & (r - 1)) * 8)
    }

    #[inline]
    fn entry(&self, idx: u32, field: u64) -> &'a AtomicU64 {
        debug_assert!(idx < self.layout.spec.max_consumers, "entry index {idx} unchecked");
        self.ctl(self.layout.ctl_consumers + u64::from(idx) * LINE + field)
    }

    /// The decoded state of slot `slot` (for inspection and tests; racy by nature).
    ///
    /// # Panics
    /// When `slot` is not below the slot count.
    pub fn slot_state(&self, slot: u32) -> SlotState {
        assert!(slot < self.layout.spec.slot_count);
        SlotState::decode(self.slot_word(slot, ctl::slot::STATE).load(Ordering::Acquire))
    }

    /// The decoded state of consumer entry `idx`.
    ///
    /// # Panics
    /// When `idx` is not below the consumer table size.
    pub fn entry_state(&self, idx: u32) -> EntryState {
        assert!(idx < self.layout.spec.max_consumers);
        EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire))
    }

    /// Per-consumer counters `(delivered, skipped, cursor, joined_pos)` of entry `idx`.
    ///
    /// # Panics
    /// When `idx` is not below the consumer table size.
    pub fn entry_counters(&self, idx: u32) -> (u64, u64, u64, u64) {
        assert!(idx < self.layout.spec.max_consumers);
        let r = |f| self.entry(idx, f).load(Ordering::Acquire);
        (r(ctl::consumer::DELIVERED), r(ctl::consumer::SKIPPED), r(ctl::consumer::CURSOR), r(ctl::consumer::JOINED_POS))
    }

    /// Owner token and lease deadline of consumer entry `idx` (for the platform's liveness
    /// check and for inspection): the token in the process slot the entry names, 0 for a FREE
    /// entry (or one naming no valid slot).
    ///
    /// # Panics
    /// When `idx` is not below the consumer table size.
    pub fn entry_owner(&self, idx: u32) -> (u64, u64) {
        let st = self.entry_state(idx);
        let owner = match st.status {
            EntryStatus::Alive | EntryStatus::Reclaiming if st.process < self.layout.spec.max_consumers => {
                self.process_token(st.process)
            }
            _ => 0,
        };
        // The lease is advisory (stored inside the consumer's busy bracket by
        // `Consumer::set_lease`); the platform re-checks liveness.
        (owner, self.entry(idx, ctl::consumer::LEASE_NS).load(Ordering::Acquire))
    }

    /// The token held by process slot `p` (0 when free). Process slot `p` is the `process` word
    /// of consumer line `p`; an entry names its owner by slot index, inside its state word.
    ///
    /// # Panics
    /// When `p` is not below the consumer table size.
    pub fn process_token(&self, p: u32) -> u64 {
        assert!(p < self.layout.spec.max_consumers);
        // SYNC POINT process-slot: Acquire pairs with the AcqRel CAS that claimed the slot in
        // `Segment::process_slot`.
        self.entry(p, ctl::consumer::PROCESS).load(Ordering::Acquire)
    }

    /// The attached producer's process token, 0 when no producer is attached (never attached,
    /// or detached by dropping its [`Producer`]). The platform checks the token's liveness.
    pub fn producer_token(&self) -> u64 {
        // SYNC POINT producer-owner: pairs with the AcqRel CASes of attach, takeover and detach.
        self.ctl(ctl::PRODUCER_OWNER).load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let r = |f| self.ctl(f).load(Ordering::Acquire);
        Stats {
            epoch: r(ctl::EPOCH),
            write_pos: r(ctl::WRITE_POS),
            next_seq: r(ctl::NEXT_SEQ),
            dropped_oldest: r(ctl::DROPPED_OLDEST),
            dropped_newest: r(ctl::DROPPED_NEWEST),
            delivered: r(ctl::DELIVERED),
            claim_cursor: r(ctl::CLAIM_CURSOR),
            reclaimed: r(ctl::RECLAIMED),
            redelivered: r(ctl::REDELIVERED),
        }
    }

    /// Counts slots by kind and holds per consumer (exact when nothing runs concurrently).
    pub fn census(&self) -> Census {
        let mut c = Census::default();
        for s in 0..self.layout.spec.slot_count {
            let st = self.slot_state(s);
            match st.kind {
                SlotKind::Free => c.free += 1,
                SlotKind::Writing => c.writing += 1,
                SlotKind::Ready => {
                    c.ready += 1;
                    if st.holders == 0 {
                        c.ready_unheld += 1;
                    }
                }
                SlotKind::Taken => c.taken += 1,
            }
            for (i, h) in c.held_by.iter_mut().enumerate() {
                *h += u32::from(st.holders >> i & 1);
            }
        }
        c
    }
}
