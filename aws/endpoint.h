/* Endpoint resolution: the URL, Host and signing scope of a service in a
 * region, as AWS's endpoint rules define them, with the SDKs' endpoint
 * overrides from the environment. Pure function of its inputs; any thread.
 *
 * Standard endpoints: https://{endpointPrefix}.{region}.{dnsSuffix}, the
 * partition chosen by the region's prefix: "cn-" -> aws-cn
 * (amazonaws.com.cn), "us-gov-" -> aws-us-gov (amazonaws.com), "us-iso-" ->
 * aws-iso (c2s.ic.gov), "us-isob-" -> aws-iso-b (sc2s.sgov.gov), anything
 * else -> aws (amazonaws.com).
 *  - IAM is global per partition: iam.amazonaws.com signed for us-east-1;
 *    iam.cn-north-1.amazonaws.com.cn (cn-north-1); iam.us-gov.amazonaws.com
 *    (us-gov-west-1); likewise the ISO partitions. Any other service whose
 *    model names a global endpoint (except S3 and STS) follows the same rule.
 *  - STS is always regional (sts.{region}.amazonaws.com), as current SDKs
 *    default to (sts_regional_endpoints = regional).
 *  - S3 is always regional (s3.{region}.amazonaws.com, also for us-east-1)
 *    and always path-style (https://s3.{region}.amazonaws.com/bucket/key):
 *    virtual-hosted addressing is not used, with or without an override.
 *  - FIPS and dual-stack variants are not supported.
 *
 * Overrides, exactly as the SDKs read them from the environment (the
 * shared config file's endpoint_url settings are not read):
 *  1. AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true (case-insensitive) disables
 *     both variables below;
 *  2. AWS_ENDPOINT_URL_<SERVICE>, where <SERVICE> is the model's serviceId
 *     upper-cased with spaces as underscores (AWS_ENDPOINT_URL_ECS,
 *     AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2,
 *     AWS_ENDPOINT_URL_CLOUDWATCH_LOGS), wins over
 *  3. AWS_ENDPOINT_URL.
 * An empty value counts as unset. The URL is scheme://host[:port][/base]:
 * http or https, no user info, query or fragment; a base path is kept and
 * prefixed to every request path. With an override the signing region is
 * still the configured region and the signing name the model's. */
#ifndef AVIARY_AWS_ENDPOINT_H
#define AVIARY_AWS_ENDPOINT_H

#include <stdbool.h>

#include "aws/credentials.h"
#include "aws/error.h"
#include "aws/model.h"

#define AWS_ENDPOINT_URL_MAX 512

struct aws_endpoint {
    char url[AWS_ENDPOINT_URL_MAX]; /* scheme://host[:port][/base], no trailing '/' */
    char host[256];                 /* Host header value: host, plus :port if not default */
    char base_path[256];            /* "" or "/base" (no trailing '/') */
    char signing_region[64];
    const char *signing_name; /* static, from the model */
    char partition[16];       /* "aws", "aws-cn", ... */
    bool overridden;          /* from an AWS_ENDPOINT_URL* variable */
    bool https;
};

/* Resolves svc's endpoint for `region`, reading overrides from env (NULL:
 * the process environment). Returns 0 with *out filled, or -1 with *err
 * (AWS_ERR_INVALID: a malformed region or override URL; the message names
 * the variable) and *out zeroed. */
int aws_endpoint_resolve(const struct aws_service_model *svc, const char *region,
                         const struct aws_env *env, struct aws_endpoint *out,
                         struct aws_error *err);

/* The partition name of a region ("aws", "aws-cn", "aws-us-gov",
 * "aws-iso", "aws-iso-b"). Static string. */
const char *aws_endpoint_partition(const char *region);

#endif
