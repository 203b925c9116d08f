/* Tests of the hardened XML reader (aws/xml.c): the DOM walk, text and
 * attributes, refusal of DTDs, entity tricks, oversized and malformed
 * documents, and wiping a document's text. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws/xml.h"

static struct aws_xml_doc *parse_ok(const char *text)
{
    struct aws_xml_doc *doc = NULL;
    struct aws_error err;

    if (aws_xml_parse(text, strlen(text), 0, &doc, &err) != 0)
        fail_msg("parse failed: %s", err.message);
    assert_non_null(doc);
    return doc;
}

static void parse_fails(const char *text, enum aws_error_kind kind, const char *needle)
{
    struct aws_xml_doc *doc = (struct aws_xml_doc *)(uintptr_t)1;
    struct aws_error err;

    assert_int_equal(aws_xml_parse(text, text ? strlen(text) : 0, 0, &doc, &err), -1);
    assert_null(doc);
    assert_int_equal(err.kind, kind);
    if (needle != NULL && strstr(err.message, needle) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.message, needle);
}

static const char *text_of(const struct aws_xml_node *n, struct aws_buf *b)
{
    aws_buf_reset(b);
    assert_int_equal(aws_xml_text(n, b), 0);
    return b->data ? b->data : "";
}

static void test_walk_elements(void **state)
{
    struct aws_xml_doc *doc = parse_ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                       "<!-- leading comment -->\n"
                                       "<r:Root xmlns:r=\"urn:root\" xmlns=\"urn:default\">\n"
                                       "  <A>one</A><?pi ignored?>\n"
                                       "  <!-- a comment -->\n"
                                       "  <B><C>two</C><C>three</C></B>\n"
                                       "  <Empty/>\n"
                                       "</r:Root>");
    const struct aws_xml_node *root = aws_xml_root(doc), *a, *b, *c, *e;
    struct aws_buf t = {0};

    (void)state;
    assert_string_equal(aws_xml_name(root), "Root"); /* prefix dropped */
    assert_true(aws_xml_has_children(root));
    a = aws_xml_first(root);
    assert_string_equal(aws_xml_name(a), "A");
    assert_string_equal(text_of(a, &t), "one");
    b = aws_xml_next(a);
    assert_string_equal(aws_xml_name(b), "B");
    c = aws_xml_first(b);
    assert_string_equal(text_of(c, &t), "two");
    assert_string_equal(text_of(aws_xml_next(c), &t), "three");
    assert_null(aws_xml_next(aws_xml_next(c)));
    assert_ptr_equal(aws_xml_child(b, "C"), c);
    assert_null(aws_xml_child(b, "D"));
    e = aws_xml_child(root, "Empty");
    assert_non_null(e);
    assert_false(aws_xml_has_children(e));
    assert_string_equal(text_of(e, &t), "");
    assert_null(aws_xml_next(e));
    /* Only the element's own text, not its children's. */
    assert_string_equal(text_of(b, &t), "");
    aws_buf_free(&t);
    aws_xml_free(doc);
}

static void test_text_decoding(void **state)
{
    struct aws_xml_doc *doc = parse_ok("<R><T>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; "
                                       "&#233;&#x2603; \xc3\xa9</T><D><![CDATA[<x>&amp;</x>]]></D>"
                                       "<M>pre<![CDATA[-mid-]]>post</M><W>  spaced\n </W></R>");
    const struct aws_xml_node *root = aws_xml_root(doc);
    struct aws_buf t = {0};

    (void)state;
    assert_string_equal(text_of(aws_xml_child(root, "T"), &t),
                        "a & b <c> \"d\" 'e' \xc3\xa9\xe2\x98\x83 \xc3\xa9");
    assert_string_equal(text_of(aws_xml_child(root, "D"), &t), "<x>&amp;</x>");
    assert_string_equal(text_of(aws_xml_child(root, "M"), &t), "pre-mid-post");
    assert_string_equal(text_of(aws_xml_child(root, "W"), &t), "  spaced\n ");
    aws_buf_free(&t);
    aws_xml_free(doc);
}

static void test_text_bounded_by_buffer(void **state)
{
    struct aws_xml_doc *doc = parse_ok("<R>0123456789</R>");
    struct aws_buf small;

    (void)state;
    aws_buf_init(&small, 4);
    assert_int_equal(aws_xml_text(aws_xml_root(doc), &small), -1);
    aws_buf_free(&small);
    aws_xml_free(doc);
}

