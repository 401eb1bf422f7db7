/* tar: the POSIX ustar and pax formats and GNU tar's extensions, read
 * header by header.  A plain tar is a container (`vise ls`, members opened
 * in place as windows of the file); its own guest map is the file, as raw.
 *
 * OpenStack's Image service has no tar disk format: a plain tar uploaded
 * as-is is opaque bytes, disk_format "raw" with container_format "bare".
 * (An OVA, a tar with an OVF first, is container_format "ova": formats/ova.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sink.h"
#include "formats/tar.h"

const struct fname tar_type_names[] = {
	{ '0', "file", "a regular file" },
	{ 0, "file", "a regular file (pre-POSIX archives)" },
	{ '1', "hardlink", "a hard link to an earlier member" },
	{ '2', "symlink", "a symbolic link" },
	{ '3', "chardev", "a character device" },
	{ '4', "blockdev", "a block device" },
	{ '5', "directory", "a directory" },
	{ '6', "fifo", "a named pipe" },
	{ '7', "contiguous", "a contiguous file (read as a regular file)" },
	{ 'x', "pax-extended", "pax records for the next member" },
	{ 'g', "pax-global", "pax records for every later member" },
	{ 'L', "gnu-longname", "GNU: the next member's long name" },
	{ 'K', "gnu-longlink", "GNU: the next member's long link target" },
	{ 'S', "gnu-sparse", "GNU: a sparse file" },
	{ 'D', "gnu-dumpdir", "GNU: a directory with its listing" },
	{ 'M', "gnu-multivolume", "GNU: continued from another volume" },
	{ 'V', "gnu-volume", "GNU: the volume label" },
	{ 0, NULL, NULL },
};

SDESC_DEFINE(tar_header, "tar header block", 512, SD_LE,
	     "one 512-byte block before every member (ustar, pax and GNU)",
	     TAR_HEADER)

static const struct sdesc *const tar_sdescs[] = { &tar_header_desc, NULL };

/* ---- numbers and names in header blocks ---- */

