//! Endpoints that own their segment, for handles that cannot carry a Rust borrow: a C
//! `fb_producer*`, a Python `framebus.Producer`.
//!
//! [`SharedSegment::attach_producer`] hands out a `Producer<'_>` that borrows the segment, and
//! [`WriteSlot`](framebus_core::WriteSlot) borrows the producer in turn. A foreign handle must
//! hold all three in one object that lives as long as the caller likes. [`OwnedProducer`] keeps
//! an `Arc<SharedSegment>` (so the mapping outlives the endpoint) and its slot in between
//! calls as a [`PendingSlot`]; [`OwnedConsumer`] keeps the frames it holds, so that a release
//! names a frame by `(slot, gen)` and a handle from the caller is never trusted as a frame, and
//! so that dropping the consumer gives everything back and leaves the consumer table.
//!
//! # Examples
//! ```
//! use std::{sync::Arc, time::Duration};
//! use framebus_core::{ConsumerKind, FrameGeometry, FrameMeta, PixelFormat, SegmentSpec};
//! use framebus_platform::owned::{OwnedConsumer, OwnedProducer};
//! use framebus_platform::{CreateOptions, SharedSegment};
//!
//! let spec = SegmentSpec::new(FrameGeometry::new(8, 2, PixelFormat::Gray8), 2);
//! let seg = Arc::new(SharedSegment::create(&format!("owned-doc-{}", std::process::id()), &spec, CreateOptions::default())?);
//! let mut producer = OwnedProducer::attach(seg.clone())?;
//! let mut worker = OwnedConsumer::register(seg, ConsumerKind::Worker)?;
//! let slot = producer.begin(Duration::from_secs(1))?;
//! // SAFETY: the slot is this producer's and `capacity` bytes long until publish.
//! unsafe { slot.ptr.write_bytes(9, 16) };
//! producer.publish(FrameMeta { payload_len: 16, ..FrameMeta::default() })?;
//! let frame = worker.claim(Duration::from_secs(1))?;
//! // SAFETY: the frame is held until `release`; `payload_len` bytes are inside the slot.
//! assert_eq!(unsafe { *frame.ptr.add(15) }, 9);
//! worker.release(frame.slot, frame.gen)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use framebus_core::segment::{AttachError, ClaimError, FrameMeta, PendingSlot, Published, RegisterError};
use framebus_core::{
    BeginError, Consumer, ConsumerKind, Frame, Next, PostError, Posted, Producer, ReadError, ResultReader, SkipCause,
};

use crate::wait::{self, WaitError};
use crate::SharedSegment;

/// Why an [`OwnedProducer`] call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProduceError {
    /// From the core: [`BeginError::DroppedNewest`] (the frame is dropped and counted; go on
    /// with the next one) or [`BeginError::Superseded`] (another producer took over: stop).
    Begin(BeginError),
    /// No slot came free within the timeout (Block policy: the consumers hold every slot).
    TimedOut,
    /// `publish` or `abandon` without a slot from `begin`.
    NoSlot,
    /// `begin` while the slot of an earlier `begin` is neither published nor abandoned.
    SlotPending,
}

impl std::fmt::Display for ProduceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Begin(e) => e.fmt(f),
            Self::TimedOut => write!(f, "no free slot within the timeout: every slot is held by consumers (Block policy); are the consumers running and releasing frames?"),
            Self::NoSlot => write!(f, "no slot to publish or abandon: call begin first"),
            Self::SlotPending => write!(f, "a slot is already being written: publish or abandon it before beginning another"),
        }
    }
}
impl std::error::Error for ProduceError {}

/// The slot an [`OwnedProducer`] is writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// Slot index.
    pub slot: u32,
    /// The payload: writable for `capacity` bytes until the slot is published or abandoned.
    pub ptr: *mut u8,
    /// Bytes in the slot.
    pub capacity: u64,
    /// The sequence number the frame will get when published.
    pub seq: u64,
    /// The frame this slot's reuse dropped (DropOldest), if any; it is counted in the stats.
    pub dropped_seq: Option<u64>,
}

