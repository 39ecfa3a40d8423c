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

/// The frame-waiter word: bits 0-15 are the mask of sleeping consumer entries, bits 16-63 a
/// version bumped by every change, so that no compare-and-swap on the word can mistake a
/// bit set again by the entry's next occupant for the one it read (ABA).
const WAITER_BITS: u64 = 0xFFFF;
const WAITER_VERSION: u64 = 1 << 16;

/// `m` with `bits` set or cleared and its version bumped.
const fn waiters_with(m: u64, set: bool, bits: u64) -> u64 {
    let mask = if set { m | bits } else { m & !bits };
    (mask & WAITER_BITS) | ((m & !WAITER_BITS).wrapping_add(WAITER_VERSION))
}

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

const HOLDERS: u64 = 0xFFFF;
const KIND_SHIFT: u32 = 16;
const GEN_SHIFT: u32 = 18;
const GEN_MASK: u64 = (1 << 46) - 1;
const POS_MASK: u64 = (1 << 48) - 1;

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
    const fn decode(w: u64) -> Self {
        let kind = match (w >> KIND_SHIFT) & 3 {
            0 => SlotKind::Free,
            1 => SlotKind::Writing,
            2 => SlotKind::Ready,
            _ => SlotKind::Taken,
        };
        SlotState { gen: w >> GEN_SHIFT, kind, holders: (w & HOLDERS) as u16 }
    }
    const fn encode(self) -> u64 {
        ((self.gen & GEN_MASK) << GEN_SHIFT) | ((self.kind as u64) << KIND_SHIFT) | self.holders as u64
    }
    const fn with(self, kind: SlotKind, holders: u16) -> Self {
        SlotState { gen: self.gen, kind, holders }
    }
}

pub use crate::vocab::ConsumerKind;

const ENTRY_FREE: u64 = 0;
const ENTRY_ALIVE: u64 = 1;
const ENTRY_RECLAIMING: u64 = 2;
const ENTRY_BUSY: u64 = 1 << 2;
const ENTRY_KIND_SHIFT: u32 = 4;
/// Kind 0 in an ALIVE entry: a registration that has not yet said what it is (see `register`).
const KIND_JOINING: u64 = 0;
const ENTRY_HOLDS_SHIFT: u32 = 8;
const ENTRY_HOLDS_MASK: u64 = (1 << 11) - 1;
const ENTRY_PROC_SHIFT: u32 = 20;
const ENTRY_PROC_MASK: u64 = 0xF;
const ENTRY_GEN_SHIFT: u32 = 24;
const ENTRY_GEN_MASK: u64 = (1 << 40) - 1;

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
    const fn decode(w: u64) -> Self {
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
const fn entry_word(status: u64, busy: bool, kind: u64, holds: u16, process: u32, gen: u64) -> u64 {
    status
        | if busy { ENTRY_BUSY } else { 0 }
        | (kind << ENTRY_KIND_SHIFT)
        | ((holds as u64 & ENTRY_HOLDS_MASK) << ENTRY_HOLDS_SHIFT)
        | ((process as u64 & ENTRY_PROC_MASK) << ENTRY_PROC_SHIFT)
        | ((gen & ENTRY_GEN_MASK) << ENTRY_GEN_SHIFT)
}

/// Metadata a producer attaches to a frame. Sequence and position are assigned at publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Capture time in ns (source clock).
    pub capture_ns: u64,
    /// Presentation time in ns.
    pub pts_ns: u64,
    /// Width of this frame in pixels.
    pub width: u32,
    /// Height of this frame.
    pub height: u32,
    /// Pixel format code ([`crate::PixelFormat`] as `u32`).
    pub pixel_format: u32,
    /// Application flags ([`FLAG_CHECKSUM`] is reserved).
    pub flags: u32,
    /// Bytes of payload used.
    pub payload_len: u64,
    /// Optional content checksum (sets [`FLAG_CHECKSUM`]).
    pub checksum: Option<u64>,
}

/// Descriptor flag: the `checksum` field is valid (bit 31 of the 32-bit flags, i.e. bit 63 of
/// the descriptor's `format_flags` word). The checksum is [`content_checksum`] of the payload's
/// first `payload_len` bytes.
pub const FLAG_CHECKSUM: u32 = 1 << 31;

/// The content checksum of a frame (layout v2, `docs/LAYOUT.md` §4): FNV-1a over the bytes taken
/// as little-endian 64-bit words — `h = 0xcbf29ce484222325`, then for each whole word
/// `h = (h ^ word) * 0x100000001b3` (mod 2⁶⁴) —, then each tail byte the same way, then
/// `h ^ len`. One multiply per 8 bytes: a 1080p BGR frame costs about a millisecond. It detects
/// torn or overwritten frames, not tampering.
///
/// # Examples
/// ```
/// use framebus_core::segment::content_checksum;
/// assert_eq!(content_checksum(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(content_checksum(b"framebus"), 0xd266_b9bf_5d63_14d1);
/// ```
#[must_use]
pub fn content_checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8-byte chunk"))).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h ^ bytes.len() as u64
}

/// A frame held by a consumer: its slot, identity and metadata. Give it back with
/// [`Consumer::release`]; until then the producer cannot touch the slot.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a claimed frame holds its slot until released"]
pub struct Frame {
    /// Slot index.
    pub slot: u32,
    /// Slot generation at claim (identifies this frame in the slot).
    pub gen: u64,
    /// Publish position (dense count of published frames).
    pub pos: u64,
    /// Sequence number (never reused; gaps are drops).
    pub seq: u64,
    /// Producer epoch that published it.
    pub epoch: u64,
    /// Metadata.
    pub meta: FrameMeta,
}

/// A validated segment over a region: the entry point to every protocol.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    region: Region<'a>,
    layout: Layout,
}

/// Why [`Segment::create`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateError {
    /// The spec breaks a limit.
    Spec(SpecError),
    /// The region's size differs from the layout's.
    RegionSize {
        /// bytes the layout needs
        need: u64,
        /// bytes the region has
        have: u64,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spec(e) => e.fmt(f),
            Self::RegionSize { need, have } => write!(
                f,
                "region has {have} bytes but the layout needs exactly {need}; size the mapping with Layout::total_size"
            ),
        }
    }
}
impl core::error::Error for CreateError {}

/// Why a producer could not attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachError {
    /// Another producer is attached (its owner token is given). If it is dead, take over with
    /// [`Segment::take_over_producer`].
    Busy {
        /// current owner token
        owner: u64,
    },
    /// Owner tokens must be non-zero.
    ZeroToken,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy { owner } => {
                write!(f, "segment already has a producer (owner {owner:#x}); stop it, or take over if it is dead")
            }
            Self::ZeroToken => write!(f, "owner token 0 is reserved for 'no owner'"),
        }
    }
}
impl core::error::Error for AttachError {}

/// Why a consumer could not register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// All consumer entries are in use.
    TableFull {
        /// table size
        max: u32,
    },
    /// Every process slot is held by a running process (each process that registers keeps one
    /// slot, for all its consumers, until it exits).
    TooManyProcesses {
        /// process slots (one per consumer entry)
        max: u32,
    },
    /// Owner tokens must be non-zero (0 marks a free process slot).
    ZeroToken,
    /// Workers need a work-queue segment, subscribers a broadcast one.
    WrongPattern {
        /// the segment's pattern
        pattern: Pattern,
        /// what was asked for
        kind: ConsumerKind,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TableFull { max } => write!(f, "all {max} consumer entries are in use; reclaim dead consumers or create the segment with more"),
            Self::TooManyProcesses { max } => write!(f, "all {max} process slots are held by running processes (a process keeps its slot until it exits, even with no consumer left); stop one of them or create the segment with more consumer entries"),
            Self::ZeroToken => write!(f, "owner token 0 is reserved for 'no process'"),
            Self::WrongPattern { pattern, kind } => write!(f, "a {kind:?} cannot attach to a {pattern:?} segment (workers need WorkQueue, subscribers Broadcast; Latest readers fit both)"),
        }
    }
}
impl core::error::Error for RegisterError {}

/// Why the producer got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginError {
    /// `Block` policy and every slot is in use: wait for a release and retry.
    Full,
    /// The frame was dropped (`DropNewest`, or `DropOldest` with nothing droppable) and counted;
    /// its sequence number is consumed. Move on to the next frame.
    DroppedNewest {
        /// the skipped sequence number
        seq: u64,
    },
    /// Another producer took over this segment (epoch moved); this handle is dead.
    Superseded,
}

impl fmt::Display for BeginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "no free slot (Block policy): wait for consumers to release frames"),
            Self::DroppedNewest { seq } => {
                write!(f, "frame {seq} dropped: no slot could be freed (counted in dropped_newest)")
            }
            Self::Superseded => write!(f, "another producer took over the segment; this producer must stop"),
        }
    }
}
impl core::error::Error for BeginError {}

/// Why a claim or release failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// No frame is available now.
    Empty,
    /// This consumer was reclaimed (presumed dead); register again.
    Evicted,
    /// Shared memory holds an impossible value; the segment is corrupt (or a peer is hostile).
    Corrupt,
    /// The words kept changing under us for [`RETRY_LIMIT`] attempts: frames recycled faster
    /// than we could claim them (DropOldest), or a misbehaving peer. Retrying is safe.
    Contended,
    /// Release of a frame this consumer does not hold (double release or stale handle).
    NotHeld,
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no frame available"),
            Self::Evicted => write!(f, "this consumer was reclaimed as dead (lease expired or liveness lost); register again"),
            Self::Corrupt => write!(f, "shared control area holds impossible values: segment corrupt or a peer misbehaves; recreate the segment"),
            Self::Contended => write!(f, "control words kept changing for {RETRY_LIMIT} attempts: retry; under DropOldest a consumer far slower than the producer can see this, a persistent one means a misbehaving peer"),
            Self::NotHeld => write!(f, "frame is not held by this consumer (double release or stale frame)"),
        }
    }
}
impl core::error::Error for ClaimError {}

/// What a reclaim did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reclaimed {
    /// Slot holds cleared.
    pub cleared: u32,
    /// The producer sleeps waiting for space: the platform must wake the space-wake word.
    pub wake: bool,
}

