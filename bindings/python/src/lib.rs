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
//!
//! The files: `lib.rs` (wait slices, vocabulary names, numpy views, the module), `errors.rs`,
//! `segment.rs`, `endpoint.rs` (the lock-stepping shared by both endpoints), `consumer.rs`
//! (`Consumer`, `Frame`), `producer.rs` (`Producer`, `Slot`). A new call goes into its class's
//! file and into `python/framebus/_framebus.pyi`.
#![deny(unsafe_op_in_unsafe_fn)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use framebus_core::segment::{AttachError, ClaimError, EntryStatus, FrameMeta, RegisterError};
use framebus_core::vocab::Vocabulary;
use framebus_core::{
    BeginError, ConsumerKind, FrameGeometry, Next, OverflowPolicy, Pattern, PixelFormat, PostError, Posted,
    SegmentSpec, SkipCause,
};
use framebus_platform::owned::{HeldFrame, OwnedConsumer, OwnedProducer, OwnedReader, ProduceError};
use framebus_platform::wait::WaitError;
use framebus_platform::{CreateOptions, Error as PlatformError, SharedSegment};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple};

mod consumer;
mod endpoint;
mod errors;
mod producer;
mod reader;
mod segment;

use consumer::*;
use endpoint::*;
use errors::*;
use producer::*;
use reader::*;
use segment::*;

/// How long a wait sleeps between checks for Ctrl-C.
pub(crate) const SLICE: Duration = Duration::from_millis(10);

pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Instant::now() + Duration::from_secs_f64(t.min(1e9)))),
        Some(t) => {
            Err(PyValueError::new_err(format!("timeout must be a non-negative number of seconds or None, not {t}")))
        }
    }
}

/// The next wait slice before `deadline` (None: forever), or None when it has passed.
pub(crate) fn slice(deadline: Option<Instant>) -> Option<Duration> {
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
pub(crate) fn parse<T: Vocabulary>(what: &str, s: &str) -> PyResult<T> {
    T::from_name(s).map_err(|e| PyValueError::new_err(format!("{what}={s:?}: {e}")))
}

/// The canonical names of a vocabulary, in code order (the module's `PIXEL_FORMATS`, …).
pub(crate) fn names<T: Vocabulary>() -> Vec<&'static str> {
    T::ALL.iter().map(|v| v.name()).collect()
}

/// The numpy shape of `len` bytes holding a frame of `geometry`: (H, W, 3) for packed colour,
/// (H, W) for gray and raw, (H·3/2, W) for 4:2:0 (OpenCV's layout); a flat (len,) when the
/// bytes are not exactly one frame of that geometry.
pub(crate) fn shape(g: FrameGeometry, len: u64) -> Vec<usize> {
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
pub(crate) fn array_interface<'py>(
    py: Python<'py>,
    addr: usize,
    shape: &[usize],
    readonly: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("shape", PyTuple::new(py, shape)?)?;
    d.set_item("typestr", "|u1")?;
    d.set_item("data", (addr, readonly))?;
    d.set_item("strides", py.None())?;
    d.set_item("version", 3)?;
    Ok(d)
}

pub(crate) fn asarray<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static ASARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    ASARRAY.import(obj.py(), "numpy", "asarray")?.call1((obj,))
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
    m.add("SKIP_CAUSES", names::<SkipCause>())?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(create, m)?)?;
    m.add_function(wrap_pyfunction!(remove, m)?)?;
    m.add_class::<Segment>()?;
    m.add_class::<Producer>()?;
    m.add_class::<Slot>()?;
    m.add_class::<Consumer>()?;
    m.add_class::<Frame>()?;
    m.add_class::<Reader>()?;
    m.add_class::<OrderedResult>()?;
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
    m.add("EndOfStream", py.get_type::<EndOfStream>())?;
    Ok(())
}
