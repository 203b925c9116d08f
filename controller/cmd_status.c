/* `aviary status [NAME] [-o json] [--watch] [--server ADDR]`: the table of
 * every object, or one object's detail, from a running daemon. Main thread. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/api_client.h"
#include "controller/cmd.h"
#include "controller/status_view.h"

static void status_usage(FILE *out)
{
    fprintf(out,
            "usage: aviary status [NAME] [-o json] [--watch] [--server ADDR:PORT]\n"
            "\n"
            "Without NAME: one line per object (name, kind, phase, revision, traffic split,\n"
            "endpoint, age). With NAME: its conditions, rollout, analysis and events.\n"
            "  -o json        print the status object(s) as JSON\n"
            "  --watch        refresh every 2 seconds until interrupted\n"
            "  --server ADDR  the daemon's --listen address (default " API_DEFAULT_SERVER ")\n");
}

/* Finds NAME among the objects (any kind); NULL when absent. Borrowed. */
static json_t *find_by_name(json_t *objects, const char *name)
{
    size_t i;
    json_t *o;

    json_array_foreach(objects, i, o)
    {
        const char *n = json_string_value(json_object_get(o, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return o;
    }
    return NULL;
}

static int show_once(const char *server, const char *name, bool as_json)
{
    char err[512];
    json_t *body = NULL, *shown;
    int code = api_request(server, "GET", "/v1/objects", &body, err, sizeof(err));
    int rc = 1;

    if (code < 0) {
        fprintf(stderr, "aviary status: %s\n", err);
        return 1;
    }
    if (code != 200 || !json_is_array(body)) {
        fprintf(stderr, "aviary status: %s\n", api_error_message(body));
        goto out;
    }
    shown = name ? find_by_name(body, name) : body;
    if (shown == NULL) {
        fprintf(stderr, "aviary status: no object named %s\n", name);
        goto out;
    }
    if (as_json) {
        json_dumpf(shown, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    } else if (name != NULL) {
        status_view_detail(stdout, shown, (int64_t)time(NULL));
    } else {
        status_view_table(stdout, shown, (int64_t)time(NULL));
    }
    fflush(stdout);
    rc = 0;
out:
    json_decref(body);
    return rc;
}

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"watch", no_argument, NULL, 'w'},
        {"server", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = API_DEFAULT_SERVER, *name = NULL;
    bool as_json = false, watch = false;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "o:wh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (strcmp(optarg, "json") != 0) {
                fprintf(stderr, "aviary status: -o supports json\n");
                return 2;
            }
            as_json = true;
            break;
        case 'w':
            watch = true;
            break;
        case 's':
            server = optarg;
            break;
        case 'h':
            status_usage(stdout);
            return 0;
        default:
            status_usage(stderr);
            return 2;
        }
    }
    if (optind < argc)
        name = argv[optind++];
    if (optind != argc) {
        status_usage(stderr);
        return 2;
    }
    for (;;) {
        if (watch && isatty(STDOUT_FILENO))
            fputs("\033[H\033[2J", stdout);
        rc = show_once(server, name, as_json);
        if (!watch)
            return rc;
        sleep(2);
    }
}