static uint64_t round_block(uint64_t v)
{
	return (v + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* An octal field (leading spaces/NULs, ended by space or NUL) or a GNU
 * base-256 one; false when it is neither or does not fit 63 bits. */
static bool tar_number(const uint8_t *p, size_t w, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (p[0] & 0x80) {
		if (p[0] & 0x40)
			return false;           /* negative */
		v = p[0] & 0x3f;
		for (i = 1; i < w; i++) {
			if (v >> 55)
				return false;
			v = v << 8 | p[i];
		}
		*out = v;
		return true;
	}
	while (i < w && (p[i] == ' ' || p[i] == 0))
		i++;
	if (i == w) {
		*out = 0;                       /* an empty field reads as 0 */
		return true;
	}
	for (; i < w && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v >> 60)
			return false;
		v = v * 8 + (uint64_t)(p[i] - '0');
	}
	if (i < w && p[i] != ' ' && p[i] != 0)
		return false;
	*out = v;
	return true;
}

/* The sum POSIX defines: every byte unsigned, the chksum field counted
 * as eight spaces. */
unsigned long tar_checksum(const uint8_t *blk)
{
	unsigned long usum = 0;

	for (int i = 0; i < TAR_BLOCK; i++)
		usum += (i >= 148 && i < 156) ? ' ' : blk[i];
	return usum;
}

static bool checksum_ok(const uint8_t *blk)
{
	uint64_t stored;
	long ssum = 0;

	if (!tar_number(blk + 148, 8, &stored))
		return false;
	for (int i = 0; i < TAR_BLOCK; i++)
		ssum += (signed char)((i >= 148 && i < 156) ? ' ' : blk[i]);
	return stored == tar_checksum(blk) || (int64_t)stored == ssum;
}

void tar_checksum_texts(const uint8_t *blk, char found[48], char expected[48])
{
	size_t n = 0;

	for (int i = 148; i < 156; i++)
		if (blk[i] >= '0' && blk[i] <= '7' && n < 47)
			found[n++] = (char)blk[i];
		else if (blk[i] != ' ' && blk[i] != 0 && n < 44) {
			n += (size_t)snprintf(found + n, 48 - n, "\\x%02x",
					      blk[i]);
			if (n > 47)
				n = 47;
		}
	found[n] = 0;
	if (!n)
		snprintf(found, 48, "(empty)");
	snprintf(expected, 48, "%06lo", tar_checksum(blk));
}

static bool block_is_zero(const uint8_t *blk)
{
	for (int i = 0; i < TAR_BLOCK; i++)
		if (blk[i])
			return false;
	return true;
}

bool tar_header_valid(const uint8_t *blk, size_t len)
{
	return len >= TAR_BLOCK && !block_is_zero(blk) && checksum_ok(blk);
}

static bool is_posix_ustar(const uint8_t *blk)
{
	return !memcmp(blk + 257, "ustar\0", 6);
}

bool tar_header_plausible(const uint8_t *blk, size_t len)
{
	return tar_header_valid(blk, len) ||
	       (len >= TAR_BLOCK && !memcmp(blk + 257, "ustar", 5));
}

static void copy_field(char *out, size_t outlen, const uint8_t *p, size_t w)
{
	size_t n = strnlen((const char *)p, w);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

void tar_header_name(const uint8_t *blk, char *out, size_t outlen)
{
	char name[101], prefix[156];

	copy_field(name, sizeof name, blk, 100);
	copy_field(prefix, sizeof prefix, blk + 345, 155);
	if (is_posix_ustar(blk) && prefix[0])
		snprintf(out, outlen, "%s/%s", prefix, name);
	else
		snprintf(out, outlen, "%s", name);
}

/* "./a/b/" -> "a/b"; the result points into s (modified in place). */
static char *normalise_name(char *s)
{
	while (s[0] == '.' && s[1] == '/')
		for (s += 2; *s == '/' && s[1]; s++)
			;
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = 0;
	return s;
}

/* ---- the scanner ---- */

struct scan {
	const struct tar_input *in;
	struct findings *f;
	struct tar_archive *ar;
	struct vise_err *e;
	/* what extended headers said about the next member */
	char *long_name, *long_link;
	bool have_size, sparse;
	uint64_t pax_size;
	bool have_mtime;
	int64_t pax_mtime;
	struct tar_entry pending;     /* ext_off/ext_len collect here */
};

static void scan_reset_ext(struct scan *sc)
{
	free(sc->long_name);
	free(sc->long_link);
	sc->long_name = sc->long_link = NULL;
	sc->have_size = sc->sparse = sc->have_mtime = false;
	memset(&sc->pending, 0, sizeof sc->pending);
}

/* Reads exactly len bytes at off; 1 when the input ended first. */
static int scan_read(struct scan *sc, uint64_t off, void *buf, size_t len)
{
	size_t got = 0;
	int r = sc->in->read(sc->in->ctx, off, buf, len, &got, sc->e);
	if (r < 0)
		return r;
	return got == len ? 0 : 1;
}

static void stop(struct scan *sc, uint64_t off)
{
	sc->ar->stopped = true;
	sc->ar->end_off = off;
}

/* A name or link from the archive, bounded one by one and in total. */
static char *scan_strdup(struct scan *sc, const char *s, uint64_t off,
			 const char *field)
{
	size_t n = strlen(s);
	if (n > TAR_NAME_MAX) {
		finding_add(sc->f, SEV_WARN, off, "tar header", field,
			    "%zu bytes long, cut to %d", n, TAR_NAME_MAX);
		n = TAR_NAME_MAX;
	}
	if (sc->ar->names_bytes + n > TAR_NAMES_BUDGET)
		return NULL;
	char *d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = 0;
	sc->ar->names_bytes += n + 1;
	return d;
}

/* A decimal number of a pax record; false on junk or overflow. */
static bool pax_decimal(const char *s, size_t n, uint64_t *out, bool frac_ok)
{
	uint64_t v = 0;
	size_t i = 0;

	if (!n)
		return false;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10 || i >= 19)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < n && !(frac_ok && s[i] == '.'))
		return false;
	*out = v;
	return i > 0;
}

