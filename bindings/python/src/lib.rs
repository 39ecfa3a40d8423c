//! `framebus._framebus`: the Python face of framebus (PyO3, abi3).
//!
//! A claimed frame is a [`Frame`] object whose `array` is a read-only `numpy.ndarray` over the
//! slot itself (built by `numpy.asarray` through `__array_interface__`: no copy, no numpy C
//! API, so one abi3 wheel serves every CPython ≥ 3.9). The array keeps its `Frame` alive (it is
//! the array's `base`), and a `Frame` that is garbage-collected releases its slot: so a view
//! obtained without `with` can never outlive its slot. An explicit `release()` (or leaving the
//! `with` block) gives the slot back at once; `frame.array` then raises `framebus.Released`,
//! and arrays taken before see whatever the producer writes next (copy what you keep).
//!
//! Waits (`claim`, `begin`) release the GIL and wake every 10 ms to let Ctrl-C through. An
//! endpoint may be shared between threads: a waiting call holds its lock for one 10 ms slice at
//! a time and steps aside for blocked threads; locks are never waited for while attached to
//! the interpreter; `Frame.release` never waits at all (the slot goes back at the lock
//! holder's next step). One thread per endpoint is the fastest use: the pool pattern (claim
//! in one thread, release in others) returns slots up to one slice late.
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use framebus_core::segment::{AttachError, ClaimError, EntryStatus, FrameMeta, RegisterError};
use framebus_core::vocab::Vocabulary;
use framebus_core::{BeginError, ConsumerKind, FrameGeometry, OverflowPolicy, Pattern, PixelFormat, SegmentSpec};
use framebus_platform::owned::{HeldFrame, OwnedConsumer, OwnedProducer, ProduceError};
use framebus_platform::wait::WaitError;
use framebus_platform::{CreateOptions, Error as PlatformError, SharedSegment};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

create_exception!(_framebus, Error, PyException, "Base class of every framebus error.");
create_exception!(_framebus, NotFound, Error, "No segment has that name (is its producer running?).");
create_exception!(_framebus, AlreadyExists, Error, "A segment with that name exists already.");
create_exception!(_framebus, PermissionDenied, Error, "The OS refused access to the segment.");
create_exception!(_framebus, BadSegment, Error, "Not a valid framebus segment (truncated, garbage, other version).");
create_exception!(_framebus, Busy, Error, "Another live producer is attached to the segment.");
create_exception!(_framebus, Evicted, Error, "This consumer was reclaimed as dead; open a new one.");
create_exception!(_framebus, Corrupt, Error, "Shared memory holds impossible values.");
create_exception!(_framebus, Superseded, Error, "Another producer took over the segment.");
create_exception!(_framebus, Released, Error, "The frame, slot or endpoint was released or closed.");
create_exception!(_framebus, Timeout, Error, "No free slot came within the timeout (Block policy).");

/// How long a wait sleeps between checks for Ctrl-C.
const SLICE: Duration = Duration::from_millis(10);

fn platform_err(e: PlatformError) -> PyErr {
    let msg = e.to_string();
    match e {
        PlatformError::NotFound { .. } => NotFound::new_err(msg),
        PlatformError::AlreadyExists { .. } => AlreadyExists::new_err(msg),
        PlatformError::PermissionDenied { .. } => PermissionDenied::new_err(msg),
        PlatformError::Header { .. } => BadSegment::new_err(msg),
        PlatformError::InvalidName { .. } | PlatformError::Spec(_) => PyValueError::new_err(msg),
        _ => Error::new_err(msg),
    }
}

fn claim_err(e: ClaimError) -> PyErr {
    let msg = e.to_string();
    match e {
        ClaimError::Evicted => Evicted::new_err(msg),
        ClaimError::Corrupt => Corrupt::new_err(msg),
        ClaimError::NotHeld => Released::new_err(msg),
        ClaimError::Empty | ClaimError::Contended => Error::new_err(msg),
    }
}

fn produce_err(e: ProduceError) -> PyErr {
    let msg = e.to_string();
    match e {
        ProduceError::Begin(BeginError::Superseded) => Superseded::new_err(msg),
        ProduceError::TimedOut | ProduceError::Begin(BeginError::Full) => Timeout::new_err(msg),
        _ => Error::new_err(msg),
    }
}

fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))),
        Some(t) => {
            Err(PyValueError::new_err(format!("timeout must be a non-negative number of seconds or None, not {t}")))
        }
    }
}

/// The next wait slice before `deadline` (None: forever), or None when it has passed.
fn slice(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(SLICE),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then(|| left.min(SLICE))
        }
    }
}

/// Parses a name of the core's vocabulary (`framebus_core::vocab`: canonical names such as
/// `drop-oldest`, `_` accepted for `-`, aliases such as `bgr`), or raises `ValueError` listing
/// the accepted names.
fn parse<T: Vocabulary>(what: &str, s: &str) -> PyResult<T> {
    T::from_name(s).map_err(|e| PyValueError::new_err(format!("{what}={s:?}: {e}")))
}

/// The canonical names of a vocabulary, in code order (the module's `PIXEL_FORMATS`, …).
fn names<T: Vocabulary>() -> Vec<&'static str> {
    T::ALL.iter().map(|v| v.name()).collect()
}

/// The numpy shape of `len` bytes holding a frame of `geometry`: (H, W, 3) for packed colour,
/// (H, W) for gray and raw, (H·3/2, W) for 4:2:0 (OpenCV's layout); a flat (len,) when the
/// bytes are not exactly one frame of that geometry.
fn shape(g: FrameGeometry, len: u64) -> Vec<usize> {
    let (w, h) = (g.width as usize, g.height as usize);
    let dims = match g.format {
        PixelFormat::Bgr24 | PixelFormat::Rgb24 => vec![h, w, 3],
        PixelFormat::Gray8 | PixelFormat::Raw => vec![h, w],
        PixelFormat::Nv12 | PixelFormat::I420 => vec![h * 3 / 2, w],
    };
    let size = g.planes().ok().map(|p| p.frame_size);
    if w > 0 && h > 0 && size == Some(len) && dims.iter().product::<usize>() as u64 == len {
        dims
    } else {
        vec![len as usize]
    }
}

/// The dict numpy reads through `__array_interface__` (version 3).
fn array_interface<'py>(py: Python<'py>, addr: usize, shape: &[usize], readonly: bool) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("shape", PyTuple::new(py, shape)?)?;
    d.set_item("typestr", "|u1")?;
    d.set_item("data", (addr, readonly))?;
    d.set_item("strides", py.None())?;
    d.set_item("version", 3)?;
    Ok(d)
}

fn asarray<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static ASARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    ASARRAY.import(obj.py(), "numpy", "asarray")?.call1((obj,))
}

/// An open segment. Producers and consumers made from it keep it mapped; the creator's name
/// is removed when the creating `Segment` and every endpoint made from it are gone.
#[pyclass(module = "framebus._framebus", frozen)]
struct Segment {
    shared: Arc<SharedSegment>,
}

impl Segment {
    fn spec(&self) -> SegmentSpec {
        self.shared.segment().layout().spec
    }
}

