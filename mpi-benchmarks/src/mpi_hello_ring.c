/* mpi-hello-ring - MPI test program for socker-mpi integration tests.
 *
 *   mpi-hello-ring [--bytes SIZE] [--rounds N] [--expect-ranks N] [--corrupt token|data]
 *
 * Every rank prints "hello from rank R of N on HOST".  Then: a token goes around the ring
 * (each rank checks the value it receives), every rank exchanges a 4 MiB message with its
 * pair partner (rank ^ 1) and with its ring neighbours, and checks every byte.  Rank 0 ends
 * with "RESULT ok ranks=N", or the program exits 2 with "RESULT FAILED ..." and messages on
 * stderr.  Rank 0 also prints "info: ..." lines about the MPI library (see ../README.md).
 */
#define _POSIX_C_SOURCE 200809L

#include <mpi.h>

#include "smpi_common.h"

#define PROG "mpi-hello-ring"
#define DEFAULT_BYTES ((size_t)4 << 20)
#define TAG_TOKEN 1
#define TAG_PAIR 2
#define TAG_SHIFT 3
#define TOKEN_START 0x5EED0000L

struct options {
    size_t bytes;
    long rounds;
    long expect_ranks; /* -1: any */
    bool corrupt_token, corrupt_data, help;
};

static void usage(FILE* f) {
    fprintf(f, "usage: " PROG
               " [options]\n"
               "  --bytes SIZE         bytes per exchanged message (default 4M; K/M suffixes)\n"
               "  --rounds N           exchange rounds (default 2)\n"
               "  --expect-ranks N     fail unless MPI_COMM_WORLD has N ranks (catches a job that\n"
               "                       fell apart into singletons)\n"
               "  --corrupt token|data testing aid: corrupt the ring token or one received byte on\n"
               "                       the last rank, so the run must fail\n"
               "  -h, --help           this text\n"
               "output: 'hello from rank R of N on HOST' per rank; rank 0: 'info: ...' lines, then\n"
               "'RESULT ok ranks=N' (exit 0) or 'RESULT FAILED ranks=N errors=E' (exit 2);\n"
               "exit 1: usage error\n");
}

static bool parse_args(int argc, char** argv, struct options* o, char* err, size_t errlen) {
    *o = (struct options){.bytes = DEFAULT_BYTES, .rounds = 2, .expect_ranks = -1};
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t alen = eq ? (size_t)(eq - a) : strlen(a);
        const char* val = eq ? eq + 1 : NULL;
#define IS(opt) (alen == strlen(opt) && strncmp(a, opt, alen) == 0)
        if (IS("-h") || IS("--help")) {
            o->help = true;
            continue;
        }
        if (!(IS("--bytes") || IS("--rounds") || IS("--expect-ranks") || IS("--corrupt"))) {
            snprintf(err, errlen, "unknown argument '%s' (see --help)", a);
            return false;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option %s needs a value", a);
                return false;
            }
            val = argv[++i];
        }
        if (IS("--bytes")) {
            if (!smpi_parse_size(val, &o->bytes) || o->bytes == 0 || o->bytes > ((size_t)1 << 30)) {
                snprintf(err, errlen, "--bytes wants a size from 1 to 1G, got '%s'", val);
                return false;
            }
        } else if (IS("--rounds")) {
            if (!smpi_parse_long(val, 1000000, &o->rounds) || o->rounds < 1) {
                snprintf(err, errlen, "--rounds wants a positive integer, got '%s'", val);
                return false;
            }
        } else if (IS("--expect-ranks")) {
            if (!smpi_parse_long(val, 1000000000L, &o->expect_ranks) || o->expect_ranks < 1) {
                snprintf(err, errlen, "--expect-ranks wants a positive integer, got '%s'", val);
                return false;
            }
        } else {
            if (strcmp(val, "token") == 0)
                o->corrupt_token = true;
            else if (strcmp(val, "data") == 0)
                o->corrupt_data = true;
            else {
                snprintf(err, errlen, "--corrupt wants 'token' or 'data', got '%s'", val);
                return false;
            }
        }
#undef IS
    }
    return true;
}

