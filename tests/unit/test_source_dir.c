/* Unit tests for the directory source: which files count as manifests,
 * symlinks, the size limit, and live events (create by atomic rename,
 * modify, rename, delete) delivered as snapshots, with bounded waits; events
 * among many files are handled incrementally (only the named files, and
 * symlinks, are looked at: counted by the source's stats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "controller/source_dir.h"

static char *make_dir(void)
{
    char tmpl[] = "/tmp/aviary-src-XXXXXX";
    char *d = mkdtemp(tmpl);

    assert_non_null(d);
    return strdup(d);
}

static void remove_dir(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Writes name atomically (temp file + rename), as editors and kubectl do. */
static void write_atomic(const char *dir, const char *name, const char *text)
{
    char from[512], to[512];

    write_file(dir, ".tmp-write", text);
    snprintf(from, sizeof(from), "%s/.tmp-write", dir);
    snprintf(to, sizeof(to), "%s/%s", dir, name);
    assert_int_equal(rename(from, to), 0);
}

static void test_manifest_names(void **state)
{
    (void)state;
    assert_true(source_is_manifest_name("app.yaml"));
    assert_true(source_is_manifest_name("app.yml"));
    assert_false(source_is_manifest_name(".app.yaml"));
    assert_false(source_is_manifest_name("app.yaml~"));
    assert_false(source_is_manifest_name("app.yaml.swp"));
    assert_false(source_is_manifest_name("#app.yaml#"));
    assert_false(source_is_manifest_name("app.yaml.tmp"));
    assert_false(source_is_manifest_name("app.json"));
    assert_false(source_is_manifest_name(".yaml"));
}

static void test_read_once_filters_and_limits(void **state)
{
    char *dir = make_dir(), *outside = make_dir();
    char target[512], link[512], err[256];
    struct source_snapshot snap;
    char *big;
    (void)state;

    write_file(dir, "b.yaml", "kind: B\n");
    write_file(dir, "a.yml", "kind: A\n");
    write_file(dir, ".hidden.yaml", "x");
    write_file(dir, "notes.txt", "x");
    write_file(dir, "a.yml~", "x");
    write_file(outside, "secret.yaml", "kind: Secret\n");
    snprintf(target, sizeof(target), "%s/secret.yaml", outside);
    snprintf(link, sizeof(link), "%s/escape.yaml", dir);
    assert_int_equal(symlink(target, link), 0);
    snprintf(link, sizeof(link), "%s/alias.yaml", dir);
    assert_int_equal(symlink("b.yaml", link), 0);
    big = malloc(SOURCE_FILE_MAX + 2);
    memset(big, '#', SOURCE_FILE_MAX + 1);
    big[SOURCE_FILE_MAX + 1] = '\0';
    write_file(dir, "big.yaml", big);
    free(big);

    assert_int_equal(source_dir_read_once(dir, &snap, err, sizeof(err)), 0);
    assert_int_equal(snap.n, 4);
    assert_string_equal(snap.files[0].name, "a.yml");
    assert_string_equal(snap.files[0].data, "kind: A\n");
    assert_string_equal(snap.files[1].name, "alias.yaml"); /* stays inside: allowed */
    assert_string_equal(snap.files[1].data, "kind: B\n");
    assert_string_equal(snap.files[2].name, "b.yaml");
    assert_string_equal(snap.files[3].name, "big.yaml");
    assert_null(snap.files[3].data);
    assert_non_null(strstr(snap.files[3].error, "1 MiB"));
    source_snapshot_clear(&snap);
    assert_int_equal(source_dir_read_once("/nonexistent-aviary", &snap, err, sizeof(err)), -1);
    remove_dir(dir);
    remove_dir(outside);
    free(dir);
    free(outside);
}

/* Live test: a script of filesystem steps, each run when the previous step's
 * snapshot has been delivered; a guard timer bounds the whole test. */
struct live {
    char *dir;
    struct source_dir *src;
    uv_timer_t guard;
    int step;
    int deliveries;
    char seen[8][256]; /* names and contents summary per delivery */
    bool timed_out;
};

static void summarize(const struct source_snapshot *snap, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < snap->n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s=%s;", snap->files[i].name,
                 snap->files[i].data ? snap->files[i].data : "?");
    }
}

static void finish(struct live *lv)
{
    source_dir_stop(lv->src);
    uv_close((uv_handle_t *)&lv->guard, NULL);
}

