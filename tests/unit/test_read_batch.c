/* Unit tests of cross-application read batching (reconcilers/read_batch.c
 * and its use by app_read) against the local AWS emulator: merged calls and
 * their split answers equal the direct answers, the call counts, the
 * freshness bound, invalidation by writes, failed merged calls falling back
 * to the requester's own call, workers racing for one merged call, plan
 * mode and ctx->reads. Test main thread (and worker threads in one case). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcilers/app.h"
#include "reconcilers/read_batch.h"
#include "reconcilers/status.h"
#include "support/emulator.h"

#define MAX_AGE 5000
#define ROUND   60000 /* one resync later */

static int64_t fake_now = 1000;

static int64_t clock_fake(void)
{
    return fake_now;
}

struct fixture {
    struct test_emulator emu;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || test_emulator_start(&f->emu, 0.01) != 0) {
        free(f);
        return -1;
    }
    read_batch_reset();
    read_batch_configure(true, MAX_AGE, clock_fake);
    fake_now = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    read_batch_reset();
    read_batch_configure(true, 0, NULL);
    test_emulator_stop(&f->emu);
    free(f);
    return 0;
}

/* One AWS call that must succeed; returns its output (caller decrefs). */
static json_t *aws(struct fixture *f, const char *svc, const char *op, json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;

    if (aws_call(f->emu.client, svc, op, in, &out, &err) != 0)
        fail_msg("%s.%s: %s: %s", svc, op, err.code, err.message);
    json_decref(in);
    return out;
}

/* Calls of one operation in the emulator's log since the last clear. */
static size_t calls_of(struct fixture *f, const char *operation)
{
    char path[128];
    json_t *calls;
    size_t n;

    snprintf(path, sizeof(path), "calls?operation=%s", operation);
    calls = test_emulator_control(&f->emu, "GET", path, NULL);
    assert_non_null(calls);
    n = json_array_size(calls);
    json_decref(calls);
    return n;
}

static void clear_calls(struct fixture *f)
{
    json_decref(test_emulator_control(&f->emu, "DELETE", "calls", NULL));
}

/* A read through the batcher that must succeed. */
static json_t *batched(struct fixture *f, const char *app, const char *svc, const char *op,
                       json_t *in)
{
    struct aws_error err;
    json_t *out = NULL;
    int rc = read_batch_call(f->emu.client, app, svc, op, in, &out, &err);

    if (rc != 0)
        fail_msg("%s %s.%s: rc %d: %s: %s", app, svc, op, rc, err.code, err.message);
    json_decref(in);
    return out;
}

static json_t *describe_clusters_in(const char *name)
{
    return json_pack("{s:[s], s:[s,s]}", "clusters", name, "include", "TAGS", "SETTINGS");
}

static const char *const APPS[] = {"app0", "app1", "app2", "app3"};

static void create_clusters(struct fixture *f)
{
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "aviary-%s", APPS[i]);
        json_decref(aws(f, "ecs", "CreateCluster", json_pack("{s:s}", "clusterName", name)));
    }
}

/* One round of the four applications' DescribeClusters, 100 ms apart; app3's
 * cluster does not exist. Checks every answer against a direct call. */
static void clusters_round(struct fixture *f)
{
    for (int i = 0; i < 4; i++) {
        char name[32];
        json_t *got, *want;
        snprintf(name, sizeof(name), "aviary-%s", APPS[i]);
        got = batched(f, APPS[i], "ecs", "DescribeClusters", describe_clusters_in(name));
        fake_now += 100;
        want = aws(f, "ecs", "DescribeClusters", describe_clusters_in(name));
        assert_true(
            json_equal(json_object_get(got, "clusters"), json_object_get(want, "clusters")));
        assert_true(
            json_equal(json_object_get(got, "failures"), json_object_get(want, "failures")));
        assert_int_equal(json_array_size(json_object_get(got, "clusters")), i < 3 ? 1 : 0);
        json_decref(got);
        json_decref(want);
    }
}

/* The first round has no history: each application asks alone. The next
 * round, the first one to ask fetches for the other three (one call), and
 * each share is exactly what its own call would have returned. */
