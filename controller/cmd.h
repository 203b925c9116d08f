/* The CLI subcommands of the aviary binary: one cmd_<name>.c per command,
 * each with an entry point declared here and a row in main.c's table.
 * Main thread. */
#ifndef AVIARY_CONTROLLER_CMD_H
#define AVIARY_CONTROLLER_CMD_H

#include <stddef.h>
#include <stdio.h>

struct aws_client;
struct manifest_file;
struct manifest_object;
struct reconcile_request;

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

/* cmd_plan.c: `aviary plan FILE`, what apply would do, read calls only */
int cmd_plan(int argc, char **argv);

/* cmd_apply.c: `aviary apply FILE [--wait]`, converge without the daemon */
int cmd_apply(int argc, char **argv);

/* cmd_apply.c, shared with cmd_plan.c. cmd_load_valid loads and validates
 * path; returns the file (free with manifest_file_free) when it has objects
 * and no error, else NULL after printing the errors on stderr as `aviary
 * validate` does. */
struct manifest_file *cmd_load_valid(const char *cmd, const char *path);

/* Creates the AWS client from the environment (caller frees with
 * aws_client_free). Returns 0, or -1 after printing why on stderr. */
int cmd_aws_client(const char *cmd, struct aws_client **out);

/* Fills *req for one converge pass of obj (everything borrowed from the
 * arguments, which must outlive req; now = the current time). */
void cmd_app_request(const struct manifest_object *obj, const char *manifest_dir,
                     struct aws_client *aws, const char *reconcile_id,
                     struct reconcile_request *req);

/* The directory of the manifest file path into out. Returns 0, or -1 when it
 * does not fit. */
int cmd_manifest_dir(const char *path, char *out, size_t len);

#endif
