/* Unit tests for endpoint resolution: standard endpoints per service and
 * partition, global IAM, regional STS/S3, and the AWS_ENDPOINT_URL*
 * overrides with their precedence, on the real generated models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "aws/endpoint.h"

#define MAX_VARS 8

struct fake_env {
    const char *names[MAX_VARS];
    const char *values[MAX_VARS];
    size_t n;
};

static const char *fake_get(void *arg, const char *name)
{
    struct fake_env *f = arg;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

static void set(struct fake_env *f, const char *name, const char *value)
{
    assert_true(f->n < MAX_VARS);
    f->names[f->n] = name;
    f->values[f->n] = value;
    f->n++;
}

static struct aws_endpoint resolve_ok(const char *service, const char *region, struct fake_env *f)
{
    struct aws_env env = {.get = fake_get, .arg = f};
    struct aws_endpoint ep;
    struct aws_error err;
    const struct aws_service_model *svc = aws_model_service(service);

    assert_non_null(svc);
    assert_int_equal(aws_endpoint_resolve(svc, region, &env, &ep, &err), 0);
    return ep;
}

static void expect(const char *service, const char *region, const char *url,
                   const char *signing_region, const char *signing_name)
{
    struct fake_env f = {0};
    struct aws_endpoint ep = resolve_ok(service, region, &f);

    assert_string_equal(ep.url, url);
    assert_string_equal(ep.host, url + strlen("https://"));
    assert_string_equal(ep.signing_region, signing_region);
    assert_string_equal(ep.signing_name, signing_name);
    assert_string_equal(ep.base_path, "");
    assert_false(ep.overridden);
    assert_true(ep.https);
}

static void test_standard_regional_endpoints(void **state)
{
    (void)state;
    expect("ecs", "eu-central-1", "https://ecs.eu-central-1.amazonaws.com", "eu-central-1", "ecs");
    expect("elbv2", "us-west-2", "https://elasticloadbalancing.us-west-2.amazonaws.com",
           "us-west-2", "elasticloadbalancing");
    expect("ecr", "ap-southeast-2", "https://api.ecr.ap-southeast-2.amazonaws.com",
           "ap-southeast-2", "ecr");
    expect("sagemaker", "eu-west-1", "https://api.sagemaker.eu-west-1.amazonaws.com", "eu-west-1",
           "sagemaker");
    expect("cloudwatch", "us-east-1", "https://monitoring.us-east-1.amazonaws.com", "us-east-1",
           "monitoring");
    expect("logs", "sa-east-1", "https://logs.sa-east-1.amazonaws.com", "sa-east-1", "logs");
    expect("application-autoscaling", "ca-central-1",
           "https://application-autoscaling.ca-central-1.amazonaws.com", "ca-central-1",
           "application-autoscaling");
    expect("ec2", "me-south-1", "https://ec2.me-south-1.amazonaws.com", "me-south-1", "ec2");
    expect("sns", "af-south-1", "https://sns.af-south-1.amazonaws.com", "af-south-1", "sns");
}

static void test_partitions(void **state)
{
    (void)state;
    expect("ecs", "cn-north-1", "https://ecs.cn-north-1.amazonaws.com.cn", "cn-north-1", "ecs");
    expect("elbv2", "cn-northwest-1",
           "https://elasticloadbalancing.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1",
           "elasticloadbalancing");
    expect("ecs", "us-gov-west-1", "https://ecs.us-gov-west-1.amazonaws.com", "us-gov-west-1",
           "ecs");
    expect("ecs", "us-iso-east-1", "https://ecs.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", "ecs");
    expect("ecs", "us-isob-east-1", "https://ecs.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1",
           "ecs");
    assert_string_equal(aws_endpoint_partition("cn-north-1"), "aws-cn");
    assert_string_equal(aws_endpoint_partition("us-gov-east-1"), "aws-us-gov");
    assert_string_equal(aws_endpoint_partition("us-east-1"), "aws");
    assert_string_equal(aws_endpoint_partition("il-central-1"), "aws");
    assert_string_equal(aws_endpoint_partition("us-isob-east-1"), "aws-iso-b");
}

static void test_global_and_regional_special_cases(void **state)
{
    (void)state;
    /* IAM is global per partition, signed for the partition's region. */
    expect("iam", "eu-west-1", "https://iam.amazonaws.com", "us-east-1", "iam");
    expect("iam", "us-east-1", "https://iam.amazonaws.com", "us-east-1", "iam");
    expect("iam", "cn-northwest-1", "https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1", "iam");
    expect("iam", "us-gov-east-1", "https://iam.us-gov.amazonaws.com", "us-gov-west-1", "iam");
    /* STS and S3 are regional, also in us-east-1. */
    expect("sts", "eu-west-1", "https://sts.eu-west-1.amazonaws.com", "eu-west-1", "sts");
    expect("sts", "us-east-1", "https://sts.us-east-1.amazonaws.com", "us-east-1", "sts");
    expect("s3", "us-east-1", "https://s3.us-east-1.amazonaws.com", "us-east-1", "s3");
    expect("s3", "cn-north-1", "https://s3.cn-north-1.amazonaws.com.cn", "cn-north-1", "s3");
}

