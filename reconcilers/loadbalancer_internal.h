/* Internals shared by the load balancer concern's files (loadbalancer.c:
 * helpers, the ALB and the entry points; loadbalancer_observe.c;
 * loadbalancer_actions.c; loadbalancer_target_groups.c;
 * loadbalancer_listeners.c; loadbalancer_delete.c). Not for other concerns:
 * they use loadbalancer.h and what loadbalancer_converge records in
 * status.resources.loadbalancer (app.h). Worker threads; one reconcile's
 * context. */
#ifndef AVIARY_RECONCILERS_LOADBALANCER_INTERNAL_H
#define AVIARY_RECONCILERS_LOADBALANCER_INTERNAL_H

#include "reconcilers/app.h"

/* An id or ARN not known before apply (plan mode). */
#define LB_PLACEHOLDER "(known after apply)"

/* What AWS has for this application, found by derived name. */
struct observed {
    json_t *tg[2];     /* target groups of slots a and b, or NULL */
    json_t *lb;        /* the load balancer, or NULL */
    json_t *listeners; /* its listeners (array; empty without a load balancer) */
    json_t *tags;      /* {arn: [{Key, Value}]} of everything above (listeners: 80/443) */
};

/* What the manifest asks for. */
struct desired {
    const char *vpc, *sg;
    const json_t *subnets;
    const char *cert;   /* spec.tls.certificateArn or NULL */
    const char *policy; /* SSL policy */
    bool redirect;      /* port 80 redirects to 443 */
    int stable;         /* stable slot (0 = a, 1 = b) */
    int weight[2];      /* forward weight per slot */
    json_t *hc;         /* health check members of Create/ModifyTargetGroup */
};

/* One listener as the spec wants it. */
struct listener_want {
    int port;
    const char *protocol;
    const char *cert; /* HTTPS only */
    json_t *actions;  /* owned */
    bool forward;
};

/* A forward listener whose only difference is its weights, left for one
 * lb_apply_weights call after every listener is converged. */
#define ARN_MAX 256
struct fwd_item {
    const char *arn; /* the caller's buffer */
    char resource[400];
    char change[400];
};

/* ---- helpers (loadbalancer.c) ---------------------------------------------------- */

/* True for NULL and LB_PLACEHOLDER. */
bool lb_is_placeholder(const char *s);

/* String member `key` of obj, or NULL (borrowed). */
const char *lb_str(const json_t *obj, const char *key);

/* Releases what o holds and zeroes it. */
void lb_observed_clear(struct observed *o);

/* Forgets an expected error (NotFound and the like) from app_read/app_write. */
void lb_clear_error(struct app_ctx *ctx);

/* Drift is an event outside plan mode; in a plan it is an update like any
 * other (app_note_drift records nothing there). */
void lb_note_drift(struct app_ctx *ctx, const char *resource, const char *what);

/* ---- listener actions (loadbalancer_actions.c) ------------------------------------ */

/* The listener's default actions: one forward to both target groups with
 * the given weights. New reference. */
json_t *lb_forward_actions(const char *tga, const char *tgb, int wa, int wb);

/* Port 80's default action with TLS: a permanent redirect to HTTPS on 443,
 * keeping host, path and query. New reference. */
json_t *lb_redirect_actions(void);

/* True when a listener's default actions (as DescribeListeners reports
 * them) do what `want` (from lb_forward_actions/lb_redirect_actions) says. */
bool lb_actions_match(const json_t *have, const json_t *want);

/* "forward a=90 b=10" / "redirect HTTPS:443" / "fixed-response" into
 * out[len], for events and plans; tg: the ARNs of slots a and b. */
void lb_describe_actions(const json_t *actions, const char *tg[2], char *out, size_t len);

/* ---- observation (loadbalancer_observe.c) ------------------------------------------
 * Each returns 0, or -1 with ctx->error; a resource that does not exist is
 * left NULL in o. */
int lb_observe_target_groups(struct app_ctx *ctx, struct observed *o);
int lb_observe_load_balancer(struct app_ctx *ctx, struct observed *o); /* and its listeners */
int lb_observe_tags(struct app_ctx *ctx, struct observed *o);

/* The observed listener on `port`, or NULL (borrowed from o). */
const json_t *lb_listener_on(const struct observed *o, int port);

/* True when the resource `arn` carries this application's tags. */
bool lb_owned(struct app_ctx *ctx, const struct observed *o, const char *arn);

/* Fails ctx (retryable) for a resource named like aviary's without its tags. */
void lb_fail_not_owned(struct app_ctx *ctx, const char *what, const char *name);

/* Everything found that converge would change (and the listeners of the
 * ports the spec wants) carries this application's tags. Returns 0, or -1
 * with ctx->error before any change. */
int lb_check_owned(struct app_ctx *ctx, const struct observed *o, bool https);

/* ---- target groups (loadbalancer_target_groups.c) ---------------------------------- */

/* The health check members for Create/ModifyTargetGroup from
 * spec.healthCheck (CRD defaults as fallbacks). New reference. */
json_t *lb_desired_health_check(struct app_ctx *ctx);

/* Creates the slot's target group or brings its health check (and
 * deregistration delay) back to the spec. *arn receives its ARN
 * (LB_PLACEHOLDER in plan mode; borrowed from o). Returns 0, or -1 with
 * ctx->error. */
int lb_converge_target_group(struct app_ctx *ctx, struct observed *o, const struct desired *d,
                             int slot, const char **arn);

/* ---- listeners (loadbalancer_listeners.c) ------------------------------------------- */

/* Sets the forward weights on `n` listeners (one ModifyListener each) and
 * reads them back in one DescribeListeners call. Returns 0, or -1 with
 * ctx->error. */
int lb_apply_weights(struct app_ctx *ctx, const char *const *arns, size_t n, const char *tg[2],
                     const int weight[2]);

/* Records the weights in status.resources.loadbalancer (not in plan mode). */
void lb_record_weights(struct app_ctx *ctx, const int weight[2]);

/* The TLS settings the listeners were last converged to ("" without TLS),
 * into out[len]. */
void lb_tls_key(const struct desired *d, char *out, size_t len);

/* Creates or corrects the listener `w`; its ARN goes to arn[ARN_MAX]. A
 * forward listener whose only difference is its weights is appended to
 * fwd[] (*n_fwd) for lb_apply_weights. Returns 0, or -1 with ctx->error. */
int lb_converge_listener(struct app_ctx *ctx, const struct observed *o, const char *lb_arn,
                         const struct desired *d, const char *tg[2], const struct listener_want *w,
                         char *arn, struct fwd_item *fwd, size_t *n_fwd);

#endif
