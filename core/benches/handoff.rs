//! In-process handoff between two threads: framebus's SPSC ring, MPMC queue and work queue
//! next to crossbeam's `ArrayQueue` and `rtrb`, measured in the same run.
//!
//! Two shapes per transport: `throughput` (one thread streams `iters` messages to the other)
//! and `round_trip` (a message bounces between two threads; half of it is the one-way latency).
//! The whole-system, cross-process comparison is `cargo xtask bench` in step 5.
use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use framebus_core::mpmc::Mpmc;
use framebus_core::segment::{ClaimError, FrameMeta};
use framebus_core::spsc::SpscLayout;
use framebus_core::*;

const CAP: u32 = 64;

/// A transport: a way to build a sender and a receiver of u64 messages shared by two threads.
trait Pipe: Send + Sync + 'static {
    fn send(&self, v: u64) -> bool;
    fn recv(&self) -> Option<u64>;
}

struct Crossbeam(ArrayQueue<u64>);
impl Pipe for Crossbeam {
    fn send(&self, v: u64) -> bool {
        self.0.push(v).is_ok()
    }
    fn recv(&self) -> Option<u64> {
        self.0.pop()
    }
}

struct FbMpmc(HeapRegion);
impl FbMpmc {
    fn new() -> Self {
        let heap = HeapRegion::zeroed(Mpmc::size(CAP) as usize);
        Mpmc::at(heap.region(), 0, CAP).unwrap().init();
        FbMpmc(heap)
    }
    fn q(&self) -> Mpmc<'_> {
        Mpmc::at(self.0.region(), 0, CAP).unwrap()
    }
}
impl Pipe for FbMpmc {
    fn send(&self, v: u64) -> bool {
        self.q().push(v).is_ok()
    }
    fn recv(&self) -> Option<u64> {
        self.q().pop().ok()
    }
}

/// Streams `n` messages from a spawned sender to this thread; returns the elapsed time.
fn stream<P: Pipe>(pipe: Arc<P>, n: u64) -> Duration {
    let tx = pipe.clone();
    let start = Instant::now();
    let h = thread::spawn(move || {
        for i in 0..n {
            while !tx.send(i) {
                std::hint::spin_loop();
            }
        }
    });
    let mut got = 0;
    while got < n {
        if let Some(v) = pipe.recv() {
            black_box(v);
            got += 1;
        }
    }
    let d = start.elapsed();
    h.join().unwrap();
    d
}

/// Bounces one message `n` times between two threads over two pipes.
fn ping_pong<P: Pipe>(a: Arc<P>, b: Arc<P>, n: u64) -> Duration {
    let (a2, b2) = (a.clone(), b.clone());
    let h = thread::spawn(move || {
        for _ in 0..n {
            let v = loop {
                if let Some(v) = a2.recv() {
                    break v;
                }
            };
            while !b2.send(v) {}
        }
    });
    let start = Instant::now();
    for i in 0..n {
        while !a.send(i) {}
        while b.recv().is_none() {}
    }
    let d = start.elapsed();
    h.join().unwrap();
    d
}

