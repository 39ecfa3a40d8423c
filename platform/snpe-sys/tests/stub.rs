//! The stub runtime through the generated bindings: the call sequence a worker uses, the
//! function it computes over the caller's memory, and its errors.
#![cfg(not(snpe_real_sdk))]

use std::ffi::{c_void, CStr, CString};
use std::path::PathBuf;

use snpe_sys::*;

const H: usize = 48;
const W: usize = 64;

fn dlc(tag: &str, body: &str) -> CString {
    let p: PathBuf = std::env::temp_dir().join(format!("snpe-stub-{}-{tag}.dlc", std::process::id()));
    std::fs::write(&p, body).unwrap();
    CString::new(p.to_str().unwrap()).unwrap()
}

fn model(tag: &str) -> CString {
    dlc(tag, &format!("framebus-stub-dlc 1\ninput data {H} {W} 3\noutput result 80\ntime 1 0 0\n"))
}

fn last_error() -> (u32, String) {
    // SAFETY: the library's thread-local last error; the string is copied at once.
    unsafe {
        (
            Snpe_ErrorCode_getLastErrorCode().0,
            CStr::from_ptr(Snpe_ErrorCode_GetLastErrorString()).to_string_lossy().into(),
        )
    }
}

/// The reference for the stub's checksum (the harness computes the same on the producer side).
fn reference_checksum(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(0x100_0000_01b3);
    }
    for &x in words.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
    }
    h ^ b.len() as u64
}

struct Net {
    snpe: Snpe_SNPE_Handle_t,
    input: Snpe_IUserBuffer_Handle_t,
    inputs: Snpe_UserBufferMap_Handle_t,
    outputs: Snpe_UserBufferMap_Handle_t,
    out: Box<[u8; 80]>,
}

/// The worker's sequence: container, builder with a runtime order and user buffers, build,
/// a user buffer over `frame`, maps.
fn build(tag: &str, frame: &mut [u8]) -> Net {
    let path = model(tag);
    let mut out = Box::new([0u8; 80]);
    // SAFETY: handles come from the library and are checked non-null; buffers outlive the net.
    unsafe {
        let c = Snpe_DlContainer_Open(path.as_ptr());
        assert!(!c.is_null(), "{:?}", last_error());
        let b = Snpe_SNPEBuilder_Create(c);
        let rl = Snpe_RuntimeList_Create();
        assert_eq!(Snpe_RuntimeList_Add(rl, Snpe_Runtime_t::SNPE_RUNTIME_DSP), Snpe_ErrorCode_t::SNPE_SUCCESS);
        assert_eq!(Snpe_SNPEBuilder_SetRuntimeProcessorOrder(b, rl), Snpe_ErrorCode_t::SNPE_SUCCESS);
        assert_eq!(Snpe_SNPEBuilder_SetUseUserSuppliedBuffers(b, 1), Snpe_ErrorCode_t::SNPE_SUCCESS);
        let snpe = Snpe_SNPEBuilder_Build(b);
        assert!(!snpe.is_null(), "{:?}", last_error());
        Snpe_RuntimeList_Delete(rl);
        Snpe_SNPEBuilder_Delete(b);
        Snpe_DlContainer_Delete(c);
        let strides = [W * 3, 3, 1];
        let shape = Snpe_TensorShape_CreateDimsSize(strides.as_ptr(), 3);
        let enc = Snpe_UserBufferEncodingUnsigned8Bit_Create();
        let input = Snpe_Util_CreateUserBuffer(frame.as_mut_ptr().cast(), frame.len(), shape, enc);
        let one = [1usize];
        let oshape = Snpe_TensorShape_CreateDimsSize(one.as_ptr(), 1);
        let output = Snpe_Util_CreateUserBuffer(out.as_mut_ptr().cast(), 80, oshape, enc);
        assert!(!input.is_null() && !output.is_null(), "{:?}", last_error());
        let (inputs, outputs) = (Snpe_UserBufferMap_Create(), Snpe_UserBufferMap_Create());
        assert_eq!(Snpe_UserBufferMap_Add(inputs, c"data".as_ptr(), input), Snpe_ErrorCode_t::SNPE_SUCCESS);
        assert_eq!(Snpe_UserBufferMap_Add(outputs, c"result".as_ptr(), output), Snpe_ErrorCode_t::SNPE_SUCCESS);
        Net { snpe, input, inputs, outputs, out }
    }
}

