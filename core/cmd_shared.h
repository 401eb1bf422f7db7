/* What the command files share and nobody else needs: the command records,
 * the common option parser, and small output helpers.  Private to
 * core/cmd*.c; the public contract is core/cmd.h. */
#ifndef VISE_CMD_SHARED_H
#define VISE_CMD_SHARED_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cmd.h"

#ifndef VISE_VERSION
#define VISE_VERSION "0.1.0"
#endif

extern const struct command cmd_info;
extern const struct command cmd_map;
extern const struct command cmd_clusters;
extern const struct command cmd_dump;
extern const struct command cmd_trace;
extern const struct command cmd_snapshot;
extern const struct command cmd_cat;
extern const struct command cmd_convert;
extern const struct command cmd_compare;
extern const struct command cmd_measure;
extern const struct command cmd_ls;
extern const struct command cmd_probe;
extern const struct command cmd_inspect;
extern const struct command cmd_explain;
extern const struct command cmd_layout;
extern const struct command cmd_check;
extern const struct command cmd_undo;
extern const struct command cmd_help_cmd;
extern const struct command cmd_version;

/* Which of the shared options a command accepts (-h/--help always). */
enum {
	CO_JSON = 1,        /* --json */
	CO_FORMAT = 2,      /* -f FMT */
	CO_EXTERNAL = 4,    /* --allow-external */
	CO_IMAGE = CO_JSON | CO_FORMAT | CO_EXTERNAL,
};

struct cmd_opts {
	struct open_opts open;
	bool json;
};

/* A command's own option: return 0 when taken, or an exit status (2 after
 * cmd_usage) to stop. */
typedef int (*cmd_own_opt_fn)(struct cmd_ctx *ctx, void *data, int opt,
			      const char *arg);

#define CMD_GO (-1)   /* cmd_parse and cmd_operands: carry on */

/* Parses the shared options in `common` plus the command's own (short
 * letters in own_short, getopt syntax; long ones in own_long, terminated by
 * a zeroed entry; both may be NULL).  Returns CMD_GO with optind at the
 * first operand, or an exit status: 0 after --help, 2 on a usage error. */
int cmd_parse(struct cmd_ctx *ctx, const struct command *c, int argc,
	      char **argv, unsigned common, const char *own_short,
	      const struct option *own_long, cmd_own_opt_fn own, void *data,
	      struct cmd_opts *o);
/* Checks that min..max operands remain; CMD_GO or 2 after a usage line. */
int cmd_operands(struct cmd_ctx *ctx, const struct command *c, int argc,
		 int min, int max);
/* The operands of an image command: IMAGE, then min_rest..max_rest more.
 * In the TUI (ctx->current set) IMAGE may be left out: with at most
 * max_rest operands they are all "rest" and *path is NULL (the open
 * image).  *rest points into argv.  CMD_GO or 2 after a usage line. */
int cmd_image_args(struct cmd_ctx *ctx, const struct command *c, int argc,
		   char **argv, int min_rest, int max_rest, const char **path,
		   char ***rest, int *nrest);

/* Runs j inline (batch mode; core/cmd_progress.c): Ctrl-C and SIGTERM
 * cancel it; CMD_PROG_BAR draws qemu-img's "(P/100%)" line on ctx->err
 * when it is a terminal, CMD_PROG_JSON one JSON object per update,
 * CMD_PROG_BYTES adds MB/s (done counts bytes).  job_run's result; the
 * caller frees j. */
enum { CMD_PROG_BAR = 1, CMD_PROG_JSON = 2, CMD_PROG_BYTES = 4 };
/* Batch mode: catch Ctrl-C and SIGTERM before a job makes its output
 * (convert creates DST.partial when the job is made), so that a signal in
 * between cancels the job instead of killing vise with the file left
 * behind.  cmd_job_inline releases them; a failed setup calls release. */
void cmd_signals_catch(void);
void cmd_signals_release(void);
int cmd_job_inline(struct cmd_ctx *ctx, struct job *j, unsigned flags,
		   struct vise_err *e);

/* Size the way qemu-img prints it: "0 B", "460 KiB", "1.5 MiB". */
void cmd_size_str(uint64_t v, char *out, size_t len);

/* "findings": [...] in JSON, a "Findings:" block in text (nothing when
 * there are none). */
void cmd_emit_findings(struct sink *s, const struct findings *f);
/* JSON only: every finding under key, each with its class (check). */
void cmd_emit_problems(struct sink *s, const char *key,
		       const struct findings *f);

/* Integer kinds JSON shows as numbers; the rest are shown as text. */
bool cmd_field_numeric(const struct field *f);
/* Writes one field as "name": integer or string. */
void cmd_emit_field_value(struct sink *s, const struct sdesc *d,
			  const struct field *f, const uint8_t *buf,
			  size_t len);
/* Whether the field lies wholly inside the len bytes read. */
bool cmd_field_present(const struct field *f, size_t len);

/* The bytes of a described structure (a table: count*entry_size), read
 * from the layer's src, at most max bytes; short at the end of the file.
 * *buf is malloc'd. */
int cmd_read_sinst(const struct image *img, const struct sinst *si,
		   size_t max, uint8_t **buf, size_t *len, struct vise_err *e);

/* The snapshot list: info's "snapshots" array, `snapshot -l`. */
void snapshots_emit_json(struct sink *s, const char *key,
			 const struct image *img);
void snapshots_print_table(struct sink *s, const struct image *img);

/* The backing file's path as qemu-img would show it ("sub/../x.qcow2"),
 * malloc'd; also when the policy refused to follow it. */
char *cmd_backing_full(const struct image *img);

#endif
