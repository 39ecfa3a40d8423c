/*
 * A stub of the SNPE runtime behind include/snpe_c_api.h: the one declared stub of framebus.
 *
 * It behaves like the SDK where a caller can see it (handles, user buffers over caller memory,
 * runtime order, error codes and last-error strings) and replaces the neural network by:
 *   - a real, deterministic function of the input pixels, read in place from the input user
 *     buffer's address (no copy): a content checksum of the whole buffer taken at the end of
 *     the call (the same function as framebus_harness::sim::wire::checksum; a write into the
 *     buffer during the call changes it), the mean luminance, an 8x8 grid of cell
 *     luminances, and the number of grid cells that changed against the previous frame this
 *     instance saw (a coarse motion detector);
 *   - the time of a runtime profile: BASE_MS +- JITTER_MS of work, processed at a rate of
 *     1 / (1 + CONTENTION * (k - 1)) while k instances on the same runtime execute at once
 *     (processor sharing; k is counted in a file all instances map, so separate processes
 *     contend as accelerator instances do).
 *
 * The "DLC" it opens is a small text file, not a real container:
 *     framebus-stub-dlc 1
 *     input data <height> <width> <channels>
 *     output result 80
 *     time <base_ms> <jitter_ms> <contention>
 *     shared <path of a file of at least 64 bytes>      (optional: without it k counts this
 *                                                        process's instances only; POSIX)
 * Input is H x W x C uint8, packed, channels in B, G, R order (luminance weights assume it).
 *
 * Registered buffers (Snpe_UserMemoryMap_AddFdOffset + Snpe_SNPE_RegisterUserMemoryMappedBuffers)
 * are verified honestly: at registration the stub maps each (fd, offset) itself, read-only, as
 * an accelerator maps a dma-buf through its own MMU; an execution whose input address is a
 * registered one computes the model on the stub's own mapping and fails unless the checksum of
 * those bytes equals the checksum of the bytes at the caller's address -- so a pass proves the
 * runtime read the caller's buffer through the fd, without a copy. framebus_stub_run_counts()
 * (a stub extension) says how many executions took the registered path. POSIX only.
 * The output tensor "result" is 80 bytes, little-endian: u64 checksum, u32 changed cells,
 * u32 mean luminance, 64 bytes of grid (row-major, 8x8).
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif
#include "snpe_c_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#endif

#define STUB_OUTPUT_BYTES 80
#define GRID 8
#define MAX_DIMS 8
#define MAX_BUFFERS 8
#define MAX_RUNTIMES 8
#define MAX_REGISTERED 1024 /* framebus' MAX_SLOTS: every slot of any segment */
#define MAX_STRINGS 8

/* ---- last error ------------------------------------------------------------------------ */

static _Thread_local Snpe_ErrorCode_t last_code = SNPE_SUCCESS;
static _Thread_local char last_text[512] = "";

static Snpe_ErrorCode_t fail(Snpe_ErrorCode_t code, const char* fmt, const char* detail) {
    last_code = code;
    snprintf(last_text, sizeof last_text, fmt, detail ? detail : "");
    return code;
}

void Snpe_ErrorCode_clearLastErrorCode(void) {
    last_code = SNPE_SUCCESS;
    last_text[0] = 0;
}
Snpe_ErrorCode_t Snpe_ErrorCode_getLastErrorCode(void) { return last_code; }
const char* Snpe_ErrorCode_GetLastErrorString(void) { return last_text; }

/* ---- clock, sleep, shared counters ----------------------------------------------------- */

static double now_ms(void) {
#ifdef _WIN32
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * 1000.0 / (double)f.QuadPart;
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
#endif
}

static void sleep_ms(double ms) {
#ifdef _WIN32
    Sleep((DWORD)(ms < 1.0 ? 1.0 : ms));
#else
    struct timespec t = {(time_t)(ms / 1000.0), (long)((ms - (double)(long)(ms / 1000.0) * 1000.0) * 1e6)};
    nanosleep(&t, NULL);
#endif
}

/* Executing instances per runtime, this process only (used when no shared file is given). */
static int64_t local_counters[MAX_RUNTIMES];

static int64_t* map_counters(const char* path) {
#ifdef _WIN32
    (void)path;
    return NULL;
#else
    int fd = open(path, O_RDWR);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)(sizeof(int64_t) * MAX_RUNTIMES)) {
        close(fd); /* too short: mapping it would SIGBUS on access */
        return NULL;
    }
    void* p = mmap(NULL, sizeof(int64_t) * MAX_RUNTIMES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : (int64_t*)p;
#endif
}