#[pymethods]
impl Segment {
    /// The segment's name.
    #[getter]
    fn name(&self) -> String {
        self.shared.name().to_string()
    }
    /// Frame width in pixels.
    #[getter]
    fn width(&self) -> u32 {
        self.spec().geometry.width
    }
    /// Frame height in pixels.
    #[getter]
    fn height(&self) -> u32 {
        self.spec().geometry.height
    }
    /// Pixel format: one of `PIXEL_FORMATS` ("bgr24", "rgb24", "gray8", "nv12", "i420", "raw").
    #[getter]
    fn format(&self) -> &'static str {
        self.spec().geometry.format.name()
    }
    /// The numpy shape of one frame.
    #[getter]
    fn shape(&self) -> Vec<usize> {
        shape(self.spec().geometry, self.shared.segment().layout().planes.frame_size)
    }
    /// Number of slots.
    #[getter]
    fn slots(&self) -> u32 {
        self.spec().slot_count
    }
    /// One of `PATTERNS`: "work-queue" or "broadcast".
    #[getter]
    fn pattern(&self) -> &'static str {
        self.spec().pattern.name()
    }
    /// One of `POLICIES`: "block", "drop-oldest" or "drop-newest".
    #[getter]
    fn policy(&self) -> &'static str {
        self.spec().policy.name()
    }
    /// Bytes of one frame.
    #[getter]
    fn frame_size(&self) -> u64 {
        self.shared.segment().layout().planes.frame_size
    }
    /// Bytes of the whole mapping.
    #[getter]
    fn size(&self) -> u64 {
        self.shared.segment().layout().total_size
    }
    /// Address of the mapping in this process (every frame's array lies inside
    /// `[address, address + size)`).
    #[getter]
    fn address(&self) -> usize {
        self.shared.segment().region().base().as_ptr() as usize
    }
    /// Counters now: published, next_seq, dropped_oldest, dropped_newest, delivered, epoch.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.shared.segment().stats();
        let d = PyDict::new(py);
        d.set_item("published", s.write_pos)?;
        d.set_item("next_seq", s.next_seq)?;
        d.set_item("dropped_oldest", s.dropped_oldest)?;
        d.set_item("dropped_newest", s.dropped_newest)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("epoch", s.epoch)?;
        Ok(d)
    }
    /// Attaches as the segment's only producer (taking over from a dead one).
    fn producer(&self) -> PyResult<Producer> {
        let inner =
            OwnedProducer::attach(self.shared.clone()).map_err(|e: AttachError| Busy::new_err(e.to_string()))?;
        Ok(Producer { ep: Endpoint::new(inner), orphan: Mutex::new(None) })
    }
    /// Registers a work-queue worker: each frame goes to exactly one worker.
    fn worker(&self) -> PyResult<Consumer> {
        Consumer::register(&self.shared, ConsumerKind::Worker)
    }
    /// Registers a broadcast subscriber: every frame goes to every subscriber.
    fn subscriber(&self) -> PyResult<Consumer> {
        Consumer::register(&self.shared, ConsumerKind::Subscriber)
    }
    /// Registers a latest reader: the newest frame, skipping older ones (either pattern).
    fn latest(&self) -> PyResult<Consumer> {
        Consumer::register(&self.shared, ConsumerKind::Latest)
    }
    fn __repr__(&self) -> String {
        format!(
            "<framebus.Segment {:?} {}x{} {} slots={} {} {}>",
            self.shared.name(),
            self.width(),
            self.height(),
            self.format(),
            self.slots(),
            self.pattern(),
            self.policy()
        )
    }
}

/// Opens the existing segment `name`, validating its header and size.
#[pyfunction]
fn open(py: Python<'_>, name: &str) -> PyResult<Segment> {
    let shared = py.detach(|| SharedSegment::open(name)).map_err(platform_err)?;
    Ok(Segment { shared: Arc::new(shared) })
}

/// Creates the segment `name` for frames of `width` × `height` in `format`.
#[pyfunction]
#[pyo3(signature = (name, width, height, format="bgr24", slots=8, pattern="work-queue", policy="block", max_consumers=8, mode=0o600))]
#[allow(clippy::too_many_arguments)]
fn create(
    py: Python<'_>,
    name: &str,
    width: u32,
    height: u32,
    format: &str,
    slots: u32,
    pattern: &str,
    policy: &str,
    max_consumers: u32,
    mode: u32,
) -> PyResult<Segment> {
    let pattern: Pattern = parse("pattern", pattern)?;
    let policy: OverflowPolicy = parse("policy", policy)?;
    let format: PixelFormat = parse("format", format)?;
    let spec = SegmentSpec::new(FrameGeometry::new(width, height, format), slots)
        .with_pattern(pattern)
        .with_policy(policy)
        .with_max_consumers(max_consumers);
    let opts = CreateOptions { mode, ..CreateOptions::default() };
    let shared = py.detach(|| SharedSegment::create(name, &spec, opts)).map_err(platform_err)?;
    Ok(Segment { shared: Arc::new(shared) })
}

/// Removes the segment `name` from the namespace (open mappings stay valid).
#[pyfunction]
fn remove(name: &str) -> PyResult<()> {
    SharedSegment::remove(name).map_err(platform_err)
}

/// An endpoint's state shared by its Python object and the frames or slots it handed out.
struct Endpoint<T> {
    /// `None` once closed.
    inner: Mutex<Option<T>>,
    /// Threads blocked on `inner`: a waiting `claim`/`begin` steps aside for them between
    /// slices, so that they are not starved by its re-locking.
    waiting: AtomicUsize,
    /// Set by `close()` before it takes the lock: a waiting call gives up at its next slice,
    /// and views of frames and slots stop being handed out.
    closed: AtomicBool,
}