// SAFETY: a SlotView is an address and sizes; the pointer is only dereferenced by its user
// (unsafely), while the producer owns the slot, from whichever thread.
unsafe impl Send for SlotView {}
// SAFETY: as above: sharing the value shares no access.
unsafe impl Sync for SlotView {}

/// The unique producer of a segment, owning a reference to the segment and its slot in
/// progress. `Send`: it may move between threads; one thread uses it at a time (`&mut self`).
#[derive(Debug)]
pub struct OwnedProducer {
    // Field order is drop order: the producer (which borrows the mapping) before the segment.
    pending: Option<(PendingSlot, SlotView)>,
    producer: Producer<'static>,
    seg: Arc<SharedSegment>,
}

impl OwnedProducer {
    /// Attaches as the segment's producer (taking over from a dead one, as
    /// [`SharedSegment::attach_producer`] does).
    ///
    /// # Errors
    /// [`AttachError::Busy`] while another live producer is attached.
    pub fn attach(seg: Arc<SharedSegment>) -> Result<Self, AttachError> {
        let producer = seg.attach_producer()?;
        // SAFETY: the producer borrows the mapping owned by `*seg`, whose address never changes;
        // `seg` is stored beside it and dropped after it (field order), so the borrow outlives
        // every use.
        let producer = unsafe { std::mem::transmute::<Producer<'_>, Producer<'static>>(producer) };
        Ok(OwnedProducer { pending: None, producer, seg })
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<SharedSegment> {
        &self.seg
    }

    /// The core producer (epoch, next sequence number, `has_space`).
    pub fn producer(&self) -> &Producer<'_> {
        &self.producer
    }

