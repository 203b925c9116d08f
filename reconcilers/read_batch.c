/* Cross-application read batching (see read_batch.h): a table of the
 * describe calls whose requests can be merged, the requests seen per
 * application, and the shares of merged answers waiting to be served.
 * Worker threads; all state behind one mutex, AWS calls made outside it. */
#include "reconcilers/read_batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How requests of one operation merge. */
enum rb_kind {
    RB_LIST,   /* a list parameter (names, ARNs, ids): values unioned, items split by a field */
    RB_EC2,    /* EC2 filters: the application tag and vpc-id values unioned, items split by them */
    RB_SAME,   /* identical requests (a resource shared by every application): answer copied */
    RB_PREFIX, /* a name prefix: the merged call asks for the members' common directory (up to
                * the last '/'), items split by prefix */
    RB_WIDEN,  /* a single value (and param2) left out of the merged call, which lists a
                * superset; items split by the fields of the same names */
};

/* How an item's field is compared with a request's value. */
enum rb_match {
    RB_EXACT,  /* equal */
    RB_ARN,    /* equal, or an ARN ending with "/" + value */
    RB_STARTS, /* starts with the value (a name prefix) */
};

/* Items of the output array `key` belong to a request when `field` matches
 * one of its values (ECS failures carry ARNs of the names asked for). */
struct rb_items {
    const char *key;
    const char *field;
    enum rb_match match;
};

struct rb_op {
    const char *service;
    const char *operation;
    enum rb_kind kind;
    const char *param;       /* RB_LIST: the list; RB_EC2: "Filters" (or "Filter"); RB_PREFIX,
                              * RB_WIDEN: the string parameter */
    const char *param2;      /* RB_WIDEN: a second parameter left out with param (or NULL) */
    int max;                 /* RB_LIST: values per call; RB_EC2 and RB_SAME: requests per call */
    const char *token;       /* output field present when there are more pages */
    const char *limit_param; /* page size added to the merged call (or NULL) */
    int limit;
    struct rb_items items[3];
};

/* The batchable reads. Limits are AWS's documented maxima per call; a
 * merged call that still has more pages is not split (see has_more_pages). */