impl<T: Send> Endpoint<T> {
    fn new(inner: T) -> Self {
        Endpoint { inner: Mutex::new(Some(inner)), waiting: AtomicUsize::new(0), closed: AtomicBool::new(false) }
    }

    /// Takes the lock without ever blocking while attached to the interpreter: the thread
    /// holding it may be waiting (detached) for a frame and need the GIL back to finish.
    fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Option<T>> {
        loop {
            match self.inner.try_lock() {
                Ok(g) => return g,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    self.waiting.fetch_add(1, Ordering::SeqCst);
                    py.detach(|| drop(self.inner.lock()));
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// Before re-locking for the next slice of a wait: let blocked threads in first.
    fn step_aside(&self, py: Python<'_>) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            py.detach(|| {
                for _ in 0..1000 {
                    if self.waiting.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    std::thread::yield_now();
                }
            });
        }
    }

    /// The wait loop of `claim` and `begin`: runs `step(inner, slice)` with the lock held for
    /// one slice at a time and without the GIL, until it gives a result (`Ok(Some)`), fails,
    /// or `timeout` passes (`Ok(None)`); between slices, steps aside for blocked threads and
    /// runs signal handlers (without the lock: a handler may close the endpoint).
    fn wait_slices<R: Send>(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        closed: &'static str,
        step: impl Fn(&mut T, Duration) -> PyResult<Option<R>> + Sync,
    ) -> PyResult<Option<R>> {
        let deadline = deadline(timeout)?;
        loop {
            self.step_aside(py);
            if self.closed.load(Ordering::SeqCst) {
                return Err(Released::new_err(closed));
            }
            let wait = slice(deadline).unwrap_or(Duration::ZERO);
            let r = {
                let mut g = self.lock(py);
                let inner = g.as_mut().ok_or_else(|| Released::new_err(closed))?;
                py.detach(|| step(inner, wait))?
            };
            match r {
                Some(v) => return Ok(Some(v)),
                None if wait.is_zero() || slice(deadline).is_none() => return Ok(None),
                None => py.check_signals()?,
            }
        }
    }

    fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::SeqCst);
        let inner = self.lock(py).take();
        drop(inner);
    }
}

/// A worker, subscriber or latest reader.
#[pyclass(module = "framebus._framebus", frozen)]
struct Consumer {
    ep: Endpoint<OwnedConsumer>,
    /// Frames released (or garbage-collected) while another thread held the lock: given back
    /// by whoever takes it next (at the latest, a waiting claim's next slice).
    deferred: Mutex<Vec<(u32, u64)>>,
    kind: ConsumerKind,
    geometry: FrameGeometry,
    /// Consumer-table entry and its generation (to see, without the lock, that this consumer
    /// was reclaimed as dead and its frames with it).
    entry: (u32, u64),
}

impl Consumer {
    fn register(shared: &Arc<SharedSegment>, kind: ConsumerKind) -> PyResult<Consumer> {
        let inner =
            OwnedConsumer::register(shared.clone(), kind).map_err(|e: RegisterError| Error::new_err(e.to_string()))?;
        let entry = (inner.consumer().index(), inner.consumer().generation());
        Ok(Consumer {
            ep: Endpoint::new(inner),
            deferred: Mutex::new(Vec::new()),
            kind,
            geometry: shared.segment().layout().spec.geometry,
            entry,
        })
    }

