/* The convert engine: a job that streams a source image's guest content
 * into a writer (core/writer.h).  `vise convert` and the TUI build one
 * with convert_job_new and run it with job_run. */
#ifndef VISE_CONVERT_H
#define VISE_CONVERT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "core/job.h"
#include "core/writer.h"

#define CONVERT_SPARSE_DEFAULT 4096u
#define CONVERT_SPARSE_MAX (16u << 20)
#define CONVERT_THREADS_MAX 16

struct convert_opts {
	const char *src;
	const char *src_fmt;      /* -f, NULL to probe */
	const char *snapshot;     /* -l: read this internal snapshot of src */
	const char *dst;
	const char *dst_fmt;      /* -O (a driver name or alias) */
	struct writer_opts wo;    /* -o pairs, -c, -B, -F */
	uint64_t sparse;          /* -S: zero bytes that make a hole; 0 writes all */
	bool existing;            /* -n: DST exists; raw is written in place */
	bool force;               /* --force: replace an existing DST */
	bool allow_external;      /* follow the source's external paths */
	unsigned threads;         /* compression threads, 0 = online cores */
	uint64_t rate;            /* -r: at most this many guest bytes a second,
				   * 0 = no limit (qemu-img's rate limit) */
};

/* Opens the source, creates DST.partial and starts the writer.  Every
 * string in o is copied: the caller may free its arguments at once.  The
 * job's cleanup removes the partial files unless the job finished. */
int convert_job_new(const struct convert_opts *o, struct job **out,
		    struct vise_err *e);

/* -o KEY=VALUE,... as qemu-img parses it (",," is a comma), accumulated
 * over several -o; the strings are owned by the list. */
#define WOPT_LIST_MAX 64
struct wopt_list {
	const char *keys[WOPT_LIST_MAX];
	const char *values[WOPT_LIST_MAX];
	char *store[WOPT_LIST_MAX];
	size_t n;
	bool help;                /* -o help (or ?) was given */
};
/* The writer's warning for a finished conversion job, or NULL. */
const char *convert_job_note(const struct job *j);

int wopt_list_add(struct wopt_list *l, const char *arg, struct vise_err *e);
void wopt_list_free(struct wopt_list *l);
/* Prints the options of a writer, for -o help. */
void wopt_print_help(FILE *fp, const char *fmt, const struct writer_ops *w);

/* Whether len bytes at p are all zero. */
bool buf_is_zero(const void *p, size_t len);

#endif
