/* `vise inspect`: the verdict an image service needs before it hands an
 * upload to a hypervisor.  Each rule has a stable name, a severity, a
 * one-line reason and the evidence (where, field, file offset, value); the
 * verdict is the worst severity that fired.  doc/inspect.md lists the rules
 * and the JSON.
 *
 * Inspecting never writes and never opens a file outside the image's folder
 * unless the caller allows it; a protocol or json: name is never followed.
 * Rules read the image model (core/image.h), the probes, the layout inside
 * the guest view, the structures a driver walks, and the few facts only a
 * driver knows (struct extfile). */
#ifndef VISE_INSPECT_H
#define VISE_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/err.h"
#include "core/image.h"

enum rule_sev { RULE_INFO, RULE_WARN, RULE_FAIL };
enum verdict { VERDICT_SAFE, VERDICT_SUSPICIOUS, VERDICT_UNSAFE };

#define EVIDENCE_NO_OFFSET UINT64_MAX
#define INSPECT_SIGS_MAX 32
#define INSPECT_RULES_MAX 512      /* more are counted, not kept */
#define INSPECT_REFS_MAX 1024
#define INSPECT_MAX_SIZE_DEFAULT (64ull << 40)   /* 64 TiB: VHDX's limit */

struct rule_hit {
	const char *name;          /* stable: "backing-file-outside" */
	enum rule_sev sev;
	char reason[256];          /* one line */
	/* the evidence */
	char where[256];           /* layer or member it is in; "" = IMAGE */
	char field[64];
	uint64_t offset;           /* in `where`, EVIDENCE_NO_OFFSET if none */
	char value[320];
};

/* A name an image uses to reach another file. */
struct file_ref {
	const char *role;          /* "backing-file", "data-file", "extent-file" */
	char *name;                /* as the image stores it */
	char *path;                /* where it leads, NULL for a protocol */
	char *format;              /* backing format the image names, or NULL */
	char *where;               /* the layer or member naming it */
	const char *kind;          /* "inside", "outside", "protocol", "device" */
	char why[96];              /* for outside and device: how */
	uint64_t offset;           /* where the name is stored in `where` */
	bool opened;               /* vise opened it */
};

struct signature {
	const struct driver *drv;
	int score;
	uint64_t offset;           /* its first header, EVIDENCE_NO_OFFSET */
};

struct inspection {
	char *filename;
	const char *format;        /* vise's reading (the claimed one with -f) */
	const char *detected;      /* the best signature, raw when none */
	const char *qemu_probe;    /* what qemu-img 7.2 would probe */
	bool opened;
	bool have_size;
	uint64_t virtual_size;
	struct signature sigs[INSPECT_SIGS_MAX];
	int nsigs;
	struct rule_hit *rules;
	size_t nrules, cap, dropped;
	struct file_ref *refs;
	size_t nrefs, refcap;
	enum verdict verdict;
};

struct inspect_opts {
	const char *format;        /* -f: the format the upload claims */
	bool allow_external;       /* paths outside the folder may be opened */
	uint64_t max_size;         /* virtual size that is suspicious past */
};

/* Inspects path.  Fails (exit 1 material) only when the file cannot be
 * read at all; a file no driver can open is an inspection with a rule. */
int inspect_image(const char *path, const struct inspect_opts *o,
		  struct inspection *out, struct vise_err *e);
void inspection_free(struct inspection *in);
const char *rule_sev_name(enum rule_sev s);    /* "info", "warn", "fail" */
const char *verdict_name(enum verdict v);      /* "safe", ... */

/* ---- for the rule files (core/inspect*.c) ---- */

/* Records a rule hit (past INSPECT_RULES_MAX it is only counted, in the
 * verdict too); where, field and value may be NULL. */
void inspect_rule(struct inspection *in, const char *name, enum rule_sev sev,
		  const char *where, const char *field, uint64_t offset,
		  const char *value, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

/* What qemu-img 7.2 would probe the bytes as ("raw" when nothing else):
 * its drivers' probes over the first 2048 bytes, zero padded. */
const char *qemu_probe_name(struct src *s, const char *filename);

/* The rules on one layer (or a disk member of a container): references to
 * other files, feature bits, state, truncation, damage. */
void inspect_layer(struct inspection *in, struct image *img,
		   const struct inspect_opts *o, const char *where);
/* The names a layer uses to reach other files, each judged and listed. */
void inspect_references(struct inspection *in, struct image *img,
			const struct inspect_opts *o, const char *where);
/* The partitions of the guest view: an image hidden at one's start. */
void inspect_nested(struct inspection *in, struct image *img,
		    const struct inspect_opts *o);
/* A tar-based container's members: unsafe names, links, devices, disks. */
void inspect_members(struct inspection *in, struct image *img,
		     const struct inspect_opts *o);

/* The first structure of the layer's own file that walks as a header
 * described by the table with id sdesc_id, and the value and offset of one
 * of its fields.  false when there is none. */
bool inspect_header_field(struct image *img, const char *sdesc_id,
			  const char *field, const struct field **f,
			  uint64_t *value, uint64_t *offset);

#endif
