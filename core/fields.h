/* Structure descriptions: every on-disk structure is described once, as a
 * table of fields.  The same table drives decoding, `vise dump`, JSON, the
 * TUI's header and hex panes, `explain`, the learners' pages in doc/formats
 * and the fuzz mutators.
 *
 * A format describes a structure with an X-macro list:
 *
 *   #define QCOW2_HEADER(F) \
 *       F(magic,   0, 4, FK_MAGIC, NULL, "\"QFI\\xfb\": marks a qcow file") \
 *       F(version, 4, 4, FK_UINT,  NULL, "format version, 2 or 3")
 *   SDESC_STRUCT(qcow2_header, SD_BE, QCOW2_HEADER)
 *          -> struct qcow2_header { uint64_t magic; uint64_t version; ... }
 *          -> static inline void qcow2_header_decode(struct qcow2_header *,
 *                                                    const uint8_t *, size_t)
 *   SDESC_DEFINE(qcow2_header, "qcow2 header", 104, SD_BE,
 *                "the first bytes of every qcow2 file", QCOW2_HEADER)
 *          -> const struct sdesc qcow2_header_desc (one .c file only)
 *
 * Every member of the generated struct is a uint64_t holding the field's
 * integer value (for byte fields such as UUIDs: the first 8 bytes; use the
 * raw buffer for the rest). */
#ifndef VISE_FIELDS_H
#define VISE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fkind {
	FK_UINT,     /* unsigned integer, shown in decimal */
	FK_HEX,      /* unsigned integer, shown in hex */
	FK_OFFSET,   /* a file offset (hex); points at another structure */
	FK_SIZE,     /* a byte count, shown with a human unit */
	FK_SHIFT,    /* log2 of a size: shows v and 1<<v */
	FK_FLAGS,    /* bit set; names[] gives bit numbers and names */
	FK_ENUM,     /* one of names[] */
	FK_MAGIC,    /* signature bytes, shown as text and hex */
	FK_BYTES,    /* opaque bytes, shown in hex */
	FK_UUID,     /* 16 bytes, RFC 4122 text (big-endian byte order) */
	FK_GUID,     /* 16 bytes, Microsoft mixed-endian GUID text */
	FK_STR,      /* ASCII/UTF-8, NUL padded */
	FK_UTF16,    /* UTF-16LE, NUL padded */
	FK_TIME,     /* seconds since 1970 */
	FK_BOOL,
	FK_RESERVED, /* must be zero; non-zero is worth a finding */
	FK_TIME2000, /* seconds since 2000-01-01 00:00 UTC (VHD) */
	FK_UTF16BE,  /* UTF-16 big-endian, NUL padded (VHD parent name) */
};

enum sd_endian { SD_BE, SD_LE };

/* A named enum value or flag bit (bit number for FK_FLAGS). */
struct fname {
	uint64_t value;
	const char *name;
	const char *meaning;
};

struct field {
	const char *name;
	uint32_t off;
	uint32_t width;
	enum fkind kind;
	const struct fname *names; /* terminated by a NULL name; may be NULL */
	const char *meaning;       /* one line: what the field is for */
};

struct sdesc {
	const char *id;            /* "qcow2_header": stable, used by dump/explain */
	const char *title;         /* "qcow2 header" */
	uint32_t size;             /* bytes covered by the fields */
	enum sd_endian endian;
	const struct field *fields;
	size_t nfields;
	const char *meaning;
};

/* The integer value of a field (width <= 8; wider fields give their first 8
 * bytes).  Bytes past len read as 0, so a short buffer never overreads. */
uint64_t field_u64(const struct sdesc *d, const struct field *f,
		   const uint8_t *buf, size_t len);
uint64_t field_get_raw(const uint8_t *buf, size_t len, uint32_t off,
		       uint32_t width, enum sd_endian endian);
/* The value as a person reads it: "65536 (64 KiB)", "0x30000",
 * "lazy_refcounts, corrupt", "zlib", "2024-01-02 03:04:05 UTC". */
void field_format(const struct sdesc *d, const struct field *f,
		  const uint8_t *buf, size_t len, char *out, size_t outlen);
const struct field *sdesc_field(const struct sdesc *d, const char *name);
const char *fname_lookup(const struct fname *names, uint64_t value);
const char *fkind_name(enum fkind k);

/* Formats a byte count as "64 KiB", "1.5 GiB". */
void fmt_size(uint64_t v, char *out, size_t outlen);

#define SDESC_MEMBER_(n, o, w, k, nm, m) uint64_t n;
#define SDESC_FIELD_(n, o, w, k, nm, m) { #n, o, w, k, nm, m },
#define SDESC_DECODE_(n, o, w, k, nm, m) \
	out->n = field_get_raw(buf, len, o, w, sdesc_endian_);

/* The C struct and its decoder; may live in a format's private header. */
#define SDESC_STRUCT(ident, endian, LIST)                                      \
	struct ident { LIST(SDESC_MEMBER_) };                                  \
	static inline void ident##_decode(struct ident *out,                   \
					  const uint8_t *buf, size_t len)      \
	{                                                                      \
		const enum sd_endian sdesc_endian_ = endian;                   \
		(void)sdesc_endian_; (void)buf; (void)len;                     \
		LIST(SDESC_DECODE_)                                            \
	}

/* The field table `const struct sdesc ident_desc`; in exactly one .c file. */
#define SDESC_DEFINE(ident, title, size, endian, meaning, LIST)               \
	static const struct field ident##_fields_[] = { LIST(SDESC_FIELD_) };  \
	const struct sdesc ident##_desc = {                                    \
		#ident, title, size, endian, ident##_fields_,                  \
		sizeof ident##_fields_ / sizeof ident##_fields_[0], meaning };

#endif
