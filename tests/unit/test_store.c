/* Unit tests for the status store: round trip, reload, deletion, copies,
 * leftovers of a crash, crash safety under kill -9 while writing, several
 * members in one write, concurrent writers, and a failed write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "controller/store.h"

static char *make_dir(void)
{
    char tmpl[] = "/tmp/aviary-store-XXXXXX";
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

static void test_put_get_reload_delete(void **state)
{
    char *dir = make_dir();
    struct store *st;
    json_t *rec, *got, *list;
    char err[256];
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    rec = json_pack("{s:i, s:{s:s}}", "generation", 3, "status", "phase", "Ready");
    assert_int_equal(store_put(st, "Application", "fraud", rec), 0);
    assert_int_equal(store_put(st, "Application", "churn", rec), 0);
    json_decref(rec);
    store_close(st);

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_count(st), 2);
    got = store_get(st, "Application", "fraud");
    assert_non_null(got);
    assert_int_equal(json_integer_value(json_object_get(got, "generation")), 3);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "fraud");
    /* A copy: changing it does not change the store. */
    json_object_set_new(got, "generation", json_integer(99));
    json_decref(got);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(json_integer_value(json_object_get(got, "generation")), 3);
    json_decref(got);

    list = store_list(st);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                        "churn");
    json_decref(list);

    assert_int_equal(store_delete(st, "Application", "fraud"), 0);
    assert_null(store_get(st, "Application", "fraud"));
    store_close(st);
    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_count(st), 1);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

static void test_refuses_unsafe_names(void **state)
{
    struct store *st;
    json_t *rec = json_object();
    (void)state;

    assert_int_equal(store_open(NULL, &st, NULL, 0), 0);
    assert_int_equal(store_put(st, "Application", "../escape", rec), -1);
    assert_int_equal(store_put(st, "Application", "", rec), -1);
    assert_int_equal(store_put(st, "Application", "ok", rec), 0);
    json_decref(rec);
    store_close(st);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_crash_leftovers_are_cleaned(void **state)
{
    char *dir = make_dir();
    char path[512], err[1024];
    struct store *st;
    json_t *rec = json_pack("{s:s}", "phase", "Ready");
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_put(st, "Application", "a", rec), 0);
    store_close(st);
    /* A write interrupted before its rename, and a damaged record. */
    snprintf(path, sizeof(path), "%s/objects/Application_a.json.tmp", dir);
    write_file(path, "{\"kind\": \"Applic");
    snprintf(path, sizeof(path), "%s/objects/Application_b.json", dir);
    write_file(path, "not json");

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_count(st), 1);
    assert_non_null(strstr(err, "Application_b.json"));
    snprintf(path, sizeof(path), "%s/objects/Application_a.json.tmp", dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/objects/Application_b.json.corrupt", dir);
    assert_int_equal(access(path, F_OK), 0);
    store_close(st);
    json_decref(rec);
    remove_dir(dir);
    free(dir);
}

/* A child rewrites one record with an increasing counter until it is killed;
 * after every kill the record must load, whole, with a counter the child
 * had reached. */
static void test_kill_9_while_writing_never_corrupts(void **state)
{
    char *dir = make_dir();
    char err[256];
    (void)state;

    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct store *st;
            if (store_open(dir, &st, NULL, 0) != 0)
                _exit(1);
            for (int i = 0;; i++) {
                json_t *rec = json_pack("{s:i, s:s}", "counter", i, "padding",
                                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
                store_put(st, "Application", "crashy", rec);
                json_decref(rec);
            }
        }
        struct timespec ts = {0, (long)(1 + round % 7) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);

        struct store *st;
        assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        json_t *rec = store_get(st, "Application", "crashy");
        if (rec != NULL) {
            assert_true(json_is_integer(json_object_get(rec, "counter")));
            assert_int_equal(json_string_length(json_object_get(rec, "padding")), 48);
            json_decref(rec);
        }
        store_close(st);
    }
    remove_dir(dir);
    free(dir);
}

static void test_fields_and_conditional_delete(void **state)
{
    char *dir = make_dir();
    struct store *st;
    json_t *v, *rec;
    char err[256];
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    v = json_pack("{s:i}", "generation", 1);
    assert_int_equal(store_set_field(st, "Application", "a", "desired", v), 0);
    json_decref(v);
    v = json_pack("{s:s}", "phase", "Ready");
    assert_int_equal(store_set_field(st, "Application", "a", "status", v), 0);
    json_decref(v);
    rec = store_get(st, "Application", "a");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(rec, "desired"), "generation")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "status"), "phase")),
                        "Ready");
    json_decref(rec);

    assert_int_equal(store_delete_if_true(st, "Application", "a", "deleting"), 0);
    assert_int_equal(store_set_field(st, "Application", "a", "deleting", json_true()), 0);
    store_close(st);
    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_delete_if_true(st, "Application", "a", "deleting"), 1);
    assert_int_equal(store_count(st), 0);
    store_close(st);
    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_count(st), 0);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