static void on_snapshot(const struct source_snapshot *snap, void *arg)
{
    struct live *lv = arg;
    char from[512], to[512];

    if (lv->deliveries < 8)
        summarize(snap, lv->seen[lv->deliveries], sizeof(lv->seen[0]));
    lv->deliveries++;
    switch (lv->step++) {
    case 0: /* initial scan of the empty directory */
        write_atomic(lv->dir, "app.yaml", "v1");
        break;
    case 1:
        write_atomic(lv->dir, "app.yaml", "v2");
        break;
    case 2: /* a rename is seen as one snapshot with the new name */
        snprintf(from, sizeof(from), "%s/app.yaml", lv->dir);
        snprintf(to, sizeof(to), "%s/renamed.yaml", lv->dir);
        rename(from, to);
        break;
    case 3:
        snprintf(to, sizeof(to), "%s/renamed.yaml", lv->dir);
        unlink(to);
        break;
    default:
        finish(lv);
    }
}

static void on_guard(uv_timer_t *t)
{
    struct live *lv = t->data;

    lv->timed_out = true;
    finish(lv);
}

static void test_live_events(void **state)
{
    uv_loop_t loop;
    struct live lv = {0};
    struct source_dir_config cfg = {.rescan_ms = 60000};
    char err[256];
    (void)state;

    lv.dir = make_dir();
    cfg.dir = lv.dir;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &lv.guard);
    lv.guard.data = &lv;
    uv_timer_start(&lv.guard, on_guard, 10000, 0);
    assert_int_equal(source_dir_start(&loop, &cfg, on_snapshot, &lv, &lv.src, err, sizeof(err)), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_false(lv.timed_out);
    assert_string_equal(lv.seen[0], "");
    assert_string_equal(lv.seen[1], "app.yaml=v1;");
    assert_string_equal(lv.seen[2], "app.yaml=v2;");
    assert_string_equal(lv.seen[3], "renamed.yaml=v2;");
    assert_string_equal(lv.seen[4], "");
    remove_dir(lv.dir);
    free(lv.dir);
}

/* Incremental test: 40 files, a symlink to a hidden file in the directory
 * and one leaving it; each step changes one thing and checks that only
 * that file was read and that the snapshot names it as the change. */
struct incr {
    char *dir;
    struct source_dir *src;
    uv_timer_t guard, later;
    int step;
    bool timed_out;
    bool failed;
    char why[256];
    unsigned long reads_before;
    FILE *half; /* a file being written in two pieces */
};

static void incr_finish(struct incr *in)
{
    source_dir_stop(in->src);
    uv_close((uv_handle_t *)&in->guard, NULL);
    uv_close((uv_handle_t *)&in->later, NULL);
}

/* Records the first failed expectation (cmocka asserts cannot longjmp out
 * of a libuv callback safely). */
static void incr_expect(struct incr *in, bool ok, const char *what)
{
    if (!ok && !in->failed) {
        in->failed = true;
        snprintf(in->why, sizeof(in->why), "step %d: %s", in->step, what);
    }
}

static bool changed_is(const struct source_snapshot *snap, const char *a, const char *b)
{
    if (!snap->partial || snap->n_changed != (b ? 2u : 1u))
        return false;
    return strcmp(snap->changed[0], a) == 0 && (b == NULL || strcmp(snap->changed[1], b) == 0);
}

static const char *data_of(const struct source_snapshot *snap, const char *name)
{
    long at = source_snapshot_find(snap, name);
    return at >= 0 ? snap->files[at].data : NULL;
}

static void on_later(uv_timer_t *t)
{
    struct incr *in = t->data;

    /* The second half of the file written in two pieces. */
    fputs("second half\n", in->half);
    fclose(in->half);
    in->half = NULL;
}