// clang-format off
#define ITEMS(...) {__VA_ARGS__}
static const struct rb_op OPS[] = {
    /* service, operation, kind, param, param2, max, token, limit_param, limit, items */
    {"ec2", "DescribeVpcs", RB_EC2, "Filters", NULL, 100, "NextToken", NULL, 0, ITEMS({"Vpcs", NULL, RB_EXACT})},
    {"ec2", "DescribeSubnets", RB_EC2, "Filters", NULL, 100, "NextToken", NULL, 0, ITEMS({"Subnets", NULL, RB_EXACT})},
    {"ec2", "DescribeInternetGateways", RB_EC2, "Filters", NULL, 100, "NextToken", NULL, 0,
     ITEMS({"InternetGateways", NULL, RB_EXACT})},
    {"ec2", "DescribeNatGateways", RB_EC2, "Filter", NULL, 100, "NextToken", NULL, 0, ITEMS({"NatGateways", NULL, RB_EXACT})},
    {"ec2", "DescribeAddresses", RB_EC2, "Filters", NULL, 100, "NextToken", NULL, 0, ITEMS({"Addresses", NULL, RB_EXACT})},
    {"ec2", "DescribeRouteTables", RB_EC2, "Filters", NULL, 100, "NextToken", NULL, 0, ITEMS({"RouteTables", NULL, RB_EXACT})},
    {"ec2", "DescribeSecurityGroups", RB_EC2, "Filters", NULL, 100, "NextToken", NULL, 0,
     ITEMS({"SecurityGroups", NULL, RB_EXACT})},
    {"ec2", "DescribeVpcs", RB_LIST, "VpcIds", NULL, 100, "NextToken", NULL, 0, ITEMS({"Vpcs", "VpcId", RB_EXACT})},
    {"ec2", "DescribeSubnets", RB_LIST, "SubnetIds", NULL, 100, "NextToken", NULL, 0, ITEMS({"Subnets", "SubnetId", RB_EXACT})},
    {"ecs", "DescribeClusters", RB_LIST, "clusters", NULL, 100, NULL, NULL, 0,
     ITEMS({"clusters", "clusterName", RB_EXACT}, {"clusters", "clusterArn", RB_EXACT}, {"failures", "arn", RB_ARN})},
    {"ecr", "DescribeRepositories", RB_LIST, "repositoryNames", NULL, 100, "nextToken", NULL, 0,
     ITEMS({"repositories", "repositoryName", RB_EXACT})},
    {"elbv2", "DescribeLoadBalancers", RB_LIST, "Names", NULL, 20, "NextMarker", NULL, 0,
     ITEMS({"LoadBalancers", "LoadBalancerName", RB_EXACT})},
    {"elbv2", "DescribeLoadBalancers", RB_LIST, "LoadBalancerArns", NULL, 20, "NextMarker", NULL, 0,
     ITEMS({"LoadBalancers", "LoadBalancerArn", RB_EXACT})},
    {"elbv2", "DescribeTargetGroups", RB_LIST, "Names", NULL, 20, "NextMarker", NULL, 0,
     ITEMS({"TargetGroups", "TargetGroupName", RB_EXACT})},
    {"elbv2", "DescribeTargetGroups", RB_LIST, "TargetGroupArns", NULL, 20, "NextMarker", NULL, 0,
     ITEMS({"TargetGroups", "TargetGroupArn", RB_EXACT})},
    {"elbv2", "DescribeTags", RB_LIST, "ResourceArns", NULL, 20, NULL, NULL, 0,
     ITEMS({"TagDescriptions", "ResourceArn", RB_EXACT})},
    {"application-autoscaling", "DescribeScalableTargets", RB_LIST, "ResourceIds", NULL, 50, "NextToken", "MaxResults", 50,
     ITEMS({"ScalableTargets", "ResourceId", RB_EXACT})},
    {"cloudwatch", "DescribeAlarms", RB_LIST, "AlarmNames", NULL, 100, "NextToken", "MaxRecords", 100,
     ITEMS({"MetricAlarms", "AlarmName", RB_EXACT}, {"CompositeAlarms", "AlarmName", RB_EXACT})},
    {"logs", "DescribeLogGroups", RB_PREFIX, "logGroupNamePrefix", NULL, 100, "nextToken", "limit", 50,
     ITEMS({"logGroups", "logGroupName", RB_STARTS})},
    {"application-autoscaling", "DescribeScalingPolicies", RB_WIDEN, "ResourceId", "ScalableDimension", 100,
     "NextToken", "MaxResults", 50, ITEMS({"ScalingPolicies", NULL, RB_EXACT})},
    {"iam", "GetRole", RB_SAME, NULL, NULL, 100, NULL, NULL, 0, ITEMS({NULL, NULL, RB_EXACT})},
    {"iam", "GetRolePolicy", RB_SAME, NULL, NULL, 100, NULL, NULL, 0, ITEMS({NULL, NULL, RB_EXACT})},
    {"iam", "ListRolePolicies", RB_SAME, NULL, NULL, 100, NULL, NULL, 0, ITEMS({NULL, NULL, RB_EXACT})},
    {"iam", "ListAttachedRolePolicies", RB_SAME, NULL, NULL, 100, NULL, NULL, 0, ITEMS({NULL, NULL, RB_EXACT})},
    {"sts", "GetCallerIdentity", RB_SAME, NULL, NULL, 100, NULL, NULL, 0, ITEMS({NULL, NULL, RB_EXACT})},
};
// clang-format on
#undef ITEMS

/* EC2 filters whose values differ between applications and are unioned;
 * every other filter must be the same in requests that merge. */
static const char *const EC2_UNION_FILTERS[] = {"tag:aviary.io/application", "vpc-id"};

/* Request parameters that make a request one page of several: never merged. */
static const char *const PAGING_PARAMS[] = {"NextToken",  "nextToken",  "Marker",
                                            "MaxResults", "maxResults", "MaxRecords",
                                            "PageSize",   "MaxItems",   "limit"};

#define RB_MAX_KEYS    4096              /* requests remembered (bounded memory) */
#define RB_KEY_TTL_MS  (15L * 60 * 1000) /* forget a request not repeated for this long */
#define RB_MAX_MEMBERS 128               /* requests in one merged call (> every op's max) */
#define RB_MAX_PAGES   20                /* pages of one merged call; more is a failed merge */
#define RB_WAIT_MS     30000             /* longest wait for another worker's merged call */
#define RB_APP_MAX     64

