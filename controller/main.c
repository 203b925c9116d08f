/* aviary's entry point: dispatches the CLI subcommands through a table of
 * {name, fn, summary}; each command lives in controller/cmd_<name>.c.
 * Main thread. */
#include <stdio.h>
#include <string.h>

#include "controller/cmd.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* Add a command: write controller/cmd_<name>.c, declare it in cmd.h, and
 * add its row here (the order is the order of `aviary help`). */
static const struct cmd commands[] = {
    {"run", cmd_run, "run the controller on a manifest directory or S3 prefix"},
    {"validate", cmd_validate, "check manifests against the schemas, without AWS access"},
    {"plan", cmd_plan, "show what apply would create, change and delete in AWS (reads only)"},
    {"apply", cmd_apply, "converge the Applications of a file without the daemon (CI/CD)"},
    {"status", cmd_status, "show objects: phase, revision, traffic, endpoint; one in detail"},
    {"pause", cmd_control, "pause an Application's rollout"},
    {"resume", cmd_control, "resume a paused rollout"},
    {"promote", cmd_control, "advance a rollout past its pause (--full: to the end)"},
    {"abort", cmd_control, "roll back to the stable revision now"},
    {"retry", cmd_control, "retry a rolled-back revision"},
    {"doctor", cmd_doctor, "show region, credentials source, endpoints; call STS"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show the commands, or `aviary help COMMAND` for one"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cmd *find_command(const char *name)
{
    size_t i;

    for (i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static void usage(FILE *out)
{
    size_t i;

    fprintf(out, "usage: aviary COMMAND [ARGS...]\n\ncommands:\n");
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun `aviary COMMAND --help` for a command's options.\n");
}

static int cmd_version(int argc, char **argv)
{
    if (cmd_wants_help(argc, argv)) {
        printf("usage: aviary version\n\nPrints aviary's version.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: aviary version\n");
        return 2;
    }
    printf("aviary %s\n", AVIARY_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    const struct cmd *c;
    char help_flag[] = "--help";
    char *sub[3];

    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    c = find_command(argv[1]);
    if (c == NULL || c->fn == cmd_help) {
        if (c == NULL)
            fprintf(stderr, "aviary: unknown command \"%s\"\n\n", argv[1]);
        usage(c == NULL ? stderr : stdout);
        return c == NULL ? 2 : 0;
    }
    sub[0] = argv[1];
    sub[1] = help_flag;
    sub[2] = NULL;
    return c->fn(2, sub);
}

int main(int argc, char **argv)
{
    const struct cmd *c;

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(1, argv);
    c = find_command(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "aviary: unknown command \"%s\"\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->fn(argc - 1, argv + 1);
}