static void test_list_merge_and_split(void **state)
{
    struct fixture *f = *state;
    struct read_batch_stats st;

    create_clusters(f);
    clusters_round(f); /* 4 batched (alone) + 4 direct comparisons */
    read_batch_get_stats(&st);
    assert_int_equal(st.direct, 4);
    assert_int_equal(st.merged, 0);

    fake_now += ROUND;
    clear_calls(f);
    clusters_round(f);
    /* One merged call for the four, plus the four direct comparisons. */
    assert_int_equal(calls_of(f, "DescribeClusters"), 1 + 4);
    read_batch_get_stats(&st);
    assert_int_equal(st.merged, 1);
    assert_int_equal(st.prefetched, 3);
    assert_int_equal(st.served, 3);
}

static json_t *vpc_filters_in(const char *app)
{
    return json_pack("{s:[{s:s, s:[s]}, {s:s, s:[s]}]}", "Filters", "Name",
                     "tag:" APP_TAG_MANAGED_BY, "Values", APP_TAG_MANAGED_BY_VALUE, "Name",
                     "tag:" APP_TAG_APPLICATION, "Values", app);
}

/* The item arrays `key` of two answers are equal but for the items' State
 * (a new VPC turns available between two calls). */
static bool same_items(const json_t *a, const json_t *b, const char *key)
{
    json_t *x = json_deep_copy(json_object_get(a, key)),
           *y = json_deep_copy(json_object_get(b, key));
    size_t i;
    json_t *item;
    bool same;

    json_array_foreach(x, i, item)
    {
        json_object_del(item, "State");
    }
    json_array_foreach(y, i, item)
    {
        json_object_del(item, "State");
    }
    same = json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

/* EC2 tag filters are unioned and the answer split by the application tag:
 * each application sees its own VPCs only, as with its own call. */
static void test_ec2_filters(void **state)
{
    struct fixture *f = *state;

    for (int i = 0; i < 3; i++) {
        char cidr[32];
        snprintf(cidr, sizeof(cidr), "10.%d.0.0/16", 40 + i);
        json_decref(aws(f, "ec2", "CreateVpc",
                        json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}, {s:s, s:s}]}]}", "CidrBlock", cidr,
                                  "TagSpecifications", "ResourceType", "vpc", "Tags", "Key",
                                  APP_TAG_MANAGED_BY, "Value", APP_TAG_MANAGED_BY_VALUE, "Key",
                                  APP_TAG_APPLICATION, "Value", APPS[i])));
    }
    for (int round = 0; round < 2; round++) {
        clear_calls(f);
        for (int i = 0; i < 4; i++) {
            json_t *got = batched(f, APPS[i], "ec2", "DescribeVpcs", vpc_filters_in(APPS[i]));
            json_t *want = aws(f, "ec2", "DescribeVpcs", vpc_filters_in(APPS[i]));
            fake_now += 100;
            assert_true(same_items(got, want, "Vpcs"));
            assert_int_equal(json_array_size(json_object_get(got, "Vpcs")), i < 3 ? 1 : 0);
            json_decref(got);
            json_decref(want);
        }
        assert_int_equal(calls_of(f, "DescribeVpcs"), round == 0 ? 4 + 4 : 1 + 4);
        fake_now += ROUND;
    }
}

/* A share older than the bound is never served: the application asks again. */
static void test_freshness_bound(void **state)
{
    struct fixture *f = *state;
    struct read_batch_stats st;
    json_t *got;

    create_clusters(f);
    clusters_round(f);
    fake_now += ROUND;
    clear_calls(f);
    json_decref(batched(f, "app0", "ecs", "DescribeClusters", describe_clusters_in("aviary-app0")));
    assert_int_equal(calls_of(f, "DescribeClusters"), 1);
    fake_now += MAX_AGE; /* exactly the bound: still served */
    json_decref(batched(f, "app1", "ecs", "DescribeClusters", describe_clusters_in("aviary-app1")));
    assert_int_equal(calls_of(f, "DescribeClusters"), 1);
    fake_now += 1; /* past it */
    got = batched(f, "app2", "ecs", "DescribeClusters", describe_clusters_in("aviary-app2"));
    assert_int_equal(calls_of(f, "DescribeClusters"), 2);
    assert_int_equal(json_array_size(json_object_get(got, "clusters")), 1);
    json_decref(got);
    read_batch_get_stats(&st);
    assert_true(st.expired >= 1);
}

