/* The CLI's side of aviary's HTTP API: commands that act on a running
 * daemon (status, pause, resume, promote, abort, retry) reach it over its
 * --listen address. Main thread of the CLI process. */
#ifndef AVIARY_CONTROLLER_API_CLIENT_H
#define AVIARY_CONTROLLER_API_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#define API_DEFAULT_SERVER "127.0.0.1:9464"

/* GETs or POSTs path on server ("HOST:PORT" or "http://HOST:PORT"). On an
 * HTTP answer returns its status and sets *body to the parsed JSON (NULL
 * when the body is not JSON; caller decrefs). Returns -1 when the daemon
 * cannot be reached, with a message in errbuf. */
int api_request(const char *server, const char *method, const char *path, json_t **body,
                char *errbuf, size_t errlen);

/* The message of a JSON error body ({"error":{"message"}}) or a fallback. */
const char *api_error_message(const json_t *body);

#endif
