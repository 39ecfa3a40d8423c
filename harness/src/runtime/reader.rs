//! The runtime's ordered reader: it reads the frames segment's results in frame order
//! (`docs/LAYOUT.md` §6b) — a worker's result, or a skip with its cause, for every sequence
//! number the producer issued, until the stream's end — and hands each to every [`Sink`].
//!
//! It needs no word from the producer or the workers: a drop is marked in the frame's result
//! cell by the producer when it happens, a dead worker's frame by the reclaim of its consumer
//! entry, and only a frame whose worker is alive but silent waits out the deadline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use framebus_platform::core::{Next, SkipCause, Vocabulary};
use framebus_platform::{now_ns, wait, SharedSegment};

use crate::Res;

/// Where the ordered results go (the JSON Lines file, MQTT, the viewers' segment, the
/// simulation's measurements). Called from the reader's thread, in frame order.
pub trait Sink: Send {
    /// Frame `seq` (of producer epoch `epoch`) has the result `bytes`; `now_ns` is when the
    /// reader got it (the platform's monotonic clock).
    ///
    /// # Errors
    /// The sink failed for good: the pipeline stops (a sink that can recover, such as a
    /// broker connection, counts its losses instead).
    fn result(&mut self, seq: u64, epoch: u64, bytes: &[u8], now_ns: u64) -> Res<()>;
    /// Frame `seq` has no result, because of `cause`.
    ///
    /// # Errors
    /// As [`Sink::result`].
    fn skipped(&mut self, seq: u64, cause: SkipCause, now_ns: u64) -> Res<()>;
    /// The stream ended at `seq` (the first sequence number never issued).
    ///
    /// # Errors
    /// As [`Sink::result`].
    fn end(&mut self, _seq: u64) -> Res<()> {
        Ok(())
    }
}

/// What the reader counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// sequence numbers issued: where the stream ended
    pub frames_in: u64,
    /// results delivered in order
    pub frames_out: u64,
    /// frames without a result, by cause (the vocabulary's names: `dropped-oldest`, …)
    pub skipped: BTreeMap<String, u64>,
}

impl Counts {
    /// Every frame issued came out, as a result or a counted skip.
    pub fn accounted(&self) -> bool {
        self.frames_in == self.frames_out + self.skipped.values().sum::<u64>()
    }
}

/// Reads `seg`'s results in order into `sinks` until the stream ends, giving up on a frame
/// the producer issued that has no outcome after `deadline` (its worker alive but stuck:
/// skipped as `deadline`, a result still coming counts as late). Stops early when `stop` is
/// raised.
///
/// # Errors
/// Another reader took over, the results area holds impossible values, a sink failed, or
/// `stop`.
pub fn read_in_order(
    seg: &SharedSegment,
    deadline: Duration,
    sinks: &mut [&mut dyn Sink],
    stop: &AtomicBool,
) -> Res<Counts> {
    let mut reader = seg.attach_reader().map_err(|e| format!("the ordered reader cannot attach: {e}"))?;
    let mut buf = vec![0u8; seg.segment().layout().spec.result_max as usize];
    let mut counts = Counts::default();
    // The head frame the producer issued and nobody has decided yet, and since when.
    let mut waiting: Option<(u64, Instant)> = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err("the pipeline was stopped".into());
        }
        let next = wait::next_result(&mut reader, &mut buf, Duration::from_millis(50))
            .map_err(|e| format!("reading the results in order: {e}"))?;
        let now = now_ns();
        match next {
            Next::Result { seq, epoch, len } => {
                counts.frames_out += 1;
                for s in sinks.iter_mut() {
                    s.result(seq, epoch, &buf[..len], now)?;
                }
            }
            Next::Skipped { seq, cause } => {
                *counts.skipped.entry(cause.name().to_string()).or_default() += 1;
                for s in sinks.iter_mut() {
                    s.skipped(seq, cause, now)?;
                }
            }
            Next::Pending { seq, offered: true } => {
                let since = match waiting {
                    Some((s, t)) if s == seq => t,
                    _ => waiting.insert((seq, Instant::now())).1,
                };
                if since.elapsed() > deadline {
                    reader.skip_head(SkipCause::Deadline);
                }
            }
            Next::Pending { offered: false, .. } => {}
            Next::End { seq } => {
                counts.frames_in = seq;
                for s in sinks.iter_mut() {
                    s.end(seq)?;
                }
                return Ok(counts);
            }
        }
    }
}
