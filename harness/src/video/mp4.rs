//! MP4 / H.264 through the `mp4` demuxer and the `openh264` decoder (both build from crates.io
//! alone). Samples in MP4 are length-prefixed NAL units; the decoder wants Annex B start codes,
//! and the SPS/PPS from the `avcC` box before the first frame.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use framebus_platform::core::PixelFormat;
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::convert;
use super::{FrameSource, VideoError, VideoInfo};

/// An MP4 file's H.264 track, decoded frame by frame.
pub struct Mp4Source {
    path: PathBuf,
    reader: mp4::Mp4Reader<BufReader<File>>,
    track: u32,
    next: u32,
    nal_len: usize,
    params: Vec<u8>,
    decoder: Decoder,
    info: VideoInfo,
    annexb: Vec<u8>,
}

impl Mp4Source {
    /// Opens `path` and finds its H.264 video track.
    ///
    /// # Errors
    /// [`VideoError::Open`], [`VideoError::Unsupported`] (no H.264 track), [`VideoError::Corrupt`].
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let file = File::open(path).map_err(|source| VideoError::Open { path: path.into(), source })?;
        let size = file.metadata().map_err(|source| VideoError::Open { path: path.into(), source })?.len();
        let corrupt = |e: mp4::Error| VideoError::Corrupt { path: path.into(), detail: e.to_string() };
        let reader = mp4::Mp4Reader::read_header(BufReader::new(file), size).map_err(corrupt)?;
        let (track, t) = reader
            .tracks()
            .iter()
            .find(|(_, t)| matches!(t.media_type(), Ok(mp4::MediaType::H264)))
            .map(|(id, t)| (*id, t))
            .ok_or_else(|| VideoError::Unsupported { path: path.into(), what: "no H.264 video track".into() })?;
        let avc =
            t.trak.mdia.minf.stbl.stsd.avc1.as_ref().ok_or_else(|| VideoError::Unsupported {
                path: path.into(),
                what: "no avc1 sample description".into(),
            })?;
        let nal_len = usize::from(avc.avcc.length_size_minus_one & 3) + 1;
        let mut params = Vec::new();
        for nal in avc.avcc.sequence_parameter_sets.iter().chain(&avc.avcc.picture_parameter_sets) {
            params.extend_from_slice(&[0, 0, 0, 1]);
            params.extend_from_slice(&nal.bytes);
        }
        if params.is_empty() {
            return Err(VideoError::Unsupported { path: path.into(), what: "no SPS/PPS in the avcC box".into() });
        }
        let info = VideoInfo {
            width: u32::from(t.width()),
            height: u32::from(t.height()),
            fps: t.frame_rate(),
            frames: t.sample_count(),
        };
        if info.width == 0 || info.height == 0 || info.frames == 0 || !info.fps.is_finite() || info.fps <= 0.0 {
            return Err(VideoError::Unsupported {
                path: path.into(),
                what: format!("empty or untimed video track ({info:?})"),
            });
        }
        let decoder =
            Decoder::new().map_err(|e| VideoError::Decode { path: path.into(), sample: 0, detail: e.to_string() })?;
        Ok(Mp4Source { path: path.into(), reader, track, next: 1, nal_len, params, decoder, info, annexb: Vec::new() })
    }

    /// The track's properties.
    pub fn info(&self) -> VideoInfo {
        self.info
    }

    /// Starts again from the first frame (for looping a clip to fill a duration).
    pub fn rewind(&mut self) {
        self.next = 1;
    }

    /// Decodes the next frame into `out` (tightly packed `format`, `width × height`). Returns
    /// `Ok(false)` at the end of the track.
    ///
    /// # Errors
    /// [`VideoError::Corrupt`] for unreadable samples, [`VideoError::Decode`] for undecodable
    /// ones; `out` of the wrong size panics (a caller bug, not bad input).
    pub fn next_frame(&mut self, out: &mut [u8], format: PixelFormat) -> Result<bool, VideoError> {
        while self.next <= self.info.frames {
            let n = self.next;
            self.next += 1;
            let sample = self
                .reader
                .read_sample(self.track, n)
                .map_err(|e| VideoError::Corrupt { path: self.path.clone(), detail: format!("sample {n}: {e}") })?
                .ok_or_else(|| VideoError::Corrupt {
                    path: self.path.clone(),
                    detail: format!("sample {n} missing"),
                })?;
            // Length-prefixed NAL units → Annex B, SPS/PPS first on key frames.
            self.annexb.clear();
            if sample.is_sync || n == 1 {
                self.annexb.extend_from_slice(&self.params);
            }
            let mut rest = &sample.bytes[..];
            while !rest.is_empty() {
                if rest.len() < self.nal_len {
                    return Err(VideoError::Corrupt {
                        path: self.path.clone(),
                        detail: format!("sample {n}: truncated NAL length"),
                    });
                }
                let len = rest[..self.nal_len].iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
                rest = &rest[self.nal_len..];
                if len > rest.len() {
                    return Err(VideoError::Corrupt {
                        path: self.path.clone(),
                        detail: format!("sample {n}: NAL unit runs past the sample"),
                    });
                }
                self.annexb.extend_from_slice(&[0, 0, 0, 1]);
                self.annexb.extend_from_slice(&rest[..len]);
                rest = &rest[len..];
            }
            let decoded = self.decoder.decode(&self.annexb).map_err(|e| VideoError::Decode {
                path: self.path.clone(),
                sample: n,
                detail: e.to_string(),
            })?;
            if let Some(yuv) = decoded {
                let (w, h) = yuv.dimensions();
                if (w as u32, h as u32) != (self.info.width, self.info.height) {
                    return Err(VideoError::Unsupported {
                        path: self.path.clone(),
                        what: format!("frame size changed to {w}x{h} mid-stream"),
                    });
                }
                let (sy, su, sv) = yuv.strides();
                convert::write_frame(
                    convert::I420 {
                        y: yuv.y(),
                        u: yuv.u(),
                        v: yuv.v(),
                        stride_y: sy,
                        stride_u: su,
                        stride_v: sv,
                        width: w,
                        height: h,
                    },
                    format,
                    out,
                );
                return Ok(true);
            }
            // No picture yet (decoder latency): feed the next sample.
        }
        Ok(false)
    }
}

impl FrameSource for Mp4Source {
    fn info(&self) -> VideoInfo {
        Mp4Source::info(self)
    }
    fn codec(&self) -> &'static str {
        "H.264"
    }
    fn rewind(&mut self) -> Result<(), VideoError> {
        Mp4Source::rewind(self);
        Ok(())
    }
    fn next_frame(&mut self, out: &mut [u8], format: PixelFormat) -> Result<bool, VideoError> {
        Mp4Source::next_frame(self, out, format)
    }
}