static void pax_record(struct scan *sc, uint64_t off, const char *key,
		       const char *val, size_t vlen, bool global)
{
	uint64_t v;

	if (!strcmp(key, "path") && !global) {
		free(sc->long_name);
		sc->long_name = scan_strdup(sc, val, off, "pax path");
	} else if (!strcmp(key, "linkpath") && !global) {
		free(sc->long_link);
		sc->long_link = scan_strdup(sc, val, off, "pax linkpath");
	} else if (!strcmp(key, "size") && !global) {
		if (pax_decimal(val, vlen, &v, false) && v < (1ull << 62)) {
			sc->have_size = true;
			sc->pax_size = v;
		} else {
			finding_add(sc->f, SEV_ERROR, off, "pax record", "size",
				    "value '%.40s' (%zu digits) is not a size vise "
				    "can believe: the ustar size is used", val, vlen);
		}
	} else if (!strcmp(key, "mtime") && !global) {
		if (pax_decimal(val, vlen, &v, true) && v < (1ull << 62)) {
			sc->have_mtime = true;
			sc->pax_mtime = (int64_t)v;
		} else {
			finding_add(sc->f, SEV_WARN, off, "pax record", "mtime",
				    "value '%.40s' is not a time", val);
		}
	} else if (!strncmp(key, "GNU.sparse.", 11)) {
		sc->sparse = true;
	}
}

/* "LEN KEY=VALUE\n" records; every length is checked against what is
 * left, so a record cannot claim bytes it does not have. */
static void pax_parse(struct scan *sc, char *data, size_t len, uint64_t off,
		      bool global)
{
	size_t pos = 0;

	while (pos < len) {
		uint64_t rlen = 0;
		size_t i = pos;
		while (i < len && i - pos < 8 && data[i] >= '0' && data[i] <= '9')
			rlen = rlen * 10 + (uint64_t)(data[i++] - '0');
		if (i == pos && data[i] == 0)
			return;                  /* NUL padding after the records */
		if (i == pos || i >= len || data[i] != ' ' || rlen <= i - pos + 1 ||
		    rlen > len - pos || data[pos + rlen - 1] != '\n') {
			finding_add(sc->f, SEV_ERROR, off + pos, "pax record", "length",
				    "record at +%zu has no valid length (\"%.20s\"): "
				    "the rest of the header is ignored", pos, data + pos);
			return;
		}
		char *key = data + i + 1, *end = data + pos + rlen - 1;
		char *eq = memchr(key, '=', (size_t)(end - key));
		if (!eq) {
			finding_add(sc->f, SEV_WARN, off + pos, "pax record", "key",
				    "record without '=' ignored");
		} else {
			*eq = 0;
			*end = 0;
			pax_record(sc, off + pos, key, eq + 1, (size_t)(end - eq - 1),
				   global);
		}
		pos += rlen;
	}
}

/* Reads the data of an extended header (pax 'x'/'g', GNU 'L'/'K'). */
static int read_ext_data(struct scan *sc, uint64_t off, uint64_t size,
			 uint64_t limit, char **out)
{
	*out = NULL;
	if (size > limit) {
		finding_add(sc->f, SEV_ERROR, off, "tar header", "size",
			    "extended header of %llu bytes is larger than %llu: "
			    "the listing stops", (unsigned long long)size,
			    (unsigned long long)limit);
		return 1;
	}
	char *d = malloc(size + 1);
	if (!d)
		return err_set(sc->e, VE_NOMEM, "out of memory");
	int r = scan_read(sc, off + TAR_BLOCK, d, size);
	if (r) {
		free(d);
		if (r > 0)
			finding_add(sc->f, SEV_ERROR, off, "tar header", "size",
				    "extended header's data runs past the end of the archive");
		return r;
	}
	d[size] = 0;
	*out = d;
	return 0;
}

static int handle_ext(struct scan *sc, const uint8_t *blk, uint64_t off,
		      uint64_t size)
{
	char type = (char)blk[156], *d;
	int r;

	if (sc->pending.next < TAR_EXT_RUN_MAX) {
		sc->pending.ext_off[sc->pending.next] = off;
		sc->pending.ext_len[sc->pending.next++] = size;
	} else {
		finding_add(sc->f, SEV_ERROR, off, "tar header", "typeflag",
			    "more than %d extended headers in a row: the listing stops",
			    TAR_EXT_RUN_MAX);
		return 1;
	}
	r = read_ext_data(sc, off, size,
			  type == 'x' || type == 'g' ? TAR_PAX_MAX : 65536, &d);
	if (r)
		return r;
	if (type == 'x' || type == 'g') {
		pax_parse(sc, d, size, off + TAR_BLOCK, type == 'g');
	} else {
		char **dst = type == 'L' ? &sc->long_name : &sc->long_link;
		free(*dst);
		*dst = scan_strdup(sc, d, off + TAR_BLOCK,
				   type == 'L' ? "GNU long name" : "GNU long link");
	}
	free(d);
	return 0;
}

