/* `aviary doctor`: shows how aviary would reach AWS — region, where the
 * credentials come from, the endpoint of every service (with overrides) —
 * and proves it with a signed STS GetCallerIdentity call. Read-only; never
 * prints a secret. Main thread. */
#include <stdio.h>
#include <string.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "aws/http.h"
#include "aws/model.h"
#include "controller/cmd.h"

static void doctor_usage(FILE *out)
{
    fprintf(out, "usage: aviary doctor\n"
                 "\n"
                 "Shows the AWS region, the credentials' source (the access key id masked), each\n"
                 "service's endpoint (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> overrides\n"
                 "included) and the caller identity from a signed STS GetCallerIdentity call.\n"
                 "Exit 0 when AWS answered, 1 otherwise.\n");
}

/* "AKIA************MPLE": enough to recognise a key, not to use it. */
static void mask_key(const char *key, char *out, size_t len)
{
    size_t n = strlen(key);

    if (n <= 8) {
        snprintf(out, len, "****");
        return;
    }
    snprintf(out, len, "%.4s%.*s%s", key, (int)(n - 8), "************************", key + n - 4);
}

static void print_endpoints(const char *region)
{
    printf("Endpoints:\n");
    for (size_t i = 0; i < aws_n_service_models; i++) {
        const struct aws_service_model *svc = aws_service_models[i];
        struct aws_endpoint ep;
        struct aws_error err;
        if (aws_endpoint_resolve(svc, region, NULL, &ep, &err) != 0)
            printf("  %-24s error: %s\n", svc->name, err.message);
        else
            printf("  %-24s %s%s\n", svc->name, ep.url, ep.overridden ? "  (override)" : "");
    }
}

int cmd_doctor(int argc, char **argv)
{
    char region[64], masked[64];
    struct aws_http *http = NULL;
    struct aws_credentials_provider *provider = NULL;
    struct aws_client *client = NULL;
    struct aws_credentials creds;
    struct aws_error err;
    json_t *out = NULL;
    int rc = 1;

    memset(&creds, 0, sizeof(creds));
    if (cmd_wants_help(argc, argv)) {
        doctor_usage(stdout);
        return 0;
    }
    if (argc > 1) {
        doctor_usage(stderr);
        return 2;
    }
    if (aws_region_resolve(aws_env_default(), region, sizeof(region)) != 0) {
        printf("Region:      not configured (set AWS_REGION or a profile's region)\n");
        return 1;
    }
    printf("Region:      %s (partition %s)\n", region, aws_endpoint_partition(region));
    http = aws_http_new(NULL);
    provider = http ? aws_credentials_provider_chain_new(aws_env_default(), http, region) : NULL;
    if (provider == NULL) {
        fprintf(stderr, "aviary doctor: out of memory\n");
        goto out;
    }
    if (aws_credentials_get(provider, &creds, &err) != 0) {
        printf("Credentials: none found: %s\n", err.message);
        print_endpoints(region);
        goto out;
    }
    mask_key(creds.access_key_id, masked, sizeof(masked));
    printf("Credentials: %s (access key %s%s)\n", creds.source, masked,
           creds.session_token[0] ? ", temporary" : "");
    aws_credentials_clear(&creds);
    print_endpoints(region);

    struct aws_client_config cfg = {.region = region, .credentials = provider, .http = http};
    if (aws_client_new(&cfg, &client, &err) != 0) {
        printf("Client:      %s\n", err.message);
        goto out;
    }
    if (aws_call(client, "sts", "GetCallerIdentity", NULL, &out, &err) != 0) {
        printf("Identity:    STS GetCallerIdentity failed: %s: %s (HTTP %ld, request %s)\n",
               err.code, err.message, err.http_status, err.request_id[0] ? err.request_id : "-");
        goto out;
    }
    {
        const char *account = json_string_value(json_object_get(out, "Account"));
        const char *arn = json_string_value(json_object_get(out, "Arn"));
        printf("Identity:    account %s, %s\n", account ? account : "?", arn ? arn : "?");
    }
    rc = 0;
out:
    json_decref(out);
    aws_client_free(client);
    aws_credentials_provider_free(provider);
    aws_http_free(http);
    return rc;
}
