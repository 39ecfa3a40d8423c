/*
 * ordered_pipeline: the C side of a C ↔ Python pipeline. A C producer (a decoder's stand-in)
 * writes frames into a segment; worker processes in any language (examples/python/
 * minimal_worker.py) claim them, run their model and post a result each; this program reads the
 * results back in frame order, skips included, on a second thread.
 *
 *   ordered_pipeline NAME FRAMES WIDTH HEIGHT
 *
 * Creates the segment NAME (BGR, 6 slots, work queue, Block, 256 result cells of up to 512
 * bytes), prints "created NAME", waits for a line on stdin (start the workers first), then
 * publishes FRAMES frames (every byte of frame seq is seq % 251), ends the stream, and prints
 * one line per frame in order — "seq N result BYTES" or "seq N skipped CAUSE" — then
 * "in order: R results, S skipped". Exits 1 on any framebus error or an out-of-order frame.
 *
 * Build: cc -std=c11 -pthread -I bindings/c/include ordered_pipeline.c -L target/release -lframebus
 */
#include <framebus.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    fb_segment *seg;
    uint64_t frames;
    int rc;
};

static const char *cause_name(uint32_t cause) {
    switch (cause) {
    case FB_SKIP_DROPPED_OLDEST: return "dropped-oldest";
    case FB_SKIP_DROPPED_NEWEST: return "dropped-newest";
    case FB_SKIP_WORKER_DIED: return "worker-died";
    case FB_SKIP_DEADLINE: return "deadline";
    case FB_SKIP_NO_RESULT: return "no-result";
    case FB_SKIP_OVERFLOW: return "overflow";
    default: return "unknown";
    }
}

/* The producer thread: decode (fill) into each slot in place, publish, then end the stream. */
static void *produce(void *arg) {
    struct job *job = arg;
    fb_producer *p = NULL;
    if (fb_producer_attach(job->seg, &p) != FB_OK) {
        fprintf(stderr, "ordered_pipeline: attach: %s\n", fb_last_error());
        job->rc = 1;
        return NULL;
    }
    for (uint64_t seq = 0; seq < job->frames; seq++) {
        fb_slot slot;
        fb_status st = fb_producer_begin(p, 5000, &slot);
        if (st == FB_DROPPED) {
            continue; /* not under Block; counted by framebus */
        }
        if (st != FB_OK) {
            fprintf(stderr, "ordered_pipeline: begin: %s: %s\n", fb_status_name(st), fb_last_error());
            job->rc = 1;
            break;
        }
        memset(slot.data, (int)(slot.seq % 251u), (size_t)slot.capacity);
        if ((st = fb_producer_publish(p, NULL, NULL)) != FB_OK) { /* NULL: a whole frame */
            fprintf(stderr, "ordered_pipeline: publish: %s\n", fb_last_error());
            job->rc = 1;
            break;
        }
    }
    fb_producer_finish(p); /* the workers' claims and our reader see the end */
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s NAME FRAMES WIDTH HEIGHT\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    struct job job = {NULL, strtoull(argv[2], NULL, 10), 0};
    uint32_t width = (uint32_t)strtoul(argv[3], NULL, 10);
    uint32_t height = (uint32_t)strtoul(argv[4], NULL, 10);
    if (fb_abi_version() != FB_ABI_VERSION) {
        fprintf(stderr, "ordered_pipeline: built for ABI %u, library is ABI %u\n", FB_ABI_VERSION, fb_abi_version());
        return 1;
    }
    fb_spec spec = fb_spec_default(width, height, FB_FORMAT_BGR24, 6);
    spec.result_cells = 256;
    spec.result_max = 512;
    if (fb_segment_create(name, &spec, &job.seg) != FB_OK) {
        fprintf(stderr, "ordered_pipeline: create %s: %s\n", name, fb_last_error());
        return 1;
    }
    fb_reader *reader = NULL;
    if (fb_reader_open(job.seg, &reader) != FB_OK) {
        fprintf(stderr, "ordered_pipeline: reader: %s\n", fb_last_error());
        fb_segment_close(job.seg);
        return 1;
    }
    printf("created %s\n", name);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "ordered_pipeline: stdin closed before the start signal\n");
    }
    pthread_t producer;
    if (pthread_create(&producer, NULL, produce, &job) != 0) {
        fprintf(stderr, "ordered_pipeline: cannot start the producer thread\n");
        return 1;
    }
    /* The ordered reader: every frame in order, its result or why it has none, then the end. */
    uint8_t buf[512];
    uint64_t results = 0, skipped = 0, expect = 0;
    int rc = 0;
    for (;;) {
        fb_result r;
        fb_status st = fb_reader_next(reader, buf, sizeof buf, 10000, &r);
        if (st == FB_END) {
            break;
        }
        if (st == FB_TIMED_OUT) {
            /* No outcome for 10 s: a worker alive but stuck. Give the frame up and go on. */
            fb_reader_skip_head(reader, FB_SKIP_DEADLINE);
            continue;
        }
        if (st != FB_OK) {
            fprintf(stderr, "ordered_pipeline: next: %s: %s\n", fb_status_name(st), fb_last_error());
            rc = 1;
            break;
        }
        if (r.seq != expect) {
            fprintf(stderr, "ordered_pipeline: frame %llu out of order (expected %llu)\n", (unsigned long long)r.seq,
                    (unsigned long long)expect);
            rc = 1;
        }
        expect = r.seq + 1;
        if (r.kind == FB_RESULT_READY) {
            results++;
            printf("seq %llu result %.*s\n", (unsigned long long)r.seq, (int)r.len, (const char *)buf);
        } else {
            skipped++;
            printf("seq %llu skipped %s\n", (unsigned long long)r.seq, cause_name(r.cause));
        }
    }
    pthread_join(producer, NULL);
    printf("in order: %llu results, %llu skipped\n", (unsigned long long)results, (unsigned long long)skipped);
    fflush(stdout);
    fb_reader_close(reader);
    fb_segment_close(job.seg);
    return rc | job.rc;
}
