/* Credentials chain tests against a loopback server playing IMDSv2, the ECS
 * credentials endpoint and STS (AssumeRole, AssumeRoleWithWebIdentity), with
 * an injected environment and clock: provider order, profiles and role
 * chains, expiry and refresh, concurrent refresh, error messages, and STS
 * answers carrying DTDs, entities or bad encodings. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/config_file.h"
#include "aws/credentials.h"
#include "aws/credentials_provider.h"
#include "aws/http.h"
#include "aws/sigv4.h"
#include "support/test_server.h"

#define T0       1700000000
#define MAX_VARS 24

/* ---- injected environment and clock ---- */

struct fake_env {
    const char *names[MAX_VARS];
    char values[MAX_VARS][512];
    size_t n;
    int64_t now;
};

static const char *fake_get(void *arg, const char *name)
{
    struct fake_env *fe = arg;

    for (size_t i = 0; i < fe->n; i++)
        if (strcmp(fe->names[i], name) == 0)
            return fe->values[i];
    return NULL;
}

static int64_t fake_now(void *arg)
{
    return __atomic_load_n(&((struct fake_env *)arg)->now, __ATOMIC_SEQ_CST);
}

static void env_set(struct fake_env *fe, const char *name, const char *value)
{
    for (size_t i = 0; i < fe->n; i++) {
        if (strcmp(fe->names[i], name) == 0) {
            snprintf(fe->values[i], sizeof(fe->values[i]), "%s", value);
            return;
        }
    }
    assert_true(fe->n < MAX_VARS);
    fe->names[fe->n] = name;
    snprintf(fe->values[fe->n], sizeof(fe->values[0]), "%s", value);
    fe->n++;
}

static void set_now(struct fake_env *fe, int64_t t)
{
    __atomic_store_n(&fe->now, t, __ATOMIC_SEQ_CST);
}

/* ---- the loopback server ---- */

struct server_state {
    struct fake_env *fe;
    int expiry_offset; /* issued credentials expire this long after "now" */
    int fail_status;   /* when set, credential endpoints answer it */
    long delay_ms;
    unsigned imds_token_puts, imds_role_gets, imds_cred_gets, imds_unauthorized;
    unsigned ecs_gets, ecs_unauthorized, sts_calls, issued;
    bool imds_refuse_token;
    char ecs_auth[128];
    /* AssumeRole: credentials the server knows; a request's signature must
     * verify with the ones its Credential= names. */
    struct aws_credentials known[4];
    size_t n_known;
    bool signature_ok;
    char last_signer[64]; /* access key id that signed the last AssumeRole */
    char last_sts_body[8192];
    bool last_sts_signed;
    char last_sts_token_header[256];
    const char *sts_body; /* when set, STS answers it as is ... */
    int sts_body_status;  /* ... with this status (0: 200) */
};

