/*
 * layout_consumer.c - a framebus consumer (worker, subscriber or latest reader)
 * written from docs/LAYOUT.md (layout version 3; first written for 2) alone: no libframebus, no
 * framebus.h, no Rust source. It uses only C11 <stdatomic.h> and Linux system
 * calls (shm_open, mmap, futex, kill, /proc). It exists to prove the document
 * is sufficient; "LAYOUT §n" comments cite the section each step follows.
 *
 * Build:  cc -std=c11 -Wall -Wextra -Werror -O2 -o layout_consumer layout_consumer.c
 * Usage:  layout_consumer worker|subscriber|latest NAME [TIMEOUT_S]
 *
 * Prints "ready" once registered, then at the end exactly one line:
 *   frames=N checksum_ok=N checksum_bad=N seq_sum=S first_seq=S last_seq=S order_violations=N
 * Exit: 0 all good, 2 bad checksum or order violation, 1 any error or timeout.
 */
#define _GNU_SOURCE /* shm_open, syscall, kill under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef _Atomic uint64_t au64;
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to share memory");

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME  0x100000001b3ull
#define MAX_TRIES  4096                    /* LAYOUT §6: CAS retries before "contention" */
#define POS48      ((1ull << 48) - 1)      /* ring cell position field, LAYOUT §3 */
#define GEN40      ((1ull << 40) - 1)      /* entry generation, LAYOUT §5 */
#define NS         1000000000ull

/* ---- LAYOUT §3 control-area offsets (relative to control_offset) ---- */
enum { C_PRODUCER_OWNER = 0, C_EPOCH = 8, C_WRITE_POS = 16, C_FRAME_WAKE = 128,
       C_FRAME_WAITERS = 136, C_SPACE_WAKE = 256, C_SPACE_WAITERS = 264,
       C_CLAIM_CURSOR = 384, C_DELIVERED = 392, C_RECLAIMED = 512 };
/* LAYOUT §4 slot line words */
enum { SL_STATE = 0, SL_POS = 8, SL_SEQ = 16, SL_FORMAT_FLAGS = 48, SL_PAYLOAD_LEN = 56,
       SL_CHECKSUM = 64 };
/* LAYOUT §5 consumer line words */
enum { CL_STATE = 0, CL_PROCESS = 8, CL_LEASE = 16, CL_CURSOR = 24, CL_DELIVERED = 32,
       CL_SKIPPED = 40, CL_JOINED = 48 };

/* LAYOUT §4 slot state word: generation << 18 | kind << 16 | holders */
enum { SK_FREE = 0, SK_WRITING = 1, SK_READY = 2, SK_TAKEN = 3 };
#define S_HOLDERS(w) ((w) & 0xFFFFull)
#define S_KIND(w)    (((w) >> 16) & 3u)
#define S_GEN(w)     ((w) >> 18)

/* LAYOUT §5 entry state word */
enum { ES_FREE = 0, ES_ALIVE = 1, ES_RECLAIMING = 2 };
enum { K_WORKER = 1, K_SUBSCRIBER = 2, K_LATEST = 3 };
#define E_STATUS(w) ((w) & 3u)
#define E_BUSY      (1ull << 2)
#define E_KIND(w)   (((w) >> 4) & 3u)
#define E_HOLDS(w)  (((w) >> 8) & 0x7FFu)
#define E_PROC(w)   (((w) >> 20) & 0xFu)
#define E_GEN(w)    ((w) >> 24)
static uint64_t e_make(uint64_t status, int busy, uint64_t kind, uint64_t holds, uint64_t proc,
                       uint64_t gen) {
    return status | (busy ? E_BUSY : 0) | kind << 4 | holds << 8 | proc << 20 | (gen & GEN40) << 24;
}

/* ---- the validated header copy (LAYOUT §1: read once, use only the copy) ---- */
static struct {
    uint64_t total_size, slot_stride, slot_payload, frame_size, control_offset, control_size,
        slots_offset, slots_size;
    uint32_t slot_count, max_consumers, slot_align, pattern, policy, ring_capacity, ctl_slots,
        ctl_ring, ctl_consumers;
} H;
static uint8_t *g_base;          /* the mapping; kept until exit even if the name is unlinked */
static uint64_t g_deadline;      /* CLOCK_MONOTONIC ns bounding the whole run */