/* ---- what the MPI library chose (rank 0, informational) --------------------------------- */

/* Names of the Open MPI MCA components of one framework (e.g. "pml", "btl") mapped into this
 * process after MPI_Init.  Open MPI dlclose()s the components it did not select, so for the
 * pml this is the selected one; for the btl it is the set that initialised (which of them
 * carries traffic to a given peer is not exposed; use --mca btl_base_verbose 100 for that).
 * Linux-only (/proc/self/maps); returns false if nothing was found. */
static bool loaded_components(const char* framework, char* out, size_t outlen) {
    FILE* f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "mca_%s_", framework);
    char names[16][64];
    int n = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        const char* slash = strrchr(line, '/');
        if (!slash) continue;
        const char* base = slash + 1;
        if (strncmp(base, prefix, strlen(prefix)) != 0) continue;
        const char* name = base + strlen(prefix);
        size_t len = strcspn(name, ".\n");
        if (len == 0 || len >= sizeof names[0]) continue;
        bool dup = false;
        for (int k = 0; k < n; k++)
            if (strlen(names[k]) == len && strncmp(names[k], name, len) == 0) dup = true;
        if (!dup && n < 16) {
            memcpy(names[n], name, len);
            names[n][len] = '\0';
            n++;
        }
    }
    fclose(f);
    /* sort for deterministic output */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            char tmp[64];
            memcpy(tmp, names[b], sizeof tmp);
            memcpy(names[b], names[b - 1], sizeof tmp);
            memcpy(names[b - 1], tmp, sizeof tmp);
        }
    out[0] = '\0';
    for (int k = 0; k < n; k++) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", k ? "," : "", names[k]);
    }
    return n > 0;
}

/* Reads an integer or enum MPI_T control variable by name; the value an MCA component
 * registered is its effective setting (e.g. the vader btl sets its single-copy mechanism to
 * "none" when CMA does not work).  Returns false if the variable does not exist. */
static bool read_cvar(const char* want, char* out, size_t outlen) {
    int provided = 0;
    if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return false;
    bool found = false;
    int num = 0;
    MPI_T_cvar_get_num(&num);
    for (int i = 0; i < num && !found; i++) {
        char name[256], desc[16];
        int name_len = (int)sizeof name, desc_len = (int)sizeof desc;
        int verbosity = 0, bind = 0, scope = 0;
        MPI_Datatype dt;
        MPI_T_enum en;
        if (MPI_T_cvar_get_info(i, name, &name_len, &verbosity, &dt, &en, desc, &desc_len, &bind, &scope) !=
            MPI_SUCCESS)
            continue;
        if (strcmp(name, want) != 0 || dt != MPI_INT || bind != MPI_T_BIND_NO_OBJECT) continue;
        MPI_T_cvar_handle h;
        int count = 0;
        if (MPI_T_cvar_handle_alloc(i, NULL, &h, &count) != MPI_SUCCESS) continue;
        int value = 0;
        if (count == 1 && MPI_T_cvar_read(h, &value) == MPI_SUCCESS) {
            snprintf(out, outlen, "%d", value);
            int items = 0;
            char ename[64];
            int ename_len = (int)sizeof ename;
            if (en != MPI_T_ENUM_NULL && MPI_T_enum_get_info(en, &items, ename, &ename_len) == MPI_SUCCESS) {
                for (int k = 0; k < items; k++) {
                    int v = 0;
                    char iname[64];
                    int iname_len = (int)sizeof iname;
                    if (MPI_T_enum_get_item(en, k, &v, iname, &iname_len) == MPI_SUCCESS && v == value) {
                        snprintf(out, outlen, "%s", iname);
                        break;
                    }
                }
            }
            found = true;
        }
        MPI_T_cvar_handle_free(&h);
    }
    MPI_T_finalize();
    return found;
}

/* Which MPI library file this process runs: "info: mapped=DEV INODE PATH" per libmpi* file in
 * /proc/self/maps (DEV as the kernel writes it, hex major:minor), so that a test can tell the
 * host's injected file from the image's own by device and inode. */
