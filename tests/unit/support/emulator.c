/* Runs the local AWS emulator for C tests (see emulator.h). */
#include "emulator.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/http.h"

#define EMU_ACCESS_KEY "AKIDEXAMPLE"
#define EMU_SECRET_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

/* The environment the client sees: the emulator for every endpoint, its
 * test keys, a fixed region, nothing from the real process environment. */
static const char *emu_env_get(void *arg, const char *name)
{
    struct test_emulator *emu = arg;

    if (strcmp(name, "AWS_ENDPOINT_URL") == 0)
        return emu->url;
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return EMU_ACCESS_KEY;
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return EMU_SECRET_KEY;
    if (strcmp(name, "AWS_REGION") == 0)
        return "us-east-1";
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    return NULL;
}

static int64_t emu_env_now(void *arg)
{
    (void)arg;
    return (int64_t)time(NULL);
}

static struct aws_env emu_env;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int test_emulator_start(struct test_emulator *emu, double delay_scale)
{
    char port_file[128], log_file[128], scale[32], script[512], cmd[700];
    const char *src = getenv("AVIARY_SOURCE_DIR");
    struct aws_client_config cfg = {0};
    struct aws_error err;
    FILE *f;

    memset(emu, 0, sizeof(*emu));
    snprintf(emu->dir, sizeof(emu->dir), "/tmp/aviary-emu-XXXXXX");
    if (mkdtemp(emu->dir) == NULL)
        return -1;
    snprintf(port_file, sizeof(port_file), "%s/port", emu->dir);
    snprintf(log_file, sizeof(log_file), "%s/log", emu->dir);
    snprintf(scale, sizeof(scale), "%g", delay_scale);
    snprintf(script, sizeof(script), "%s/tests/emulator/run-emulator",
             src ? src : AVIARY_SOURCE_DIR);
    emu->pid = fork();
    if (emu->pid < 0)
        return -1;
    if (emu->pid == 0) {
        if (freopen(log_file, "w", stdout) == NULL || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        execl(script, script, "--port", "0", "--port-file", port_file, "--delay-scale", scale,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && emu->port == 0; i++) {
        sleep_ms(50);
        f = fopen(port_file, "r");
        if (f != NULL) {
            if (fscanf(f, "%d", &emu->port) != 1)
                emu->port = 0;
            fclose(f);
        }
    }
    if (emu->port == 0) {
        snprintf(cmd, sizeof(cmd), "cat %s >&2", log_file);
        if (system(cmd) != 0)
            fprintf(stderr, "emulator did not start\n");
        test_emulator_stop(emu);
        return -1;
    }
    snprintf(emu->url, sizeof(emu->url), "http://127.0.0.1:%d", emu->port);
    emu_env.get = emu_env_get;
    emu_env.arg = emu;
    emu_env.now = emu_env_now;
    cfg.env = &emu_env;
    cfg.region = "us-east-1";
    if (aws_client_new(&cfg, &emu->client, &err) != 0) {
        fprintf(stderr, "client: %s\n", err.message);
        test_emulator_stop(emu);
        return -1;
    }
    return 0;
}

void test_emulator_stop(struct test_emulator *emu)
{
    char cmd[128];

    aws_client_free(emu->client);
    emu->client = NULL;
    if (emu->pid > 0) {
        kill(emu->pid, SIGTERM);
        for (int i = 0; i < 200; i++) {
            if (waitpid(emu->pid, NULL, WNOHANG) == emu->pid) {
                emu->pid = 0;
                break;
            }
            sleep_ms(50);
        }
        if (emu->pid > 0) {
            kill(emu->pid, SIGKILL);
            waitpid(emu->pid, NULL, 0);
        }
        emu->pid = 0;
    }
    if (emu->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", emu->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", emu->dir);
        emu->dir[0] = '\0';
    }
}

json_t *test_emulator_control(struct test_emulator *emu, const char *method, const char *path,
                              const json_t *body)
{
    struct aws_http *http = aws_http_new(NULL);
    struct aws_http_request req = {0};
    struct aws_http_response resp = {0};
    struct aws_http_header ct = {"Content-Type", "application/json"};
    struct aws_error err;
    char url[512];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *out = NULL;

    snprintf(url, sizeof(url), "%s/_emulator/%s", emu->url, path);
    req.method = method;
    req.url = url;
    req.headers = &ct;
    req.n_headers = 1;
    req.body = (const unsigned char *)text;
    req.body_len = text ? strlen(text) : 0;
    if (http != NULL && aws_http_perform(http, &req, &resp, &err) == 0)
        out = json_loadb((const char *)resp.body, resp.body_len, 0, NULL);
    aws_http_response_clear(&resp);
    aws_http_free(http);
    free(text);
    return out;
}

int test_emulator_count_calls(struct test_emulator *emu, const char *service, int mutating)
{
    char path[128];
    json_t *calls;
    int n;

    snprintf(path, sizeof(path), "calls?%s%s%s", service ? "service=" : "", service ? service : "",
             mutating < 0 ? "" : (mutating ? "&mutating=1" : "&mutating=0"));
    calls = test_emulator_control(emu, "GET", path, NULL);
    n = json_is_array(calls) ? (int)json_array_size(calls) : -1;
    json_decref(calls);
    return n;
}
