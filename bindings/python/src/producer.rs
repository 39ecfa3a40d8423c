//! `Producer` and the `Slot` it is writing.

use super::*;

/// The unique producer of a segment.
#[pyclass(module = "framebus._framebus", frozen)]
pub(crate) struct Producer {
    pub(crate) ep: Endpoint<OwnedProducer>,
    /// A slot whose `Slot` object was garbage-collected unpublished while another thread held
    /// the lock: abandoned by the next `begin`.
    pub(crate) orphan: Mutex<Option<u64>>,
}

impl Producer {
    /// Abandons the slot of frame `seq` if it is still the one being written.
    pub(crate) fn abandon_if(p: &mut OwnedProducer, seq: u64) {
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

    /// Ends the stream after the last frame issued, then detaches: the results reader ends
    /// its iteration once it has delivered every frame. Idempotent.
    fn finish(&self, py: Python<'_>) {
        self.ep.closed.store(true, Ordering::SeqCst);
        if let Some(p) = self.ep.lock(py).take() {
            p.finish();
        }
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
pub(crate) struct Slot {
    pub(crate) producer: Py<Producer>,
    /// Keeps the mapping alive for as long as any view of this slot exists; its layout gives
    /// the slot's geometry and sizes.
    pub(crate) seg: Arc<SharedSegment>,
    pub(crate) slot: u32,
    pub(crate) seq: u64,
    pub(crate) addr: usize,
    pub(crate) dropped_seq: Option<u64>,
    pub(crate) done: AtomicBool,
}

impl Slot {
    pub(crate) fn layout(&self) -> framebus_core::Layout {
        *self.seg.segment().layout()
    }

    pub(crate) fn check(&self) -> PyResult<()> {
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