    fn release_deferred(&self, c: &mut OwnedConsumer) {
        let frames = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|p| p.into_inner()));
        for (slot, gen) in frames {
            let _ = c.release(slot, gen);
        }
    }

    /// Releases `(slot, gen)` without blocking: now if the lock is free, else by the holder's
    /// next call. Never raises: a frame of a closed or evicted consumer is already given back.
    fn release_soon(&self, slot: u32, gen: u64) {
        match self.ep.inner.try_lock() {
            Ok(mut g) => {
                if let Some(c) = g.as_mut() {
                    self.release_deferred(c);
                    let _ = c.release(slot, gen);
                }
            }
            Err(TryLockError::Poisoned(p)) => {
                if let Some(c) = p.into_inner().as_mut() {
                    let _ = c.release(slot, gen);
                }
            }
            Err(TryLockError::WouldBlock) => self.deferred.lock().unwrap_or_else(|p| p.into_inner()).push((slot, gen)),
        }
    }

    /// Still registered as the entry it was: not closed, not reclaimed as dead.
    fn live(&self, seg: &SharedSegment) -> bool {
        let st = seg.segment().entry_state(self.entry.0);
        !self.ep.closed.load(Ordering::SeqCst) && st.status == EntryStatus::Alive && st.gen == self.entry.1
    }
}

#[pymethods]
impl Consumer {
    /// Claims the next frame, waiting up to `timeout` seconds (None: until one comes).
    /// Returns a `Frame`, or None when the timeout passed. The GIL is released while waiting.
    #[pyo3(signature = (timeout=None))]
    fn claim(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Frame>> {
        let this = slf.get();
        let got = this.ep.wait_slices(slf.py(), timeout, "this consumer is closed", |c, wait| {
            this.release_deferred(c);
            match c.claim(wait) {
                Ok(f) => Ok(Some((f, c.shared().clone()))),
                Err(WaitError::TimedOut) => Ok(None),
                Err(WaitError::Claim(e)) => Err(claim_err(e)),
            }
        })?;
        Ok(got.map(|(f, seg)| Frame::new(slf.clone().unbind(), seg, f, this.geometry)))
    }

    /// Frames delivered to this consumer.
    #[getter]
    fn delivered(&self, py: Python<'_>) -> u64 {
        self.ep.lock(py).as_ref().map_or(0, |c| c.counts().0)
    }
    /// Frames this consumer skipped (a subscriber or latest reader that fell behind).
    #[getter]
    fn skipped(&self, py: Python<'_>) -> u64 {
        self.ep.lock(py).as_ref().map_or(0, |c| c.counts().1)
    }
    /// Frames held now.
    #[getter]
    fn held(&self, py: Python<'_>) -> usize {
        let mut g = self.ep.lock(py);
        g.as_mut().map_or(0, |c| {
            self.release_deferred(c);
            c.held()
        })
    }
    /// One of `CONSUMER_KINDS`: "worker", "subscriber" or "latest".
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.name()
    }
    /// Releases every held frame and leaves the consumer table; a claim waiting in another
    /// thread raises `Released`. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.ep.close(py);
    }
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) {
        self.close(py);
    }
    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<framebus.Consumer {} delivered={} held={}>", self.kind(), self.delivered(py), self.held(py))
    }
}

/// A frame held by a consumer. `array` is a read-only numpy view of the slot (no copy),
/// valid until `release()` or the end of the `with` block.
#[pyclass(module = "framebus._framebus", frozen)]
struct Frame {
    consumer: Py<Consumer>,
    /// Keeps the mapping alive for as long as any view of this frame exists.
    seg: Arc<SharedSegment>,
    held: HeldFrame,
    geometry: FrameGeometry,
    released: AtomicBool,
}

impl Frame {
    fn new(consumer: Py<Consumer>, seg: Arc<SharedSegment>, held: HeldFrame, seg_geometry: FrameGeometry) -> Frame {
        let m = held.meta;
        let geometry = match PixelFormat::from_u32(m.pixel_format) {
            Some(format) if m.width > 0 && m.height > 0 => FrameGeometry::new(m.width, m.height, format),
            _ => seg_geometry,
        };
        Frame { consumer, seg, held, geometry, released: AtomicBool::new(false) }
    }

    fn len(&self) -> u64 {
        self.held.meta.payload_len.min(self.held.capacity)
    }