/* ---- objects ----------------------------------------------------------------------------- */

typedef struct {
    uint32_t magic;
    size_t height, width, channels, output_bytes;
    double base_ms, jitter_ms, contention;
    char shared[512];
} Container;

typedef struct {
    uint32_t magic;
    Container container; /* a copy: the container may be deleted before Build, as in the SDK */
    Snpe_Runtime_t order[MAX_RUNTIMES];
    size_t order_len;
    int user_buffers;
} Builder;

typedef struct {
    char name[64];
    void* address;
    size_t total;
    int32_t fd;
    uint64_t offset;
} MemoryEntry;

typedef struct {
    uint32_t magic;
    MemoryEntry entries[MAX_REGISTERED];
    size_t len;
} MemoryMap;

/* A registered buffer: the caller's address for it, and the stub's own mapping of its fd. */
typedef struct {
    char name[64];
    const uint8_t* user; /* address + offset: what the caller will set as the buffer address */
    uint8_t* own;        /* the stub's mapping (page-aligned), `delta` bytes before the buffer */
    size_t own_len, delta, len;
} Registration;

typedef struct {
    uint32_t magic;
    Container model;
    Snpe_Runtime_t runtime;
    int64_t* counters; /* shared mapping, or local_counters */
    uint64_t rng;
    int has_previous;
    uint8_t previous[GRID * GRID];
    Registration reg[MAX_REGISTERED];
    size_t nreg;
    uint64_t registered_runs, unregistered_runs;
} Network;

typedef struct {
    uint32_t magic;
    Snpe_Runtime_t items[MAX_RUNTIMES];
    size_t len;
} RuntimeList;

typedef struct {
    uint32_t magic;
    size_t dims[MAX_DIMS];
    size_t len;
} Shape;

typedef struct {
    uint32_t magic;
} Encoding;

typedef struct {
    uint32_t magic;
    void* address;
    size_t size;
    size_t strides[MAX_DIMS];
    size_t rank;
} UserBuffer;

typedef struct {
    uint32_t magic;
    char names[MAX_BUFFERS][64];
    UserBuffer* buffers[MAX_BUFFERS];
    size_t len;
} BufferMap;

typedef struct {
    uint32_t magic;
    char names[MAX_STRINGS][64];
    size_t len;
} StringList;



enum {
    MAGIC_CONTAINER = 0x444c4331,
    MAGIC_BUILDER = 0x424c4431,
    MAGIC_NETWORK = 0x534e5031,
    MAGIC_RUNTIMES = 0x52544c31,
    MAGIC_SHAPE = 0x53485031,
    MAGIC_ENCODING = 0x454e4331,
    MAGIC_BUFFER = 0x55425531,
    MAGIC_MAP = 0x4d415031,
    MAGIC_STRINGS = 0x53544c31,
    MAGIC_VERSION = 0x56455231,
    MAGIC_MEMMAP = 0x554d4d31,
    MAGIC_DEAD = 0xdeaddead
};

#define CHECK(h, type, magic_value)                                                                \
    type* self = (type*)(h);                                                                      \
    if (!self || self->magic != (magic_value))                                                    \
        return fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "bad " #type " handle%s", NULL);

#define CHECK_OR_NULL(h, type, magic_value)                                                        \
    type* self = (type*)(h);                                                                      \
    if (!self || self->magic != (magic_value)) {                                                  \
        fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "bad " #type " handle%s", NULL);                      \
        return NULL;                                                                              \
    }

#define DELETE(h, type, magic_value)                                                               \
    CHECK(h, type, magic_value)                                                                    \
    self->magic = MAGIC_DEAD;                                                                     \
    free(self);                                                                                   \
    return SNPE_SUCCESS;

static void* make(size_t size, uint32_t magic) {
    uint32_t* p = (uint32_t*)calloc(1, size);
    if (!p) {
        fail(SNPE_ERRORCODE_CAPI_BAD_ALLOC, "out of memory%s", NULL);
        return NULL;
    }
    *p = magic;
    return p;
}

/* ---- DlContainer ---------------------------------------------------------------------- */