static void test_attributes(void **state)
{
    struct aws_xml_doc *doc =
        parse_ok("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                 "xsi:type=\"CanonicalUser\" type=\"plain\" note=\"a &amp; b\" empty=\"\"/>");
    const struct aws_xml_node *root = aws_xml_root(doc);
    struct aws_buf t = {0};

    (void)state;
    assert_int_equal(aws_xml_attr(root, "xsi:type", &t), 1);
    assert_string_equal(t.data, "CanonicalUser");
    aws_buf_reset(&t);
    assert_int_equal(aws_xml_attr(root, "type", &t), 1);
    assert_string_equal(t.data, "plain");
    aws_buf_reset(&t);
    assert_int_equal(aws_xml_attr(root, "note", &t), 1);
    assert_string_equal(t.data, "a & b");
    aws_buf_reset(&t);
    assert_int_equal(aws_xml_attr(root, "empty", &t), 1);
    assert_int_equal(t.len, 0);
    assert_int_equal(aws_xml_attr(root, "other:type", &t), 0);
    assert_int_equal(aws_xml_attr(root, "missing", &t), 0);
    aws_buf_free(&t);
    aws_xml_free(doc);
}

static void test_malformed_refused(void **state)
{
    (void)state;
    parse_fails(NULL, AWS_ERR_PARSE, "empty");
    parse_fails("", AWS_ERR_PARSE, "empty");
    parse_fails("   ", AWS_ERR_PARSE, NULL);
    parse_fails("<a><b></a>", AWS_ERR_PARSE, "invalid XML");
    parse_fails("<a>", AWS_ERR_PARSE, NULL);
    parse_fails("just text", AWS_ERR_PARSE, NULL);
    parse_fails("<a></a><b></b>", AWS_ERR_PARSE, NULL);
    parse_fails("<a>&bogus;</a>", AWS_ERR_PARSE, NULL);
    parse_fails("<a>\xff\xfe</a>", AWS_ERR_PARSE, NULL);
    parse_fails("<a x=\"1\" x=\"2\"/>", AWS_ERR_PARSE, NULL);
}

static void test_dtds_refused(void **state)
{
    (void)state;
    /* Billion laughs: refused at the DOCTYPE, before any entity exists. */
    parse_fails("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
                "<!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">"
                "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
                "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">"
                "<!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">"
                "<!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">"
                "<!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">"
                "<!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">"
                "<!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">"
                "]><lolz>&lol9;</lolz>",
                AWS_ERR_PARSE, "DTD");
    /* Quadratic blow-up: one big entity referenced many times. */
    parse_fails("<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">]>"
                "<r>&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;</r>",
                AWS_ERR_PARSE, "DTD");
    /* External entities and DTDs: nothing is read from disk or network. */
    parse_fails("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
                "<r>&xxe;</r>",
                AWS_ERR_PARSE, "DTD");
    parse_fails("<!DOCTYPE r SYSTEM \"http://127.0.0.1:9/evil.dtd\"><r/>", AWS_ERR_PARSE, "DTD");
    parse_fails("<!DOCTYPE r PUBLIC \"-//X//Y\" \"file:///etc/passwd\"><r/>", AWS_ERR_PARSE, "DTD");
    parse_fails("<!DOCTYPE r [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><r/>", AWS_ERR_PARSE,
                "DTD");
    /* Even an empty internal subset. */
    parse_fails("<!DOCTYPE r><r/>", AWS_ERR_PARSE, "DTD");
    parse_fails("<!DOCTYPE r []><r/>", AWS_ERR_PARSE, "DTD");
}

