/* Lookups in the generated service model tables (aws/models_gen.c): services
 * by botocore name, operations by name, shapes by index. Any thread. */
#include "aws/model.h"

#include <ctype.h>
#include <string.h>

const struct aws_service_model *aws_model_service(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < aws_n_service_models; i++) {
        if (strcmp(aws_service_models[i]->name, name) == 0)
            return aws_service_models[i];
    }
    return NULL;
}

const struct aws_operation *aws_model_operation(const struct aws_service_model *svc,
                                                const char *name)
{
    size_t lo = 0;
    size_t hi;

    if (svc == NULL || name == NULL)
        return NULL;
    hi = svc->n_operations;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, svc->operations[mid].name);

        if (c == 0)
            return &svc->operations[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct aws_shape *aws_model_shape(const struct aws_service_model *svc, uint16_t i)
{
    if (svc == NULL || i == AWS_NO_SHAPE || i >= svc->n_shapes)
        return NULL;
    return &svc->shapes[i];
}

int aws_model_env_suffix(const struct aws_service_model *svc, char *out, size_t out_len)
{
    size_t n;

    if (svc == NULL || out == NULL || out_len == 0)
        return -1;
    n = strlen(svc->service_id);
    if (n >= out_len) {
        out[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)svc->service_id[i];

        out[i] = c == ' ' ? '_' : (char)toupper(c);
    }
    out[n] = '\0';
    return 0;
}
