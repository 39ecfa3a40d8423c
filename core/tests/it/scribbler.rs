//! A hostile peer scribbling random values into the control area while a producer and two
//! workers run: every call returns (a frame or an error), every frame handed out is in bounds,
//! and nothing panics. A watchdog turns a hang into a failure.
//!
//! Under Miri the scribbler spares the slot state words: forging those lets two honest threads
//! touch one payload at once, which a peer in another process can do to the frames it reaches
//! (docs/SECURITY.md: "garble") but which inside one process is a data race Miri rightly
//! reports. Everything else — ring cells, cursors, counters, consumer entries, descriptors,
//! wake words — is fair game there too.
use std::sync::atomic::{AtomicBool, AtomicU64 as StdAtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{segment, spec};
use framebus_core::layout::{ctl, LINE};
use framebus_core::segment::{ClaimError, FrameMeta};
use framebus_core::*;

const LEN: usize = 32;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn a_scribbler_in_the_control_area_gets_errors_or_valid_frames_never_a_crash_or_a_hang() {
    let rounds: u64 = if cfg!(miri) { 60 } else { 50_000 };
    let slots = 4;
    let (_mem, seg) = segment(spec(slots, LEN as u32).with_policy(OverflowPolicy::DropOldest).with_max_consumers(3));
    let layout = *seg.layout();
    let done = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(StdAtomicU64::new(0));
    let (frames, errors) = (StdAtomicU64::new(0), StdAtomicU64::new(0));

    // The watchdog: a call that never returns is a bug (every loop is bounded by RETRY_LIMIT).
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let limit = if cfg!(miri) { 3600 } else { 120 };
            for _ in 0..limit * 10 {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("scribbler test: a call did not return within {limit} s");
            std::process::abort();
        })
    };

    // Set by the scribbler when it is done; everyone else runs until then.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // The producer: re-attaches whenever the scribbler took ownership away from it.
        s.spawn(|| {
            let mut token = 1;
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut p) =
                    seg.attach_producer(token).or_else(|_| seg.take_over_producer(token, seg.producer_token()))
                else {
                    token += 1;
                    continue;
                };
                for _ in 0..8 {
                    // Not `util::publish`: that one checks the sequence numbers, which the
                    // scribbler is free to rewrite.
                    match p.begin() {
                        Ok(mut slot) => {
                            slot.write(0, &[7; LEN]);
                            let _ = slot.publish(FrameMeta { payload_len: LEN as u64, ..FrameMeta::default() });
                        }
                        Err(BeginError::Full | BeginError::DroppedNewest { .. }) => {}
                        Err(_) => break,
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
                token += 1;
            }
        });
        for w in 0..2u64 {
            let (ops, frames, errors, stop) = (&ops, &frames, &errors, &stop);
            // Registered before the scribbler starts: once it runs, it may fill the consumer
            // table with garbage (a documented denial of service) and re-registering can fail.
            let first = seg.register(ConsumerKind::Worker, 90 + w).unwrap();
            s.spawn(move || {
                let mut buf = [0u8; LEN];
                let mut c = Some(first);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let consumer = match c.as_mut() {
                        Some(c) => c,
                        None => match seg.register(ConsumerKind::Worker, 100 + w * rounds + i) {
                            Ok(new) => c.insert(new),
                            Err(_) => continue,
                        },
                    };
                    match consumer.claim() {
                        Ok(f) => {
                            assert!(f.slot < slots, "slot {} out of range", f.slot);
                            assert!(f.meta.payload_len <= LEN as u64, "length {} over the slot", f.meta.payload_len);
                            let _ = consumer.read(&f, 0, &mut buf);
                            let _ = consumer.release(f);
                            frames.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ClaimError::Evicted) => c = None,
                        Err(ClaimError::Empty) => {}
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // The scribbler: it starts once the pipeline has shown it works (a hostile peer may
        // well stop all progress afterwards: that is the denial of service SECURITY.md admits).
        s.spawn(|| {
            let warm = if cfg!(miri) { 5 } else { 1000 };
            let since = std::time::Instant::now();
            while frames.load(Ordering::Relaxed) < warm {
                assert!(since.elapsed() < Duration::from_secs(600), "the pipeline never started");
                std::thread::yield_now();
            }
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let words = layout.control_size / 8;
            let base = seg.region().base().as_ptr().wrapping_add(layout.control_offset as usize);
            for _ in 0..rounds * 2 {
                let w = rng.next() % words;
                let rel = w * 8;
                let in_slot_lines = rel >= layout.ctl_slots && rel < layout.ctl_slots + u64::from(slots) * LINE;
                if cfg!(miri) && in_slot_lines && (rel - layout.ctl_slots) % LINE == ctl::slot::STATE {
                    continue;
                }
                let v = match rng.next() % 4 {
                    0 => rng.next(),
                    1 => rng.next() % 16,
                    2 => u64::MAX - rng.next() % 4,
                    _ => 0,
                };
                // SAFETY: an 8-aligned word inside the control area of the live region; the
                // protocol accesses control words only atomically, and so does this store.
                unsafe {
                    (*base.wrapping_add(rel as usize).cast::<sync::AtomicU64>()).store(v, sync::Ordering::Relaxed)
                };
                if cfg!(miri) {
                    std::thread::yield_now();
                } else {
                    // Let the others run a little between writes, without asking the scheduler.
                    for _ in 0..rng.next() % 512 {
                        std::hint::spin_loop();
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    });
    done.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();
    let (frames, errors) = (frames.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
    eprintln!("scribbler: {} operations, {frames} frames claimed, {errors} errors", ops.load(Ordering::Relaxed));
    assert!(frames >= if cfg!(miri) { 5 } else { 1000 }, "the pipeline ran before the scribbler started");
    // The header was never touched: the segment still opens.
    assert!(Segment::open(seg.region()).is_ok());
}
