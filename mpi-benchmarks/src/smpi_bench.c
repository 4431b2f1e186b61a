/* smpi-bench - OSU-style MPI micro-benchmarks for socker-mpi, CSV on stdout.
 *
 *   smpi-bench [BENCHMARK...] [--min SIZE] [--max SIZE] [--iters N] [--warmup N]
 *              [--window N] [--quick] [--validate] [--check] [--no-header] [--corrupt]
 *
 * BENCHMARK: init latency bw bibw allreduce alltoall, or all (the default).
 * Output: "benchmark,size_bytes,iterations,value,unit" then one row per (benchmark, size),
 * written by rank 0 only.  See ../README.md for the method and the exit codes.
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <math.h>
#include <mpi.h>

#include "smpi_common.h"

#define PROG "smpi-bench"
#define LARGE_MESSAGE_SIZE 8192 /* OSU: fewer iterations above this size */
#define DEFAULT_MIN ((size_t)1)
#define DEFAULT_MAX ((size_t)4 << 20)
#define MAX_MESSAGE_SIZE ((size_t)1 << 30)
#define DEFAULT_WINDOW 64
#define MAX_WINDOW 1024
#define VALIDATE_WINDOW_BYTES ((size_t)64 << 20) /* cap on window*size with --validate */
#define TAG_DATA 100
#define TAG_ACK 101

enum exit_code { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_FAILED = 2 };

enum bench { B_INIT, B_LATENCY, B_BW, B_BIBW, B_ALLREDUCE, B_ALLTOALL, B_COUNT };

struct bench_info {
    const char* name;
    const char* alias;
    const char* unit;
    bool pt2pt;       /* runs between ranks 0 and 1 only */
    long iters_small; /* OSU-like defaults: iterations / warm-up for size <= 8 KiB ... */
    long warmup_small;
    long iters_large; /* ... and above */
    long warmup_large;
};

static const struct bench_info BENCH[B_COUNT] = {
    [B_INIT] = {"init", NULL, "us", false, 1, 0, 1, 0},
    [B_LATENCY] = {"latency", "pingpong", "us", true, 10000, 100, 1000, 10},
    [B_BW] = {"bw", "bandwidth", "MB/s", true, 100, 10, 20, 2},
    [B_BIBW] = {"bibw", "bibandwidth", "MB/s", true, 100, 10, 20, 2},
    [B_ALLREDUCE] = {"allreduce", NULL, "us", false, 1000, 100, 100, 10},
    [B_ALLTOALL] = {"alltoall", NULL, "us", false, 1000, 100, 100, 10},
};

/* The order "all" runs in. */
static const enum bench ALL_ORDER[B_COUNT] = {B_INIT, B_LATENCY, B_BW, B_BIBW, B_ALLREDUCE, B_ALLTOALL};

#define MAX_SELECTED 64

struct options {
    enum bench selected[MAX_SELECTED];
    int nselected;
    bool from_all; /* benchmarks came from "all": skip point-to-point on 1 rank */
    size_t min, max;
    long iters;  /* -1: per-benchmark default */
    long warmup; /* -1: per-benchmark default */
    long window;
    bool quick, validate, check, header, corrupt, help;
};

struct ctx {
    MPI_Comm comm;
    int rank, nranks;
    const struct options* opt;
    double init_us; /* this rank: start of main -> MPI_Init returned */
};

/* Result of one (benchmark, size) measurement. */
struct result {
    double value; /* meaningful on rank 0 */
    long errors;  /* data mismatches seen by this rank */
};