Snpe_DlContainer_Handle_t Snpe_DlContainer_Open(const char* filename) {
    if (!filename) {
        fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "Snpe_DlContainer_Open: null file name%s", NULL);
        return NULL;
    }
    FILE* f = fopen(filename, "r");
    if (!f) {
        fail(SNPE_ERRORCODE_CONFIG_MISSING_FILE, "cannot open model container %.200s", filename);
        return NULL;
    }
    Container c = {MAGIC_CONTAINER, 0, 0, 0, 0, 0, 0, 0, ""};
    char line[600];
    int version = 0, have_input = 0, have_output = 0, have_time = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        if (sscanf(line, "framebus-stub-dlc %d", &version) == 1) continue;
        if (sscanf(line, "input %63s %zu %zu %zu", name, &c.height, &c.width, &c.channels) == 4) {
            have_input = strcmp(name, "data") == 0;
            continue;
        }
        if (sscanf(line, "output %63s %zu", name, &c.output_bytes) == 2) {
            have_output = strcmp(name, "result") == 0 && c.output_bytes == STUB_OUTPUT_BYTES;
            continue;
        }
        if (sscanf(line, "time %lf %lf %lf", &c.base_ms, &c.jitter_ms, &c.contention) == 3) {
            /* Finite and bounded (NaN fails every comparison): at most an hour per call. */
            have_time = c.base_ms >= 0 && c.base_ms <= 3.6e6 && c.jitter_ms >= 0 && c.jitter_ms <= c.base_ms &&
                        c.contention >= 0 && c.contention <= 1000;
            continue;
        }
        if (strncmp(line, "shared ", 7) == 0) {
            /* The rest of the line: a path may contain spaces. */
            snprintf(c.shared, sizeof c.shared, "%.511s", line + 7);
            c.shared[strcspn(c.shared, "\r\n")] = 0;
            continue;
        }
    }
    fclose(f);
    /* Bounded sizes, so H * W * C cannot wrap (a negative number parses as a huge size_t). */
    if (version != 1 || !have_input || !have_output || !have_time || c.height == 0 || c.width == 0 ||
        c.channels == 0 || c.height > 65536 || c.width > 65536 || c.channels > 4) {
        fail(SNPE_ERRORCODE_DLCONTAINER_BAD_CONTAINER,
             "%.60s is not a framebus stub container (needs the lines 'framebus-stub-dlc 1', 'input data H W C', "
             "'output result 80' and 'time BASE JITTER CONTENTION' with JITTER <= BASE)",
             filename);
        return NULL;
    }
    Container* out = (Container*)make(sizeof(Container), MAGIC_CONTAINER);
    if (out) *out = c;
    return out;
}

Snpe_ErrorCode_t Snpe_DlContainer_Delete(Snpe_DlContainer_Handle_t h) { DELETE(h, Container, MAGIC_CONTAINER) }

/* ---- RuntimeList ---------------------------------------------------------------------- */

Snpe_RuntimeList_Handle_t Snpe_RuntimeList_Create(void) { return make(sizeof(RuntimeList), MAGIC_RUNTIMES); }

Snpe_ErrorCode_t Snpe_RuntimeList_Delete(Snpe_RuntimeList_Handle_t h) { DELETE(h, RuntimeList, MAGIC_RUNTIMES) }

static int known_runtime(Snpe_Runtime_t r) {
    return r == SNPE_RUNTIME_CPU || r == SNPE_RUNTIME_GPU || r == SNPE_RUNTIME_DSP || r == SNPE_RUNTIME_GPU_FLOAT16 ||
           r == SNPE_RUNTIME_AIP_FIXED8_TF;
}

Snpe_ErrorCode_t Snpe_RuntimeList_Add(Snpe_RuntimeList_Handle_t h, Snpe_Runtime_t runtime) {
    CHECK(h, RuntimeList, MAGIC_RUNTIMES)
    if (!known_runtime(runtime)) return fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "unknown runtime%s", NULL);
    if (self->len == MAX_RUNTIMES) return fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "runtime list full%s", NULL);
    self->items[self->len++] = runtime;
    return SNPE_SUCCESS;
}

int Snpe_Util_IsRuntimeAvailable(Snpe_Runtime_t runtime) { return known_runtime(runtime); }

/* ---- SNPEBuilder ---------------------------------------------------------------------- */

Snpe_SNPEBuilder_Handle_t Snpe_SNPEBuilder_Create(Snpe_DlContainer_Handle_t container) {
    Container* c = (Container*)container;
    if (!c || c->magic != MAGIC_CONTAINER) {
        fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "Snpe_SNPEBuilder_Create: bad container handle%s", NULL);
        return NULL;
    }
    Builder* b = (Builder*)make(sizeof(Builder), MAGIC_BUILDER);
    if (b) b->container = *c;
    return b;
}

