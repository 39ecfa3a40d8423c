//! Decoding the bundled clip, and refusing bad files with clear errors.
use std::path::{Path, PathBuf};

use framebus_harness::video::{Mp4Source, VideoError};
use framebus_platform::core::{FrameGeometry, PixelFormat};

fn clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("media/bbb-720p25.mp4")
}

fn decode_all(format: PixelFormat) -> Vec<Vec<u8>> {
    let mut src = Mp4Source::open(&clip()).unwrap();
    let info = src.info();
    let size = FrameGeometry::new(info.width, info.height, format).planes().unwrap().frame_size as usize;
    let mut frames = Vec::new();
    let mut buf = vec![0u8; size];
    while src.next_frame(&mut buf, format).unwrap() {
        frames.push(buf.clone());
    }
    frames
}

#[test]
fn the_bundled_clip_decodes_completely() {
    let src = Mp4Source::open(&clip()).unwrap();
    let info = src.info();
    assert_eq!((info.width, info.height, info.frames), (1280, 720, 132));
    assert!((info.fps - 25.0).abs() < 0.01, "{}", info.fps);
    let frames = decode_all(PixelFormat::Bgr24);
    assert_eq!(frames.len(), 132, "every frame decoded (no B-frame stall)");
    // Real pictures: not flat, and the video moves.
    let first = &frames[0];
    let distinct: std::collections::BTreeSet<u8> = first.iter().copied().collect();
    assert!(distinct.len() > 100, "a real picture has many levels, got {}", distinct.len());
    let moved = frames.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(moved > 100, "consecutive frames differ ({moved} of 131)");
}

#[test]
fn decoding_is_deterministic_and_formats_agree() {
    let a = decode_all(PixelFormat::I420);
    let b = decode_all(PixelFormat::I420);
    assert_eq!(a, b, "same bytes every time: the simulation's integrity checks rely on it");
    let nv12 = decode_all(PixelFormat::Nv12);
    let gray = decode_all(PixelFormat::Gray8);
    let luma = 1280 * 720;
    for ((i, n), g) in a.iter().zip(&nv12).zip(&gray) {
        assert_eq!(&i[..luma], &n[..luma], "same luma plane");
        assert_eq!(&i[..luma], &g[..], "gray is the luma plane");
        // NV12 interleaves the I420 chroma planes.
        let (u, v) = i[luma..].split_at(luma / 4);
        assert!(n[luma..].chunks(2).zip(u.iter().zip(v)).all(|(uv, (a, b))| uv == [*a, *b]));
    }
}

#[test]
fn rewind_starts_again() {
    let mut src = Mp4Source::open(&clip()).unwrap();
    let mut a = vec![0u8; 1280 * 720 * 3];
    let mut b = a.clone();
    assert!(src.next_frame(&mut a, PixelFormat::Bgr24).unwrap());
    while src.next_frame(&mut b, PixelFormat::Bgr24).unwrap() {}
    src.rewind();
    assert!(src.next_frame(&mut b, PixelFormat::Bgr24).unwrap());
    assert_eq!(a, b);
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = std::env::temp_dir().join(format!("fb-video-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = Mp4Source::open(&dir.join("missing.mp4")).err().expect("missing file");
    assert!(matches!(e, VideoError::Open { .. }) && e.to_string().contains("--video"), "{e}");

    let junk = dir.join("junk.mp4");
    std::fs::write(&junk, vec![0x5A; 10_000]).unwrap();
    let e = Mp4Source::open(&junk).err().expect("junk file");
    assert!(matches!(e, VideoError::Corrupt { .. } | VideoError::Unsupported { .. }), "{e}");

    // The first 200 KB of the clip: the header is at the end of this file (moov after mdat)
    // or the samples are cut; either way an error, never a panic.
    let bytes = std::fs::read(clip()).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..200_000]).unwrap();
    match Mp4Source::open(&cut) {
        Err(e) => assert!(matches!(e, VideoError::Corrupt { .. } | VideoError::Unsupported { .. }), "{e}"),
        Ok(mut src) => {
            let mut buf = vec![0u8; 1280 * 720 * 3];
            let r = (0..200).try_for_each(|_| src.next_frame(&mut buf, PixelFormat::Bgr24).map(|_| ()));
            assert!(r.is_err(), "a cut file must fail somewhere");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
