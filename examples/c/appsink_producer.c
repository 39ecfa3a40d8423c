/*
 * appsink_producer: a C producer that hands framebus the buffers a decoder callback gets,
 * as a GStreamer appsink "new-sample" handler would.
 *
 *   appsink_producer NAME FRAMES WIDTH HEIGHT ENDS
 *
 * Creates the segment NAME (BGR frames of WIDTH x HEIGHT, 4 slots, work queue, Block), prints
 * "created", waits for a line on stdin (start the workers first), then delivers FRAMES frames
 * through on_new_sample(), followed by ENDS end-of-stream frames (flags bit 0, one per
 * worker). Byte i of frame seq is (seq*31 + i*7) % 251, which the Rust test workers check.
 * Prints "published N dropped D" and exits 0; any framebus error is printed with its message.
 *
 * Build: cc -std=c11 -I bindings/c/include appsink_producer.c -L target/release -lframebus
 */
#include <framebus.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define END_OF_STREAM 1u

struct sink {
    fb_producer *producer;
    uint64_t published;
    uint64_t dropped;
};

/* What an appsink callback does with a mapped GstBuffer: one call, no slot bookkeeping. A
 * decoder that can write into caller memory would use fb_producer_begin/publish instead and
 * decode straight into slot.data (no copy at all). */
static int on_new_sample(struct sink *sink, const uint8_t *data, size_t len, uint64_t pts_ns, uint32_t flags) {
    fb_frame_meta meta = {0};
    meta.pts_ns = pts_ns;
    meta.capture_ns = pts_ns;
    meta.flags = flags;
    meta.payload_len = len;
    uint64_t seq = 0;
    fb_status st = fb_producer_write(sink->producer, data, len, &meta, 5000, &seq);
    if (st == FB_OK) {
        sink->published++;
        return 0;
    }
    if (st == FB_DROPPED) { /* counted by framebus too; a live source just goes on */
        sink->dropped++;
        return 0;
    }
    fprintf(stderr, "appsink_producer: %s: %s\n", fb_status_name(st), fb_last_error());
    return -1;
}

static void fill(uint8_t *buf, size_t len, uint64_t seq) {
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)((seq * 31u + (uint64_t)i * 7u) % 251u);
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s NAME FRAMES WIDTH HEIGHT ENDS\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    uint64_t frames = strtoull(argv[2], NULL, 10);
    uint32_t width = (uint32_t)strtoul(argv[3], NULL, 10);
    uint32_t height = (uint32_t)strtoul(argv[4], NULL, 10);
    unsigned ends = (unsigned)strtoul(argv[5], NULL, 10);

    if (fb_abi_version() != FB_ABI_VERSION) {
        fprintf(stderr, "appsink_producer: built for ABI %u, library is ABI %u\n", FB_ABI_VERSION, fb_abi_version());
        return 1;
    }
    fb_spec spec = fb_spec_default(width, height, FB_FORMAT_BGR24, 4);
    fb_segment *seg = NULL;
    fb_status st = fb_segment_create(name, &spec, &seg);
    if (st != FB_OK) {
        fprintf(stderr, "appsink_producer: create %s: %s\n", name, fb_last_error());
        return 1;
    }
    struct sink sink = {0};
    st = fb_producer_attach(seg, &sink.producer);
    if (st != FB_OK) {
        fprintf(stderr, "appsink_producer: attach: %s\n", fb_last_error());
        fb_segment_close(seg);
        return 1;
    }
    fb_segment_info info;
    fb_segment_get_info(seg, &info);
    printf("created %s: %llu-byte frames, %u slots, %llu bytes\n", name, (unsigned long long)info.frame_size,
           info.slots, (unsigned long long)info.total_size);
    fflush(stdout);

    char line[16];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "appsink_producer: stdin closed before the start signal\n");
    }

    /* The "decoder": one buffer, refilled per frame, as a pipeline's own pool would be. */
    size_t len = (size_t)info.frame_size;
    uint8_t *buf = malloc(len);
    int rc = buf ? 0 : 1;
    for (uint64_t seq = 0; rc == 0 && seq < frames; seq++) {
        fill(buf, len, seq);
        rc = on_new_sample(&sink, buf, len, seq * 40000000u, 0);
    }
    for (unsigned i = 0; rc == 0 && i < ends; i++) {
        rc = on_new_sample(&sink, buf, len, 0, END_OF_STREAM);
    }
    free(buf);

    fb_segment_get_info(seg, &info);
    printf("published %llu dropped %llu (segment: %llu published, %llu delivered)\n",
           (unsigned long long)sink.published, (unsigned long long)sink.dropped,
           (unsigned long long)info.published, (unsigned long long)info.delivered);
    fflush(stdout);
    /* Wait for the workers to take the end frames before the name goes away. */
    if (!fgets(line, sizeof line, stdin)) {
        /* stdin closed: the caller is done with us either way */
    }
    fb_producer_close(sink.producer);
    fb_segment_close(seg);
    return rc;
}