static void iso8601(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void issue_json(struct server_state *st, struct test_response *resp, const char *prefix)
{
    char exp[32], body[512];

    st->issued++;
    iso8601(fake_now(st->fe) + st->expiry_offset, exp);
    snprintf(body, sizeof(body),
             "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s%u\","
             "\"SecretAccessKey\":\"secret-%u\",\"Token\":\"token-%u\",\"Expiration\":\"%s\"}",
             prefix, st->issued, st->issued, st->issued, exp);
    test_response_header(resp, "Content-Type", "application/json");
    test_response_body_str(resp, body);
}

/* Recomputes the SigV4 Authorization of an AssumeRole request with the
 * expected source credentials. */
static bool verify_sts_signature(struct server_state *st, const struct test_request *req)
{
    const char *auth = test_request_header(req, "authorization");
    const char *host = test_request_header(req, "host");
    const char *ctype = test_request_header(req, "content-type");
    struct sigv4_header h[] = {{"host", host}, {"content-type", ctype}};
    struct sigv4_params p = {.region = "us-east-1", .service = "sts", .time = fake_now(st->fe)};
    struct sigv4_request r = {.method = "POST",
                              .path = "/",
                              .headers = h,
                              .n_headers = 2,
                              .payload = req->body,
                              .payload_len = req->body_len};
    struct sigv4_result res;
    const char *cred;
    bool ok = false;

    if (auth == NULL || host == NULL || ctype == NULL)
        return false;
    cred = strstr(auth, "Credential=");
    if (cred == NULL)
        return false;
    cred += 11;
    for (size_t i = 0; i < st->n_known; i++) {
        size_t n = strlen(st->known[i].access_key_id);

        if (strncmp(cred, st->known[i].access_key_id, n) != 0 || cred[n] != '/')
            continue;
        snprintf(st->last_signer, sizeof(st->last_signer), "%.63s", st->known[i].access_key_id);
        if (sigv4_sign(NULL, &st->known[i], &p, &r, &res) != 0)
            return false;
        ok = strcmp(res.authorization, auth) == 0;
        sigv4_result_clear(&res);
    }
    return ok;
}

static void sts_answer(struct server_state *st, const struct test_request *req,
                       struct test_response *resp)
{
    const char *action = strstr((const char *)req->body, "Action=AssumeRoleWithWebIdentity")
                             ? "AssumeRoleWithWebIdentity"
                             : "AssumeRole";
    const char *tok = test_request_header(req, "x-amz-security-token");
    char exp[32], body[2048];

    st->sts_calls++;
    snprintf(st->last_sts_body, sizeof(st->last_sts_body), "%s", (const char *)req->body);
    st->last_sts_signed = test_request_header(req, "authorization") != NULL;
    snprintf(st->last_sts_token_header, sizeof(st->last_sts_token_header), "%s",
             tok != NULL ? tok : "");
    if (strcmp(action, "AssumeRole") == 0)
        st->signature_ok = verify_sts_signature(st, req);
    if (st->sts_body != NULL) {
        resp->status = st->sts_body_status != 0 ? st->sts_body_status : 200;
        test_response_header(resp, "Content-Type", "text/xml");
        test_response_body_str(resp, st->sts_body);
        return;
    }
    if (st->fail_status != 0 || (strcmp(action, "AssumeRole") == 0 && !st->signature_ok)) {
        resp->status = st->fail_status != 0 ? st->fail_status : 403;
        test_response_body_str(
            resp, "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                  "<Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed to assume "
                  "role</Message></Error><RequestId>req-err-1</RequestId></ErrorResponse>");
        return;
    }
    st->issued++;
    iso8601(fake_now(st->fe) + st->expiry_offset, exp);
    snprintf(body, sizeof(body),
             "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult>"
             "<Credentials><AccessKeyId>ASIASTS%u</AccessKeyId>"
             "<SecretAccessKey>sts-secret-%u</SecretAccessKey>"
             "<SessionToken>sts-token-%u</SessionToken><Expiration>%s</Expiration>"
             "</Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s"
             "</Arn></AssumedRoleUser></%sResult><ResponseMetadata><RequestId>req-%u"
             "</RequestId></ResponseMetadata></%sResponse>",
             action, action, st->issued, st->issued, st->issued, exp, action, st->issued, action);
    test_response_header(resp, "Content-Type", "text/xml");
    test_response_body_str(resp, body);
}

static void handler(const struct test_request *req, struct test_response *resp, void *arg)
{
    struct server_state *st = arg;
    const char *imds_token = test_request_header(req, "x-aws-ec2-metadata-token");
    bool imds_authorized = imds_token != NULL && strcmp(imds_token, "imds-session-token") == 0;

    resp->delay_ms = st->delay_ms;
    if (strcmp(req->method, "PUT") == 0 && strcmp(req->target, "/latest/api/token") == 0) {
        if (test_request_header(req, "x-aws-ec2-metadata-token-ttl-seconds") == NULL) {
            resp->status = 400;
            return;
        }
        st->imds_token_puts++;
        if (st->imds_refuse_token) {
            resp->status = 403;
            return;
        }
        test_response_body_str(resp, "imds-session-token");
        return;
    }
    if (strncmp(req->target, "/latest/meta-data/iam/security-credentials/", 43) == 0) {
        if (!imds_authorized) {
            st->imds_unauthorized++;
            resp->status = 401;
            return;
        }
        if (req->target[43] == '\0') {
            st->imds_role_gets++;
            test_response_body_str(resp, "test-role\n");
            return;
        }
        if (strcmp(req->target + 43, "test-role") != 0) {
            resp->status = 404;
            return;
        }
        st->imds_cred_gets++;
        if (st->fail_status != 0) {
            resp->status = st->fail_status;
            return;
        }
        issue_json(st, resp, "ASIAIMDS");
        return;
    }
    if (strcmp(req->target, "/ecs/creds") == 0) {
        const char *auth = test_request_header(req, "authorization");

        st->ecs_gets++;
        if (st->ecs_auth[0] != '\0' && (auth == NULL || strcmp(auth, st->ecs_auth) != 0)) {
            st->ecs_unauthorized++;
            resp->status = 401;
            return;
        }
        issue_json(st, resp, "ASIAECS");
        return;
    }
    if (strcmp(req->method, "POST") == 0 && strcmp(req->target, "/") == 0) {
        sts_answer(st, req, resp);
        return;
    }
    resp->status = 404;
}

/* ---- fixture ---- */

struct fixture {
    struct fake_env fe;
    struct aws_env env;
    struct server_state st;
    struct test_server *srv;
    struct aws_http *http;
    char dir[64];
    char aws_dir[80];
    char config_path[128];
    char creds_path[128];
    char token_path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->fe.now = T0;
    f->env = (struct aws_env){fake_get, &f->fe, fake_now};
    f->st.fe = &f->fe;
    f->st.expiry_offset = 3600;
    f->srv = test_server_start(handler, &f->st);
    f->http = aws_http_new(NULL);
    snprintf(f->dir, sizeof(f->dir), "/tmp/aviary-creds-XXXXXX");
    if (f->srv == NULL || f->http == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->aws_dir, sizeof(f->aws_dir), "%s/.aws", f->dir);
    if (mkdir(f->aws_dir, 0700) != 0)
        return -1;
    snprintf(f->config_path, sizeof(f->config_path), "%s/config", f->aws_dir);
    snprintf(f->creds_path, sizeof(f->creds_path), "%s/credentials", f->aws_dir);
    snprintf(f->token_path, sizeof(f->token_path), "%s/token", f->dir);
    /* A clean environment: HOME with no files, IMDS pointed at nothing. */
    env_set(&f->fe, "HOME", f->dir);
    env_set(&f->fe, "AWS_EC2_METADATA_DISABLED", "true");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    test_server_stop(f->srv);
    aws_http_free(f->http);
    unlink(f->config_path);
    unlink(f->creds_path);
    unlink(f->token_path);
    rmdir(f->aws_dir);
    rmdir(f->dir);
    for (size_t i = 0; i < 4; i++)
        aws_credentials_clear(&f->st.known[i]);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    fclose(fp);
}

static void know(struct fixture *f, const char *akid, const char *secret, const char *token)
{
    assert_true(f->st.n_known < 4);
    assert_int_equal(
        aws_credentials_fill(&f->st.known[f->st.n_known++], akid, secret, token, 0, NULL), 0);
}

static void point_sts_at_server(struct fixture *f)
{
    env_set(&f->fe, "AWS_ENDPOINT_URL_STS", test_server_url(f->srv));
    env_set(&f->fe, "AWS_REGION", "us-east-1");
}

/* ---- tests ---- */

static void test_environment_first(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    env_set(&f->fe, "AWS_ACCESS_KEY_ID", "AKIAENV");
    env_set(&f->fe, "AWS_SECRET_ACCESS_KEY", "env-secret");
    env_set(&f->fe, "AWS_SESSION_TOKEN", "env-token");
    /* A profile with keys too: the environment comes first. */
    write_file(f->creds_path, "[default]\naws_access_key_id = AKIAFILE\n"
                              "aws_secret_access_key = file-secret\n");
    p = aws_credentials_provider_chain_new(&f->env, f->http, NULL);
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "AKIAENV");
    assert_string_equal(c.secret_access_key, "env-secret");
    assert_string_equal(c.session_token, "env-token");
    assert_string_equal(c.source, "environment");
    assert_int_equal(c.expiration, 0);
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    /* Legacy names. */
    f->fe.n = 0;
    env_set(&f->fe, "AWS_ACCESS_KEY", "AKIALEGACY");
    env_set(&f->fe, "AWS_SECRET_KEY", "legacy-secret");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "AKIALEGACY");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);
}

