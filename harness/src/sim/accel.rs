//! The worker's accelerator: an SNPE network (through `snpe-sys`) whose input user buffer is
//! pointed at the claimed slot before every run, so the runtime reads the frame where the
//! producer decoded it: no copy.

use std::ffi::{CStr, CString};
use std::path::Path;

use snpe_sys as s;

/// Why the accelerator could not be set up or run: the runtime's own code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelError {
    /// which SNPE call failed
    pub call: &'static str,
    /// the SNPE error code (`Snpe_ErrorCode_t`)
    pub code: u32,
    /// `Snpe_ErrorCode_GetLastErrorString()`
    pub message: String,
}

impl std::fmt::Display for AccelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed (SNPE error {}): {}", self.call, self.code, self.message)
    }
}
impl std::error::Error for AccelError {}

fn last_error(call: &'static str) -> AccelError {
    // SAFETY: plain queries of the library's thread-local last error; the string is valid
    // until the next SNPE call on this thread, and we copy it at once.
    let (code, msg) = unsafe { (s::Snpe_ErrorCode_getLastErrorCode(), s::Snpe_ErrorCode_GetLastErrorString()) };
    let message = if msg.is_null() {
        String::new()
    } else {
        // SAFETY: non-null, NUL-terminated (the library's contract), copied before any other call.
        unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
    };
    AccelError { call, code: code.0, message }
}

fn check(call: &'static str, code: s::Snpe_ErrorCode_t) -> Result<(), AccelError> {
    if code == s::Snpe_ErrorCode_t::SNPE_SUCCESS {
        Ok(())
    } else {
        Err(last_error(call))
    }
}

fn handle(call: &'static str, h: *mut std::ffi::c_void) -> Result<*mut std::ffi::c_void, AccelError> {
    if h.is_null() {
        Err(last_error(call))
    } else {
        Ok(h)
    }
}

/// Which accelerator runtime a profile runs on (`Snpe_Runtime_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `SNPE_RUNTIME_CPU`
    Cpu,
    /// `SNPE_RUNTIME_GPU`
    Gpu,
    /// `SNPE_RUNTIME_DSP`
    Dsp,
    /// `SNPE_RUNTIME_AIP_FIXED8_TF`
    Aip,
}

impl Runtime {
    fn raw(self) -> s::Snpe_Runtime_t {
        match self {
            Runtime::Cpu => s::Snpe_Runtime_t::SNPE_RUNTIME_CPU,
            Runtime::Gpu => s::Snpe_Runtime_t::SNPE_RUNTIME_GPU,
            Runtime::Dsp => s::Snpe_Runtime_t::SNPE_RUNTIME_DSP,
            Runtime::Aip => s::Snpe_Runtime_t::SNPE_RUNTIME_AIP_FIXED8_TF,
        }
    }
}

/// What one run computed (the stub model's 80-byte `result` tensor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inference {
    /// content checksum of the input, computed by the runtime over the buffer in place
    pub checksum: u64,
    /// grid cells whose luminance changed against this network's previous input
    pub changed_cells: u32,
    /// mean luminance 0–255
    pub mean_luma: u32,
    /// 8×8 grid of cell luminances, row-major
    pub grid: [u8; 64],
}

/// An SNPE network built for user-supplied buffers, with one input buffer (`data`, H×W×C
/// uint8) that is re-pointed at each frame and one output buffer (`result`).
pub struct Accelerator {
    container: s::Snpe_DlContainer_Handle_t,
    snpe: s::Snpe_SNPE_Handle_t,
    shape: s::Snpe_TensorShape_Handle_t,
    out_shape: s::Snpe_TensorShape_Handle_t,
    encoding: s::Snpe_UserBufferEncoding_Handle_t,
    input: s::Snpe_IUserBuffer_Handle_t,
    output: s::Snpe_IUserBuffer_Handle_t,
    inputs: s::Snpe_UserBufferMap_Handle_t,
    outputs: s::Snpe_UserBufferMap_Handle_t,
    out: Box<[u8; snpe_sys::STUB_OUTPUT_BYTES]>,
    frame_bytes: usize,
    /// Buffers registered with `Snpe_SNPE_RegisterUserMemoryMappedBuffers` (deregistered on drop).
    registered: bool,
}