    /// The frame is still this consumer's: not released, the consumer neither closed nor
    /// reclaimed as dead (then the producer may be rewriting the slot).
    fn check(&self) -> PyResult<()> {
        if self.released.load(Ordering::Acquire) {
            return Err(Released::new_err(format!(
                "frame {} was released: its slot may already hold another frame (copy the array before releasing to keep it)",
                self.held.seq
            )));
        }
        if !self.consumer.get().live(&self.seg) {
            return Err(Released::new_err(format!(
                "frame {} is no longer held: its consumer was closed, or reclaimed as dead (evicted)",
                self.held.seq
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Frame {
    /// Read-only numpy view of the frame in shared memory (H×W×3 for bgr24/rgb24, H×W for
    /// gray8, H·3/2×W for nv12/i420). No copy is made.
    #[getter]
    fn array<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().check()?;
        asarray(slf.as_any())
    }
    /// The numpy array interface (what `numpy.asarray(frame)` uses).
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.check()?;
        array_interface(py, self.held.ptr as usize, &shape(self.geometry, self.len()), true)
    }
    /// A copy of the frame's bytes.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        self.check()?;
        // SAFETY: `self.seg` keeps the mapping alive, and `len` bytes at `ptr` lie inside the
        // slot (`len <= capacity`); the frame is still held (checked just above), so no honest
        // producer writes them.
        let bytes = unsafe { std::slice::from_raw_parts(self.held.ptr, self.len() as usize) };
        Ok(pyo3::types::PyBytes::new(py, bytes))
    }
    /// Gives the slot back to the producer (never blocks: if another thread is using the
    /// consumer, the slot goes back at its next step). Idempotent; never raises.
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.consumer.get().release_soon(self.held.slot, self.held.gen);
        }
    }
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __exit__(&self, _t: Option<Bound<'_, PyAny>>, _v: Option<Bound<'_, PyAny>>, _tb: Option<Bound<'_, PyAny>>) {
        self.release();
    }
    /// True once released.
    #[getter]
    fn released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }
    /// Sequence number (never reused; a gap means frames this consumer did not get).
    #[getter]
    fn seq(&self) -> u64 {
        self.held.seq
    }
    /// Producer epoch (moves when a producer takes over from a dead one).
    #[getter]
    fn epoch(&self) -> u64 {
        self.held.epoch
    }
    /// Capture time in ns, as the producer stamped it.
    #[getter]
    fn capture_ns(&self) -> u64 {
        self.held.meta.capture_ns
    }
    /// Presentation time in ns.
    #[getter]
    fn pts_ns(&self) -> u64 {
        self.held.meta.pts_ns
    }
    /// Width of this frame.
    #[getter]
    fn width(&self) -> u32 {
        self.geometry.width
    }
    /// Height of this frame.
    #[getter]
    fn height(&self) -> u32 {
        self.geometry.height
    }
    /// Pixel format of this frame.
    #[getter]
    fn format(&self) -> &'static str {
        self.geometry.format.name()
    }
    /// Application flags.
    #[getter]
    fn flags(&self) -> u32 {
        self.held.meta.flags
    }
    /// Bytes of payload.
    #[getter]
    fn payload_len(&self) -> u64 {
        self.held.meta.payload_len
    }
    /// The producer's content checksum, if it set one.
    #[getter]
    fn checksum(&self) -> Option<u64> {
        self.held.meta.checksum
    }
    /// Slot index.
    #[getter]
    fn slot(&self) -> u32 {
        self.held.slot
    }
    /// Address of the payload in this process.
    #[getter]
    fn address(&self) -> usize {
        self.held.ptr as usize
    }
    fn __repr__(&self) -> String {
        format!(
            "<framebus.Frame seq={} {}x{} {}{}>",
            self.held.seq,
            self.geometry.width,
            self.geometry.height,
            self.geometry.format.name(),
            if self.released() { " released" } else { "" }
        )
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.release();
    }
}

/// The unique producer of a segment.
#[pyclass(module = "framebus._framebus", frozen)]
struct Producer {
    ep: Endpoint<OwnedProducer>,
    /// A slot whose `Slot` object was garbage-collected unpublished while another thread held
    /// the lock: abandoned by the next `begin`.
    orphan: Mutex<Option<u64>>,
}

impl Producer {
    /// Abandons the slot of frame `seq` if it is still the one being written.
    fn abandon_if(p: &mut OwnedProducer, seq: u64) {
        if p.slot().map(|v| v.seq) == Some(seq) {
            p.abandon();
        }
    }
}

