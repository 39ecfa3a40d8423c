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
//! Waits (`claim`, `begin`) release the GIL and wake every 100 ms to let Ctrl-C through.
//! Endpoints are safe to share between threads (each call takes the endpoint's lock without
//! holding the GIL), though one thread per endpoint is the intended use.
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use framebus_core::segment::{AttachError, ClaimError, FrameMeta, RegisterError};
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
const SLICE: Duration = Duration::from_millis(100);

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

/// Takes `m`'s lock without ever blocking while attached to the interpreter: a thread that
/// holds the lock may itself be waiting (detached) for a frame and need the GIL back later.
fn lock<'a, T: Send>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    loop {
        match m.try_lock() {
            Ok(g) => return g,
            Err(TryLockError::Poisoned(p)) => return p.into_inner(),
            Err(TryLockError::WouldBlock) => py.detach(|| drop(m.lock())),
        }
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

fn format_name(f: PixelFormat) -> &'static str {
    match f {
        PixelFormat::Raw => "raw",
        PixelFormat::Bgr24 => "bgr24",
        PixelFormat::Rgb24 => "rgb24",
        PixelFormat::Gray8 => "gray8",
        PixelFormat::Nv12 => "nv12",
        PixelFormat::I420 => "i420",
    }
}

fn parse_format(s: &str) -> PyResult<PixelFormat> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "raw" => PixelFormat::Raw,
        "bgr24" | "bgr" => PixelFormat::Bgr24,
        "rgb24" | "rgb" => PixelFormat::Rgb24,
        "gray8" | "gray" => PixelFormat::Gray8,
        "nv12" => PixelFormat::Nv12,
        "i420" => PixelFormat::I420,
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown format {s:?}: use bgr24, rgb24, gray8, nv12, i420 or raw"
            )))
        }
    })
}

/// The numpy shape of `len` bytes holding a frame of `geometry`: (H, W, 3) for packed colour,
/// (H, W) for gray and raw, (H·3/2, W) for 4:2:0 (OpenCV's layout); a flat (len,) when the
/// bytes are not exactly one frame of that geometry.
fn shape(g: FrameGeometry, len: u64) -> Vec<usize> {
    let (w, h) = (g.width as usize, g.height as usize);
    let (dims, size): (Vec<usize>, Option<u64>) = match g.format {
        PixelFormat::Bgr24 | PixelFormat::Rgb24 => (vec![h, w, 3], g.planes().ok().map(|p| p.frame_size)),
        PixelFormat::Gray8 | PixelFormat::Raw => (vec![h, w], g.planes().ok().map(|p| p.frame_size)),
        PixelFormat::Nv12 | PixelFormat::I420 => (vec![h * 3 / 2, w], g.planes().ok().map(|p| p.frame_size)),
    };
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
    /// Pixel format: "bgr24", "rgb24", "gray8", "nv12", "i420" or "raw".
    #[getter]
    fn format(&self) -> &'static str {
        format_name(self.spec().geometry.format)
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
    /// "work_queue" or "broadcast".
    #[getter]
    fn pattern(&self) -> &'static str {
        match self.spec().pattern {
            Pattern::WorkQueue => "work_queue",
            Pattern::Broadcast => "broadcast",
        }
    }
    /// "block", "drop_oldest" or "drop_newest".
    #[getter]
    fn policy(&self) -> &'static str {
        match self.spec().policy {
            OverflowPolicy::Block => "block",
            OverflowPolicy::DropOldest => "drop_oldest",
            OverflowPolicy::DropNewest => "drop_newest",
        }
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
        Ok(Producer { inner: Mutex::new(Some(inner)), orphan: Mutex::new(None) })
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
#[pyo3(signature = (name, width, height, format="bgr24", slots=8, pattern="work_queue", policy="block", max_consumers=8, mode=0o600))]
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
    let pattern = match pattern {
        "work_queue" => Pattern::WorkQueue,
        "broadcast" => Pattern::Broadcast,
        p => return Err(PyValueError::new_err(format!("unknown pattern {p:?}: use work_queue or broadcast"))),
    };
    let policy = match policy {
        "block" => OverflowPolicy::Block,
        "drop_oldest" => OverflowPolicy::DropOldest,
        "drop_newest" => OverflowPolicy::DropNewest,
        p => return Err(PyValueError::new_err(format!("unknown policy {p:?}: use block, drop_oldest or drop_newest"))),
    };
    let spec = SegmentSpec::new(FrameGeometry::new(width, height, parse_format(format)?), slots)
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

/// A worker, subscriber or latest reader.
#[pyclass(module = "framebus._framebus", frozen)]
struct Consumer {
    /// `None` once closed.
    inner: Mutex<Option<OwnedConsumer>>,
    /// Frames garbage-collected while another thread held `inner`: released at the next call.
    deferred: Mutex<Vec<(u32, u64)>>,
    kind: ConsumerKind,
    geometry: FrameGeometry,
}

