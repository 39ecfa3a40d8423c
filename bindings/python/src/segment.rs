//! `Segment`: an open segment and what it says about itself; `open`, `create`, `remove`.

use super::*;

/// An open segment. Producers and consumers made from it keep it mapped; the creator's name
/// is removed when the creating `Segment` and every endpoint made from it are gone.
#[pyclass(module = "framebus._framebus", frozen)]
pub(crate) struct Segment {
    pub(crate) shared: Arc<SharedSegment>,
}

impl Segment {
    pub(crate) fn spec(&self) -> SegmentSpec {
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
    /// Counters now: published, next_seq, dropped_oldest, dropped_newest, delivered, epoch,
    /// reclaimed, redelivered, late_results, result_overflow.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.shared.segment().stats();
        let d = PyDict::new(py);
        d.set_item("published", s.write_pos)?;
        d.set_item("next_seq", s.next_seq)?;
        d.set_item("dropped_oldest", s.dropped_oldest)?;
        d.set_item("dropped_newest", s.dropped_newest)?;
        d.set_item("delivered", s.delivered)?;
        d.set_item("epoch", s.epoch)?;
        // Frames taken back from consumers whose process died (their holds cleared).
        d.set_item("reclaimed", s.reclaimed)?;
        // Of those, frames given once more to another worker (segments with results).
        d.set_item("redelivered", s.redelivered)?;
        let (late, overflow) = self.shared.segment().result_counts();
        d.set_item("late_results", late)?;
        d.set_item("result_overflow", overflow)?;
        Ok(d)
    }
    /// Attaches as the segment's only producer (taking over from a dead one).
    fn producer(&self) -> PyResult<Producer> {
        let inner =
            OwnedProducer::attach(self.shared.clone()).map_err(|e: AttachError| Busy::new_err(e.to_string()))?;
        Ok(Producer { ep: Endpoint::new(inner), orphan: Mutex::new(None) })
    }
    /// Attaches as the segment's ordered results reader (taking over from a dead one). With
    /// `deadline` (seconds), iteration gives up on a frame whose result has not come that long
    /// after the reader started waiting for it, and yields it as skipped ("deadline").
    #[pyo3(signature = (deadline=None))]
    fn reader(&self, deadline: Option<f64>) -> PyResult<Reader> {
        Reader::attach(&self.shared, deadline)
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
pub(crate) fn open(py: Python<'_>, name: &str) -> PyResult<Segment> {
    let shared = py.detach(|| SharedSegment::open(name)).map_err(platform_err)?;
    Ok(Segment { shared: Arc::new(shared) })
}

/// Creates the segment `name` for frames of `width` × `height` in `format`.
#[pyfunction]
#[pyo3(signature = (name, width, height, format="bgr24", slots=8, pattern="work-queue", policy="block", max_consumers=8, mode=0o600, results=0, result_max=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
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
    results: u32,
    result_max: u32,
) -> PyResult<Segment> {
    let pattern: Pattern = parse("pattern", pattern)?;
    let policy: OverflowPolicy = parse("policy", policy)?;
    let format: PixelFormat = parse("format", format)?;
    let spec = SegmentSpec::new(FrameGeometry::new(width, height, format), slots)
        .with_pattern(pattern)
        .with_policy(policy)
        .with_max_consumers(max_consumers)
        .with_results(results, result_max);
    let opts = CreateOptions { mode, ..CreateOptions::default() };
    let shared = py.detach(|| SharedSegment::create(name, &spec, opts)).map_err(platform_err)?;
    Ok(Segment { shared: Arc::new(shared) })
}

/// Removes the segment `name` from the namespace (open mappings stay valid).
#[pyfunction]
pub(crate) fn remove(name: &str) -> PyResult<()> {
    SharedSegment::remove(name).map_err(platform_err)
}