static void usage(FILE* f) {
    fprintf(f, "usage: " PROG
               " [BENCHMARK...] [options]\n"
               "\n"
               "BENCHMARK (default: all; several may be given, or comma-separated):\n"
               "  init       MPI_Init wall time from the start of main, max over ranks (us)\n"
               "  latency    ping-pong between ranks 0 and 1, one-way latency (us)\n"
               "  bw         ranks 0 -> 1, window of non-blocking sends, bandwidth (MB/s)\n"
               "  bibw       ranks 0 <-> 1, both directions at once, bandwidth (MB/s)\n"
               "  allreduce  MPI_Allreduce of floats (MPI_SUM), average latency over ranks (us)\n"
               "  alltoall   MPI_Alltoall, SIZE bytes per peer, average latency over ranks (us)\n"
               "  all        init latency bw bibw allreduce alltoall\n"
               "\n"
               "options:\n"
               "  --min SIZE     smallest message size in bytes (default 1; K, M, G suffixes = KiB...)\n"
               "  --max SIZE     largest message size (default 4M); sizes double from --min\n"
               "  --iters N      timed iterations per size (default: OSU-like, fewer above 8 KiB)\n"
               "  --warmup N     untimed warm-up iterations per size\n"
               "  --window N     messages in flight per iteration for bw/bibw (default 64)\n"
               "  --quick        10x fewer iterations than the defaults\n"
               "  --validate     fill send buffers with a rank/iteration pattern, verify every\n"
               "                 received message; exit 2 on a mismatch (adds to the times)\n"
               "  --check        correctness mode for tests: --validate, --quick iteration counts\n"
               "                 unless --iters/--warmup are given, values must be finite and > 0\n"
               "  --no-header    do not print the CSV header line\n"
               "  --corrupt      testing aid: flip one received byte on one rank, so --validate\n"
               "                 must fail (proves the check can fail)\n"
               "  -h, --help     this text\n"
               "\n"
               "output (stdout, rank 0): benchmark,size_bytes,iterations,value,unit\n"
               "exit status: 0 ok, 1 usage error, 2 data validation or sanity check failed\n");
}

static bool bench_by_name(const char* name, size_t len, struct options* o) {
    if (len == 3 && strncmp(name, "all", 3) == 0) {
        for (int i = 0; i < B_COUNT; i++) {
            if (o->nselected >= MAX_SELECTED) return false;
            o->selected[o->nselected++] = ALL_ORDER[i];
        }
        o->from_all = true;
        return true;
    }
    for (int b = 0; b < B_COUNT; b++) {
        const struct bench_info* bi = &BENCH[b];
        bool match = (strlen(bi->name) == len && strncmp(name, bi->name, len) == 0) ||
                     (bi->alias && strlen(bi->alias) == len && strncmp(name, bi->alias, len) == 0);
        if (match) {
            if (o->nselected >= MAX_SELECTED) return false;
            o->selected[o->nselected++] = (enum bench)b;
            return true;
        }
    }
    return false;
}

