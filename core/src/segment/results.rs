//! Results in frame order (layout v3): workers post a result into the cell of the frame's
//! sequence number; one ordered reader delivers, for every sequence number in turn, its result
//! or a skip with its cause. Design and invariants: `docs/design/RESULTS.md`.
//!
//! | word of cell `k` (line at `results_offset + k × result_stride`) | meaning |
//! |---|---|
//! | +0 `state` | `lap << 16 ∣ cause << 8 ∣ poster << 4 ∣ status`; the cell's seq is `lap × R + k` |
//! | +8 `len` | result bytes (≤ `result_max`), written before READY |
//! | +16 `epoch` | producer epoch of the frame |
//! | +128 | the result's bytes |
//!
//! Status: OPEN (0: waiting for the frame's fate), WRITING (1: poster `poster` is copying),
//! READY (2), SKIPPED (3, with `cause`), DROPPING (4: the producer is taking the frame's slot
//! back under DropOldest). Only the reader opens a cell for its next lap, after it
//! has delivered the lap before (SYNC POINT `result-free`); so a cell is written for one seq at
//! a time, and memory is `R` cells.
//!
//! This first part has posting, reading, the reader's own skips (deadline, overflow) and the
//! reclaim of a poster that died mid-copy; the producer's drop marks and the release mark follow
//! (until then those frames come out as `overflow`).

use super::*;
use crate::vocab::SkipCause;

pub(super) const CELL_STATE: u64 = 0;
pub(super) const CELL_LEN: u64 = 8;
pub(super) const CELL_EPOCH: u64 = 16;
/// The payload starts one line into the cell.
pub(super) const CELL_PAYLOAD: u64 = LINE;

pub(super) const R_OPEN: u64 = 0;
pub(super) const R_WRITING: u64 = 1;
pub(super) const R_READY: u64 = 2;
pub(super) const R_SKIPPED: u64 = 3;
/// The producer is taking the frame's slot back (DropOldest) and decides in a moment.
pub(super) const R_DROPPING: u64 = 4;
const LAP_SHIFT: u32 = 16;

/// A result cell's state word, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellState {
    /// How many times the reader has gone round the cells before this one's seq.
    pub lap: u64,
    /// 0 OPEN, 1 WRITING, 2 READY, 3 SKIPPED, 4 DROPPING; other values are corrupt.
    pub status: u8,
    /// The consumer entry copying a result in (WRITING).
    pub poster: u8,
    /// The skip cause code (SKIPPED).
    pub cause: u8,
}

impl CellState {
    pub(super) const fn decode(w: u64) -> Self {
        CellState {
            lap: w >> LAP_SHIFT,
            status: (w & 0xF) as u8,
            poster: ((w >> 4) & 0xF) as u8,
            cause: ((w >> 8) & 0xFF) as u8,
        }
    }
    pub(super) const fn word(lap: u64, status: u64, poster: u64, cause: u64) -> u64 {
        (lap << LAP_SHIFT) | ((cause & 0xFF) << 8) | ((poster & 0xF) << 4) | (status & 0xF)
    }
}

/// What [`Consumer::post`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posted {
    /// The result is in its cell: the reader will deliver it.
    Ready,
    /// The frame was already skipped (its deadline passed): counted in `late_results`, dropped.
    Late,
}

/// What the ordered reader found at its head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The result of frame `seq` (`len` bytes, copied into the caller's buffer).
    Result {
        /// sequence number of the frame
        seq: u64,
        /// producer epoch of the frame
        epoch: u64,
        /// bytes copied
        len: usize,
    },
    /// Frame `seq` has no result, because of `cause`.
    Skipped {
        /// sequence number of the frame
        seq: u64,
        /// why
        cause: SkipCause,
    },
    /// Frame `seq` has no fate yet: `offered` when the producer has given it out (its result may
    /// still come; the caller decides when to give up with [`ResultReader::skip_head`]).
    Pending {
        /// the head's sequence number
        seq: u64,
        /// the producer has issued `seq` (published or dropped)
        offered: bool,
    },
    /// The producer finished at `seq` ([`Producer::finish`]): nothing more will come.
    End {
        /// first sequence number never issued
        seq: u64,
    },
}

