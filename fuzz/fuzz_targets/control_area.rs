//! The consumer side of every delivery pattern on a control area whose words the fuzzer
//! writes (indices, stamps, generations, cursors, consumer entries, geometry-derived words):
//! every call returns — an error or a frame — and a frame it returns is in bounds. A panic,
//! an out-of-bounds access (ASan) or a hang (libFuzzer's timeout) is a finding.
#![no_main]

use arbitrary::Arbitrary;
use framebus_core::segment::Reclaim;
use framebus_core::*;
use framebus_fuzz::{publish, Config, Heap};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    /// A peer writes `value` into control word `index`.
    Scribble {
        index: u32,
        value: u64,
    },
    /// A peer writes a small value (more likely to look valid) into word `index`.
    Nudge {
        index: u32,
        value: u8,
    },
    Publish,
    Claim(u8),
    ReleaseAll,
    Register(u8),
    Reclaim {
        idx: u8,
        gen: u8,
        force: bool,
    },
    Stats,
}

#[derive(Arbitrary, Debug)]
struct Input {
    config: Config,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let heap = Heap::new(&input.config.spec());
    let spec = heap.layout().spec; // normalised: the payload size resolved
    let seg = heap.segment();
    let cap = spec.slot_payload_size;
    let mut producer = seg.attach_producer(1).ok();
    let mut readers: Vec<Consumer<'_>> = Vec::new();
    let mut held: Vec<(usize, Frame)> = Vec::new();
    let mut token = 10u64;
    for op in input.ops.into_iter().take(300) {
        match op {
            Op::Scribble { index, value } => heap.scribble(index, value),
            Op::Nudge { index, value } => heap.scribble(index, u64::from(value)),
            Op::Publish => {
                if let Some(p) = producer.as_mut() {
                    let _ = publish(p, cap as usize);
                }
            }
            Op::Claim(i) => {
                if readers.is_empty() {
                    continue;
                }
                let k = usize::from(i) % readers.len();
                if let Ok(f) = readers[k].claim() {
                    assert!(f.slot < spec.slot_count, "slot {} out of range", f.slot);
                    assert!(f.meta.payload_len <= cap, "payload_len {} over the slot", f.meta.payload_len);
                    // Reading the whole declared length stays in bounds (or is refused).
                    let mut buf = vec![0u8; f.meta.payload_len as usize];
                    let _ = readers[k].read(&f, 0, &mut buf);
                    if let Ok(p) = readers[k].payload_ptr(&f) {
                        let base = heap.segment().region().base().as_ptr() as usize;
                        let off = p as usize - base;
                        assert!(off as u64 + cap <= heap.layout().total_size, "payload pointer outside the mapping");
                    }
                    held.push((k, f));
                }
            }
            Op::ReleaseAll => {
                for (k, f) in held.drain(..) {
                    let _ = readers[k].release(f);
                }
            }
            Op::Register(kind) => {
                let kind = match kind % 3 {
                    0 => ConsumerKind::Worker,
                    1 => ConsumerKind::Subscriber,
                    _ => ConsumerKind::Latest,
                };
                token += 1;
                if let Ok(c) = seg.register(kind, token) {
                    readers.push(c);
                }
            }
            Op::Reclaim { idx, gen, force } => {
                // Any generation, any token judged dead: hostile tables must give errors only.
                let how = if force { Reclaim::Dead { owner: u64::from(gen) } } else { Reclaim::Idle };
                let _ = seg.reclaim(u32::from(idx), u64::from(gen), how);
                let _ = seg.reap(|t| t % 2 == 0, |_, _| {});
            }
            Op::Stats => {
                let _ = (seg.stats(), seg.census());
                if let Some(p) = producer.as_ref() {
                    let _ = p.has_space();
                }
                for r in &readers {
                    let _ = r.might_have_frame();
                }
                for i in 0..spec.max_consumers {
                    let _ = (seg.entry_state(i), seg.entry_counters(i), seg.entry_owner(i));
                }
            }
        }
    }
    // Opening the scribbled segment again re-validates the header (untouched) and succeeds.
    assert!(Segment::open(heap.segment().region()).is_ok());
    if producer.is_none() {
        let _ = seg.take_over_producer(2, 1);
    }
});
