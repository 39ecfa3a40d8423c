"""Open a framebus segment from Python by name and read it using only docs/LAYOUT.md.

Usage: python3 read_segment.py NAME
Prints one JSON object: header fields, checksum validity, write_pos, and the first bytes of
the frame at publish position 0 (found through the publish ring and the slot's state word).
"""
import json
import struct
import sys
from multiprocessing import resource_tracker, shared_memory

FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def main(name: str) -> None:
    # framebus objects are named "framebus.NAME" in /dev/shm.
    shm = shared_memory.SharedMemory(name="framebus." + name, create=False)
    # Python < 3.13 registers even an *attached* segment with its resource tracker, which then
    # unlinks it when this process exits: the "Python deletes my segment" surprise. Opt out.
    resource_tracker.unregister(shm._name, "shared_memory")
    buf = shm.buf
    u32 = lambda off: struct.unpack_from("<I", buf, off)[0]
    u64 = lambda off: struct.unpack_from("<Q", buf, off)[0]
    hdr = {
        "magic": bytes(buf[0:8]).decode("ascii", "replace"),
        "version": u32(8),
        "total_size": u64(16),
        "slot_count": u32(40),
        "slot_stride": u64(48),
        "width": u32(80),
        "height": u32(84),
        "pixel_format": u32(88),
        "ring_capacity": u32(136),
        "control_offset": u64(144),
        "slots_offset": u64(160),
        "ctl_slots": u32(176),
        "ctl_ring": u32(180),
    }
    hdr["checksum_ok"] = fnv1a64(bytes(buf[0:248])) == u64(248)  # layout v3: checksum at 248
    ctl = hdr["control_offset"]
    hdr["write_pos"] = u64(ctl + 16)
    # Frame at publish position 0: ring cell 0 holds (pos << 16) | slot.
    cell = u64(ctl + hdr["ctl_ring"])
    slot = cell & 0xFFFF
    state = u64(ctl + hdr["ctl_slots"] + slot * 128)
    hdr["frame0"] = {
        "pos": cell >> 16,
        "slot": slot,
        "kind": (state >> 16) & 3,
        "seq": u64(ctl + hdr["ctl_slots"] + slot * 128 + 16),
        "first_bytes": list(bytes(buf[hdr["slots_offset"] + slot * hdr["slot_stride"]:][:8])),
    }
    del buf
    shm.close()
    print(json.dumps(hdr))


if __name__ == "__main__":
    main(sys.argv[1])