Snpe_ErrorCode_t Snpe_SNPEBuilder_Delete(Snpe_SNPEBuilder_Handle_t h) { DELETE(h, Builder, MAGIC_BUILDER) }

Snpe_ErrorCode_t Snpe_SNPEBuilder_SetRuntimeProcessorOrder(Snpe_SNPEBuilder_Handle_t h, Snpe_RuntimeList_Handle_t l) {
    CHECK(h, Builder, MAGIC_BUILDER)
    RuntimeList* list = (RuntimeList*)l;
    if (!list || list->magic != MAGIC_RUNTIMES) return fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "bad runtime list%s", NULL);
    memcpy(self->order, list->items, sizeof list->items);
    self->order_len = list->len;
    return SNPE_SUCCESS;
}

Snpe_ErrorCode_t Snpe_SNPEBuilder_SetUseUserSuppliedBuffers(Snpe_SNPEBuilder_Handle_t h, int bufferMode) {
    CHECK(h, Builder, MAGIC_BUILDER)
    self->user_buffers = bufferMode != 0;
    return SNPE_SUCCESS;
}

Snpe_SNPE_Handle_t Snpe_SNPEBuilder_Build(Snpe_SNPEBuilder_Handle_t h) {
    CHECK_OR_NULL(h, Builder, MAGIC_BUILDER)
    Network* n = (Network*)make(sizeof(Network), MAGIC_NETWORK);
    if (!n) return NULL;
    n->model = self->container;
    n->runtime = self->order_len ? self->order[0] : SNPE_RUNTIME_CPU;
    n->counters = n->model.shared[0] ? map_counters(n->model.shared) : local_counters;
    if (!n->counters) {
        free(n);
        fail(SNPE_ERRORCODE_CONFIG_MISSING_FILE, "cannot map the stub's shared counter file %.200s (missing, or under 64 bytes)",
             self->container.shared);
        return NULL;
    }
    n->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)n ^ (uint64_t)now_ms();
    return n;
}

/* ---- SNPE ----------------------------------------------------------------------------- */

static void unregister_at(Network* n, size_t i) {
#ifndef _WIN32
    munmap(n->reg[i].own, n->reg[i].own_len);
#endif
    n->reg[i] = n->reg[--n->nreg];
}

Snpe_ErrorCode_t Snpe_SNPE_Delete(Snpe_SNPE_Handle_t h) {
    CHECK(h, Network, MAGIC_NETWORK)
    while (self->nreg) unregister_at(self, 0);
#ifndef _WIN32
    if (self->counters != local_counters) munmap(self->counters, sizeof(int64_t) * MAX_RUNTIMES);
#endif
    self->magic = MAGIC_DEAD;
    free(self);
    return SNPE_SUCCESS;
}

static Snpe_StringList_Handle_t one_name(const char* name) {
    StringList* l = (StringList*)make(sizeof(StringList), MAGIC_STRINGS);
    if (l) {
        snprintf(l->names[0], sizeof l->names[0], "%s", name);
        l->len = 1;
    }
    return l;
}

Snpe_StringList_Handle_t Snpe_SNPE_GetInputTensorNames(Snpe_SNPE_Handle_t h) {
    CHECK_OR_NULL(h, Network, MAGIC_NETWORK)
    return one_name("data");
}

Snpe_StringList_Handle_t Snpe_SNPE_GetOutputTensorNames(Snpe_SNPE_Handle_t h) {
    CHECK_OR_NULL(h, Network, MAGIC_NETWORK)
    return one_name("result");
}

size_t Snpe_StringList_Size(Snpe_StringList_Handle_t h) {
    StringList* l = (StringList*)h;
    return l && l->magic == MAGIC_STRINGS ? l->len : 0;
}

const char* Snpe_StringList_At(Snpe_StringList_Handle_t h, size_t idx) {
    StringList* l = (StringList*)h;
    return l && l->magic == MAGIC_STRINGS && idx < l->len ? l->names[idx] : NULL;
}

Snpe_ErrorCode_t Snpe_StringList_Delete(Snpe_StringList_Handle_t h) { DELETE(h, StringList, MAGIC_STRINGS) }

Snpe_StringList_Handle_t Snpe_StringList_Create(void) { return make(sizeof(StringList), MAGIC_STRINGS); }

