/* The AWS shared config and credentials files (~/.aws/config,
 * ~/.aws/credentials): an INI parser with the SDKs' section naming, and the
 * rules that locate the files and the active profile. Any thread; a parsed
 * file is immutable and may be read from several threads. */
#ifndef AVIARY_AWS_CONFIG_FILE_H
#define AVIARY_AWS_CONFIG_FILE_H

#include <stddef.h>

#include "aws/credentials.h"

/* Largest file read (bigger files are an error, not an allocation). */
#define AWS_CONFIG_FILE_MAX (1024u * 1024u)

/* Which file: sections are named differently in each. In the config file a
 * profile is "[profile NAME]" (or "[default]"), other sections are
 * "[TYPE NAME]" (e.g. "[services x]", "[sso-session x]"); in the
 * credentials file every section "[NAME]" is a profile. */
enum aws_config_kind {
    AWS_CONFIG_KIND_CONFIG,
    AWS_CONFIG_KIND_CREDENTIALS,
};

struct aws_config_file;
struct aws_config_section;

/* Parses text. Comment lines start with '#' or ';'; "key = value" lines
 * (key and value trimmed; '#' inside a value is part of it, as botocore
 * reads it); an indented line after "key =" with an empty value is a
 * sub-property ("s3 =\n  endpoint_url = ..."), after a non-empty value it
 * continues that value on a new line. Malformed lines are skipped. A
 * section that appears twice is merged; a later key wins. Returns a new
 * document (free with aws_config_file_free) or NULL when out of memory. */
struct aws_config_file *aws_config_file_parse(const char *text, size_t len,
                                              enum aws_config_kind kind);

/* Reads and parses `path`. Returns 0 with *out set (an empty document when
 * the file does not exist), or -1 when it cannot be read, is larger than
 * AWS_CONFIG_FILE_MAX, or memory runs out (*out NULL). The read buffer is
 * wiped (credentials files hold secrets). */
int aws_config_file_load(const char *path, enum aws_config_kind kind, struct aws_config_file **out);

/* Wipes every value and frees. NULL is a no-op. */
void aws_config_file_free(struct aws_config_file *file);

/* The profile section named `profile`, or NULL. In a config file "default"
 * is "[profile default]" if present, else "[default]"; a bare "[x]" is not a
 * profile there. Borrowed from `file`. */
const struct aws_config_section *aws_config_file_profile(const struct aws_config_file *file,
                                                         const char *profile);

/* A non-profile section of a config file, "[TYPE NAME]" (e.g. "services",
 * "my-endpoints"), or NULL. Borrowed from `file`. */
const struct aws_config_section *aws_config_file_section(const struct aws_config_file *file,
                                                         const char *type, const char *name);

/* The value of `key` in the section (the last one when repeated), or NULL.
 * NULL section gives NULL. Borrowed from the document. */
const char *aws_config_section_get(const struct aws_config_section *section, const char *key);

/* The value of sub-property `sub` under `key` ("key =\n  sub = value"), or
 * NULL. Borrowed from the document. */
const char *aws_config_section_get_sub(const struct aws_config_section *section, const char *key,
                                       const char *sub);

/* The path of the config file (AWS_CONFIG_FILE, else $HOME/.aws/config) or
 * the credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 * $HOME/.aws/credentials); a leading "~/" is expanded with HOME. Returns 0,
 * or -1 when HOME is needed and unset or out_len is too small. */
int aws_config_file_path(const struct aws_env *env, enum aws_config_kind kind, char *out,
                         size_t out_len);

/* The active profile name: AWS_PROFILE, else AWS_DEFAULT_PROFILE, else
 * "default". Borrowed from the environment or static. */
const char *aws_config_profile_name(const struct aws_env *env);

/* True when the profile was chosen explicitly (AWS_PROFILE or
 * AWS_DEFAULT_PROFILE set), so its absence is an error, not a skip. */
int aws_config_profile_explicit(const struct aws_env *env);

#endif