/* Parses argv into *o.  On error writes a message into err and returns false. */
static bool parse_args(int argc, char** argv, struct options* o, char* err, size_t errlen) {
    *o = (struct options){.min = DEFAULT_MIN,
                          .max = DEFAULT_MAX,
                          .iters = -1,
                          .warmup = -1,
                          .window = DEFAULT_WINDOW,
                          .header = true};
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* val = NULL;
        const char* eq = NULL;
        if (strncmp(a, "--", 2) == 0 && (eq = strchr(a, '=')) != NULL) val = eq + 1;
        size_t alen = eq ? (size_t)(eq - a) : strlen(a);
#define IS(opt) (alen == strlen(opt) && strncmp(a, opt, alen) == 0)
#define NEED_VALUE()                                                              \
    do {                                                                          \
        if (!val) {                                                               \
            if (i + 1 >= argc) {                                                  \
                snprintf(err, errlen, "option %.*s needs a value", (int)alen, a); \
                return false;                                                     \
            }                                                                     \
            val = argv[++i];                                                      \
        }                                                                         \
    } while (0)
#define NO_VALUE()                                                             \
    do {                                                                       \
        if (val) {                                                             \
            snprintf(err, errlen, "option %.*s takes no value", (int)alen, a); \
            return false;                                                      \
        }                                                                      \
    } while (0)
        if (IS("-h") || IS("--help")) {
            o->help = true;
        } else if (IS("--min") || IS("--max")) {
            bool is_min = IS("--min");
            NEED_VALUE();
            size_t v = 0;
            if (!smpi_parse_size(val, &v) || v == 0 || v > MAX_MESSAGE_SIZE) {
                snprintf(err, errlen, "%s wants a size from 1 to 1G, got '%s'", is_min ? "--min" : "--max",
                         val);
                return false;
            }
            if (is_min)
                o->min = v;
            else
                o->max = v;
        } else if (IS("--iters") || IS("--warmup") || IS("--window")) {
            const char* name = IS("--iters") ? "--iters" : IS("--warmup") ? "--warmup" : "--window";
            NEED_VALUE();
            long v = 0;
            long lo = strcmp(name, "--warmup") == 0 ? 0 : 1;
            long hi = strcmp(name, "--window") == 0 ? MAX_WINDOW : 100000000L;
            if (!smpi_parse_long(val, hi, &v) || v < lo) {
                snprintf(err, errlen, "%s wants an integer from %ld to %ld, got '%s'", name, lo, hi, val);
                return false;
            }
            if (strcmp(name, "--iters") == 0)
                o->iters = v;
            else if (strcmp(name, "--warmup") == 0)
                o->warmup = v;
            else
                o->window = v;
        } else if (IS("--quick")) {
            NO_VALUE();
            o->quick = true;
        } else if (IS("--validate")) {
            NO_VALUE();
            o->validate = true;
        } else if (IS("--check")) {
            NO_VALUE();
            o->check = true;
            o->validate = true;
        } else if (IS("--no-header")) {
            NO_VALUE();
            o->header = false;
        } else if (IS("--corrupt")) {
            NO_VALUE();
            o->corrupt = true;
        } else if (a[0] == '-') {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return false;
        } else {
            /* benchmark names, possibly comma-separated */
            const char* p = a;
            while (*p) {
                size_t len = strcspn(p, ",");
                if (len == 0 || !bench_by_name(p, len, o)) {
                    snprintf(err, errlen,
                             "unknown benchmark '%.*s' (one of: init latency bw bibw allreduce "
                             "alltoall all)",
                             (int)len, p);
                    return false;
                }
                p += len;
                if (*p == ',') p++;
            }
        }
#undef IS
#undef NEED_VALUE
#undef NO_VALUE
    }
    if (o->min > o->max) {
        snprintf(err, errlen, "--min (%zu) is larger than --max (%zu)", o->min, o->max);
        return false;
    }
    if (o->corrupt && !o->validate) {
        snprintf(err, errlen, "--corrupt needs --validate or --check");
        return false;
    }
    if (o->nselected == 0) (void)bench_by_name("all", 3, o);
    return true;
}

/* Iterations and warm-up for one benchmark and message size. */
static void choose_iterations(const struct options* o, enum bench b, size_t size, long* iters, long* warmup) {
    const struct bench_info* bi = &BENCH[b];
    bool large = size > LARGE_MESSAGE_SIZE;
    long it = large ? bi->iters_large : bi->iters_small;
    long wu = large ? bi->warmup_large : bi->warmup_small;
    if (o->quick || o->check) {
        it = it / 10 > 0 ? it / 10 : 1;
        wu = wu / 10 > 0 ? wu / 10 : (wu > 0 ? 1 : 0);
    }
    if (o->iters > 0)
        *iters = o->iters;
    else
        *iters = it;
    if (o->warmup >= 0)
        *warmup = o->warmup;
    else
        *warmup = wu;
    if (b == B_INIT) {
        *iters = 1;
        *warmup = 0;
    }
}

static void* xalloc(const struct ctx* c, size_t n) {
    void* p = smpi_alloc(n);
    if (!p) {
        fprintf(stderr, PROG "[rank %d]: cannot allocate %zu bytes\n", c->rank, n);
        MPI_Abort(c->comm, 3);
    }
    return p;
}

static uint32_t seed_for(enum bench b, int src, long slot, long iter, size_t size) {
    return smpi_seed((uint32_t)b * 0x01000193u ^ (uint32_t)size, (uint32_t)src, (uint32_t)slot,
                     (uint32_t)iter);
}