/// checksum, changed cells, mean luminance, grid
type Output = (u64, u32, u32, [u8; 64]);

fn run(n: &mut Net, frame: *mut u8) -> Result<Output, (u32, String)> {
    // SAFETY: `frame` points at a live H×W×3 buffer (callers pass one); handles are live.
    unsafe {
        assert_eq!(Snpe_IUserBuffer_SetBufferAddress(n.input, frame.cast::<c_void>()), 1);
        if Snpe_SNPE_ExecuteUserBuffers(n.snpe, n.inputs, n.outputs) != Snpe_ErrorCode_t::SNPE_SUCCESS {
            return Err(last_error());
        }
    }
    let o = &n.out;
    Ok((
        u64::from_le_bytes(o[..8].try_into().unwrap()),
        u32::from_le_bytes(o[8..12].try_into().unwrap()),
        u32::from_le_bytes(o[12..16].try_into().unwrap()),
        o[16..80].try_into().unwrap(),
    ))
}

#[test]
fn execute_reads_the_callers_buffer_in_place_and_computes_a_function_of_its_pixels() {
    let mut a = vec![100u8; H * W * 3]; // grey: luma 100 everywhere
    let mut b: Vec<u8> = (0..H * W * 3).map(|i| (i % 253) as u8).collect();
    let mut net = build("inplace", &mut a);
    let (sum, changed, mean, grid) = run(&mut net, a.as_mut_ptr()).unwrap();
    assert_eq!(sum, reference_checksum(&a), "the stub's checksum is the documented function");
    assert_eq!((changed, mean), (64, 100), "first frame: every cell is new; BT.601 luma of grey 100 is 100");
    assert!(grid.iter().all(|&g| g == 100));
    // Same frame again: nothing moved.
    assert_eq!(run(&mut net, a.as_mut_ptr()).unwrap().1, 0);
    // Re-pointed at another buffer, it computes over that one: no copy was kept.
    let (sum_b, changed_b, ..) = run(&mut net, b.as_mut_ptr()).unwrap();
    assert_eq!(sum_b, reference_checksum(&b));
    assert!(changed_b > 0);
    // A change in the caller's memory is seen by the next run: it reads the memory itself.
    b[W * 3 * 10 + 30] ^= 0xff;
    assert_eq!(run(&mut net, b.as_mut_ptr()).unwrap().0, reference_checksum(&b));
    // SAFETY: handles from `build`, deleted once.
    unsafe {
        Snpe_UserBufferMap_Delete(net.inputs);
        Snpe_UserBufferMap_Delete(net.outputs);
        assert_eq!(Snpe_SNPE_Delete(net.snpe), Snpe_ErrorCode_t::SNPE_SUCCESS);
    }
    assert_eq!(
        // SAFETY: the exported checksum over a live buffer.
        unsafe { framebus_stub_checksum(b.as_ptr(), b.len()) },
        reference_checksum(&b)
    );
}

