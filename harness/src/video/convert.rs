//! I420 (the decoder's output) into the segment's pixel format, written tightly packed.
//! BGR/RGB use BT.601 limited-range coefficients in 16.16 fixed point, rows in parallel.

use framebus_platform::core::PixelFormat;
use rayon::prelude::*;

/// A decoded picture: three planes with their strides.
pub struct I420<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub stride_y: usize,
    pub stride_u: usize,
    pub stride_v: usize,
    pub width: usize,
    pub height: usize,
}

fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Writes `src` into `out` as `format` (tightly packed, as `FrameGeometry::planes` lays it out).
///
/// # Panics
/// When `out` is not exactly one frame of `format` (a caller bug) or for `Raw` (no pixels).
pub fn write_frame(src: I420<'_>, format: PixelFormat, out: &mut [u8]) {
    let (w, h) = (src.width, src.height);
    match format {
        PixelFormat::Bgr24 | PixelFormat::Rgb24 => {
            assert_eq!(out.len(), w * h * 3, "output is not one {w}x{h} frame");
            let bgr = format == PixelFormat::Bgr24;
            out.par_chunks_mut(w * 3).enumerate().for_each(|(row, line)| {
                let y = &src.y[row * src.stride_y..][..w];
                let u = &src.u[(row / 2) * src.stride_u..][..w.div_ceil(2)];
                let v = &src.v[(row / 2) * src.stride_v..][..w.div_ceil(2)];
                for x in 0..w {
                    let c = 76_309 * (i32::from(y[x]) - 16); // 1.164 * 65536
                    let d = i32::from(u[x / 2]) - 128;
                    let e = i32::from(v[x / 2]) - 128;
                    let r = clamp((c + 104_597 * e + 32_768) >> 16); // 1.596
                    let g = clamp((c - 25_675 * d - 53_279 * e + 32_768) >> 16); // 0.392, 0.813
                    let b = clamp((c + 132_201 * d + 32_768) >> 16); // 2.017
                    let px = &mut line[x * 3..x * 3 + 3];
                    if bgr {
                        px.copy_from_slice(&[b, g, r]);
                    } else {
                        px.copy_from_slice(&[r, g, b]);
                    }
                }
            });
        }
        PixelFormat::Gray8 => {
            assert_eq!(out.len(), w * h, "output is not one {w}x{h} frame");
            out.par_chunks_mut(w)
                .enumerate()
                .for_each(|(row, line)| line.copy_from_slice(&src.y[row * src.stride_y..][..w]));
        }
        PixelFormat::I420 | PixelFormat::Nv12 => {
            assert!(w % 2 == 0 && h % 2 == 0, "4:2:0 output needs even dimensions");
            assert_eq!(out.len(), w * h * 3 / 2, "output is not one {w}x{h} frame");
            let (ys, uv) = out.split_at_mut(w * h);
            ys.par_chunks_mut(w)
                .enumerate()
                .for_each(|(row, line)| line.copy_from_slice(&src.y[row * src.stride_y..][..w]));
            let (cw, ch) = (w / 2, h / 2);
            if format == PixelFormat::I420 {
                let (us, vs) = uv.split_at_mut(cw * ch);
                for (plane, from, stride) in [(us, src.u, src.stride_u), (vs, src.v, src.stride_v)] {
                    plane
                        .par_chunks_mut(cw)
                        .enumerate()
                        .for_each(|(row, line)| line.copy_from_slice(&from[row * stride..][..cw]));
                }
            } else {
                uv.par_chunks_mut(w).enumerate().for_each(|(row, line)| {
                    let (u, v) = (&src.u[row * src.stride_u..][..cw], &src.v[row * src.stride_v..][..cw]);
                    for x in 0..cw {
                        line[2 * x] = u[x];
                        line[2 * x + 1] = v[x];
                    }
                });
            }
        }
        PixelFormat::Raw => panic!("a video frame has pixels: choose a pixel format, not Raw"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture<'a>(y: &'a [u8], u: &'a [u8], v: &'a [u8]) -> I420<'a> {
        I420 { y, u, v, stride_y: 2, stride_u: 1, stride_v: 1, width: 2, height: 2 }
    }

    #[test]
    fn bt601_reference_colours() {
        // Limited-range black, white and pure red (Y=81, U=90, V=240).
        let mut out = [0u8; 12];
        write_frame(picture(&[16; 4], &[128], &[128]), PixelFormat::Bgr24, &mut out);
        assert_eq!(out, [0; 12]);
        write_frame(picture(&[235; 4], &[128], &[128]), PixelFormat::Bgr24, &mut out);
        assert_eq!(out, [255; 12]);
        write_frame(picture(&[81; 4], &[90], &[240]), PixelFormat::Rgb24, &mut out);
        for px in out.chunks(3) {
            assert!(px[0] >= 250 && px[1] <= 5 && px[2] <= 5, "red: {px:?}");
        }
    }

    #[test]
    fn planar_outputs_keep_the_planes() {
        let (y, u, v) = ([1, 2, 3, 4], [5], [6]);
        let mut out = [0u8; 6];
        write_frame(picture(&y, &u, &v), PixelFormat::I420, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        write_frame(picture(&y, &u, &v), PixelFormat::Nv12, &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        let mut gray = [0u8; 4];
        write_frame(picture(&y, &u, &v), PixelFormat::Gray8, &mut gray);
        assert_eq!(gray, y);
    }
}