/* --corrupt: flip a byte of the first timed message received by corrupt_rank. */
static void maybe_corrupt(const struct ctx* c, int corrupt_rank, long iter, long warmup, void* buf,
                          size_t n) {
    if (c->opt->corrupt && c->rank == corrupt_rank && iter == warmup && n > 0)
        ((unsigned char*)buf)[n / 2] ^= 0x01u;
}

static void verify_bytes(const struct ctx* c, enum bench b, size_t size, long iter, const char* what,
                         long slot, const void* buf, size_t n, uint32_t seed, long* errors) {
    size_t bad = smpi_verify(buf, n, seed);
    if (bad == n) return;
    if (*errors == 0)
        fprintf(stderr,
                PROG
                "[rank %d]: %s size %zu iteration %ld: data mismatch in %s %ld at byte %zu: "
                "got 0x%02x, expected 0x%02x\n",
                c->rank, BENCH[b].name, size, iter, what, slot, bad, ((const unsigned char*)buf)[bad],
                smpi_pattern_byte(seed, bad));
    (*errors)++;
}

/* Ping-pong between ranks 0 and 1 (osu_latency): value = round-trip time / 2. */
static struct result run_latency(const struct ctx* c, size_t size, long iters, long warmup) {
    struct result res = {0};
    const bool validate = c->opt->validate;
    MPI_Barrier(c->comm);
    if (c->rank > 1) return res;
    unsigned char* sbuf = xalloc(c, size);
    unsigned char* rbuf = xalloc(c, size);
    const int peer = 1 - c->rank;
    const int n = (int)size;
    double t0 = MPI_Wtime();
    for (long i = 0; i < warmup + iters; i++) {
        if (i == warmup) t0 = MPI_Wtime();
        const uint32_t sseed = seed_for(B_LATENCY, c->rank, 0, i, size);
        const uint32_t rseed = seed_for(B_LATENCY, peer, 0, i, size);
        if (c->rank == 0) {
            if (validate) {
                smpi_fill(sbuf, size, sseed, false);
                smpi_fill(rbuf, size, rseed, true);
            }
            MPI_Send(sbuf, n, MPI_BYTE, peer, TAG_DATA, c->comm);
            MPI_Recv(rbuf, n, MPI_BYTE, peer, TAG_DATA, c->comm, MPI_STATUS_IGNORE);
        } else {
            if (validate) smpi_fill(rbuf, size, rseed, true);
            MPI_Recv(rbuf, n, MPI_BYTE, peer, TAG_DATA, c->comm, MPI_STATUS_IGNORE);
            if (validate) smpi_fill(sbuf, size, sseed, false);
            MPI_Send(sbuf, n, MPI_BYTE, peer, TAG_DATA, c->comm);
        }
        if (validate) {
            maybe_corrupt(c, 1, i, warmup, rbuf, size);
            verify_bytes(c, B_LATENCY, size, i, "message", 0, rbuf, size, rseed, &res.errors);
        }
    }
    const double t = MPI_Wtime() - t0;
    res.value = t * 1e6 / (2.0 * (double)iters);
    free(sbuf);
    free(rbuf);
    return res;
}

/* osu_bw / osu_bibw: per iteration a window of MPI_Isend (and MPI_Irecv on the other side),
 * MPI_Waitall; osu_bw ends each iteration with a small ack from rank 1.  Value on rank 0 =
 * bytes moved / elapsed time.  Without --validate all slots share one buffer like OSU; with it
 * each slot has its own buffer and pattern (window reduced so window*size <= 64 MiB). */