/* One request of one application, as last seen, and its stored share. */
struct rb_key {
    const struct rb_op *op;
    struct aws_client *aws;
    char app[RB_APP_MAX];
    char *canon;     /* the request, canonical JSON */
    char *shape;     /* what must be equal for requests to merge */
    json_t *request; /* the request (owned, never modified) */
    int64_t last_ms; /* when it was last asked for */
    bool last_ok;    /* its last answer was a success: it may be prefetched */
    bool inflight;   /* part of a merged call being made */
    uint64_t inflight_seq;
    uint64_t write_seq; /* the latest write that makes older answers unservable */
    json_t *answer;     /* a share waiting to be served (owned), or NULL */
    uint64_t answer_seq;
    int64_t answer_ms; /* when the merged call that fetched it was sent */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rb_key *keys[RB_MAX_KEYS];
    size_t n;
    uint64_t seq; /* orders merged calls and writes */
    bool enabled;
    long max_age_ms;
    int64_t (*now_ms)(void);
    struct read_batch_stats stats;
} rb = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static pthread_once_t rb_once = PTHREAD_ONCE_INIT;

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rb_exit(void)
{
    read_batch_reset();
}

static void rb_init(void)
{
    const char *env = getenv("AVIARY_READ_BATCH");

    rb.enabled = !(env != NULL && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0));
    rb.max_age_ms = READ_BATCH_MAX_AGE_MS;
    rb.now_ms = monotonic_ms;
    atexit(rb_exit);
}

void read_batch_configure(bool enabled, long max_age_ms, int64_t (*now_ms)(void))
{
    pthread_once(&rb_once, rb_init);
    pthread_mutex_lock(&rb.mu);
    rb.enabled = enabled;
    rb.max_age_ms = max_age_ms > 0 ? max_age_ms : READ_BATCH_MAX_AGE_MS;
    rb.now_ms = now_ms ? now_ms : monotonic_ms;
    pthread_mutex_unlock(&rb.mu);
}

void read_batch_get_stats(struct read_batch_stats *stats)
{
    pthread_mutex_lock(&rb.mu);
    *stats = rb.stats;
    pthread_mutex_unlock(&rb.mu);
}

static void key_free(struct rb_key *k)
{
    if (k == NULL)
        return;
    json_decref(k->answer);
    json_decref(k->request);
    free(k->canon);
    free(k->shape);
    free(k);
}

void read_batch_reset(void)
{
    size_t kept = 0;

    pthread_mutex_lock(&rb.mu);
    /* A key in flight is in use by a worker outside the lock: it stays (at
     * exit, only when a worker was still running). */
    for (size_t i = 0; i < rb.n; i++) {
        if (rb.keys[i]->inflight)
            rb.keys[kept++] = rb.keys[i];
        else
            key_free(rb.keys[i]);
    }
    rb.n = kept;
    memset(&rb.stats, 0, sizeof(rb.stats));
    pthread_mutex_unlock(&rb.mu);
}

/* ---- the operation table ------------------------------------------------- */

static bool has_paging_param(const json_t *in)
{
    for (size_t i = 0; i < sizeof(PAGING_PARAMS) / sizeof(PAGING_PARAMS[0]); i++)
        if (json_object_get(in, PAGING_PARAMS[i]) != NULL)
            return true;
    return false;
}

static bool is_union_filter(const char *name)
{
    for (size_t i = 0; i < sizeof(EC2_UNION_FILTERS) / sizeof(EC2_UNION_FILTERS[0]); i++)
        if (strcmp(name, EC2_UNION_FILTERS[i]) == 0)
            return true;
    return false;
}

