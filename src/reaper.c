// socker-mpi-reaper: the first process of an engine-mode container (docs/docker.md), bound
// read-only from the host at /.socker-mpi/reaper and run as the user. It
//  - checks that each bind the launcher resolved shows, at its target, the very file (dev:ino)
//    the launcher checked as the user: a path swapped before the engine mounted it runs nothing;
//  - runs the command, forwards the signals the engine delivers (docker kill: TERM, INT, HUP,
//    QUIT, USR1, USR2) to it, and ends with its status (128+S when a signal S ended it);
//  - watches the launcher (a pidfd, its start time checked against pid reuse): when the
//    launcher dies, even by SIGKILL, the command is killed and the reaper ends, so the container
//    ends with its rank (the engine kills what is left in its cgroup and removes it).
// usage: socker-mpi-reaper --parent PID START [--check=DEV:INO:PATH]... [--scratch=DIR] [--umask=N]
//                          -- CMD [ARGS...]      (N: the umask, in decimal)
// Exit: the command's status; 77 a bind was swapped; 126/127 the command cannot be run/found;
// 137 the launcher is gone; 64 usage. Static, so it runs in any image.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static void die(int code, const char* fmt, const char* arg) {
    fprintf(stderr, "socker-mpi: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    _exit(code);
}

// Field 22 of /proc/PID/stat (after the command name, which may hold spaces and parentheses).
static unsigned long long start_time(long pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char* p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (; *p && field < 22; ++p)
        if (*p == ' ') ++field;
    return strtoull(p, NULL, 10);
}

static int check_bind(const char* spec) {
    char* end;
    unsigned long long dev = strtoull(spec, &end, 10);
    if (*end != ':') return -1;
    unsigned long long ino = strtoull(end + 1, &end, 10);
    if (*end != ':' || end[1] != '/') return -1;
    const char* path = end + 1;
    struct stat st;
    if (stat(path, &st) != 0 || (unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
        die(77, "%s: not the file the launcher checked (changed before the engine mounted it); nothing run",
            path);
    return 0;
}

// The launcher's generated files (passwd, group), mounted by now: removed here too, so that a
// launcher killed right after the start leaves none on the host's /tmp (the user's own files).
static void remove_scratch(const char* dir) {
    if (strncmp(dir, "/tmp/socker-mpi-engine.", 23) != 0 || strchr(dir + 23, '/')) return;
    DIR* d = opendir(dir);
    if (!d) return;
    for (struct dirent* e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

int main(int argc, char** argv) {
    const char* scratch = NULL;
    long parent = 0;
    unsigned long long parent_start = 0;
    mode_t mask = 022;
    int i = 1;
    for (; i < argc; ++i) {
        if (strcmp(argv[i], "--") == 0) {
            ++i;
            break;
        }
        if (strcmp(argv[i], "--parent") == 0 && i + 2 < argc) {
            parent = strtol(argv[i + 1], NULL, 10);
            parent_start = strtoull(argv[i + 2], NULL, 10);
            i += 2;
        } else if (strncmp(argv[i], "--check=", 8) == 0) {
            if (check_bind(argv[i] + 8) != 0) die(64, "bad --check '%s'", argv[i]);
        } else if (strncmp(argv[i], "--scratch=", 10) == 0) {
            scratch = argv[i] + 10;
        } else if (strncmp(argv[i], "--umask=", 8) == 0) {
            mask = (mode_t)strtoul(argv[i] + 8, NULL, 10);
        } else {
            die(64, "reaper: unknown argument '%s'", argv[i]);
        }
    }
    if (i >= argc || parent <= 0)
        die(64, "%s", "reaper: usage: --parent PID START [--check=...] -- CMD [ARGS...]");

    if (scratch) remove_scratch(scratch);

    sigset_t set, old;
    sigemptyset(&set);
    const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT, SIGWINCH};
    for (size_t k = 0; k < sizeof forwarded / sizeof *forwarded; ++k) sigaddset(&set, forwarded[k]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)parent, 0);
    if (pidfd < 0 || start_time(parent) != parent_start) _exit(137);  // the launcher is gone
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) die(70, "signalfd: %s", strerror(errno));

    pid_t child = fork();
    if (child < 0) die(70, "fork: %s", strerror(errno));
    if (child == 0) {
        close(pidfd);
        close(sfd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        umask(mask);
        execvp(argv[i], argv + i);
        const int e = errno;
        fprintf(stderr, "socker-mpi: %s: %s\n", argv[i],
                e == ENOENT ? "command not found in the image" : strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            die(70, "poll: %s", strerror(errno));
        }
        if (fds[1].revents) {  // the launcher died: so does the rank's container
            kill(child, SIGKILL);
            _exit(137);
        }
        if (!fds[0].revents) continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof si) != sizeof si) continue;
        if (si.ssi_signo != SIGCHLD) {
            kill(child, (int)si.ssi_signo);
            continue;
        }
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            if (p == child) _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
}