fn spsc_stream(n: u64) -> Duration {
    let heap = Arc::new(HeapRegion::zeroed(8192));
    let ring = SpscLayout { base: 0, capacity: CAP, record_words: 1 };
    ring.init(&heap.region()).unwrap();
    let h2 = heap.clone();
    let start = Instant::now();
    let t = thread::spawn(move || {
        let mut tx = ring.producer(h2.region()).unwrap();
        for i in 0..n {
            while tx.push(&[i]).is_err() {
                std::hint::spin_loop();
            }
        }
    });
    let mut rx = ring.consumer(heap.region()).unwrap();
    let mut out = [0];
    for _ in 0..n {
        while rx.pop(&mut out).is_err() {
            std::hint::spin_loop();
        }
        black_box(out);
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

fn rtrb_stream(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP as usize);
    let start = Instant::now();
    let t = thread::spawn(move || {
        for i in 0..n {
            while tx.push(i).is_err() {
                std::hint::spin_loop();
            }
        }
    });
    for _ in 0..n {
        loop {
            if let Ok(v) = rx.pop() {
                black_box(v);
                break;
            }
        }
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

/// framebus work queue: 64-byte frames, 8 slots, Block; the worker reads and releases each.
fn work_queue_stream(n: u64) -> Duration {
    let spec = SegmentSpec::new(FrameGeometry::new(64, 1, PixelFormat::Gray8), 8);
    let heap = Arc::new(HeapRegion::for_layout(&Layout::compute(&spec).unwrap()));
    Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let h2 = heap.clone();
    let start = Instant::now();
    let t = thread::spawn(move || {
        let seg = Segment::open(h2.region()).unwrap();
        let mut p = seg.attach_producer(1).unwrap();
        let payload = [7u8; 64];
        let mut i = 0;
        while i < n {
            if let Ok(mut slot) = p.begin() {
                slot.write(0, &payload);
                slot.publish(FrameMeta { payload_len: 64, ..FrameMeta::default() });
                i += 1;
            }
        }
    });
    let seg = Segment::open(heap.region()).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < n {
        match w.claim() {
            Ok(f) => {
                w.read(&f, 0, &mut buf).unwrap();
                black_box(&buf);
                w.release(f).unwrap();
                got += 1;
            }
            Err(ClaimError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("{e}"),
        }
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

/// Round trips over two framebus SPSC rings.
fn spsc_ping_pong(n: u64) -> Duration {
    let heap = Arc::new(HeapRegion::zeroed(16384));
    let (a, b) = (
        SpscLayout { base: 0, capacity: CAP, record_words: 1 },
        SpscLayout { base: 4096, capacity: CAP, record_words: 1 },
    );
    a.init(&heap.region()).unwrap();
    b.init(&heap.region()).unwrap();
    let h2 = heap.clone();
    let t = thread::spawn(move || {
        let (mut rx, mut tx) = (a.consumer(h2.region()).unwrap(), b.producer(h2.region()).unwrap());
        let mut v = [0];
        for _ in 0..n {
            while rx.pop(&mut v).is_err() {}
            while tx.push(&v).is_err() {}
        }
    });
    let (mut tx, mut rx) = (a.producer(heap.region()).unwrap(), b.consumer(heap.region()).unwrap());
    let mut v = [0];
    let start = Instant::now();
    for i in 0..n {
        while tx.push(&[i]).is_err() {}
        while rx.pop(&mut v).is_err() {}
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

/// Round trips over two rtrb rings.
fn rtrb_ping_pong(n: u64) -> Duration {
    let (mut atx, mut arx) = rtrb::RingBuffer::<u64>::new(CAP as usize);
    let (mut btx, mut brx) = rtrb::RingBuffer::<u64>::new(CAP as usize);
    let t = thread::spawn(move || {
        for _ in 0..n {
            let v = loop {
                if let Ok(v) = arx.pop() {
                    break v;
                }
            };
            while btx.push(v).is_err() {}
        }
    });
    let start = Instant::now();
    for i in 0..n {
        while atx.push(i).is_err() {}
        while brx.pop().is_err() {}
    }
    let d = start.elapsed();
    t.join().unwrap();
    d
}

/// A 64-byte frame segment with a producer on one side and a worker on the other.
fn frame_segment() -> Arc<HeapRegion> {
    let spec = SegmentSpec::new(FrameGeometry::new(64, 1, PixelFormat::Gray8), 8);
    let heap = Arc::new(HeapRegion::for_layout(&Layout::compute(&spec).unwrap()));
    Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    heap
}

/// One frame through a work queue and back through a second one (publish, claim, read, release).
fn work_queue_ping_pong(n: u64) -> Duration {
    let (there, back) = (frame_segment(), frame_segment());
    let (t2, b2) = (there.clone(), back.clone());
    let echo = thread::spawn(move || {
        let (s_in, s_out) = (Segment::open(t2.region()).unwrap(), Segment::open(b2.region()).unwrap());
        let mut w = s_in.register(ConsumerKind::Worker, 3).unwrap();
        let mut p = s_out.attach_producer(4).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let f = loop {
                if let Ok(f) = w.claim() {
                    break f;
                }
            };
            w.read(&f, 0, &mut buf).unwrap();
            w.release(f).unwrap();
            let mut slot = loop {
                if let Ok(s) = p.begin() {
                    break s;
                }
            };
            slot.write(0, &buf);
            slot.publish(FrameMeta { payload_len: 64, ..FrameMeta::default() });
        }
    });
    let (s_out, s_in) = (Segment::open(there.region()).unwrap(), Segment::open(back.region()).unwrap());
    let mut p = s_out.attach_producer(1).unwrap();
    let mut w = s_in.register(ConsumerKind::Worker, 2).unwrap();
    let payload = [7u8; 64];
    let mut buf = [0u8; 64];
    let start = Instant::now();
    for _ in 0..n {
        let mut slot = loop {
            if let Ok(s) = p.begin() {
                break s;
            }
        };
        slot.write(0, &payload);
        slot.publish(FrameMeta { payload_len: 64, ..FrameMeta::default() });
        let f = loop {
            if let Ok(f) = w.claim() {
                break f;
            }
        };
        w.read(&f, 0, &mut buf).unwrap();
        w.release(f).unwrap();
    }
    let d = start.elapsed();
    echo.join().unwrap();
    d
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(1));
    g.bench_function("framebus_spsc", |b| b.iter_custom(spsc_stream));
    g.bench_function("rtrb", |b| b.iter_custom(rtrb_stream));
    g.bench_function("framebus_mpmc", |b| b.iter_custom(|n| stream(Arc::new(FbMpmc::new()), n)));
    g.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|n| stream(Arc::new(Crossbeam(ArrayQueue::new(CAP as usize))), n))
    });
    g.bench_function("framebus_work_queue_64B", |b| b.iter_custom(work_queue_stream));
    g.finish();

    let mut g = c.benchmark_group("round_trip");
    g.bench_function("framebus_spsc", |b| b.iter_custom(spsc_ping_pong));
    g.bench_function("rtrb", |b| b.iter_custom(rtrb_ping_pong));
    g.bench_function("framebus_work_queue_64B", |b| b.iter_custom(work_queue_ping_pong));
    g.bench_function("framebus_mpmc", |b| {
        b.iter_custom(|n| ping_pong(Arc::new(FbMpmc::new()), Arc::new(FbMpmc::new()), n))
    });
    g.bench_function("crossbeam_array_queue", |b| {
        b.iter_custom(|n| {
            ping_pong(
                Arc::new(Crossbeam(ArrayQueue::new(CAP as usize))),
                Arc::new(Crossbeam(ArrayQueue::new(CAP as usize))),
                n,
            )
        })
    });
    g.finish();
}

criterion_group! {
    name = handoff;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = benches
}
criterion_main!(handoff);