Snpe_ErrorCode_t Snpe_StringList_Append(Snpe_StringList_Handle_t h, const char* string) {
    CHECK(h, StringList, MAGIC_STRINGS)
    if (!string || strlen(string) >= 64)
        return fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "Snpe_StringList_Append: null or over-long string%s", NULL);
    if (self->len == MAX_STRINGS)
        return fail(SNPE_ERRORCODE_CAPI_BAD_ALLOC, "Snpe_StringList_Append: the stub holds at most 8 strings%s", NULL);
    strcpy(self->names[self->len++], string);
    return SNPE_SUCCESS;
}

/* ---- UserMemoryMap and registration ---------------------------------------------------- */

Snpe_UserMemoryMap_Handle_t Snpe_UserMemoryMap_Create(void) { return make(sizeof(MemoryMap), MAGIC_MEMMAP); }

Snpe_ErrorCode_t Snpe_UserMemoryMap_Delete(Snpe_UserMemoryMap_Handle_t h) { DELETE(h, MemoryMap, MAGIC_MEMMAP) }

Snpe_ErrorCode_t Snpe_UserMemoryMap_AddFdOffset(Snpe_UserMemoryMap_Handle_t h, const char* name, void* address,
                                                size_t totalAllocatedSize, int32_t fd, uint64_t offset) {
    CHECK(h, MemoryMap, MAGIC_MEMMAP)
    if (!name || strlen(name) >= 64 || !address)
        return fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "Snpe_UserMemoryMap_AddFdOffset: null name or address%s", NULL);
    if (self->len == MAX_REGISTERED)
        return fail(SNPE_ERRORCODE_CAPI_BAD_ALLOC, "Snpe_UserMemoryMap_AddFdOffset: the stub holds at most 1024 entries%s", NULL);
    MemoryEntry* e = &self->entries[self->len++];
    strcpy(e->name, name);
    e->address = address;
    e->total = totalAllocatedSize;
    e->fd = fd;
    e->offset = offset;
    return SNPE_SUCCESS;
}

size_t Snpe_UserMemoryMap_Size(Snpe_UserMemoryMap_Handle_t h) {
    MemoryMap* m = (MemoryMap*)h;
    return m && m->magic == MAGIC_MEMMAP ? m->len : 0;
}

/* Maps every entry's (fd, offset) read-only, as the accelerator would, after checking that the
 * fd really holds `len` bytes there. Nothing is registered unless every entry is valid. */
Snpe_ErrorCode_t Snpe_SNPE_RegisterUserMemoryMappedBuffers(Snpe_SNPE_Handle_t h, Snpe_UserMemoryMap_Handle_t map) {
    CHECK(h, Network, MAGIC_NETWORK)
    MemoryMap* m = (MemoryMap*)map;
    if (!m || m->magic != MAGIC_MEMMAP)
        return fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "Snpe_SNPE_RegisterUserMemoryMappedBuffers: bad memory map%s", NULL);
#ifdef _WIN32
    return fail(SNPE_ERRORCODE_HOST_RUNTIME_TARGET_UNAVAILABLE,
                "the stub verifies registered buffers by mapping their fd, which needs POSIX mmap%s", NULL);
#else
    if (self->nreg + m->len > MAX_REGISTERED)
        return fail(SNPE_ERRORCODE_CAPI_BAD_ALLOC, "the stub registers at most 1024 buffers per network%s", NULL);
    size_t frame = self->model.height * self->model.width * self->model.channels;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t first = self->nreg;
    for (size_t i = 0; i < m->len; i++) {
        const MemoryEntry* e = &m->entries[i];
        size_t len = strcmp(e->name, "data") == 0 ? frame : (e->total > e->offset ? e->total - e->offset : 0);
        struct stat st;
        const char* why = NULL;
        if (e->fd < 0)
            why = "fd -1 (FastRPC-allocated memory) cannot be verified by the stub: pass the buffer's fd";
        else if (fstat(e->fd, &st) != 0)
            why = "the fd is not open in this process";
        else if (e->offset + len > e->total || (uint64_t)st.st_size < e->offset + len)
            why = "offset + tensor size runs past totalAllocatedSize or past the end of the fd";
        uint8_t* own = NULL;
        size_t delta = (size_t)(e->offset % page);
        if (!why) {
            own = (uint8_t*)mmap(NULL, len + delta, PROT_READ, MAP_SHARED, e->fd, (off_t)(e->offset - delta));
            if (own == MAP_FAILED) why = "mmap of the fd failed";
        }
        if (why) {
            while (self->nreg > first) unregister_at(self, self->nreg - 1);
            return fail(SNPE_ERRORCODE_DLSYSTEM_BUFFER_INVALID_PARAM, "Snpe_SNPE_RegisterUserMemoryMappedBuffers: %s", why);
        }
        Registration* r = &self->reg[self->nreg++];
        strcpy(r->name, e->name);
        r->user = (const uint8_t*)e->address + e->offset;
        r->own = own;
        r->own_len = len + delta;
        r->delta = delta;
        r->len = len;
    }
    return SNPE_SUCCESS;
