/* Compact, read-only descriptions of the AWS services and operations aviary
 * calls, generated from botocore's official service models by
 * tools/gen_models.py into aws/models_gen.c. Protocol code serializes
 * requests and parses responses from these tables. Immutable; any thread. */
#ifndef AVIARY_AWS_MODEL_H
#define AVIARY_AWS_MODEL_H

#include <stddef.h>
#include <stdint.h>

enum aws_protocol {
    AWS_PROTOCOL_JSON,     /* awsJson 1.0/1.1, X-Amz-Target */
    AWS_PROTOCOL_QUERY,    /* AWS Query: form body, XML responses */
    AWS_PROTOCOL_EC2,      /* EC2 variant of Query */
    AWS_PROTOCOL_REST_XML, /* S3 */
};

enum aws_shape_type {
    AWS_SHAPE_STRUCTURE,
    AWS_SHAPE_LIST,
    AWS_SHAPE_MAP,
    AWS_SHAPE_STRING,
    AWS_SHAPE_INTEGER,
    AWS_SHAPE_LONG,
    AWS_SHAPE_FLOAT,
    AWS_SHAPE_DOUBLE,
    AWS_SHAPE_BOOLEAN,
    AWS_SHAPE_TIMESTAMP,
    AWS_SHAPE_BLOB,
};

/* Where a member travels (rest-xml; body for every other protocol). */
enum aws_location {
    AWS_LOC_BODY,
    AWS_LOC_URI,
    AWS_LOC_QUERYSTRING,
    AWS_LOC_HEADER,
    AWS_LOC_HEADERS, /* map of headers with a prefix (locationName), e.g. x-amz-meta- */
    AWS_LOC_STATUS_CODE,
};

enum aws_timestamp_format {
    AWS_TS_DEFAULT, /* the protocol's default */
    AWS_TS_ISO8601,
    AWS_TS_RFC822,
    AWS_TS_UNIX,
};

/* Member flags. */
#define AWS_MEMBER_REQUIRED          0x01u
#define AWS_MEMBER_PAYLOAD           0x02u /* the structure's payload member (rest-xml) */
#define AWS_MEMBER_XML_ATTRIBUTE     0x04u
#define AWS_MEMBER_IDEMPOTENCY_TOKEN 0x08u /* filled with a UUID when absent */
#define AWS_MEMBER_HOST_LABEL        0x10u
#define AWS_MEMBER_JSON_VALUE        0x20u /* header carrying base64 JSON */

/* Shape flags. */
#define AWS_SHAPE_FLATTENED 0x01u
#define AWS_SHAPE_STREAMING 0x02u /* blob payload streamed as the raw body */
#define AWS_SHAPE_SENSITIVE 0x04u /* never logged */

#define AWS_NO_SHAPE UINT16_MAX

struct aws_member {
    const char *name;          /* the key in aviary's json_t documents */
    const char *location_name; /* wire name (locationName), NULL = name */
    const char *query_name;    /* EC2 queryName, NULL = none */
    uint16_t shape;            /* index into the service's shapes */
    uint8_t location;          /* enum aws_location */
    uint8_t flags;             /* AWS_MEMBER_* */
};

struct aws_shape {
    const char *name;
    uint8_t type;             /* enum aws_shape_type */
    uint8_t flags;            /* AWS_SHAPE_* */
    uint8_t timestamp_format; /* enum aws_timestamp_format */
    /* structure */
    const struct aws_member *members;
    uint16_t n_members;
    /* list: member; map: key and value */
    uint16_t member;
    const char *member_location_name; /* list member locationName, NULL = "member" */
    uint16_t key;
    const char *key_location_name; /* NULL = "key" */
    uint16_t value;
    const char *value_location_name; /* NULL = "value" */
    const char *xml_namespace;       /* xmlNamespace uri, or NULL */
};

#define AWS_PAGINATION_MAX_KEYS 4 /* S3 ListObjectVersions has 3 result keys + NULL */

/* Pagination as botocore's paginators-1.json describes it. */
struct aws_pagination {
    const char *input_token[AWS_PAGINATION_MAX_KEYS];  /* NULL-terminated */
    const char *output_token[AWS_PAGINATION_MAX_KEYS]; /* dotted paths allowed */
    const char *result_key[AWS_PAGINATION_MAX_KEYS];
    const char *limit_key;    /* or NULL */
    const char *more_results; /* e.g. "IsTruncated", or NULL */
};

struct aws_operation {
    const char *name;                /* "DescribeServices" */
    const char *http_method;         /* "POST", "GET", ... */
    const char *request_uri;         /* "/{Bucket}/{Key+}?uploads" */
    uint16_t input;                  /* AWS_NO_SHAPE when none */
    uint16_t output;                 /* AWS_NO_SHAPE when none */
    const char *result_wrapper;      /* Query: "DescribeLoadBalancersResult" */
    const char *input_location_name; /* rest-xml: root element of the input payload */
    const char *input_xml_namespace;
    const struct aws_pagination *pagination; /* NULL when not paginated */
    uint8_t unsigned_auth;                   /* authtype "none" (STS AssumeRoleWithWebIdentity) */
    /* httpChecksumRequired or requestChecksumRequired: the body gets a Content-MD5. */
    uint8_t checksum_required;
};

struct aws_service_model {
    const char *name;            /* botocore name: "elbv2" */
    const char *service_id;      /* "Elastic Load Balancing v2" */
    const char *endpoint_prefix; /* "elasticloadbalancing" */
    const char *signing_name;    /* "elasticloadbalancing" */
    uint8_t protocol;            /* enum aws_protocol */
    const char *api_version;     /* "2015-12-01" */
    const char *json_version;    /* "1.1", or NULL */
    const char *target_prefix;   /* "AmazonEC2ContainerServiceV20141113", or NULL */
    const char *xml_namespace;   /* Query response namespace, or NULL */
    const char *global_endpoint; /* "iam.amazonaws.com", or NULL */
    const struct aws_shape *shapes;
    size_t n_shapes;
    const struct aws_operation *operations; /* sorted by name */
    size_t n_operations;
};

/* Every service model compiled in (aws/models_gen.c). */
extern const struct aws_service_model *const aws_service_models[];
extern const size_t aws_n_service_models;

/* Looks a service up by botocore name ("ecs", "elbv2", "s3", ...). NULL if
 * not compiled in. */
const struct aws_service_model *aws_model_service(const char *name);

/* Looks an operation up by name (binary search). NULL if absent. */
const struct aws_operation *aws_model_operation(const struct aws_service_model *svc,
                                                const char *name);

/* The shape at index i, or NULL for AWS_NO_SHAPE. */
const struct aws_shape *aws_model_shape(const struct aws_service_model *svc, uint16_t i);

/* The environment-variable suffix of a service for AWS_ENDPOINT_URL_<SUFFIX>:
 * its serviceId upper-cased with spaces as underscores
 * ("Elastic Load Balancing v2" -> "ELASTIC_LOAD_BALANCING_V2"). Writes to out;
 * returns 0, or -1 when it does not fit. */
int aws_model_env_suffix(const struct aws_service_model *svc, char *out, size_t out_len);

#endif