static void print_mapped_mpi(void) {
    FILE* f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[4096], seen[8][1024];
    int nseen = 0;
    while (fgets(line, sizeof line, f)) {
        char dev[32], path[1024];
        unsigned long inode = 0;
        if (sscanf(line, "%*s %*s %*s %31s %lu %1023s", dev, &inode, path) != 3) continue;
        const char* base = strrchr(path, '/');
        if (!base || strncmp(base + 1, "libmpi", 6) != 0) continue;
        int dup = 0;
        for (int i = 0; i < nseen; i++) dup |= strcmp(seen[i], path) == 0;
        if (dup || nseen == 8) continue;
        snprintf(seen[nseen++], sizeof seen[0], "%s", path);
        printf("info: mapped=%s %lu %s\n", dev, inode, path);
    }
    fclose(f);
}

static void print_library_info(void) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, "\n")] = '\0';
    int major = 0, minor = 0;
    MPI_Get_version(&major, &minor);
    printf("info: mpi_standard=%d.%d library=%s\n", major, minor, lib);
    char buf[512];
    if (loaded_components("pml", buf, sizeof buf))
        printf("info: pml=%s (Open MPI component loaded after MPI_Init)\n", buf);
    if (loaded_components("btl", buf, sizeof buf))
        printf(
            "info: btl=%s (Open MPI components loaded after MPI_Init; per-peer choice: "
            "--mca btl_base_verbose 100)\n",
            buf);
    if (read_cvar("btl_vader_single_copy_mechanism", buf, sizeof buf))
        printf("info: btl_vader_single_copy_mechanism=%s\n", buf);
    print_mapped_mpi();
    fflush(stdout);
}

/* ---- the checks ----------------------------------------------------------------------- */

struct ctx {
    MPI_Comm comm;
    int rank, nranks;
    const struct options* opt;
    long errors;
};

static void fail(struct ctx* c, const char* what) {
    fprintf(stderr, PROG "[rank %d]: %s\n", c->rank, what);
    c->errors++;
}

/* Token ring: rank 0 starts with TOKEN_START, every rank r adds r + 1, so rank r must receive
 * TOKEN_START + r(r+1)/2 and rank 0 gets back TOKEN_START + N(N+1)/2. */
static void token_ring(struct ctx* c) {
    const int next = (c->rank + 1) % c->nranks;
    const int prev = (c->rank + c->nranks - 1) % c->nranks;
    long token = 0;
    char msg[256];
    if (c->rank == 0) {
        long out = TOKEN_START + 1;
        MPI_Request req;
        MPI_Isend(&out, 1, MPI_LONG, next, TAG_TOKEN, c->comm, &req);
        MPI_Recv(&token, 1, MPI_LONG, prev, TAG_TOKEN, c->comm, MPI_STATUS_IGNORE);
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        const long n = c->nranks;
        const long expect = TOKEN_START + n * (n + 1) / 2;
        if (token != expect) {
            snprintf(msg, sizeof msg, "ring token came back as %ld, expected %ld", token, expect);
            fail(c, msg);
        }
    } else {
        MPI_Recv(&token, 1, MPI_LONG, prev, TAG_TOKEN, c->comm, MPI_STATUS_IGNORE);
        const long r = c->rank;
        const long expect = TOKEN_START + r * (r + 1) / 2;
        if (token != expect) {
            snprintf(msg, sizeof msg, "ring token from rank %d is %ld, expected %ld", prev, token, expect);
            fail(c, msg);
        }
        token += r + 1;
        if (c->opt->corrupt_token && c->rank == c->nranks - 1) token += 1000;
        MPI_Send(&token, 1, MPI_LONG, next, TAG_TOKEN, c->comm);
    }
}

