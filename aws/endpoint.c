/* Endpoint resolution per service, region and partition, with the SDKs'
 * environment overrides (see endpoint.h). Any thread. */
#include "aws/endpoint.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct partition {
    const char *name;
    const char *prefix; /* region prefix; NULL for the default partition */
    const char *dns_suffix;
    const char *global_region; /* signing region of global services */
    const char *global_label;  /* host label of global services after the prefix */
};

/* Longest prefixes first: "us-isob-" before "us-iso-". */
static const struct partition partitions[] = {
    {"aws-cn", "cn-", "amazonaws.com.cn", "cn-north-1", "cn-north-1"},
    {"aws-us-gov", "us-gov-", "amazonaws.com", "us-gov-west-1", "us-gov"},
    {"aws-iso-b", "us-isob-", "sc2s.sgov.gov", "us-isob-east-1", "us-isob-east-1"},
    {"aws-iso", "us-iso-", "c2s.ic.gov", "us-iso-east-1", "us-iso-east-1"},
    {"aws", NULL, "amazonaws.com", "us-east-1", NULL},
};

static const struct partition *partition_of(const char *region)
{
    size_t n = sizeof(partitions) / sizeof(partitions[0]);

    for (size_t i = 0; i + 1 < n; i++)
        if (strncmp(region, partitions[i].prefix, strlen(partitions[i].prefix)) == 0)
            return &partitions[i];
    return &partitions[n - 1];
}

const char *aws_endpoint_partition(const char *region)
{
    return partition_of(region ? region : "")->name;
}