    /// Acquires the slot for the next frame under the segment's overflow policy: under Block,
    /// waits up to `timeout` for a consumer to free one.
    ///
    /// # Errors
    /// [`ProduceError::SlotPending`], [`ProduceError::TimedOut`], or
    /// [`ProduceError::Begin`] with `DroppedNewest` (counted drop) or `Superseded`.
    pub fn begin(&mut self, timeout: Duration) -> Result<SlotView, ProduceError> {
        if self.pending.is_some() {
            return Err(ProduceError::SlotPending);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let seq = self.producer.next_seq();
            match self.producer.begin() {
                Ok(mut slot) => {
                    let view = SlotView {
                        slot: slot.slot(),
                        ptr: slot.as_mut_ptr(),
                        capacity: slot.capacity(),
                        seq,
                        dropped_seq: slot.dropped_seq(),
                    };
                    self.pending = Some((slot.detach(), view));
                    return Ok(view);
                }
                Err(BeginError::Full) => {}
                Err(e) => return Err(ProduceError::Begin(e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProduceError::TimedOut);
            }
            wait::wait_for_space(&self.producer, left).map_err(|_| ProduceError::TimedOut)?;
        }
    }

    /// The slot being written, if any.
    pub fn slot(&self) -> Option<SlotView> {
        self.pending.as_ref().map(|(_, v)| *v)
    }

    /// Publishes the slot from [`OwnedProducer::begin`] with `meta` and wakes sleeping
    /// consumers.
    ///
    /// # Errors
    /// [`ProduceError::NoSlot`]; [`ProduceError::Begin`]`(Superseded)` when another producer
    /// took over meanwhile (the slot is then theirs to recover).
    pub fn publish(&mut self, meta: FrameMeta) -> Result<Published, ProduceError> {
        let (pending, _) = self.pending.take().ok_or(ProduceError::NoSlot)?;
        let seg = self.seg.segment();
        let slot = self.producer.resume(pending).map_err(|_| ProduceError::Begin(BeginError::Superseded))?;
        Ok(wait::publish(slot, meta, &seg))
    }

    /// Gives the slot from [`OwnedProducer::begin`] back unpublished (no sequence number is
    /// used). Returns false when there was none.
    pub fn abandon(&mut self) -> bool {
        match self.pending.take() {
            Some((pending, _)) => {
                // A slot that is no longer ours (takeover) is not ours to free either.
                drop(self.producer.resume(pending));
                true
            }
            None => false,
        }
    }
}

impl OwnedProducer {
    /// Ends the stream ([`Producer::end_stream`]) and detaches: the reader and the consumers see
    /// the end after the last frame issued, and are woken. An unpublished slot is given back.
    pub fn finish(mut self) {
        self.abandon();
        self.producer.end_stream();
        let seg = self.seg.segment();
        crate::wake::wake_results(&seg);
        crate::wake::wake_frames(&seg);
    }
}

impl Drop for OwnedProducer {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// A frame held by an [`OwnedConsumer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldFrame {
    /// Slot index (with `gen`, names the frame to [`OwnedConsumer::release`]).
    pub slot: u32,
    /// Slot generation at claim.
    pub gen: u64,
    /// Sequence number (gaps are drops).
    pub seq: u64,
    /// Producer epoch that published it.
    pub epoch: u64,
    /// The producer's metadata.
    pub meta: FrameMeta,
    /// The payload: readable for `capacity` bytes until released. Shared memory: another
    /// process may hold the same frame (broadcast), nobody writes it while it is held.
    pub ptr: *const u8,
    /// Bytes in the slot (`meta.payload_len` of them are the frame).
    pub capacity: u64,
}

// SAFETY: as for SlotView: an address the user dereferences (unsafely) while the frame is held.
unsafe impl Send for HeldFrame {}
// SAFETY: as above.
unsafe impl Sync for HeldFrame {}

/// A registered worker, subscriber or latest reader that owns a reference to its segment and
/// remembers the frames it holds. Dropping it releases them and leaves the consumer table.
/// `Send`: it may move between threads; one thread uses it at a time (`&mut self`).
#[derive(Debug)]
pub struct OwnedConsumer {
    held: Vec<Frame>,
    /// `Some` until drop (unregistering consumes it).
    consumer: Option<Consumer<'static>>,
    seg: Arc<SharedSegment>,
}

impl OwnedConsumer {
    /// Registers as a consumer of `kind` (reaping dead consumers when the table is full).
    ///
    /// # Errors
    /// As [`SharedSegment::register`].
    pub fn register(seg: Arc<SharedSegment>, kind: ConsumerKind) -> Result<Self, RegisterError> {
        let consumer = seg.register(kind)?;
        // SAFETY: as in `OwnedProducer::attach`: `seg` keeps the mapping alive for as long as
        // the consumer exists (field order drops the consumer first).
        let consumer = unsafe { std::mem::transmute::<Consumer<'_>, Consumer<'static>>(consumer) };
        Ok(OwnedConsumer { held: Vec::new(), consumer: Some(consumer), seg })
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<SharedSegment> {
        &self.seg
    }

    /// The core consumer (kind, index, counts).
    pub fn consumer(&self) -> &Consumer<'_> {
        self.consumer.as_ref().expect("present until drop")
    }

    fn consumer_mut(&mut self) -> &mut Consumer<'static> {
        self.consumer.as_mut().expect("present until drop")
    }

    /// Frames delivered to this consumer and frames it skipped (broadcast/latest).
    pub fn counts(&self) -> (u64, u64) {
        self.consumer().counts()
    }

    /// Number of frames held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Claims the next frame, sleeping until one arrives or `timeout` passes.
    ///
    /// # Errors
    /// As [`wait::claim`]: [`WaitError::TimedOut`], or [`WaitError::Claim`] (`Evicted`: this
    /// consumer was reclaimed as dead and must register again; `Corrupt`).
    pub fn claim(&mut self, timeout: Duration) -> Result<HeldFrame, WaitError> {
        let frame = wait::claim(self.consumer_mut(), timeout)?;
        let ptr = match self.consumer().payload_ptr(&frame) {
            Ok(p) => p,
            Err(e) => return Err(WaitError::Claim(e)),
        };
        let view = HeldFrame {
            slot: frame.slot,
            gen: frame.gen,
            seq: frame.seq,
            epoch: frame.epoch,
            meta: frame.meta,
            ptr,
            capacity: self.seg.segment().layout().spec.slot_payload_size,
        };
        self.held.push(frame);
        Ok(view)
    }