static void test_partial_environment_fails(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    env_set(&f->fe, "AWS_ACCESS_KEY_ID", "AKIAENV");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, "environment: AWS_ACCESS_KEY_ID set without "
                                        "AWS_SECRET_ACCESS_KEY"));
    aws_credentials_provider_free(p);
}

static void test_nothing_configured_names_every_provider(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, "environment: AWS_ACCESS_KEY_ID not set"));
    assert_non_null(strstr(err.message, "web-identity: AWS_WEB_IDENTITY_TOKEN_FILE not set"));
    assert_non_null(strstr(err.message, "profile: profile default not found"));
    assert_non_null(strstr(err.message, "ecs: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
    assert_non_null(strstr(err.message, "imds: disabled by AWS_EC2_METADATA_DISABLED"));
    assert_int_equal(test_server_requests(f->srv), 0);
    aws_credentials_provider_free(p);

    /* An explicitly chosen profile that does not exist is an error. */
    env_set(&f->fe, "AWS_PROFILE", "missing");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "profile: profile missing not found"));
    assert_null(strstr(err.message, "imds:")); /* the chain stopped there */
    aws_credentials_provider_free(p);
}

static void test_profile_static_keys(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    write_file(f->creds_path, "[dev]\naws_access_key_id = AKIACREDS\n"
                              "aws_secret_access_key = creds-secret\n");
    write_file(f->config_path, "[profile dev]\naws_access_key_id = AKIACONFIG\n"
                               "aws_secret_access_key = config-secret\nregion = eu-west-1\n"
                               "[profile cfgonly]\naws_access_key_id = AKIACFG\n"
                               "aws_secret_access_key = cfg-secret\naws_session_token = cfg-tok\n");
    env_set(&f->fe, "AWS_PROFILE", "dev");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "AKIACREDS"); /* credentials file wins */
    assert_string_equal(c.secret_access_key, "creds-secret");
    assert_string_equal(c.session_token, "");
    assert_string_equal(c.source, "profile");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    /* AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE move the files. */
    env_set(&f->fe, "AWS_PROFILE", "cfgonly");
    env_set(&f->fe, "HOME", "/nonexistent");
    env_set(&f->fe, "AWS_CONFIG_FILE", f->config_path);
    env_set(&f->fe, "AWS_SHARED_CREDENTIALS_FILE", f->creds_path);
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "AKIACFG");
    assert_string_equal(c.session_token, "cfg-tok");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);
}