static struct result run_bandwidth(const struct ctx* c, enum bench b, size_t size, long iters, long warmup) {
    struct result res = {0};
    const bool validate = c->opt->validate;
    const bool bidir = b == B_BIBW;
    MPI_Barrier(c->comm);
    if (c->rank > 1) return res;
    long window = c->opt->window;
    if (validate) {
        size_t fit = VALIDATE_WINDOW_BYTES / size;
        if (fit < 1) fit = 1;
        if ((size_t)window > fit) window = (long)fit;
    }
    const size_t stride = validate ? size : 0;
    const size_t bufsize = validate ? (size_t)window * size : size;
    const bool sender = bidir || c->rank == 0;
    const bool receiver = bidir || c->rank == 1;
    unsigned char* sbuf = xalloc(c, bufsize);
    unsigned char* rbuf = xalloc(c, bufsize);
    MPI_Request* req = malloc(sizeof(MPI_Request) * 2 * (size_t)window);
    if (!req) MPI_Abort(c->comm, 3);
    const int peer = 1 - c->rank;
    const int n = (int)size;
    double t0 = MPI_Wtime();
    for (long i = 0; i < warmup + iters; i++) {
        if (i == warmup) t0 = MPI_Wtime();
        if (validate) {
            for (long k = 0; k < window; k++) {
                if (sender)
                    smpi_fill(sbuf + (size_t)k * stride, size, seed_for(b, c->rank, k, i, size), false);
                if (receiver) smpi_fill(rbuf + (size_t)k * stride, size, seed_for(b, peer, k, i, size), true);
            }
        }
        int nreq = 0;
        if (receiver)
            for (long k = 0; k < window; k++)
                MPI_Irecv(rbuf + (size_t)k * stride, n, MPI_BYTE, peer, TAG_DATA, c->comm, &req[nreq++]);
        if (sender)
            for (long k = 0; k < window; k++)
                MPI_Isend(sbuf + (size_t)k * stride, n, MPI_BYTE, peer, TAG_DATA, c->comm, &req[nreq++]);
        MPI_Waitall(nreq, req, MPI_STATUSES_IGNORE);
        if (validate && receiver) {
            for (long k = 0; k < window; k++) {
                unsigned char* slot = rbuf + (size_t)k * stride;
                if (k == 0) maybe_corrupt(c, 1, i, warmup, slot, size);
                verify_bytes(c, b, size, i, "window slot", k, slot, size, seed_for(b, peer, k, i, size),
                             &res.errors);
            }
        }
        if (!bidir) {
            long ack = i;
            if (c->rank == 1) {
                MPI_Send(&ack, 1, MPI_LONG, 0, TAG_ACK, c->comm);
            } else {
                ack = -1;
                MPI_Recv(&ack, 1, MPI_LONG, 1, TAG_ACK, c->comm, MPI_STATUS_IGNORE);
                if (ack != i) {
                    if (res.errors == 0)
                        fprintf(stderr, PROG "[rank 0]: bw size %zu iteration %ld: ack carried %ld\n", size,
                                i, ack);
                    res.errors++;
                }
            }
        }
    }
    const double t = MPI_Wtime() - t0;
    const double bytes = (double)size * (double)iters * (double)window * (bidir ? 2.0 : 1.0);
    res.value = bytes / 1e6 / t;
    free(req);
    free(sbuf);
    free(rbuf);
    return res;
}

/* Average over ranks of each rank's mean time per call (OSU default output), in us.
 * Collective: every rank must call it. */
static double mean_over_ranks(const struct ctx* c, double seconds, long iters) {
    double local = seconds * 1e6 / (double)iters;
    double sum = 0.0;
    MPI_Reduce(&local, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, c->comm);
    return sum / (double)c->nranks;
}

static float allreduce_value(int rank, long iter, size_t j) {
    /* small integers: the float sum is exact whatever order MPI adds in (< 2^24 for < 66k ranks) */
    uint32_t v = ((uint32_t)rank * 131u + (uint32_t)j * 7u + (uint32_t)iter * 13u) % 251u + 1u;
    return (float)v;
}

