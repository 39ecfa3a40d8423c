//! Results in frame order (layout v3): posting, the ordered reader, its skips, the end of the
//! stream, and a poster that dies mid-copy.
use framebus_core::segment::{BeginError, FrameMeta, Next, PostError, Posted, Reclaim};
use framebus_core::*;

fn setup(slots: u32, cells: u32) -> (HeapRegion, SegmentSpec) {
    let spec = SegmentSpec::new(FrameGeometry::new(16, 1, PixelFormat::Gray8), slots).with_results(cells, 32);
    (HeapRegion::for_layout(&Layout::compute(&spec).unwrap()), spec)
}

fn publish(p: &mut Producer<'_>) -> u64 {
    let slot = p.begin().unwrap();
    slot.publish(FrameMeta { payload_len: 16, ..FrameMeta::default() }).seq
}

fn next(r: &mut ResultReader<'_>) -> (Next, Vec<u8>) {
    let mut out = [0u8; 32];
    let n = r.next(&mut out).unwrap();
    let bytes = match n {
        Next::Result { len, .. } => out[..len].to_vec(),
        _ => Vec::new(),
    };
    (n, bytes)
}

#[test]
fn results_come_out_in_frame_order_whatever_order_they_are_posted_in() {
    let (heap, spec) = setup(4, 8);
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let (mut a, mut b) =
        (seg.register(ConsumerKind::Worker, 2).unwrap(), seg.register(ConsumerKind::Worker, 2).unwrap());
    let mut r = seg.attach_reader(3, 0).unwrap();
    assert_eq!(next(&mut r).0, Next::Pending { seq: 0, offered: false });
    for _ in 0..2 {
        publish(&mut p);
    }
    let (fa, fb) = (a.claim().unwrap(), b.claim().unwrap());
    assert_eq!(next(&mut r).0, Next::Pending { seq: 0, offered: true }, "frame 0 is held: its result may come");
    assert_eq!(b.post(&fb, b"second").unwrap(), Posted::Ready);
    assert_eq!(next(&mut r).0, Next::Pending { seq: 0, offered: true }, "1 waits for 0");
    assert_eq!(a.post(&fa, b"first").unwrap(), Posted::Ready);
    assert_eq!(a.post(&fa, b"again"), Err(PostError::Duplicate));
    a.release(fa).unwrap();
    b.release(fb).unwrap();
    assert_eq!(next(&mut r), (Next::Result { seq: 0, epoch: 1, len: 5 }, b"first".to_vec()));
    assert_eq!(next(&mut r), (Next::Result { seq: 1, epoch: 1, len: 6 }, b"second".to_vec()));
    assert_eq!(r.head(), 2);
}

#[test]
fn posts_are_checked_and_the_reader_skips_what_will_never_come() {
    let (heap, spec) = setup(2, 2);
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    let mut r = seg.attach_reader(3, 0).unwrap();
    assert!(matches!(seg.attach_reader(4, 0), Err(segment::AttachError::ReaderBusy { owner: 3 })));
    publish(&mut p);
    let f = w.claim().unwrap();
    assert_eq!(w.post(&f, &[0; 33]), Err(PostError::TooLarge { len: 33, max: 32 }));
    // Released without a post: marked at the release, skipped at once, never waited for.
    w.release(f).unwrap();
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 0, cause: SkipCause::NoResult });
    // The deadline: the reader gives up on frame 1; the worker's post is then late, counted.
    publish(&mut p);
    let f = w.claim().unwrap();
    assert!(r.skip_head(SkipCause::Deadline));
    assert_eq!(w.post(&f, b"late").unwrap(), Posted::Late);
    w.release(f).unwrap();
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 1, cause: SkipCause::Deadline });
    assert_eq!(seg.result_counts(), (1, 0));
    // The window: with 2 cells, frame 4's cell is frame 2's until the reader moves past 2.
    for _ in 0..2 {
        publish(&mut p);
    }
    let f2 = w.claim().unwrap();
    let f3 = w.claim().unwrap();
    w.post(&f2, b"2").unwrap();
    w.post(&f3, b"3").unwrap();
    w.release(f2).unwrap();
    w.release(f3).unwrap();
    publish(&mut p);
    let f4 = w.claim().unwrap();
    assert_eq!(w.post(&f4, b"4"), Err(PostError::WindowFull), "the reader has not delivered 2 yet");
    assert_eq!(next(&mut r).0, Next::Result { seq: 2, epoch: 1, len: 1 });
    assert_eq!(w.post(&f4, b"4").unwrap(), Posted::Ready);
    w.release(f4).unwrap();
    let mut small = [0u8; 0];
    assert_eq!(r.next(&mut small), Err(segment::ReadError::BufferTooSmall { need: 1 }));
    assert_eq!(next(&mut r).0, Next::Result { seq: 3, epoch: 1, len: 1 });
    assert_eq!(next(&mut r).0, Next::Result { seq: 4, epoch: 1, len: 1 });
    // The end: the producer finishes at seq 5.
    p.finish();
    assert_eq!(next(&mut r).0, Next::End { seq: 5 });
    assert_eq!(seg.end_seq(), Some(5));
}

