/* Notifications concern (notifications.c): what the rollout logic uses
 * besides notifications_converge/_delete (declared in app.h). Worker threads. */
#ifndef AVIARY_RECONCILERS_NOTIFICATIONS_H
#define AVIARY_RECONCILERS_NOTIFICATIONS_H

#include "reconcilers/app.h"

/* SNS Subject limit: AWS wants fewer than 100 characters. */
#define NOTIFICATIONS_SUBJECT_MAX 99

/* Publishes an alert to the application's SNS topic
 * (status.resources.notifications.topicArn, recorded by
 * notifications_converge), so every e-mail subscriber receives it. The
 * subject is cut to NOTIFICATIONS_SUBJECT_MAX characters, control characters
 * and non-ASCII bytes become spaces / '?' (SNS accepts neither line breaks
 * nor control characters); NULL or empty omits it. An empty message is sent
 * as "(no message)"; one over 256 KiB is cut. Returns 0 when SNS accepted
 * the message (in plan mode the publish is only recorded and 0 returned),
 * -1 with ctx->error filled when the topic is not known yet or the call
 * failed. Nothing is owned by the caller afterwards. */
int notifications_publish(struct app_ctx *ctx, const char *subject, const char *message);

#endif