static void test_profile_assume_role_chain(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    point_sts_at_server(f);
    write_file(f->creds_path, "[base]\naws_access_key_id = AKIABASE\n"
                              "aws_secret_access_key = base-secret\n");
    write_file(f->config_path,
               "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\n"
               "source_profile = base\nrole_session_name = my session\n"
               "external_id = ext-42\nduration_seconds = 1800\n");
    env_set(&f->fe, "AWS_PROFILE", "deploy");
    know(f, "AKIABASE", "base-secret", NULL);
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_int_equal(f->st.sts_calls, 1);
    assert_true(f->st.last_sts_signed);
    assert_true(f->st.signature_ok);
    assert_string_equal(f->st.last_sts_token_header, "");
    assert_non_null(strstr(f->st.last_sts_body, "Action=AssumeRole&Version=2011-06-15"));
    assert_non_null(
        strstr(f->st.last_sts_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy"));
    assert_non_null(strstr(f->st.last_sts_body, "RoleSessionName=my%20session"));
    assert_non_null(strstr(f->st.last_sts_body, "ExternalId=ext-42"));
    assert_non_null(strstr(f->st.last_sts_body, "DurationSeconds=1800"));
    assert_string_equal(c.access_key_id, "ASIASTS1");
    assert_string_equal(c.secret_access_key, "sts-secret-1");
    assert_string_equal(c.session_token, "sts-token-1");
    assert_int_equal(c.expiration, T0 + 3600);
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);
}

static void test_profile_two_hop_chain_and_cycle(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    /* AWS_ENDPOINT_URL (no service-specific override) also reaches STS. */
    env_set(&f->fe, "AWS_ENDPOINT_URL", test_server_url(f->srv));
    write_file(f->config_path,
               "[profile top]\nrole_arn = arn:aws:iam::1:role/top\nsource_profile = middle\n"
               "[profile middle]\nrole_arn = arn:aws:iam::1:role/middle\nsource_profile = base\n"
               "[profile base]\naws_access_key_id = AKIABASE\naws_secret_access_key = bs\n"
               "[profile loop1]\nrole_arn = arn:aws:iam::1:role/l1\nsource_profile = loop2\n"
               "[profile loop2]\nrole_arn = arn:aws:iam::1:role/l2\nsource_profile = loop1\n");
    env_set(&f->fe, "AWS_PROFILE", "top");
    know(f, "AKIABASE", "bs", NULL);
    know(f, "ASIASTS1", "sts-secret-1", "sts-token-1");
    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", NULL);
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    /* base signs the first hop (middle); its result signs the second (top). */
    assert_int_equal(f->st.sts_calls, 2);
    assert_true(f->st.signature_ok);
    assert_string_equal(f->st.last_signer, "ASIASTS1");
    assert_string_equal(f->st.last_sts_token_header, "sts-token-1");
    assert_non_null(strstr(f->st.last_sts_body, "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Ftop"));
    assert_string_equal(c.access_key_id, "ASIASTS2");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    /* STS refusing: its code and message reach the caller, no secret. */
    f->st.fail_status = 403;
    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", NULL);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_string_equal(err.code, "AccessDenied");
    assert_int_equal(err.http_status, 403);
    assert_string_equal(err.request_id, "req-err-1");
    assert_non_null(strstr(err.message, "not allowed to assume role"));
    assert_non_null(strstr(err.message, "profile middle"));
    assert_null(strstr(err.message, "bs"));
    aws_credentials_provider_free(p);
    f->st.fail_status = 0;

    env_set(&f->fe, "AWS_PROFILE", "loop1");
    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", NULL);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "cycle"));
    aws_credentials_provider_free(p);
}

static void test_profile_credential_source_environment(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    point_sts_at_server(f);
    write_file(f->config_path, "[profile ci]\nrole_arn = arn:aws:iam::1:role/ci\n"
                               "credential_source = Environment\n"
                               "[profile bad]\nrole_arn = arn:aws:iam::1:role/ci\n"
                               "credential_source = Somewhere\n");
    env_set(&f->fe, "AWS_ACCESS_KEY_ID", "AKIAENVSRC");
    env_set(&f->fe, "AWS_SECRET_ACCESS_KEY", "envsrc-secret");
    env_set(&f->fe, "AWS_SESSION_TOKEN", "envsrc-token");
    know(f, "AKIAENVSRC", "envsrc-secret", "envsrc-token");
    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "ci");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_true(f->st.signature_ok);
    assert_string_equal(f->st.last_sts_token_header, "envsrc-token");
    assert_string_equal(c.access_key_id, "ASIASTS1");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "bad");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "unknown credential_source Somewhere"));
    aws_credentials_provider_free(p);
}