/* A list of strings, non-empty. */
static bool string_list(const json_t *list)
{
    size_t i;
    const json_t *v;

    if (!json_is_array(list) || json_array_size(list) == 0)
        return false;
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

/* The entry of the table for this request, or NULL when it cannot be merged. */
static const struct rb_op *find_op(const char *service, const char *operation, const json_t *in)
{
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        const struct rb_op *op = &OPS[i];
        if (strcmp(op->service, service) != 0 || strcmp(op->operation, operation) != 0)
            continue;
        if (op->kind == RB_SAME)
            return in == NULL || json_is_object(in) ? op : NULL;
        if (!json_is_object(in) || has_paging_param(in))
            continue;
        if (op->kind == RB_LIST) {
            if (!string_list(json_object_get(in, op->param)))
                continue;
            return (int)json_array_size(json_object_get(in, op->param)) <= op->max ? op : NULL;
        }
        if (op->kind == RB_PREFIX || op->kind == RB_WIDEN) {
            if (json_is_string(json_object_get(in, op->param)))
                return op;
            continue;
        }
        /* RB_EC2: the filters are the only parameter. */
        if (json_object_size(in) == 1 && json_is_array(json_object_get(in, op->param)))
            return op;
    }
    return NULL;
}

/* ---- shapes, merging and splitting ---------------------------------------- */

static char *canonical(const json_t *in)
{
    return in == NULL ? strdup("{}") : json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
}

/* The directory of a name prefix: up to and including its last '/' (a new
 * string), or NULL when there is none. */
static char *prefix_directory(const char *prefix)
{
    const char *slash = strrchr(prefix, '/');

    return slash == NULL ? NULL : strndup(prefix, (size_t)(slash - prefix) + 1);
}

/* What two requests must share to be merged: the request without its list
 * (RB_LIST) or its widened parameters (RB_WIDEN), with the prefix cut to its
 * directory (RB_PREFIX), with the union filters' values emptied (RB_EC2), or
 * all of it (RB_SAME). NULL when the request is not of a mergeable form. */
static char *make_shape(const struct rb_op *op, const json_t *in)
{
    json_t *copy;
    char *shape = NULL;
    size_t i;
    json_t *f;

    if (op->kind == RB_SAME)
        return canonical(in);
    copy = json_deep_copy(in);
    if (copy == NULL)
        return NULL;
    if (op->kind == RB_LIST || op->kind == RB_WIDEN) {
        json_object_del(copy, op->param);
        if (op->param2 != NULL)
            json_object_del(copy, op->param2);
        shape = canonical(copy);
        goto out;
    }
    if (op->kind == RB_PREFIX) {
        char *dir = prefix_directory(json_string_value(json_object_get(copy, op->param)));
        if (dir == NULL)
            goto out;
        json_object_set_new(copy, op->param, json_string(dir));
        free(dir);
        shape = canonical(copy);
        goto out;
    }
    json_array_foreach(json_object_get(copy, op->param), i, f)
    {
        const char *name = json_string_value(json_object_get(f, "Name"));
        const json_t *values = json_object_get(f, "Values");
        if (name == NULL || !string_list(values))
            goto out;
        if (is_union_filter(name))
            json_object_set_new(f, "Values", json_array());
    }
    shape = canonical(copy);
out:
    json_decref(copy);
    return shape;
}

/* Number of values a request adds to a merged call. */
static size_t request_weight(const struct rb_op *op, const json_t *request)
{
    return op->kind == RB_LIST ? json_array_size(json_object_get(request, op->param)) : 1;
}

static void append_unique(json_t *list, const json_t *values)
{
    size_t i, j;
    const json_t *v, *w;

    json_array_foreach(values, i, v)
    {
        bool seen = false;
        json_array_foreach(list, j, w)
        {
            if (json_equal(v, w))
                seen = true;
        }
        if (!seen)
            json_array_append(list, (json_t *)v);
    }
}

