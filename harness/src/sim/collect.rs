//! The simulation's sinks for the runtime's ordered reader ([`crate::runtime::reader`]): the
//! [`Collector`] checks order and integrity of every frame and measures latency from the
//! workers' outcomes; [`Viewers`] republishes the ordered outcomes for viewers (`NAME.out`).

use std::collections::BTreeMap;
use std::time::Duration;

use framebus_platform::core::SkipCause;
use framebus_platform::now_ns;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::channel::{Channel, RecordTx, Tag};
use super::wire::{Outcome, OUT_SKIPPED, RECORD_BYTES};
use super::Res;
use crate::runtime::reader::Sink;
use crate::runtime::Summary;

/// Percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    /// median
    pub p50: f64,
    /// 90th percentile
    pub p90: f64,
    /// 99th percentile
    pub p99: f64,
    /// largest
    pub max: f64,
}

/// Percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct TransportUs {
    /// median
    pub p50: f64,
    /// 99th percentile
    pub p99: f64,
}

/// One point of the timeline (for the plot): when a frame came out in order, and its latency.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Point {
    /// seconds since the first frame was captured
    pub t_s: f64,
    /// capture → ordered result, ms (None for a skipped frame)
    pub latency_ms: Option<f64>,
    /// frames dropped or lost so far
    pub dropped: u64,
}

/// What the collector reports at the end.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CollectorReport {
    /// sequence numbers issued by the producer(s): where the stream ended
    pub frames_in: u64,
    /// frames published (the segment's count)
    pub published: u64,
    /// results delivered in order
    pub frames_out: u64,
    /// frames that produced no result, by cause: `drop_oldest`, `drop_newest` (the producer's
    /// policy), `worker_died`, `no_result`, `lost_deadline`, `window_overflow` (see
    /// [`cause_key`])
    pub dropped: BTreeMap<String, u64>,
    /// results that came after their frame was skipped, and posts given up on a full window
    /// (the segment's counts; never delivered)
    pub late_results: u64,
    /// delivered sequence numbers not strictly after the previous one (must be 0)
    pub order_violations: u64,
    /// results whose in-place checksum differs from the producer's (must be 0)
    pub integrity_failures: u64,
    /// results that name another frame than the one they were posted for, or an unknown
    /// worker, or do not decode (must be 0)
    pub unexpected_results: u64,
    /// a worker's results not in increasing frame order (work-queue claims follow publish
    /// order; must be 0)
    pub worker_order_violations: u64,
    /// capture → ordered result
    pub latency_ms: LatencyMs,
    /// publish → claimed, when a worker was already waiting (the transport's own cost)
    pub transport_us: TransportUs,
    /// frames that had a worker waiting (the samples behind `transport_us`)
    pub transport_samples: u64,
    /// publish → a worker started on it (time queued in the segment)
    pub queue_ms: LatencyMs,
    /// the model call alone, per frame
    pub model_ms: LatencyMs,
    /// a worker's whole time on a frame (claim → result posted: the call and its overhead)
    pub service_ms: LatencyMs,
    /// seconds from the first frame captured to the last frame out
    pub span_s: f64,
    /// results per worker
    pub per_worker: Vec<u64>,
    /// the timeline (at most a few thousand points)
    pub timeline: Vec<Point>,
}

/// The report key of a skip cause (the names the reports have always used).
pub fn cause_key(c: SkipCause) -> &'static str {
    match c {
        SkipCause::DroppedOldest => "drop_oldest",
        SkipCause::DroppedNewest => "drop_newest",
        SkipCause::WorkerDied => "worker_died",
        SkipCause::Deadline => "lost_deadline",
        SkipCause::NoResult => "no_result",
        SkipCause::Overflow => "window_overflow",
    }
}

/// Checks and measures every frame the ordered reader delivers.
pub struct Collector {
    r: CollectorReport,
    last_out: Option<u64>,
    last_by_worker: Vec<Option<u64>>,
    first_capture: Option<u64>,
    dropped_total: u64,
    lat: Histogram<u64>,
    transport: Histogram<u64>,
    queue: Histogram<u64>,
    model: Histogram<u64>,
    service: Histogram<u64>,
}

impl Collector {
    /// A collector for workers `0..workers`.
    pub fn new(workers: u32) -> Self {
        let n = workers as usize;
        Collector {
            r: CollectorReport { per_worker: vec![0; n], ..CollectorReport::default() },
            last_out: None,
            last_by_worker: vec![None; n],
            first_capture: None,
            dropped_total: 0,
            lat: histogram(),
            transport: histogram(),
            queue: histogram(),
            model: histogram(),
            service: histogram(),
        }
    }

    fn in_order(&mut self, seq: u64, now: u64, latency_ms: Option<f64>) {
        if self.last_out.is_some_and(|l| seq <= l) {
            self.r.order_violations += 1;
        }
        self.last_out = Some(seq);
        let t_s = self.first_capture.map_or(0.0, |f| now.saturating_sub(f) as f64 / 1e9);
        self.r.timeline.push(Point { t_s, latency_ms, dropped: self.dropped_total });
    }

