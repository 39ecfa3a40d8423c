//! Ordered results over a real shared segment: two worker threads post out of order, the reader
//! sleeps in `wait::next_result` (no busy loop) and gets every result in frame order, then the
//! end.
use std::sync::Arc;
use std::time::Duration;

use framebus_core::segment::FrameMeta;
use framebus_core::{ConsumerKind, FrameGeometry, Next, PixelFormat, SegmentSpec};
use framebus_platform::{wait, CreateOptions, SharedSegment};

use crate::util::unique;

const FRAMES: u64 = 200;

#[test]
fn two_workers_post_out_of_order_and_the_reader_gets_frame_order() {
    let spec = SegmentSpec::new(FrameGeometry::new(64, 1, PixelFormat::Gray8), 4).with_results(16, 64);
    let seg = Arc::new(SharedSegment::create(&unique("results"), &spec, CreateOptions::default()).unwrap());
    // The producer starts once both workers are registered and the reader attached.
    let up = Arc::new(std::sync::Barrier::new(4));
    let workers: Vec<_> = (0..2u64)
        .map(|k| {
            let (seg, up) = (seg.clone(), up.clone());
            std::thread::spawn(move || {
                let mut w = seg.register(ConsumerKind::Worker).unwrap();
                up.wait();
                let mut n = 0;
                loop {
                    let f = match wait::claim(&mut w, Duration::from_millis(200)) {
                        Ok(f) => f,
                        // The end comes as such, not as a timeout.
                        Err(wait::WaitError::Ended) => return n,
                        Err(wait::WaitError::TimedOut) => continue,
                        Err(e) => panic!("{e}"),
                    };
                    // Worker 1 is slower: results arrive out of frame order.
                    if k == 1 {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    let text = format!("frame {} by {k}", f.seq);
                    wait::post(&mut w, &f, text.as_bytes(), Duration::from_secs(5)).unwrap();
                    wait::release(&mut w, f).unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let reader = {
        let (seg, up) = (seg.clone(), up.clone());
        std::thread::spawn(move || {
            let mut r = seg.attach_reader().unwrap();
            up.wait();
            let mut out = [0u8; 64];
            let mut got = Vec::new();
            loop {
                match wait::next_result(&mut r, &mut out, Duration::from_secs(10)).unwrap() {
                    Next::Result { seq, len, .. } => {
                        let text = String::from_utf8(out[..len].to_vec()).unwrap();
                        assert!(text.starts_with(&format!("frame {seq} by ")), "{text} for {seq}");
                        got.push(seq);
                    }
                    Next::End { seq } => return (got, seq),
                    other => panic!("unexpected {other:?}"),
                }
            }
        })
    };
    up.wait();
    let mut p = seg.attach_producer().unwrap();
    let s = seg.segment();
    for _ in 0..FRAMES {
        while !p.has_space() {
            wait::wait_for_space(&p, Duration::from_secs(5)).unwrap();
        }
        let slot = p.begin().unwrap();
        wait::publish(slot, FrameMeta { payload_len: 64, ..FrameMeta::default() }, &s);
    }
    p.finish();
    let claimed: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let (got, end) = reader.join().unwrap();
    assert_eq!(claimed, FRAMES);
    assert_eq!(end, FRAMES);
    assert_eq!(got, (0..FRAMES).collect::<Vec<_>>(), "every result, in frame order");
    assert_eq!(s.result_counts(), (0, 0), "nothing late, nothing lost to the window");
}