impl<'a> Segment<'a> {
    /// True when the segment has a results area.
    pub fn has_results(&self) -> bool {
        self.layout.spec.result_cells > 0
    }

    /// The state word of the cell of `seq` (panics without a results area: callers check).
    pub(super) fn cell_word(&self, seq: u64, field: u64) -> &'a AtomicU64 {
        let cells = u64::from(self.layout.spec.result_cells);
        let off = self.layout.results_offset + (seq % cells) * self.layout.result_stride + field;
        self.region.word(off as usize)
    }

    pub(super) fn cell_lap(&self, seq: u64) -> u64 {
        seq / u64::from(self.layout.spec.result_cells)
    }

    fn cell_payload(&self, seq: u64) -> usize {
        let cells = u64::from(self.layout.spec.result_cells);
        (self.layout.results_offset + (seq % cells) * self.layout.result_stride + CELL_PAYLOAD) as usize
    }

    fn cell_tracker(&self, seq: u64) -> &'a crate::sync::AccessTracker {
        let cells = u64::from(self.layout.spec.result_cells);
        self.region.tracker(self.layout.spec.slot_count as usize + (seq % cells) as usize)
    }

    /// Attaches the one ordered results reader (token non-zero), taking over from the reader
    /// with token `dead` when the caller found it dead (0: only if none is attached). It starts
    /// at the shared read head, so a reader that takes over goes on where the dead one stopped
    /// (the result the dead one was delivering may come out twice: at least once, not exactly).
    ///
    /// # Errors
    /// [`AttachError::ReaderBusy`] when another reader is attached; [`AttachError::ZeroToken`];
    /// [`AttachError::NoResults`] when the segment has no results area.
    pub fn attach_reader(&self, token: u64, dead: u64) -> Result<ResultReader<'a>, AttachError> {
        if !self.has_results() {
            return Err(AttachError::NoResults);
        }
        if token == 0 {
            return Err(AttachError::ZeroToken);
        }
        let owner = self.ctl(ctl::READER_OWNER);
        // SYNC POINT reader-owner: AcqRel pairs with the Release detach in ResultReader's Drop:
        // the read head we load below is the one the previous reader left.
        if let Err(cur) = owner.compare_exchange(dead, token, Ordering::AcqRel, Ordering::Acquire) {
            return Err(AttachError::ReaderBusy { owner: cur });
        }
        let head = self.ctl(ctl::READ_HEAD).load(Ordering::Acquire);
        Ok(ResultReader { seg: *self, token, head })
    }

    /// The end of the stream, when the producer has finished: the first seq never issued.
    pub fn end_seq(&self) -> Option<u64> {
        // SYNC POINT end: Acquire pairs with the Release store in `Producer::finish`.
        let e = self.ctl(ctl::END).load(Ordering::Acquire);
        (e & END_FINISHED != 0).then_some(e & !END_FINISHED)
    }

    /// What a claim that found nothing at write position `pos` says: [`ClaimError::Ended`] once
    /// the stream ended with `pos` as its last write position, else [`ClaimError::Empty`].
    pub(super) fn empty_or_ended(&self, pos: u64) -> ClaimError {
        // A frame put back for redelivery may still wait: not the end yet. SYNC POINT
        // redeliver (Acquire, as in `claim_redelivered`).
        if self.end_seq().is_none() || (self.has_results() && self.ctl(ctl::REDELIVER).load(Ordering::Acquire) != 0) {
            return ClaimError::Empty;
        }
        // SYNC POINT end: this load comes after the Acquire in `end_seq`, which pairs with the
        // Release store in `Producer::end_stream`, made after the producer's last publish: so it
        // reads the final write position. The caller's own load of it may have been older.
        if self.ctl(ctl::WRITE_POS).load(Ordering::Acquire) == pos {
            ClaimError::Ended
        } else {
            ClaimError::Empty
        }
    }

    /// The ordered reader's token (0: none attached) and the next seq it delivers, for
    /// monitoring (`framebus top`): a snapshot, ordered with nothing.
    pub fn reader_position(&self) -> (u64, u64) {
        // Relaxed: statistics; nothing is read through these values.
        (self.ctl(ctl::READER_OWNER).load(Ordering::Relaxed), self.ctl(ctl::READ_HEAD).load(Ordering::Relaxed))
    }

    /// Results that came after their frame was skipped, and posts given up because the reader
    /// was a window behind.
    pub fn result_counts(&self) -> (u64, u64) {
        (self.ctl(ctl::LATE_RESULTS).load(Ordering::Relaxed), self.ctl(ctl::RESULT_OVERFLOW).load(Ordering::Relaxed))
    }

    /// Counts a post the caller gave up on because the reader stayed a window behind.
    pub fn note_result_overflow(&self) {
        self.ctl(ctl::RESULT_OVERFLOW).fetch_add(1, Ordering::Relaxed);
    }

    /// The reader's wake word (low 32 bits are the futex word) and its sleeper word (1 while
    /// the reader sleeps), for the platform.
    pub fn results_wake_words(&self) -> (&'a AtomicU64, &'a AtomicU64) {
        (self.ctl(ctl::RESULTS_WAKE), self.ctl(ctl::RESULTS_WAITERS))
    }

    /// The waker's half of the reader's sleep handshake, after a cell got its fate: true when
    /// the reader sleeps (the wake word was bumped; the platform must wake it).
    pub(super) fn wake_reader(&self) -> bool {
        // SYNC POINT wake (results): the fence and the Release bump inside pair with the
        // reader's announce (SeqCst store, fence) and Acquire load in `ResultReader::announce_sleep`.
        self.has_results() && self.bump_if_waiters(ctl::RESULTS_WAKE, ctl::RESULTS_WAITERS, SPACE_SLEEPERS)
    }

    /// True when some slot holds frame `seq` (READY or TAKEN with that seq): it may still get a
    /// result. Reads each slot's state, its seq, then the state again: the descriptor is written
    /// only while WRITING, so an unchanged *generation* vouches for the seq read in between (the
    /// kind may go READY → TAKEN meanwhile, a claim: the frame is still there).
    pub(super) fn frame_in_flight(&self, seq: u64) -> bool {
        (0..self.layout.spec.slot_count).any(|s| {
            let w = self.slot_word(s, ctl::slot::STATE);
            let live = |st: SlotState| matches!(st.kind, SlotKind::Ready | SlotKind::Taken);
            // Acquire: pairs with the Release store of READY in `WriteSlot::publish`.
            // SYNC POINT drop-mark: and with the Release half of the producer's `try_take`.
            let st = SlotState::decode(w.load(Ordering::Acquire));
            if !live(st) {
                return false;
            }
            let s_seq = self.slot_word(s, ctl::slot::SEQ).load(Ordering::Relaxed);
            let again = SlotState::decode(w.load(Ordering::Acquire));
            s_seq == seq && again.gen == st.gen && live(again)
        })
    }

    /// Resolves cells left WRITING by entry `idx` (a poster that died mid-copy) as
    /// `worker-died`, each CAS validated against the entry still being RECLAIMING at `gen`
    /// (SYNC POINT `reclaim-validate`, as for holder bits): a late finisher never touches the
    /// post of the entry's next occupant.
    pub(super) fn resolve_dead_posts(&self, idx: u32, gen: u64) -> Result<(), ReclaimError> {
        for k in 0..u64::from(self.layout.spec.result_cells) {
            let dead = |w| {
                let c = CellState::decode(w);
                (c.status == R_WRITING as u8 && u32::from(c.poster) == idx)
                    .then(|| CellState::word(c.lap, R_SKIPPED, 0, SkipCause::WorkerDied as u64))
            };
            if self.clear_validated(self.cell_word(k, CELL_STATE), idx, gen, dead)? {
                self.wake_reader();
            }
        }
        Ok(())
    }
}