#endif
}

Snpe_ErrorCode_t Snpe_SNPE_DeregisterUserMemoryMappedBuffers(Snpe_SNPE_Handle_t h, Snpe_StringList_Handle_t names) {
    CHECK(h, Network, MAGIC_NETWORK)
    StringList* l = (StringList*)names;
    if (!l || l->magic != MAGIC_STRINGS)
        return fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "Snpe_SNPE_DeregisterUserMemoryMappedBuffers: bad string list%s", NULL);
    for (size_t k = 0; k < l->len; k++)
        for (size_t i = self->nreg; i-- > 0;)
            if (strcmp(self->reg[i].name, l->names[k]) == 0) unregister_at(self, i);
    return SNPE_SUCCESS;
}

/* Stub extension: executions that read a registered buffer through the stub's own mapping of
 * its fd, and executions whose input address was not registered (a real runtime copies those). */
void framebus_stub_run_counts(Snpe_SNPE_Handle_t h, uint64_t* registered, uint64_t* unregistered) {
    Network* n = (Network*)h;
    int ok = n && n->magic == MAGIC_NETWORK;
    if (registered) *registered = ok ? n->registered_runs : 0;
    if (unregistered) *unregistered = ok ? n->unregistered_runs : 0;
}

/* ---- TensorShape, encodings, user buffers, maps --------------------------------------- */

Snpe_TensorShape_Handle_t Snpe_TensorShape_CreateDimsSize(const size_t* dims, size_t size) {
    if ((!dims && size) || size > MAX_DIMS) {
        fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "tensor shape: null dims or rank over 8%s", NULL);
        return NULL;
    }
    Shape* s = (Shape*)make(sizeof(Shape), MAGIC_SHAPE);
    if (s) {
        if (size) memcpy(s->dims, dims, size * sizeof(size_t));
        s->len = size;
    }
    return s;
}

Snpe_ErrorCode_t Snpe_TensorShape_Delete(Snpe_TensorShape_Handle_t h) { DELETE(h, Shape, MAGIC_SHAPE) }

Snpe_UserBufferEncoding_Handle_t Snpe_UserBufferEncodingUnsigned8Bit_Create(void) {
    return make(sizeof(Encoding), MAGIC_ENCODING);
}

Snpe_ErrorCode_t Snpe_UserBufferEncodingUnsigned8Bit_Delete(Snpe_UserBufferEncoding_Handle_t h) {
    DELETE(h, Encoding, MAGIC_ENCODING)
}

Snpe_IUserBuffer_Handle_t Snpe_Util_CreateUserBuffer(void* buffer, size_t bufSize, Snpe_TensorShape_Handle_t strides,
                                                     Snpe_IUserBuffer_Handle_t encoding) {
    Shape* s = (Shape*)strides;
    Encoding* e = (Encoding*)encoding;
    if (!s || s->magic != MAGIC_SHAPE || !e || e->magic != MAGIC_ENCODING) {
        fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "Snpe_Util_CreateUserBuffer: bad strides or encoding handle%s", NULL);
        return NULL;
    }
    if (!buffer || bufSize == 0) {
        fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "Snpe_Util_CreateUserBuffer: null or empty buffer%s", NULL);
        return NULL;
    }
    UserBuffer* ub = (UserBuffer*)make(sizeof(UserBuffer), MAGIC_BUFFER);
    if (ub) {
        ub->address = buffer;
        ub->size = bufSize;
        memcpy(ub->strides, s->dims, sizeof s->dims);
        ub->rank = s->len;
    }
    return ub;
}

Snpe_ErrorCode_t Snpe_IUserBuffer_Delete(Snpe_IUserBuffer_Handle_t h) { DELETE(h, UserBuffer, MAGIC_BUFFER) }

