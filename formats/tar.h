/* tar archives, private to formats/tar.c, ova.c and uec.c: the header
 * block's field table, the scanner that walks headers (ustar, pax, GNU) over
 * any forward reader (a file, or a gzip stream for UEC tarballs), and the
 * container operations the tar-based drivers share.
 *
 * A tar archive is a run of 512-byte blocks: a header block, then the
 * member's data rounded up to 512, and so on; two zero blocks end it.
 * Numbers in headers are octal ASCII (GNU: base-256 binary when the first
 * byte has its high bit set). */
#ifndef VISE_FORMATS_TAR_H
#define VISE_FORMATS_TAR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define TAR_BLOCK 512
#define TAR_ENTRIES_MAX 100000        /* members listed at most */
#define TAR_NAME_MAX 4096             /* a member name (PATH_MAX) */
#define TAR_NAMES_BUDGET (64u << 20)  /* all names and link targets */
#define TAR_PAX_MAX (1u << 20)        /* one pax extended header's data */
#define TAR_EXT_RUN_MAX 8             /* extended headers before one member */
#define TAR_SPARSE_EXT_MAX 4096       /* GNU sparse extension blocks */

extern const struct fname tar_type_names[];

#define TAR_HEADER(F)                                                         \
	F(name, 0, 100, FK_STR, NULL,                                         \
	  "member name (ustar: the part after prefix), NUL padded")           \
	F(mode, 100, 8, FK_STR, NULL, "permission bits, octal ASCII")         \
	F(uid, 108, 8, FK_STR, NULL, "owner's user id, octal ASCII")          \
	F(gid, 116, 8, FK_STR, NULL, "owner's group id, octal ASCII")         \
	F(size, 124, 12, FK_STR, NULL,                                        \
	  "bytes of data after this header, octal ASCII (GNU: base-256 "      \
	  "binary when the first byte's high bit is set)")                    \
	F(mtime, 136, 12, FK_STR, NULL,                                       \
	  "modification time, seconds since 1970, octal ASCII")               \
	F(chksum, 148, 8, FK_STR, NULL,                                       \
	  "sum of the header's 512 bytes, this field counted as spaces; "     \
	  "tar accepts the signed and the unsigned sum")                      \
	F(typeflag, 156, 1, FK_ENUM, tar_type_names,                          \
	  "what the member is: file, link, directory, or an extended header") \
	F(linkname, 157, 100, FK_STR, NULL,                                   \
	  "target of a hard or symbolic link")                                \
	F(magic, 257, 6, FK_MAGIC, NULL,                                      \
	  "\"ustar\\0\" (POSIX) or \"ustar \" (GNU); empty in v7 archives")   \
	F(version, 263, 2, FK_STR, NULL, "\"00\" (POSIX) or \" \\0\" (GNU)")  \
	F(uname, 265, 32, FK_STR, NULL, "owner's user name")                  \
	F(gname, 297, 32, FK_STR, NULL, "owner's group name")                 \
	F(devmajor, 329, 8, FK_STR, NULL, "device major number, octal")       \
	F(devminor, 337, 8, FK_STR, NULL, "device minor number, octal")       \
	F(prefix, 345, 155, FK_STR, NULL,                                     \
	  "ustar: directory part of a long name, joined with '/'; GNU "       \
	  "keeps atime, ctime and the sparse map here instead")               \
	F(pad, 500, 12, FK_BYTES, NULL, "unused, pads the header to 512")
SDESC_STRUCT(tar_header, SD_LE, TAR_HEADER)
extern const struct sdesc tar_header_desc;

/* One member as the archive stores it. */
struct tar_entry {
	char *name;            /* normalised: no leading "./", no trailing '/' */
	char *link;            /* link target, or NULL */
	char *note;            /* what the data is (set by a scan callback) */
	uint64_t ext_off[TAR_EXT_RUN_MAX]; /* pax/GNU extended header blocks */
	uint64_t ext_len[TAR_EXT_RUN_MAX]; /* and their data */
	int next;
	uint64_t hdr_off;      /* the member's own header block */
	uint64_t data_off;     /* its data (after GNU sparse extension blocks) */
	uint64_t size;         /* bytes of data stored */
	uint64_t real_size;    /* a sparse file's size; = size otherwise */
	uint32_t mode;
	int64_t mtime;
	char type;             /* typeflag ('0', '5', '2', ...) */
	bool sparse;           /* GNU 'S' or pax GNU.sparse: not followed */
	bool unsafe;           /* absolute or climbing out with "..": never opened */
	bool truncated;        /* data runs past the end of the archive */
};