static void test_web_identity(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    point_sts_at_server(f);
    write_file(f->token_path, "jwt-one\n");
    env_set(&f->fe, "AWS_WEB_IDENTITY_TOKEN_FILE", f->token_path);
    env_set(&f->fe, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod");
    env_set(&f->fe, "AWS_ROLE_SESSION_NAME", "pod-session");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIASTS1");
    assert_string_equal(c.source, "web-identity");
    assert_false(f->st.last_sts_signed); /* unsigned call */
    assert_non_null(strstr(f->st.last_sts_body, "Action=AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(f->st.last_sts_body, "WebIdentityToken=jwt-one"));
    assert_non_null(strstr(f->st.last_sts_body, "RoleSessionName=pod-session"));
    aws_credentials_clear(&c);

    /* The token file is rotated; the refresh (4 minutes before expiry)
     * sends the new token. */
    write_file(f->token_path, "jwt-two");
    set_now(&f->fe, T0 + 3600 - 240);
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_int_equal(f->st.sts_calls, 2);
    assert_non_null(strstr(f->st.last_sts_body, "WebIdentityToken=jwt-two"));
    assert_string_equal(c.access_key_id, "ASIASTS2");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);
}

static void test_profile_web_identity_and_bad_settings(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;
    char config[1024];

    point_sts_at_server(f);
    write_file(f->token_path, "profile-jwt");
    snprintf(config, sizeof(config),
             "[profile wi]\nrole_arn = arn:aws:iam::1:role/wi\nweb_identity_token_file = %s\n"
             "role_session_name = wi-session\n"
             "[profile longer]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = wi\n"
             "duration_seconds = 60\n"
             "[profile both]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = wi\n"
             "credential_source = Environment\n"
             "[profile nosource]\nrole_arn = arn:aws:iam::1:role/x\n"
             "[profile sso]\nsso_session = corp\n",
             f->token_path);
    write_file(f->config_path, config);

    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "wi");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_false(f->st.last_sts_signed);
    assert_non_null(strstr(f->st.last_sts_body, "WebIdentityToken=profile-jwt"));
    assert_non_null(strstr(f->st.last_sts_body, "RoleSessionName=wi-session"));
    assert_string_equal(c.access_key_id, "ASIASTS1");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "longer");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "duration_seconds must be 900..43200"));
    aws_credentials_provider_free(p);

    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "both");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "both source_profile and credential_source"));
    aws_credentials_provider_free(p);

    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "nosource");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "role_arn without source_profile"));
    aws_credentials_provider_free(p);

    p = aws_credentials_provider_profile_new(&f->env, f->http, "us-east-1", "sso");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "does not support"));
    aws_credentials_provider_free(p);
    assert_int_equal(f->st.sts_calls, 1);
}

static void test_ecs_full_uri(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;
    char url[256];

    snprintf(url, sizeof(url), "%s/ecs/creds", test_server_url(f->srv));
    env_set(&f->fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    env_set(&f->fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer env-token");
    snprintf(f->st.ecs_auth, sizeof(f->st.ecs_auth), "Bearer env-token");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAECS1");
    assert_string_equal(c.session_token, "token-1");
    assert_string_equal(c.source, "ecs");
    assert_int_equal(c.expiration, T0 + 3600);
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    /* The token file takes precedence over the variable. */
    write_file(f->token_path, "Bearer file-token\n");
    env_set(&f->fe, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", f->token_path);
    snprintf(f->st.ecs_auth, sizeof(f->st.ecs_auth), "Bearer file-token");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAECS2");
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    /* A wrong token: the endpoint's 401 is reported, nothing else tried. */
    snprintf(f->st.ecs_auth, sizeof(f->st.ecs_auth), "Bearer other");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "ecs: ecs answered HTTP 401"));
    assert_null(strstr(err.message, "file-token"));
    assert_true(f->st.ecs_unauthorized >= 1);
    aws_credentials_provider_free(p);
}

static void test_ecs_full_uri_host_restriction(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    env_set(&f->fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds");
    p = aws_credentials_provider_ecs_new(&f->env, f->http);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "192.0.2.10 is not loopback"));
    /* Allowed hosts are accepted by the check (no request made here for
     * link-local addresses: only the host test is exercised). */
    env_set(&f->fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[::2]:80/creds");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "::2 is not loopback"));
    /* Userinfo cannot smuggle a loopback-looking host past the check. */
    env_set(&f->fe, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1@192.0.2.1/creds");
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "bad host"));
    aws_credentials_provider_free(p);
    assert_int_equal(test_server_requests(f->srv), 0);
}

