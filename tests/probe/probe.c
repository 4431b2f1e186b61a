/* probe: a small static program put inside the test images. It prints what the rank sees, one
 * "key=value" per line, prefixed by "probe[RANK] ", so that integration tests can assert on it. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char* rank(void) {
    const char* r = getenv("SLURM_PROCID");
    if (!r) r = getenv("OMPI_COMM_WORLD_RANK");
    return r ? r : "0";
}

static void status_field(const char* key) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[4096];
    size_t n = strlen(key);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            char* v = line + n + 1;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            printf("probe[%s] %s=%s\n", rank(), key, v);
        }
    }
    fclose(f);
}

static void file_lines(const char* key, const char* path) {
    FILE* f = fopen(path, "r");
    char line[4096];
    if (!f) {
        printf("probe[%s] %s=<%s>\n", rank(), key, strerror(errno));
        return;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        printf("probe[%s] %s=%s\n", rank(), key, line);
    }
    fclose(f);
}

static volatile sig_atomic_t got_term;
static void on_term(int sig) {
    (void)sig;
    got_term = 1;
}

int main(int argc, char** argv) {
    gid_t groups[256];
    int n = getgroups(256, groups);
    char cwd[4096];
    struct stat st;
    printf("probe[%s] uid=%d\nprobe[%s] gid=%d\nprobe[%s] euid=%d\n", rank(), (int)getuid(), rank(),
           (int)getgid(), rank(), (int)geteuid());
    printf("probe[%s] groups=", rank());
    for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", (int)groups[i]);
    printf("\nprobe[%s] pid=%d\n", rank(), (int)getpid());
    printf("probe[%s] cwd=%s\n", rank(), getcwd(cwd, sizeof cwd) ? cwd : "?");
    printf("probe[%s] image_marker=%s\n", rank(),
           stat("/etc/socker-test-image", &st) == 0 ? "present" : "absent");
    printf("probe[%s] no_new_privs=%d\n", rank(), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    status_field("NoNewPrivs");
    status_field("CapEff");
    status_field("CapPrm");
    status_field("CapBnd");
    status_field("CapInh");
    status_field("CapAmb");
    status_field("Cpus_allowed_list");
    status_field("Mems_allowed_list");
    file_lines("cgroup", "/proc/self/cgroup");
    fflush(stdout);
    /* "probe --wait-term SECONDS": report SIGTERM delivery (scancel). */
    if (argc >= 3 && strcmp(argv[1], "--wait-term") == 0) {
        signal(SIGTERM, on_term);
        printf("probe[%s] waiting\n", rank());
        fflush(stdout);
        for (int i = 0; i < atoi(argv[2]) * 10 && !got_term; i++) usleep(100000);
        printf("probe[%s] sigterm=%s\n", rank(), got_term ? "received" : "not-received");
        fflush(stdout);
        return got_term ? 0 : 3;
    }
    /* "probe --exit N": exit status pass-through. */
    if (argc >= 3 && strcmp(argv[1], "--exit") == 0) return atoi(argv[2]);
    return 0;
}