    /// Releases the held frame `(slot, gen)` and wakes a producer waiting for space.
    ///
    /// # Errors
    /// [`ClaimError::NotHeld`] when this consumer holds no such frame (double release);
    /// [`ClaimError::Evicted`] when it was reclaimed meanwhile (the hold is gone anyway).
    pub fn release(&mut self, slot: u32, gen: u64) -> Result<(), ClaimError> {
        let i = self.held.iter().position(|f| f.slot == slot && f.gen == gen).ok_or(ClaimError::NotHeld)?;
        let frame = self.held.swap_remove(i);
        wait::release(self.consumer_mut(), frame)
    }
}

impl OwnedConsumer {
    /// Posts `bytes` as the result of the held frame `(slot, gen)` (before releasing it); see
    /// [`wait::post`] for `patience`.
    ///
    /// # Errors
    /// [`PostError::NotHeld`] when no such frame is held; as [`wait::post`].
    pub fn post(&mut self, slot: u32, gen: u64, bytes: &[u8], patience: Duration) -> Result<Posted, PostError> {
        let r = self.try_post(slot, gen, bytes, patience);
        if r == Err(PostError::WindowFull) {
            self.seg.segment().note_result_overflow();
        }
        r
    }

    /// As [`OwnedConsumer::post`], without counting a full window as lost ([`wait::try_post`]).
    ///
    /// # Errors
    /// As [`OwnedConsumer::post`].
    pub fn try_post(&mut self, slot: u32, gen: u64, bytes: &[u8], patience: Duration) -> Result<Posted, PostError> {
        let i = self.held.iter().position(|f| f.slot == slot && f.gen == gen).ok_or(PostError::NotHeld)?;
        let consumer = self.consumer.as_mut().expect("present until drop");
        wait::try_post(consumer, &self.held[i], bytes, patience)
    }
}

/// The ordered results reader of a segment, owning a reference to it ([`SharedSegment::attach_reader`]).
/// Dropping it detaches.
#[derive(Debug)]
pub struct OwnedReader {
    // Field order is drop order: the reader (which borrows the mapping) before the segment.
    reader: ResultReader<'static>,
    seg: Arc<SharedSegment>,
}

impl OwnedReader {
    /// Attaches as the reader (taking over from a dead one).
    ///
    /// # Errors
    /// As [`SharedSegment::attach_reader`].
    pub fn attach(seg: Arc<SharedSegment>) -> Result<Self, AttachError> {
        let reader = seg.attach_reader()?;
        // SAFETY: as in `OwnedProducer::attach`: `seg` keeps the mapping alive for as long as the
        // reader exists (field order drops the reader first).
        let reader = unsafe { std::mem::transmute::<ResultReader<'_>, ResultReader<'static>>(reader) };
        Ok(OwnedReader { reader, seg })
    }

    /// The segment.
    pub fn shared(&self) -> &Arc<SharedSegment> {
        &self.seg
    }

    /// The next result, skip or end, waiting at most `timeout` ([`wait::next_result`]).
    ///
    /// # Errors
    /// As [`wait::next_result`].
    pub fn next(&mut self, out: &mut [u8], timeout: Duration) -> Result<Next, ReadError> {
        wait::next_result(&mut self.reader, out, timeout)
    }

    /// Gives up on the head frame with `cause` ([`ResultReader::skip_head`]).
    pub fn skip_head(&self, cause: SkipCause) -> bool {
        self.reader.skip_head(cause)
    }

    /// The next seq to deliver.
    pub fn head(&self) -> u64 {
        self.reader.head()
    }
}

impl Drop for OwnedConsumer {
    fn drop(&mut self) {
        for frame in std::mem::take(&mut self.held) {
            let _ = wait::release(self.consumer_mut(), frame);
        }
        if let Some(c) = self.consumer.take() {
            // Stale (already reclaimed) is fine: the entry is gone either way.
            let _ = c.unregister();
        }
    }
}

// Compile-time checks: the owned endpoints can move to another thread (a Python thread that
// releases the GIL, a C thread pool).
const _: fn() = || {
    fn send<T: Send>() {}
    send::<OwnedProducer>();
    send::<OwnedConsumer>();
    send::<Arc<SharedSegment>>();
};