#[test]
fn a_poster_that_dies_mid_copy_is_skipped_by_its_reclaim_not_waited_for() {
    let (heap, spec) = setup(2, 4);
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 7).unwrap();
    let mut r = seg.attach_reader(3, 0).unwrap();
    publish(&mut p);
    let f = w.claim().unwrap();
    w.post_dying(&f).unwrap();
    assert!(!r.skip_head(SkipCause::Deadline), "a cell being written is never skipped by a deadline");
    assert_eq!(next(&mut r).0, Next::Pending { seq: 0, offered: true });
    // The platform finds process 7 dead.
    seg.reclaim(w.index(), w.generation(), Reclaim::Dead { owner: 7 }).unwrap();
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 0, cause: SkipCause::WorkerDied });
}

#[test]
fn results_need_a_results_area() {
    let spec = SegmentSpec::new(FrameGeometry::new(16, 1, PixelFormat::Gray8), 2);
    let heap = HeapRegion::for_layout(&Layout::compute(&spec).unwrap());
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 2).unwrap();
    publish(&mut p);
    let f = w.claim().unwrap();
    assert_eq!(w.post(&f, b"x"), Err(PostError::NoResults));
    assert!(matches!(seg.attach_reader(3, 0), Err(segment::AttachError::NoResults)));
    w.release(f).unwrap();
}

#[test]
fn a_dead_workers_frame_goes_back_once_then_is_reported_lost() {
    let (heap, spec) = setup(1, 8);
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut r = seg.attach_reader(3, 0).unwrap();
    publish(&mut p);
    let mut a = seg.register(ConsumerKind::Worker, 7).unwrap();
    let f = a.claim().unwrap();
    assert!(!f.redelivered);
    seg.reclaim(a.index(), a.generation(), Reclaim::Dead { owner: 7 }).unwrap();
    assert_eq!(next(&mut r).0, Next::Pending { seq: 0, offered: true }, "back to the workers, not skipped");
    assert_eq!(seg.stats().redelivered, 1);
    let mut b = seg.register(ConsumerKind::Worker, 8).unwrap();
    assert!(b.might_have_frame());
    let f = b.claim().unwrap();
    assert_eq!((f.seq, f.redelivered), (0, true));
    // Its second worker dies too: reported lost now.
    seg.reclaim(b.index(), b.generation(), Reclaim::Dead { owner: 8 }).unwrap();
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 0, cause: SkipCause::WorkerDied });
    assert_eq!(seg.stats().redelivered, 1, "once");
    assert_eq!(seg.census().free, 1);
    // Under lost_on_death: at once.
    let (heap, spec) = setup(1, 8);
    let seg = Segment::create(heap.region(), &spec.with_lost_on_death(true), Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut r = seg.attach_reader(3, 0).unwrap();
    publish(&mut p);
    let mut c = seg.register(ConsumerKind::Worker, 9).unwrap();
    let _f = c.claim().unwrap();
    seg.reclaim(c.index(), c.generation(), Reclaim::Dead { owner: 9 }).unwrap();
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 0, cause: SkipCause::WorkerDied });
    assert_eq!(seg.stats().redelivered, 0);
    let _ = heap;
}

#[test]
fn drops_and_deaths_are_known_at_once_with_their_cause() {
    // DropNewest: a frame never published is marked before it counts as issued. (Lost on a
    // worker's death: the next test covers redelivery.)
    let (heap, spec) = setup(1, 8);
    let spec = spec.with_policy(OverflowPolicy::DropNewest).with_lost_on_death(true);
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut r = seg.attach_reader(3, 0).unwrap();
    let mut w = seg.register(ConsumerKind::Worker, 7).unwrap();
    publish(&mut p);
    assert!(matches!(p.begin(), Err(BeginError::DroppedNewest { seq: 1 })), "the one slot is READY");
    let f0 = w.claim().unwrap();
    w.post(&f0, b"zero").unwrap();
    w.release(f0).unwrap();
    assert_eq!(next(&mut r).0, Next::Result { seq: 0, epoch: 1, len: 4 });
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 1, cause: SkipCause::DroppedNewest });
    // A worker that dies holding frame 2 (without posting): its reclaim marks it.
    publish(&mut p);
    let _f2 = w.claim().unwrap();
    assert_eq!(next(&mut r).0, Next::Pending { seq: 2, offered: true });
    seg.reclaim(w.index(), w.generation(), Reclaim::Dead { owner: 7 }).unwrap();
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 2, cause: SkipCause::WorkerDied });

    // DropOldest: the unclaimed frame whose slot is reused is marked by the producer.
    let (heap, spec) = setup(1, 8);
    let spec = spec.with_policy(OverflowPolicy::DropOldest);
    let seg = Segment::create(heap.region(), &spec, Creator::default()).unwrap();
    let mut p = seg.attach_producer(1).unwrap();
    let mut r = seg.attach_reader(3, 0).unwrap();
    publish(&mut p);
    let slot = p.begin().unwrap();
    assert_eq!(slot.dropped_seq(), Some(0));
    assert_eq!(next(&mut r).0, Next::Skipped { seq: 0, cause: SkipCause::DroppedOldest });
    slot.publish(FrameMeta::default());
    assert_eq!(next(&mut r).0, Next::Pending { seq: 1, offered: true });
}
