/* Test support: runs the local AWS emulator (tests/emulator/run-emulator) as
 * a child process on a free loopback port, and builds an aws_client pointed
 * at it with the emulator's test credentials, so reconciler tests exercise
 * real wire protocols, signatures and AWS state. Test main thread. */
#ifndef AVIARY_TEST_EMULATOR_H
#define AVIARY_TEST_EMULATOR_H

#include <jansson.h>
#include <sys/types.h>

#include "aws/client.h"

struct test_emulator {
    pid_t pid;
    int port;
    char url[64];
    char dir[64]; /* temporary directory (port file, log) */
    struct aws_client *client;
};

/* Starts the emulator (delay scale as given, e.g. 0.01) and a client.
 * Returns 0, or -1 when it could not start within 15 s (the log is printed). */
int test_emulator_start(struct test_emulator *emu, double delay_scale);

/* Stops the emulator (SIGTERM, bounded wait) and frees the client. */
void test_emulator_stop(struct test_emulator *emu);

/* Calls the control API: method "GET"/"PUT"/"POST"/"DELETE" on
 * /_emulator/<path> with an optional JSON body (borrowed). Returns the parsed
 * JSON answer (caller decrefs) or NULL. */
json_t *test_emulator_control(struct test_emulator *emu, const char *method, const char *path,
                              const json_t *body);

/* Number of calls recorded by the emulator matching service (NULL: any) and
 * mutating (-1: any, 0: reads, 1: writes). */
int test_emulator_count_calls(struct test_emulator *emu, const char *service, int mutating);

#endif