static void enable_imds(struct fixture *f)
{
    env_set(&f->fe, "AWS_EC2_METADATA_DISABLED", "false");
    env_set(&f->fe, "AWS_EC2_METADATA_SERVICE_ENDPOINT", test_server_url(f->srv));
}

static void test_imds_v2(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    enable_imds(f);
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAIMDS1");
    assert_string_equal(c.secret_access_key, "secret-1");
    assert_string_equal(c.source, "imds");
    assert_int_equal(f->st.imds_token_puts, 1);
    assert_int_equal(f->st.imds_role_gets, 1);
    assert_int_equal(f->st.imds_cred_gets, 1);
    assert_int_equal(f->st.imds_unauthorized, 0); /* every GET carried the token */
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);

    /* IMDS refusing the token: reported with its status. */
    f->st.imds_refuse_token = true;
    p = aws_credentials_provider_imds_new(&f->env, f->http);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_non_null(strstr(err.message, "IMDSv2 token request answered HTTP 403"));
    assert_int_equal(f->st.imds_role_gets, 1);
    aws_credentials_provider_free(p);
    f->st.imds_refuse_token = false;

    /* Disabled again: skipped without a request. */
    env_set(&f->fe, "AWS_EC2_METADATA_DISABLED", "TRUE");
    p = aws_credentials_provider_imds_new(&f->env, f->http);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_int_equal(f->st.imds_token_puts, 2);
    aws_credentials_provider_free(p);
}

static void test_refresh_before_expiry(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    enable_imds(f);
    f->st.expiry_offset = 15 * 60;
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAIMDS1");
    assert_int_equal(c.expiration, T0 + 900);

    /* 10 minutes left: cached. */
    set_now(&f->fe, T0 + 300);
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAIMDS1");
    assert_int_equal(f->st.imds_cred_gets, 1);

    /* 4 minutes left: refreshed. */
    set_now(&f->fe, T0 + 660);
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAIMDS2");
    assert_int_equal(c.expiration, T0 + 660 + 900);
    assert_int_equal(f->st.imds_cred_gets, 2);

    /* A failing refresh keeps still-valid credentials... */
    f->st.fail_status = 500;
    set_now(&f->fe, T0 + 660 + 700); /* 200 s left */
    assert_int_equal(aws_credentials_get(p, &c, &err), 0);
    assert_string_equal(c.access_key_id, "ASIAIMDS2");
    assert_true(f->st.imds_cred_gets >= 3);
    /* ...and does not retry on every call right after a failure. */
    {
        unsigned gets = f->st.imds_cred_gets;

        assert_int_equal(aws_credentials_get(p, &c, &err), 0);
        assert_int_equal(f->st.imds_cred_gets, gets);
    }
    /* Once expired, the failure is reported. */
    set_now(&f->fe, T0 + 660 + 901);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, "imds"));
    assert_null(strstr(err.message, "secret-"));
    aws_credentials_clear(&c);
    aws_credentials_provider_free(p);
}

struct getter {
    struct aws_credentials_provider *p;
    int rc;
    char akid[AWS_ACCESS_KEY_MAX];
};

static void *getter_thread(void *arg)
{
    struct getter *g = arg;
    struct aws_credentials c;
    struct aws_error err;

    g->rc = aws_credentials_get(g->p, &c, &err);
    snprintf(g->akid, sizeof(g->akid), "%s", g->rc == 0 ? c.access_key_id : "");
    aws_credentials_clear(&c);
    return NULL;
}

static void run_getters(struct aws_credentials_provider *p, struct getter *g, size_t n)
{
    pthread_t th[8];

    for (size_t i = 0; i < n; i++) {
        g[i] = (struct getter){p, -2, ""};
        assert_int_equal(pthread_create(&th[i], NULL, getter_thread, &g[i]), 0);
    }
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
}

static void test_concurrent_refresh_one_fetch(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct getter g[8];

    enable_imds(f);
    f->st.delay_ms = 200; /* widens the window in which the threads overlap */
    f->st.expiry_offset = 600;
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");

    /* Cold start: one fetch, every caller waits for it and gets its result. */
    run_getters(p, g, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(g[i].rc, 0);
        assert_string_equal(g[i].akid, "ASIAIMDS1");
    }
    assert_int_equal(f->st.imds_cred_gets, 1);

    /* 4 minutes left: one refresh; callers get either the still-valid copy
     * or the new one, and only one fetch happens. */
    set_now(&f->fe, T0 + 360);
    run_getters(p, g, 8);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(g[i].rc, 0);
        assert_true(strcmp(g[i].akid, "ASIAIMDS1") == 0 || strcmp(g[i].akid, "ASIAIMDS2") == 0);
    }
    assert_int_equal(f->st.imds_cred_gets, 2);
    assert_int_equal(f->st.imds_token_puts, 2);
    aws_credentials_provider_free(p);
}