static void test_size_limit(void **state)
{
    static const char doc[] = "<a>0123456789</a>";
    struct aws_xml_doc *d = NULL;
    struct aws_error err;
    size_t n = sizeof(doc) - 1;

    (void)state;
    assert_int_equal(aws_xml_parse(doc, n, n - 1, &d, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_TOO_LARGE);
    assert_null(d);
    assert_int_equal(aws_xml_parse(doc, n, n, &d, &err), 0);
    aws_xml_free(d);
}

static void test_default_size_limit(void **state)
{
    size_t n = AWS_XML_DEFAULT_MAX_BYTES + 1;
    char *big = malloc(n);
    struct aws_xml_doc *d = NULL;
    struct aws_error err;

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "<a>", 3);
    memcpy(big + n - 4, "</a>", 4);
    assert_int_equal(aws_xml_parse(big, n, 0, &d, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_TOO_LARGE);
    /* Just under the limit is fine. */
    memcpy(big + n - 5, "</a>", 4);
    assert_int_equal(aws_xml_parse(big, n - 1, 0, &d, &err), 0);
    aws_xml_free(d);
    free(big);
}

static void test_deep_documents_refused(void **state)
{
    struct aws_buf b = {0};
    struct aws_xml_doc *d = NULL;
    struct aws_error err;

    (void)state;
    for (int i = 0; i < 20000; i++)
        assert_int_equal(aws_buf_append_str(&b, "<a>"), 0);
    for (int i = 0; i < 20000; i++)
        assert_int_equal(aws_buf_append_str(&b, "</a>"), 0);
    assert_int_equal(aws_xml_parse(b.data, b.len, 0, &d, &err), -1);
    assert_int_equal(err.kind, AWS_ERR_PARSE);
    aws_buf_free(&b);
}

/* Errors reach the caller, never stderr (aviary's log stream). */
static void test_errors_not_printed(void **state)
{
    static const char *const bad[] = {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>\xf5 ve</a>",
        "<?xml version=\"1.0\" encoding=\"EUC-JP\"?><a>\xf5 ve</a>",
        "<?xml version=\"1.0\" encoding=\"no-such-charset\"?><a/>",
        "<a><b></a>",
        "<!DOCTYPE r [<!ENTITY e \"x\">]><r>&e;</r>",
    };
    FILE *tmp = tmpfile();
    int saved = dup(2);
    struct aws_xml_doc *d = NULL;
    struct aws_error err;
    long size;

    (void)state;
    assert_non_null(tmp);
    assert_true(saved >= 0);
    fflush(stderr);
    assert_int_equal(dup2(fileno(tmp), 2), 2);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(aws_xml_parse(bad[i], strlen(bad[i]), 0, &d, &err), -1);
        assert_null(strchr(err.message, '\n'));
    }
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    size = ftell(tmp);
    fclose(tmp);
    assert_int_equal(size, 0);
}

/* Parses the same document on several threads at once. */
static void *parse_many(void *arg)
{
    const char *text = arg;
    struct aws_buf t = {0};

    for (int i = 0; i < 200; i++) {
        struct aws_xml_doc *d = NULL;
        struct aws_error err;

        if (aws_xml_parse(text, strlen(text), 0, &d, &err) != 0)
            return (void *)1;
        aws_buf_reset(&t);
        if (aws_xml_text(aws_xml_child(aws_xml_root(d), "B"), &t) != 0 ||
            strcmp(t.data, "x & y") != 0) {
            aws_xml_free(d);
            return (void *)1;
        }
        aws_xml_free(d);
    }
    aws_buf_free(&t);
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t th[4];
    void *rc;

    (void)state;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, parse_many, "<A><B>x &amp; y</B></A>"), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_null(rc);
    }
}

/* aws_xml_wipe zeroes the text the document owns wherever it sits (deep,
 * after subtrees, long text built from several parser chunks, CDATA,
 * decoded entities) and leaves the tree walkable. Texts of up to 3 bytes
 * may be interned by libxml2 and are not required to be wiped. */
static void test_wipe_text(void **state)
{
    char long_text[2048], xml[4096];
    struct aws_xml_doc *doc;
    const struct aws_xml_node *root, *n;
    struct aws_buf t = {0};

    (void)state;
    for (size_t i = 0; i + 1 < sizeof(long_text); i++)
        long_text[i] = (char)('A' + i % 26);
    long_text[sizeof(long_text) - 1] = '\0';
    snprintf(xml, sizeof(xml),
             "<R><A><B><C><D>deep-secret-1</D></C></B></A>"
             "<E>after-subtree &amp; entity</E><F><![CDATA[cdata-secret]]>tail</F>"
             "<G a=\"attr\">%s</G><H>abc</H></R><!-- trailing -->",
             long_text);
    doc = parse_ok(xml);
    root = aws_xml_root(doc);
    n = aws_xml_child(aws_xml_child(aws_xml_child(aws_xml_child(root, "A"), "B"), "C"), "D");
    assert_string_equal(text_of(n, &t), "deep-secret-1");
    assert_string_equal(text_of(aws_xml_child(root, "G"), &t), long_text);
    aws_xml_wipe(doc);
    assert_string_equal(aws_xml_name(root), "R");
    assert_string_equal(text_of(n, &t), "");
    assert_string_equal(text_of(aws_xml_child(root, "E"), &t), "");
    assert_string_equal(text_of(aws_xml_child(root, "F"), &t), "");
    assert_string_equal(text_of(aws_xml_child(root, "G"), &t), "");
    assert_non_null(aws_xml_child(root, "H"));
    aws_xml_wipe(doc); /* twice is harmless */
    aws_xml_free(doc);
    aws_xml_wipe(NULL);
    aws_buf_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_elements),
        cmocka_unit_test(test_text_decoding),
        cmocka_unit_test(test_text_bounded_by_buffer),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_dtds_refused),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_default_size_limit),
        cmocka_unit_test(test_deep_documents_refused),
        cmocka_unit_test(test_errors_not_printed),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_wipe_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
