// frame_worker: a framebus worker in C++ on libframebus, of the same shape as
// examples/python/face_worker.py: claim frames until the end of the stream, run the "model" on
// the slot in place (here: mean brightness and the brightest 16x16 block), post the result as
// JSON, release. Run any number of them under `framebus run`, which tells them the segment:
//
//   framebus run --video harness/media/bbb-720p25.mp4 --workers 2 -- ./frame_worker
//
// Build (one line): c++ -std=c++17 -O2 -I bindings/c/include frame_worker.cpp
//   target/release/libframebus.a -lpthread -ldl -lm -o frame_worker
#include <framebus.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

// RAII for the two handles a worker needs; errors become exceptions with framebus's message.
struct SegmentCloser {
    void operator()(fb_segment *s) const { fb_segment_close(s); }
};
struct ConsumerCloser {
    void operator()(fb_consumer *c) const { fb_consumer_close(c); }
};
using Segment = std::unique_ptr<fb_segment, SegmentCloser>;
using Consumer = std::unique_ptr<fb_consumer, ConsumerCloser>;

void check(fb_status st, const char *what) {
    if (st < 0) {
        throw std::runtime_error(std::string(what) + ": " + fb_status_name(st) + ": " + fb_last_error());
    }
}

// The "model": mean of all bytes, and the top-left corner of the brightest 16x16 block of the
// first channel (a stand-in for a detector's box), read from the slot itself.
std::string infer(const fb_frame &f) {
    const uint32_t w = f.meta.width, h = f.meta.height, px = 3;  // BGR24
    uint64_t sum = 0;
    for (uint64_t i = 0; i < f.meta.payload_len; i++) sum += f.data[i];
    uint64_t best = 0;
    uint32_t bx = 0, by = 0;
    for (uint32_t y = 0; y + 16 <= h; y += 16) {
        for (uint32_t x = 0; x + 16 <= w; x += 16) {
            uint64_t s = 0;
            for (uint32_t dy = 0; dy < 16; dy++)
                for (uint32_t dx = 0; dx < 16; dx++) s += f.data[((y + dy) * w + x + dx) * px];
            if (s > best) best = s, bx = x, by = y;
        }
    }
    char out[160];
    std::snprintf(out, sizeof out, "{\"seq\":%llu,\"mean\":%.2f,\"brightest\":[%u,%u,16,16]}",
                  static_cast<unsigned long long>(f.seq),
                  f.meta.payload_len ? static_cast<double>(sum) / static_cast<double>(f.meta.payload_len) : 0.0, bx, by);
    return out;
}

}  // namespace

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : std::getenv("FRAMEBUS_SEGMENT");
    if (!name) {
        std::fprintf(stderr, "usage: frame_worker SEGMENT (or run it under `framebus run`)\n");
        return 2;
    }
    try {
        if (fb_abi_version() != FB_ABI_VERSION) throw std::runtime_error("libframebus ABI mismatch");
        fb_segment *s = nullptr;
        check(fb_segment_open(name, &s), "open");
        Segment seg(s);
        fb_consumer *c = nullptr;
        check(fb_consumer_register(seg.get(), FB_KIND_WORKER, &c), "register");
        Consumer worker(c);
        for (;;) {
            fb_frame frame;
            fb_status st = fb_consumer_claim(worker.get(), 1000, &frame);
            if (st == FB_END) break;           // the producer finished: we are done
            if (st == FB_TIMED_OUT) continue;  // nothing yet (or the producer is restarting)
            check(st, "claim");
            const std::string result = infer(frame);
            st = fb_consumer_post(worker.get(), &frame, reinterpret_cast<const uint8_t *>(result.data()), result.size(), 5000);
            if (st != FB_LATE) check(st, "post");  // late: the reader gave the frame up; go on
            check(fb_consumer_release(worker.get(), &frame), "release");
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "frame_worker: %s\n", e.what());
        return 1;
    }
    return 0;
}
