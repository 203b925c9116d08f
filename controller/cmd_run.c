/* `aviary run`: parses the daemon's options and starts it (daemon.c).
 * Main thread. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "controller/cmd.h"
#include "controller/daemon.h"
#include "reconcilers/duration.h"
#include "controller/log.h"
#include "reconcilers/app.h"
#include "reconcilers/noop.h"
#include "reconcilers/training.h"

/* The default set: every kind with a real reconciler in this build (kinds
 * without one are reported NoReconciler in their status). */
static const struct reconciler *const default_reconcilers[] = {&application_reconciler,
                                                               &training_reconciler, NULL};
static const struct reconciler *const noop_reconcilers[] = {&noop_application_reconciler,
                                                            &noop_training_reconciler, NULL};

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: aviary run --source DIR|s3://BUCKET/PREFIX [options]\n"
            "\n"
            "Runs the controller: watches the manifests in --source and converges AWS to them.\n"
            "\n"
            "  --source DIR|s3://B/P   where the manifests are (required)\n"
            "  --state-dir DIR         status store (default $STATE_DIRECTORY, else\n"
            "                          $HOME/.local/state/aviary)\n"
            "  --listen ADDR:PORT      HTTP API, /metrics, /healthz (default 127.0.0.1:9464)\n"
            "  --resync DURATION       re-check every object this often (default 1m)\n"
            "  --s3-interval DURATION  S3 source polling interval (default 30s)\n"
            "  --deletion-grace DURATION  how long a manifest must stay gone before its\n"
            "                          objects are deleted (default 5s)\n"
            "  --workers N             reconcile worker threads (default 4)\n"
            "  --reconcilers SET       'default', or 'noop' to exercise the controller without\n"
            "                          touching AWS (tests, benchmarks)\n"
            "  --log-format text|json  (default text)\n"
            "  --log-level debug|info|warn|error (default info)\n"
            "\n"
            "SIGTERM/SIGINT finish in-flight reconciles and exit; SIGHUP rescans the source.\n");
}

static int parse_duration_opt(const char *name, const char *value, long *out)
{
    int64_t ms;
    const char *why = NULL;

    if (duration_parse(value, &ms, &why) != 0 || ms <= 0 || ms > 86400000) {
        fprintf(stderr, "aviary run: --%s %s: %s\n", name, value,
                why ? why : "expected a duration between 1ms and 24h, e.g. 30s or 1m");
        return -1;
    }
    *out = (long)ms;
    return 0;
}

static const char *default_state_dir(char *buf, size_t len)
{
    const char *sd = getenv("STATE_DIRECTORY"); /* systemd StateDirectory= */
    const char *home = getenv("HOME");

    if (sd != NULL && *sd != '\0') {
        snprintf(buf, len, "%s", sd);
        return buf;
    }
    snprintf(buf, len, "%s/.local/state/aviary", home && *home ? home : ".");
    return buf;
}

/* mkdir -p for the default state directory's parents (the store creates the
 * directory itself). Failures surface when the store opens it. */
static void make_parents(const char *dir)
{
    char tmp[4096];

    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(tmp, 0700);
        *p = '/';
    }
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"source", required_argument, NULL, 's'},
        {"state-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"resync", required_argument, NULL, 'r'},
        {"s3-interval", required_argument, NULL, 'i'},
        {"deletion-grace", required_argument, NULL, 'g'},
        {"workers", required_argument, NULL, 'w'},
        {"reconcilers", required_argument, NULL, 'R'},
        {"log-format", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct daemon_config cfg = {
        .listen = "127.0.0.1:9464",
        .resync_ms = 60000,
        .s3_interval_ms = 30000,
        .deletion_grace_ms = 5000,
        .workers = 4,
        .reconcilers = default_reconcilers,
    };
    enum log_format fmt = LOG_FORMAT_TEXT;
    enum log_level lvl = LOG_LEVEL_INFO;
    char state_buf[4096];
    bool noop = false;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            cfg.source = optarg;
            break;
        case 'd':
            cfg.state_dir = optarg;
            break;
        case 'l':
            cfg.listen = optarg;
            break;
        case 'r':
            if (parse_duration_opt("resync", optarg, &cfg.resync_ms) != 0)
                return 2;
            break;
        case 'i':
            if (parse_duration_opt("s3-interval", optarg, &cfg.s3_interval_ms) != 0)
                return 2;
            break;
        case 'g':
            if (parse_duration_opt("deletion-grace", optarg, &cfg.deletion_grace_ms) != 0)
                return 2;
            break;
        case 'w':
            cfg.workers = atoi(optarg);
            if (cfg.workers < 1 || cfg.workers > 64) {
                fprintf(stderr, "aviary run: --workers must be 1..64\n");
                return 2;
            }
            break;
        case 'R':
            if (strcmp(optarg, "noop") == 0) {
                noop = true;
            } else if (strcmp(optarg, "default") != 0) {
                fprintf(stderr, "aviary run: --reconcilers must be 'default' or 'noop'\n");
                return 2;
            }
            break;
        case 'f':
            if (log_format_parse(optarg, &fmt) != 0) {
                fprintf(stderr, "aviary run: --log-format must be text or json\n");
                return 2;
            }
            break;
        case 'v':
            if (log_level_parse(optarg, &lvl) != 0) {
                fprintf(stderr, "aviary run: --log-level must be debug, info, warn or error\n");
                return 2;
            }
            break;
        case 'h':
            run_usage(stdout);
            return 0;
        default:
            run_usage(stderr);
            return 2;
        }
    }
    if (cfg.source == NULL || optind != argc) {
        run_usage(stderr);
        return 2;
    }
    if (cfg.state_dir == NULL) {
        cfg.state_dir = default_state_dir(state_buf, sizeof(state_buf));
        make_parents(cfg.state_dir);
    }
    log_init(fmt, lvl);
    if (noop)
        cfg.reconcilers = noop_reconcilers;
    /* AWS is needed for an S3 source and by any reconciler of the default set. */
    cfg.use_aws = strncmp(cfg.source, "s3://", 5) == 0 || !noop;
    return daemon_run(&cfg);
}