/// Why a reclaim did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReclaimError {
    /// Index outside the consumer table.
    NoSuchEntry,
    /// The entry is not that occupant any more: freed (by this or another reclaim), reused,
    /// or its process slot no longer names the owner judged dead.
    Stale,
    /// The consumer is inside an operation; retry, or use [`Reclaim::Dead`] if its process is
    /// known dead.
    Busy,
    /// The consumer holds frames; only [`Reclaim::Dead`] (its process is known dead) takes them.
    Holding {
        /// frames held
        frames: u16,
    },
    /// The entry or a slot word kept changing for [`RETRY_LIMIT`] attempts (a misbehaving
    /// peer). The entry is left RECLAIMING if it got that far: any later reclaim or
    /// [`Segment::reap`] finishes it.
    Contended,
}

/// How [`Segment::reclaim`] may take an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaim {
    /// The consumer may be alive: take the entry only if it is between operations and holds
    /// no frame (a lease that expired, a subscriber that stopped reading, `unregister`).
    Idle,
    /// The caller found the process with token `owner` dead: take the entry whatever it holds,
    /// but only while the entry still names that process.
    Dead {
        /// the token judged dead (read from the process slot the entry names)
        owner: u64,
    },
}

impl fmt::Display for ReclaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchEntry => write!(f, "no such consumer entry"),
            Self::Stale => write!(f, "consumer entry was already reclaimed or reused, or names another process now"),
            Self::Busy => {
                write!(f, "consumer is inside an operation; retry, or reclaim it as dead if its process is dead")
            }
            Self::Holding { frames } => write!(
                f,
                "consumer holds {frames} frame(s) and may be reading them: kill its process, then reclaim it as dead"
            ),
            Self::Contended => {
                write!(f, "consumer entry or slot words kept changing (misbehaving peer); retry, a later reclaim or reap finishes it")
            }
        }
    }
}
impl core::error::Error for ReclaimError {}

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
    /// Slot holds cleared by `reclaim`.
    pub reclaimed: u64,
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

    /// Attaches the one producer, identified by a non-zero platform `token`.
    ///
    /// Bumps the epoch and recovers slots a previous (dead) producer left mid-write.
    ///
    /// # Examples
    /// ```
    /// # use framebus_core::*;
    /// # let spec = SegmentSpec::new(FrameGeometry::new(8, 8, PixelFormat::Gray8), 2);
    /// # let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// let p = seg.attach_producer(42).unwrap();
    /// assert!(seg.attach_producer(43).is_err()); // unique
    /// drop(p); // detaches
    /// assert!(seg.attach_producer(43).is_ok());
    /// ```
    ///
    /// # Errors
    /// [`AttachError::Busy`] when a producer is attached, [`AttachError::ZeroToken`] for token 0.
    pub fn attach_producer(&self, token: u64) -> Result<Producer<'a>, AttachError> {
        self.take_over_producer(token, 0)
    }

    /// Attaches a producer in place of the one with token `dead` (which the caller has found
    /// dead), or of none when `dead` is 0.
    ///
    /// # Errors
    /// As [`Segment::attach_producer`].
    pub fn take_over_producer(&self, token: u64, dead: u64) -> Result<Producer<'a>, AttachError> {
        if token == 0 {
            return Err(AttachError::ZeroToken);
        }
        if token == dead {
            // Taking over from ourselves would let recovery free our own slot mid-write.
            return Err(AttachError::Busy { owner: dead });
        }
        self.ctl(ctl::PRODUCER_OWNER)
            .compare_exchange(dead, token, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|owner| AttachError::Busy { owner })?;
        // SYNC POINT producer-owner: the AcqRel CAS above pairs with the Release CAS in
        // `Producer::drop` (clean detach). After a crash there is no Release; what the dead
        // producer wrote reaches us only as far as its own Release stores did, which is why the
        // recovery below re-derives everything from the words consumers can see.
        let epoch = self.ctl(ctl::EPOCH).fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        let write_pos = self.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
        // Counters: `next_seq = write_pos + dropped_newest` holds between operations. The dead
        // producer stores `dropped_newest` before `next_seq` and `next_seq` before `write_pos`,
        // so a crash leaves `next_seq` at or above the sum, never below: sequence numbers it
        // gave out are never reissued, and the ones it never published count as dropped.
        let dropped = self.ctl(ctl::DROPPED_NEWEST);
        let floor = write_pos.wrapping_add(dropped.load(Ordering::Acquire));
        let mut next_seq = self.ctl(ctl::NEXT_SEQ).load(Ordering::Acquire);
        if next_seq > floor {
            dropped.store(dropped.load(Ordering::Relaxed).wrapping_add(next_seq - floor), Ordering::Release);
        } else {
            next_seq = floor;
        }
        self.ctl(ctl::NEXT_SEQ).store(next_seq, Ordering::Release);
        // Only the producer sleeps for space. A count left raised by a producer that died asleep
        // would make every release a needless wake-up call: start from zero. (Were the old
        // producer alive after all, its missed wake-ups cost it one sleep slice, not a hang:
        // the platform's waits are bounded.) Relaxed: a hint, as in `retire_sleeper`.
        self.ctl(ctl::SPACE_WAITERS).store(0, Ordering::Relaxed);
        // Recovery: slots the previous producer was writing, or had marked READY without
        // advancing `write_pos` (so no consumer can have seen them), become FREE again.
        for s in 0..self.layout.spec.slot_count {
            let w = self.slot_word(s, ctl::slot::STATE);
            let st = SlotState::decode(w.load(Ordering::Acquire));
            let unpublished = st.kind == SlotKind::Ready
                && st.holders == 0
                // Relaxed: the descriptor is only written by the producer, which is dead or is us.
                && self.slot_word(s, ctl::slot::POS).load(Ordering::Relaxed) >= write_pos;
            if st.kind == SlotKind::Writing || unpublished {
                // A CAS, not a store: a hostile peer may be changing the word; then we leave it.
                let _ = w.compare_exchange(
                    st.encode(),
                    st.with(SlotKind::Free, 0).encode(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        // SYNC POINT join (store buffering), for a producer that has not published yet: the
        // last `write_pos` store was the dead producer's, and our Acquire load above
        // synchronises with that store, not with the SeqCst fence the dead producer issued after
        // it. Under C11 our first `min_cursor` could then miss a subscriber that read the older
        // `write_pos` and recycle the frame it starts at (x86-TSO and ARMv8 forbid that
        // outcome; C11 does not). This fence stands in for the one `WriteSlot::publish` issues,
        // between our view of `write_pos` and our first entry loads. Pairs with the SeqCst
        // fence in `Segment::register_with`.
        fence(Ordering::SeqCst);
        Ok(Producer { seg: *self, token, epoch, write_pos, next_seq, hint: 0 })
    }

    /// Registers a consumer of `kind`, owned by platform `token` (a non-zero liveness token of
    /// the calling process). Subscribers and latest readers start at the next frame to be
    /// published. Without a liveness check, a process slot of a dead process is never reused
    /// (see [`Segment::register_with`]).
    ///
    /// # Errors
    /// [`RegisterError::TableFull`], [`RegisterError::TooManyProcesses`],
    /// [`RegisterError::WrongPattern`], [`RegisterError::ZeroToken`].
    pub fn register(&self, kind: ConsumerKind, token: u64) -> Result<Consumer<'a>, RegisterError> {
        self.register_with(kind, token, |_| true)
    }

    /// [`Segment::register`] with the platform's liveness check, which lets the registration
    /// reuse the process slot of a dead process that no entry names any more.
    ///
    /// # The registration protocol (layout v2)
    /// 1. Find the caller's process slot: the one holding `token`, else claim a free one
    ///    (CAS 0 → token), else take over one whose token `is_alive` calls dead and that no
    ///    non-FREE entry names (CAS dead → token). A dead token is never reissued, so this
    ///    CAS cannot suffer ABA, and only the dead process could have made a new entry name
    ///    the slot.
    /// 2. CAS a FREE(g) entry to ALIVE(g+1, busy, kind *joining*, process slot p): the claim
    ///    and the owner's name in one atomic step, and a generation no snapshot of the entry
    ///    taken before it can match.
    /// 3. Initialise the counters and set the cursor to the current `write_pos` (ours alone:
    ///    nobody reads the fields of a joining entry).
    /// 4. CAS the kind in (Release: publishes step 3 to `min_cursor`).
    /// 5. SeqCst fence, read `write_pos` again as the starting point, store it (SYNC POINT
    ///    join), and CAS out of busy (Release).
    ///
    /// A process killed after step 2 leaves an ALIVE entry naming its dead process: any
    /// [`Segment::reap`] reclaims it. Between 2 and 4 the entry counts for nobody's cursor;
    /// from 4 its cursor is at most a few frames behind the final one (conservative).
    ///
    /// # Errors
    /// As [`Segment::register`].
    pub fn register_with(
        &self,
        kind: ConsumerKind,
        token: u64,
        is_alive: impl Fn(u64) -> bool,
    ) -> Result<Consumer<'a>, RegisterError> {
        self.register_impl(kind, token, is_alive, NEVER).map(|c| c.expect("runs to completion"))
    }

    /// Fault injection for crash tests: runs [`Segment::register_with`] and stops it dead after
    /// step `step` (1 ..= [`fault::REGISTER_STEPS`]), leaving the shared words exactly as a
    /// process killed there leaves them. `Ok(true)` when it stopped there, `Ok(false)` when it
    /// finished first (the consumer is then simply forgotten, as by a kill right after).
    ///
    /// # Errors
    /// As [`Segment::register`].
    #[doc(hidden)]
    pub fn register_dying(
        &self,
        kind: ConsumerKind,
        token: u64,
        is_alive: impl Fn(u64) -> bool,
        step: u32,
    ) -> Result<bool, RegisterError> {
        self.register_impl(kind, token, is_alive, step).map(|c| c.is_none())
    }

    fn register_impl(
        &self,
        kind: ConsumerKind,
        token: u64,
        is_alive: impl Fn(u64) -> bool,
        die: u32,
    ) -> Result<Option<Consumer<'a>>, RegisterError> {
        let pattern = self.layout.spec.pattern;
        match (kind, pattern) {
            (ConsumerKind::Worker, Pattern::Broadcast) | (ConsumerKind::Subscriber, Pattern::WorkQueue) => {
                return Err(RegisterError::WrongPattern { pattern, kind });
            }
            _ => {}
        }
        if token == 0 {
            return Err(RegisterError::ZeroToken);
        }
        let max = self.layout.spec.max_consumers;
        let free = |idx| EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Relaxed)).status;
        // A full table is the first thing to report (and no reason to claim a process slot).
        if !(0..max).any(|idx| free(idx) == EntryStatus::Free) {
            return Err(RegisterError::TableFull { max });
        }
        let p = self.process_slot(token, &is_alive).ok_or(RegisterError::TooManyProcesses { max })?;
        if die == 1 {
            return Ok(None);
        }
        for idx in 0..max {
            let w = self.entry(idx, ctl::consumer::STATE);
            // SYNC POINT entry-free: Acquire pairs with the Release CAS to FREE in `finish`.
            let cur = w.load(Ordering::Acquire);
            let st = EntryState::decode(cur);
            if st.status != EntryStatus::Free {
                continue;
            }
            let gen = st.gen.wrapping_add(1) & ENTRY_GEN_MASK;
            let joining = entry_word(ENTRY_ALIVE, true, KIND_JOINING, 0, p, gen);
            // SYNC POINT entry-free: the CAS reads the FREE word a finisher stored (Acquire), so
            // every hold of the previous occupant is cleared before we can claim a frame.
            if w.compare_exchange(cur, joining, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            if die == 2 {
                return Ok(None);
            }
            // The entry is ours: nobody reads the fields of a joining entry, and nobody else
            // writes them while it is ALIVE under our generation.
            let pre = self.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            for (f, v) in [
                (ctl::consumer::LEASE_NS, 0),
                (ctl::consumer::CURSOR, pre),
                (ctl::consumer::DELIVERED, 0),
                (ctl::consumer::SKIPPED, 0),
                (ctl::consumer::JOINED_POS, pre),
            ] {
                // Relaxed: published by the Release CAS below (SYNC POINT entry-alive).
                self.entry(idx, f).store(v, Ordering::Relaxed);
            }
            if die == 3 {
                return Ok(None);
            }
            let named = entry_word(ENTRY_ALIVE, true, kind as u64, 0, p, gen);
            // SYNC POINT entry-alive: Release pairs with the Acquire loads of the entry word in
            // `Producer::min_cursor`: a producer that sees our kind sees the cursor stored above.
            // A CAS: only a reaper that judged our process dead can have changed the word.
            if w.compare_exchange(joining, named, Ordering::Release, Ordering::Relaxed).is_err() {
                continue;
            }
            // SYNC POINT join (store buffering): we store our entry, then load `write_pos`; the
            // producer stores `write_pos`, then (next `begin`) loads the entries. Without a SeqCst
            // fence on both sides both could read the old values, and the producer could recycle
            // the first frame we start at. Pairs with the SeqCst fence in `WriteSlot::publish`
            // (and the one ending `Segment::take_over_producer`).
            fence(Ordering::SeqCst);
            let start = self.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            for f in [ctl::consumer::CURSOR, ctl::consumer::JOINED_POS] {
                // Relaxed: published by the Release CAS below; `start >= pre`, so a producer that
                // still reads `pre` is only more careful than it needs to be.
                self.entry(idx, f).store(start, Ordering::Relaxed);
            }
            if die == 4 {
                return Ok(None);
            }
            // SYNC POINT entry-alive: as above.
            if w.compare_exchange(
                named,
                entry_word(ENTRY_ALIVE, false, kind as u64, 0, p, gen),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
            {
                continue;
            }
            return Ok(Some(Consumer {
                seg: *self,
                idx,
                gen,
                process: p,
                kind,
                cursor: start,
                delivered: 0,
                skipped: 0,
                holds: 0,
            }));
        }
        Err(RegisterError::TableFull { max })
    }

    /// The process slot for `token` (step 1 of [`Segment::register_with`]).
    fn process_slot(&self, token: u64, is_alive: impl Fn(u64) -> bool) -> Option<u32> {
        let n = self.layout.spec.max_consumers;
        let slot = |p| self.entry(p, ctl::consumer::PROCESS);
        if let Some(p) = (0..n).find(|&p| self.process_token(p) == token) {
            return Some(p);
        }
        // SYNC POINT process-slot: AcqRel pairs with the Acquire loads in `process_token`.
        let claim =
            |p: u32, from: u64| slot(p).compare_exchange(from, token, Ordering::AcqRel, Ordering::Relaxed).is_ok();
        if let Some(p) = (0..n).find(|&p| self.process_token(p) == 0 && claim(p, 0)) {
            return Some(p);
        }
        (0..n).find(|&p| {
            let t = self.process_token(p);
            t != 0 && !is_alive(t) && !self.names_process(p) && claim(p, t)
        })
    }

    /// True when some non-FREE entry names process slot `p`.
    fn names_process(&self, p: u32) -> bool {
        (0..self.layout.spec.max_consumers).any(|idx| {
            // Acquire: an entry the dead process made is visible with its final word.
            let st = EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire));
            st.status != EntryStatus::Free && st.process == p
        })
    }

    /// Evicts consumer entry `idx` of generation `gen` and frees it for reuse under generation
    /// `gen + 1`; a late operation of the evicted consumer then returns
    /// [`ClaimError::Evicted`] and has no effect.
    ///
    /// - [`Reclaim::Idle`] is safe at any time: it succeeds only when the consumer is between
    ///   operations **and holds no frame** (a subscriber that stopped reading, say), so it can
    ///   never take a slot from a live reader. A consumer that holds frames is refused with
    ///   [`ReclaimError::Holding`].
    /// - [`Reclaim::Dead`] asserts that the process `owner` is dead (it can never resume), and
    ///   acts only while the entry's process slot still names `owner`: its holds are cleared
    ///   from every slot (a worker's frames become FREE). A judgement is thus tied to the
    ///   occupant it was made about — generation and owner together.
    ///
    /// Either way an entry found RECLAIMING at `gen` (a reclaim or an `unregister` stopped by a
    /// crash, or one running right now) is finished: finishing is idempotent and safe to run
    /// in any number of processes at once, because every hold is cleared by a CAS validated
    /// against the entry still being RECLAIMING at `gen` (see `finish`).
    ///
    /// # Examples
    /// ```
    /// # use framebus_core::*;
    /// # use framebus_core::segment::{Reclaim, ReclaimError};
    /// # let spec = SegmentSpec::new(FrameGeometry::new(8, 1, PixelFormat::Gray8), 2);
    /// # let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// # let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// # let mut p = seg.attach_producer(1).unwrap();
    /// let mut w = seg.register(ConsumerKind::Worker, 7).unwrap();
    /// p.begin().unwrap().publish(FrameMeta::default());
    /// let _frame = w.claim().unwrap();
    /// assert_eq!(seg.reclaim(w.index(), w.generation(), Reclaim::Idle), Err(ReclaimError::Holding { frames: 1 }));
    /// // ... the platform finds process 7 dead:
    /// let r = seg.reclaim(w.index(), w.generation(), Reclaim::Dead { owner: 7 }).unwrap();
    /// assert_eq!(r.cleared, 1);
    /// ```
    ///
    /// # Errors
    /// [`ReclaimError`] when nothing was done.
    pub fn reclaim(&self, idx: u32, gen: u64, how: Reclaim) -> Result<Reclaimed, ReclaimError> {
        self.reclaim_impl(idx, gen, how, NEVER).map(|r| r.expect("runs to completion"))
    }

    /// Fault injection for crash tests: [`Segment::reclaim`] stopped dead after step `step`
    /// (1 ..= [`fault::UNREGISTER_STEPS`]), as a reaper killed there leaves it. `Ok(true)` when
    /// it stopped there.
    ///
    /// # Errors
    /// As [`Segment::reclaim`].
    #[doc(hidden)]
    pub fn reclaim_dying(&self, idx: u32, gen: u64, how: Reclaim, step: u32) -> Result<bool, ReclaimError> {
        self.reclaim_impl(idx, gen, how, step).map(|r| r.is_none())
    }

    fn reclaim_impl(&self, idx: u32, gen: u64, how: Reclaim, die: u32) -> Result<Option<Reclaimed>, ReclaimError> {
        let n = self.layout.spec.max_consumers;
        if idx >= n {
            return Err(ReclaimError::NoSuchEntry);
        }
        let w = self.entry(idx, ctl::consumer::STATE);
        // SYNC POINT entry-evict: Acquire pairs with the Release bracket CAS in `Consumer::leave`.
        let mut cur = w.load(Ordering::Acquire);
        let mut reclaiming = false;
        for _ in 0..RETRY_LIMIT {
            let st = EntryState::decode(cur);
            if st.gen != gen {
                return Err(ReclaimError::Stale);
            }
            match st.status {
                EntryStatus::Reclaiming => {
                    reclaiming = true;
                    break;
                }
                EntryStatus::Alive => {}
                EntryStatus::Free | EntryStatus::Invalid => return Err(ReclaimError::Stale),
            }
            match how {
                Reclaim::Idle if st.busy => return Err(ReclaimError::Busy),
                Reclaim::Idle if st.holds != 0 => return Err(ReclaimError::Holding { frames: st.holds }),
                Reclaim::Idle => {}
                Reclaim::Dead { owner } => {
                    // The entry word we CAS from names slot `st.process`, and a slot is never
                    // reused while an entry names it: if it holds `owner` now, the occupant we
                    // evict is the process judged dead.
                    if st.process >= n || self.process_token(st.process) != owner {
                        return Err(ReclaimError::Stale);
                    }
                }
            }
            // SYNC POINT entry-evict: same word as the consumer's bracket CAS in
            // `Consumer::enter` / `leave`: exactly one of them wins, and the holds count we
            // checked is the one in force when we win.
            match w.compare_exchange(
                cur,
                entry_word(ENTRY_RECLAIMING, false, 0, 0, st.process, gen),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    reclaiming = true;
                    break;
                }
                Err(now) => cur = now,
            }
        }
        if !reclaiming {
            return Err(ReclaimError::Contended);
        }
        if die == 1 {
            return Ok(None);
        }
        self.finish(idx, gen, die)
    }

    /// True while entry `idx` is RECLAIMING at generation `gen`.
    ///
    /// SYNC POINT reclaim-validate: called between an Acquire load of a shared word that carries
    /// entry `idx`'s bit (a slot word, the frame-waiter word) and the CAS that would clear it.
    /// That CAS must never clear a bit of the entry's *next* occupant N. Two cases:
    /// - The value the finisher loaded carries N's bit: it was written by N's claim (or
    ///   announce) RMW or a later RMW (every write of a word that still has the bit is an RMW,
    ///   so they continue its release sequence), which N made after registering, i.e. after its
    ///   Acquire of the FREE word a finisher stored with Release. This Acquire load of the entry
    ///   then sees FREE or later, and the caller leaves the bit alone.
    /// - The value carries the dead occupant's bit, but the word has since become that value
    ///   again with N's bit (ABA), so the CAS would succeed. For the frame-waiter word the
    ///   version in bits 16-63, bumped by every change, rules that out. For a slot word it
    ///   cannot happen: the same word means the same frame (same slot generation), which N would
    ///   have claimed, but N claims only frames published after it registered (subscribers and
    ///   latest readers start their cursor at the `write_pos` they read after registering, which
    ///   is past every frame the dead occupant held), and a worker's claim is exclusive, so a
    ///   worker's frame goes FREE and is rewritten (new generation) before anyone claims it.
    ///
    /// loom: `late_finishers_never_clear_the_next_occupants_hold` and
    /// `a_dead_sleepers_bit_is_cleared_by_its_reclaim_and_never_the_next_occupants` (which fails
    /// without either the re-check or the version).
    fn reclaiming(&self, idx: u32, gen: u64) -> bool {
        let st = EntryState::decode(self.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire));
        st.status == EntryStatus::Reclaiming && st.gen == gen
    }

    /// Finishes the reclaim of entry `idx` at `gen`: clears its bit from every slot and from the
    /// frame-waiter mask, each by a CAS validated with `reclaiming`, then frees the entry.
    /// Several finishers may run at once (a crashed reclaim, a reap, the owner's own
    /// `unregister`): each bit is cleared exactly once, by whoever's CAS wins, and the FREE CAS
    /// succeeds exactly once; the others return [`ReclaimError::Stale`].
    fn finish(&self, idx: u32, gen: u64, die: u32) -> Result<Option<Reclaimed>, ReclaimError> {
        let bit = 1u16 << idx;
        let mut cleared = 0;
        let mut out = Ok(());
        for s in 0..self.layout.spec.slot_count {
            // SYNC POINT slot-release (by reclaim): as in `Consumer::release`.
            let held = |w| {
                let st = SlotState::decode(w);
                (st.holders & bit != 0 && matches!(st.kind, SlotKind::Ready | SlotKind::Taken))
                    .then(|| released(st, bit).encode())
            };
            match self.clear_validated(self.slot_word(s, ctl::slot::STATE), idx, gen, held) {
                Ok(c) => cleared += u32::from(c),
                Err(e) => {
                    out = Err(e);
                    break;
                }
            }
        }
        // Statistics only; nothing is ordered by this counter.
        self.ctl(ctl::RECLAIMED).fetch_add(u64::from(cleared), Ordering::Relaxed);
        // A Contended sweep leaves the entry RECLAIMING: any later reclaim or reap finishes it.
        out?;
        if die == 2 {
            return Ok(None);
        }
        // The consumer may have died asleep: take its bit out of the frame-waiter mask, or
        // every publish from now on would make a wake-up call for nobody.
        let bit = u64::from(bit);
        self.clear_validated(self.ctl(ctl::FRAME_WAITERS), idx, gen, |m| {
            (m & bit != 0).then(|| waiters_with(m, false, bit))
        })?;
        if die == 3 {
            return Ok(None);
        }
        let w = self.entry(idx, ctl::consumer::STATE);
        let cur = w.load(Ordering::Relaxed);
        let st = EntryState::decode(cur);
        if st.status != EntryStatus::Reclaiming || st.gen != gen {
            return Err(ReclaimError::Stale);
        }
        // SYNC POINT entry-free: Release pairs with the Acquire CAS in `register`; the entry
        // may be reused only after every hold was cleared. A CAS: exactly one finisher frees.
        w.compare_exchange(
            cur,
            entry_word(ENTRY_FREE, false, 0, 0, 0, gen.wrapping_add(1)),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .map_err(|_| ReclaimError::Stale)?;
        // Freed slots, or a subscriber cursor no longer holding the producer back: wake it.
        let wake = self.bump_if_waiters(ctl::SPACE_WAKE, ctl::SPACE_WAITERS);
        Ok(Some(Reclaimed { cleared, wake }))
    }

    /// Takes entry `idx`'s bit out of `word` for its reclaim at `gen`: `without(value)` is the
    /// value with the bit cleared, or `None` when the bit is not (or no longer) there. Each
    /// attempt loads the word (Acquire), re-checks that the entry is still RECLAIMING at `gen`
    /// (SYNC POINT reclaim-validate, see `reclaiming`: never a bit of the next occupant), and
    /// CASes. `Ok(true)` when this call cleared it.
    fn clear_validated(
        &self,
        word: &AtomicU64,
        idx: u32,
        gen: u64,
        without: impl Fn(u64) -> Option<u64>,
    ) -> Result<bool, ReclaimError> {
        // Acquire: SYNC POINT reclaim-validate.
        let mut cur = word.load(Ordering::Acquire);
        for _ in 0..RETRY_LIMIT {
            let Some(next) = without(cur) else { return Ok(false) };
            if !self.reclaiming(idx, gen) {
                return Err(ReclaimError::Stale);
            }
            // AcqRel: the Release half is SYNC POINT slot-release for slot words; Acquire on
            // failure for SYNC POINT reclaim-validate on the next attempt.
            match word.compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(true),
                Err(now) => cur = now,
            }
        }
        Err(ReclaimError::Contended)
    }

    /// Reclaims every consumer entry whose process `is_alive` calls dead, and finishes every
    /// reclaim a crash left half-done; calls `each(entry, what was reclaimed)` for each entry
    /// it freed and returns how many. The platform calls it with its liveness check; a
    /// [`Reclaimed::wake`] asks it to wake the producer's space-wake word.
    ///
    /// Each judgement is tied to its occupant: the entry's generation and the token in the
    /// process slot it names, passed on as [`Reclaim::Dead`]. No entry is skipped for its
    /// owner's value: an ALIVE entry always names a claimed process slot (step 2 of
    /// [`Segment::register_with`]), so a registrant killed anywhere is found dead.
    pub fn reap(&self, is_alive: impl Fn(u64) -> bool, mut each: impl FnMut(u32, Reclaimed)) -> u32 {
        let n = self.layout.spec.max_consumers;
        let mut freed = 0;
        for idx in 0..n {
            let st = self.entry_state(idx);
            let how = match st.status {
                EntryStatus::Free | EntryStatus::Invalid => continue,
                EntryStatus::Reclaiming => Reclaim::Idle,
                EntryStatus::Alive if st.process >= n => continue,
                EntryStatus::Alive => {
                    let owner = self.process_token(st.process);
                    if owner != 0 && is_alive(owner) {
                        continue;
                    }
                    Reclaim::Dead { owner }
                }
            };
            if let Ok(r) = self.reclaim(idx, st.gen, how) {
                each(idx, r);
                freed += 1;
            }
        }
        freed
    }

    /// The producer's half of the sleep handshake for space (the waker's half is
    /// `bump_if_waiters`, run by `release` and `reclaim`): reads the space-wake word, announces
    /// one more waiter, and issues a SeqCst fence. The caller must then re-check
    /// [`Producer::has_space`] and sleep only if it still fails, while the wake word still
    /// equals the returned value; afterwards it calls [`Segment::retire_space_sleeper`].
    ///
    /// Why no wake-up is lost: sleeper (announce; fence; re-check) against waker (change the
    /// condition; fence; read waiters) is store buffering closed by two SeqCst fences, so either
    /// the re-check sees the change or the waker sees the waiter and bumps the word, which
    /// makes the sleep return at once. Modelled by loom (`sleep_handshake_loses_no_wakeup`).
    pub fn announce_space_sleeper(&self) -> u32 {
        // SYNC POINT wake (sleeper): Acquire pairs with the Release bump in `bump_if_waiters`.
        let seen = self.ctl(ctl::SPACE_WAKE).load(Ordering::Acquire) as u32;
        self.ctl(ctl::SPACE_WAITERS).fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        seen
    }

    /// Withdraws a waiter announced by [`Segment::announce_space_sleeper`].
    pub fn retire_space_sleeper(&self) {
        let waiters = self.ctl(ctl::SPACE_WAITERS);
        // Saturating: a takeover resets the space-waiter count a dead producer left raised, and
        // a count that a reset (or a peer) zeroed must not wrap to 2^64 - 1 here. Release: the
        // count is a hint for wakers; nothing is published through it.
        let mut cur = waiters.load(Ordering::Relaxed);
        for _ in 0..RETRY_LIMIT {
            if cur == 0 {
                return;
            }
            match waiters.compare_exchange(cur, cur - 1, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Frame-wake word (low 32 bits are the futex word) and the frame-waiter word, for the
    /// platform: its bits 0-15 are the mask of sleeping consumers (bit *j*: consumer entry *j*
    /// sleeps or is about to; see [`Consumer::announce_sleep`]), bits 16-63 a version.
    pub fn frame_wake_words(&self) -> (&'a AtomicU64, &'a AtomicU64) {
        (self.ctl(ctl::FRAME_WAKE), self.ctl(ctl::FRAME_WAITERS))
    }

    /// Space-wake word and waiter count (the producer sleeps here under `Block`; see
    /// [`Segment::announce_space_sleeper`]).
    pub fn space_wake_words(&self) -> (&'a AtomicU64, &'a AtomicU64) {
        (self.ctl(ctl::SPACE_WAKE), self.ctl(ctl::SPACE_WAITERS))
    }

    fn read_frame(&self, slot: u32, gen: u64) -> Frame {
        // Relaxed: the caller holds the slot; the claim CAS (Acquire) ordered these after the
        // producer's descriptor stores (SYNC POINT slot-ready).
        let r = |f| self.slot_word(slot, f).load(Ordering::Relaxed);
        let wh = r(ctl::slot::WIDTH_HEIGHT);
        let ff = r(ctl::slot::FORMAT_FLAGS);
        let flags = (ff >> 32) as u32;
        Frame {
            slot,
            gen,
            pos: r(ctl::slot::POS),
            seq: r(ctl::slot::SEQ),
            epoch: r(ctl::slot::EPOCH),
            meta: FrameMeta {
                capture_ns: r(ctl::slot::CAPTURE_NS),
                pts_ns: r(ctl::slot::PTS_NS),
                width: wh as u32,
                height: (wh >> 32) as u32,
                pixel_format: ff as u32,
                flags: flags & !FLAG_CHECKSUM,
                // A hostile peer could write any length: clamp to the slot so readers stay in bounds.
                payload_len: r(ctl::slot::PAYLOAD_LEN).min(self.layout.spec.slot_payload_size),
                checksum: (flags & FLAG_CHECKSUM != 0).then(|| r(ctl::slot::CHECKSUM)),
            },
        }
    }

    /// Wakes-needed check shared by publish and release: the waker's half of the sleep
    /// handshake. The sleeper increments `waiters`, issues a SeqCst fence, then re-checks its
    /// condition before sleeping; the waker changes the condition, issues a SeqCst fence, then
    /// reads `waiters`. The two fences order the pairs so at least one side sees the other.
    fn bump_if_waiters(&self, wake: u64, waiters: u64) -> bool {
        fence(Ordering::SeqCst);
        // The frame word's version bits say nothing about sleepers; the space word is a count.
        let sleepers = if waiters == ctl::FRAME_WAITERS { WAITER_BITS } else { u64::MAX };
        if self.ctl(waiters).load(Ordering::Relaxed) & sleepers != 0 {
            self.ctl(wake).fetch_add(1, Ordering::Release);
            true
        } else {
            false
        }
    }
}

const fn released(st: SlotState, bit: u16) -> SlotState {
    let holders = st.holders & !bit;
    match st.kind {
        SlotKind::Taken if holders == 0 => st.with(SlotKind::Free, 0),
        k => st.with(k, holders),
    }
}

/// The unique producer endpoint. Dropping it detaches (another producer may then attach).
#[derive(Debug)]
pub struct Producer<'a> {
    seg: Segment<'a>,
    token: u64,
    epoch: u64,
    /// Cached copy of `write_pos` (the producer is its only writer).
    write_pos: u64,
    /// Cached copy of `next_seq`.
    next_seq: u64,
    hint: u32,
}

/// A slot the producer holds for writing. Publish it, or drop it to give the slot back.
#[derive(Debug)]
#[must_use = "publish the slot or it is given back unpublished"]
pub struct WriteSlot<'p, 'a> {
    producer: &'p mut Producer<'a>,
    slot: u32,
    state: SlotState,
    /// True when this slot was obtained by dropping an unclaimed frame.
    pub dropped_oldest: bool,
}

/// A [`WriteSlot`] detached from its borrow of the producer ([`WriteSlot::detach`]), for
/// handles that cannot hold a borrow: a C or Python producer object that keeps its producer
/// and its slot in one place. The slot stays WRITING (the producer's) until it is resumed
/// with [`Producer::resume`] and published or dropped; a pending slot that is simply
/// forgotten stays the producer's until the producer detaches or dies and is taken over.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "resume the slot and publish or drop it, or it stays out of service"]
pub struct PendingSlot {
    slot: u32,
    state: SlotState,
    token: u64,
    epoch: u64,
    dropped_oldest: bool,
}

impl PendingSlot {
    /// Slot index.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Sequence number given to the frame.
    pub seq: u64,
    /// Publish position.
    pub pos: u64,
    /// Consumers are sleeping: the platform must wake the frame-wake word.
    pub wake: bool,
}

impl<'a> Producer<'a> {
    /// The segment.
    pub fn segment(&self) -> &Segment<'a> {
        &self.seg
    }

    /// The epoch this producer attached at.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The sequence number the next published frame gets (unless a drop-newest consumes it
    /// first): what a producer that stamps the number into the frame writes.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Turns a [`PendingSlot`] from [`WriteSlot::detach`] back into a [`WriteSlot`].
    ///
    /// # Errors
    /// Hands `pending` back when it is not this producer's: another producer (owner token or
    /// epoch; also another segment's) made it, or its slot no longer holds the WRITING state
    /// it was detached in.
    pub fn resume(&mut self, pending: PendingSlot) -> Result<WriteSlot<'_, 'a>, PendingSlot> {
        // Relaxed: the word was last written by this producer (the CAS that made it WRITING),
        // and nobody else writes a WRITING word; the load only checks the handle's identity.
        let cur = self
            .seg
            .slot_word(pending.slot % self.seg.layout.spec.slot_count, ctl::slot::STATE)
            .load(Ordering::Relaxed);
        if pending.epoch != self.epoch
            || pending.slot >= self.seg.layout.spec.slot_count
            || cur != pending.state.encode()
        {
            return Err(pending);
        }
        let PendingSlot { slot, state, dropped_oldest, .. } = pending;
        Ok(WriteSlot { producer: self, slot, state, dropped_oldest })
    }

    /// Acquires a slot to write the next frame into, applying the segment's overflow policy.
    ///
    /// # Examples
    /// ```
    /// # use framebus_core::*;
    /// # let spec = SegmentSpec::new(FrameGeometry::new(4, 2, PixelFormat::Gray8), 2);
    /// # let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    /// # let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    /// let mut producer = seg.attach_producer(1).unwrap();
    /// let mut worker = seg.register(ConsumerKind::Worker, 2).unwrap();
    /// let mut slot = producer.begin().unwrap();
    /// slot.write(0, &[7; 8]);
    /// let published = slot.publish(FrameMeta { payload_len: 8, ..FrameMeta::default() });
    /// let frame = worker.claim().unwrap();
    /// let mut buf = [0; 8];
    /// worker.read(&frame, 0, &mut buf).unwrap();
    /// assert_eq!((frame.seq, buf), (published.seq, [7; 8]));
    /// worker.release(frame).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`BeginError::Full`] under `Block` when no slot is free, [`BeginError::DroppedNewest`] when
    /// the frame is dropped (counted), [`BeginError::Superseded`] after a takeover.
    pub fn begin(&mut self) -> Result<WriteSlot<'_, 'a>, BeginError> {
        if self.seg.ctl(ctl::PRODUCER_OWNER).load(Ordering::Acquire) != self.token {
            return Err(BeginError::Superseded);
        }
        let spec = self.seg.layout.spec;
        let n = spec.slot_count;
        for _ in 0..RETRY_LIMIT {
            // 1. A FREE slot, scanning from the last one used.
            for i in 0..n {
                let s = (self.hint + i) % n;
                let w = self.seg.slot_word(s, ctl::slot::STATE);
                let cur = w.load(Ordering::Relaxed);
                let st = SlotState::decode(cur);
                if st.kind == SlotKind::Free {
                    if let Some(state) = self.try_take(s, st, false) {
                        return Ok(WriteSlot { producer: self, slot: s, state, dropped_oldest: false });
                    }
                }
            }
            // 2. A READY slot nobody holds: consumed by every subscriber (recycle), or the
            //    oldest unclaimed frame under DropOldest (drop).
            let min_cursor = match spec.pattern {
                Pattern::Broadcast => self.min_cursor(),
                Pattern::WorkQueue => 0,
            };
            let mut best: Option<(u32, SlotState, u64)> = None;
            for s in 0..n {
                // Relaxed: a scan for candidates; `try_take`'s Acquire CAS validates and orders.
                let st = SlotState::decode(self.seg.slot_word(s, ctl::slot::STATE).load(Ordering::Relaxed));
                if st.kind != SlotKind::Ready || st.holders != 0 {
                    continue;
                }
                let pos = self.seg.slot_word(s, ctl::slot::POS).load(Ordering::Relaxed);
                let consumed = pos < min_cursor;
                if (consumed || spec.policy == OverflowPolicy::DropOldest) && best.is_none_or(|(_, _, p)| pos < p) {
                    best = Some((s, st, pos));
                }
            }
            match best {
                Some((s, st, pos)) => {
                    let drop = pos >= min_cursor;
                    if let Some(state) = self.try_take(s, st, drop) {
                        return Ok(WriteSlot { producer: self, slot: s, state, dropped_oldest: drop });
                    }
                    // Lost a race with a consumer: look again.
                }
                None => {
                    return match spec.policy {
                        OverflowPolicy::Block => Err(BeginError::Full),
                        OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => Err(self.drop_newest()),
                    }
                }
            }
        }
        // Every candidate was taken from under us RETRY_LIMIT times (only a misbehaving peer
        // does that). Block never drops a frame: the caller waits for space and retries.
        Err(match spec.policy {
            OverflowPolicy::Block => BeginError::Full,
            OverflowPolicy::DropNewest | OverflowPolicy::DropOldest => self.drop_newest(),
        })
    }

    /// CASes slot `s` from `st` to WRITING; returns the new state on success.
    fn try_take(&mut self, s: u32, st: SlotState, drop: bool) -> Option<SlotState> {
        let w = self.seg.slot_word(s, ctl::slot::STATE);
        let next = SlotState { gen: (st.gen + 1) & GEN_MASK, kind: SlotKind::Writing, holders: 0 };
        // SYNC POINT slot-release: Acquire pairs with the Release CAS of the last holder in
        // `Consumer::release` / `Segment::clear_holds`: their payload reads happen before our writes.
        w.compare_exchange(st.encode(), next.encode(), Ordering::Acquire, Ordering::Relaxed).ok()?;
        if drop {
            let d = self.seg.ctl(ctl::DROPPED_OLDEST);
            // Written only by the producer: a load/store pair is enough. Release pairs with the
            // Acquire load in `Segment::stats` (statistics; nothing else is ordered by it).
            d.store(d.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        }
        self.hint = (s + 1) % self.seg.layout.spec.slot_count;
        Some(next)
    }

    fn drop_newest(&mut self) -> BeginError {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let d = self.seg.ctl(ctl::DROPPED_NEWEST);
        // Written only by the producer; stored before `next_seq` (see `take_over_producer`).
        // Release pairs with the Acquire loads in `Segment::stats` and `take_over_producer`.
        d.store(d.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        // SYNC POINT next-seq: pairs with Acquire loads in `Segment::stats`.
        self.seg.ctl(ctl::NEXT_SEQ).store(self.next_seq, Ordering::Release);
        BeginError::DroppedNewest { seq }
    }

    /// Smallest cursor of the live subscribers (`u64::MAX` when there are none).
    fn min_cursor(&self) -> u64 {
        let mut min = u64::MAX;
        for idx in 0..self.seg.layout.spec.max_consumers {
            // SYNC POINT entry-alive: pairs with the Release store in `register`.
            let st = EntryState::decode(self.seg.entry(idx, ctl::consumer::STATE).load(Ordering::Acquire));
            // ALIVE subscribers only: a RECLAIMING entry's kind is cleared (its holds alone keep
            // its slots), and a joining one has no kind yet (`register_with`, steps 2-4). An
            // Invalid word is counted, which is only more careful.
            if st.status != EntryStatus::Free && st.kind == Some(ConsumerKind::Subscriber) {
                // SYNC POINT subscriber-cursor: pairs with the Release store in `Consumer::claim_broadcast`.
                min = min.min(self.seg.entry(idx, ctl::consumer::CURSOR).load(Ordering::Acquire));
            }
        }
        min
    }

    /// Checks whether the producer should wake itself up: true when a slot could be acquired.
    /// For the platform's sleep loop (re-check after announcing a waiter).
    pub fn has_space(&self) -> bool {
        let spec = self.seg.layout.spec;
        let min_cursor = if spec.pattern == Pattern::Broadcast { self.min_cursor() } else { 0 };
        (0..spec.slot_count).any(|s| {
            // Acquire pairs with the release CASes in `Consumer::release` (a hint for sleeping).
            let st = SlotState::decode(self.seg.slot_word(s, ctl::slot::STATE).load(Ordering::Acquire));
            st.kind == SlotKind::Free
                || (st.kind == SlotKind::Ready
                    && st.holders == 0
                    && self.seg.slot_word(s, ctl::slot::POS).load(Ordering::Relaxed) < min_cursor)
        })
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        // Detach only if we are still the owner (a takeover may have replaced us).
        let _ = self.seg.ctl(ctl::PRODUCER_OWNER).compare_exchange(self.token, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

impl<'a> WriteSlot<'_, 'a> {
    /// The sequence number of the frame this slot's reuse dropped (`DropOldest`), if any: the
    /// frame no consumer will ever get, for callers that account for drops frame by frame.
    pub fn dropped_seq(&self) -> Option<u64> {
        // Relaxed: the descriptor was last written by this producer (or the one it took over
        // from, ordered by the takeover), and the slot is ours (WRITING) until publish.
        self.dropped_oldest.then(|| self.producer.seg.slot_word(self.slot, ctl::slot::SEQ).load(Ordering::Relaxed))
    }

    /// Slot index.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Bytes available in the slot.
    pub fn capacity(&self) -> u64 {
        self.producer.seg.layout.spec.slot_payload_size
    }

    /// Byte offset of the payload from the region start.
    pub fn offset(&self) -> u64 {
        self.producer.seg.layout.slot_offset(self.slot)
    }

    /// Raw pointer to the payload, for writing in place (a decoder, a DMA engine). Valid for
    /// [`WriteSlot::capacity`] bytes until the slot is published or dropped.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        // The offset is inside the region: the layout was validated against the region size.
        self.producer.seg.region.base().as_ptr().wrapping_add(self.offset() as usize)
    }

    /// Copies `bytes` into the payload at `at`.
    ///
    /// # Panics
    /// When `at + bytes.len()` exceeds the slot capacity.
    pub fn write(&mut self, at: u64, bytes: &[u8]) {
        assert!(
            at.checked_add(bytes.len() as u64).is_some_and(|e| e <= self.capacity()),
            "write past the end of the slot"
        );
        let seg = self.producer.seg;
        seg.region.tracker(self.slot as usize).write(|| {
            // SAFETY: the slot is WRITING and owned by this producer; range checked above.
            unsafe { seg.region.copy_in((self.offset() + at) as usize, bytes) }
        });
    }

    /// Detaches the slot from its borrow of the producer (see [`PendingSlot`]); the slot stays
    /// the producer's, unpublished.
    pub fn detach(self) -> PendingSlot {
        let pending = PendingSlot {
            slot: self.slot,
            state: self.state,
            token: self.producer.token,
            epoch: self.producer.epoch,
            dropped_oldest: self.dropped_oldest,
        };
        // Not dropped: dropping would give the slot back.
        core::mem::forget(self);
        pending
    }

    /// Publishes the frame with `meta`, giving it the next sequence number.
    pub fn publish(self, meta: FrameMeta) -> Published {
        let p = &mut *self.producer;
        let seg = p.seg;
        let (slot, st) = (self.slot, self.state);
        let (pos, seq) = (p.write_pos, p.next_seq);
        let flags = meta.flags & !FLAG_CHECKSUM | if meta.checksum.is_some() { FLAG_CHECKSUM } else { 0 };
        for (f, v) in [
            (ctl::slot::POS, pos),
            (ctl::slot::SEQ, seq),
            (ctl::slot::CAPTURE_NS, meta.capture_ns),
            (ctl::slot::PTS_NS, meta.pts_ns),
            (ctl::slot::WIDTH_HEIGHT, u64::from(meta.width) | u64::from(meta.height) << 32),
            (ctl::slot::FORMAT_FLAGS, u64::from(meta.pixel_format) | u64::from(flags) << 32),
            (ctl::slot::PAYLOAD_LEN, meta.payload_len),
            (ctl::slot::CHECKSUM, meta.checksum.unwrap_or(0)),
            (ctl::slot::EPOCH, p.epoch),
        ] {
            // Relaxed: published by the Release store of the state word below (SYNC POINT slot-ready).
            seg.slot_word(slot, f).store(v, Ordering::Relaxed);
        }
        // SYNC POINT slot-ready: pairs with the Acquire claim CAS in `Consumer::claim*`; makes
        // the payload and descriptor visible to whoever claims the slot.
        seg.slot_word(slot, ctl::slot::STATE).store(st.with(SlotKind::Ready, 0).encode(), Ordering::Release);
        // SYNC POINT ring-cell: pairs with the Acquire load of the cell in `Consumer::claim*`.
        seg.ring_cell(pos).store((pos & POS_MASK) << 16 | u64::from(slot), Ordering::Release);
        p.write_pos = pos.wrapping_add(1);
        p.next_seq = seq.wrapping_add(1);
        // `next_seq` before `write_pos`: a crash in between leaves next_seq ahead, which a
        // takeover counts as a dropped frame instead of reissuing the sequence number.
        // SYNC POINT next-seq: pairs with Acquire loads in `Segment::stats` / takeover.
        seg.ctl(ctl::NEXT_SEQ).store(p.next_seq, Ordering::Release);
        // SYNC POINT write-pos: pairs with the Acquire loads of `write_pos` in `Consumer::claim*`;
        // the cell is written before any consumer can look for position `pos`.
        seg.ctl(ctl::WRITE_POS).store(p.write_pos, Ordering::Release);
        // The SeqCst fence inside also serves SYNC POINT join (see `Segment::register`): our
        // `write_pos` store is ordered before the entry loads of our next `min_cursor`.
        let wake = seg.bump_if_waiters(ctl::FRAME_WAKE, ctl::FRAME_WAITERS);
        core::mem::forget(self);
        Published { seq, pos, wake }
    }
}

impl Drop for WriteSlot<'_, '_> {
    fn drop(&mut self) {
        // Unpublished: give the slot back. Plain store: nobody else writes a WRITING word.
        // SYNC POINT slot-release (by the producer): Release, though nobody read the payload.
        let w = self.producer.seg.slot_word(self.slot, ctl::slot::STATE);
        w.store(self.state.with(SlotKind::Free, 0).encode(), Ordering::Release);
    }
}

/// A registered consumer (worker, subscriber or latest reader). Not `Sync`: one thread uses it.
#[derive(Debug)]
pub struct Consumer<'a> {
    seg: Segment<'a>,
    idx: u32,
    gen: u64,
    /// The process slot our entry names.
    process: u32,
    kind: ConsumerKind,
    /// Next position to read (subscriber / latest); the shared copy is written for the producer.
    cursor: u64,
    delivered: u64,
    skipped: u64,
    /// Frames held now; mirrored into the entry word at the end of every operation so that a
    /// non-forced reclaim can see, atomically, that we may be reading.
    holds: u16,
}

impl<'a> Consumer<'a> {
    /// Consumer-table index (the bit this consumer sets in slot holder masks).
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// Entry generation (pass to [`Segment::reclaim`]).
    pub fn generation(&self) -> u64 {
        self.gen
    }

    /// Consumer kind.
    pub fn kind(&self) -> ConsumerKind {
        self.kind
    }

    /// The segment.
    pub fn segment(&self) -> &Segment<'a> {
        &self.seg
    }

    /// Frames delivered to this consumer and frames it skipped (broadcast/latest).
    pub fn counts(&self) -> (u64, u64) {
        (self.delivered, self.skipped)
    }

    /// Sets the lease deadline a reaper may check (platform clock, ns). Inside the busy
    /// bracket, so the store never lands on the entry of a consumer that registered after this
    /// one was evicted.
    ///
    /// # Errors
    /// [`ClaimError::Evicted`] when this consumer was reclaimed.
    pub fn set_lease(&mut self, deadline_ns: u64) -> Result<(), ClaimError> {
        self.bracket(
            |c| {
                // Relaxed: published by the Release CAS that closes the bracket.
                c.seg.entry(c.idx, ctl::consumer::LEASE_NS).store(deadline_ns, Ordering::Relaxed);
                Ok(())
            },
            |_, ()| {},
        )
    }

    fn alive_word(&self, busy: bool, holds: u16) -> u64 {
        entry_word(ENTRY_ALIVE, busy, self.kind as u64, holds, self.process, self.gen)
    }

    /// True while our entry is still ours (ALIVE at our generation and process slot).
    fn still_registered(&self) -> bool {
        // Acquire: SYNC POINT reclaim-validate, as in `Segment::reclaiming`.
        let st = EntryState::decode(self.seg.entry(self.idx, ctl::consumer::STATE).load(Ordering::Acquire));
        st.status == EntryStatus::Alive && st.gen == self.gen && st.process == self.process
    }

    /// The consumer's half of the sleep handshake (the waker's half is `bump_if_waiters`, run
    /// by `publish`): reads the frame-wake word, sets this entry's bit in the frame-waiter
    /// mask, and issues a SeqCst fence. The caller must then claim again and sleep only if that
    /// still finds nothing, while the wake word still equals the returned value; afterwards it
    /// calls [`Consumer::retire_sleep`].
    ///
    /// Why no wake-up is lost: sleeper (announce; fence; re-check) against waker (publish;
    /// fence; read the mask) is store buffering closed by two SeqCst fences, so either the
    /// re-check sees the frame or the waker sees the bit and bumps the word, which makes the
    /// sleep return at once (loom: `sleep_handshake_loses_no_wakeup`). The waiters are a mask
    /// rather than a count so that a consumer killed asleep can be taken out of it: its reclaim
    /// clears its bit (loom: `a_dead_sleepers_bit_is_cleared_by_its_reclaim`).
    pub fn announce_sleep(&self) -> u32 {
        let (wake, waiters) = self.seg.frame_wake_words();
        let bit = 1u64 << self.idx;
        // SYNC POINT wake (sleeper): Acquire pairs with the Release bump in `bump_if_waiters`.
        let seen = wake.load(Ordering::Acquire) as u32;
        // A CAS, not a fetch-or: the version must move with the bit (see `WAITER_VERSION`).
        let mut m = waiters.load(Ordering::Relaxed);
        let mut announced = false;
        for _ in 0..RETRY_LIMIT {
            match waiters.compare_exchange(m, waiters_with(m, true, bit), Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => {
                    announced = true;
                    break;
                }
                Err(now) => m = now,
            }
        }
        if !announced {
            // Only a peer flipping the word for RETRY_LIMIT rounds gets here: set the bit without
            // the version rather than risk a sleep nobody would wake.
            waiters.fetch_or(bit, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        seen
    }

    /// Takes this consumer out of the frame-waiter mask (see [`Consumer::announce_sleep`]).
    /// After an eviction the bit may already belong to the entry's next occupant: then it is
    /// left alone.
    pub fn retire_sleep(&self) {
        let (_, waiters) = self.seg.frame_wake_words();
        let bit = 1u64 << self.idx;
        // Acquire: SYNC POINT reclaim-validate (the bit may be the next occupant's).
        let mut m = waiters.load(Ordering::Acquire);
        for _ in 0..RETRY_LIMIT {
            if m & bit == 0 || !self.still_registered() {
                return;
            }
            match waiters.compare_exchange(m, waiters_with(m, false, bit), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(now) => m = now,
            }
        }
    }

    /// Opens the busy bracket; fails once the entry was reclaimed.
    fn enter(&self) -> Result<(), ClaimError> {
        // SYNC POINT entry-evict: CAS on the same word as `Segment::reclaim`; if reclaim won,
        // we see RECLAIMING/FREE and stop; if we won, reclaim sees busy and waits.
        self.seg
            .entry(self.idx, ctl::consumer::STATE)
            .compare_exchange(
                self.alive_word(false, self.holds),
                self.alive_word(true, self.holds),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(|_| ClaimError::Evicted)
    }

    /// Closes the bracket, publishing the new hold count. False when a forced reclaim took
    /// the entry while we were inside.
    fn leave(&self, held_before: u16) -> bool {
        // SYNC POINT entry-evict: Release pairs with the Acquire load in `Segment::reclaim`:
        // everything done inside the bracket is visible to a reclaimer that sees us idle.
        // A CAS so that a forced reclaim that already took the entry is not undone.
        self.seg
            .entry(self.idx, ctl::consumer::STATE)
            .compare_exchange(
                self.alive_word(true, held_before),
                self.alive_word(false, self.holds),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Runs `f` inside the busy bracket. If a forced reclaim evicted us meanwhile (it should
    /// only be forced on dead processes, but if it hit a live one), whatever `f` claimed is
    /// given back by `undo`, so no hold outlives the entry, and the result is `Evicted`.
    fn bracket<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ClaimError>,
        undo: impl FnOnce(&Self, T),
    ) -> Result<T, ClaimError> {
        self.enter()?;
        let before = self.holds;
        let r = f(self);
        if self.leave(before) {
            return r;
        }
        if let Ok(v) = r {
            undo(self, v);
        }
        self.holds = 0;
        Err(ClaimError::Evicted)
    }

    /// Clears our bit from `frame`'s slot; returns whether the slot lost its last holder.
    fn unhold(&self, frame: &Frame) -> Result<bool, ClaimError> {
        if frame.slot >= self.seg.layout.spec.slot_count {
            return Err(ClaimError::NotHeld);
        }
        let bit = 1u16 << self.idx;
        let w = self.seg.slot_word(frame.slot, ctl::slot::STATE);
        // Relaxed: only a starting guess for the CAS below, which carries the ordering.
        let mut cur = w.load(Ordering::Relaxed);
        for _ in 0..RETRY_LIMIT {
            let st = SlotState::decode(cur);
            if st.gen != frame.gen || st.holders & bit == 0 || !matches!(st.kind, SlotKind::Ready | SlotKind::Taken) {
                return Err(ClaimError::NotHeld);
            }
            let next = released(st, bit);
            // SYNC POINT slot-release: Release pairs with the Acquire CAS in
            // `Producer::try_take`: our payload reads happen before the producer rewrites.
            match w.compare_exchange(cur, next.encode(), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Ok(next.holders == 0),
                Err(now) => cur = now,
            }
        }
        Err(ClaimError::Contended)
    }

    /// Checks that this consumer holds `frame` (its bit set at the frame's generation).
    fn holding(&self, frame: &Frame) -> Result<(), ClaimError> {
        if frame.slot >= self.seg.layout.spec.slot_count {
            return Err(ClaimError::NotHeld);
        }
        // SYNC POINT slot-ready: Acquire pairs with the claim CAS's release sequence; if we see
        // our bit at this generation, the producer cannot write the slot until we release it.
        let st = SlotState::decode(self.seg.slot_word(frame.slot, ctl::slot::STATE).load(Ordering::Acquire));
        let held = st.gen == frame.gen
            && st.holders & (1u16 << self.idx) != 0
            && matches!(st.kind, SlotKind::Ready | SlotKind::Taken);
        if held {
            Ok(())
        } else {
            Err(ClaimError::NotHeld)
        }
    }

    /// A cheap, read-only hint: true when a frame may be waiting (the write position is past
    /// this consumer's cursor, or the shared claim cursor for workers). Changes no state and
    /// takes no lock-prefixed instruction, so a spinning consumer can poll it and call
    /// [`Consumer::claim`] only when it says yes; `claim` remains the authority (it may still
    /// return `Empty` when another worker won the frame).
    #[must_use]
    pub fn might_have_frame(&self) -> bool {
        // Relaxed: only a hint; `claim` re-reads both with the orderings that matter.
        let wp = self.seg.ctl(ctl::WRITE_POS).load(Ordering::Relaxed);
        let at = match self.kind {
            ConsumerKind::Worker => self.seg.ctl(ctl::CLAIM_CURSOR).load(Ordering::Relaxed),
            ConsumerKind::Subscriber | ConsumerKind::Latest => self.cursor,
        };
        if wp == at {
            return false;
        }
        // The claim that follows reads this position's ring cell first: start fetching it
        // now, so it arrives while `claim` opens its busy bracket.
        prefetch_read((self.seg.ring_cell(at) as *const AtomicU64).cast());
        true
    }

    /// Claims the next frame according to this consumer's kind.
    ///
    /// # Errors
    /// [`ClaimError::Empty`] when nothing is available, [`ClaimError::Evicted`] after a reclaim,
    /// [`ClaimError::Corrupt`] / [`ClaimError::Contended`] for hostile shared state.
    pub fn claim(&mut self) -> Result<Frame, ClaimError> {
        self.bracket(
            |c| {
                // We hold at most one frame per slot: a count above the slot count is corrupt (a
                // peer cleared our bits). Checked here, the count stays within slot_count + 1,
                // which the entry's 11-bit holds field always fits (MAX_SLOTS is 1024).
                if u32::from(c.holds) > c.seg.layout.spec.slot_count {
                    return Err(ClaimError::Corrupt);
                }
                let frame = match c.kind {
                    ConsumerKind::Worker => c.claim_work(),
                    ConsumerKind::Subscriber => c.claim_broadcast(),
                    ConsumerKind::Latest => c.claim_latest(),
                }?;
                c.holds += 1;
                Ok(frame)
            },
            |c, frame| {
                let _ = c.unhold(&frame);
            },
        )
    }

    /// Tries to add our hold to the frame at `pos` if the ring still maps it to a READY slot.
    /// `Ok(None)` means the frame is gone (claimed exclusively, dropped, or its slot reused).
    fn try_hold(&self, pos: u64, exclusive: bool) -> Result<Option<Frame>, ClaimError> {
        let seg = &self.seg;
        // SYNC POINT ring-cell: pairs with the Release store in `WriteSlot::publish`.
        let cell = seg.ring_cell(pos).load(Ordering::Acquire);
        if cell >> 16 != pos & POS_MASK {
            return Ok(None);
        }
        let slot = (cell & 0xFFFF) as u32;
        if slot >= seg.layout.spec.slot_count {
            return Err(ClaimError::Corrupt);
        }
        // Start fetching the payload's first line now, so that it travels from the producer's
        // cache together with the slot's state line instead of after the claim (a hint only).
        prefetch_read(seg.region.base().as_ptr().wrapping_add(seg.layout.slot_offset(slot) as usize));
        let w = seg.slot_word(slot, ctl::slot::STATE);
        let bit = 1u16 << self.idx;
        // Acquire: starting value for the CAS loop, which carries the ordering.
        let mut cur = w.load(Ordering::Acquire);
        for _ in 0..RETRY_LIMIT {
            let st = SlotState::decode(cur);
            let claimable = match st.kind {
                SlotKind::Ready => true,
                SlotKind::Taken => !exclusive,
                _ => false,
            };
            // The descriptor's position is read before the CAS; the CAS succeeding proves the
            // state (and so the descriptor, written only in WRITING) did not change in between.
            if !claimable || seg.slot_word(slot, ctl::slot::POS).load(Ordering::Relaxed) != pos {
                return Ok(None);
            }
            if st.holders & bit != 0 {
                return Err(ClaimError::Corrupt);
            }
            let kind = if exclusive { SlotKind::Taken } else { st.kind };
            // SYNC POINT slot-ready: Acquire pairs with the Release store in `WriteSlot::publish`
            // (and the release sequence of later holder CASes).
            match w.compare_exchange(cur, st.with(kind, st.holders | bit).encode(), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(Some(seg.read_frame(slot, st.gen))),
                Err(now) => cur = now,
            }
        }
        Err(ClaimError::Contended)
    }

    fn claim_work(&mut self) -> Result<Frame, ClaimError> {
        let seg = self.seg;
        let cursor = seg.ctl(ctl::CLAIM_CURSOR);
        for _ in 0..RETRY_LIMIT {
            // SYNC POINT claim-cursor: Acquire pairs with the AcqRel CAS that advanced it.
            let c = cursor.load(Ordering::Acquire);
            // SYNC POINT write-pos: pairs with the Release store in `WriteSlot::publish`.
            let wp = seg.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            if c >= wp {
                if c > wp {
                    return Err(ClaimError::Corrupt);
                }
                return Err(ClaimError::Empty);
            }
            let ring = u64::from(seg.layout.ring_capacity);
            if wp - c > ring {
                // Positions before wp - ring had their cells overwritten: those frames can no
                // longer be claimed through the ring (they were dropped or consumed). Jump, so a
                // worker that fell far behind a DropOldest producer catches up in one step.
                let _ = cursor.compare_exchange(c, wp - ring, Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            match self.try_hold(c, true)? {
                Some(frame) => {
                    // Move the cursor on; if someone else already did, fine.
                    let _ = cursor.compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed);
                    seg.ctl(ctl::DELIVERED).fetch_add(1, Ordering::Relaxed);
                    self.delivered += 1;
                    return Ok(frame);
                }
                None => {
                    // Frame `c` has left READY for good (claimed, dropped, or its cell reused):
                    // help move the cursor past it, then look again.
                    let _ = cursor.compare_exchange(c, c + 1, Ordering::AcqRel, Ordering::Relaxed);
                }
            }
        }
        Err(ClaimError::Contended)
    }

    fn store_cursor(&self) {
        // SYNC POINT subscriber-cursor: pairs with the Acquire load in `Producer::min_cursor`.
        self.seg.entry(self.idx, ctl::consumer::CURSOR).store(self.cursor, Ordering::Release);
        self.seg.entry(self.idx, ctl::consumer::DELIVERED).store(self.delivered, Ordering::Relaxed);
        self.seg.entry(self.idx, ctl::consumer::SKIPPED).store(self.skipped, Ordering::Relaxed);
    }

    fn claim_broadcast(&mut self) -> Result<Frame, ClaimError> {
        let seg = self.seg;
        let ring = u64::from(seg.layout.ring_capacity);
        let mut result = Err(ClaimError::Contended);
        for _ in 0..RETRY_LIMIT {
            // SYNC POINT write-pos: pairs with the Release store in `WriteSlot::publish`.
            let wp = seg.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
            if self.cursor >= wp {
                result = Err(if self.cursor > wp { ClaimError::Corrupt } else { ClaimError::Empty });
                break;
            }
            if wp - self.cursor > ring {
                // Cells before wp - ring are overwritten: those frames are gone for us.
                self.skipped += wp - ring - self.cursor;
                self.cursor = wp - ring;
            }
            match self.try_hold(self.cursor, false) {
                Ok(Some(frame)) => {
                    self.cursor += 1;
                    self.delivered += 1;
                    result = Ok(frame);
                    break;
                }
                Ok(None) => {
                    self.cursor += 1;
                    self.skipped += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.store_cursor();
        result
    }

    fn claim_latest(&mut self) -> Result<Frame, ClaimError> {
        let seg = self.seg;
        let ring = u64::from(seg.layout.ring_capacity);
        // SYNC POINT write-pos: pairs with the Release store in `WriteSlot::publish`.
        let wp = seg.ctl(ctl::WRITE_POS).load(Ordering::Acquire);
        if wp <= self.cursor {
            return Err(if wp < self.cursor { ClaimError::Corrupt } else { ClaimError::Empty });
        }
        // Newest first; fall back to older frames if the newest was recycled meanwhile.
        let oldest = self.cursor.max(wp.saturating_sub(ring));
        let mut pos = wp;
        while pos > oldest {
            pos -= 1;
            if let Some(frame) = self.try_hold(pos, false)? {
                self.skipped += pos - self.cursor;
                self.cursor = pos + 1;
                self.delivered += 1;
                self.store_cursor();
                return Ok(frame);
            }
        }
        Err(ClaimError::Empty)
    }

    /// Copies `dst.len()` payload bytes of `frame` from offset `at` into `dst`.
    ///
    /// # Errors
    /// [`ClaimError::NotHeld`] when this consumer does not hold `frame` (a forged or stale frame):
    /// nothing is read.
    ///
    /// # Panics
    /// When the range exceeds the slot capacity.
    pub fn read(&self, frame: &Frame, at: u64, dst: &mut [u8]) -> Result<(), ClaimError> {
        let cap = self.seg.layout.spec.slot_payload_size;
        assert!(at.checked_add(dst.len() as u64).is_some_and(|e| e <= cap), "read past the end of the slot");
        self.holding(frame)?;
        let region = self.seg.region;
        let off = self.seg.layout.slot_offset(frame.slot) + at;
        region.tracker(frame.slot as usize).read(|| {
            // SAFETY: we hold the slot (checked just above; only our own release or a forced
            // reclaim of a dead process can end that), so no honest writer touches it; the range
            // is inside the slot, checked above against the validated layout.
            unsafe { region.copy_out(off as usize, dst) }
        });
        Ok(())
    }

    /// Raw pointer to `frame`'s payload, for reading in place (an accelerator input). Valid for
    /// the slot capacity until `frame` is released.
    ///
    /// # Errors
    /// [`ClaimError::NotHeld`] when this consumer does not hold `frame`.
    pub fn payload_ptr(&self, frame: &Frame) -> Result<*const u8, ClaimError> {
        self.holding(frame)?;
        Ok(self.seg.region.base().as_ptr().wrapping_add(self.seg.layout.slot_offset(frame.slot) as usize))
    }

    /// Gives `frame` back. Returns true when the producer sleeps waiting for space and the
    /// platform must wake the space-wake word.
    ///
    /// # Errors
    /// [`ClaimError::Evicted`] when this consumer was reclaimed (the hold is already gone),
    /// [`ClaimError::NotHeld`] for a frame this consumer does not hold.
    pub fn release(&mut self, frame: Frame) -> Result<bool, ClaimError> {
        self.bracket(
            |c| {
                let freed = c.unhold(&frame)?;
                // Saturating: a count a peer's bit flips drove to 0 must not wrap.
                c.holds = c.holds.saturating_sub(1);
                Ok(freed && c.seg.bump_if_waiters(ctl::SPACE_WAKE, ctl::SPACE_WAITERS))
            },
            |_, _| {},
        )
    }

    /// Leaves the consumer table. Release every frame first.
    ///
    /// # Errors
    /// [`ReclaimError::Holding`] while frames are still held; [`ReclaimError::Stale`] when the
    /// entry was already reclaimed.
    pub fn unregister(self) -> Result<Reclaimed, ReclaimError> {
        self.seg.reclaim(self.idx, self.gen, Reclaim::Idle)
    }

    /// Fault injection for crash tests: [`Consumer::unregister`] stopped dead after step
    /// `step` (1 ..= [`fault::UNREGISTER_STEPS`]), as a process killed there would leave it.
    /// `Ok(true)` when it stopped there.
    ///
    /// # Errors
    /// As [`Consumer::unregister`].
    #[doc(hidden)]
    pub fn unregister_dying(self, step: u32) -> Result<bool, ReclaimError> {
        self.seg.reclaim_impl(self.idx, self.gen, Reclaim::Idle, step).map(|r| r.is_none())
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

    /// The test vectors of `docs/LAYOUT.md` §4 are what `content_checksum` computes: the doc
    /// an outside implementer follows cannot drift from the code.
    #[test]
    fn content_checksum_matches_the_layout_doc_vectors() {
        let doc = include_str!("../../docs/LAYOUT.md");
        let mut checked = 0;
        for line in doc.lines().filter(|l| l.starts_with("| checksum vector |")) {
            let cells: heapless::Vec<&str, 8> = line.split('|').map(str::trim).collect();
            let (input, want) = (cells[2], cells[3]);
            let bytes: heapless::Vec<u8, 64> = match input.strip_prefix("bytes ") {
                // "bytes 0..10 (…)": the bytes 0, 1, ..., 9
                Some(rest) => {
                    let range = rest.split_whitespace().next().expect("a range");
                    let (a, b) = range.split_once("..").expect("a..b");
                    (a.parse::<u8>().unwrap()..b.parse::<u8>().unwrap()).collect()
                }
                // "`\"text\"` (…)": the text between the quotes inside the backticks
                None => input.split('`').nth(1).expect("`\"…\"`").trim_matches('"').bytes().collect(),
            };
            let want = u64::from_str_radix(want.trim_matches('`').trim_start_matches("0x"), 16).unwrap();
            assert_eq!(content_checksum(&bytes), want, "vector {input}");
            checked += 1;
        }
        assert_eq!(checked, 4, "LAYOUT.md lists four checksum vectors");
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