/* osu_allreduce: time each call (barrier between calls, not timed). size = count * 4 bytes. */
static struct result run_allreduce(const struct ctx* c, size_t size, long iters, long warmup) {
    struct result res = {0};
    const bool validate = c->opt->validate;
    const size_t count = size / sizeof(float);
    float* sbuf = xalloc(c, count * sizeof(float));
    float* rbuf = xalloc(c, count * sizeof(float));
    double timer = 0.0;
    MPI_Barrier(c->comm);
    for (long i = 0; i < warmup + iters; i++) {
        if (validate) {
            for (size_t j = 0; j < count; j++) {
                sbuf[j] = allreduce_value(c->rank, i, j);
                rbuf[j] = -1.0f;
            }
        }
        const double t_start = MPI_Wtime();
        MPI_Allreduce(sbuf, rbuf, (int)count, MPI_FLOAT, MPI_SUM, c->comm);
        const double t_stop = MPI_Wtime();
        if (i >= warmup) timer += t_stop - t_start;
        if (validate) {
            if (c->opt->corrupt && c->rank == c->nranks - 1 && i == warmup) rbuf[count / 2] += 1.0f;
            for (size_t j = 0; j < count; j++) {
                float expect = 0.0f;
                for (int r = 0; r < c->nranks; r++) expect += allreduce_value(r, i, j);
                if (rbuf[j] != expect) {
                    if (res.errors == 0)
                        fprintf(stderr,
                                PROG
                                "[rank %d]: allreduce size %zu iteration %ld: element %zu "
                                "is %g, expected %g\n",
                                c->rank, size, i, j, (double)rbuf[j], (double)expect);
                    res.errors++;
                    break;
                }
            }
        }
        MPI_Barrier(c->comm);
    }
    res.value = mean_over_ranks(c, timer, iters);
    free(sbuf);
    free(rbuf);
    return res;
}

/* osu_alltoall: SIZE bytes to every rank (itself included), each call timed. */
static struct result run_alltoall(const struct ctx* c, size_t size, long iters, long warmup) {
    struct result res = {0};
    const bool validate = c->opt->validate;
    const size_t total = size * (size_t)c->nranks;
    unsigned char* sbuf = xalloc(c, total);
    unsigned char* rbuf = xalloc(c, total);
    double timer = 0.0;
    MPI_Barrier(c->comm);
    for (long i = 0; i < warmup + iters; i++) {
        if (validate) {
            for (int p = 0; p < c->nranks; p++) {
                /* block for peer p carries (src=me, slot=p); block from p carries (src=p, slot=me) */
                smpi_fill(sbuf + (size_t)p * size, size, seed_for(B_ALLTOALL, c->rank, p, i, size), false);
                smpi_fill(rbuf + (size_t)p * size, size, seed_for(B_ALLTOALL, p, c->rank, i, size), true);
            }
        }
        const double t_start = MPI_Wtime();
        MPI_Alltoall(sbuf, (int)size, MPI_BYTE, rbuf, (int)size, MPI_BYTE, c->comm);
        const double t_stop = MPI_Wtime();
        if (i >= warmup) timer += t_stop - t_start;
        if (validate) {
            maybe_corrupt(c, c->nranks - 1, i, warmup, rbuf, total);
            for (int p = 0; p < c->nranks; p++)
                verify_bytes(c, B_ALLTOALL, size, i, "block from rank", p, rbuf + (size_t)p * size, size,
                             seed_for(B_ALLTOALL, p, c->rank, i, size), &res.errors);
        }
        MPI_Barrier(c->comm);
    }
    res.value = mean_over_ranks(c, timer, iters);
    free(sbuf);
    free(rbuf);
    return res;
}

static void print_row(enum bench b, size_t size, long iters, double value) {
    const bool us = strcmp(BENCH[b].unit, "us") == 0;
    printf(us ? "%s,%zu,%ld,%.4f,%s\n" : "%s,%zu,%ld,%.3f,%s\n", BENCH[b].name, size, iters, value,
           BENCH[b].unit);
    fflush(stdout);
}

/* Collective over all ranks: sums errors, checks the value (rank 0) and prints the row.
 * Returns EXIT_OK or EXIT_FAILED on every rank. */