struct tar_archive {
	struct tar_entry *v;
	size_t n, cap;
	size_t names_bytes;
	uint64_t end_off;      /* where the end blocks start (or where the
				* listing stopped) */
	uint64_t end_len;      /* bytes of end-of-archive blocks seen */
	bool ended;            /* the end-of-archive blocks were seen */
	bool stopped;          /* the listing stopped on a problem */
};

/* A forward reader: a file (random access) or a decompressed stream (reads
 * must not go backwards).  read fills up to len bytes at off; *got short
 * only at the end of the input. */
struct tar_input {
	int (*read)(void *ctx, uint64_t off, void *buf, size_t len,
		    size_t *got, struct vise_err *e);
	void *ctx;
	uint64_t size;         /* UINT64_MAX when unknown (a stream) */
};

/* Called once per member after its headers; may read the member's data at
 * te->data_off through the input (streams: before the scanner skips it) and
 * set te->note (malloc'd).  Non-zero stops the scan. */
typedef int (*tar_entry_fn)(void *ctx, struct tar_entry *te);

/* Walks the archive from offset 0, records every member in ar and every
 * problem in f (the listing stops cleanly on the first one that leaves no
 * safe way on).  Fails only on an I/O error of the input. */
int tar_scan(const struct tar_input *in, struct findings *f,
	     struct tar_archive *ar, tar_entry_fn fn, void *ctx,
	     struct vise_err *e);
void tar_archive_free(struct tar_archive *ar);

/* The header checksum POSIX defines (unsigned sum, chksum as spaces), and
 * the stored and computed ones as text for a check's found/expected. */
unsigned long tar_checksum(const uint8_t *blk);
void tar_checksum_texts(const uint8_t *blk, char found[48], char expected[48]);

/* Whether the first 512 bytes are a tar header with a valid checksum. */
bool tar_header_valid(const uint8_t *blk, size_t len);
/* Valid, or at least carrying the "ustar" magic (a damaged header). */
bool tar_header_plausible(const uint8_t *blk, size_t len);
/* The first member's name from a header block (ustar prefix joined). */
void tar_header_name(const uint8_t *blk, char *out, size_t outlen);

/* The member called name (normalised as in struct tar_entry), the last one
 * when the archive holds several: tar extracts them in order. */
const struct tar_entry *tar_find(const struct tar_archive *ar,
				 const char *name);
/* Whether te's bytes can be opened in place: a plain file, safe name, not
 * sparse, inside the archive. */
bool tar_entry_in_place(const struct tar_entry *te);

/* The driver state of "tar" and "ova" (ova keeps its appliance in ext). */
struct tar_state {
	struct tar_archive ar;
	void *ext;
};

/* The operations "tar", "ova" (and, for list, "uec") share. */
int tar_open_archive(struct image *img, struct vise_err *e);
void tar_state_free(struct tar_state *st);
int tar_list_archive(struct image *img, const struct tar_archive *ar,
		     bool in_place_ok, const char *path, const struct lister *l,
		     struct vise_err *e);
int tar_op_member(struct image *img, const char *name, uint64_t *off,
		  uint64_t *len, struct vise_err *e);
int tar_op_extent(struct image *img, uint64_t off, struct extent *x,
		  struct vise_err *e);
int tar_op_walk(struct image *img, unsigned what, const struct walker *w,
		struct vise_err *e);
int tar_op_trace(struct image *img, uint64_t off, const struct tracer *t,
		 struct vise_err *e);
/* `vise check` of a tar (tar_check.c): every header's checksum, going on
 * past a damaged header where its size can still be read, names that
 * cannot be extracted, data after the end-of-archive blocks. */
struct check_ctx;
int tar_check(struct image *img, struct check_ctx *cc, struct vise_err *e);

/* tar's info: member count, end-of-archive state. */
void tar_info_archive(const struct tar_archive *ar, struct sink *s);

#endif