#[pymethods]
impl Producer {
    /// Acquires the slot for the next frame. Under the Block policy waits up to `timeout`
    /// seconds (None: until a consumer frees one) and raises `framebus.Timeout` after; under
    /// the drop policies never waits and returns None when this frame was dropped (counted).
    /// Fill `slot.array`, then `slot.publish()` (leaving a `with` block publishes too).
    #[pyo3(signature = (timeout=None))]
    fn begin(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Slot>> {
        let this = slf.get();
        // `Some(None)`: this frame was dropped by the policy (no slot, not an error).
        let got = this.ep.wait_slices(slf.py(), timeout, "this producer is closed", |p, wait| {
            if let Some(seq) = this.orphan.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Producer::abandon_if(p, seq);
            }
            match p.begin(wait) {
                Ok(v) => Ok(Some(Some((v, p.shared().clone())))),
                Err(ProduceError::Begin(BeginError::DroppedNewest { .. })) => Ok(Some(None)),
                Err(ProduceError::TimedOut) => Ok(None),
                Err(e) => Err(produce_err(e)),
            }
        })?;
        match got {
            None => Err(produce_err(ProduceError::TimedOut)),
            Some(None) => Ok(None),
            Some(Some((v, seg))) => Ok(Some(Slot {
                producer: slf.clone().unbind(),
                seg,
                slot: v.slot,
                seq: v.seq,
                addr: v.ptr as usize,
                dropped_seq: v.dropped_seq,
                done: AtomicBool::new(false),
            })),
        }
    }

    /// Copies `array` (anything numpy can broadcast into one frame) into the next slot and
    /// publishes it; returns its sequence number, or None when the policy dropped it.
    #[pyo3(signature = (array, capture_ns=0, pts_ns=0, flags=0, timeout=None))]
    fn write(
        slf: &Bound<'_, Self>,
        array: &Bound<'_, PyAny>,
        capture_ns: u64,
        pts_ns: u64,
        flags: u32,
        timeout: Option<f64>,
    ) -> PyResult<Option<u64>> {
        let Some(slot) = Producer::begin(slf, timeout)? else { return Ok(None) };
        let slot = Bound::new(slf.py(), slot)?;
        static COPYTO: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let copied = Slot::array(&slot).and_then(|dst| COPYTO.import(slf.py(), "numpy", "copyto")?.call1((dst, array)));
        if let Err(e) = copied {
            slot.get().abandon(slf.py());
            return Err(e);
        }
        slot.get().publish(slf.py(), capture_ns, pts_ns, flags, None, None).map(Some)
    }

    /// Detaches (a slot being written is given back unpublished); a `begin` waiting in
    /// another thread raises `Released`. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.ep.close(py);
    }
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) {
        self.close(py);
    }
}

/// A slot the producer is filling. `array` is a writable numpy view of the slot (no copy),
/// to be filled before `publish()`; do not keep it afterwards.
#[pyclass(module = "framebus._framebus", frozen)]
struct Slot {
    producer: Py<Producer>,
    /// Keeps the mapping alive for as long as any view of this slot exists; its layout gives
    /// the slot's geometry and sizes.
    seg: Arc<SharedSegment>,
    slot: u32,
    seq: u64,
    addr: usize,
    dropped_seq: Option<u64>,
    done: AtomicBool,
}

impl Slot {
    fn layout(&self) -> framebus_core::Layout {
        *self.seg.segment().layout()
    }

    fn check(&self) -> PyResult<()> {
        if self.done.load(Ordering::Acquire) {
            return Err(Released::new_err(format!("slot of frame {} was already published or abandoned", self.seq)));
        }
        if self.producer.get().ep.closed.load(Ordering::SeqCst) {
            return Err(Released::new_err(format!(
                "slot of frame {} was given back: its producer is closed",
                self.seq
            )));
        }
        Ok(())
    }
}