int Snpe_IUserBuffer_SetBufferAddress(Snpe_IUserBuffer_Handle_t h, void* buffer) {
    UserBuffer* ub = (UserBuffer*)h;
    if (!ub || ub->magic != MAGIC_BUFFER || !buffer) {
        fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "Snpe_IUserBuffer_SetBufferAddress: bad handle or null address%s", NULL);
        return 0;
    }
    ub->address = buffer;
    return 1;
}

Snpe_UserBufferMap_Handle_t Snpe_UserBufferMap_Create(void) { return make(sizeof(BufferMap), MAGIC_MAP); }

Snpe_ErrorCode_t Snpe_UserBufferMap_Delete(Snpe_UserBufferMap_Handle_t h) { DELETE(h, BufferMap, MAGIC_MAP) }

Snpe_ErrorCode_t Snpe_UserBufferMap_Add(Snpe_UserBufferMap_Handle_t h, const char* name, Snpe_IUserBuffer_Handle_t b) {
    CHECK(h, BufferMap, MAGIC_MAP)
    UserBuffer* ub = (UserBuffer*)b;
    if (!name || strlen(name) >= 64 || !ub || ub->magic != MAGIC_BUFFER)
        return fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "Snpe_UserBufferMap_Add: bad name or buffer%s", NULL);
    for (size_t i = 0; i < self->len; i++) {
        if (strcmp(self->names[i], name) == 0) {
            self->buffers[i] = ub;
            return SNPE_SUCCESS;
        }
    }
    if (self->len == MAX_BUFFERS) return fail(SNPE_ERRORCODE_CAPI_BAD_ARGUMENT, "user buffer map full%s", NULL);
    snprintf(self->names[self->len], 64, "%s", name);
    self->buffers[self->len++] = ub;
    return SNPE_SUCCESS;
}

static UserBuffer* find(BufferMap* m, const char* name) {
    for (size_t i = 0; i < m->len; i++)
        if (strcmp(m->names[i], name) == 0) return m->buffers[i]->magic == MAGIC_BUFFER ? m->buffers[i] : NULL;
    return NULL;
}

/* ---- the "model" ----------------------------------------------------------------------- */

uint64_t framebus_stub_checksum(const uint8_t* p, size_t n) {
    const uint64_t prime = 0x00000100000001b3ull;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8); /* little-endian targets only (x86-64, aarch64) */
        h = (h ^ w) * prime;
    }
    for (; i < n; i++) h = (h ^ p[i]) * prime;
    return h ^ (uint64_t)n;
}

static void put_u64(uint8_t* o, uint64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static void put_u32(uint8_t* o, uint32_t v) {
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (8 * i));
}