/* ---- our registration ---- */
static uint64_t g_token;         /* liveness token, LAYOUT §7 */
static uint32_t g_j, g_p;        /* consumer entry j, process slot p */
static uint64_t g_gen;           /* entry generation after registering */
static uint32_t g_kind;
static uint64_t g_idle;          /* our entry word when not busy (tracks holds) */
static uint64_t g_cursor, g_cdelivered, g_skipped;  /* subscriber/latest private copies */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("layout_consumer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}
static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* LAYOUT §1 "Checksum": byte-wise FNV-1a 64 (header checksum) */
static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= FNV_PRIME; }
    return h;
}
/* LAYOUT §4 "Content checksum": LE 64-bit words, then tail bytes, then h ^= len */
static uint64_t content_checksum(const uint8_t *p, uint64_t n) {
    uint64_t h = FNV_OFFSET, i = 0;
    for (; i + 8 <= n; i += 8) h = (h ^ rd64(p + i)) * FNV_PRIME;
    for (; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h ^ n;
}
static void self_test(void) { /* the four test vectors of LAYOUT §4 */
    static const uint8_t ten[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    if (content_checksum((const uint8_t *)"", 0) != 0xcbf29ce484222325ull ||
        content_checksum((const uint8_t *)"a", 1) != 0xaf63dc4c8601ec8dull ||
        content_checksum((const uint8_t *)"framebus", 8) != 0xd266b9bf5d6314d1ull ||
        content_checksum(ten, 10) != 0x167f9b9387a3775eull)
        die("internal error: content checksum does not match the LAYOUT §4 test vectors");
}

/* ---- shared-memory accessors ---- */
static au64 *ctl(uint64_t off) { return (au64 *)(g_base + H.control_offset + off); }
static au64 *slot_w(uint32_t i, uint32_t w) { return ctl(H.ctl_slots + (uint64_t)i * 128 + w); }
static au64 *cons_w(uint32_t j, uint32_t w) { return ctl(H.ctl_consumers + (uint64_t)j * 128 + w); }
static au64 *ring_cell(uint64_t pos) { return ctl(H.ctl_ring + (pos & (H.ring_capacity - 1)) * 8); }
static const uint8_t *slot_payload(uint32_t i) {
    return g_base + H.slots_offset + (uint64_t)i * H.slot_stride;
}
#define LD(p, mo)     atomic_load_explicit((p), memory_order_##mo)
#define ST(p, v, mo)  atomic_store_explicit((p), (v), memory_order_##mo)
#define CAS(p, expp, des, s, f) \
    atomic_compare_exchange_strong_explicit((p), (expp), (des), memory_order_##s, memory_order_##f)

/* LAYOUT §7 (Linux): shared futex on the low 32 bits of a wake word (little-endian: same address) */
static void futex_wait(au64 *word, uint32_t seen, uint64_t timeout_ns) {
    struct timespec ts = { (time_t)(timeout_ns / NS), (long)(timeout_ns % NS) };
    syscall(SYS_futex, (void *)word, FUTEX_WAIT, seen, &ts, NULL, 0);
}
static void futex_wake_all(au64 *word) { syscall(SYS_futex, (void *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0); }

/* LAYOUT §6 Release/finish tail: seq_cst fence, then wake the producer if it sleeps for space */
static void wake_space(void) {
    atomic_thread_fence(memory_order_seq_cst);
    if (LD(ctl(C_SPACE_WAITERS), seq_cst) != 0) {
        atomic_fetch_add_explicit(ctl(C_SPACE_WAKE), 1, memory_order_seq_cst);
        futex_wake_all(ctl(C_SPACE_WAKE));
    }
}

/* ---- LAYOUT §7 liveness tokens ---- */
/* Reads state char and starttime (field 22) of /proc/PID/stat; returns 0 or -errno. */
static int read_stat(long pid, char *state, uint64_t *start) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -errno;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* comm may contain spaces and parentheses */
    if (!p || p[1] != ' ') return -EINVAL;
    p += 2;                      /* field 3: state */
    *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) return -EINVAL;
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}
static uint64_t own_token(void) {
    char st;
    uint64_t start = 0;
    if (read_stat((long)getpid(), &st, &start) != 0) start = 0; /* 0 when unreadable */
    return (uint64_t)(uint32_t)getpid() | (uint64_t)(uint32_t)start << 32;
}
/* Dead only when certain: ESRCH, zombie, or a different start time (LAYOUT §7). */
static int token_dead(uint64_t t) {
    long pid = (long)(uint32_t)t;
    uint32_t start_tok = (uint32_t)(t >> 32);
    char st;
    uint64_t start;
    if (pid <= 0 || pid > INT_MAX) return 0;              /* cannot tell */
    if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) return 1;
    int r = read_stat(pid, &st, &start);
    if (r == -ENOENT) return 1;                           /* vanished meanwhile */
    if (r != 0) return 0;
    if (st == 'Z' || st == 'X') return 1;
    if (start_tok != 0 && (uint32_t)start != start_tok) return 1;
    return 0;
}

/* ---- LAYOUT §1 and §2: header validation ---- */
static int plane_layout(uint32_t fmt, uint64_t w, uint64_t h, uint32_t *count, uint64_t off[4],
                        uint64_t stride[4], uint64_t *size) {
    memset(off, 0, 4 * sizeof *off);
    memset(stride, 0, 4 * sizeof *stride);
    switch (fmt) {
    case 0: case 3: *count = 1; stride[0] = w; *size = w * h; return 0;        /* Raw, GRAY8 */
    case 1: case 2: *count = 1; stride[0] = 3 * w; *size = 3 * w * h; return 0; /* BGR24, RGB24 */
    case 4: *count = 2; stride[0] = w; off[1] = w * h; stride[1] = w;            /* NV12 */
        *size = w * h + w * (h / 2); return 0;
    case 5: *count = 3; stride[0] = w; off[1] = w * h; stride[1] = w / 2;        /* I420 */
        off[2] = w * h + (w / 2) * (h / 2); stride[2] = w / 2;
        *size = w * h + 2 * (w / 2) * (h / 2); return 0;
    }
    return -1;
}
static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static uint64_t next_pow2(uint64_t v) { uint64_t p = 1; while (p < v) p <<= 1; return p; }

/* Checks in the order LAYOUT §1 "Opening" lists; returns NULL or what is wrong. */
static const char *validate(const uint8_t *h, uint64_t map_size) {
    static char why[160];
#define BAD(...) do { snprintf(why, sizeof why, __VA_ARGS__); return why; } while (0)
    if (map_size < 4096) BAD("mapping is %" PRIu64 " bytes, smaller than the 4096-byte header", map_size);
    if (memcmp(h, "FRAMEBUS", 8) != 0) BAD("bad magic (not a framebus segment)");
    if (rd32(h + 8) != 3) BAD("layout_version %u, this consumer speaks version 3 only", rd32(h + 8));
    if (rd32(h + 12) != 4096) BAD("header_size %u, expected 4096", rd32(h + 12));
    if (fnv1a(h, 248) != rd64(h + 248)) BAD("header checksum mismatch");
    uint64_t total = rd64(h + 16);
    if (total != map_size) BAD("truncated: total_size %" PRIu64 " but mapping is %" PRIu64, total, map_size);
    if (rd32(h + 68) != 128) BAD("cache_line %u, expected 128", rd32(h + 68));
    uint32_t pattern = rd32(h + 72), policy = rd32(h + 76), fmt = rd32(h + 88);
    if (pattern > 1 || policy > 2 || fmt > 5) BAD("bad enum code (pattern %u policy %u pixel_format %u)", pattern, policy, fmt);
    uint32_t slots = rd32(h + 40), maxc = rd32(h + 44), align = rd32(h + 64), w = rd32(h + 80), hh = rd32(h + 84);
    uint64_t stride = rd64(h + 48), payload = rd64(h + 56), fsize = rd64(h + 128);
    if (slots < 1 || slots > 1024) BAD("slot_count %u outside 1..=1024", slots);
    if (maxc < 1 || maxc > 16) BAD("max_consumers %u outside 1..=16", maxc);
    if (align < 4096 || align > (2u << 20) || (align & (align - 1))) BAD("slot_align %u not a power of two in 4096..=2MiB", align);
    if (w < 1 || hh < 1) BAD("width/height must be >= 1 (%ux%u)", w, hh);
    if ((fmt == 4 || fmt == 5) && ((w | hh) & 1)) BAD("NV12/I420 need even width and height (%ux%u)", w, hh);
    if (payload > (1ull << 30) || fsize > payload) BAD("limits: frame_size %" PRIu64 " <= slot_payload %" PRIu64 " <= 2^30 violated", fsize, payload);
    uint64_t coff = rd64(h + 144), csize = rd64(h + 152), soff = rd64(h + 160), ssize = rd64(h + 168);
    uint32_t cslots = rd32(h + 176), cring = rd32(h + 180), ccons = rd32(h + 184);
    /* areas inside the segment (overflow-safe) */
    if (coff > total || csize > total - coff || soff > total || ssize > total - soff)
        BAD("control or slot area outside the segment");
    if ((uint64_t)ccons + (uint64_t)maxc * 128 > csize || cslots > csize || cring > csize)
        BAD("control-area tables outside the control area");
    /* no overlap: header, then control, then slots */
    if (coff < 4096 || coff + csize > soff) BAD("areas overlap");
    if (soff % align) BAD("slots_offset %" PRIu64 " not aligned to slot_align %u", soff, align);
    /* derived fields recomputed by LAYOUT §2 */
    uint32_t pc;
    uint64_t po[4], ps[4], fs;
    plane_layout(fmt, w, hh, &pc, po, ps, &fs);
    if (fsize != fs) BAD("frame_size %" PRIu64 ", expected %" PRIu64, fsize, fs);
    if (rd32(h + 92) != pc) BAD("plane_count %u, expected %u", rd32(h + 92), pc);
    for (int i = 0; i < 4; i++)
        if (rd32(h + 96 + 8 * i) != po[i] || rd32(h + 100 + 8 * i) != ps[i]) BAD("plane %d offset/stride mismatch", i);
    uint64_t ring = next_pow2(2ull * slots), e_cslots = 7 * 128, e_cring = e_cslots + (uint64_t)slots * 128;
    uint64_t e_ccons = round_up(e_cring + ring * 8, 128), ctl_end = e_ccons + (uint64_t)maxc * 128;
    uint64_t e_soff = round_up(4096 + ctl_end, align), e_stride = round_up(payload, align);
    if (stride != e_stride) BAD("slot_stride %" PRIu64 ", expected %" PRIu64, stride, e_stride);
    if (rd32(h + 136) != ring) BAD("ring_capacity %u, expected %" PRIu64, rd32(h + 136), ring);
    if (cslots != e_cslots || cring != e_cring || ccons != e_ccons) BAD("ctl_slots/ctl_ring/ctl_consumers mismatch");
    if (coff != 4096 || soff != e_soff || csize != e_soff - 4096) BAD("control_offset/slots_offset/control_size mismatch");
    /* LAYOUT §1/§2, version 3: the results area after the slots (none unless asked for) */
    uint32_t cells = rd32(h + 188), rmax = rd32(h + 192);
    uint64_t roff = rd64(h + 200), rsize = rd64(h + 208), rstride = rd64(h + 216);
    if (cells == 0 ? rmax != 0 : ((cells & (cells - 1)) || cells > 65536 || rmax < 1 || rmax > (1u << 20)))
        BAD("result_cells %u / result_max %u outside the limits", cells, rmax);
    if (cells && pattern != 0) BAD("a results area on a broadcast segment");
    uint64_t e_rstride = cells ? 128 + round_up(rmax, 128) : 0;
    if (rstride != e_rstride || roff != e_soff + slots * stride || rsize != cells * e_rstride)
        BAD("results_offset/results_size/result_stride mismatch");
    if (ssize != slots * stride || total != roff + rsize) BAD("slots_size/total_size mismatch");
    /* reserved bytes zero: flags, 196..200, 224..248, and the rest of the header page */
    if (rd32(h + 140) != 0) BAD("flags (reserved) not zero");
    if (rd32(h + 196) != 0) BAD("reserved bytes 196..200 not zero");
    for (int i = 224; i < 248; i++)
        if (h[i]) BAD("reserved header byte %d not zero", i);
    for (int i = 256; i < 4096; i++)
        if (h[i]) BAD("header byte %d (past the 256 of the header) not zero", i);
    H.total_size = total; H.slot_stride = stride; H.slot_payload = payload; H.frame_size = fsize;
    H.control_offset = coff; H.control_size = csize; H.slots_offset = soff; H.slots_size = ssize;
    H.slot_count = slots; H.max_consumers = maxc; H.slot_align = align; H.pattern = pattern;
    H.policy = policy; H.ring_capacity = (uint32_t)ring; H.ctl_slots = cslots; H.ctl_ring = cring;
    H.ctl_consumers = ccons;
    return NULL;
#undef BAD
}

/* LAYOUT §7 name -> /framebus.NAME; LAYOUT §1 opening with the "being created" retry. */
static void open_segment(const char *name) {
    size_t n = strlen(name);
    if (n < 1 || n > 64 || !strcmp(name, ".") || !strcmp(name, "..") ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
        die("invalid segment name '%s' (LAYOUT §7: 1-64 of [A-Za-z0-9._-], not . or ..)", name);
    char path[80];
    snprintf(path, sizeof path, "/framebus.%s", name);
    int young = 0; /* 10 ms polls spent on a segment still being created (about 1 s allowed) */
    for (;;) {
        if (now_ns() >= g_deadline) die("timeout: segment %s never became available", path);
        int fd = shm_open(path, O_RDWR, 0);
        if (fd < 0) {
            if (errno != ENOENT) die("shm_open(%s): %s", path, strerror(errno));
            sleep_ms(10); /* not created yet: keep waiting (bounded by TIMEOUT_S) */
            continue;
        }
        struct stat sb;
        if (fstat(fd, &sb) != 0) die("fstat(%s): %s", path, strerror(errno));
        uint64_t size = (uint64_t)sb.st_size;
        if (size < 4096 && ++young <= 100) { close(fd); sleep_ms(10); continue; } /* not sized yet */
        if (size < 4096) die("mapping is %" PRIu64 " bytes, smaller than the 4096-byte header", size);
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd); /* the mapping stays valid even after the producer unlinks the name */
        if (m == MAP_FAILED) die("mmap(%s): %s", path, strerror(errno));
        /* magic is written last with a release store: acquire it before copying the header */
        if (LD((au64 *)m, acquire) == 0) {
            munmap(m, size);
            if (++young > 100) die("segment %s not finished initialising after 1 s", path);
            sleep_ms(10);
            continue;
        }
        static uint8_t copy[4096];
        memcpy(copy, m, sizeof copy);
        const char *why = validate(copy, size);
        if (why) die("%s: %s", path, why);
        g_base = m;
        return;
    }
}

/* LAYOUT §6 Reclaim "finish" of entry j, generation gen, process slot p */
static uint64_t release_word(uint64_t s, uint64_t bit) {
    uint64_t ns = s & ~bit;
    if (S_KIND(s) == SK_TAKEN && S_HOLDERS(ns) == 0) ns = S_GEN(s) << 18; /* TAKEN, no holder: FREE(g) */
    return ns;
}
static uint64_t waiters_with(uint64_t w, uint64_t bit, int set) { /* mask change, version + 1 */
    uint64_t mask = set ? (w & 0xFFFF) | bit : (w & 0xFFFF) & ~bit;
    return (((w >> 16) + 1) & POS48) << 16 | mask;
}
static void finish(uint32_t j, uint64_t gen, uint32_t p) {
    uint64_t rec = e_make(ES_RECLAIMING, 0, 0, 0, p, gen), bit = 1ull << j, cleared = 0;
    au64 *entry = cons_w(j, CL_STATE);
    for (uint32_t i = 0; i < H.slot_count; i++) {                     /* step 1 */
        au64 *st = slot_w(i, SL_STATE);
        uint64_t s = LD(st, acquire);
        while ((s & bit) && (S_KIND(s) == SK_READY || S_KIND(s) == SK_TAKEN)) {
            if (LD(entry, acquire) != rec) return;                     /* another finisher freed it */
            if (CAS(st, &s, release_word(s, bit), acq_rel, acquire)) { cleared++; break; }
        }
    }
    if (cleared) atomic_fetch_add_explicit(ctl(C_RECLAIMED), cleared, memory_order_relaxed);
    au64 *fw = ctl(C_FRAME_WAITERS);                                   /* step 2 */
    uint64_t w = LD(fw, acquire);
    while (w & bit) {
        if (LD(entry, acquire) != rec) return;
        if (CAS(fw, &w, waiters_with(w, bit, 0), acq_rel, acquire)) break;
    }
    uint64_t exp = rec;                                                /* step 3 */
    if (CAS(entry, &exp, e_make(ES_FREE, 0, 0, 0, 0, gen + 1), release, relaxed)) wake_space();
}
/* LAYOUT §6 Reap: used only when the tables are full */
static void reap(void) {
    for (uint32_t j = 0; j < H.max_consumers; j++) {
        uint64_t w = LD(cons_w(j, CL_STATE), acquire);
        if (E_STATUS(w) == ES_RECLAIMING) { finish(j, E_GEN(w), E_PROC(w)); continue; }
        if (E_STATUS(w) != ES_ALIVE) continue;
        uint64_t t = LD(cons_w(E_PROC(w), CL_PROCESS), acquire); /* slot after the entry word */
        if (t == g_token || (t != 0 && !token_dead(t))) continue;
        if (CAS(cons_w(j, CL_STATE), &w, e_make(ES_RECLAIMING, 0, 0, 0, E_PROC(w), E_GEN(w)), acq_rel, relaxed))
            finish(j, E_GEN(w), E_PROC(w));
    }
}

/* LAYOUT §6 Register, step 1: the process slot */
static int claim_process_slot(void) {
    uint32_t n = H.max_consumers;
    for (uint32_t p = 0; p < n; p++)
        if (LD(cons_w(p, CL_PROCESS), acquire) == g_token) return (int)p;
    for (uint32_t p = 0; p < n; p++) {
        uint64_t z = 0;
        if (CAS(cons_w(p, CL_PROCESS), &z, g_token, acq_rel, acquire)) return (int)p;
    }
    for (uint32_t p = 0; p < n; p++) {                      /* take over a dead, unnamed slot */
        uint64_t t = LD(cons_w(p, CL_PROCESS), acquire);
        if (t == 0 || !token_dead(t)) continue;
        int named = 0;
        for (uint32_t e = 0; e < n && !named; e++) {
            uint64_t w = LD(cons_w(e, CL_STATE), acquire);
            named = E_STATUS(w) != ES_FREE && E_PROC(w) == p;
        }
        if (!named && CAS(cons_w(p, CL_PROCESS), &t, g_token, acq_rel, acquire)) return (int)p;
    }
    return -1;
}
/* LAYOUT §6 Register, steps 1-5 */
static void register_consumer(uint32_t kind) {
    for (int round = 0; round < 8; round++) {
        int ps = claim_process_slot();
        if (ps < 0) { reap(); continue; }               /* table full: reap, then retry */
        uint32_t p = (uint32_t)ps;
        for (uint32_t j = 0; j < H.max_consumers; j++) {
            au64 *e = cons_w(j, CL_STATE);
            uint64_t w = LD(e, acquire);
            if (E_STATUS(w) != ES_FREE) continue;
            uint64_t gen = (E_GEN(w) + 1) & GEN40;
            uint64_t joining = e_make(ES_ALIVE, 1, 0, 0, p, gen);
            if (!CAS(e, &w, joining, acq_rel, acquire)) continue;           /* step 2 */
            uint64_t pre = LD(ctl(C_WRITE_POS), acquire);                   /* step 3 */
            ST(cons_w(j, CL_LEASE), 0, relaxed);
            ST(cons_w(j, CL_CURSOR), pre, relaxed);
            ST(cons_w(j, CL_DELIVERED), 0, relaxed);
            ST(cons_w(j, CL_SKIPPED), 0, relaxed);
            ST(cons_w(j, CL_JOINED), pre, relaxed);
            uint64_t kinded = e_make(ES_ALIVE, 1, kind, 0, p, gen), exp = joining;
            /* A failed CAS in step 4 or 5 means a reclaimer judged us dead: the process
             * slot may be gone too, so restart from step 1 rather than reuse p. */
            if (!CAS(e, &exp, kinded, release, relaxed)) goto next_round;   /* step 4 */
            atomic_thread_fence(memory_order_seq_cst);                      /* step 5 */
            uint64_t start = LD(ctl(C_WRITE_POS), acquire);
            ST(cons_w(j, CL_CURSOR), start, relaxed);
            ST(cons_w(j, CL_JOINED), start, relaxed);
            uint64_t idle = e_make(ES_ALIVE, 0, kind, 0, p, gen);
            exp = kinded;
            if (!CAS(e, &exp, idle, release, relaxed)) goto next_round;
            g_j = j; g_p = p; g_gen = gen; g_kind = kind; g_idle = idle;
            g_cursor = start; g_cdelivered = 0; g_skipped = 0;
            return;
        }
        reap();                                          /* no FREE entry: reap, then retry */
    next_round:;
    }
    die("consumer table full (max_consumers %u)", H.max_consumers);
}
/* LAYOUT §6 Unregister: idle reclaim of our own entry, then finish */
static void unregister_consumer(void) {
    uint64_t exp = g_idle;
    if (E_HOLDS(g_idle) != 0) die("internal error: unregistering while holding frames");
    if (CAS(cons_w(g_j, CL_STATE), &exp, e_make(ES_RECLAIMING, 0, 0, 0, g_p, g_gen), acq_rel, relaxed))
        finish(g_j, g_gen, g_p);
    /* else: we were reclaimed already (judged dead?); nothing left to undo */
}

/* LAYOUT §6 "Every consumer operation is bracketed" */
static void bracket_begin(void) {
    uint64_t exp = g_idle;
    if (!CAS(cons_w(g_j, CL_STATE), &exp, g_idle | E_BUSY, acq_rel, acquire))
        die("evicted: our consumer entry %u was reclaimed", g_j);
}
static int bracket_end(int dh) {
    uint64_t exp = g_idle | E_BUSY;
    uint64_t nw = (g_idle & ~(0x7FFull << 8)) | (uint64_t)(E_HOLDS(g_idle) + dh) << 8;
    if (!CAS(cons_w(g_j, CL_STATE), &exp, nw, release, relaxed)) return -1;
    g_idle = nw;
    return 0;
}

/* LAYOUT §6 "Setting a holder bit": 1 held, 0 frame gone, -1 contention */
static int try_hold(uint32_t slot, uint64_t pos, int shared, uint64_t *held) {
    if (slot >= H.slot_count) die("corrupt segment: ring cell names slot %u of %u", slot, H.slot_count);
    au64 *st = slot_w(slot, SL_STATE);
    uint64_t bit = 1ull << g_j, s = LD(st, acquire);
    for (int t = 0; t < MAX_TRIES; t++) {
        uint64_t spos = LD(slot_w(slot, SL_POS), relaxed);
        uint32_t k = S_KIND(s);
        if (!(k == SK_READY || (shared && k == SK_TAKEN)) || spos != pos) return 0;
        if (s & bit) die("corrupt segment: our own holder bit already set on slot %u", slot);
        uint64_t ns = shared ? s | bit : (s & ~(3ull << 16)) | (uint64_t)SK_TAKEN << 16 | bit;
        if (CAS(st, &s, ns, acq_rel, acquire)) { *held = ns; return 1; }
    }
    return -1;
}

enum { CLAIM_EMPTY, CLAIM_OK, CLAIM_CONTENDED };
struct frame { uint32_t slot; uint64_t pos, state; };

/* LAYOUT §6 claim, Worker */
static int claim_worker(struct frame *f) {
    au64 *cc = ctl(C_CLAIM_CURSOR);
    for (int t = 0; t < MAX_TRIES; t++) {
        uint64_t c = LD(cc, acquire), wp = LD(ctl(C_WRITE_POS), acquire);
        if (c == wp) return CLAIM_EMPTY;
        if (c > wp) die("corrupt segment: claim_cursor %" PRIu64 " > write_pos %" PRIu64, c, wp);
        if (wp - c > H.ring_capacity) { CAS(cc, &c, wp - H.ring_capacity, acq_rel, relaxed); continue; }
        uint64_t cell = LD(ring_cell(c), acquire), exp = c;
        if ((cell >> 16) != (c & POS48)) { CAS(cc, &exp, c + 1, acq_rel, relaxed); continue; }
        int r = try_hold((uint32_t)(cell & 0xFFFF), c, 0, &f->state);
        if (r < 0) return CLAIM_CONTENDED;
        CAS(cc, &exp, c + 1, acq_rel, relaxed);        /* on success: ignore failure */
        if (r == 1) {
            atomic_fetch_add_explicit(ctl(C_DELIVERED), 1, memory_order_relaxed);
            f->slot = (uint32_t)(cell & 0xFFFF); f->pos = c;
            return CLAIM_OK;
        }
    }
    return CLAIM_CONTENDED;
}
/* LAYOUT §6 claim, Subscriber */
static int claim_subscriber(struct frame *f) {
    int res = CLAIM_CONTENDED;
    for (int t = 0; t < MAX_TRIES; t++) {
        uint64_t wp = LD(ctl(C_WRITE_POS), acquire);
        if (g_cursor == wp) { res = CLAIM_EMPTY; break; }
        if (g_cursor > wp) die("corrupt segment: cursor %" PRIu64 " > write_pos %" PRIu64, g_cursor, wp);
        if (wp - g_cursor > H.ring_capacity) {
            g_skipped += wp - H.ring_capacity - g_cursor;
            g_cursor = wp - H.ring_capacity;
        }
        uint64_t cell = LD(ring_cell(g_cursor), acquire);
        if ((cell >> 16) == (g_cursor & POS48)) {
            int r = try_hold((uint32_t)(cell & 0xFFFF), g_cursor, 1, &f->state);
            if (r < 0) break;
            if (r == 1) {
                f->slot = (uint32_t)(cell & 0xFFFF); f->pos = g_cursor;
                g_cursor++; g_cdelivered++; res = CLAIM_OK;
                break;
            }
        }
        g_cursor++; g_skipped++;                          /* the frame is gone */
    }
    ST(cons_w(g_j, CL_CURSOR), g_cursor, release);        /* whatever the outcome */
    ST(cons_w(g_j, CL_DELIVERED), g_cdelivered, relaxed);
    ST(cons_w(g_j, CL_SKIPPED), g_skipped, relaxed);
    return res;
}
/* LAYOUT §6 claim, Latest */
static int claim_latest(struct frame *f) {
    uint64_t wp = LD(ctl(C_WRITE_POS), acquire);
    if (wp == g_cursor) return CLAIM_EMPTY;
    if (wp < g_cursor) die("corrupt segment: cursor %" PRIu64 " > write_pos %" PRIu64, g_cursor, wp);
    uint64_t lo = g_cursor;
    if (wp >= H.ring_capacity && wp - H.ring_capacity > lo) lo = wp - H.ring_capacity;
    for (uint64_t pos = wp; pos-- > lo;) {
        uint64_t cell = LD(ring_cell(pos), acquire);
        if ((cell >> 16) != (pos & POS48)) continue;
        int r = try_hold((uint32_t)(cell & 0xFFFF), pos, 1, &f->state);
        if (r < 0) return CLAIM_CONTENDED;
        if (r == 1) {
            g_skipped += pos - g_cursor; g_cursor = pos + 1; g_cdelivered++;
            ST(cons_w(g_j, CL_CURSOR), g_cursor, release);
            ST(cons_w(g_j, CL_DELIVERED), g_cdelivered, relaxed);
            ST(cons_w(g_j, CL_SKIPPED), g_skipped, relaxed);
            f->slot = (uint32_t)(cell & 0xFFFF); f->pos = pos;
            return CLAIM_OK;
        }
    }
    return CLAIM_EMPTY;                                   /* nothing stored */
}
/* Clears our bit on a slot as LAYOUT §6 Release does (no bracket: caller brackets). */
static void drop_bit(uint32_t slot) {
    au64 *st = slot_w(slot, SL_STATE);
    uint64_t bit = 1ull << g_j, s = LD(st, relaxed);
    while (s & bit)
        if (CAS(st, &s, release_word(s, bit), release, relaxed)) break;
    wake_space();
}
/* One bracketed claim of the next frame for our kind. */
static int claim(struct frame *f) {
    bracket_begin();
    int r = g_kind == K_WORKER ? claim_worker(f) : g_kind == K_SUBSCRIBER ? claim_subscriber(f)
                                                                           : claim_latest(f);
    if (bracket_end(r == CLAIM_OK ? 1 : 0) != 0) {
        if (r == CLAIM_OK) drop_bit(f->slot);                  /* give back what we claimed */
        die("evicted during a claim (our process was judged dead)");
    }
    return r;
}
/* LAYOUT §6 Release, bracketed */
static void release_frame(const struct frame *f) {
    bracket_begin();
    au64 *st = slot_w(f->slot, SL_STATE);
    uint64_t bit = 1ull << g_j, s = LD(st, relaxed);
    for (;;) {
        if (!(s & bit)) die("corrupt segment: our holder bit vanished from slot %u", f->slot);
        if (CAS(st, &s, release_word(s, bit), release, relaxed)) break;
    }
    wake_space();
    if (bracket_end(-1) != 0) die("evicted during a release");
}

/* LAYOUT §6 "Sleeping for frames": announce, claim again, futex-wait (bounded), retract */
static void retract_waiter(void) {
    au64 *fw = ctl(C_FRAME_WAITERS);
    uint64_t bit = 1ull << g_j, w = LD(fw, acquire);
    while (w & bit) {
        uint64_t e = LD(cons_w(g_j, CL_STATE), acquire);
        if (E_STATUS(e) != ES_ALIVE || E_GEN(e) != g_gen || E_PROC(e) != g_p) break;
        if (CAS(fw, &w, waiters_with(w, bit, 0), seq_cst, acquire)) break;
    }
}
static int sleep_then_claim(struct frame *f) {
    au64 *fw = ctl(C_FRAME_WAITERS);
    uint64_t seen = LD(ctl(C_FRAME_WAKE), acquire), bit = 1ull << g_j, w = LD(fw, relaxed);
    while (!CAS(fw, &w, waiters_with(w, bit, 1), seq_cst, relaxed)) {}
    atomic_thread_fence(memory_order_seq_cst);
    int r = claim(f);
    if (r == CLAIM_EMPTY) {
        uint64_t now = now_ns(), left = g_deadline > now ? g_deadline - now : 0;
        if (left > 100000000ull) left = 100000000ull; /* bounded: re-check the producer every 100 ms */
        if (left && (uint32_t)LD(ctl(C_FRAME_WAKE), acquire) == (uint32_t)seen)
            futex_wait(ctl(C_FRAME_WAKE), (uint32_t)seen, left);
    }
    retract_waiter();
    return r;
}

/* Producer gone for good: detached (owner 0 after some attach, epoch > 0) or its token dead. */
static int producer_gone(void) {
    uint64_t owner = LD(ctl(C_PRODUCER_OWNER), acquire);
    if (owner == 0) return LD(ctl(C_EPOCH), acquire) > 0;
    return token_dead(owner);
}

static uint64_t n_frames, n_ok, n_bad, seq_sum, n_order;
static uint64_t first_seq, last_seq;
static void print_stats(FILE *out) {
    char a[24] = "-1", b[24] = "-1";
    if (n_frames) {
        snprintf(a, sizeof a, "%" PRIu64, first_seq);
        snprintf(b, sizeof b, "%" PRIu64, last_seq);
    }
    fprintf(out, "frames=%" PRIu64 " checksum_ok=%" PRIu64 " checksum_bad=%" PRIu64 " seq_sum=%" PRIu64
            " first_seq=%s last_seq=%s order_violations=%" PRIu64 "\n", n_frames, n_ok, n_bad, seq_sum, a, b, n_order);
    fflush(out);
}
/* Read the descriptor (LAYOUT §4) and check the content, while our bit is set. */
static void consume(const struct frame *f) {
    uint64_t s = LD(slot_w(f->slot, SL_STATE), acquire);
    if (!(s & (1ull << g_j)) || S_GEN(s) != S_GEN(f->state))
        die("corrupt segment: slot %u changed while we held it", f->slot);
    uint64_t seq = LD(slot_w(f->slot, SL_SEQ), relaxed);
    uint64_t ff = LD(slot_w(f->slot, SL_FORMAT_FLAGS), relaxed);
    uint64_t len = LD(slot_w(f->slot, SL_PAYLOAD_LEN), relaxed);
    uint64_t sum = LD(slot_w(f->slot, SL_CHECKSUM), relaxed);
    if (len > H.slot_payload) len = H.slot_payload;       /* readers clamp */
    if (ff >> 63) {                                        /* flags bit 31: checksum valid */
        if (content_checksum(slot_payload(f->slot), len) == sum) n_ok++; else n_bad++;
    }
    if (n_frames && seq <= last_seq) n_order++;
    if (!n_frames) first_seq = seq;
    last_seq = seq;
    seq_sum += seq;
    n_frames++;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s worker|subscriber|latest NAME [TIMEOUT_S]\n", argv[0]);
        return 1;
    }
    uint32_t kind = !strcmp(argv[1], "worker") ? K_WORKER : !strcmp(argv[1], "subscriber") ? K_SUBSCRIBER
                  : !strcmp(argv[1], "latest") ? K_LATEST : 0;
    if (!kind) die("unknown kind '%s' (worker, subscriber or latest)", argv[1]);
    char *end = NULL;
    double timeout = argc == 4 ? strtod(argv[3], &end) : 30.0;
    if (argc == 4 && (*end || !(timeout > 0))) die("bad TIMEOUT_S '%s'", argv[3]);
    g_deadline = now_ns() + (uint64_t)(timeout * 1e9);
    self_test();

    open_segment(argv[2]);                                 /* LAYOUT §1, §7 */
    if (kind == K_WORKER && H.pattern != 0) die("segment %s is broadcast; workers need a work queue", argv[2]);
    if (kind == K_SUBSCRIBER && H.pattern != 1) die("segment %s is a work queue; subscribers need broadcast", argv[2]);
    g_token = own_token();                                 /* LAYOUT §7 */
    register_consumer(kind);                               /* LAYOUT §6 Register */
    printf("ready\n");
    fflush(stdout);

    struct frame f;
    for (;;) {
        if (now_ns() >= g_deadline) {
            unregister_consumer();
            fprintf(stderr, "layout_consumer: timeout after %g s (producer still attached); ", timeout);
            print_stats(stderr);
            return 1;
        }
        int r = claim(&f);
        if (r == CLAIM_EMPTY && producer_gone()) {
            r = claim(&f);                                 /* last look after seeing it gone */
            if (r == CLAIM_EMPTY) break;
        }
        if (r == CLAIM_EMPTY) r = sleep_then_claim(&f);
        if (r == CLAIM_CONTENDED) { sched_yield(); continue; }
        if (r == CLAIM_OK) { consume(&f); release_frame(&f); }
    }
    unregister_consumer();                                 /* LAYOUT §6 Unregister */
    print_stats(stdout);
    return (n_bad == 0 && n_order == 0) ? 0 : 2;
}