/* One MPI_Sendrecv of opt->bytes with dest/src, pattern seeded by (sender, receiver, round). */
static void exchange(struct ctx* c, const char* kind, int tag, int dest, int src, long round,
                     unsigned char* sbuf, unsigned char* rbuf) {
    const size_t n = c->opt->bytes;
    const uint32_t sseed = smpi_seed((uint32_t)tag, (uint32_t)c->rank, (uint32_t)dest, (uint32_t)round);
    const uint32_t rseed = smpi_seed((uint32_t)tag, (uint32_t)src, (uint32_t)c->rank, (uint32_t)round);
    smpi_fill(sbuf, n, sseed, false);
    smpi_fill(rbuf, n, rseed, true);
    MPI_Status st;
    MPI_Sendrecv(sbuf, (int)n, MPI_BYTE, dest, tag, rbuf, (int)n, MPI_BYTE, src, tag, c->comm, &st);
    char msg[256];
    int got = -1;
    MPI_Get_count(&st, MPI_BYTE, &got);
    if (got != (int)n) {
        snprintf(msg, sizeof msg,
                 "%s exchange round %ld: received %d bytes from rank %d, "
                 "expected %zu",
                 kind, round, got, src, n);
        fail(c, msg);
        return;
    }
    if (c->opt->corrupt_data && c->rank == c->nranks - 1 && round == 0) rbuf[n / 2] ^= 0x01u;
    size_t bad = smpi_verify(rbuf, n, rseed);
    if (bad != n) {
        snprintf(msg, sizeof msg,
                 "%s exchange round %ld: %zu-byte message from rank %d differs "
                 "at byte %zu (got 0x%02x, expected 0x%02x)",
                 kind, round, n, src, bad, rbuf[bad], smpi_pattern_byte(rseed, bad));
        fail(c, msg);
    }
}

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    struct ctx c = {.comm = MPI_COMM_WORLD};
    MPI_Comm_rank(c.comm, &c.rank);
    MPI_Comm_size(c.comm, &c.nranks);

    struct options opt;
    char err[256] = "";
    if (!parse_args(argc, argv, &opt, err, sizeof err) || opt.help) {
        if (c.rank == 0) {
            if (opt.help)
                usage(stdout);
            else
                fprintf(stderr, PROG ": %s\n", err);
        }
        MPI_Finalize();
        return opt.help ? 0 : 1;
    }
    c.opt = &opt;

    char host[MPI_MAX_PROCESSOR_NAME];
    int hlen = 0;
    MPI_Get_processor_name(host, &hlen);
    printf("hello from rank %d of %d on %s\n", c.rank, c.nranks, host);
    fflush(stdout);
    MPI_Barrier(c.comm);
    if (c.rank == 0) print_library_info();

    if (opt.expect_ranks > 0 && opt.expect_ranks != c.nranks) {
        char msg[128];
        snprintf(msg, sizeof msg, "MPI_COMM_WORLD has %d ranks, expected %ld", c.nranks, opt.expect_ranks);
        fail(&c, msg);
    }

    token_ring(&c);

    unsigned char* sbuf = smpi_alloc(opt.bytes);
    unsigned char* rbuf = smpi_alloc(opt.bytes);
    if (!sbuf || !rbuf) {
        fprintf(stderr, PROG "[rank %d]: cannot allocate 2 x %zu bytes\n", c.rank, opt.bytes);
        MPI_Abort(c.comm, 1);
    }
    /* pairs (0,1) (2,3) ...; with an odd count the last rank pairs with itself */
    int partner = c.rank ^ 1;
    if (partner >= c.nranks) partner = c.rank;
    const int next = (c.rank + 1) % c.nranks;
    const int prev = (c.rank + c.nranks - 1) % c.nranks;
    for (long round = 0; round < opt.rounds; round++) {
        exchange(&c, "pair", TAG_PAIR, partner, partner, round, sbuf, rbuf);
        exchange(&c, "ring-shift", TAG_SHIFT, next, prev, round, sbuf, rbuf);
    }
    free(sbuf);
    free(rbuf);

    long total = 0;
    MPI_Allreduce(&c.errors, &total, 1, MPI_LONG, MPI_SUM, c.comm);
    if (c.rank == 0) {
        if (total == 0)
            printf("RESULT ok ranks=%d\n", c.nranks);
        else
            printf("RESULT FAILED ranks=%d errors=%ld\n", c.nranks, total);
        fflush(stdout);
    }
    MPI_Finalize();
    return total == 0 ? 0 : 2;
}
