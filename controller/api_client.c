/* HTTP calls from the CLI to the daemon's API (see api_client.h), on the
 * AWS client's libcurl transport. */
#include "controller/api_client.h"

#include <stdio.h>
#include <string.h>

#include "aws/http.h"

int api_request(const char *server, const char *method, const char *path, json_t **body,
                char *errbuf, size_t errlen)
{
    struct aws_http_options opts = {
        .connect_timeout_ms = 2000, .timeout_ms = 10000, .max_response_bytes = 16u * 1024u * 1024u};
    struct aws_http *http = aws_http_new(&opts);
    struct aws_http_response resp = {0};
    struct aws_http_request req = {0};
    struct aws_error err;
    char url[1024];
    int rc = -1;

    *body = NULL;
    if (http == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    snprintf(url, sizeof(url), "%s%s%s", strncmp(server, "http://", 7) == 0 ? "" : "http://",
             server, path);
    req.method = method;
    req.url = url;
    if (aws_http_perform(http, &req, &resp, &err) != 0) {
        snprintf(errbuf, errlen,
                 "cannot reach the aviary daemon at %s: %s (is `aviary run` "
                 "running, and is --server right?)",
                 server, err.message);
        goto out;
    }
    *body = json_loadb((const char *)resp.body, resp.body_len, 0, NULL);
    rc = (int)resp.status;
out:
    aws_http_response_clear(&resp);
    aws_http_free(http);
    return rc;
}

const char *api_error_message(const json_t *body)
{
    const char *m = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    return m ? m : "unexpected answer from the daemon";
}
