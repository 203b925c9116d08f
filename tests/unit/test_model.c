/* Unit tests for the generated AWS model tables and their lookups
 * (aws/model.c, aws/models_gen.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/model.h"

static const char *source_dir(void)
{
    const char *dir = getenv("AVIARY_SOURCE_DIR");

    return dir != NULL && dir[0] != '\0' ? dir : AVIARY_SOURCE_DIR;
}

/* Every "service Operation" line of aws/api/operations.txt resolves. */
static void test_every_listed_operation_is_found(void **state)
{
    char path[4096];
    char line[256];
    FILE *f;
    int n = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/aws/api/operations.txt", source_dir());
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char svc_name[64];
        char op_name[128];
        const struct aws_service_model *svc;
        const struct aws_operation *op;
        char *hash = strchr(line, '#');

        if (hash != NULL)
            *hash = '\0';
        if (sscanf(line, "%63s %127s", svc_name, op_name) != 2)
            continue;
        svc = aws_model_service(svc_name);
        if (svc == NULL)
            fail_msg("service %s not compiled in", svc_name);
        op = aws_model_operation(svc, op_name);
        if (op == NULL)
            fail_msg("operation %s %s not found", svc_name, op_name);
        assert_string_equal(op->name, op_name);
        assert_non_null(op->http_method);
        assert_non_null(op->request_uri);
        assert_int_equal(op->request_uri[0], '/');
        if (op->input != AWS_NO_SHAPE)
            assert_int_equal(aws_model_shape(svc, op->input)->type, AWS_SHAPE_STRUCTURE);
        if (op->output != AWS_NO_SHAPE)
            assert_int_equal(aws_model_shape(svc, op->output)->type, AWS_SHAPE_STRUCTURE);
        n++;
    }
    fclose(f);
    assert_true(n > 100);
}

/* Operations are sorted (binary search relies on it) and every index in
 * every table points inside the service's shape table. */
static void test_tables_are_consistent(void **state)
{
    (void)state;
    assert_true(aws_n_service_models >= 12);
    for (size_t s = 0; s < aws_n_service_models; s++) {
        const struct aws_service_model *svc = aws_service_models[s];

        assert_ptr_equal(aws_model_service(svc->name), svc);
        for (size_t i = 1; i < svc->n_operations; i++)
            assert_true(strcmp(svc->operations[i - 1].name, svc->operations[i].name) < 0);
        for (size_t i = 0; i < svc->n_shapes; i++) {
            const struct aws_shape *sh = &svc->shapes[i];

            if (sh->type == AWS_SHAPE_LIST)
                assert_non_null(aws_model_shape(svc, sh->member));
            if (sh->type == AWS_SHAPE_MAP) {
                assert_non_null(aws_model_shape(svc, sh->key));
                assert_non_null(aws_model_shape(svc, sh->value));
            }
            for (uint16_t m = 0; m < sh->n_members; m++)
                assert_non_null(aws_model_shape(svc, sh->members[m].shape));
        }
    }
}

static void test_lookup_misses(void **state)
{
    const struct aws_service_model *ecs = aws_model_service("ecs");

    (void)state;
    assert_null(aws_model_service("nosuchservice"));
    assert_null(aws_model_service(NULL));
    assert_non_null(ecs);
    assert_null(aws_model_operation(ecs, "NoSuchOperation"));
    assert_null(aws_model_operation(ecs, "createService"));
    assert_null(aws_model_operation(NULL, "CreateService"));
    assert_non_null(aws_model_operation(ecs, "CreateCluster")); /* first */
    assert_non_null(aws_model_operation(ecs, "UpdateService")); /* last */
    assert_null(aws_model_shape(ecs, AWS_NO_SHAPE));
    assert_null(aws_model_shape(ecs, (uint16_t)ecs->n_shapes));
}

static void check_suffix(const char *service, const char *want)
{
    const struct aws_service_model *svc = aws_model_service(service);
    char out[64];

    assert_non_null(svc);
    assert_int_equal(aws_model_env_suffix(svc, out, sizeof(out)), 0);
    assert_string_equal(out, want);
}

static void test_env_suffix(void **state)
{
    char small[8];

    (void)state;
    check_suffix("elbv2", "ELASTIC_LOAD_BALANCING_V2");
    check_suffix("application-autoscaling", "APPLICATION_AUTO_SCALING");
    check_suffix("logs", "CLOUDWATCH_LOGS");
    check_suffix("cloudwatch", "CLOUDWATCH");
    check_suffix("s3", "S3");
    check_suffix("ecs", "ECS");
    check_suffix("sagemaker", "SAGEMAKER");
    assert_int_equal(aws_model_env_suffix(aws_model_service("elbv2"), small, sizeof(small)), -1);
    assert_string_equal(small, "");
}

