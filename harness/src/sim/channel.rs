//! The record channel: the collector's ordered output for viewers (`NAME.out`) — fixed
//! [`RECORD_BYTES`] records in the slots of a small broadcast framebus segment, one sender.
//! (The run's own traffic needs no channel: results travel in the frames segment's results
//! area, `docs/LAYOUT.md` §6b.)
//!
//! # Layout
//! A channel is a segment like any other (`docs/LAYOUT.md`), with this spec:
//!
//! | field | value | why |
//! |---|---|---|
//! | geometry | `Raw`, `RECORD_BYTES` × 1 | one record per slot |
//! | slots | 64 | room for a burst while a viewer is busy |
//! | pattern / policy | broadcast, DropOldest ([`Channel::create_broadcast`]) | viewers: a slow one loses records, never stalls the sender |
//! | | work queue, Block ([`Channel::create`]) | one receiver that must lose nothing (tests) |
//! | meta `payload_len` | `RECORD_BYTES` | |
//! | meta `capture_ns`, `flags` | [`Tag`] | the output's capture time and `OUT_SKIPPED` |
//!
//! The record's words are [`super::wire`]'s.
//!
//! # Invariant
//! On a work-queue channel each record sent is taken exactly once, in the order sent (one
//! sender, one receiver, and work-queue claims follow publish order); on a broadcast channel
//! each viewer takes the records in the order sent, minus those dropped for it. A record's
//! bytes are complete when it is taken: they are written before the slot is published
//! (SYNC POINT `record-ready`).
//!
//! # Crash behaviour
//! - A sender that dies: its records already published stay and are taken; one it was writing
//!   is never published (the slot stays WRITING, nothing torn is read). [`Channel::sender_gone`]
//!   turns true once it had attached and its token is dead, which is how a receiver knows that
//!   nothing more will come.
//! - A receiver that dies or stops reading: a Block sender waits at most its patience and then
//!   fails with a message naming the channel; the orchestrator stops the run.
//!
//! # Progress
//! `send` is wait-free under a drop policy and blocks at most `patience` under Block; `take`
//! never blocks.

use std::time::{Duration, Instant};

use framebus_platform::core::segment::FrameMeta;
use framebus_platform::core::{
    BeginError, Consumer, ConsumerKind, FrameGeometry, OverflowPolicy, Pattern, PixelFormat, Producer, Segment,
    SegmentSpec,
};
use framebus_platform::wait::{self, WaitError};
use framebus_platform::{is_alive, CreateOptions, SharedSegment};

use super::wire::RECORD_BYTES;
use super::Res;

/// One record's bytes.
pub type Record = [u8; RECORD_BYTES as usize];

/// The metadata a record travels with, besides its bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// the frame's capture time (the ordered output; 0 elsewhere)
    pub capture_ns: u64,
    /// flags (`OUT_SKIPPED` in the ordered output; 0 elsewhere)
    pub flags: u32,
}

/// An open channel segment; its [`sender`](Channel::sender) and
/// [`receiver`](Channel::receiver) borrow it.
pub struct Channel {
    seg: SharedSegment,
    name: String,
}

fn spec(slots: u32) -> SegmentSpec {
    SegmentSpec::new(FrameGeometry::new(RECORD_BYTES, 1, PixelFormat::Raw), slots).with_max_consumers(1)
}

impl Channel {
    /// Creates a work-queue channel (one receiver, Block) of `slots` records; removed when
    /// dropped.
    ///
    /// # Errors
    /// The platform's (the name is taken, no memory).
    pub fn create(name: &str, slots: u32) -> Res<Self> {
        Ok(Channel { seg: SharedSegment::create(name, &spec(slots), CreateOptions::default())?, name: name.into() })
    }

    /// Creates a broadcast channel with DropOldest for up to `receivers` subscribers: a slow
    /// one loses records and never holds the sender up.
    ///
    /// # Errors
    /// As [`Channel::create`].
    pub fn create_broadcast(name: &str, slots: u32, receivers: u32) -> Res<Self> {
        let spec = spec(slots)
            .with_pattern(Pattern::Broadcast)
            .with_policy(OverflowPolicy::DropOldest)
            .with_max_consumers(receivers);
        Ok(Channel { seg: SharedSegment::create(name, &spec, CreateOptions::default())?, name: name.into() })
    }