    /// A result delivered for frame `seq`; `None` when it does not hold what it must.
    fn on_result(&mut self, seq: u64, bytes: &[u8], now: u64) -> Option<Outcome> {
        let o = Outcome::decode(bytes).filter(|o| o.seq == seq && (o.worker as usize) < self.r.per_worker.len());
        let Some(o) = o else {
            self.r.unexpected_results += 1;
            self.in_order(seq, now, None);
            return None;
        };
        let k = o.worker as usize;
        self.r.per_worker[k] += 1;
        // A redelivered frame (its first worker died) is claimed out of publish order.
        if !o.redelivered {
            if self.last_by_worker[k].is_some_and(|l| seq <= l) {
                self.r.worker_order_violations += 1;
            }
            self.last_by_worker[k] = Some(seq);
        }
        if o.seen_checksum != o.sent_checksum {
            self.r.integrity_failures += 1;
        }
        let publish = o.publish_ns;
        if publish > 0 {
            if o.claim_start_ns <= publish {
                // The worker was already waiting: publish → claimed is the transport's own cost.
                self.transport.saturating_record(o.claim_ns.saturating_sub(publish) / 1_000);
                self.r.transport_samples += 1;
            }
            self.queue.saturating_record(o.claim_start_ns.max(publish).saturating_sub(publish) / 1_000);
        }
        self.model.saturating_record(o.call_ns / 1_000);
        self.service.saturating_record(o.done_ns.saturating_sub(o.claim_ns) / 1_000);
        self.first_capture = Some(self.first_capture.map_or(o.capture_ns, |f| f.min(o.capture_ns)));
        self.r.frames_out += 1;
        let l = now.saturating_sub(o.capture_ns);
        self.lat.saturating_record(l / 1_000);
        self.in_order(seq, now, Some(l as f64 / 1e6));
        Some(o)
    }

    fn on_skipped(&mut self, seq: u64, cause: SkipCause, now: u64) {
        self.dropped_total += 1;
        *self.r.dropped.entry(cause_key(cause).to_string()).or_default() += 1;
        self.in_order(seq, now, None);
    }
}

fn percentiles_ms(h: &Histogram<u64>) -> LatencyMs {
    let q = |v: u64| v as f64 / 1e3; // recorded in µs
    if h.is_empty() {
        return LatencyMs::default();
    }
    LatencyMs {
        p50: q(h.value_at_quantile(0.5)),
        p90: q(h.value_at_quantile(0.9)),
        p99: q(h.value_at_quantile(0.99)),
        max: q(h.max()),
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl Sink for Collector {
    fn result(&mut self, seq: u64, _epoch: u64, bytes: &[u8], now_ns: u64) -> Res<()> {
        self.on_result(seq, bytes, now_ns);
        Ok(())
    }
    fn skipped(&mut self, seq: u64, cause: SkipCause, now_ns: u64) -> Res<()> {
        self.on_skipped(seq, cause, now_ns);
        Ok(())
    }
}

impl Collector {
    /// The report, with the run's counts from the reader and the segment.
    pub fn finish(self, s: &Summary) -> CollectorReport {
        let mut r = self.r;
        r.frames_in = s.counts.frames_in;
        r.published = s.stats.write_pos;
        r.late_results = s.late_results;
        r.latency_ms = percentiles_ms(&self.lat);
        r.queue_ms = percentiles_ms(&self.queue);
        r.model_ms = percentiles_ms(&self.model);
        r.service_ms = percentiles_ms(&self.service);
        let t = percentiles_ms(&self.transport);
        r.transport_us = TransportUs { p50: t.p50 * 1e3, p99: t.p99 * 1e3 };
        r.span_s = self.first_capture.map_or(0.0, |f| now_ns().saturating_sub(f) as f64 / 1e9);
        if r.timeline.len() > 4000 {
            let step = r.timeline.len().div_ceil(4000);
            r.timeline = r.timeline.iter().step_by(step).copied().collect();
        }
        r
    }
}

/// Republishes the ordered outcomes for viewers into a broadcast channel (drop-oldest: a slow
/// viewer loses records, never stalls the pipeline): one [`RECORD_BYTES`] record per frame, the
/// [`Outcome`]'s words, `OUT_SKIPPED` in the flags for a frame without one.
pub struct Viewers<'a> {
    tx: RecordTx<'a>,
}

impl<'a> Viewers<'a> {
    /// Attaches as the sender of `ch`.
    ///
    /// # Errors
    /// Another live sender is attached.
    pub fn new(ch: &'a Channel) -> Res<Self> {
        Ok(Viewers { tx: ch.sender()? })
    }

    fn send(&mut self, seq: u64, o: Option<Outcome>) -> Res<()> {
        let mut b = [0u8; RECORD_BYTES as usize];
        let (o, capture_ns, flags) = match o {
            Some(o) => (o, o.capture_ns, 0),
            None => (Outcome { seq, ..Outcome::default() }, 0, OUT_SKIPPED),
        };
        o.encode(&mut b);
        self.tx.send(&b, Tag { capture_ns, flags }, Duration::ZERO).map_err(|e| format!("ordered output: {e}"))?;
        Ok(())
    }
}

impl Sink for Viewers<'_> {
    fn result(&mut self, seq: u64, _epoch: u64, bytes: &[u8], _now_ns: u64) -> Res<()> {
        let o = Outcome::decode(bytes).filter(|o| o.seq == seq);
        self.send(seq, o)
    }
    fn skipped(&mut self, seq: u64, _cause: SkipCause, _now_ns: u64) -> Res<()> {
        self.send(seq, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_skip_cause_has_its_own_report_key() {
        use framebus_platform::core::Vocabulary;
        let keys: std::collections::BTreeSet<&str> = SkipCause::ALL.iter().map(|c| cause_key(*c)).collect();
        assert_eq!(keys.len(), SkipCause::ALL.len());
    }
}