static void incr_snapshot(const struct source_snapshot *snap, void *arg)
{
    struct incr *in = arg;
    struct source_dir_stats st;
    unsigned long reads;
    char from[512], to[512];

    source_dir_get_stats(in->src, &st);
    reads = st.files_read - in->reads_before;
    in->reads_before = st.files_read;
    switch (in->step) {
    case 0: /* the first scan reads everything inside the directory */
        incr_expect(in, !snap->partial && snap->n == 41 && reads == 41, "initial scan");
        incr_expect(in, data_of(snap, "out.yaml") == NULL, "symlink leaving the dir ignored");
        write_atomic(in->dir, "new.yaml", "new");
        break;
    case 1: /* one new file among 41: only it is read */
        incr_expect(in, changed_is(snap, "new.yaml", NULL), "new.yaml is the change");
        incr_expect(in, reads == 1 && snap->n == 42, "one file read");
        /* The symlink's target is hidden: its event names no manifest. */
        write_file(in->dir, ".target.data", "target v2");
        break;
    case 2:
        incr_expect(in, changed_is(snap, "link.yaml", NULL), "link.yaml is the change");
        incr_expect(in, reads == 1, "only the link read");
        incr_expect(in, strcmp(data_of(snap, "link.yaml"), "target v2") == 0, "link content");
        snprintf(from, sizeof(from), "%s/f07.yaml", in->dir);
        snprintf(to, sizeof(to), "%s/moved.yaml", in->dir);
        rename(from, to);
        break;
    case 3: /* a rename: one snapshot, both names changed, nothing else read */
        incr_expect(in, changed_is(snap, "f07.yaml", "moved.yaml"), "rename");
        incr_expect(in, reads == 1 && snap->n == 42, "only the new name read");
        incr_expect(in, strcmp(data_of(snap, "moved.yaml"), "file 7") == 0, "moved content");
        snprintf(to, sizeof(to), "%s/half.yaml", in->dir);
        in->half = fopen(to, "w");
        fputs("first half\n", in->half);
        fflush(in->half);
        uv_timer_start(&in->later, on_later, 30, 0);
        break;
    case 4: /* written in two pieces: only the complete file is seen */
        incr_expect(in, changed_is(snap, "half.yaml", NULL), "half.yaml is the change");
        incr_expect(in,
                    data_of(snap, "half.yaml") != NULL &&
                        strcmp(data_of(snap, "half.yaml"), "first half\nsecond half\n") == 0,
                    "complete contents only");
        snprintf(to, sizeof(to), "%s/f11.yaml", in->dir);
        unlink(to);
        break;
    case 5:
        incr_expect(in, changed_is(snap, "f11.yaml", NULL) && reads == 0 && snap->n == 42,
                    "delete reads nothing");
        incr_expect(in, st.full_scans == 1 && st.event_passes >= 5, "no full scan for events");
        /* A rescan of an unchanged directory delivers nothing. */
        source_dir_rescan(in->src);
        source_dir_get_stats(in->src, &st);
        incr_expect(in, st.full_scans == 2 && st.files_read == in->reads_before,
                    "rescan reads nothing unchanged");
        incr_finish(in);
        break;
    default:
        incr_expect(in, false, "unexpected snapshot");
        incr_finish(in);
    }
    in->step++;
}

static void incr_guard(uv_timer_t *t)
{
    struct incr *in = t->data;

    in->timed_out = true;
    incr_finish(in);
}

static void test_incremental_events(void **state)
{
    uv_loop_t loop;
    struct incr in = {0};
    /* A long settle period: the second half arrives well within it. */
    struct source_dir_config cfg = {.rescan_ms = 600000, .settle_ms = 500};
    char *outside = make_dir();
    char err[256], name[64], text[64], target[512], link[512];
    (void)state;

    in.dir = make_dir();
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "f%02d.yaml", i);
        snprintf(text, sizeof(text), "file %d", i);
        write_atomic(in.dir, name, text);
    }
    write_file(in.dir, ".target.data", "target v1");
    snprintf(link, sizeof(link), "%s/link.yaml", in.dir);
    assert_int_equal(symlink(".target.data", link), 0);
    write_file(outside, "secret.yaml", "kind: Secret\n");
    snprintf(target, sizeof(target), "%s/secret.yaml", outside);
    snprintf(link, sizeof(link), "%s/out.yaml", in.dir);
    assert_int_equal(symlink(target, link), 0);
    /* Files written just now must not wait for the settle period. */
    sleep(1);
    cfg.dir = in.dir;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &in.guard);
    uv_timer_init(&loop, &in.later);
    in.guard.data = in.later.data = &in;
    uv_timer_start(&in.guard, incr_guard, 20000, 0);
    assert_int_equal(source_dir_start(&loop, &cfg, incr_snapshot, &in, &in.src, err, sizeof(err)),
                     0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    if (in.half != NULL)
        fclose(in.half);
    assert_false(in.timed_out);
    if (in.failed)
        fail_msg("%s", in.why);
    assert_int_equal(in.step, 6);
    remove_dir(in.dir);
    remove_dir(outside);
    free(in.dir);
    free(outside);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_names),
        cmocka_unit_test(test_read_once_filters_and_limits),
        cmocka_unit_test(test_live_events),
        cmocka_unit_test(test_incremental_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