/* A region is a DNS label sequence: lower-case letters, digits, '-'. */
static bool region_valid(const char *region)
{
    size_t n = region ? strlen(region) : 0;

    if (n == 0 || n > 63 || region[0] == '-' || region[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = region[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static const char *env_get(const struct aws_env *env, const char *name)
{
    const char *v = env->get ? env->get(env->arg, name) : NULL;
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Parses an override URL into out->url/host/base_path/https. Returns 0 or
 * -1 with *err naming `var`. */
static int parse_override(const char *var, const char *value, struct aws_endpoint *out,
                          struct aws_error *err)
{
    const char *p = value, *host, *host_end, *port = NULL, *path;
    size_t host_len, port_len = 0, path_len;
    bool default_port;

    if (strncasecmp(p, "https://", 8) == 0) {
        out->https = true;
        p += 8;
    } else if (strncasecmp(p, "http://", 7) == 0) {
        out->https = false;
        p += 7;
    } else {
        return aws_error_set(err, AWS_ERR_INVALID,
                             "%s: endpoint URL must start with http:// or "
                             "https://",
                             var);
    }
    host = p;
    if (*p == '[') { /* IPv6 literal */
        const char *close = strchr(p, ']');
        if (close == NULL)
            return aws_error_set(err, AWS_ERR_INVALID, "%s: malformed IPv6 host", var);
        p = close + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#' && *p != '@')
            p++;
    }
    host_end = p;
    host_len = (size_t)(host_end - host);
    if (*p == '@')
        return aws_error_set(err, AWS_ERR_INVALID, "%s: user info is not allowed", var);
    if (*p == ':') {
        port = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        port_len = (size_t)(p - port);
        if (port_len == 0 || port_len > 5 || atoi(port) > 65535 || atoi(port) == 0)
            return aws_error_set(err, AWS_ERR_INVALID, "%s: invalid port", var);
    }
    path = p;
    while (*p && *p != '?' && *p != '#')
        p++;
    if (*p != '\0')
        return aws_error_set(err, AWS_ERR_INVALID, "%s: query or fragment not allowed", var);
    if (*path != '\0' && *path != '/')
        return aws_error_set(err, AWS_ERR_INVALID, "%s: malformed URL", var);
    if (host_len == 0)
        return aws_error_set(err, AWS_ERR_INVALID, "%s: no host", var);
    for (const char *c = host; c < host_end; c++)
        if ((unsigned char)*c <= ' ' || *c == '\\' || *c == '%')
            return aws_error_set(err, AWS_ERR_INVALID, "%s: invalid host", var);
    path_len = strlen(path);
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    for (size_t i = 0; i < path_len; i++)
        if ((unsigned char)path[i] <= ' ')
            return aws_error_set(err, AWS_ERR_INVALID, "%s: invalid path", var);
    default_port = port == NULL || (out->https && port_len == 3 && memcmp(port, "443", 3) == 0) ||
                   (!out->https && port_len == 2 && memcmp(port, "80", 2) == 0);
    if (path_len >= sizeof(out->base_path) ||
        snprintf(out->host, sizeof(out->host), "%.*s%s%.*s", (int)host_len, host,
                 default_port ? "" : ":", default_port ? 0 : (int)port_len,
                 port ? port : "") >= (int)sizeof(out->host))
        return aws_error_set(err, AWS_ERR_INVALID, "%s: URL too long", var);
    memcpy(out->base_path, path, path_len);
    out->base_path[path_len] = '\0';
    if (snprintf(out->url, sizeof(out->url), "%s://%s%s", out->https ? "https" : "http", out->host,
                 out->base_path) >= (int)sizeof(out->url))
        return aws_error_set(err, AWS_ERR_INVALID, "%s: URL too long", var);
    return 0;
}

/* Looks at the override variables. Returns 1 when one applied (out filled),
 * 0 when none is set, -1 on a malformed value. */
static int resolve_override(const struct aws_service_model *svc, const struct aws_env *env,
                            struct aws_endpoint *out, struct aws_error *err)
{
    char var[160] = "AWS_ENDPOINT_URL_";
    const char *v, *ignore = env_get(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    size_t n = strlen(var);

    if (ignore != NULL && strcasecmp(ignore, "true") == 0)
        return 0;
    v = NULL;
    if (aws_model_env_suffix(svc, var + n, sizeof(var) - n) == 0)
        v = env_get(env, var);
    if (v == NULL) {
        snprintf(var, sizeof(var), "AWS_ENDPOINT_URL");
        v = env_get(env, var);
    }
    if (v == NULL)
        return 0;
    if (parse_override(var, v, out, err) != 0)
        return -1;
    out->overridden = true;
    return 1;
}

int aws_endpoint_resolve(const struct aws_service_model *svc, const char *region,
                         const struct aws_env *env, struct aws_endpoint *out, struct aws_error *err)
{
    const struct partition *part;
    const char *signing_region = region;
    int r, n;

    memset(out, 0, sizeof(*out));
    aws_error_clear(err);
    if (svc == NULL)
        return aws_error_set(err, AWS_ERR_INVALID, "unknown service");
    if (!region_valid(region))
        return aws_error_set(err, AWS_ERR_INVALID, "invalid region \"%.64s\"",
                             region ? region : "");
    if (env == NULL)
        env = aws_env_default();
    part = partition_of(region);
    snprintf(out->partition, sizeof(out->partition), "%s", part->name);
    out->signing_name = svc->signing_name;

    r = resolve_override(svc, env, out, err);
    if (r < 0) {
        struct aws_error keep = *err;
        memset(out, 0, sizeof(*out));
        *err = keep;
        return -1;
    }
    if (r == 0) {
        bool global = svc->global_endpoint != NULL && strcmp(svc->name, "s3") != 0 &&
                      strcmp(svc->name, "sts") != 0;

        out->https = true;
        if (global && part->global_label == NULL) {
            n = snprintf(out->host, sizeof(out->host), "%s.%s", svc->endpoint_prefix,
                         part->dns_suffix);
            signing_region = part->global_region;
        } else if (global) {
            n = snprintf(out->host, sizeof(out->host), "%s.%s.%s", svc->endpoint_prefix,
                         part->global_label, part->dns_suffix);
            signing_region = part->global_region;
        } else {
            n = snprintf(out->host, sizeof(out->host), "%s.%s.%s", svc->endpoint_prefix, region,
                         part->dns_suffix);
        }
        if (n < 0 || (size_t)n >= sizeof(out->host))
            return aws_error_set(err, AWS_ERR_INVALID, "endpoint host too long");
        snprintf(out->url, sizeof(out->url), "https://%s", out->host);
    }
    snprintf(out->signing_region, sizeof(out->signing_region), "%s", signing_region);
    return 0;
}