/* GNU sparse: the header may be followed by extension blocks of the map,
 * each ending with an "isextended" byte.  Counted, skipped, not followed. */
static int skip_sparse_ext(struct scan *sc, const uint8_t *blk, uint64_t *pos)
{
	uint8_t ext[TAR_BLOCK];
	int more = blk[482], n = 0;

	while (more) {
		if (++n > TAR_SPARSE_EXT_MAX) {
			finding_add(sc->f, SEV_ERROR, *pos, "GNU sparse header",
				    "isextended", "more than %d extension blocks: "
				    "the listing stops", TAR_SPARSE_EXT_MAX);
			return 1;
		}
		int r = scan_read(sc, *pos, ext, sizeof ext);
		if (r)
			return r;
		more = ext[504];
		*pos += TAR_BLOCK;
	}
	return 0;
}

static int add_entry(struct scan *sc, struct tar_entry *te)
{
	struct tar_archive *ar = sc->ar;

	if (ar->n == ar->cap) {
		size_t cap = ar->cap ? ar->cap * 2 : 64;
		struct tar_entry *v = realloc(ar->v, cap * sizeof *v);
		if (!v)
			return err_set(sc->e, VE_NOMEM, "out of memory listing the archive");
		ar->v = v;
		ar->cap = cap;
	}
	ar->v[ar->n++] = *te;
	return 0;
}

/* Fills te from a member's header block and what extended headers said. */
static int decode_member(struct scan *sc, const uint8_t *blk, uint64_t off,
			 uint64_t size, struct tar_entry *te)
{
	char name[TAR_BLOCK], link[101];
	uint64_t v;

	*te = sc->pending;
	te->hdr_off = off;
	te->type = (char)blk[156];
	te->size = te->real_size = size;
	te->mode = tar_number(blk + 100, 8, &v) ? (uint32_t)(v & 07777) : 0;
	te->mtime = tar_number(blk + 136, 12, &v) ? (int64_t)v : 0;
	if (sc->have_mtime)
		te->mtime = sc->pax_mtime;
	tar_header_name(blk, name, sizeof name);
	copy_field(link, sizeof link, blk + 157, 100);
	char *n = sc->long_name ? sc->long_name : name;
	te->unsafe = path_unsafe_member(n);
	te->name = scan_strdup(sc, normalise_name(n), off, "name");
	const char *l = sc->long_link ? sc->long_link : link;
	te->link = l[0] ? scan_strdup(sc, l, off, "linkname") : NULL;
	if (!te->name)
		return 1;
	if (te->unsafe)
		finding_add(sc->f, SEV_WARN, off, "tar header", "name",
			    "member '%.120s' is %s: it is listed, never opened",
			    te->name, te->name[0] == '/' ? "an absolute path" :
			    "climbing out with '..'");
	te->sparse = sc->sparse || te->type == 'S';
	if (te->type == 'S' && tar_number(blk + 483, 12, &v))
		te->real_size = v;
	if (te->sparse)
		finding_add(sc->f, SEV_INFO, off, "tar header", "typeflag",
			    "member '%.120s' is a sparse file: listed, its map is "
			    "not followed", te->name);
	return 0;
}

static bool type_has_data(char type)
{
	return !(type == '1' || type == '2' || type == '3' || type == '4' ||
		 type == '5' || type == '6');
}

/* One header at *pos: an extended header (recorded for the next member),
 * a member (recorded), or the end.  Returns 0 to go on, 1 to stop. */
