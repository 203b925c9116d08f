/* A small, hardened XML reader for AWS responses on libxml2: no network, no
 * DTDs, no entity expansion, a size bound; plus a tiny read-only DOM walk.
 * A parsed document is immutable; distinct documents may be used from
 * different threads at the same time. */
#ifndef AVIARY_AWS_XML_H
#define AVIARY_AWS_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/buffer.h"
#include "aws/error.h"

/* Used when aws_xml_parse is given max_bytes == 0. */
#define AWS_XML_DEFAULT_MAX_BYTES (16u * 1024u * 1024u)

struct aws_xml_doc;  /* a parsed document (opaque) */
struct aws_xml_node; /* an element inside a document (opaque, borrowed) */

/* Parses len bytes of XML. Documents larger than max_bytes (0: the default),
 * documents carrying a DOCTYPE (internal or external DTD, hence any entity
 * declaration), malformed documents and documents without a root element are
 * rejected. Nothing is fetched from the network and no entity is expanded.
 * Returns 0 and *out (free with aws_xml_free), or -1 with *err (AWS_ERR_PARSE,
 * or AWS_ERR_TOO_LARGE) and *out NULL. For a malformed document the message
 * is "invalid XML (line N): " and libxml2's words, which may quote a few
 * bytes of the input (encoding errors): cut it after "(line N)" when the
 * input may carry secrets. */
int aws_xml_parse(const void *data, size_t len, size_t max_bytes, struct aws_xml_doc **out,
                  struct aws_error *err);

void aws_xml_free(struct aws_xml_doc *doc);

/* Overwrites with zeros the text of every text and CDATA node the document
 * owns (for documents that carried secrets; call it just before
 * aws_xml_free). The one call that changes a document: the caller must be
 * its only user. Copies libxml2 made and released while parsing (its input
 * buffer, grown text) are out of reach; wipe the input yourself. */
void aws_xml_wipe(struct aws_xml_doc *doc);

/* The root element (never NULL for a parsed document). */
const struct aws_xml_node *aws_xml_root(const struct aws_xml_doc *doc);

/* The element's local name, without namespace prefix. */
const char *aws_xml_name(const struct aws_xml_node *node);

/* First child element, next sibling element, or NULL. Text, comments and
 * processing instructions are skipped. */
const struct aws_xml_node *aws_xml_first(const struct aws_xml_node *node);
const struct aws_xml_node *aws_xml_next(const struct aws_xml_node *node);

/* First child element whose local name is `name`, or NULL. */
const struct aws_xml_node *aws_xml_child(const struct aws_xml_node *node, const char *name);

/* True when the element has at least one child element. */
bool aws_xml_has_children(const struct aws_xml_node *node);

/* Appends the element's own text (its text and CDATA children, entities
 * like &amp; already decoded; the text of child elements is not included) to
 * out. An empty element appends nothing. Returns 0, or -1 when out is full. */
int aws_xml_text(const struct aws_xml_node *node, struct aws_buf *out);

/* Appends the value of attribute `qname` ("type", or "xsi:type" to match
 * the namespace prefix too) to out. Returns 1 when found, 0 when absent,
 * -1 when out is full or memory runs out. */
int aws_xml_attr(const struct aws_xml_node *node, const char *qname, struct aws_buf *out);

#endif
