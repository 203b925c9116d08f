/* Hardened XML parsing of AWS responses with libxml2 and a small DOM walk
 * (see xml.h). Any thread: libxml2 is initialised once, each parse uses its
 * own parser context. */
#include "aws/xml.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <openssl/crypto.h>

/* libxml2 options: never touch the network, keep entity references
 * unexpanded (no XML_PARSE_NOENT), load no DTD, add no default attributes,
 * report nothing on stderr, merge CDATA into text. XML_PARSE_HUGE is left
 * off so libxml2's own depth and text-size limits stay in force. */
#define XML_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

/* libxml2 reports some errors (encoding conversion) through its per-thread
 * generic handler even with XML_PARSE_NOERROR; aviary's stderr carries
 * structured log lines only, so such reports are dropped here and the
 * failure reaches the caller through the parser context instead. */
static void xml_silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static const xmlNode *xnode(const struct aws_xml_node *node)
{
    return (const xmlNode *)(const void *)node;
}

static const struct aws_xml_node *anode(const xmlNode *node)
{
    return (const struct aws_xml_node *)(const void *)node;
}

/* SAX hook run when a <!DOCTYPE ...> starts, before its internal subset is
 * read: AWS never sends DTDs, and refusing them here means no entity is ever
 * declared, so neither billion-laughs nor external entities can happen. */
static void reject_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                           const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;

    (void)name;
    (void)external_id;
    (void)system_id;
    *(bool *)ctxt->_private = true;
    xmlStopParser(ctxt);
}

/* Belt and braces: an entity declaration can only follow a DOCTYPE, which
 * reject_doctype already refused; stop anyway if one is ever reported. */
static void reject_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                               const xmlChar *system_id, xmlChar *content)
{
    xmlParserCtxtPtr ctxt = ctx;

    (void)name;
    (void)type;
    (void)public_id;
    (void)system_id;
    (void)content;
    *(bool *)ctxt->_private = true;
    xmlStopParser(ctxt);
}

int aws_xml_parse(const void *data, size_t len, size_t max_bytes, struct aws_xml_doc **out,
                  struct aws_error *err)
{
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    bool saw_dtd = false;
    int rc = -1;

    *out = NULL;
    if (max_bytes == 0)
        max_bytes = AWS_XML_DEFAULT_MAX_BYTES;
    if (len > max_bytes || len > (size_t)INT_MAX) {
        aws_error_set(err, AWS_ERR_TOO_LARGE, "XML document of %zu bytes is over the limit of %zu",
                      len, max_bytes);
        goto out;
    }
    if (data == NULL || len == 0) {
        aws_error_set(err, AWS_ERR_PARSE, "empty XML document");
        goto out;
    }
    pthread_once(&xml_once, xml_init);
    xmlSetGenericErrorFunc(NULL, xml_silent);
    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL || ctxt->sax == NULL) {
        aws_error_set(err, AWS_ERR_NO_MEMORY, "cannot allocate an XML parser");
        goto out;
    }
    ctxt->_private = &saw_dtd;
    ctxt->sax->internalSubset = reject_doctype;
    ctxt->sax->externalSubset = reject_doctype;
    ctxt->sax->entityDecl = reject_entity_decl;
    doc = xmlCtxtReadMemory(ctxt, data, (int)len, NULL, NULL, XML_OPTIONS);
    if (saw_dtd) {
        aws_error_set(err, AWS_ERR_PARSE, "XML document with a DTD refused");
        goto out;
    }
    if (doc == NULL || !ctxt->wellFormed) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);
        char msg[200] = "malformed XML";

        if (xe != NULL && xe->message != NULL) {
            size_t n;

            snprintf(msg, sizeof(msg), "%s", xe->message);
            n = strlen(msg);
            while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = '\0';
            for (size_t i = 0; i < n; i++) /* one line for the logs */
                if ((unsigned char)msg[i] < 0x20)
                    msg[i] = ' ';
        }
        aws_error_set(err, AWS_ERR_PARSE, "invalid XML (line %d): %s", xe ? xe->line : 0, msg);
        goto out;
    }
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "XML document with a DTD refused");
        goto out;
    }
    if (xmlDocGetRootElement(doc) == NULL) {
        aws_error_set(err, AWS_ERR_PARSE, "XML document without a root element");
        goto out;
    }
    *out = (struct aws_xml_doc *)(void *)doc;
    doc = NULL;
    rc = 0;