/* A write by an application drops what was fetched for it before; other
 * applications' shares stay. A write to IAM drops every shared IAM answer. */
static void test_write_invalidates(void **state)
{
    struct fixture *f = *state;
    const char *role_in = "{\"RoleName\": \"shared-role\"}";

    create_clusters(f);
    json_decref(aws(f, "iam", "CreateRole",
                    json_pack("{s:s, s:s}", "RoleName", "shared-role", "AssumeRolePolicyDocument",
                              "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                              "\"Principal\":{\"Service\":\"ecs-tasks.amazonaws.com\"},"
                              "\"Action\":\"sts:AssumeRole\"}]}")));
    for (int round = 0; round < 2; round++) {
        clear_calls(f);
        for (int i = 0; i < 3; i++) {
            char name[32];
            snprintf(name, sizeof(name), "aviary-%s", APPS[i]);
            if (round == 1 && i == 1) {
                /* app1 wrote after the merged call: its share is not served. */
                read_batch_note_write(f->emu.client, "app1", "ecs");
                /* app0 changed the shared role: nobody gets the old answer. */
                read_batch_note_write(f->emu.client, "app0", "iam");
            }
            json_decref(batched(f, APPS[i], "ecs", "DescribeClusters", describe_clusters_in(name)));
            json_decref(batched(f, APPS[i], "iam", "GetRole", json_loads(role_in, 0, NULL)));
            fake_now += 100;
        }
        if (round == 1) {
            /* app0's merged call, app1 alone again, app2 served. */
            assert_int_equal(calls_of(f, "DescribeClusters"), 2);
            /* app0's shared call; app1 and app2 lost theirs to app0's IAM
             * write: app1 asks again and takes app2's along. */
            assert_int_equal(calls_of(f, "GetRole"), 2);
        }
        fake_now += ROUND;
    }
}

/* A failed merged call (one member's repository was deleted by hand) is
 * never turned into a "not found" for the others: the requester repeats its
 * own request, the members ask for themselves, and the one whose repository
 * is gone gets AWS's own error. */
static void test_failed_merge_falls_back(void **state)
{
    struct fixture *f = *state;
    struct read_batch_stats st;

    for (int i = 0; i < 3; i++)
        json_decref(
            aws(f, "ecr", "CreateRepository", json_pack("{s:s}", "repositoryName", APPS[i])));
    for (int round = 0; round < 2; round++) {
        clear_calls(f);
        if (round == 1)
            json_decref(
                aws(f, "ecr", "DeleteRepository", json_pack("{s:s}", "repositoryName", "app2")));
        for (int i = 0; i < 3; i++) {
            struct aws_error err;
            json_t *out = NULL;
            json_t *in = json_pack("{s:[s]}", "repositoryNames", APPS[i]);
            int rc = read_batch_call(f->emu.client, APPS[i], "ecr", "DescribeRepositories", in,
                                     &out, &err);
            json_decref(in);
            if (round == 1 && i == 2) {
                assert_int_equal(rc, -1);
                assert_string_equal(err.code, "RepositoryNotFoundException");
            } else {
                assert_int_equal(rc, 0);
                assert_string_equal(
                    json_string_value(json_object_get(
                        json_array_get(json_object_get(out, "repositories"), 0), "repositoryName")),
                    APPS[i]);
            }
            json_decref(out);
            fake_now += 100;
        }
        fake_now += ROUND;
    }
    /* merged (failed) + app0 alone + app1 alone + app2 alone */
    assert_int_equal(calls_of(f, "DescribeRepositories"), 4);
    read_batch_get_stats(&st);
    assert_int_equal(st.fallbacks, 1);
    assert_int_equal(st.served, 0);
}