static int finish_size(const struct ctx* c, enum bench b, size_t size, long iters, struct result res) {
    long local[2] = {res.errors, 0};
    if (c->rank == 0) {
        print_row(b, size, iters, res.value);
        if (c->opt->check && !(isfinite(res.value) && res.value > 0.0)) {
            fprintf(stderr, PROG ": FAILED: %s size %zu: value %g is not a positive number\n", BENCH[b].name,
                    size, res.value);
            local[1] = 1;
        }
    }
    long total[2] = {0, 0};
    MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, c->comm);
    if (total[0] > 0 && c->rank == 0)
        fprintf(stderr,
                PROG
                ": FAILED: %s size %zu: %ld received message(s) did not match the "
                "data sent (validation)\n",
                BENCH[b].name, size, total[0]);
    return total[0] > 0 || total[1] > 0 ? EXIT_FAILED : EXIT_OK;
}

static int run_benchmark(const struct ctx* c, enum bench b) {
    const struct options* o = c->opt;
    if (b == B_INIT) {
        double max_us = 0.0;
        MPI_Reduce(&c->init_us, &max_us, 1, MPI_DOUBLE, MPI_MAX, 0, c->comm);
        return finish_size(c, b, 0, 1, (struct result){.value = max_us});
    }
    if (BENCH[b].pt2pt && c->nranks < 2) {
        if (c->rank == 0)
            fprintf(stderr, PROG ": %s needs at least 2 ranks (have %d)%s\n", BENCH[b].name, c->nranks,
                    o->from_all ? "; skipped" : "");
        return o->from_all ? EXIT_OK : EXIT_USAGE;
    }
    for (size_t s = o->min; s <= o->max; s *= 2) {
        size_t size = s;
        if (b == B_ALLREDUCE) {
            size = s / sizeof(float) * sizeof(float); /* whole floats; smaller sizes skipped */
            if (size == 0) continue;
        }
        if (b == B_ALLTOALL && size > (size_t)INT_MAX / (size_t)c->nranks) {
            if (c->rank == 0)
                fprintf(stderr, PROG ": alltoall size %zu x %d ranks is too large; stopped\n", size,
                        c->nranks);
            return EXIT_USAGE;
        }
        long iters = 0, warmup = 0;
        choose_iterations(o, b, size, &iters, &warmup);
        struct result res;
        switch (b) {
            case B_LATENCY:
                res = run_latency(c, size, iters, warmup);
                break;
            case B_BW:
            case B_BIBW:
                res = run_bandwidth(c, b, size, iters, warmup);
                break;
            case B_ALLREDUCE:
                res = run_allreduce(c, size, iters, warmup);
                break;
            case B_ALLTOALL:
                res = run_alltoall(c, size, iters, warmup);
                break;
            default:
                res = (struct result){0};
                break;
        }
        int rc = finish_size(c, b, size, iters, res);
        if (rc != EXIT_OK) return rc;
        if (s > o->max / 2) break; /* no overflow when doubling */
    }
    return EXIT_OK;
}

int main(int argc, char** argv) {
    const double t_main = smpi_now(); /* first thing: MPI_Init time counts from here */
    MPI_Init(&argc, &argv);
    const double t_init = smpi_now();

    struct ctx c = {.comm = MPI_COMM_WORLD, .init_us = (t_init - t_main) * 1e6};
    MPI_Comm_rank(c.comm, &c.rank);
    MPI_Comm_size(c.comm, &c.nranks);

    struct options opt;
    char err[256] = "";
    int rc = EXIT_OK;
    if (!parse_args(argc, argv, &opt, err, sizeof err)) {
        if (c.rank == 0) fprintf(stderr, PROG ": %s\n", err);
        rc = EXIT_USAGE;
    } else if (opt.help) {
        if (c.rank == 0) usage(stdout);
    } else {
        c.opt = &opt;
        if (c.rank == 0 && opt.header) {
            printf("benchmark,size_bytes,iterations,value,unit\n");
            fflush(stdout);
        }
        for (int i = 0; i < opt.nselected && rc == EXIT_OK; i++) rc = run_benchmark(&c, opt.selected[i]);
        if (rc == EXIT_FAILED && c.rank == 0) fprintf(stderr, PROG ": FAILED\n");
    }
    MPI_Finalize();
    return rc;
}