static void test_static_provider(void **state)
{
    struct aws_credentials in, out;
    struct aws_credentials_provider *p;
    struct aws_error err;

    (void)state;
    assert_int_equal(aws_credentials_fill(&in, "AKIASTATIC", "s", "t", 0, NULL), 0);
    p = aws_credentials_provider_static_new(&in);
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &out, &err), 0);
    assert_string_equal(out.access_key_id, "AKIASTATIC");
    assert_string_equal(out.session_token, "t");
    assert_string_equal(out.source, "static");
    aws_credentials_clear(&out);
    aws_credentials_clear(&in);
    aws_credentials_provider_free(p);
    assert_int_equal(aws_credentials_get(NULL, &out, &err), -1);
}

/* ---- hostile and unusual STS answers ---- */

/* Runs AssumeRoleWithWebIdentity against the server answering `body` with
 * `status` while stderr goes to a temporary file. Returns the call's result;
 * *stderr_bytes is what was written to stderr meanwhile. */
static int sts_with_body(struct fixture *f, const char *body, int status, struct aws_credentials *c,
                         struct aws_error *err, off_t *stderr_bytes)
{
    struct aws_sts_assume_role_params params = {
        .role_arn = "arn:aws:iam::1:role/r", .session_name = "s", .web_identity_token = "jwt"};
    char path[128];
    int fd, saved, rc;

    point_sts_at_server(f);
    f->st.sts_body = body;
    f->st.sts_body_status = status;
    snprintf(path, sizeof(path), "%s/stderr", f->dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 2), 2);
    rc = aws_sts_assume_role(&f->env, f->http, "us-east-1", NULL, &params, c, err);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    *stderr_bytes = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    f->st.sts_body = NULL;
    f->st.sts_body_status = 0;
    return rc;
}

#define STS_OK_HEAD                                                                                \
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"      \
    "<AssumeRoleWithWebIdentityResult><Credentials>"
#define STS_OK_TAIL                                                                                \
    "<Expiration>2023-11-15T00:00:00Z</Expiration></Credentials>"                                  \
    "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"

static void test_sts_hostile_answers_rejected(void **state)
{
    static const struct {
        const char *what;
        int status;
        const char *body;
    } cases[] = {
        {"internal entity in the secret", 200,
         "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY s \"entity-secret\">]>" STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>&s;</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"external entity", 200,
         "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
         "\"file:///etc/hostname\">]>" STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>&x;</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"nested entities", 200,
         "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">"
         "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>" STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>&c;</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"DTD without entities", 200,
         "<!DOCTYPE AssumeRoleWithWebIdentityResponse>" STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"undeclared entity", 200,
         STS_OK_HEAD "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>&nope;</SecretAccessKey>"
                     "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"bytes invalid in the declared encoding", 200,
         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>" STS_OK_HEAD
         "<AccessKeyId>ASIAOK</AccessKeyId><SecretAccessKey>s\xff\xfe</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"bytes the declared ISO-2022-JP cannot convert", 200,
         "<?xml version=\"1.0\" encoding=\"ISO-2022-JP\"?>" STS_OK_HEAD
         "<AccessKeyId>ASIAOK</AccessKeyId><SecretAccessKey>\x1b$B\xff\xff</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"unknown encoding", 200,
         "<?xml version=\"1.0\" encoding=\"x-no-such-charset\"?>" STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"markup inside the secret", 200,
         STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>s<b>x</b></SecretAccessKey>"
         "<SessionToken>t</SessionToken>" STS_OK_TAIL},
        {"Credentials outside the result", 200,
         "<AssumeRoleWithWebIdentityResponse><Other><Credentials>"
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
         "<SessionToken>t</SessionToken><Expiration>2023-11-15T00:00:00Z</Expiration>"
         "</Credentials></Other></AssumeRoleWithWebIdentityResponse>"},
        {"no session token", 200,
         STS_OK_HEAD
         "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>s</SecretAccessKey>" STS_OK_TAIL},
        {"not XML", 200, "{\"Credentials\":{}}"},
        {"error answer with a DTD", 403,
         "<!DOCTYPE e [<!ENTITY m \"entity-message\">]><ErrorResponse><Error>"
         "<Code>AccessDenied</Code><Message>&m;</Message></Error></ErrorResponse>"},
    };
    struct fixture *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct aws_credentials c;
        struct aws_error err;
        off_t errbytes = -1;

        memset(&c, 0x5a, sizeof(c));
        aws_error_clear(&err);
        print_message("case: %s\n", cases[i].what);
        assert_int_equal(sts_with_body(f, cases[i].body, cases[i].status, &c, &err, &errbytes), -1);
        print_message("  -> %s: %s\n", err.code, err.message);
        assert_int_equal(errbytes, 0);
        assert_int_equal(err.kind, cases[i].status == 200 ? AWS_ERR_PARSE : AWS_ERR_SERVICE);
        assert_string_equal(c.access_key_id, "");
        assert_string_equal(c.secret_access_key, "");
        assert_null(strstr(err.message, "entity-"));
        assert_null(strstr(err.message, "0xFF")); /* no byte of the secret quoted */
        assert_null(strstr(err.code, "entity-"));
        if (cases[i].status != 200) {
            assert_int_equal(err.http_status, cases[i].status);
            assert_string_equal(err.code, "Http403");
        }
    }
    assert_int_equal(f->st.sts_calls, sizeof(cases) / sizeof(cases[0]));
}

