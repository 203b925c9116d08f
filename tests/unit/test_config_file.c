/* Tests for the shared config/credentials file parser, file location and
 * profile selection, and aws_region_resolve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/config_file.h"

/* An injectable environment: NAME=VALUE pairs. */
struct fake_env {
    const char *vars[16][2];
};

static const char *fake_get(void *arg, const char *name)
{
    struct fake_env *fe = arg;

    for (size_t i = 0; i < 16 && fe->vars[i][0] != NULL; i++)
        if (strcmp(fe->vars[i][0], name) == 0)
            return fe->vars[i][1];
    return NULL;
}

static int64_t fake_now(void *arg)
{
    (void)arg;
    return 1700000000;
}

static const char config_text[] = "# comment\n"
                                  "; another comment\n"
                                  "[default]\n"
                                  "region = eu-central-1\n"
                                  "output=json\n"
                                  "\n"
                                  "[profile dev]\n"
                                  "region   =   us-west-2   \n"
                                  "role_arn = arn:aws:iam::123456789012:role/dev\n"
                                  "source_profile = default\n"
                                  "s3 =\n"
                                  "  endpoint_url = http://127.0.0.1:4566\n"
                                  "  addressing_style = path\n"
                                  "note = first line\n"
                                  "  second line\n"
                                  "[profile   spaced   ]\n"
                                  "region = ap-south-1\n"
                                  "[bare]\n"
                                  "region = should-not-be-a-profile\n"
                                  "[services local]\n"
                                  "sts =\n"
                                  "  endpoint_url = http://127.0.0.1:9999\n"
                                  "garbage line without equals\n"
                                  "= no key\n"
                                  "[profile dev]\n"
                                  "output = text\n"
                                  "region = us-west-1\n"
                                  "[unterminated\n"
                                  "region = ignored\n";

static void test_parse_config(void **state)
{
    struct aws_config_file *f =
        aws_config_file_parse(config_text, strlen(config_text), AWS_CONFIG_KIND_CONFIG);
    const struct aws_config_section *def, *dev, *svc;

    (void)state;
    assert_non_null(f);
    def = aws_config_file_profile(f, "default");
    assert_non_null(def);
    assert_string_equal(aws_config_section_get(def, "region"), "eu-central-1");
    assert_string_equal(aws_config_section_get(def, "output"), "json");
    assert_null(aws_config_section_get(def, "missing"));

    dev = aws_config_file_profile(f, "dev");
    assert_non_null(dev);
    assert_string_equal(aws_config_section_get(dev, "region"), "us-west-1"); /* later wins */
    assert_string_equal(aws_config_section_get(dev, "output"), "text");      /* merged */
    assert_string_equal(aws_config_section_get(dev, "role_arn"),
                        "arn:aws:iam::123456789012:role/dev");
    assert_string_equal(aws_config_section_get(dev, "s3"), "");
    assert_string_equal(aws_config_section_get_sub(dev, "s3", "endpoint_url"),
                        "http://127.0.0.1:4566");
    assert_string_equal(aws_config_section_get_sub(dev, "s3", "addressing_style"), "path");
    assert_null(aws_config_section_get(dev, "endpoint_url"));
    assert_string_equal(aws_config_section_get(dev, "note"), "first line\nsecond line");

    assert_string_equal(aws_config_section_get(aws_config_file_profile(f, "spaced"), "region"),
                        "ap-south-1");
    assert_null(aws_config_file_profile(f, "bare")); /* "[bare]" is not a profile in config */
    assert_null(aws_config_file_profile(f, "unterminated"));

    svc = aws_config_file_section(f, "services", "local");
    assert_non_null(svc);
    assert_string_equal(aws_config_section_get_sub(svc, "sts", "endpoint_url"),
                        "http://127.0.0.1:9999");
    assert_null(aws_config_section_get(svc, "garbage line without equals"));
    assert_null(aws_config_file_section(f, "profile", "dev")); /* profiles via _profile */
    aws_config_file_free(f);
}

static void test_profile_default_precedence(void **state)
{
    static const char both[] = "[default]\nregion = a\n[profile default]\nregion = b\n";
    static const char creds[] = "[default]\naws_access_key_id = A\n"
                                "[profile x]\naws_access_key_id = B\n[x]\naws_access_key_id = C\n";
    struct aws_config_file *f = aws_config_file_parse(both, strlen(both), AWS_CONFIG_KIND_CONFIG);

    (void)state;
    assert_non_null(f);
    assert_string_equal(aws_config_section_get(aws_config_file_profile(f, "default"), "region"),
                        "b");
    aws_config_file_free(f);

    /* In the credentials file every section is a profile, named literally. */
    f = aws_config_file_parse(creds, strlen(creds), AWS_CONFIG_KIND_CREDENTIALS);
    assert_non_null(f);
    assert_string_equal(
        aws_config_section_get(aws_config_file_profile(f, "default"), "aws_access_key_id"), "A");
    assert_string_equal(
        aws_config_section_get(aws_config_file_profile(f, "profile x"), "aws_access_key_id"), "B");
    assert_string_equal(
        aws_config_section_get(aws_config_file_profile(f, "x"), "aws_access_key_id"), "C");
    aws_config_file_free(f);
}

