//! The state an endpoint shares with the frames or slots it handed out: the lock-stepping that
//! lets several Python threads use one endpoint, and `close()` from any of them.

use super::*;

/// An endpoint's state shared by its Python object and the frames or slots it handed out.
pub(crate) struct Endpoint<T> {
    /// `None` once closed.
    pub(crate) inner: Mutex<Option<T>>,
    /// Threads blocked on `inner`: a waiting `claim`/`begin` steps aside for them between
    /// slices, so that they are not starved by its re-locking.
    pub(crate) waiting: AtomicUsize,
    /// Set by `close()` before it takes the lock: a waiting call gives up at its next slice,
    /// and views of frames and slots stop being handed out.
    pub(crate) closed: AtomicBool,
}

impl<T: Send> Endpoint<T> {
    pub(crate) fn new(inner: T) -> Self {
        Endpoint { inner: Mutex::new(Some(inner)), waiting: AtomicUsize::new(0), closed: AtomicBool::new(false) }
    }

    /// Takes the lock without ever blocking while attached to the interpreter: the thread
    /// holding it may be waiting (detached) for a frame and need the GIL back to finish.
    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Option<T>> {
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
    pub(crate) fn step_aside(&self, py: Python<'_>) {
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
    pub(crate) fn wait_slices<R: Send>(
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

    pub(crate) fn close(&self, py: Python<'_>) {
        self.closed.store(true, Ordering::SeqCst);
        let inner = self.lock(py).take();
        drop(inner);
    }
}
