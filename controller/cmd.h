/* The CLI subcommands of the aviary binary: one cmd_<name>.c per command,
 * each with an entry point declared here and a row in main.c's table.
 * Main thread. */
#ifndef AVIARY_CONTROLLER_CMD_H
#define AVIARY_CONTROLLER_CMD_H

#include <stdio.h>

/* A subcommand. fn receives argv with argv[0] = the command's name and
 * returns the process exit status: 0 success, 1 failure (e.g. invalid
 * manifests), 2 usage error. Every command answers --help (usage on
 * stdout, exit 0). */
struct cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary; /* one line for `aviary help` */
};

/* True when argv[1..] contains -h or --help (before a "--"). */
int cmd_wants_help(int argc, char **argv);

/* cmd_validate.c: `aviary validate FILE|DIR...` */
int cmd_validate(int argc, char **argv);
void cmd_validate_usage(FILE *out);

/* cmd_run.c: `aviary run --source ...`, the daemon */
int cmd_run(int argc, char **argv);

/* cmd_status.c: `aviary status [NAME] [-o json] [--watch]` */
int cmd_status(int argc, char **argv);

/* cmd_control.c: `aviary pause|resume|promote|abort|retry NAME`; argv[0] is
 * the action. */
int cmd_control(int argc, char **argv);

/* cmd_doctor.c: `aviary doctor`, how aviary reaches AWS */
int cmd_doctor(int argc, char **argv);

#endif