struct visit_log {
    char seen[8][64];
    int n;
    struct store *st;
};

static bool want_not_b(const char *kind, const char *name, void *arg)
{
    (void)kind;
    (void)arg;
    return strcmp(name, "b") != 0;
}

static int visit(const char *kind, const char *name, json_t *rec, void *arg)
{
    struct visit_log *log = arg;

    assert_string_equal(json_string_value(json_object_get(rec, "name")), name);
    snprintf(log->seen[log->n++], sizeof(log->seen[0]), "%s/%s", kind, name);
    /* The visitor may use the store: removing a later record skips it. */
    if (strcmp(name, "a") == 0)
        store_delete(log->st, "Application", "d");
    return 0;
}

static void test_foreach_orders_filters_and_skips_removed(void **state)
{
    struct store *st;
    struct visit_log log = {0};
    json_t *rec = json_object();
    (void)state;

    assert_int_equal(store_open(NULL, &st, NULL, 0), 0);
    store_put(st, "Application", "d", rec);
    store_put(st, "TrainingEnvironment", "a", rec);
    store_put(st, "Application", "b", rec);
    store_put(st, "Application", "a", rec);
    store_put(st, "Application", "c", rec);
    log.st = st;
    assert_int_equal(store_foreach(st, want_not_b, visit, &log), 0);
    assert_int_equal(log.n, 3);
    assert_string_equal(log.seen[0], "Application/a");
    assert_string_equal(log.seen[1], "Application/c");
    assert_string_equal(log.seen[2], "TrainingEnvironment/a");
    json_decref(rec);
    store_close(st);
}

static void test_unchanged_record_is_not_rewritten(void **state)
{
    char *dir = make_dir();
    char path[512];
    struct store *st;
    struct stat before, after;
    json_t *v = json_pack("{s:s}", "phase", "Ready");
    (void)state;

    assert_int_equal(store_open(dir, &st, NULL, 0), 0);
    assert_int_equal(store_set_field(st, "Application", "a", "status", v), 0);
    snprintf(path, sizeof(path), "%s/objects/Application_a.json", dir);
    assert_int_equal(stat(path, &before), 0);
    struct timespec pause = {0, 20000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(store_set_field(st, "Application", "a", "status", v), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    json_decref(v);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

/* store_set_fields: several members in one write; the others are kept, and
 * the record on disk has all of them after a reload. */
static void test_set_fields_writes_members_together(void **state)
{
    char *dir = make_dir();
    struct store *st;
    json_t *members, *got;
    char err[256];
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    got = json_pack("{s:s}", "phase", "Ready");
    assert_int_equal(store_set_field(st, "Application", "fraud", "status", got), 0);
    json_decref(got);
    members = json_pack("{s:{s:i}, s:{s:b}}", "desired", "generation", 2, "validation", "valid", 1);
    assert_int_equal(store_set_fields(st, "Application", "fraud", members), 0);
    /* A new record is created the same way. */
    assert_int_equal(store_set_fields(st, "Application", "churn", members), 0);
    assert_int_equal(store_set_fields(st, "Application", "../x", members), -1);
    json_decref(members);
    members = json_integer(1); /* not an object */
    assert_int_equal(store_set_fields(st, "Application", "fraud", members), -1);
    json_decref(members);
    store_close(st);

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_count(st), 2);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(got, "desired"), "generation")), 2);
    assert_true(json_is_true(json_object_get(json_object_get(got, "validation"), "valid")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(got, "status"), "phase")),
                        "Ready");
    json_decref(got);
    got = store_get(st, "Application", "churn");
    assert_non_null(json_object_get(got, "desired"));
    assert_null(json_object_get(got, "status"));
    json_decref(got);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

/* Writers of different records and of different members of one record run
 * concurrently: no update is lost, in memory or on disk. */
struct writer {
    struct store *st;
    int id;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char member[16], own[32];

    snprintf(member, sizeof(member), "m%d", w->id);
    snprintf(own, sizeof(own), "own-%d", w->id);
    for (int i = 0; i < 40; i++) {
        json_t *v = json_integer(i);
        if (store_set_field(w->st, "Application", "shared", member, v) != 0 ||
            store_set_field(w->st, "Application", own, "n", v) != 0)
            abort();
        json_decref(v);
    }
    return NULL;
}