static int scan_one(struct scan *sc, uint64_t *pos, tar_entry_fn fn, void *ctx)
{
	uint8_t blk[TAR_BLOCK];
	uint64_t off = *pos, size = 0;
	int r = scan_read(sc, off, blk, sizeof blk);

	if (r < 0)
		return r;
	if (r > 0) {
		finding_add(sc->f, SEV_WARN, off, "archive", "",
			    "ends without the end-of-archive blocks");
		stop(sc, off);
		return 1;
	}
	if (block_is_zero(blk)) {
		sc->ar->ended = true;
		sc->ar->end_off = off;
		sc->ar->end_len = TAR_BLOCK;
		r = scan_read(sc, off + TAR_BLOCK, blk, sizeof blk);
		if (r < 0)
			return r;
		if (r == 0 && block_is_zero(blk))
			sc->ar->end_len = 2 * TAR_BLOCK;
		else
			finding_add(sc->f, SEV_INFO, off, "archive", "",
				    "a lone zero block ends the archive");
		return 1;
	}
	if (!checksum_ok(blk)) {
		char found[48], want[48], name[TAR_BLOCK];

		tar_checksum_texts(blk, found, want);
		tar_header_name(blk, name, sizeof name);
		problem_add(sc->f, PC_CORRUPT, off + 148, "tar header", "chksum",
			    found, want, "checksum of the header of '%.100s' "
			    "does not match the header's bytes: the listing "
			    "stops", name);
		stop(sc, off);
		return 1;
	}
	if (!tar_number(blk + 124, 12, &size) || size >= (1ull << 62)) {
		finding_add(sc->f, SEV_ERROR, off + 124, "tar header", "size",
			    "'%.12s' is not a size: the listing stops",
			    (const char *)blk + 124);
		stop(sc, off);
		return 1;
	}
	char type = (char)blk[156];
	if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
		r = handle_ext(sc, blk, off, size);
		if (r) {
			if (r > 0)
				stop(sc, off);
			return r;
		}
		*pos = off + TAR_BLOCK + round_block(size);
		return 0;
	}
	if (sc->have_size)
		size = sc->pax_size;
	if (!type_has_data(type))
		size = 0;
	if (sc->ar->n >= TAR_ENTRIES_MAX) {
		finding_add(sc->f, SEV_WARN, off, "archive", "",
			    "more than %d members: the listing stops", TAR_ENTRIES_MAX);
		stop(sc, off);
		return 1;
	}
	struct tar_entry te;
	r = decode_member(sc, blk, off, size, &te);
	if (r) {
		if (!te.name)
			finding_add(sc->f, SEV_ERROR, off, "archive", "",
				    "member names pass %u bytes in all: the listing stops",
				    TAR_NAMES_BUDGET);
		free(te.link);
		stop(sc, off);
		return 1;
	}
	uint64_t data = off + TAR_BLOCK;
	if (type == 'S' && (r = skip_sparse_ext(sc, blk, &data))) {
		free(te.name);
		free(te.link);
		if (r > 0)
			stop(sc, off);
		return r;
	}
	te.data_off = data;
	scan_reset_ext(sc);
	if (sc->in->size != UINT64_MAX && size > sc->in->size - data) {
		char found[24], want[32];

		te.truncated = true;
		snprintf(found, sizeof found, "%llu", (unsigned long long)size);
		snprintf(want, sizeof want, "<= %llu",
			 (unsigned long long)(sc->in->size - data));
		problem_add(sc->f, PC_CORRUPT, off + 124, "tar header", "size",
			    found, want, "member '%.100s' claims %llu bytes at "
			    "0x%llx, past the end of the archive (size %llu): "
			    "the listing stops", te.name,
			    (unsigned long long)size, (unsigned long long)data,
			    (unsigned long long)sc->in->size);
	}
	r = fn ? fn(ctx, &te) : 0;
	if (add_entry(sc, &te) < 0) {
		free(te.name);
		free(te.link);
		free(te.note);
		return -VE_NOMEM;
	}
	if (r || te.truncated) {
		stop(sc, off);
		return r < 0 ? r : 1;
	}
	*pos = data + round_block(size);
	return 0;
}

int tar_scan(const struct tar_input *in, struct findings *f,
	     struct tar_archive *ar, tar_entry_fn fn, void *ctx,
	     struct vise_err *e)
{
	struct scan sc = { .in = in, .f = f, .ar = ar, .e = e };
	uint64_t pos = 0;
	int r;

	memset(ar, 0, sizeof *ar);
	while ((r = scan_one(&sc, &pos, fn, ctx)) == 0)
		;
	scan_reset_ext(&sc);
	return r < 0 ? r : 0;
}

void tar_archive_free(struct tar_archive *ar)
{
	for (size_t i = 0; i < ar->n; i++) {
		free(ar->v[i].name);
		free(ar->v[i].link);
		free(ar->v[i].note);
	}
	free(ar->v);
	memset(ar, 0, sizeof *ar);
}

const struct tar_entry *tar_find(const struct tar_archive *ar, const char *name)
{
	char *want = vise_strdup(name), *w = normalise_name(want);
	const struct tar_entry *hit = NULL;

	for (size_t i = 0; i < ar->n; i++)
		if (!strcmp(ar->v[i].name, w))
			hit = &ar->v[i];
	free(want);
	return hit;
}

