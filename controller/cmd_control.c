/* `aviary pause|resume|promote|abort|retry NAME [--full] [--server ADDR]`:
 * sends a manual rollout command to a running daemon, which records it as
 * an event and acts on it at once. Main thread. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "controller/api_client.h"
#include "controller/cmd.h"

static void control_usage(FILE *out, const char *action)
{
    fprintf(out,
            "usage: aviary %s NAME [--server ADDR:PORT]%s\n"
            "\n"
            "  pause    stop advancing the Application's rollout (analysis keeps running)\n"
            "  resume   continue a paused rollout\n"
            "  promote  advance past the current pause (--full: skip every remaining step)\n"
            "  abort    roll back to the stable revision now\n"
            "  retry    try a rolled-back revision again\n"
            "  --server ADDR  the daemon's --listen address (default " API_DEFAULT_SERVER ")\n",
            action, strcmp(action, "promote") == 0 ? " [--full]" : "");
}

int cmd_control(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"full", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *action = argv[0], *server = API_DEFAULT_SERVER;
    bool full = false;
    char path[256], err[512];
    json_t *body = NULL;
    int c, code;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'f':
            full = true;
            break;
        case 'h':
            control_usage(stdout, action);
            return 0;
        default:
            control_usage(stderr, action);
            return 2;
        }
    }
    if (optind + 1 != argc || (full && strcmp(action, "promote") != 0)) {
        control_usage(stderr, action);
        return 2;
    }
    snprintf(path, sizeof(path), "/v1/objects/Application/%s/%s%s", argv[optind], action,
             full ? "?full=true" : "");
    code = api_request(server, "POST", path, &body, err, sizeof(err));
    if (code < 0) {
        fprintf(stderr, "aviary %s: %s\n", action, err);
        return 1;
    }
    if (code != 202) {
        fprintf(stderr, "aviary %s: %s\n", action, api_error_message(body));
        json_decref(body);
        return 1;
    }
    printf("%s: %s requested\n", argv[optind], action);
    json_decref(body);
    return 0;
}
