/* A sink is where a command writes its result.  Commands write structured
 * data once (objects, arrays, keyed values); the sink renders it as JSON or
 * as indented "key: value" text.  Commands that want a table in text mode
 * test sink_json() and use sink_printf() for their own lines.
 *
 * The sink writes to a FILE*: stdout for the CLI, an open_memstream() buffer
 * for the TUI's log pane. */
#ifndef VISE_SINK_H
#define VISE_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SINK_DEPTH_MAX 32

struct sink {
	FILE *fp;
	bool json;
	int depth;
	bool need_comma[SINK_DEPTH_MAX];
	bool in_array[SINK_DEPTH_MAX];
	int array_index[SINK_DEPTH_MAX];
};

void sink_init(struct sink *s, FILE *fp, bool json);
static inline bool sink_json(const struct sink *s) { return s->json; }

/* key is NULL inside arrays and for the top-level value. */
void sink_obj_begin(struct sink *s, const char *key);
void sink_obj_end(struct sink *s);
void sink_arr_begin(struct sink *s, const char *key);
void sink_arr_end(struct sink *s);
void sink_str(struct sink *s, const char *key, const char *v);
void sink_u64(struct sink *s, const char *key, uint64_t v);
void sink_i64(struct sink *s, const char *key, int64_t v);
void sink_hex(struct sink *s, const char *key, uint64_t v); /* JSON: number; text: 0x... */
void sink_bool(struct sink *s, const char *key, bool v);
void sink_null(struct sink *s, const char *key);
void sink_double(struct sink *s, const char *key, double v);
/* Ends the document: JSON gets its final newline. */
void sink_end(struct sink *s);

/* Free-form text (text mode only; ignored in JSON mode). */
void sink_printf(struct sink *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Writes v as a JSON string literal with escapes (also used by tests). */
void json_write_string(FILE *fp, const char *v);

#endif