out:
    if (doc != NULL)
        xmlFreeDoc(doc);
    if (ctxt != NULL) {
        ctxt->_private = NULL;
        xmlFreeParserCtxt(ctxt);
    }
    return rc;
}

void aws_xml_free(struct aws_xml_doc *doc)
{
    if (doc != NULL)
        xmlFreeDoc((xmlDocPtr)(void *)doc);
}

void aws_xml_wipe(struct aws_xml_doc *doc)
{
    xmlDocPtr d = (xmlDocPtr)(void *)doc;
    xmlNodePtr n;

    if (d == NULL)
        return;
    /* Depth-first walk without recursion over the element tree. Short
     * strings interned in the parser's dictionary are shared and left
     * alone (libxml2 interns only text of up to 3 bytes and white space). */
    n = d->children;
    while (n != NULL) {
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content != NULL &&
            (d->dict == NULL || xmlDictOwns(d->dict, n->content) != 1))
            OPENSSL_cleanse(n->content, strlen((const char *)n->content));
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != NULL && n->next == NULL)
            n = n->parent != NULL && n->parent != (xmlNodePtr)d ? n->parent : NULL;
        if (n != NULL)
            n = n->next;
    }
}

const struct aws_xml_node *aws_xml_root(const struct aws_xml_doc *doc)
{
    return anode(xmlDocGetRootElement((const xmlDoc *)(const void *)doc));
}

const char *aws_xml_name(const struct aws_xml_node *node)
{
    return (const char *)xnode(node)->name;
}

static const xmlNode *next_element(const xmlNode *n)
{
    while (n != NULL && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

const struct aws_xml_node *aws_xml_first(const struct aws_xml_node *node)
{
    return anode(next_element(xnode(node)->children));
}

const struct aws_xml_node *aws_xml_next(const struct aws_xml_node *node)
{
    return anode(next_element(xnode(node)->next));
}

const struct aws_xml_node *aws_xml_child(const struct aws_xml_node *node, const char *name)
{
    const struct aws_xml_node *c;

    for (c = aws_xml_first(node); c != NULL; c = aws_xml_next(c))
        if (strcmp(aws_xml_name(c), name) == 0)
            return c;
    return NULL;
}

bool aws_xml_has_children(const struct aws_xml_node *node)
{
    return aws_xml_first(node) != NULL;
}

int aws_xml_text(const struct aws_xml_node *node, struct aws_buf *out)
{
    const xmlNode *c;

    for (c = xnode(node)->children; c != NULL; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content &&
            aws_buf_append_str(out, (const char *)c->content) != 0)
            return -1;
    }
    return 0;
}

int aws_xml_attr(const struct aws_xml_node *node, const char *qname, struct aws_buf *out)
{
    const char *colon = strchr(qname, ':');
    const char *local = colon ? colon + 1 : qname;
    size_t prefix_len = colon ? (size_t)(colon - qname) : 0;
    const xmlAttr *a;

    for (a = xnode(node)->properties; a != NULL; a = a->next) {
        const char *prefix = a->ns && a->ns->prefix ? (const char *)a->ns->prefix : NULL;
        xmlChar *value;
        int rc;

        if (strcmp((const char *)a->name, local) != 0)
            continue;
        if (colon != NULL && (prefix == NULL || strlen(prefix) != prefix_len ||
                              strncmp(prefix, qname, prefix_len) != 0))
            continue;
        if (colon == NULL && prefix != NULL)
            continue;
        value = xmlNodeListGetString(a->doc, a->children, 1);
        rc = aws_buf_append_str(out, value ? (const char *)value : "") == 0 ? 1 : -1;
        xmlFree(value);
        return rc;
    }
    return 0;
}