/* Through the chain, a refused STS answer is a credentials error. */
static void test_sts_doctype_is_a_credentials_error(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials_provider *p;
    struct aws_credentials c;
    struct aws_error err;

    point_sts_at_server(f);
    f->st.sts_body = "<!DOCTYPE r [<!ENTITY s \"entity-secret\">]>" STS_OK_HEAD
                     "<AccessKeyId>ASIAEVIL</AccessKeyId><SecretAccessKey>&s;</SecretAccessKey>"
                     "<SessionToken>t</SessionToken>" STS_OK_TAIL;
    write_file(f->token_path, "jwt-one\n");
    env_set(&f->fe, "AWS_WEB_IDENTITY_TOKEN_FILE", f->token_path);
    env_set(&f->fe, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod");
    p = aws_credentials_provider_chain_new(&f->env, f->http, "us-east-1");
    assert_non_null(p);
    assert_int_equal(aws_credentials_get(p, &c, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_CREDENTIALS);
    assert_non_null(strstr(err.message, "AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(err.message, "DTD"));
    assert_null(strstr(err.message, "entity-secret"));
    assert_null(strstr(err.message, "jwt-one"));
    assert_int_equal(f->st.sts_calls, 1);
    aws_credentials_provider_free(p);
}

/* Well-formed answers AWS may send: a namespace prefix, predefined entities
 * and CDATA in values, comments and white space between elements. */
static void test_sts_wellformed_variants_accepted(void **state)
{
    struct fixture *f = *state;
    struct aws_credentials c;
    struct aws_error err;
    off_t errbytes = -1;

    assert_int_equal(
        sts_with_body(f,
                      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<sts:AssumeRoleWithWebIdentityResponse "
                      "xmlns:sts=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                      "  <sts:AssumeRoleWithWebIdentityResult>\n"
                      "    <!-- issued -->\n"
                      "    <sts:Credentials>\n"
                      "      <sts:AccessKeyId>ASIAOK</sts:AccessKeyId>\n"
                      "      <sts:SecretAccessKey>a&amp;b&lt;c</sts:SecretAccessKey>\n"
                      "      <sts:SessionToken><![CDATA[tok+/=]]>en</sts:SessionToken>\n"
                      "      <sts:Expiration>2023-11-15T00:00:00Z</sts:Expiration>\n"
                      "    </sts:Credentials>\n"
                      "  </sts:AssumeRoleWithWebIdentityResult>\n"
                      "</sts:AssumeRoleWithWebIdentityResponse>\n",
                      200, &c, &err, &errbytes),
        0);
    assert_int_equal(errbytes, 0);
    assert_string_equal(c.access_key_id, "ASIAOK");
    assert_string_equal(c.secret_access_key, "a&b<c");
    assert_string_equal(c.session_token, "tok+/=en");
    assert_int_equal(c.expiration, 1700006400);
    assert_string_equal(c.source, "web-identity");
    aws_credentials_clear(&c);
}

static void test_iso8601(void **state)
{
    int64_t t;

    (void)state;
    assert_int_equal(aws_parse_iso8601("2015-08-30T12:36:00Z", &t), 0);
    assert_int_equal(t, 1440938160);
    assert_int_equal(aws_parse_iso8601("2015-08-30T12:36:00.123Z", &t), 0);
    assert_int_equal(t, 1440938160);
    assert_int_equal(aws_parse_iso8601("2015-08-30T14:36:00+02:00", &t), 0);
    assert_int_equal(t, 1440938160);
    assert_int_equal(aws_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(aws_parse_iso8601("2015-08-30 12:36", &t), -1);
    assert_int_equal(aws_parse_iso8601("2015-13-30T12:36:00Z", &t), -1);
    assert_int_equal(aws_parse_iso8601("2015-08-30T12:36:00Zjunk", &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_environment_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_environment_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_configured_names_every_provider, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_profile_static_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_assume_role_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_two_hop_chain_and_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_credential_source_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_web_identity_and_bad_settings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ecs_full_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_full_uri_host_restriction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_before_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_refresh_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_hostile_answers_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_doctype_is_a_credentials_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_wellformed_variants_accepted, setup, teardown),
        cmocka_unit_test(test_static_provider),
        cmocka_unit_test(test_iso8601),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
