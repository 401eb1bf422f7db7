/* A small tolerant XML reader for OVF descriptors: elements, attributes
 * (names kept with and without their namespace prefix), text, comments,
 * processing instructions, CDATA and the five named entities plus numeric
 * ones.  No DTDs, no external anything.  The input is hostile: its size,
 * depth, element count and attribute count are bounded, and a malformed
 * document gives back the tree read so far and the first problem's offset. */
#ifndef VISE_FORMATS_XML_H
#define VISE_FORMATS_XML_H

#include <stddef.h>

#define XML_SIZE_MAX (16u << 20)
#define XML_DEPTH_MAX 64
#define XML_NODES_MAX 65536
#define XML_ATTRS_MAX 64

struct xml_attr {
	char *name;        /* as written: "ovf:id" */
	const char *local; /* after the prefix: "id" */
	char *value;       /* entities decoded */
};

struct xml_node {
	char *name;        /* as written: "ovf:Envelope" */
	const char *local; /* "Envelope" */
	struct xml_attr *attrs;
	size_t nattrs;
	char *text;        /* the element's own text, trimmed; "" if none */
	size_t off;        /* byte offset of '<' in the document */
	struct xml_node *parent, *child, *next;
	struct xml_node *last_child;  /* the parser's append point */
};

struct xml_doc {
	struct xml_node *root;
	size_t nodes;
	char error[160];   /* "" when the document was read whole */
	size_t error_off;
};

/* Parses buf; always fills doc (root may be NULL), returns 0 when the
 * document was read whole, -1 when doc->error says what stopped it. */
int xml_parse(const char *buf, size_t len, struct xml_doc *doc);
void xml_free(struct xml_doc *doc);

/* The first child (after n's first child when from is set) whose local name
 * is `local`, or NULL. */
struct xml_node *xml_child(const struct xml_node *n, const char *local);
struct xml_node *xml_next(const struct xml_node *n, const char *local);
/* An attribute's value by local name, or NULL. */
const char *xml_attr(const struct xml_node *n, const char *local);
/* The text of the child `local`, or NULL. */
const char *xml_child_text(const struct xml_node *n, const char *local);

#endif
