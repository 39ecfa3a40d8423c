//! `Reader`: the ordered results reader (every frame's result, or its skip, in frame order),
//! and the `OrderedResult`s it yields.

use super::*;

/// One frame's outcome in frame order: its result bytes, or why it has none.
#[pyclass(module = "framebus._framebus", frozen, get_all)]
pub(crate) struct OrderedResult {
    /// Sequence number of the frame.
    pub(crate) seq: u64,
    /// Producer epoch of the frame (0 when skipped).
    pub(crate) epoch: u64,
    /// The result's bytes; None when skipped.
    pub(crate) data: Option<Py<PyBytes>>,
    /// Why the frame has no result (one of `SKIP_CAUSES`); None for a result.
    pub(crate) skipped: Option<&'static str>,
}

#[pymethods]
impl OrderedResult {
    fn __repr__(&self, py: Python<'_>) -> String {
        match (&self.data, self.skipped) {
            (Some(d), _) => format!("<framebus.OrderedResult seq={} {} bytes>", self.seq, d.bind(py).as_bytes().len()),
            (None, Some(c)) => format!("<framebus.OrderedResult seq={} skipped={c}>", self.seq),
            (None, None) => format!("<framebus.OrderedResult seq={}>", self.seq),
        }
    }
}

/// The segment's ordered results reader (`Segment.reader()`). Iterating yields an
/// `OrderedResult` per frame, strictly in frame order, and stops at the end of the stream
/// (`Producer.finish()`).
#[pyclass(module = "framebus._framebus", frozen)]
pub(crate) struct Reader {
    pub(crate) ep: Endpoint<(OwnedReader, Vec<u8>)>,
    pub(crate) deadline: Option<f64>,
}

/// What one step of the reader gave, before it becomes a Python object.
enum Step {
    Result { seq: u64, epoch: u64, bytes: Vec<u8> },
    Skipped { seq: u64, cause: SkipCause },
    End,
}

impl Reader {
    pub(crate) fn attach(shared: &Arc<SharedSegment>, deadline: Option<f64>) -> PyResult<Reader> {
        if let Some(d) = deadline {
            if !(d.is_finite() && d >= 0.0) {
                return Err(PyValueError::new_err(format!("deadline={d}: use a number of seconds >= 0")));
            }
        }
        let inner = OwnedReader::attach(shared.clone()).map_err(|e| match e {
            AttachError::NoResults => Error::new_err(e.to_string()),
            e => Busy::new_err(e.to_string()),
        })?;
        let buf = vec![0u8; shared.segment().layout().spec.result_max as usize];
        Ok(Reader { ep: Endpoint::new((inner, buf)), deadline })
    }

    fn step(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Step>> {
        self.ep.wait_slices(py, timeout, "this reader is closed", |(r, buf), wait| match r.next(buf, wait) {
            Ok(Next::Pending { .. }) => Ok(None),
            Ok(Next::Result { seq, epoch, len }) => Ok(Some(Step::Result { seq, epoch, bytes: buf[..len].to_vec() })),
            Ok(Next::Skipped { seq, cause }) => Ok(Some(Step::Skipped { seq, cause })),
            Ok(Next::End { .. }) => Ok(Some(Step::End)),
            Err(e) => Err(Corrupt::new_err(e.to_string())),
        })
    }

    fn to_py(py: Python<'_>, s: Step) -> PyResult<Option<OrderedResult>> {
        Ok(match s {
            Step::Result { seq, epoch, bytes } => {
                Some(OrderedResult { seq, epoch, data: Some(PyBytes::new(py, &bytes).unbind()), skipped: None })
            }
            Step::Skipped { seq, cause } => {
                Some(OrderedResult { seq, epoch: 0, data: None, skipped: Some(cause.name()) })
            }
            Step::End => None,
        })
    }
}

#[pymethods]
impl Reader {
    /// The next frame's outcome, waiting up to `timeout` seconds (None: until it has one).
    /// Returns an `OrderedResult`, or None when the timeout passed (the frame may still get its
    /// result: call again, or give up on it with `skip_head()`). Raises `StopIteration` at the
    /// end of the stream. The GIL is released while waiting.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<OrderedResult>> {
        match self.step(py, timeout)? {
            None => Ok(None),
            Some(Step::End) => Err(pyo3::exceptions::PyStopIteration::new_err("the stream ended")),
            Some(s) => Reader::to_py(py, s),
        }
    }
    /// Gives up on the frame being waited for (its result is then counted late if it comes):
    /// True when it is now skipped as "deadline", False when it could not be (a result is being
    /// written, or it already has its outcome).
    fn skip_head(&self, py: Python<'_>) -> PyResult<bool> {
        let g = self.ep.lock(py);
        let (r, _) = g.as_ref().ok_or_else(|| Released::new_err("this reader is closed"))?;
        Ok(r.skip_head(SkipCause::Deadline))
    }
    /// The seq of the next frame this reader delivers.
    #[getter]
    fn head(&self, py: Python<'_>) -> PyResult<u64> {
        let g = self.ep.lock(py);
        Ok(g.as_ref().ok_or_else(|| Released::new_err("this reader is closed"))?.0.head())
    }
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<OrderedResult>> {
        loop {
            match self.step(py, self.deadline)? {
                Some(Step::End) => return Ok(None), // None from __next__: StopIteration
                Some(s) => return Reader::to_py(py, s),
                // The deadline passed with no outcome: give up on the frame, yield its skip.
                None => {
                    let g = self.ep.lock(py);
                    if let Some((r, _)) = g.as_ref() {
                        r.skip_head(SkipCause::Deadline);
                    }
                }
            }
        }
    }
    /// Detaches. Idempotent.
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