static void test_paths_and_profile_name(void **state)
{
    struct fake_env fe = {{{"HOME", "/home/u"}}};
    struct aws_env env = {fake_get, &fe, fake_now};
    char path[256];

    (void)state;
    assert_int_equal(aws_config_file_path(&env, AWS_CONFIG_KIND_CONFIG, path, sizeof(path)), 0);
    assert_string_equal(path, "/home/u/.aws/config");
    assert_int_equal(aws_config_file_path(&env, AWS_CONFIG_KIND_CREDENTIALS, path, sizeof(path)),
                     0);
    assert_string_equal(path, "/home/u/.aws/credentials");
    assert_string_equal(aws_config_profile_name(&env), "default");
    assert_false(aws_config_profile_explicit(&env));
    assert_int_equal(aws_config_file_path(&env, AWS_CONFIG_KIND_CONFIG, path, 8), -1);

    fe.vars[1][0] = "AWS_CONFIG_FILE";
    fe.vars[1][1] = "~/custom/config";
    fe.vars[2][0] = "AWS_SHARED_CREDENTIALS_FILE";
    fe.vars[2][1] = "/etc/aws/creds";
    fe.vars[3][0] = "AWS_DEFAULT_PROFILE";
    fe.vars[3][1] = "legacy";
    assert_int_equal(aws_config_file_path(&env, AWS_CONFIG_KIND_CONFIG, path, sizeof(path)), 0);
    assert_string_equal(path, "/home/u/custom/config");
    assert_int_equal(aws_config_file_path(&env, AWS_CONFIG_KIND_CREDENTIALS, path, sizeof(path)),
                     0);
    assert_string_equal(path, "/etc/aws/creds");
    assert_string_equal(aws_config_profile_name(&env), "legacy");
    assert_true(aws_config_profile_explicit(&env));
    fe.vars[4][0] = "AWS_PROFILE";
    fe.vars[4][1] = "prod";
    assert_string_equal(aws_config_profile_name(&env), "prod");

    /* No HOME and no explicit path: no file location. */
    memset(&fe, 0, sizeof(fe));
    assert_int_equal(aws_config_file_path(&env, AWS_CONFIG_KIND_CONFIG, path, sizeof(path)), -1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
}

static void test_load_and_region(void **state)
{
    char dir[] = "/tmp/aviary-cfg-XXXXXX", path[256], region[64];
    struct fake_env fe;
    struct aws_env env = {fake_get, &fe, fake_now};
    struct aws_config_file *f = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/config", dir);
    write_file(path, "[default]\nregion = eu-west-3\n[profile other]\nregion = sa-east-1\n");

    /* A missing file is an empty document, not an error. */
    assert_int_equal(aws_config_file_load("/nonexistent/aviary/config", AWS_CONFIG_KIND_CONFIG, &f),
                     0);
    assert_non_null(f);
    assert_null(aws_config_file_profile(f, "default"));
    aws_config_file_free(f);
    /* A directory is an error. */
    assert_int_equal(aws_config_file_load(dir, AWS_CONFIG_KIND_CONFIG, &f), -1);
    assert_null(f);

    memset(&fe, 0, sizeof(fe));
    fe.vars[0][0] = "AWS_CONFIG_FILE";
    fe.vars[0][1] = path;
    assert_int_equal(aws_region_resolve(&env, region, sizeof(region)), 0);
    assert_string_equal(region, "eu-west-3");
    fe.vars[1][0] = "AWS_PROFILE";
    fe.vars[1][1] = "other";
    assert_int_equal(aws_region_resolve(&env, region, sizeof(region)), 0);
    assert_string_equal(region, "sa-east-1");
    fe.vars[2][0] = "AWS_DEFAULT_REGION";
    fe.vars[2][1] = "us-east-2";
    assert_int_equal(aws_region_resolve(&env, region, sizeof(region)), 0);
    assert_string_equal(region, "us-east-2");
    fe.vars[3][0] = "AWS_REGION";
    fe.vars[3][1] = "ca-central-1";
    assert_int_equal(aws_region_resolve(&env, region, sizeof(region)), 0);
    assert_string_equal(region, "ca-central-1");
    assert_int_equal(aws_region_resolve(&env, region, 4), -1); /* does not fit */
    fe.vars[1][1] = "nope";
    fe.vars[2][0] = NULL;
    fe.vars[3][0] = NULL;
    fe.vars[2][1] = NULL;
    assert_int_equal(aws_region_resolve(&env, region, sizeof(region)), -1);

    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_config),
        cmocka_unit_test(test_profile_default_precedence),
        cmocka_unit_test(test_paths_and_profile_name),
        cmocka_unit_test(test_load_and_region),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