/* Log groups by name prefix: merged to the common directory ("/aviary/"),
 * every page of it read (61 groups, 50 a page), each share exactly what
 * the application's own prefix returns ("/aviary/app1" also matches
 * "/aviary/app10", as AWS does). */
static void test_prefix_and_pages(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {"/aviary/app0", "/aviary/app1", "/aviary/app10", "/other/app1"};

    for (int i = 0; i < 4; i++)
        json_decref(aws(f, "logs", "CreateLogGroup", json_pack("{s:s}", "logGroupName", names[i])));
    for (int i = 0; i < 57; i++) {
        char name[64];
        snprintf(name, sizeof(name), "/aviary/filler-%02d", i);
        json_decref(aws(f, "logs", "CreateLogGroup", json_pack("{s:s}", "logGroupName", name)));
    }
    for (int round = 0; round < 2; round++) {
        clear_calls(f);
        for (int i = 0; i < 3; i++) {
            json_t *got = batched(f, APPS[i], "logs", "DescribeLogGroups",
                                  json_pack("{s:s}", "logGroupNamePrefix", names[i]));
            json_t *want = aws(f, "logs", "DescribeLogGroups",
                               json_pack("{s:s}", "logGroupNamePrefix", names[i]));
            assert_true(
                json_equal(json_object_get(got, "logGroups"), json_object_get(want, "logGroups")));
            assert_int_equal(json_array_size(json_object_get(got, "logGroups")), i == 1 ? 2 : 1);
            json_decref(got);
            json_decref(want);
            fake_now += 100;
        }
        /* Round 1: the merged call's two pages, plus the three direct ones. */
        assert_int_equal(calls_of(f, "DescribeLogGroups"), round == 0 ? 6 : 2 + 3);
        fake_now += ROUND;
    }
}

/* Scaling policies: merged into one listing of the namespace (no resource
 * id, no dimension), each share the policies of its own service, as its
 * own call returns them. */
static void test_widened_listing(void **state)
{
    struct fixture *f = *state;
    json_t *vpc, *subnet, *td;
    const char *vpc_id, *subnet_id;

    vpc = aws(f, "ec2", "CreateVpc", json_pack("{s:s}", "CidrBlock", "10.60.0.0/16"));
    vpc_id = json_string_value(json_object_get(json_object_get(vpc, "Vpc"), "VpcId"));
    subnet = aws(f, "ec2", "CreateSubnet",
                 json_pack("{s:s, s:s}", "VpcId", vpc_id, "CidrBlock", "10.60.0.0/24"));
    subnet_id = json_string_value(json_object_get(json_object_get(subnet, "Subnet"), "SubnetId"));
    td = aws(f, "ecs", "RegisterTaskDefinition",
             json_pack("{s:s, s:s, s:[s], s:s, s:s, s:[{s:s, s:s, s:b}]}", "family", "widen",
                       "networkMode", "awsvpc", "requiresCompatibilities", "FARGATE", "cpu", "256",
                       "memory", "512", "containerDefinitions", "name", "app", "image", "x:1",
                       "essential", 1));
    json_decref(aws(f, "ecs", "CreateCluster", json_pack("{s:s}", "clusterName", "widen")));
    for (int i = 0; i < 3; i++) {
        char rid[64];
        snprintf(rid, sizeof(rid), "service/widen/%s", APPS[i]);
        json_decref(aws(f, "ecs", "CreateService",
                        json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:{s:[s]}}}", "cluster", "widen",
                                  "serviceName", APPS[i], "taskDefinition", "widen", "desiredCount",
                                  1, "launchType", "FARGATE", "networkConfiguration",
                                  "awsvpcConfiguration", "subnets", subnet_id)));
        json_decref(aws(f, "application-autoscaling", "RegisterScalableTarget",
                        json_pack("{s:s, s:s, s:s, s:i, s:i}", "ServiceNamespace", "ecs",
                                  "ResourceId", rid, "ScalableDimension",
                                  "ecs:service:DesiredCount", "MinCapacity", 1, "MaxCapacity", 3)));
        for (int p = 0; p <= i; p++) { /* app0: 1 policy, app1: 2, app2: 3 */
            char name[32];
            snprintf(name, sizeof(name), "%s-p%d", APPS[i], p);
            json_decref(
                aws(f, "application-autoscaling", "PutScalingPolicy",
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:f, s:{s:s}}}", "PolicyName", name,
                              "ServiceNamespace", "ecs", "ResourceId", rid, "ScalableDimension",
                              "ecs:service:DesiredCount", "PolicyType", "TargetTrackingScaling",
                              "TargetTrackingScalingPolicyConfiguration", "TargetValue", 50.0 + p,
                              "PredefinedMetricSpecification", "PredefinedMetricType",
                              "ECSServiceAverageCPUUtilization")));
        }
    }
    for (int round = 0; round < 2; round++) {
        clear_calls(f);
        for (int i = 0; i < 4; i++) { /* app3 has no service: no policies */
            char rid[64];
            json_t *got, *want;
            snprintf(rid, sizeof(rid), "service/widen/%s", APPS[i]);
            got = batched(f, APPS[i], "application-autoscaling", "DescribeScalingPolicies",
                          json_pack("{s:s, s:s, s:s}", "ServiceNamespace", "ecs", "ResourceId", rid,
                                    "ScalableDimension", "ecs:service:DesiredCount"));
            want = aws(f, "application-autoscaling", "DescribeScalingPolicies",
                       json_pack("{s:s, s:s, s:s}", "ServiceNamespace", "ecs", "ResourceId", rid,
                                 "ScalableDimension", "ecs:service:DesiredCount"));
            assert_true(json_equal(json_object_get(got, "ScalingPolicies"),
                                   json_object_get(want, "ScalingPolicies")));
            assert_int_equal(json_array_size(json_object_get(got, "ScalingPolicies")),
                             i < 3 ? i + 1 : 0);
            json_decref(got);
            json_decref(want);
            fake_now += 100;
        }
        assert_int_equal(calls_of(f, "DescribeScalingPolicies"), round == 0 ? 8 : 1 + 4);
        fake_now += ROUND;
    }
    json_decref(vpc);
    json_decref(subnet);
    json_decref(td);
}