/* The merged request of members[0..n) (all of the same shape). New reference. */
static json_t *merge_requests(const struct rb_op *op, struct rb_key **members, size_t n)
{
    json_t *merged = json_deep_copy(members[0]->request);
    size_t i, j;
    json_t *f;

    if (merged == NULL || op->kind == RB_SAME)
        return merged;
    if (op->limit_param != NULL)
        json_object_set_new(merged, op->limit_param, json_integer(op->limit));
    if (op->kind == RB_WIDEN) {
        json_object_del(merged, op->param);
        if (op->param2 != NULL)
            json_object_del(merged, op->param2);
        return merged;
    }
    if (op->kind == RB_PREFIX) {
        char *dir = prefix_directory(json_string_value(json_object_get(merged, op->param)));
        if (dir == NULL || json_object_set_new(merged, op->param, json_string(dir)) != 0) {
            json_decref(merged);
            merged = NULL;
        }
        free(dir);
        return merged;
    }
    if (op->kind == RB_LIST) {
        json_t *list = json_object_get(merged, op->param);
        for (i = 1; i < n; i++)
            append_unique(list, json_object_get(members[i]->request, op->param));
        return merged;
    }
    json_array_foreach(json_object_get(merged, op->param), j, f)
    {
        const char *name = json_string_value(json_object_get(f, "Name"));
        if (!is_union_filter(name))
            continue;
        for (i = 1; i < n; i++) {
            /* Same shape: the member's filter at the same index has this name. */
            const json_t *mf = json_array_get(json_object_get(members[i]->request, op->param), j);
            append_unique(json_object_get(f, "Values"), json_object_get(mf, "Values"));
        }
    }
    return merged;
}

static bool in_values(const json_t *values, const char *s, enum rb_match match)
{
    size_t i;
    const json_t *v;

    if (s == NULL)
        return false;
    json_array_foreach(values, i, v)
    {
        const char *want = json_string_value(v);
        size_t ls = strlen(s), lw = want ? strlen(want) : 0;
        if (want == NULL)
            continue;
        if (strcmp(s, want) == 0)
            return true;
        if (match == RB_ARN && ls > lw && s[ls - lw - 1] == '/' && strcmp(s + ls - lw, want) == 0)
            return true;
        if (match == RB_STARTS && strncmp(s, want, lw) == 0)
            return true;
    }
    return false;
}

static const char *tag_of(const json_t *item, const char *key)
{
    size_t i;
    const json_t *t;

    json_array_foreach(json_object_get(item, "Tags"), i, t)
    {
        const char *k = json_string_value(json_object_get(t, "Key"));
        if (k != NULL && strcmp(k, key) == 0)
            return json_string_value(json_object_get(t, "Value"));
    }
    return NULL;
}

/* Whether an EC2 item matches the union filters of `request`. */
static bool ec2_item_matches(const struct rb_op *op, const json_t *request, const json_t *item)
{
    size_t i;
    const json_t *f;

    json_array_foreach(json_object_get(request, op->param), i, f)
    {
        const char *name = json_string_value(json_object_get(f, "Name"));
        const json_t *values = json_object_get(f, "Values");
        const char *have;
        if (!is_union_filter(name))
            continue;
        if (strncmp(name, "tag:", 4) == 0)
            have = tag_of(item, name + 4);
        else /* vpc-id */
            have = json_string_value(json_object_get(item, "VpcId"));
        if (!in_values(values, have, RB_EXACT))
            return false;
    }
    return true;
}

/* Whether an item of a widened (superset) answer has the request's values
 * of the parameters left out. */
static bool widen_item_matches(const struct rb_op *op, const json_t *request, const json_t *item)
{
    const char *params[2] = {op->param, op->param2};

    for (int i = 0; i < 2; i++) {
        const json_t *want = params[i] ? json_object_get(request, params[i]) : NULL;
        if (want != NULL && !json_equal(want, json_object_get(item, params[i])))
            return false;
    }
    return true;
}

static bool list_item_matches(const struct rb_op *op, const char *key, const json_t *values,
                              const json_t *item)
{
    for (size_t i = 0; i < sizeof(op->items) / sizeof(op->items[0]); i++) {
        const struct rb_items *it = &op->items[i];
        if (it->key == NULL || strcmp(it->key, key) != 0)
            continue;
        if (in_values(values, json_string_value(json_object_get(item, it->field)), it->match))
            return true;
    }
    return false;
}

/* The share of `merged` that answers `request`: a copy with each item array
 * reduced to the request's items. New reference, or NULL (no memory). */
