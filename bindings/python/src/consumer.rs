//! `Consumer` (worker, subscriber, latest reader) and the `Frame`s it hands out.

use super::*;

/// A worker, subscriber or latest reader.
#[pyclass(module = "framebus._framebus", frozen)]
pub(crate) struct Consumer {
    pub(crate) ep: Endpoint<OwnedConsumer>,
    /// Frames released (or garbage-collected) while another thread held the lock: given back
    /// by whoever takes it next (at the latest, a waiting claim's next slice).
    pub(crate) deferred: Mutex<Vec<(u32, u64)>>,
    pub(crate) kind: ConsumerKind,
    pub(crate) geometry: FrameGeometry,
    /// Consumer-table entry and its generation (to see, without the lock, that this consumer
    /// was reclaimed as dead and its frames with it).
    pub(crate) entry: (u32, u64),
}

impl Consumer {
    pub(crate) fn register(shared: &Arc<SharedSegment>, kind: ConsumerKind) -> PyResult<Consumer> {
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

    pub(crate) fn release_deferred(&self, c: &mut OwnedConsumer) {
        let frames = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|p| p.into_inner()));
        for (slot, gen) in frames {
            let _ = c.release(slot, gen);
        }
    }

    /// Releases `(slot, gen)` without blocking: now if the lock is free, else by the holder's
    /// next call. Never raises: a frame of a closed or evicted consumer is already given back.
    pub(crate) fn release_soon(&self, slot: u32, gen: u64) {
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
    pub(crate) fn live(&self, seg: &SharedSegment) -> bool {
        let st = seg.segment().entry_state(self.entry.0);
        !self.ep.closed.load(Ordering::SeqCst) && st.status == EntryStatus::Alive && st.gen == self.entry.1
    }
}

#[pymethods]
impl Consumer {
    /// Claims the next frame, waiting up to `timeout` seconds (None: until one comes).
    /// Returns a `Frame`, or None when the timeout passed; raises `EndOfStream` once the
    /// producer finished and every frame was given out (`for frame in consumer:` stops there).
    /// The GIL is released while waiting.
    #[pyo3(signature = (timeout=None))]
    fn claim(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Option<Frame>> {
        let this = slf.get();
        let got = this.ep.wait_slices(slf.py(), timeout, "this consumer is closed", |c, wait| {
            this.release_deferred(c);
            match c.claim(wait) {
                Ok(f) => Ok(Some((f, c.shared().clone()))),
                Err(WaitError::TimedOut) => Ok(None),
                Err(WaitError::Ended) => Err(claim_err(ClaimError::Ended)),
                Err(WaitError::Claim(e)) => Err(claim_err(e)),
            }
        })?;
        Ok(got.map(|(f, seg)| Frame::new(slf.clone().unbind(), seg, f, this.geometry)))
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    /// The next frame, waiting as long as it takes; stops at the end of the stream.
    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Option<Frame>> {
        match Consumer::claim(slf, None) {
            Err(e) if e.is_instance_of::<EndOfStream>(slf.py()) => Ok(None), // StopIteration
            r => r,
        }
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
pub(crate) struct Frame {
    pub(crate) consumer: Py<Consumer>,
    /// Keeps the mapping alive for as long as any view of this frame exists.
    pub(crate) seg: Arc<SharedSegment>,
    pub(crate) held: HeldFrame,
    pub(crate) geometry: FrameGeometry,
    pub(crate) released: AtomicBool,
}

impl Frame {
    pub(crate) fn new(
        consumer: Py<Consumer>,
        seg: Arc<SharedSegment>,
        held: HeldFrame,
        seg_geometry: FrameGeometry,
    ) -> Frame {
        let m = held.meta;
        let geometry = match PixelFormat::from_u32(m.pixel_format) {
            Some(format) if m.width > 0 && m.height > 0 => FrameGeometry::new(m.width, m.height, format),
            _ => seg_geometry,
        };
        Frame { consumer, seg, held, geometry, released: AtomicBool::new(false) }
    }

    pub(crate) fn len(&self) -> u64 {
        self.held.meta.payload_len.min(self.held.capacity)
    }

    /// The frame is still this consumer's: not released, the consumer neither closed nor
    /// reclaimed as dead (then the producer may be rewriting the slot).
    pub(crate) fn check(&self) -> PyResult<()> {
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
    /// Posts `data` (bytes, at most the segment's result size) as this frame's result, before
    /// releasing it; waits up to `timeout` seconds (None: until it can) while the results reader
    /// is a whole window behind. Returns True when the reader will deliver it, False when the
    /// frame was already given up on (its deadline passed: counted as late). Raises `Timeout`
    /// when the window stayed full (the loss is counted), `ValueError` for a result too large,
    /// `Error` for a second post or a segment without results.
    #[pyo3(signature = (data, timeout=None))]
    fn post(&self, py: Python<'_>, data: &[u8], timeout: Option<f64>) -> PyResult<bool> {
        self.check()?;
        let consumer = self.consumer.get();
        let (slot, gen) = (self.held.slot, self.held.gen);
        let got = consumer.ep.wait_slices(py, timeout, "this consumer is closed", |c, wait| {
            match c.try_post(slot, gen, data, wait) {
                Ok(Posted::Ready) => Ok(Some(true)),
                Ok(Posted::Late) => Ok(Some(false)),
                Err(PostError::WindowFull) => Ok(None),
                Err(PostError::TooLarge { len, max }) => Err(PyValueError::new_err(format!(
                    "result of {len} bytes exceeds the segment's {max}-byte maximum"
                ))),
                Err(e) => Err(Error::new_err(e.to_string())),
            }
        })?;
        match got {
            Some(ready) => Ok(ready),
            None => {
                self.seg.segment().note_result_overflow();
                Err(Timeout::new_err("the results reader stayed a whole window behind: this result is lost (counted)"))
            }
        }
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