impl Consumer {
    fn register(shared: &Arc<SharedSegment>, kind: ConsumerKind) -> PyResult<Consumer> {
        let inner =
            OwnedConsumer::register(shared.clone(), kind).map_err(|e: RegisterError| Error::new_err(e.to_string()))?;
        Ok(Consumer {
            inner: Mutex::new(Some(inner)),
            deferred: Mutex::new(Vec::new()),
            kind,
            geometry: shared.segment().layout().spec.geometry,
        })
    }

    fn release_deferred(&self, c: &mut OwnedConsumer) {
        let frames = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|p| p.into_inner()));
        for (slot, gen) in frames {
            let _ = c.release(slot, gen);
        }
    }

    /// Releases `(slot, gen)` without blocking (called from a Frame's destructor).
    fn release_soon(&self, slot: u32, gen: u64) {
        match self.inner.try_lock() {
            Ok(mut g) => {
                if let Some(c) = g.as_mut() {
                    let _ = c.release(slot, gen);
                }
            }
            Err(_) => self.deferred.lock().unwrap_or_else(|p| p.into_inner()).push((slot, gen)),
        }
    }
}

#[pymethods]
impl Consumer {
    /// Claims the next frame, waiting up to `timeout` seconds (None: until one comes).
    /// Returns a `Frame`, or None when the timeout passed. The GIL is released while waiting.
    #[pyo3(signature = (timeout=None))]
    fn claim(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Frame>> {
        let py = slf.py();
        let this = slf.get();
        let deadline = deadline(timeout)?;
        let mut g = lock(py, &this.inner);
        let c = g.as_mut().ok_or_else(|| Released::new_err("this consumer is closed"))?;
        this.release_deferred(c);
        loop {
            let wait = slice(deadline).unwrap_or(Duration::ZERO);
            match py.detach(|| c.claim(wait)) {
                Ok(f) => return Ok(Some(Frame::new(slf.clone().unbind(), f, this.geometry))),
                Err(WaitError::TimedOut) if wait.is_zero() || slice(deadline).is_none() => return Ok(None),
                Err(WaitError::TimedOut) => py.check_signals()?,
                Err(WaitError::Claim(e)) => return Err(claim_err(e)),
            }
        }
    }

    /// Frames delivered to this consumer.
    #[getter]
    fn delivered(&self, py: Python<'_>) -> u64 {
        lock(py, &self.inner).as_ref().map_or(0, |c| c.counts().0)
    }
    /// Frames this consumer skipped (a subscriber or latest reader that fell behind).
    #[getter]
    fn skipped(&self, py: Python<'_>) -> u64 {
        lock(py, &self.inner).as_ref().map_or(0, |c| c.counts().1)
    }
    /// Frames held now.
    #[getter]
    fn held(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).as_ref().map_or(0, OwnedConsumer::held)
    }
    /// "worker", "subscriber" or "latest".
    #[getter]
    fn kind(&self) -> &'static str {
        match self.kind {
            ConsumerKind::Worker => "worker",
            ConsumerKind::Subscriber => "subscriber",
            ConsumerKind::Latest => "latest",
        }
    }
    /// Releases every held frame and leaves the consumer table. Idempotent.
    fn close(&self, py: Python<'_>) {
        let c = lock(py, &self.inner).take();
        drop(c);
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
    held: HeldFrame,
    geometry: FrameGeometry,
    released: AtomicBool,
}

impl Frame {
    fn new(consumer: Py<Consumer>, held: HeldFrame, seg_geometry: FrameGeometry) -> Frame {
        let m = held.meta;
        let geometry = match PixelFormat::from_u32(m.pixel_format) {
            Some(format) if m.width > 0 && m.height > 0 => FrameGeometry::new(m.width, m.height, format),
            _ => seg_geometry,
        };
        Frame { consumer, held, geometry, released: AtomicBool::new(false) }
    }

    fn len(&self) -> u64 {
        self.held.meta.payload_len.min(self.held.capacity)
    }