impl Accelerator {
    /// Opens the model container at `dlc`, builds a network on `runtime` with user-supplied
    /// buffers, and creates the input buffer for `height`×`width`×`channels` uint8 frames,
    /// initially over `first` (any valid frame-sized memory; [`Accelerator::run`] re-points it).
    ///
    /// # Errors
    /// The failing SNPE call with its code and message.
    ///
    /// # Safety
    /// `first` must be valid for reads of `height * width * channels` bytes while this
    /// accelerator lives (or until the next `run` re-points the buffer).
    pub unsafe fn new(
        dlc: &Path,
        runtime: Runtime,
        height: usize,
        width: usize,
        channels: usize,
        first: *const u8,
    ) -> Result<Self, AccelError> {
        let path = CString::new(dlc.to_string_lossy().as_bytes()).map_err(|_| AccelError {
            call: "Snpe_DlContainer_Open",
            code: 14,
            message: "the container path contains a NUL byte".into(),
        })?;
        let mut a = Accelerator {
            container: std::ptr::null_mut(),
            snpe: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            out_shape: std::ptr::null_mut(),
            encoding: std::ptr::null_mut(),
            input: std::ptr::null_mut(),
            output: std::ptr::null_mut(),
            inputs: std::ptr::null_mut(),
            outputs: std::ptr::null_mut(),
            out: Box::new([0; snpe_sys::STUB_OUTPUT_BYTES]),
            frame_bytes: height * width * channels,
            registered: false,
        };
        // SAFETY: every handle passed below was just returned non-null by the library (checked
        // by `handle`), and `a`'s Drop deletes each exactly once; `path` outlives the call.
        unsafe {
            a.container = handle("Snpe_DlContainer_Open", s::Snpe_DlContainer_Open(path.as_ptr()))?;
            let builder = handle("Snpe_SNPEBuilder_Create", s::Snpe_SNPEBuilder_Create(a.container))?;
            let runtimes = s::Snpe_RuntimeList_Create();
            let built = (|| {
                handle("Snpe_RuntimeList_Create", runtimes)?;
                check("Snpe_RuntimeList_Add", s::Snpe_RuntimeList_Add(runtimes, runtime.raw()))?;
                check(
                    "Snpe_SNPEBuilder_SetRuntimeProcessorOrder",
                    s::Snpe_SNPEBuilder_SetRuntimeProcessorOrder(builder, runtimes),
                )?;
                check(
                    "Snpe_SNPEBuilder_SetUseUserSuppliedBuffers",
                    s::Snpe_SNPEBuilder_SetUseUserSuppliedBuffers(builder, 1),
                )?;
                handle("Snpe_SNPEBuilder_Build", s::Snpe_SNPEBuilder_Build(builder))
            })();
            if !runtimes.is_null() {
                s::Snpe_RuntimeList_Delete(runtimes);
            }
            s::Snpe_SNPEBuilder_Delete(builder);
            a.snpe = built?;
            // Strides in bytes, outermost first, as SNPE wants them for a packed H×W×C buffer.
            let strides = [width * channels, channels, 1];
            a.shape =
                handle("Snpe_TensorShape_CreateDimsSize", s::Snpe_TensorShape_CreateDimsSize(strides.as_ptr(), 3))?;
            let out_strides = [1usize];
            a.out_shape =
                handle("Snpe_TensorShape_CreateDimsSize", s::Snpe_TensorShape_CreateDimsSize(out_strides.as_ptr(), 1))?;
            a.encoding =
                handle("Snpe_UserBufferEncodingUnsigned8Bit_Create", s::Snpe_UserBufferEncodingUnsigned8Bit_Create())?;
            a.input = handle(
                "Snpe_Util_CreateUserBuffer",
                s::Snpe_Util_CreateUserBuffer(first.cast_mut().cast(), a.frame_bytes, a.shape, a.encoding),
            )?;
            a.output = handle(
                "Snpe_Util_CreateUserBuffer",
                s::Snpe_Util_CreateUserBuffer(a.out.as_mut_ptr().cast(), a.out.len(), a.out_shape, a.encoding),
            )?;
            a.inputs = handle("Snpe_UserBufferMap_Create", s::Snpe_UserBufferMap_Create())?;
            a.outputs = handle("Snpe_UserBufferMap_Create", s::Snpe_UserBufferMap_Create())?;
            check("Snpe_UserBufferMap_Add", s::Snpe_UserBufferMap_Add(a.inputs, c"data".as_ptr(), a.input))?;
            check("Snpe_UserBufferMap_Add", s::Snpe_UserBufferMap_Add(a.outputs, c"result".as_ptr(), a.output))?;
        }
        Ok(a)
    }

