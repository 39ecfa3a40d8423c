/* A stand-in bcryptprimitives.dll for running Rust programs under Wine 8.
 *
 * Rust's standard library for Windows imports ProcessPrng from bcryptprimitives.dll, which
 * Wine 8.0 does not provide, so every Rust .exe fails to load (status c0000135). This DLL
 * provides ProcessPrng by filling the buffer through RtlGenRandom (SystemFunction036 in
 * advapi32). `cargo xtask cross windows` builds it with mingw-w64 and places it next to the
 * test executables. Never shipped: real Windows has the real DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