bool tar_entry_in_place(const struct tar_entry *te)
{
	return (te->type == '0' || te->type == 0 || te->type == '7') &&
	       !te->sparse && !te->unsafe && !te->truncated;
}

/* ---- the driver over a file ---- */

static int file_read(void *ctx, uint64_t off, void *buf, size_t len,
		     size_t *got, struct vise_err *e)
{
	long long n = src_read_upto(ctx, off, buf, len, e);
	if (n < 0)
		return (int)n;
	*got = (size_t)n;
	return 0;
}

int tar_open_archive(struct image *img, struct vise_err *e)
{
	struct tar_state *st = calloc(1, sizeof *st);
	if (!st)
		return err_set(e, VE_NOMEM, "out of memory");
	struct tar_input in = { file_read, img->src, img->src->size };
	int r = tar_scan(&in, &img->findings, &st->ar, NULL, NULL, e);
	if (r < 0) {
		tar_state_free(st);
		return r;
	}
	img->priv = st;
	img->virtual_size = img->src->size;
	return 0;
}

void tar_state_free(struct tar_state *st)
{
	if (!st)
		return;
	tar_archive_free(&st->ar);
	free(st);
}

static int tar_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t size)
{
	char name[TAR_BLOCK];
	size_t n;

	(void)tail; (void)tlen; (void)size;
	if (!tar_header_plausible(head, hlen))
		return 0;
	tar_header_name(head, name, sizeof name);
	n = strlen(name);
	if (n > 4 && !strcmp(name + n - 4, ".ovf"))
		return 0;      /* an OVA: formats/ova.c says so with more weight */
	/* a ustar header whose checksum is wrong is still read as tar, so
	 * that the bad field is reported, not the whole file called raw */
	return tar_header_valid(head, hlen) ? 80 : 40;
}

static int tar_open(struct image *img, struct vise_err *e)
{
	return tar_open_archive(img, e);
}

static void tar_close(struct image *img)
{
	tar_state_free(img->priv);
	img->priv = NULL;
}

int tar_op_extent(struct image *img, uint64_t off, struct extent *x,
		  struct vise_err *e)
{
	bool data;
	uint64_t len;
	int r = src_status(img->src, off, &data, &len, e);
	if (r < 0)
		return r;
	x->start = off;
	x->length = len;
	x->kind = data ? EXT_DATA : EXT_ZERO;
	x->host_valid = true;
	x->host_off = off;
	return 0;
}

int tar_op_trace(struct image *img, uint64_t off, const struct tracer *t,
		 struct vise_err *e)
{
	struct tar_state *st = img->priv;
	struct trace_step s = { .what = "archive byte", .index = -1,
				.has_host = true, .host_off = off };

	(void)e;
	for (size_t i = 0; st && i < st->ar.n; i++) {
		const struct tar_entry *te = &st->ar.v[i];
		if (off >= te->data_off && off - te->data_off < te->size) {
			snprintf(s.detail, sizeof s.detail,
				 "member '%.100s' byte 0x%llx", te->name,
				 (unsigned long long)(off - te->data_off));
			t->step(t->ctx, img, &s);
			return 0;
		}
	}
	snprintf(s.detail, sizeof s.detail, "file offset 0x%llx (no member's data)",
		 (unsigned long long)off);
	t->step(t->ctx, img, &s);
	return 0;
}

static int visit(const struct walker *w, struct image *img, enum owner o,
		 const struct sdesc *d, const char *name, int64_t idx,
		 uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	struct sinst si = { .desc = d, .owner = o, .name = name, .index = idx,
			    .off = off, .len = len, .count = 1 };
	return w->visit(w->ctx, img, &si);
}