    /// Bytes of one input frame.
    pub fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// Registers input buffers by `(fd, offset)` once, as an accelerator imports dma-bufs or
    /// ION buffers: the block `base .. base + total` is what `fd` maps from its offset 0, and
    /// each of `offsets` is one frame-sized input buffer in it (a slot). After this, [`run`]
    /// on `base + offset` reads through the runtime's registration (the stub: its own mapping
    /// of `fd`, checked against the caller's bytes on every run).
    ///
    /// # Errors
    /// The failing SNPE call with its code and message (e.g. the fd is not the block's).
    ///
    /// [`run`]: Accelerator::run
    pub fn register(&mut self, base: *mut u8, total: usize, fd: i32, offsets: &[u64]) -> Result<(), AccelError> {
        // SAFETY: the map is created, filled and deleted here; the runtime records the
        // addresses and maps `fd` itself, it does not write through `base`.
        unsafe {
            let map = handle("Snpe_UserMemoryMap_Create", s::Snpe_UserMemoryMap_Create())?;
            let mut r = Ok(());
            for &off in offsets {
                r = check(
                    "Snpe_UserMemoryMap_AddFdOffset",
                    s::Snpe_UserMemoryMap_AddFdOffset(map, c"data".as_ptr(), base.cast(), total, fd, off),
                );
                if r.is_err() {
                    break;
                }
            }
            if r.is_ok() {
                r = check(
                    "Snpe_SNPE_RegisterUserMemoryMappedBuffers",
                    s::Snpe_SNPE_RegisterUserMemoryMappedBuffers(self.snpe, map),
                );
            }
            s::Snpe_UserMemoryMap_Delete(map);
            r?;
        }
        self.registered = true;
        Ok(())
    }

    /// Runs that read a registered buffer (verified through the runtime's own mapping) and
    /// runs on an unregistered address: the stub counts them; `None` with a real SDK.
    pub fn run_counts(&self) -> Option<(u64, u64)> {
        // SAFETY: a live network handle (created in `new`).
        unsafe { s::stub_run_counts(self.snpe) }
    }

    /// Points the input buffer at `frame` and executes the network on it, in place.
    ///
    /// # Errors
    /// The failing SNPE call with its code and message.
    ///
    /// # Safety
    /// `frame` must be valid for reads of [`Accelerator::frame_bytes`] bytes, and not written
    /// by anyone, for the duration of the call (a claimed slot satisfies both).
    pub unsafe fn run(&mut self, frame: *const u8) -> Result<Inference, AccelError> {
        // SAFETY: handles are live (created in `new`); the caller guarantees `frame`.
        unsafe {
            if s::Snpe_IUserBuffer_SetBufferAddress(self.input, frame.cast_mut().cast()) == 0 {
                return Err(last_error("Snpe_IUserBuffer_SetBufferAddress"));
            }
            check(
                "Snpe_SNPE_ExecuteUserBuffers",
                s::Snpe_SNPE_ExecuteUserBuffers(self.snpe, self.inputs, self.outputs),
            )?;
        }
        let o = &self.out;
        let mut grid = [0u8; 64];
        grid.copy_from_slice(&o[16..80]);
        Ok(Inference {
            checksum: u64::from_le_bytes(o[0..8].try_into().expect("8 bytes")),
            changed_cells: u32::from_le_bytes(o[8..12].try_into().expect("4 bytes")),
            mean_luma: u32::from_le_bytes(o[12..16].try_into().expect("4 bytes")),
            grid,
        })
    }
}

impl Drop for Accelerator {
    fn drop(&mut self) {
        // SAFETY: each handle is either null (never created) or live and deleted once here,
        // maps before the buffers they hold, buffers before their shapes and encoding.
        unsafe {
            if self.registered {
                let names = s::Snpe_StringList_Create();
                if !names.is_null() {
                    s::Snpe_StringList_Append(names, c"data".as_ptr());
                    s::Snpe_SNPE_DeregisterUserMemoryMappedBuffers(self.snpe, names);
                    s::Snpe_StringList_Delete(names);
                }
            }
            for m in [self.inputs, self.outputs] {
                if !m.is_null() {
                    s::Snpe_UserBufferMap_Delete(m);
                }
            }
            for b in [self.input, self.output] {
                if !b.is_null() {
                    s::Snpe_IUserBuffer_Delete(b);
                }
            }
            for sh in [self.shape, self.out_shape] {
                if !sh.is_null() {
                    s::Snpe_TensorShape_Delete(sh);
                }
            }
            if !self.encoding.is_null() {
                s::Snpe_UserBufferEncodingUnsigned8Bit_Delete(self.encoding);
            }
            if !self.snpe.is_null() {
                s::Snpe_SNPE_Delete(self.snpe);
            }
            if !self.container.is_null() {
                s::Snpe_DlContainer_Delete(self.container);
            }
        }
    }
}