#[pymethods]
impl Slot {
    /// Writable numpy view of the slot, shaped as one frame of the segment's geometry.
    #[getter]
    fn array<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.get().check()?;
        asarray(slf.as_any())
    }
    /// The numpy array interface (what `numpy.asarray(slot)` uses).
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.check()?;
        let layout = self.layout();
        array_interface(py, self.addr, &shape(layout.spec.geometry, layout.planes.frame_size), false)
    }
    /// The sequence number this frame gets when published.
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }
    /// Slot index.
    #[getter]
    fn slot(&self) -> u32 {
        self.slot
    }
    /// The frame whose unclaimed slot this one reuses (drop_oldest), if any.
    #[getter]
    fn dropped_seq(&self) -> Option<u64> {
        self.dropped_seq
    }
    /// Publishes the frame; returns its sequence number. `payload_len` defaults to one whole
    /// frame; `width`/`height`/`format` come from the segment.
    #[pyo3(signature = (capture_ns=0, pts_ns=0, flags=0, payload_len=None, checksum=None))]
    fn publish(
        &self,
        py: Python<'_>,
        capture_ns: u64,
        pts_ns: u64,
        flags: u32,
        payload_len: Option<u64>,
        checksum: Option<u64>,
    ) -> PyResult<u64> {
        let layout = self.layout();
        let (geometry, capacity) = (layout.spec.geometry, layout.spec.slot_payload_size);
        let payload_len = payload_len.unwrap_or(layout.planes.frame_size);
        if payload_len > capacity {
            return Err(PyValueError::new_err(format!(
                "payload_len {payload_len} exceeds the slot capacity {}",
                capacity
            )));
        }
        self.check()?;
        let mut g = self.producer.get().ep.lock(py);
        let p = g.as_mut().ok_or_else(|| Released::new_err("the producer is closed (its slot was given back)"))?;
        if p.slot().map(|v| v.seq) != Some(self.seq) || self.done.swap(true, Ordering::AcqRel) {
            return Err(Released::new_err(format!("slot of frame {} is not being written any more", self.seq)));
        }
        let meta = FrameMeta {
            capture_ns,
            pts_ns,
            width: geometry.width,
            height: geometry.height,
            pixel_format: geometry.format as u32,
            flags,
            payload_len,
            checksum,
        };
        p.publish(meta).map(|x| x.seq).map_err(produce_err)
    }
    /// Gives the slot back unpublished (no sequence number is used). Idempotent.
    fn abandon(&self, py: Python<'_>) {
        if !self.done.swap(true, Ordering::AcqRel) {
            if let Some(p) = self.producer.get().ep.lock(py).as_mut() {
                Producer::abandon_if(p, self.seq);
            }
        }
    }
    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    /// Leaving the block publishes (unless published or abandoned already); an exception
    /// abandons the slot instead.
    fn __exit__(
        &self,
        py: Python<'_>,
        t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if self.done.load(Ordering::Acquire) {
            return Ok(());
        }
        if t.is_some() {
            self.abandon(py);
            Ok(())
        } else {
            self.publish(py, 0, 0, 0, None, None).map(|_| ())
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            // Not published: give it back now, or (the producer is in use by another thread)
            // at its next begin.
            let producer = self.producer.get();
            match producer.ep.inner.try_lock() {
                Ok(mut g) => {
                    if let Some(p) = g.as_mut() {
                        Producer::abandon_if(p, self.seq);
                    }
                }
                Err(_) => *producer.orphan.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.seq),
            }
        }
    }
}

/// framebus: zero-copy video frames between processes over shared memory.
#[pymodule]
fn _framebus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LAYOUT_VERSION", framebus_core::layout::LAYOUT_VERSION)?;
    m.add("PIXEL_FORMATS", names::<PixelFormat>())?;
    m.add("PATTERNS", names::<Pattern>())?;
    m.add("POLICIES", names::<OverflowPolicy>())?;
    m.add("CONSUMER_KINDS", names::<ConsumerKind>())?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(create, m)?)?;
    m.add_function(wrap_pyfunction!(remove, m)?)?;
    m.add_class::<Segment>()?;
    m.add_class::<Producer>()?;
    m.add_class::<Slot>()?;
    m.add_class::<Consumer>()?;
    m.add_class::<Frame>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("AlreadyExists", py.get_type::<AlreadyExists>())?;
    m.add("PermissionDenied", py.get_type::<PermissionDenied>())?;
    m.add("BadSegment", py.get_type::<BadSegment>())?;
    m.add("Busy", py.get_type::<Busy>())?;
    m.add("Evicted", py.get_type::<Evicted>())?;
    m.add("Corrupt", py.get_type::<Corrupt>())?;
    m.add("Superseded", py.get_type::<Superseded>())?;
    m.add("Released", py.get_type::<Released>())?;
    m.add("Timeout", py.get_type::<Timeout>())?;
    Ok(())
}