static json_t *split_answer(const struct rb_op *op, const json_t *request, const json_t *merged)
{
    json_t *share = json_deep_copy(merged);
    json_t *values = NULL;

    if (share == NULL || op->kind == RB_SAME)
        return share;
    if (op->kind == RB_LIST)
        values = json_incref(json_object_get(request, op->param));
    else if (op->kind == RB_PREFIX)
        values = json_pack("[O]", json_object_get(request, op->param));
    for (size_t i = 0; i < sizeof(op->items) / sizeof(op->items[0]); i++) {
        const char *key = op->items[i].key;
        json_t *list, *kept;
        size_t j;
        json_t *item;
        if (key == NULL ||
            (i > 0 && op->items[i - 1].key != NULL && strcmp(op->items[i - 1].key, key) == 0))
            continue; /* each array once */
        list = json_object_get(share, key);
        if (!json_is_array(list))
            continue;
        kept = json_array();
        json_array_foreach(list, j, item)
        {
            bool keep = op->kind == RB_EC2     ? ec2_item_matches(op, request, item)
                        : op->kind == RB_WIDEN ? widen_item_matches(op, request, item)
                                               : list_item_matches(op, key, values, item);
            if (keep)
                json_array_append(kept, item);
        }
        json_object_set_new(share, key, kept);
    }
    json_decref(values);
    return share;
}

/* More pages in a merged answer: it cannot be split (the requester asks alone). */
static bool has_more_pages(const struct rb_op *op, const json_t *out)
{
    const json_t *t = op->token ? json_object_get(out, op->token) : NULL;

    return t != NULL && !json_is_null(t) && !(json_is_string(t) && json_string_length(t) == 0);
}

/* ---- the table of requests (rb.mu held) ------------------------------------ */

static void drop_answer(struct rb_key *k)
{
    if (k->answer != NULL) {
        json_decref(k->answer);
        k->answer = NULL;
        rb.stats.expired++;
    }
}

static bool answer_servable(const struct rb_key *k, int64_t now)
{
    return k->answer != NULL && k->answer_seq > k->write_seq && now - k->answer_ms >= 0 &&
           now - k->answer_ms <= rb.max_age_ms;
}

static void remove_at(size_t i)
{
    struct rb_key *k = rb.keys[i];

    if (k->answer != NULL)
        rb.stats.expired++;
    key_free(k);
    rb.keys[i] = rb.keys[--rb.n];
}

/* Forgets requests not repeated for RB_KEY_TTL_MS, and when the table is
 * full the least recently asked one. Keys in flight stay. */
static void prune(int64_t now)
{
    size_t i = 0, oldest = SIZE_MAX;

    while (i < rb.n) {
        struct rb_key *k = rb.keys[i];
        if (!k->inflight && now - k->last_ms > RB_KEY_TTL_MS) {
            remove_at(i);
            continue;
        }
        if (!k->inflight && (oldest == SIZE_MAX || k->last_ms < rb.keys[oldest]->last_ms))
            oldest = i;
        i++;
    }
    if (rb.n == RB_MAX_KEYS && oldest != SIZE_MAX)
        remove_at(oldest);
}

static struct rb_key *find_key(struct aws_client *aws, const struct rb_op *op, const char *app,
                               const char *canon)
{
    for (size_t i = 0; i < rb.n; i++) {
        struct rb_key *k = rb.keys[i];
        if (k->op == op && k->aws == aws && strcmp(k->app, app) == 0 &&
            strcmp(k->canon, canon) == 0)
            return k;
    }
    return NULL;
}

/* The key for this request, created (taking canon and shape) when new; NULL
 * when the table is full of requests in flight or memory ran out. */
static struct rb_key *get_key(struct aws_client *aws, const struct rb_op *op, const char *app,
                              const json_t *in, char **canon, char **shape, int64_t now)
{
    struct rb_key *k = find_key(aws, op, app, *canon);

    if (k != NULL)
        return k;
    prune(now);
    if (rb.n == RB_MAX_KEYS)
        return NULL;
    k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->request = in ? json_deep_copy(in) : json_object();
    if (k->request == NULL) {
        free(k);
        return NULL;
    }
    k->op = op;
    k->aws = aws;
    snprintf(k->app, sizeof(k->app), "%s", app);
    k->canon = *canon;
    k->shape = *shape;
    *canon = *shape = NULL;
    rb.keys[rb.n++] = k;
    return k;
}

struct rb_candidate {
    struct rb_key *key;
    int64_t distance; /* from the requester's previous request, ms */
};