Snpe_ErrorCode_t Snpe_SNPE_ExecuteUserBuffers(Snpe_SNPE_Handle_t h, Snpe_UserBufferMap_Handle_t in,
                                              Snpe_UserBufferMap_Handle_t out) {
    CHECK(h, Network, MAGIC_NETWORK)
    BufferMap* im = (BufferMap*)in;
    BufferMap* om = (BufferMap*)out;
    if (!im || im->magic != MAGIC_MAP || !om || om->magic != MAGIC_MAP)
        return fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "Snpe_SNPE_ExecuteUserBuffers: bad buffer map%s", NULL);
    UserBuffer* ib = find(im, "data");
    UserBuffer* ob = find(om, "result");
    if (!ib) return fail(SNPE_ERRORCODE_CONFIG_WRONG_INPUT_NAME, "no user buffer for input tensor 'data'%s", NULL);
    if (!ob) return fail(SNPE_ERRORCODE_DLSYSTEM_MISSING_BUFFER, "no user buffer for output tensor 'result'%s", NULL);
    const Container* m = &self->model;
    size_t row = m->width * m->channels;
    if (ib->size != m->height * row || ib->rank != 3 || ib->strides[0] != row || ib->strides[1] != m->channels ||
        ib->strides[2] != 1)
        return fail(SNPE_ERRORCODE_DLSYSTEM_SIZE_MISMATCH,
                    "input 'data' must be H x W x C uint8, packed, of the container's size%s", NULL);
    if (ob->size < STUB_OUTPUT_BYTES)
        return fail(SNPE_ERRORCODE_DLSYSTEM_SIZE_MISMATCH, "output 'result' needs 80 bytes%s", NULL);

    double start = now_ms();
    int rt = (int)self->runtime & (MAX_RUNTIMES - 1);
    __atomic_fetch_add(&self->counters[rt], 1, __ATOMIC_SEQ_CST);

    /* The pixels, in place: the input buffer's address is the caller's memory (a slot). When
       that address was registered with its fd, read it through the stub's own mapping of the
       fd instead, as an accelerator reads a registered dma-buf. */
    const uint8_t* px = (const uint8_t*)ib->address;
    const Registration* via = NULL;
    for (size_t i = 0; i < self->nreg; i++)
        if (strcmp(self->reg[i].name, "data") == 0 && self->reg[i].user == px && self->reg[i].len == ib->size)
            via = &self->reg[i];
    if (via) px = via->own + via->delta;
    uint64_t cells[GRID * GRID] = {0}, count[GRID * GRID] = {0}, total = 0;
    for (size_t y = 0; y < m->height; y += 2) {
        const uint8_t* r = px + y * row;
        size_t cy = y * GRID / m->height;
        for (size_t x = 0; x < m->width; x += 2) {
            const uint8_t* p = r + x * m->channels;
            /* BT.601 luma from B, G, R (a single channel counts as luma) */
            uint32_t luma = m->channels >= 3 ? (29u * p[0] + 150u * p[1] + 77u * p[2]) >> 8 : p[0];
            size_t c = cy * GRID + x * GRID / m->width;
            cells[c] += luma;
            count[c]++;
            total += luma;
        }
    }
    uint8_t grid[GRID * GRID];
    uint32_t changed = 0;
    uint64_t samples = 0;
    for (int c = 0; c < GRID * GRID; c++) {
        grid[c] = (uint8_t)(count[c] ? cells[c] / count[c] : 0);
        samples += count[c];
        int d = (int)grid[c] - (int)self->previous[c];
        if (!self->has_previous || d > 8 || d < -8) changed++;
    }
    memcpy(self->previous, grid, sizeof grid);
    self->has_previous = 1;


    /* The runtime's time: `work` ms of exclusive work, shared with the instances running now. */
    self->rng ^= self->rng << 13;
    self->rng ^= self->rng >> 7;
    self->rng ^= self->rng << 17;
    double u = (double)(self->rng >> 11) / 9007199254740992.0; /* [0, 1) */
    double work = m->base_ms + m->jitter_ms * (2.0 * u - 1.0);
    double done = 0, t = start;
    for (;;) {
        double now = now_ms();
        int64_t k = __atomic_load_n(&self->counters[rt], __ATOMIC_SEQ_CST);
        if (k < 1) k = 1;
        done += (now - t) / (1.0 + m->contention * (double)(k - 1));
        t = now;
        if (done >= work) break;
        double left = (work - done) * (1.0 + m->contention * (double)(k - 1));
        sleep_ms(left < 1.0 ? left : 1.0);
    }
    __atomic_fetch_sub(&self->counters[rt], 1, __ATOMIC_SEQ_CST);

    /* The checksum last, over the whole buffer: if anyone wrote the input while the call was
       running (the slot must stay untouched while it is held), the result shows it. */
    uint64_t sum = framebus_stub_checksum(px, ib->size);
    if (via) {
        if (framebus_stub_checksum((const uint8_t*)ib->address, ib->size) != sum)
            return fail(SNPE_ERRORCODE_NETWORK_EXECUTION_FAILED,
                        "the registered fd/offset do not hold the bytes at the user buffer's address%s", NULL);
        self->registered_runs++;
    } else {
        self->unregistered_runs++;
    }
    uint8_t* o = (uint8_t*)ob->address;
    put_u64(o, sum);
    put_u32(o + 8, changed);
    put_u32(o + 12, (uint32_t)(samples ? total / samples : 0));
    memcpy(o + 16, grid, sizeof grid);
    return SNPE_SUCCESS;
}

/* ---- version ------------------------------------------------------------------------- */

static const uint32_t version_magic = MAGIC_VERSION;

Snpe_DlVersion_Handle_t Snpe_Util_GetLibraryVersion(void) { return (void*)&version_magic; }

const char* Snpe_DlVersion_ToString(Snpe_DlVersion_Handle_t h) {
    return h == &version_magic ? "framebus-snpe-stub 0.1 (not the Qualcomm SDK)" : NULL;
}

Snpe_ErrorCode_t Snpe_DlVersion_Delete(Snpe_DlVersion_Handle_t h) {
    return h == &version_magic ? SNPE_SUCCESS : fail(SNPE_ERRORCODE_CAPI_BAD_HANDLE, "bad version handle%s", NULL);
}
