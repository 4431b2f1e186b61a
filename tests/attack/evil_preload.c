/* A library an attacker would put in LD_PRELOAD (or reach through GCONV_PATH): if it is ever
 * loaded into the privileged launcher, its constructor leaves a marker file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    const char* marker = getenv("EVIL_MARKER");
    char buf[64];
    int fd;
    if (!marker) marker = "/tmp/socker-evil-marker";
    fd = open(marker, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) {
        int n = snprintf(buf, sizeof buf, "loaded euid=%d\n", (int)geteuid());
        if (n > 0) (void)!write(fd, buf, (size_t)n);
        close(fd);
    }
}