static int walk_entry(struct image *img, unsigned what, const struct walker *w,
		      const struct tar_entry *te, int64_t i)
{
	uint64_t fsize = img->src->size;
	int r = 0;

	for (int k = 0; !r && k < te->next && (what & WALK_META); k++) {
		r = visit(w, img, OWN_HEADER_EXT, &tar_header_desc,
			  "extended header", i, te->ext_off[k], TAR_BLOCK);
		if (!r)
			r = visit(w, img, OWN_METADATA, NULL, "extended header data",
				  i, te->ext_off[k] + TAR_BLOCK,
				  round_block(te->ext_len[k]));
	}
	if (!r && (what & WALK_META))
		r = visit(w, img, OWN_HEADER, &tar_header_desc, "member header", i,
			  te->hdr_off, TAR_BLOCK);
	if (!r && (what & WALK_META) && te->data_off > te->hdr_off + TAR_BLOCK)
		r = visit(w, img, OWN_METADATA, NULL, "GNU sparse map", i,
			  te->hdr_off + TAR_BLOCK, te->data_off - te->hdr_off - TAR_BLOCK);
	if (r || !(what & WALK_DATA) || te->data_off >= fsize)
		return r;
	/* a truncated member claims only what the file has */
	uint64_t len = te->size, pad = round_block(te->size) - te->size;
	if (len > fsize - te->data_off) {
		len = fsize - te->data_off;
		pad = 0;
	}
	r = visit(w, img, OWN_DATA, NULL, "member data", i, te->data_off, len);
	if (!r && pad && te->data_off + len + pad <= fsize)
		r = visit(w, img, OWN_PADDING, NULL, "block padding", i,
			  te->data_off + len, pad);
	return r;
}

int tar_op_walk(struct image *img, unsigned what, const struct walker *w,
		struct vise_err *e)
{
	struct tar_state *st = img->priv;
	uint64_t fsize = img->src->size;
	int r = 0;

	(void)e;
	for (size_t i = 0; !r && i < st->ar.n; i++)
		r = walk_entry(img, what, w, &st->ar.v[i], (int64_t)i);
	if (r || !st->ar.ended || !(what & WALK_META))
		return r;
	r = visit(w, img, OWN_METADATA, NULL, "end-of-archive blocks", -1,
		  st->ar.end_off, st->ar.end_len);
	uint64_t after = st->ar.end_off + st->ar.end_len;
	if (!r && after < fsize)
		r = visit(w, img, OWN_PADDING, NULL, "record padding", -1, after,
			  fsize - after);
	return r;
}

int tar_op_member(struct image *img, const char *name, uint64_t *off,
		  uint64_t *len, struct vise_err *e)
{
	struct tar_state *st = img->priv;
	const struct tar_entry *te = tar_find(&st->ar, name);

	if (!te)
		return err_set(e, VE_NOTFOUND, "no member '%s'", name);
	if (!tar_entry_in_place(te))
		return err_set(e, VE_REFUSED, "member '%s' cannot be opened in "
			       "place (%s)", name, te->unsafe ? "unsafe name" :
			       te->sparse ? "sparse" : te->truncated ?
			       "truncated" : "not a regular file");
	*off = te->data_off;
	*len = te->size;
	return 0;
}

/* ---- listing a folder ---- */

struct child {
	const char *name;      /* the component under the folder */
	size_t len;
	const struct tar_entry *te;   /* NULL for a folder implied by paths */
};

static int child_cmp(const void *a, const void *b)
{
	const struct child *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	/* an explicit member sorts before the folder its children imply */
	return (x->te == NULL) - (y->te == NULL);
}

/* Whether name is inside folder dir ("" is the top); *rest is what follows. */
static bool under(const char *name, const char *dir, size_t dlen,
		  const char **rest)
{
	if (!dlen) {
		*rest = name;
		return *name != 0;
	}
	if (strncmp(name, dir, dlen) || name[dlen] != '/' || !name[dlen + 1])
		return false;
	*rest = name + dlen + 1;
	return true;
}

static const char *type_note(const struct tar_entry *te)
{
	if (te->unsafe)
		return "unsafe name: never opened";
	if (te->sparse)
		return "sparse file: not followed";
	if (te->truncated)
		return "truncated: data runs past the end of the archive";
	return NULL;
}

static int emit_child(struct image *img, const struct child *c, const char *dir,
		      bool in_place_ok, bool want_notes, const struct lister *l)
{
	char name[TAR_NAME_MAX + 1], path[2 * TAR_NAME_MAX + 2], note[128];
	size_t n = c->len > TAR_NAME_MAX ? TAR_NAME_MAX : c->len;
	struct member m = { 0 };

	memcpy(name, c->name, n);
	name[n] = 0;
	snprintf(path, sizeof path, "%s%s%s", dir, *dir ? "/" : "", name);
	m.name = name;
	m.path = path;
	if (!c->te) {
		m.is_dir = true;
		return l->entry(l->ctx, &m);
	}
	const struct tar_entry *te = c->te;
	m.size = te->real_size;
	m.is_dir = te->type == '5' || te->type == 'D';
	m.mode = te->mode;
	m.mtime = te->mtime;
	m.link = te->link;
	m.note = te->note ? te->note : type_note(te);
	if (in_place_ok && tar_entry_in_place(te)) {
		m.in_place = true;
		m.off = te->data_off;
		if (!m.note && want_notes && te->size) {
			/* what the member is, from the probes over its window */
			struct src *w;
			struct probe_hit hits[4];
			struct vise_err e2 = { 0 };
			if (src_window(img->src, te->data_off, te->size, path, &w,
				       &e2) == 0) {
				int k = probe_src(w, hits, 4, &e2);
				if (k > 0 && strcmp(hits[0].drv->name, "raw")) {
					snprintf(note, sizeof note, "%s", hits[0].drv->description);
					m.note = note;
				}
				src_put(w);
			}
		}
	}
	return l->entry(l->ctx, &m);
}