static void test_service_override_wins_over_generic(void **state)
{
    struct fake_env f = {0};
    struct aws_endpoint ep;
    (void)state;

    set(&f, "AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
    set(&f, "AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", "http://127.0.0.1:5000");
    set(&f, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://logs.local:8080/");
    set(&f, "AWS_ENDPOINT_URL_ECS", "https://ecs.example.com:443");
    ep = resolve_ok("elbv2", "eu-central-1", &f);
    assert_string_equal(ep.url, "http://127.0.0.1:5000");
    assert_string_equal(ep.host, "127.0.0.1:5000");
    assert_true(ep.overridden);
    assert_false(ep.https);
    /* Signing stays with the configured region and the model's name. */
    assert_string_equal(ep.signing_region, "eu-central-1");
    assert_string_equal(ep.signing_name, "elasticloadbalancing");

    ep = resolve_ok("logs", "eu-central-1", &f);
    assert_string_equal(ep.url, "http://logs.local:8080");
    assert_string_equal(ep.host, "logs.local:8080");
    ep = resolve_ok("ecs", "eu-central-1", &f);
    assert_string_equal(ep.url, "https://ecs.example.com"); /* default port dropped */
    assert_string_equal(ep.host, "ecs.example.com");
    assert_true(ep.https);
    /* Services without their own variable take the generic one. */
    ep = resolve_ok("ec2", "eu-central-1", &f);
    assert_string_equal(ep.url, "http://127.0.0.1:4566");
    ep = resolve_ok("iam", "eu-central-1", &f);
    assert_string_equal(ep.url, "http://127.0.0.1:4566");
    assert_string_equal(ep.signing_region, "eu-central-1");
}

static void test_ignore_configured_endpoint_urls(void **state)
{
    struct fake_env f = {0};
    struct aws_endpoint ep;
    (void)state;

    set(&f, "AWS_ENDPOINT_URL", "http://127.0.0.1:4566");
    set(&f, "AWS_ENDPOINT_URL_ECS", "http://127.0.0.1:5000");
    set(&f, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE");
    ep = resolve_ok("ecs", "eu-west-1", &f);
    assert_string_equal(ep.url, "https://ecs.eu-west-1.amazonaws.com");
    assert_false(ep.overridden);
    ep = resolve_ok("ec2", "eu-west-1", &f);
    assert_string_equal(ep.url, "https://ec2.eu-west-1.amazonaws.com");
    /* Anything but "true" leaves the overrides on. */
    f.values[2] = "false";
    ep = resolve_ok("ecs", "eu-west-1", &f);
    assert_string_equal(ep.url, "http://127.0.0.1:5000");
    f.values[2] = "1";
    ep = resolve_ok("ecs", "eu-west-1", &f);
    assert_true(ep.overridden);
}

static void test_override_keeps_base_path_and_empty_is_unset(void **state)
{
    struct fake_env f = {0};
    struct aws_endpoint ep;
    (void)state;

    set(&f, "AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000/minio/api//");
    set(&f, "AWS_ENDPOINT_URL_SNS", "");
    ep = resolve_ok("s3", "us-east-1", &f);
    assert_string_equal(ep.url, "http://127.0.0.1:9000/minio/api");
    assert_string_equal(ep.base_path, "/minio/api");
    assert_string_equal(ep.host, "127.0.0.1:9000");
    ep = resolve_ok("sns", "us-east-1", &f);
    assert_string_equal(ep.url, "https://sns.us-east-1.amazonaws.com");
    f.values[0] = "http://[::1]:8080";
    ep = resolve_ok("s3", "us-east-1", &f);
    assert_string_equal(ep.host, "[::1]:8080");
    f.values[0] = "http://localhost:80/";
    ep = resolve_ok("s3", "us-east-1", &f);
    assert_string_equal(ep.host, "localhost");
    assert_string_equal(ep.url, "http://localhost");
}

static void test_rejects_malformed_input(void **state)
{
    const char *bad[] = {
        "ftp://x",       "localhost:4566", "http://user:pw@h:1", "http://h:99999", "http://h:0",
        "http://h/?q=1", "http://",        "http://h#frag",      "http://h:12ab",  "http://h x"};
    const struct aws_service_model *svc = aws_model_service("ecs");
    struct aws_endpoint ep;
    struct aws_error err;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fake_env f = {0};
        struct aws_env env = {.get = fake_get, .arg = &f};

        set(&f, "AWS_ENDPOINT_URL_ECS", bad[i]);
        assert_int_equal(aws_endpoint_resolve(svc, "eu-west-1", &env, &ep, &err), -1);
        assert_int_equal(err.kind, AWS_ERR_INVALID);
        assert_non_null(strstr(err.message, "AWS_ENDPOINT_URL_ECS"));
        assert_string_equal(ep.url, "");
    }
    {
        struct fake_env f = {0};
        struct aws_env env = {.get = fake_get, .arg = &f};
        const char *regions[] = {"", "EU-WEST-1", "eu-west-1.evil.com", "eu west", "-x", NULL};

        for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
            assert_int_equal(aws_endpoint_resolve(svc, regions[i], &env, &ep, &err), -1);
            assert_int_equal(err.kind, AWS_ERR_INVALID);
        }
        assert_int_equal(aws_endpoint_resolve(NULL, "eu-west-1", &env, &ep, &err), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_regional_endpoints),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_global_and_regional_special_cases),
        cmocka_unit_test(test_service_override_wins_over_generic),
        cmocka_unit_test(test_ignore_configured_endpoint_urls),
        cmocka_unit_test(test_override_keeps_base_path_and_empty_is_unset),
        cmocka_unit_test(test_rejects_malformed_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