#[test]
fn errors_carry_the_sdk_codes_and_a_message() {
    // SAFETY: null handles and bad arguments are what is being tested; the stub checks them.
    unsafe {
        let missing = CString::new("/no/such/model.dlc").unwrap();
        assert!(Snpe_DlContainer_Open(missing.as_ptr()).is_null());
        let (code, msg) = last_error();
        assert_eq!(code, Snpe_ErrorCode_t::SNPE_ERRORCODE_CONFIG_MISSING_FILE.0);
        assert!(msg.contains("/no/such/model.dlc"), "{msg}");

        let bad = dlc("bad", "not a container\n");
        assert!(Snpe_DlContainer_Open(bad.as_ptr()).is_null());
        assert_eq!(last_error().0, Snpe_ErrorCode_t::SNPE_ERRORCODE_DLCONTAINER_BAD_CONTAINER.0);

        assert_eq!(Snpe_SNPEBuilder_Delete(std::ptr::null_mut()), Snpe_ErrorCode_t::SNPE_ERRORCODE_CAPI_BAD_HANDLE);
        assert!(Snpe_SNPEBuilder_Create(std::ptr::null_mut()).is_null());
        let rl = Snpe_RuntimeList_Create();
        assert_eq!(
            Snpe_RuntimeList_Add(rl, Snpe_Runtime_t::SNPE_RUNTIME_UNSET),
            Snpe_ErrorCode_t::SNPE_ERRORCODE_CAPI_BAD_ARGUMENT
        );
        Snpe_RuntimeList_Delete(rl);
    }
    // A buffer of the wrong size is refused at execute, with the SDK's size-mismatch code.
    let mut small = vec![0u8; 100];
    let mut frame = vec![0u8; H * W * 3];
    let net = build("size", &mut frame);
    // SAFETY: re-create the input user buffer over a too-small buffer; handles are live.
    unsafe {
        let strides = [W * 3, 3, 1];
        let shape = Snpe_TensorShape_CreateDimsSize(strides.as_ptr(), 3);
        let enc = Snpe_UserBufferEncodingUnsigned8Bit_Create();
        let wrong = Snpe_Util_CreateUserBuffer(small.as_mut_ptr().cast(), small.len(), shape, enc);
        assert_eq!(Snpe_UserBufferMap_Add(net.inputs, c"data".as_ptr(), wrong), Snpe_ErrorCode_t::SNPE_SUCCESS);
        assert_eq!(
            Snpe_SNPE_ExecuteUserBuffers(net.snpe, net.inputs, net.outputs),
            Snpe_ErrorCode_t::SNPE_ERRORCODE_DLSYSTEM_SIZE_MISMATCH
        );
        let empty = Snpe_UserBufferMap_Create();
        assert_eq!(
            Snpe_SNPE_ExecuteUserBuffers(net.snpe, empty, net.outputs),
            Snpe_ErrorCode_t::SNPE_ERRORCODE_CONFIG_WRONG_INPUT_NAME
        );
    }
    drop(net);
}

#[test]
fn the_runtime_enum_has_the_sdk_values() {
    assert_eq!(Snpe_Runtime_t::SNPE_RUNTIME_CPU as i32, 0);
    assert_eq!(Snpe_Runtime_t::SNPE_RUNTIME_GPU as i32, 1);
    assert_eq!(Snpe_Runtime_t::SNPE_RUNTIME_DSP as i32, 2);
    assert_eq!(Snpe_Runtime_t::SNPE_RUNTIME_GPU_FLOAT16 as i32, 3);
    assert_eq!(Snpe_Runtime_t::SNPE_RUNTIME_AIP_FIXED8_TF as i32, 5);
    assert_eq!(Snpe_Runtime_t::SNPE_RUNTIME_UNSET as i32, -1);
    const { assert!(IS_STUB) };
    // SAFETY: a static string from the library.
    let v = unsafe { CStr::from_ptr(Snpe_DlVersion_ToString(Snpe_Util_GetLibraryVersion())) };
    assert!(v.to_str().unwrap().contains("not the Qualcomm SDK"));
}

/// Executions that took the registered path and those that did not.
fn counts(n: &Net) -> (u64, u64) {
    let (mut r, mut u) = (0, 0);
    // SAFETY: a live network handle and two local outputs.
    unsafe { framebus_stub_run_counts(n.snpe, &mut r, &mut u) };
    (r, u)
}

/// Registers `(fd, offset)` of each entry under "data" for `n`; the code and message.
fn register(n: &Net, base: *mut u8, total: usize, fd: i32, offsets: &[u64]) -> Result<(), (u32, String)> {
    // SAFETY: the map is created, filled and deleted here; the addresses are only recorded.
    unsafe {
        let map = Snpe_UserMemoryMap_Create();
        assert!(!map.is_null());
        for &off in offsets {
            let st = Snpe_UserMemoryMap_AddFdOffset(map, c"data".as_ptr(), base.cast(), total, fd, off);
            assert_eq!(st, Snpe_ErrorCode_t::SNPE_SUCCESS);
        }
        assert_eq!(Snpe_UserMemoryMap_Size(map), offsets.len());
        let st = Snpe_SNPE_RegisterUserMemoryMappedBuffers(n.snpe, map);
        Snpe_UserMemoryMap_Delete(map);
        if st == Snpe_ErrorCode_t::SNPE_SUCCESS {
            Ok(())
        } else {
            Err(last_error())
        }
    }
}