    fn check(&self) -> PyResult<()> {
        if self.released.load(Ordering::Acquire) {
            return Err(Released::new_err(format!(
                "frame {} was released: its slot may already hold another frame (copy the array before releasing to keep it)",
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
        // SAFETY: the frame is held (checked), so `len` bytes at `ptr` are inside the slot and
        // no honest producer writes them until release.
        let bytes = unsafe { std::slice::from_raw_parts(self.held.ptr, self.len() as usize) };
        Ok(pyo3::types::PyBytes::new(py, bytes))
    }
    /// Gives the slot back to the producer. Idempotent.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        if self.released.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let consumer = self.consumer.get();
        let mut g = lock(py, &consumer.inner);
        match g.as_mut() {
            Some(c) => match c.release(self.held.slot, self.held.gen) {
                // Evicted / not held: the hold is gone anyway (a consumer reclaimed as dead).
                Ok(()) | Err(ClaimError::NotHeld) => Ok(()),
                Err(e) => Err(claim_err(e)),
            },
            None => Ok(()), // the consumer was closed: it released everything
        }
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
    ) -> PyResult<()> {
        self.release(py)
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
        format_name(self.geometry.format)
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
            format_name(self.geometry.format),
            if self.released() { " released" } else { "" }
        )
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.consumer.get().release_soon(self.held.slot, self.held.gen);
        }
    }
}

/// The unique producer of a segment.
#[pyclass(module = "framebus._framebus", frozen)]
struct Producer {
    /// `None` once closed.
    inner: Mutex<Option<OwnedProducer>>,
    /// A slot whose `Slot` object was garbage-collected unpublished while another thread held
    /// `inner`: abandoned by the next `begin`.
    orphan: Mutex<Option<u64>>,
}

#[pymethods]
impl Producer {
    /// Acquires the slot for the next frame. Under the Block policy waits up to `timeout`
    /// seconds (None: until a consumer frees one) and raises `framebus.Timeout` after; under
    /// the drop policies never waits and returns None when this frame was dropped (counted).
    /// Fill `slot.array`, then `slot.publish()` (leaving a `with` block publishes too).
    #[pyo3(signature = (timeout=None))]
    fn begin(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Slot>> {
        let py = slf.py();
        let deadline = deadline(timeout)?;
        let mut g = lock(py, &slf.get().inner);
        let p = g.as_mut().ok_or_else(|| Released::new_err("this producer is closed"))?;
        if let Some(seq) = slf.get().orphan.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if p.slot().map(|v| v.seq) == Some(seq) {
                p.abandon();
            }
        }
        let geometry = p.shared().segment().layout().spec.geometry;
        let frame_size = p.shared().segment().layout().planes.frame_size;
        loop {
            let wait = slice(deadline).unwrap_or(Duration::ZERO);
            match py.detach(|| p.begin(wait)) {
                Ok(v) => {
                    return Ok(Some(Slot {
                        producer: slf.clone().unbind(),
                        slot: v.slot,
                        seq: v.seq,
                        addr: v.ptr as usize,
                        frame_size,
                        geometry,
                        dropped_seq: v.dropped_seq,
                        done: AtomicBool::new(false),
                    }))
                }
                Err(ProduceError::Begin(BeginError::DroppedNewest { .. })) => return Ok(None),
                Err(ProduceError::TimedOut) if !wait.is_zero() && slice(deadline).is_some() => py.check_signals()?,
                Err(e) => return Err(produce_err(e)),
            }
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
            slot.get().abandon(slf.py())?;
            return Err(e);
        }
        slot.get().publish(slf.py(), capture_ns, pts_ns, flags, None, None).map(Some)
    }

    /// Detaches (a slot being written is given back unpublished). Idempotent.
    fn close(&self, py: Python<'_>) {
        let p = lock(py, &self.inner).take();
        drop(p);
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

/// A slot the producer is filling. `array` is a writable numpy view of the slot (no copy).
#[pyclass(module = "framebus._framebus", frozen)]
struct Slot {
    producer: Py<Producer>,
    slot: u32,
    seq: u64,
    addr: usize,
    frame_size: u64,
    geometry: FrameGeometry,
    dropped_seq: Option<u64>,
    done: AtomicBool,
}

impl Slot {
    fn check(&self) -> PyResult<()> {
        if self.done.load(Ordering::Acquire) {
            return Err(Released::new_err(format!("slot of frame {} was already published or abandoned", self.seq)));
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
        array_interface(py, self.addr, &shape(self.geometry, self.frame_size), false)
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
        let payload_len = payload_len.unwrap_or(self.frame_size);
        let mut g = lock(py, &self.producer.get().inner);
        let p = g.as_mut().ok_or_else(|| Released::new_err("the producer is closed (its slot was given back)"))?;
        if p.slot().map(|v| v.seq) != Some(self.seq) {
            return Err(Released::new_err(format!("slot of frame {} is not being written any more", self.seq)));
        }
        let capacity = p.slot().map_or(0, |v| v.capacity);
        if payload_len > capacity {
            return Err(PyValueError::new_err(format!(
                "payload_len {payload_len} exceeds the slot capacity {capacity}"
            )));
        }
        if self.done.swap(true, Ordering::AcqRel) {
            return Err(Released::new_err(format!("slot of frame {} was already published or abandoned", self.seq)));
        }
        let meta = FrameMeta {
            capture_ns,
            pts_ns,
            width: self.geometry.width,
            height: self.geometry.height,
            pixel_format: self.geometry.format as u32,
            flags,
            payload_len,
            checksum,
        };
        p.publish(meta).map(|x| x.seq).map_err(produce_err)
    }
    /// Gives the slot back unpublished (no sequence number is used). Idempotent.
    fn abandon(&self, py: Python<'_>) -> PyResult<()> {
        if self.done.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut g = lock(py, &self.producer.get().inner);
        if let Some(p) = g.as_mut() {
            if p.slot().map(|v| v.seq) == Some(self.seq) {
                p.abandon();
            }
        }
        Ok(())
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
            self.abandon(py)
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
            match producer.inner.try_lock() {
                Ok(mut g) => {
                    if let Some(p) = g.as_mut() {
                        if p.slot().map(|v| v.seq) == Some(self.seq) {
                            p.abandon();
                        }
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