static void test_service_metadata(void **state)
{
    const struct aws_service_model *svc;

    (void)state;
    svc = aws_model_service("ecs");
    assert_int_equal(svc->protocol, AWS_PROTOCOL_JSON);
    assert_string_equal(svc->json_version, "1.1");
    assert_string_equal(svc->target_prefix, "AmazonEC2ContainerServiceV20141113");
    svc = aws_model_service("elbv2");
    assert_int_equal(svc->protocol, AWS_PROTOCOL_QUERY);
    assert_string_equal(svc->api_version, "2015-12-01");
    assert_string_equal(svc->endpoint_prefix, "elasticloadbalancing");
    assert_string_equal(svc->signing_name, "elasticloadbalancing");
    svc = aws_model_service("ec2");
    assert_int_equal(svc->protocol, AWS_PROTOCOL_EC2);
    svc = aws_model_service("s3");
    assert_int_equal(svc->protocol, AWS_PROTOCOL_REST_XML);
    svc = aws_model_service("iam");
    assert_string_equal(svc->global_endpoint, "iam.amazonaws.com");
    svc = aws_model_service("ecr");
    assert_string_equal(svc->endpoint_prefix, "api.ecr");
    assert_string_equal(svc->signing_name, "ecr");
    svc = aws_model_service("sts");
    assert_true(aws_model_operation(svc, "AssumeRoleWithWebIdentity")->unsigned_auth);
    assert_false(aws_model_operation(svc, "AssumeRole")->unsigned_auth);
    assert_string_equal(aws_model_operation(svc, "AssumeRole")->result_wrapper, "AssumeRoleResult");
}

static void test_pagination(void **state)
{
    const struct aws_pagination *p;

    (void)state;
    p = aws_model_operation(aws_model_service("ec2"), "DescribeSubnets")->pagination;
    assert_non_null(p);
    assert_string_equal(p->input_token[0], "NextToken");
    assert_null(p->input_token[1]);
    assert_string_equal(p->output_token[0], "NextToken");
    assert_string_equal(p->result_key[0], "Subnets");
    assert_string_equal(p->limit_key, "MaxResults");
    assert_null(p->more_results);

    p = aws_model_operation(aws_model_service("s3"), "ListObjectsV2")->pagination;
    assert_non_null(p);
    assert_string_equal(p->input_token[0], "ContinuationToken");
    assert_string_equal(p->output_token[0], "NextContinuationToken");
    assert_string_equal(p->result_key[0], "Contents");
    assert_string_equal(p->result_key[1], "CommonPrefixes");
    assert_null(p->result_key[2]);
    assert_string_equal(p->limit_key, "MaxKeys");
    assert_string_equal(p->more_results, "IsTruncated");

    p = aws_model_operation(aws_model_service("elbv2"), "DescribeTargetGroups")->pagination;
    assert_non_null(p);
    assert_string_equal(p->input_token[0], "Marker");
    assert_string_equal(p->output_token[0], "NextMarker");
    assert_string_equal(p->result_key[0], "TargetGroups");
    assert_string_equal(p->limit_key, "PageSize");

    /* List-valued tokens. */
    p = aws_model_operation(aws_model_service("s3"), "ListObjectVersions")->pagination;
    assert_string_equal(p->input_token[0], "KeyMarker");
    assert_string_equal(p->input_token[1], "VersionIdMarker");
    assert_null(p->input_token[2]);
    assert_string_equal(p->output_token[1], "NextVersionIdMarker");
    assert_string_equal(p->result_key[2], "CommonPrefixes");
    assert_null(p->result_key[3]);

    assert_null(aws_model_operation(aws_model_service("ecs"), "CreateService")->pagination);
}

/* Member traits the serializers and parsers depend on. */
static const struct aws_member *find_member(const struct aws_service_model *svc,
                                            const struct aws_shape *sh, const char *name)
{
    for (uint16_t i = 0; i < sh->n_members; i++) {
        if (strcmp(sh->members[i].name, name) == 0)
            return &sh->members[i];
    }
    (void)svc;
    return NULL;
}

static void test_member_traits(void **state)
{
    const struct aws_service_model *s3 = aws_model_service("s3");
    const struct aws_service_model *ec2 = aws_model_service("ec2");
    const struct aws_operation *op;
    const struct aws_shape *in;
    const struct aws_member *m;

    (void)state;
    op = aws_model_operation(s3, "PutObject");
    in = aws_model_shape(s3, op->input);
    m = find_member(s3, in, "Bucket");
    assert_int_equal(m->location, AWS_LOC_URI);
    assert_true(m->flags & AWS_MEMBER_REQUIRED);
    m = find_member(s3, in, "Body");
    assert_true(m->flags & AWS_MEMBER_PAYLOAD);
    assert_true(aws_model_shape(s3, m->shape)->flags & AWS_SHAPE_STREAMING);
    m = find_member(s3, in, "Metadata");
    assert_int_equal(m->location, AWS_LOC_HEADERS);
    assert_string_equal(m->location_name, "x-amz-meta-");
    assert_false(op->checksum_required);

    op = aws_model_operation(s3, "PutBucketVersioning");
    assert_true(op->checksum_required);
    assert_string_equal(op->request_uri, "/{Bucket}?versioning");
    in = aws_model_shape(s3, op->input);
    m = find_member(s3, in, "VersioningConfiguration");
    assert_true(m->flags & AWS_MEMBER_PAYLOAD);
    assert_string_equal(aws_model_shape(s3, m->shape)->xml_namespace,
                        "http://s3.amazonaws.com/doc/2006-03-01/");

    op = aws_model_operation(ec2, "CreateNatGateway");
    in = aws_model_shape(ec2, op->input);
    m = find_member(ec2, in, "ClientToken");
    assert_true(m->flags & AWS_MEMBER_IDEMPOTENCY_TOKEN);

    op = aws_model_operation(ec2, "DescribeSubnets");
    in = aws_model_shape(ec2, op->input);
    m = find_member(ec2, in, "Filters");
    assert_string_equal(m->location_name, "Filter");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_listed_operation_is_found),
        cmocka_unit_test(test_tables_are_consistent),
        cmocka_unit_test(test_lookup_misses),
        cmocka_unit_test(test_env_suffix),
        cmocka_unit_test(test_service_metadata),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_member_traits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
