/* argc0 PROGRAM: execve PROGRAM with an empty argument vector (argc == 0), as an attacker would
 * to confuse argv[0]-based logic of a setuid program. */
#include <stdio.h>
#include <unistd.h>
int main(int argc, char** argv) {
    char* const empty_argv[] = {NULL};
    char* const envp[] = {"PATH=/usr/bin:/bin", NULL};
    if (argc < 2) {
        fprintf(stderr, "usage: argc0 PROGRAM\n");
        return 2;
    }
    execve(argv[1], empty_argv, envp);
    perror("execve");
    return 1;
}