static int by_distance(const void *a, const void *b)
{
    const struct rb_candidate *x = a, *y = b;

    return x->distance < y->distance ? -1 : x->distance > y->distance;
}

/* Adds to members (which holds the requester) the requests expected soon:
 * of the same shape, answered successfully last time, with nothing stored
 * or in flight, asked for in the previous round within the freshness bound
 * of the requester's previous request `prev` (before it too: workers race)
 * and not yet in this round (so not in the second half of the interval
 * since prev). Nearest to prev first, while the call's limit allows; they
 * are marked in flight. Returns the number of members. */
static size_t pick_members(struct rb_key *self, int64_t prev, int64_t now, struct rb_key **members,
                           size_t cap)
{
    size_t n = 1, nc = 0, weight = request_weight(self->op, self->request);
    int64_t lo = prev - rb.max_age_ms, hi = prev + rb.max_age_ms;
    struct rb_candidate *cand;

    if (prev == 0 || (cand = malloc(rb.n * sizeof(*cand))) == NULL)
        return n;
    if (hi > prev + (now - prev) / 2)
        hi = prev + (now - prev) / 2;
    for (size_t i = 0; i < rb.n; i++) {
        struct rb_key *k = rb.keys[i];
        if (k->answer != NULL && !answer_servable(k, now))
            drop_answer(k);
        if (k != self && k->op == self->op && k->aws == self->aws && !k->inflight && k->last_ok &&
            k->answer == NULL && k->last_ms > lo && k->last_ms <= hi &&
            strcmp(k->shape, self->shape) == 0) {
            cand[nc].key = k;
            cand[nc++].distance = k->last_ms > prev ? k->last_ms - prev : prev - k->last_ms;
        }
    }
    qsort(cand, nc, sizeof(*cand), by_distance);
    for (size_t i = 0; i < nc && n < cap; i++) {
        size_t w = request_weight(cand[i].key->op, cand[i].key->request);
        if (weight + w > (size_t)self->op->max)
            continue;
        cand[i].key->inflight = true;
        members[n++] = cand[i].key;
        weight += w;
    }
    free(cand);
    return n;
}

/* ---- the call --------------------------------------------------------------- */

/* The merged call: every page (at most RB_MAX_PAGES) of a paginated one. */
static int merged_call(struct aws_client *aws, const char *service, const char *operation,
                       bool paginated, const json_t *in, json_t **out, struct aws_error *err)
{
    if (!paginated)
        return aws_call(aws, service, operation, in, out, err);
    return aws_call_all(aws, service, operation, in, RB_MAX_PAGES, out, err);
}

