/* aviary's entry point: dispatches the CLI subcommands. Main thread. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("aviary %s\n", AVIARY_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: aviary version\n");
    return 2;
}
