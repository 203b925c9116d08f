/* Benchmark: SigV4 signatures per second on one core for a typical ELBv2
 * Query POST with a warm signing-key cache. Prints the figure, asserts
 * nothing. Single thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"

#define ITERATIONS 200000

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char body[] = "Action=DescribeTargetHealth&TargetGroupArn=arn%3Aaws%3Aelastic"
                               "loadbalancing%3Aeu-central-1%3A123456789012%3Atargetgroup%2Ffraud"
                               "-model-a%2F0123456789abcdef&Version=2015-12-01";
    struct sigv4_header headers[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
        {"Host", "elasticloadbalancing.eu-central-1.amazonaws.com"},
        {"User-Agent", "aviary/0.1.0"},
    };
    struct sigv4_request req = {.method = "POST",
                                .path = "/",
                                .headers = headers,
                                .n_headers = 3,
                                .payload = (const unsigned char *)body,
                                .payload_len = sizeof(body) - 1};
    struct sigv4_params params = {
        .region = "eu-central-1", .service = "elasticloadbalancing", .time = 1700000000};
    struct aws_credentials creds;
    struct sigv4_signer *signer = sigv4_signer_new();
    struct sigv4_result res;
    long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : ITERATIONS;
    double start, elapsed;
    unsigned checksum = 0;

    if (signer == NULL || iterations <= 0)
        return 1;
    memset(&creds, 0, sizeof(creds));
    strcpy(creds.access_key_id, "AKIDEXAMPLE");
    strcpy(creds.secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    strcpy(creds.session_token, "IQoJb3JpZ2luX2VjEXAMPLETOKENIQoJb3JpZ2luX2VjEXAMPLETOKEN");

    if (sigv4_sign(signer, &creds, &params, &req, &res) != 0) /* warm the key cache */
        return 1;
    sigv4_result_clear(&res);

    start = now_seconds();
    for (long i = 0; i < iterations; i++) {
        if (sigv4_sign(signer, &creds, &params, &req, &res) != 0)
            return 1;
        checksum += (unsigned char)res.signature[0];
        sigv4_result_clear(&res);
    }
    elapsed = now_seconds() - start;
    printf("sigv4: %.0f signatures/s (%ld signatures in %.3f s, checksum %u)\n",
           (double)iterations / elapsed, iterations, elapsed, checksum);
    aws_credentials_clear(&creds);
    sigv4_signer_free(signer);
    return 0;
}