struct racer {
    struct fixture *f;
    int first, count;
};

static void *race(void *arg)
{
    struct racer *r = arg;

    for (int i = r->first; i < r->first + r->count; i++) {
        char app[16], name[32];
        struct aws_error err;
        json_t *out = NULL, *in;
        snprintf(app, sizeof(app), "race%d", i);
        snprintf(name, sizeof(name), "aviary-race%d", i);
        in = describe_clusters_in(name);
        if (read_batch_call(r->f->emu.client, app, "ecs", "DescribeClusters", in, &out, &err) !=
                0 ||
            json_array_size(json_object_get(out, "clusters")) != 1 ||
            strcmp(json_string_value(json_object_get(
                       json_array_get(json_object_get(out, "clusters"), 0), "clusterName")),
                   name) != 0)
            fprintf(stderr, "race: %s: wrong answer\n", app), abort();
        json_decref(in);
        json_decref(out);
    }
    return NULL;
}

/* Four workers reconciling eight applications at once: one merged call
 * answers all of them (a worker whose request is in another's merged call
 * waits for it instead of asking again). */
static void test_workers_share_one_call(void **state)
{
    struct fixture *f = *state;
    struct racer racers[4];
    pthread_t threads[4];

    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof(name), "aviary-race%d", i);
        json_decref(aws(f, "ecs", "CreateCluster", json_pack("{s:s}", "clusterName", name)));
    }
    /* First round, one at a time: the history. */
    for (int i = 0; i < 4; i++) {
        racers[i] = (struct racer){f, i * 2, 2};
        race(&racers[i]);
    }
    fake_now += ROUND;
    clear_calls(f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(calls_of(f, "DescribeClusters"), 1);
}

static void ctx_for(struct app_ctx *ctx, struct reconcile_request *req, json_t *status,
                    struct fixture *f, const char *app, json_t *spec, bool plan)
{
    memset(req, 0, sizeof(*req));
    req->kind = "Application";
    req->name = app;
    req->spec = spec;
    req->revision = "r1";
    req->now = 1700000000;
    req->reconcile_id = "test";
    req->aws = f->emu.client;
    app_ctx_init(ctx, req, status, plan);
}