static void check_writers(struct store *st)
{
    json_t *rec = store_get(st, "Application", "shared");
    char member[16], own[32];

    assert_non_null(rec);
    for (int t = 0; t < 4; t++) {
        json_t *o;
        snprintf(member, sizeof(member), "m%d", t);
        assert_int_equal(json_integer_value(json_object_get(rec, member)), 39);
        snprintf(own, sizeof(own), "own-%d", t);
        o = store_get(st, "Application", own);
        assert_int_equal(json_integer_value(json_object_get(o, "n")), 39);
        json_decref(o);
    }
    json_decref(rec);
}

static void test_concurrent_writers_lose_nothing(void **state)
{
    char *dir = make_dir();
    struct store *st;
    struct writer w[4];
    pthread_t th[4];
    char err[256];
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    for (int t = 0; t < 4; t++) {
        w[t].st = st;
        w[t].id = t;
        assert_int_equal(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    check_writers(st);
    store_close(st);
    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    assert_int_equal(store_count(st), 5);
    check_writers(st);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

/* A write that fails on disk leaves the previous record in force in memory
 * too (and a record that was new is not left behind). */
static void test_failed_write_keeps_previous_record(void **state)
{
    char *dir = make_dir();
    struct store *st;
    char err[256], blocker[512];
    json_t *v, *got;
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    v = json_integer(1);
    assert_int_equal(store_set_field(st, "Application", "fraud", "n", v), 0);
    json_decref(v);
    /* The temp file's name taken by a directory: the write cannot happen. */
    snprintf(blocker, sizeof(blocker), "%s/objects/Application_fraud.json.tmp", dir);
    assert_int_equal(mkdir(blocker, 0700), 0);
    v = json_integer(2);
    assert_int_equal(store_set_field(st, "Application", "fraud", "n", v), -1);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 1);
    json_decref(got);
    snprintf(blocker, sizeof(blocker), "%s/objects/Application_churn.json.tmp", dir);
    assert_int_equal(mkdir(blocker, 0700), 0);
    assert_int_equal(store_set_field(st, "Application", "churn", "n", v), -1);
    assert_null(store_get(st, "Application", "churn"));
    assert_int_equal(store_count(st), 1);
    json_decref(v);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

/* A staged write is in force in memory before it is committed; a commit
 * that cannot write puts the previous record back. */
static void test_staged_write_is_visible_before_commit(void **state)
{
    char *dir = make_dir();
    struct store *st;
    struct store_txn *txn;
    char err[256], blocker[512];
    json_t *members, *got;
    (void)state;

    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    members = json_pack("{s:i}", "n", 1);
    assert_int_equal(store_stage_fields(st, "Application", "fraud", members, &txn), 0);
    assert_non_null(txn);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 1);
    json_decref(got);
    assert_int_equal(store_commit(txn), 0);
    /* Unchanged: nothing to commit. */
    assert_int_equal(store_stage_fields(st, "Application", "fraud", members, &txn), 0);
    assert_null(txn);
    assert_int_equal(store_commit(txn), 0);
    json_decref(members);

    snprintf(blocker, sizeof(blocker), "%s/objects/Application_fraud.json.tmp", dir);
    assert_int_equal(mkdir(blocker, 0700), 0);
    members = json_pack("{s:i}", "n", 2);
    assert_int_equal(store_stage_fields(st, "Application", "fraud", members, &txn), 0);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 2);
    json_decref(got);
    assert_int_equal(store_commit(txn), -1);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 1);
    json_decref(got);
    json_decref(members);
    store_close(st);

    assert_int_equal(rmdir(blocker), 0);
    assert_int_equal(store_open(dir, &st, err, sizeof(err)), 0);
    got = store_get(st, "Application", "fraud");
    assert_int_equal(json_integer_value(json_object_get(got, "n")), 1);
    json_decref(got);
    store_close(st);
    remove_dir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_reload_delete),
        cmocka_unit_test(test_refuses_unsafe_names),
        cmocka_unit_test(test_crash_leftovers_are_cleaned),
        cmocka_unit_test(test_kill_9_while_writing_never_corrupts),
        cmocka_unit_test(test_fields_and_conditional_delete),
        cmocka_unit_test(test_foreach_orders_filters_and_skips_removed),
        cmocka_unit_test(test_unchanged_record_is_not_rewritten),
        cmocka_unit_test(test_set_fields_writes_members_together),
        cmocka_unit_test(test_concurrent_writers_lose_nothing),
        cmocka_unit_test(test_failed_write_keeps_previous_record),
        cmocka_unit_test(test_staged_write_is_visible_before_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
