//! YUV4MPEG2 (`.y4m`) files: uncompressed 4:2:0 frames behind a one-line text header, as
//! `ffmpeg -pix_fmt yuv420p out.y4m` writes them. Frames are fixed-size, so rewinding is a seek.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use framebus_platform::core::PixelFormat;

use super::{convert, VideoError, VideoInfo};

/// A `.y4m` file read frame by frame.
pub struct Y4mSource {
    path: PathBuf,
    file: BufReader<File>,
    data_start: u64,
    info: VideoInfo,
    buf: Vec<u8>,
}

impl Y4mSource {
    /// Opens `path` and parses its stream header.
    ///
    /// # Errors
    /// [`VideoError::Open`], [`VideoError::Unsupported`] (not 4:2:0, no size or rate),
    /// [`VideoError::Corrupt`] (no header line).
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        let file = File::open(path).map_err(|source| VideoError::Open { path: path.into(), source })?;
        let size = file.metadata().map_err(|source| VideoError::Open { path: path.into(), source })?.len();
        let mut file = BufReader::new(file);
        let mut line = Vec::new();
        (&mut file)
            .take(4096)
            .read_until(b'\n', &mut line)
            .map_err(|source| VideoError::Open { path: path.into(), source })?;
        let unsupported = |what: String| VideoError::Unsupported { path: path.into(), what };
        let text = std::str::from_utf8(&line)
            .ok()
            .filter(|t| t.ends_with('\n'))
            .ok_or_else(|| VideoError::Corrupt { path: path.into(), detail: "no YUV4MPEG2 header line".into() })?;
        let mut tokens = text.trim_end().split(' ');
        if tokens.next() != Some("YUV4MPEG2") {
            return Err(VideoError::Corrupt { path: path.into(), detail: "missing the YUV4MPEG2 signature".into() });
        }
        let (mut w, mut h, mut fps) = (0u32, 0u32, 0f64);
        for t in tokens {
            let split = t.chars().next().map_or(0, char::len_utf8);
            let (key, val) = t.split_at(split);
            match key {
                "W" => w = val.parse().unwrap_or(0),
                "H" => h = val.parse().unwrap_or(0),
                "F" => {
                    let (n, d) = val.split_once(':').unwrap_or((val, "1"));
                    fps = n.parse::<f64>().unwrap_or(0.0) / d.parse::<f64>().unwrap_or(0.0);
                }
                // 8-bit 4:2:0 only (C420p10 and friends have 2 bytes per sample).
                "C" if !matches!(val, "420" | "420jpeg" | "420paldv" | "420mpeg2") => {
                    return Err(unsupported(format!("colour space C{val}; convert to 8-bit 4:2:0 (-pix_fmt yuv420p)")))
                }
                "I" if val != "p" && val != "?" => {
                    return Err(unsupported(format!("interlaced stream (I{val}); deinterlace it first")))
                }
                _ => {}
            }
        }
        if w == 0 || h == 0 || !fps.is_finite() || fps <= 0.0 {
            return Err(unsupported("the header lacks a size (W, H) or a frame rate (F)".into()));
        }
        if w > 16384 || h > 16384 {
            return Err(unsupported(format!("{w}x{h} is larger than 16384x16384")));
        }
        let data_start = line.len() as u64;
        let frame = Self::frame_bytes(w, h) as u64 + 6; // "FRAME\n" + planes
        let frames = ((size - data_start) / frame) as u32;
        if frames == 0 {
            return Err(VideoError::Corrupt { path: path.into(), detail: "no complete frame".into() });
        }
        let info = VideoInfo { width: w, height: h, fps, frames };
        Ok(Y4mSource { path: path.into(), file, data_start, info, buf: Vec::new() })
    }

    fn frame_bytes(w: u32, h: u32) -> usize {
        let (w, h) = (w as usize, h as usize);
        w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
    }

    /// The stream's properties.
    pub fn info(&self) -> VideoInfo {
        self.info
    }

    /// Starts again from the first frame.
    ///
    /// # Errors
    /// [`VideoError::Open`] when the file cannot be sought.
    pub fn rewind(&mut self) -> Result<(), VideoError> {
        self.file
            .seek(SeekFrom::Start(self.data_start))
            .map(|_| ())
            .map_err(|source| VideoError::Open { path: self.path.clone(), source })
    }

    /// Reads the next frame into `out` as `format`; `Ok(false)` at the end of the file.
    ///
    /// # Errors
    /// [`VideoError::Corrupt`] for a frame without its `FRAME` marker or cut short.
    pub fn next_frame(&mut self, out: &mut [u8], format: PixelFormat) -> Result<bool, VideoError> {
        let corrupt = |detail: String| VideoError::Corrupt { path: self.path.clone(), detail };
        let mut marker = Vec::new();
        let n = (&mut self.file).take(1024).read_until(b'\n', &mut marker).map_err(|e| corrupt(e.to_string()))?;
        if n == 0 {
            return Ok(false);
        }
        if !marker.starts_with(b"FRAME") || !marker.ends_with(b"\n") {
            return Err(corrupt("a frame does not start with FRAME".into()));
        }
        let (w, h) = (self.info.width as usize, self.info.height as usize);
        self.buf.resize(Self::frame_bytes(self.info.width, self.info.height), 0);
        match self.file.read_exact(&mut self.buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(corrupt(e.to_string())),
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (y, uv) = self.buf.split_at(w * h);
        let (u, v) = uv.split_at(cw * ch);
        convert::write_frame(
            convert::I420 { y, u, v, stride_y: w, stride_u: cw, stride_v: cw, width: w, height: h },
            format,
            out,
        );
        Ok(true)
    }
}

impl super::FrameSource for Y4mSource {
    fn info(&self) -> VideoInfo {
        Y4mSource::info(self)
    }
    fn codec(&self) -> &'static str {
        "Y4M"
    }
    fn rewind(&mut self) -> Result<(), VideoError> {
        Y4mSource::rewind(self)
    }
    fn next_frame(&mut self, out: &mut [u8], format: PixelFormat) -> Result<bool, VideoError> {
        Y4mSource::next_frame(self, out, format)
    }
}