#[test]
fn registered_fd_buffers_are_read_through_the_runtimes_own_mapping_and_verified() {
    use std::os::fd::AsRawFd;
    const SLOT: usize = (H * W * 3).div_ceil(4096) * 4096;
    let path = std::env::temp_dir().join(format!("snpe-stub-{}-slots", std::process::id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    file.set_len((3 * SLOT) as u64).unwrap();
    // SAFETY: a private temporary file only this test maps and writes.
    let mut mem = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    for (k, slot) in mem.chunks_mut(SLOT).enumerate() {
        slot.iter_mut().enumerate().for_each(|(i, b)| *b = ((i * 7 + k * 31) % 251) as u8);
    }
    let base = mem.as_mut_ptr();
    let fd = file.as_raw_fd();
    let offsets: Vec<u64> = (0..3).map(|k| (k * SLOT) as u64).collect();
    // SAFETY: every slot lies inside the live mapping.
    let slot = |k: usize| unsafe { base.add(k * SLOT) };

    let mut net = build("registered", &mut mem[..H * W * 3]);
    register(&net, base, 3 * SLOT, fd, &offsets).unwrap();
    for k in 0..3 {
        let (sum, ..) = run(&mut net, slot(k)).unwrap();
        assert_eq!(sum, reference_checksum(&mem[k * SLOT..k * SLOT + H * W * 3]), "slot {k}");
    }
    assert_eq!(counts(&net), (3, 0), "every run on a registered slot went through the fd");
    // The runtime's mapping and the caller's are the same pages: a write is seen at once.
    mem[SLOT + 100] ^= 0x5a;
    assert_eq!(run(&mut net, slot(1)).unwrap().0, reference_checksum(&mem[SLOT..SLOT + H * W * 3]));
    // An address that was not registered still runs (a real runtime would copy it).
    let mut heap = vec![9u8; H * W * 3];
    run(&mut net, heap.as_mut_ptr()).unwrap();
    assert_eq!(counts(&net), (4, 1));
    // Deregistered: back to the plain path.
    // SAFETY: a list created, filled and deleted here; the network handle is live.
    unsafe {
        let names = Snpe_StringList_Create();
        assert_eq!(Snpe_StringList_Append(names, c"data".as_ptr()), Snpe_ErrorCode_t::SNPE_SUCCESS);
        assert_eq!(Snpe_SNPE_DeregisterUserMemoryMappedBuffers(net.snpe, names), Snpe_ErrorCode_t::SNPE_SUCCESS);
        Snpe_StringList_Delete(names);
    }
    run(&mut net, slot(0)).unwrap();
    assert_eq!(counts(&net), (4, 2));

    // A registration whose (fd, offset) is not the buffer at that address is caught: slot 0's
    // address registered with slot 2's offset (the "base" is shifted to make the sum line up).
    let mut liar = build("liar", &mut heap);
    let shifted = base.wrapping_sub(2 * SLOT);
    register(&liar, shifted, 3 * SLOT, fd, &[2 * SLOT as u64]).unwrap();
    let (code, msg) = run(&mut liar, slot(0)).unwrap_err();
    assert_eq!(code, Snpe_ErrorCode_t::SNPE_ERRORCODE_NETWORK_EXECUTION_FAILED.0);
    assert!(msg.contains("do not hold the bytes"), "{msg}");

    // Registrations the stub cannot verify are refused with a reason.
    let (code, msg) = register(&liar, base, 3 * SLOT, -1, &[0]).unwrap_err();
    assert_eq!(code, Snpe_ErrorCode_t::SNPE_ERRORCODE_DLSYSTEM_BUFFER_INVALID_PARAM.0);
    assert!(msg.contains("FastRPC"), "{msg}");
    let (_, msg) = register(&liar, base, 3 * SLOT, fd, &[3 * SLOT as u64]).unwrap_err();
    assert!(msg.contains("past"), "{msg}");
    // SAFETY: handles from `build`, deleted once.
    unsafe {
        for n in [&net, &liar] {
            Snpe_UserBufferMap_Delete(n.inputs);
            Snpe_UserBufferMap_Delete(n.outputs);
            assert_eq!(Snpe_SNPE_Delete(n.snpe), Snpe_ErrorCode_t::SNPE_SUCCESS);
        }
    }
    drop(mem);
    let _ = std::fs::remove_file(path);
}