/* app_read: a served share counts as a read of the reconcile (ctx->reads)
 * while the emulator sees one call; app_write drops the writer's shares;
 * plan mode reads alone and never fetches for others. */
static void test_app_read(void **state)
{
    struct fixture *f = *state;
    json_t *spec = json_pack("{s:s, s:i}", "image", "x:1", "port", 8080);
    json_t *status[3];
    struct app_ctx ctx[3];
    struct reconcile_request req[3];
    struct read_batch_stats before, after;

    create_clusters(f);
    for (int i = 0; i < 3; i++)
        status[i] = status_new("Application", APPS[i]);
    for (int round = 0; round < 3; round++) {
        clear_calls(f);
        for (int i = 0; i < 3; i++) {
            json_t *out = NULL;
            ctx_for(&ctx[i], &req[i], status[i], f, APPS[i], spec, false);
            assert_int_equal(app_read(&ctx[i], "cluster", "ecs", "DescribeClusters",
                                      describe_clusters_in(ctx[i].names.cluster), &out, NULL),
                             0);
            assert_int_equal(ctx[i].reads, 1);
            assert_int_equal(json_array_size(json_object_get(out, "clusters")), 1);
            json_decref(out);
            if (round == 2 && i == 0) {
                /* app1 writes (an ecs call) before its turn. */
                ctx_for(&ctx[1], &req[1], status[1], f, APPS[1], spec, false);
                assert_int_equal(app_write(&ctx[1], "cluster", "ecs", "TagResource",
                                           json_pack("{s:s, s:[{s:s, s:s}]}", "resourceArn",
                                                     "arn:aws:ecs:us-east-1:123456789012:cluster/"
                                                     "aviary-app1",
                                                     "tags", "key", "k", "value", "v"),
                                           NULL, NULL),
                                 0);
                app_ctx_clear(&ctx[1]);
            }
            app_ctx_clear(&ctx[i]);
            fake_now += 100;
        }
        assert_int_equal(calls_of(f, "DescribeClusters"), round == 0 ? 3 : round == 1 ? 1 : 2);
        fake_now += ROUND;
    }
    /* Plan mode: the batcher is not used at all. */
    read_batch_get_stats(&before);
    clear_calls(f);
    for (int i = 0; i < 3; i++) {
        ctx_for(&ctx[i], &req[i], status[i], f, APPS[i], spec, true);
        assert_int_equal(app_read(&ctx[i], "cluster", "ecs", "DescribeClusters",
                                  describe_clusters_in(ctx[i].names.cluster), NULL, NULL),
                         0);
        app_ctx_clear(&ctx[i]);
    }
    read_batch_get_stats(&after);
    assert_int_equal(calls_of(f, "DescribeClusters"), 3);
    assert_int_equal(after.direct + after.merged + after.served,
                     before.direct + before.merged + before.served);
    for (int i = 0; i < 3; i++)
        json_decref(status[i]);
    json_decref(spec);
}

/* Batching off (AVIARY_READ_BATCH=off): nothing is handled. */
static void test_disabled(void **state)
{
    struct fixture *f = *state;
    json_t *out = NULL, *in = describe_clusters_in("aviary-app0");

    read_batch_configure(false, MAX_AGE, clock_fake);
    assert_int_equal(
        read_batch_call(f->emu.client, "app0", "ecs", "DescribeClusters", in, &out, NULL), 1);
    assert_null(out);
    /* Not batchable: a paged request, an unknown operation. */
    read_batch_configure(true, MAX_AGE, clock_fake);
    json_object_set_new(in, "maxResults", json_integer(10));
    assert_int_equal(
        read_batch_call(f->emu.client, "app0", "ecs", "DescribeClusters", in, &out, NULL), 1);
    assert_int_equal(
        read_batch_call(f->emu.client, "app0", "ecs", "DescribeServices", in, &out, NULL), 1);
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_merge_and_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ec2_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freshness_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_invalidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_merge_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_widened_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_share_one_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