impl Segment<'_> {
    /// Marks frame `seq` SKIPPED with `cause` if its cell is OPEN for it (the fate of a frame is
    /// written before the frame leaves its slot: see the module doc). Does nothing without a
    /// results area, or when the cell is not open for `seq` (the reader is a window behind: it
    /// will call the frame overflow), or already decided.
    /// Frame `seq`'s result cell is OPEN for it: no result, no skip, nobody writing (a
    /// snapshot: the reader may decide it right after; see the callers).
    pub(super) fn cell_open_for(&self, seq: u64) -> bool {
        // Acquire: pairs with the releases that moved the cell (a post, a mark, the reader).
        self.has_results()
            && self.cell_word(seq, CELL_STATE).load(Ordering::Acquire)
                == CellState::word(self.cell_lap(seq), R_OPEN, 0, 0)
    }

    pub(super) fn mark_skip(&self, seq: u64, cause: SkipCause) {
        if !self.has_results() {
            return;
        }
        let lap = self.cell_lap(seq);
        let open = CellState::word(lap, R_OPEN, 0, 0);
        // AcqRel: a poster or the reader that finds the mark sees the frame's fate decided;
        // nothing else travels with it.
        let marked = self
            .cell_word(seq, CELL_STATE)
            .compare_exchange(
                open,
                CellState::word(lap, R_SKIPPED, 0, cause as u64),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if marked {
            self.wake_reader();
        }
    }

    /// Resolves every DROPPING cell a dead producer left: OPEN again when a slot still holds
    /// its frame (the drop did not happen), else SKIPPED as dropped-oldest. Run by a takeover,
    /// before the new producer touches a slot.
    pub(super) fn resolve_dropping(&self) {
        if !self.has_results() {
            return;
        }
        for k in 0..u64::from(self.layout.spec.result_cells) {
            let w = self.cell_word(k, CELL_STATE);
            let cur = w.load(Ordering::Acquire);
            let c = CellState::decode(cur);
            if c.status != R_DROPPING as u8 {
                continue;
            }
            let seq = c.lap * u64::from(self.layout.spec.result_cells) + k;
            let to = if self.frame_in_flight(seq) {
                CellState::word(c.lap, R_OPEN, 0, 0)
            } else {
                CellState::word(c.lap, R_SKIPPED, 0, SkipCause::DroppedOldest as u64)
            };
            let _ = w.compare_exchange(cur, to, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

impl Producer<'_> {
    /// DropOldest, step 1: announce that frame `seq`'s slot is being taken back. Returns whether
    /// the cell is now DROPPING (false: no results area, or the cell was not open for `seq`).
    pub(super) fn begin_dropping(&self, seq: u64) -> bool {
        if !self.seg.has_results() {
            return false;
        }
        let lap = self.seg.cell_lap(seq);
        self.seg
            .cell_word(seq, CELL_STATE)
            .compare_exchange(
                CellState::word(lap, R_OPEN, 0, 0),
                CellState::word(lap, R_DROPPING, 0, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// DropOldest, step 2: the slot CAS decided. `dropped`: SKIPPED as dropped-oldest; else
    /// OPEN again (a worker took the frame first). Only the producer moves a DROPPING cell.
    pub(super) fn end_dropping(&self, seq: u64, dropped: bool) {
        let lap = self.seg.cell_lap(seq);
        let to = if dropped {
            CellState::word(lap, R_SKIPPED, 0, SkipCause::DroppedOldest as u64)
        } else {
            CellState::word(lap, R_OPEN, 0, 0)
        };
        // Release: a poster or reader that sees OPEN or SKIPPED again sees the slot's fate.
        self.seg.cell_word(seq, CELL_STATE).store(to, Ordering::Release);
        if dropped {
            self.seg.wake_reader();
        }
    }
}

/// Flag of the `end` word: the producer finished (the low bits are the end seq).
pub(super) const END_FINISHED: u64 = 1 << 63;

impl Producer<'_> {
    /// Ends the stream and detaches (as dropping does); see [`Producer::end_stream`].
    pub fn finish(self) {
        self.end_stream();
    }

    /// Ends the stream: every seq from [`Producer::next_seq`] on will never be issued. The
    /// ordered reader returns [`Next::End`] there, and a consumer's claim
    /// [`ClaimError::Ended`] once nothing is left to claim. The producer stays attached; the
    /// next producer to attach reopens the stream.
    pub fn end_stream(&self) {
        // SYNC POINT end: Release pairs with the Acquire load in `Segment::end_seq`: a reader
        // that sees the end also sees every seq before it issued (their publish or drop marks).
        self.seg.ctl(ctl::END).store(self.next_seq | END_FINISHED, Ordering::Release);
        // Wake a sleeping reader (and consumers) so that they see the end now.
        self.seg.bump_if_waiters(ctl::RESULTS_WAKE, ctl::RESULTS_WAITERS, SPACE_SLEEPERS);
        self.seg.bump_if_waiters(ctl::FRAME_WAKE, ctl::FRAME_WAITERS, FRAME_SLEEPERS);
    }
}

impl Consumer<'_> {
    /// Posts `bytes` as the result of `frame`, which this worker holds (post before release).
    ///
    /// # Errors
    /// [`PostError::NoResults`], [`PostError::NotHeld`], [`PostError::TooLarge`];
    /// [`PostError::WindowFull`] while the reader is a whole window behind (retry, or give up and
    /// [`Segment::note_result_overflow`]); [`PostError::Duplicate`] when the frame already has a
    /// result; [`PostError::Claim`] for an evicted consumer or a corrupt cell.
    pub fn post(&mut self, frame: &Frame, bytes: &[u8]) -> Result<Posted, PostError> {
        let seg = self.seg;
        if !seg.has_results() {
            return Err(PostError::NoResults);
        }
        if bytes.len() as u64 > u64::from(seg.layout.spec.result_max) {
            return Err(PostError::TooLarge { len: bytes.len(), max: seg.layout.spec.result_max });
        }
        self.holding(frame).map_err(|_| PostError::NotHeld)?;
        let idx = u64::from(self.idx);
        let r = self.bracket(
            |_| {
                let (seq, lap) = (frame.seq, seg.cell_lap(frame.seq));
                let w = seg.cell_word(seq, CELL_STATE);
                let mut cur = w.load(Ordering::Acquire);
                for _ in 0..RETRY_LIMIT {
                    let st = CellState::decode(cur);
                    if st.lap < lap {
                        return Ok(Err(PostError::WindowFull));
                    }
                    if st.lap > lap || st.status == R_SKIPPED as u8 {
                        // Skipped, or the reader has already passed the frame (its cell is on a
                        // later lap: delivered or skipped, which we cannot tell any more): late.
                        seg.ctl(ctl::LATE_RESULTS).fetch_add(1, Ordering::Relaxed);
                        return Ok(Ok(Posted::Late));
                    }
                    if st.status == R_DROPPING as u8 {
                        // The producer decides in a moment (two CASes): look again.
                        crate::sync::spin_loop();
                        cur = w.load(Ordering::Acquire);
                        continue;
                    }
                    if st.status != R_OPEN as u8 {
                        return Ok(Err(if st.status <= R_READY as u8 {
                            PostError::Duplicate
                        } else {
                            PostError::Claim(ClaimError::Corrupt)
                        }));
                    }
                    let writing = CellState::word(lap, R_WRITING, idx, 0);
                    // SYNC POINT result-free: Acquire pairs with the reader's Release store that
                    // opened this lap: the reader has finished copying the previous lap's bytes.
                    match w.compare_exchange(cur, writing, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => {}
                        Err(now) => {
                            cur = now;
                            continue;
                        }
                    }
                    // SAFETY: the cell is WRITING under our entry: nobody else writes its payload
                    // (the reader reads only READY cells; a reclaim of us only flips the state),
                    // and `bytes` fits in `result_max` (checked), inside the results area.
                    seg.cell_tracker(seq).write(|| unsafe { seg.region.copy_in(seg.cell_payload(seq), bytes) });
                    // Relaxed: published by the Release CAS below.
                    seg.cell_word(seq, CELL_LEN).store(bytes.len() as u64, Ordering::Relaxed);
                    seg.cell_word(seq, CELL_EPOCH).store(frame.epoch, Ordering::Relaxed);
                    // SYNC POINT result-ready: Release pairs with the reader's Acquire load of the
                    // state in `ResultReader::next`. A CAS: a reclaim of this entry as dead may
                    // have resolved the cell meanwhile.
                    let ready = CellState::word(lap, R_READY, 0, 0);
                    return Ok(match w.compare_exchange(writing, ready, Ordering::Release, Ordering::Relaxed) {
                        Ok(_) => {
                            seg.wake_reader();
                            Ok(Posted::Ready)
                        }
                        Err(_) => Err(PostError::Claim(ClaimError::Evicted)),
                    });
                }
                Ok(Err(PostError::Claim(ClaimError::Contended)))
            },
            |_, _| {},
        );
        match r {
            Ok(inner) => inner,
            Err(e) => Err(PostError::Claim(e)),
        }
    }
}

impl Consumer<'_> {
    /// Fault injection: starts a post of `frame` and stops dead once its cell is WRITING (and
    /// this consumer's entry busy), leaving the words as a kill there does.
    #[doc(hidden)]
    pub fn post_dying(&mut self, frame: &Frame) -> Result<(), PostError> {
        let seg = self.seg;
        self.holding(frame).map_err(|_| PostError::NotHeld)?;
        self.enter().map_err(PostError::Claim)?;
        let lap = seg.cell_lap(frame.seq);
        let open = CellState::word(lap, R_OPEN, 0, 0);
        let writing = CellState::word(lap, R_WRITING, u64::from(self.idx), 0);
        seg.cell_word(frame.seq, CELL_STATE)
            .compare_exchange(open, writing, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| PostError::Duplicate)
    }
}

/// The one ordered results reader of a segment ([`Segment::attach_reader`]). Dropping it
/// detaches.
#[derive(Debug)]
pub struct ResultReader<'a> {
    seg: Segment<'a>,
    token: u64,
    head: u64,
}

impl<'a> ResultReader<'a> {
    /// The next seq this reader delivers.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// The segment.
    pub fn segment(&self) -> &Segment<'a> {
        &self.seg
    }

    /// Looks at the head: delivers its result into `out` (which must hold `result_max` bytes,
    /// or at least the result's length), or its skip, and moves on; or says it is pending, or
    /// that the stream ended. A head frame that the producer issued, that no slot holds and
    /// whose cell nobody marked is skipped as [`SkipCause::Overflow`] here.
    ///
    /// # Errors
    /// [`ReadError::BufferTooSmall`] (nothing consumed); [`ReadError::Corrupt`] for impossible
    /// cell contents; [`ReadError::Superseded`] when another reader took over.
    pub fn next(&mut self, out: &mut [u8]) -> Result<Next, ReadError> {
        let seg = self.seg;
        for _ in 0..RETRY_LIMIT {
            let h = self.head;
            let lap = seg.cell_lap(h);
            let w = seg.cell_word(h, CELL_STATE);
            // SYNC POINT result-ready: Acquire pairs with the poster's Release CAS to READY.
            let cur = w.load(Ordering::Acquire);
            let st = CellState::decode(cur);
            if st.lap != lap {
                return Err(ReadError::Corrupt);
            }
            match u64::from(st.status) {
                R_READY => {
                    let len = seg.cell_word(h, CELL_LEN).load(Ordering::Relaxed);
                    if len > u64::from(seg.layout.spec.result_max) {
                        return Err(ReadError::Corrupt);
                    }
                    let len = len as usize;
                    if out.len() < len {
                        return Err(ReadError::BufferTooSmall { need: len });
                    }
                    let epoch = seg.cell_word(h, CELL_EPOCH).load(Ordering::Relaxed);
                    // SAFETY: the cell is READY: its poster is done and nobody writes it until
                    // we open its next lap below; `len` ≤ `result_max` (checked).
                    seg.cell_tracker(h).read(|| unsafe { seg.region.copy_out(seg.cell_payload(h), &mut out[..len]) });
                    self.advance(lap)?;
                    return Ok(Next::Result { seq: h, epoch, len });
                }
                R_SKIPPED => {
                    let cause = SkipCause::from_u32(u32::from(st.cause)).ok_or(ReadError::Corrupt)?;
                    self.advance(lap)?;
                    return Ok(Next::Skipped { seq: h, cause });
                }
                R_OPEN | R_WRITING | R_DROPPING => {
                    if let Some(end) = seg.end_seq() {
                        if h >= end {
                            return Ok(Next::End { seq: end });
                        }
                    }
                    // SYNC POINT next-seq: Acquire pairs with the producer's Release stores.
                    let offered = h < seg.ctl(ctl::NEXT_SEQ).load(Ordering::Acquire);
                    if offered && st.status == R_OPEN as u8 && !seg.frame_in_flight(h) {
                        // Issued, in no slot, and nobody marked why: every mark found the cell
                        // on an earlier lap (the reader was a window behind).
                        let skipped = CellState::word(lap, R_SKIPPED, 0, SkipCause::Overflow as u64);
                        let _ = w.compare_exchange(cur, skipped, Ordering::AcqRel, Ordering::Relaxed);
                        continue;
                    }
                    return Ok(Next::Pending { seq: h, offered });
                }
                _ => return Err(ReadError::Corrupt),
            }
        }
        Err(ReadError::Corrupt)
    }

    /// The reader's half of its sleep handshake (the waker's half is `wake_reader`, run by every
    /// post and mark): reads the wake word, says the reader sleeps, and issues a SeqCst fence.
    /// The caller must then call [`ResultReader::next`] again and sleep only if the head is still
    /// pending, while the wake word equals the returned value; then [`ResultReader::retire_sleep`].
    pub fn announce_sleep(&self) -> u32 {
        let (wake, waiters) = self.seg.results_wake_words();
        // SYNC POINT wake (results): Acquire pairs with the Release bump in `bump_if_waiters`.
        let seen = wake.load(Ordering::Acquire) as u32;
        waiters.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        seen
    }

    /// Withdraws the announce of [`ResultReader::announce_sleep`].
    pub fn retire_sleep(&self) {
        // Relaxed: a hint for wakers (one reader, so a store, not a count); nothing travels.
        self.seg.results_wake_words().1.store(0, Ordering::Relaxed);
    }

    /// Gives up on the head frame with `cause` (the caller's deadline passed) if it has no
    /// result yet: true when it is now skipped (the next [`ResultReader::next`] delivers the
    /// skip). A cell being written is never skipped (its poster is copying; a dead poster's
    /// reclaim resolves it), so false then.
    pub fn skip_head(&self, cause: SkipCause) -> bool {
        let h = self.head;
        let lap = self.seg.cell_lap(h);
        let w = self.seg.cell_word(h, CELL_STATE);
        let open = CellState::word(lap, R_OPEN, 0, 0);
        let skipped = CellState::word(lap, R_SKIPPED, 0, cause as u64);
        // AcqRel: a poster that finds SKIPPED counts itself late; nothing else travels here.
        w.compare_exchange(open, skipped, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// Opens the head cell for its next lap and moves the head on.
    fn advance(&mut self, lap: u64) -> Result<(), ReadError> {
        let seg = self.seg;
        // SYNC POINT reader-owner: a reader that was taken over must not move the head.
        if seg.ctl(ctl::READER_OWNER).load(Ordering::Acquire) != self.token {
            return Err(ReadError::Superseded);
        }
        // SYNC POINT result-free: Release pairs with the poster's Acquire CAS from OPEN: our
        // copy-out of this lap's bytes happens before the next lap's poster writes them.
        seg.cell_word(self.head, CELL_STATE).store(CellState::word(lap + 1, R_OPEN, 0, 0), Ordering::Release);
        self.head += 1;
        seg.ctl(ctl::READ_HEAD).store(self.head, Ordering::Release);
        Ok(())
    }
}

impl Drop for ResultReader<'_> {
    fn drop(&mut self) {
        // SYNC POINT reader-owner: Release pairs with the AcqRel CAS in `attach_reader`.
        let _ = self.seg.ctl(ctl::READER_OWNER).compare_exchange(self.token, 0, Ordering::Release, Ordering::Relaxed);
    }
}