int read_batch_call(struct aws_client *aws, const char *app, const char *service,
                    const char *operation, const json_t *in, json_t **out, struct aws_error *err)
{
    const struct rb_op *op;
    char *canon = NULL, *shape = NULL;
    struct rb_key *self, *members[RB_MAX_MEMBERS];
    json_t *shares[sizeof(members) / sizeof(members[0])] = {0};
    json_t *merged_in = NULL, *merged_out = NULL;
    size_t n = 0;
    int64_t now, prev, sent_ms;
    uint64_t seq;
    struct aws_error local_err;
    bool ok = false;
    int rc = 1;

    pthread_once(&rb_once, rb_init);
    *out = NULL;
    if (err == NULL)
        err = &local_err;
    op = find_op(service, operation, in);
    if (op == NULL)
        return 1;
    canon = canonical(in);
    shape = make_shape(op, in);
    if (canon == NULL || shape == NULL)
        goto out;

    pthread_mutex_lock(&rb.mu);
    if (!rb.enabled) {
        pthread_mutex_unlock(&rb.mu);
        goto out;
    }
    now = rb.now_ms();
    self = get_key(aws, op, app, in, &canon, &shape, now);
    if (self == NULL) {
        pthread_mutex_unlock(&rb.mu);
        goto out;
    }
    prev = self->last_ms;
    self->last_ms = now;
    for (;;) {
        struct timespec deadline;
        if (answer_servable(self, now)) {
            *out = self->answer;
            self->answer = NULL;
            rb.stats.served++;
            pthread_mutex_unlock(&rb.mu);
            if (err != NULL)
                aws_error_clear(err);
            rc = 0;
            goto out;
        }
        drop_answer(self);
        if (!self->inflight)
            break;
        /* In another worker's merged call: wait for it, unless it was sent
         * before this application's last write (its answer would not be
         * served) or it takes too long; then ask alone, leaving the key to
         * that call. */
        if (self->inflight_seq > self->write_seq) {
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += RB_WAIT_MS / 1000;
            while (self->inflight && self->inflight_seq > self->write_seq)
                if (pthread_cond_timedwait(&rb.cv, &rb.mu, &deadline) == ETIMEDOUT)
                    break;
        }
        if (self->inflight) {
            pthread_mutex_unlock(&rb.mu);
            rc = aws_call(aws, service, operation, in, out, err) == 0 ? 0 : -1;
            goto out;
        }
        now = rb.now_ms();
    }
    self->inflight = true;
    seq = self->inflight_seq = ++rb.seq;
    members[0] = self;
    n = pick_members(self, prev, now, members, sizeof(members) / sizeof(members[0]));
    for (size_t i = 1; i < n; i++)
        members[i]->inflight_seq = seq;
    sent_ms = now;
    if (n > 1)
        rb.stats.merged++;
    else
        rb.stats.direct++;
    pthread_mutex_unlock(&rb.mu);

    if (n > 1) {
        /* Members' requests stay untouched while they are in flight. */
        merged_in = merge_requests(op, members, n);
        if (merged_in != NULL &&
            merged_call(aws, service, operation, op->token != NULL, merged_in, &merged_out, err) ==
                0 &&
            !has_more_pages(op, merged_out)) {
            ok = true;
            for (size_t i = 0; i < n && ok; i++) {
                shares[i] = split_answer(op, members[i]->request, merged_out);
                ok = shares[i] != NULL;
            }
        }
    } else {
        rc = aws_call(aws, service, operation, in, out, err);
        ok = rc == 0;
    }

    pthread_mutex_lock(&rb.mu);
    for (size_t i = 0; i < n; i++) {
        struct rb_key *m = members[i];
        if (i == 0) {
            /* A requester that must still ask alone keeps its key. */
            m->inflight = n > 1 && !ok;
            m->last_ok = ok;
            continue;
        }
        m->inflight = false;
        if (!ok) {
            m->last_ok = false; /* suspect until its own request succeeds */
            continue;
        }
        if (m->write_seq < seq) {
            drop_answer(m);
            m->answer = shares[i];
            m->answer_seq = seq;
            m->answer_ms = sent_ms;
            shares[i] = NULL;
            rb.stats.prefetched++;
        }
    }
    if (n > 1 && !ok)
        rb.stats.fallbacks++;
    pthread_cond_broadcast(&rb.cv);
    pthread_mutex_unlock(&rb.mu);

    if (n > 1 && ok) {
        *out = shares[0];
        shares[0] = NULL;
        if (err != NULL)
            aws_error_clear(err);
        rc = 0;
    } else if (n > 1) {
        /* The merged call failed or had more pages: the requester's own
         * request alone decides (never a wrong "not found"). */
        rc = aws_call(aws, service, operation, in, out, err);
        pthread_mutex_lock(&rb.mu);
        self->inflight = false;
        self->last_ok = rc == 0;
        pthread_cond_broadcast(&rb.cv);
        pthread_mutex_unlock(&rb.mu);
    }
    rc = rc == 0 ? 0 : -1;
out:
    for (size_t i = 0; i < n; i++)
        json_decref(shares[i]);
    json_decref(merged_in);
    json_decref(merged_out);
    free(canon);
    free(shape);
    return rc;
}

void read_batch_note_write(struct aws_client *aws, const char *app, const char *service)
{
    pthread_once(&rb_once, rb_init);
    pthread_mutex_lock(&rb.mu);
    rb.seq++;
    for (size_t i = 0; i < rb.n; i++) {
        struct rb_key *k = rb.keys[i];
        if (k->aws != aws)
            continue;
        if (strcmp(k->app, app) == 0 ||
            (k->op->kind == RB_SAME && strcmp(k->op->service, service) == 0)) {
            k->write_seq = rb.seq;
            drop_answer(k);
        }
    }
    pthread_mutex_unlock(&rb.mu);
}