    /// Opens the channel `name`, created by the orchestrator.
    ///
    /// # Errors
    /// The platform's (no such segment: is the orchestrator running?).
    pub fn open(name: &str) -> Res<Self> {
        Ok(Channel { seg: SharedSegment::open(name)?, name: name.into() })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Attaches as the channel's only sender.
    ///
    /// # Errors
    /// Another live sender is attached.
    pub fn sender(&self) -> Res<RecordTx<'_>> {
        let p = self.seg.attach_producer().map_err(|e| format!("{}: {e}", self.name))?;
        Ok(RecordTx { p, seg: self.seg.segment(), name: &self.name })
    }

    /// Registers as the channel's receiver.
    ///
    /// # Errors
    /// The consumer table is full (another live receiver).
    pub fn receiver(&self) -> Res<RecordRx<'_>> {
        let kind = match self.seg.segment().layout().spec.pattern {
            Pattern::WorkQueue => ConsumerKind::Worker,
            Pattern::Broadcast => ConsumerKind::Subscriber,
        };
        let c = self.seg.register(kind).map_err(|e| format!("{}: {e}", self.name))?;
        Ok(RecordRx { c, name: &self.name })
    }

    /// The sender had attached and is gone now (detached or dead): nothing more will come
    /// beyond what is in the channel. Before its first attach a sender is only late.
    pub fn sender_gone(&self) -> bool {
        let seg = self.seg.segment();
        let t = seg.producer_token();
        // The epoch counts attaches.
        seg.stats().epoch > 0 && (t == 0 || !is_alive(t))
    }
}

/// What [`RecordTx::send`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Published.
    Delivered,
    /// Not published: every slot was held by receivers under a drop policy (counted in the
    /// segment's stats).
    Dropped,
}

/// The sending end of a channel.
pub struct RecordTx<'a> {
    p: Producer<'a>,
    seg: Segment<'a>,
    name: &'a str,
}

impl RecordTx<'_> {
    /// Sends `rec` with `tag`. Under Block waits up to `patience` for the receiver to make room.
    ///
    /// # Errors
    /// The receiver took nothing for `patience` (the message names the channel); another
    /// sender took the channel over.
    pub fn send(&mut self, rec: &Record, tag: Tag, patience: Duration) -> Res<Sent> {
        let stalled = || format!("nobody read {} for {} s: is its reader alive?", self.name, patience.as_secs());
        let deadline = Instant::now() + patience;
        // Under Block, wait for room first; a drop policy always has a slot (or drops).
        while self.seg.layout().spec.policy == OverflowPolicy::Block && !self.p.has_space() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(stalled().into());
            }
            wait::wait_for_space(&self.p, left).map_err(|_| stalled())?;
        }
        // Only this process sends on the channel, so the room seen above is still there.
        let mut slot = match self.p.begin() {
            Ok(slot) => slot,
            Err(BeginError::DroppedNewest { .. }) => return Ok(Sent::Dropped),
            Err(e) => return Err(format!("{}: {e}", self.name).into()),
        };
        slot.write(0, rec);
        let meta = FrameMeta {
            payload_len: u64::from(RECORD_BYTES),
            capture_ns: tag.capture_ns,
            flags: tag.flags,
            ..FrameMeta::default()
        };
        // SYNC POINT record-ready: the bytes written above are published by the Release store
        // inside `publish`; pairs with the Acquire claim in RecordRx::take.
        wait::publish(slot, meta, &self.seg);
        Ok(Sent::Delivered)
    }

    /// Records sent so far, and the next one's sequence number.
    pub fn next_seq(&self) -> u64 {
        self.p.next_seq()
    }
}

/// The receiving end of a channel.
pub struct RecordRx<'a> {
    c: Consumer<'a>,
    name: &'a str,
}

impl RecordRx<'_> {
    /// Takes the next record without waiting; `None` when there is none.
    ///
    /// # Errors
    /// This receiver was evicted, or the channel holds impossible values.
    pub fn take(&mut self) -> Res<Option<Record>> {
        // SYNC POINT record-ready: the claim's Acquire pairs with the Release in RecordTx::send's
        // publish, so the record's bytes read below are the ones the sender wrote.
        match wait::claim_spinning(&mut self.c, Duration::ZERO, 0) {
            Ok(f) => {
                let mut b = [0u8; RECORD_BYTES as usize];
                self.c.read(&f, 0, &mut b).map_err(|e| format!("{}: {e}", self.name))?;
                wait::release(&mut self.c, f).map_err(|e| format!("{}: {e}", self.name))?;
                Ok(Some(b))
            }
            Err(WaitError::TimedOut) => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.name).into()),
        }
    }
}