#define LIST_NOTES_MAX 1000   /* members probed for a note per listing */

int tar_list_archive(struct image *img, const struct tar_archive *ar,
		     bool in_place_ok, const char *path, const struct lister *l,
		     struct vise_err *e)
{
	char *dirbuf = vise_strdup(path ? path : "");
	char *dir = dirbuf;
	while (*dir == '/')
		dir++;
	dir = normalise_name(dir);
	if (!strcmp(dir, "."))
		dir[0] = 0;
	size_t dlen = strlen(dir), n = 0;
	struct child *v = vise_alloc(ar->n ? ar->n : 1, sizeof *v,
				     (uint64_t)TAR_ENTRIES_MAX * sizeof *v,
				     "tar listing", e);
	if (!v) {
		free(dirbuf);
		return -VE_NOMEM;
	}
	bool dir_found = !dlen;
	for (size_t i = 0; i < ar->n; i++) {
		const char *rest;
		if (dlen && !strcmp(ar->v[i].name, dir))
			dir_found = true;
		if (!under(ar->v[i].name, dir, dlen, &rest))
			continue;
		dir_found = true;
		const char *slash = strchr(rest, '/');
		v[n].name = rest;
		v[n].len = slash ? (size_t)(slash - rest) : strlen(rest);
		v[n].te = slash ? NULL : &ar->v[i];
		n++;
	}
	int r = 0;
	if (!dir_found)
		r = err_set(e, VE_NOTFOUND, "no folder '%s' in the archive", dir);
	qsort(v, n, sizeof *v, child_cmp);
	for (size_t i = 0, shown = 0; !r && i < n; i++) {
		/* one line per name: the last explicit member, else the folder */
		size_t j = i;
		while (j + 1 < n && v[j + 1].len == v[i].len &&
		       !memcmp(v[j + 1].name, v[i].name, v[i].len))
			j++;
		const struct child *c = &v[i];
		for (size_t k = i; k <= j; k++)
			if (v[k].te)
				c = &v[k];
		r = emit_child(img, c, dir, in_place_ok, shown++ < LIST_NOTES_MAX, l);
		i = j;
	}
	free(v);
	free(dirbuf);
	return r > 0 ? 0 : r;
}

static int tar_list(struct image *img, const char *path, const struct lister *l,
		    struct vise_err *e)
{
	struct tar_state *st = img->priv;
	return tar_list_archive(img, &st->ar, true, path, l, e);
}

void tar_info_archive(const struct tar_archive *ar, struct sink *s)
{
	uint64_t bytes = 0;
	for (size_t i = 0; i < ar->n; i++)
		bytes += ar->v[i].size;
	sink_u64(s, "members", ar->n);
	sink_u64(s, "member-bytes", bytes);
	sink_bool(s, "end-of-archive", ar->ended);
	if (ar->stopped)
		sink_hex(s, "listing-stopped-at", ar->end_off);
}

static void tar_info(struct image *img, struct sink *s)
{
	struct tar_state *st = img->priv;
	tar_info_archive(&st->ar, s);
}

const struct driver tar_driver = {
	.name = "tar",
	.description = "tar archive (ustar, pax, GNU)",
	.kind = DRV_CONTAINER,
	.disk_format = "raw",
	.container_format = "bare",
	.probe = tar_probe,
	.open = tar_open,
	.close = tar_close,
	.extent = tar_op_extent,
	.walk = tar_op_walk,
	.trace = tar_op_trace,
	.info = tar_info,
	.list = tar_list,
	.member = tar_op_member,
	.sdescs = tar_sdescs,
	.check = tar_check,
};
