/* ISO 9660 directories: records, the three naming schemes (Rock Ridge,
 * Joliet, plain ISO names), the SUSP entries Rock Ridge keeps in each
 * record's system use area, and the container operations list() and
 * member() built on them.
 *
 * A directory is an extent of 2048-byte sectors holding variable-length
 * records; a record never crosses a sector, and a zero length byte pads to
 * the sector's end.  Every length read here is checked against the record,
 * the sector and the extent before it is used. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/endian.h"
#include "formats/iso9660.h"

/* ---- SUSP / Rock Ridge ---- */

struct susp {
	struct image *img;
	const struct iso_tree *t;
	struct iso_rec *r;
	uint64_t off;              /* of the area being parsed */
	bool nm_done, sl_done, sl_continue;
	size_t namelen, linklen;
	bool sp, er_rrip, px;      /* what detection looks for */
	bool has_ce;
	uint32_t ce_lba, ce_off, ce_len;
	uint64_t ce_entry_off;
};

static void name_append(char *dst, size_t *len, size_t cap, const uint8_t *p,
			size_t n)
{
	for (size_t i = 0; i < n && *len + 1 < cap; i++) {
		char c = (char)p[i];
		dst[(*len)++] = c == '/' || c == 0 ? '_' : c;
	}
	dst[*len] = 0;
}

static void link_append(struct susp *st, const char *p, size_t n)
{
	for (size_t i = 0; i < n && st->linklen + 1 < ISO_LINK_MAX; i++)
		st->r->link[st->linklen++] = p[i] ? p[i] : '_';
	st->r->link[st->linklen] = 0;
}

/* SL: a symlink target as components ("." "..", root, or text). */
static void susp_sl(struct susp *st, const uint8_t *e, size_t len)
{
	size_t pos = 5;

	if (st->sl_done)
		return;
	st->r->is_link = true;
	while (pos + 2 <= len) {
		uint8_t cf = e[pos], cl = e[pos + 1];

		if (pos + 2 + cl > len) {
			iso_finding(st->img, SEV_WARN, st->off, "Rock Ridge SL", "component_length",
				    "symlink component of %u bytes runs past its SL entry", cl);
			break;
		}
		if (st->linklen && !st->sl_continue &&
		    !(st->linklen == 1 && st->r->link[0] == '/'))
			link_append(st, "/", 1);
		if (cf & 0x02)
			link_append(st, ".", 1);
		else if (cf & 0x04)
			link_append(st, "..", 2);
		else if (cf & 0x08)
			link_append(st, "/", 1);
		else
			link_append(st, (const char *)e + pos + 2, cl);
		st->sl_continue = cf & 0x01;
		pos += 2 + (size_t)cl;
	}
	if (!(e[4] & 0x01))
		st->sl_done = true;
}

/* TF: the modification time is the second stamp when a creation time is
 * recorded first. */
static void susp_tf(struct susp *st, const uint8_t *e, size_t len)
{
	uint8_t fl = e[4];
	size_t w = fl & 0x80 ? 17 : 7, pos = 5;

	if (!(fl & 0x02))
		return;
	if (fl & 0x01)
		pos += w;
	if (pos + w > len || w != 7)
		return;          /* the 17-byte form: keep the record's date */
	int64_t t = iso_dir_date(e + pos);
	if (t)
		st->r->mtime = t;
}

static void susp_ce(struct susp *st, const uint8_t *e, size_t len,
		    uint64_t eoff)
{
	if (len < 28) {
		iso_finding(st->img, SEV_WARN, eoff, "Rock Ridge CE", "length",
			    "CE entry of %zu bytes, expected 28", len);
		return;
	}
	st->has_ce = true;
	st->ce_lba = rd_le32(e + 4);
	st->ce_off = rd_le32(e + 12);
	st->ce_len = rd_le32(e + 20);
	st->ce_entry_off = eoff;
}

static void susp_entry(struct susp *st, const uint8_t *e, size_t len,
		       uint64_t eoff)
{
	struct iso_rec *r = st->r;

	if (!memcmp(e, "SP", 2) && len >= 7 && e[4] == 0xbe && e[5] == 0xef)
		st->sp = true;
	else if (!memcmp(e, "ER", 2) && len >= 8) {
		size_t idl = e[4];
		if (8 + idl <= len && idl >= 4 &&
		    (!memcmp(e + 8, "RRIP", 4) || !memcmp(e + 8, "IEEE", 4)))
			st->er_rrip = true;
	} else if (!memcmp(e, "CE", 2))
		susp_ce(st, e, len, eoff);
	else if (!memcmp(e, "PX", 2) && len >= 12) {
		st->px = true;
		r->mode = rd_le32(e + 4);
	} else if (!memcmp(e, "NM", 2) && len >= 5 && !st->nm_done) {
		if (!(e[4] & 0x06))
			name_append(r->name, &st->namelen, ISO_NAME_MAX, e + 5,
				    len - 5);
		if (!(e[4] & 0x01))
			st->nm_done = true;
	} else if (!memcmp(e, "SL", 2) && len >= 5)
		susp_sl(st, e, len);
	else if (!memcmp(e, "TF", 2) && len >= 5)
		susp_tf(st, e, len);
	else if (!memcmp(e, "CL", 2) && len >= 12) {
		r->has_child_link = true;
		r->child_lba = rd_le32(e + 4);
	} else if (!memcmp(e, "RE", 2))
		r->relocated = true;
}

/* Returns false when an ST entry ended the whole system use area. */
static bool susp_area(struct susp *st, const uint8_t *p, size_t n,
		      uint64_t off)
{
	size_t pos = 0;

	while (pos + 4 <= n) {
		size_t len = p[pos + 2];

		if (p[pos] == 0)
			break;           /* padding to the record's end */
		if (len < 4 || pos + len > n) {
			iso_finding(st->img, SEV_WARN, off + pos + 2, "SUSP entry", "length",
				    "\"%c%c\" entry of length %zu does not fit its %zu-byte system use area",
				    p[pos] >= 0x20 && p[pos] < 0x7f ? p[pos] : '?',
				    p[pos + 1] >= 0x20 && p[pos + 1] < 0x7f ? p[pos + 1] : '?',
				    len, n - pos);
			break;
		}
		if (!memcmp(p + pos, "ST", 2))
			return false;
		susp_entry(st, p + pos, len, off + pos);
		pos += len;
	}
	return true;
}

/* Continuation areas: each CE names the next one; a chain that comes
 * back to an area already read, or grows past a bound, is cut. */
static void susp_continue(struct susp *st)
{
	struct iso9660 *s = iso_of(st->img);
	uint64_t seen[ISO_CE_MAX];
	size_t nseen = 0, total = 0;
	uint8_t area[ISO_SECTOR];

	while (st->has_ce) {
		uint64_t at = (uint64_t)st->ce_lba * s->block + st->ce_off;
		st->has_ce = false;
		for (size_t i = 0; i < nseen; i++) {
			if (seen[i] == at) {
				iso_finding(st->img, SEV_ERROR, st->ce_entry_off, "Rock Ridge CE",
					    "block", "continuation area at 0x%llx was already read: the CE chain loops",
					    (unsigned long long)at);
				return;
			}
		}
		if (nseen == ISO_CE_MAX || total > ISO_SUSP_MAX) {
			iso_finding(st->img, SEV_ERROR, st->ce_entry_off, "Rock Ridge CE", "block",
				    "more than %d continuation areas for one record", ISO_CE_MAX);
			return;
		}
		if (st->ce_off >= s->block || st->ce_len > s->block - st->ce_off ||
		    !iso_extent_ok(s, st->ce_lba, (uint64_t)st->ce_off + st->ce_len)) {
			iso_finding(st->img, SEV_ERROR, st->ce_entry_off + 4, "Rock Ridge CE", "block",
				    "continuation area (block %u, offset %u, %u bytes) is outside its block or the file",
				    st->ce_lba, st->ce_off, st->ce_len);
			return;
		}
		seen[nseen++] = at;
		iso_note_ce(st->img, st->ce_lba);
		total += st->ce_len;
		struct vise_err e = { 0 };
		if (src_read(st->img->src, at, area, st->ce_len, &e) < 0)
			return;
		if (!susp_area(st, area, st->ce_len, at))
			return;
	}
}

/* The system use area of a record: after the identifier (and its pad
 * byte), skipping SP's len_skp bytes. */
static void susp_record(struct susp *st, const uint8_t *rec, uint64_t off)
{
	size_t idl = rec[32], len = rec[0];
	size_t start = 33 + idl + !(idl & 1) + st->t->susp_skip;

	if (start >= len)
		return;
	if (susp_area(st, rec + start, len - start, off + start))
		susp_continue(st);
}

/* ---- names ---- */

/* Plain ISO 9660: "NAME.EXT;1" is shown as "NAME.EXT", "NAME.;1" as
 * "NAME", as xorriso shows them. */
static void plain_name(const uint8_t *id, size_t n, char *out)
{
	size_t len = 0;

	name_append(out, &len, ISO_NAME_MAX, id, n);
	char *semi = strrchr(out, ';');
	if (semi)
		*semi = 0;
	len = strlen(out);
	if (len > 1 && out[len - 1] == '.')
		out[len - 1] = 0;
}

static void put_utf8(char *out, size_t *len, unsigned c)
{
	char b[3];
	size_t n;

	if (c < 0x80) {
		b[0] = c == '/' || c == 0 ? '_' : (char)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xc0 | c >> 6);
		b[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else {
		if (c >= 0xd800 && c <= 0xdfff)
			c = 0xfffd;      /* a lone surrogate half */
		b[0] = (char)(0xe0 | c >> 12);
		b[1] = (char)(0x80 | (c >> 6 & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	}
	if (*len + n + 1 > ISO_NAME_MAX)
		return;
	memcpy(out + *len, b, n);
	*len += n;
	out[*len] = 0;
}

/* Joliet: UCS-2 big-endian, with the same ";1" version suffix. */
static void joliet_name(const uint8_t *id, size_t n, char *out)
{
	size_t len = 0;

	out[0] = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		put_utf8(out, &len, rd_be16(id + i));
	char *semi = strrchr(out, ';');
	if (semi)
		*semi = 0;
}

/* ---- records ---- */

static void decode_record(struct image *img, const struct iso_tree *t,
			  const uint8_t *p, uint64_t off, struct iso_rec *r)
{
	size_t idl = p[32];

	memset(r, 0, offsetof(struct iso_rec, name));
	r->name[0] = 0;
	r->link[0] = 0;
	r->mode = 0;
	r->is_link = r->relocated = r->has_child_link = false;
	r->off = off;
	r->lba = rd_le32(p + 2);
	r->size = rd_le32(p + 10);
	r->nextents = 1;
	r->flags = p[25];
	r->is_dir = p[25] & ISO_FL_DIR;
	r->is_dot = idl == 1 && p[33] == 0;
	r->is_dotdot = idl == 1 && p[33] == 1;
	r->mtime = iso_dir_date(p + 18);
	if (rd_le32(p + 2) != rd_be32(p + 6))
		iso_finding(img, SEV_WARN, off + 2, "directory record", "extent",
			    "both-endian mismatch: little-endian %u, big-endian copy %u",
			    rd_le32(p + 2), rd_be32(p + 6));
	if (rd_le32(p + 10) != rd_be32(p + 14))
		iso_finding(img, SEV_WARN, off + 10, "directory record", "data_length",
			    "both-endian mismatch: little-endian %u, big-endian copy %u",
			    rd_le32(p + 10), rd_be32(p + 14));
	if (t->rr) {
		struct susp st = { .img = img, .t = t, .r = r };
		susp_record(&st, p, off);
	}
	if (r->is_dot || r->is_dotdot)
		snprintf(r->name, sizeof r->name, "%s", r->is_dot ? "." : "..");
	else if (!r->name[0] && t->joliet)
		joliet_name(p + 33, idl, r->name);
	else if (!r->name[0])
		plain_name(p + 33, idl, r->name);
	if (r->has_child_link)
		r->is_dir = true;
	/* data may start after an extended attribute record */
	r->lba += p[1];
}

struct dir_reader {
	struct image *img;
	const struct iso_tree *t;
	iso_rec_fn fn;
	void *ctx;
	unsigned flags;
	struct iso_rec *cur, *pending;  /* pending: a multi-extent file so far */
	bool have_pending;
	int stop;                       /* fn's non-zero answer */
};

/* Hands one record on, merging the extents of a multi-extent file into
 * one entry (unless ISO_RD_EXTENTS asks for every extent). */
static int deliver(struct dir_reader *dr)
{
	struct iso_rec *c = dr->cur;

	if (dr->flags & ISO_RD_EXTENTS) {
		/* every extent as it is, but a chain that breaks off is
		 * still worth saying */
		if (dr->have_pending && strcmp(dr->pending->name, c->name))
			iso_finding(dr->img, SEV_WARN, dr->pending->off,
				    "directory record", "file_flags",
				    "'%s' is flagged multi-extent but no further extent follows",
				    dr->pending->name);
		dr->have_pending = false;
		if (c->flags & ISO_FL_MULTI && !c->is_dir) {
			dr->pending->off = c->off;
			memcpy(dr->pending->name, c->name, sizeof c->name);
			dr->have_pending = true;
		}
		return dr->fn(dr->ctx, c);
	}
	if (dr->have_pending) {
		struct iso_rec *p = dr->pending;
		if (!strcmp(p->name, c->name)) {
			p->size += c->size;
			p->nextents++;
			if (c->flags & ISO_FL_MULTI)
				return 0;
			dr->have_pending = false;
			return dr->fn(dr->ctx, p);
		}
		iso_finding(dr->img, SEV_WARN, p->off, "directory record", "file_flags",
			    "'%s' is flagged multi-extent but no further extent follows",
			    p->name);
		dr->have_pending = false;
		int r = dr->fn(dr->ctx, p);
		if (r)
			return r;
	}
	if (c->flags & ISO_FL_MULTI && !c->is_dir) {
		memcpy(dr->pending, c, sizeof *c);
		dr->have_pending = true;
		return 0;
	}
	return dr->fn(dr->ctx, c);
}

/* One record at buf[pos]; returns the bytes to advance (0: to the end of
 * the sector) or a negative stop code. */
static long one_record(struct dir_reader *dr, const uint8_t *buf, size_t pos,
		       size_t sector_end, uint64_t base)
{
	uint8_t len = buf[pos];
	uint64_t off = base + pos;

	if (len == 0) {
		/* padding to the sector's end must be zeros; anything else
		 * is records a reader that trusts the zero never sees */
		for (size_t i = pos; i < sector_end; i++) {
			if (buf[i]) {
				iso_finding(dr->img, SEV_WARN, off, "directory record",
					    "record_length", "record length 0 at 0x%llx, but the rest of the sector is not zero: records after it are hidden",
					    (unsigned long long)off);
				break;
			}
		}
		return 0;
	}
	if (len < 34) {
		iso_finding(dr->img, SEV_ERROR, off, "directory record", "record_length",
			    "record length %u is less than 34; skipping to the next sector", len);
		return 0;
	}
	if (pos + len > sector_end) {
		iso_finding(dr->img, SEV_ERROR, off, "directory record", "record_length",
			    "record of %u bytes at 0x%llx crosses the sector boundary at 0x%llx",
			    len, (unsigned long long)off,
			    (unsigned long long)(base + sector_end));
		return 0;
	}
	if (33u + buf[pos + 32] > len) {
		iso_finding(dr->img, SEV_ERROR, off + 32, "directory record", "file_id_length",
			    "identifier of %u bytes does not fit a record of %u",
			    buf[pos + 32], len);
		return len;
	}
	decode_record(dr->img, dr->t, buf + pos, off, dr->cur);
	int r = deliver(dr);
	if (r) {
		dr->stop = r;
		return -1;
	}
	return len;
}

static int walk_buffer(struct dir_reader *dr, const uint8_t *buf, size_t size,
		       uint64_t base)
{
	size_t pos = 0;

	while (pos < size) {
		size_t sector_end = (pos / ISO_SECTOR + 1) * ISO_SECTOR;
		if (sector_end > size)
			sector_end = size;
		long adv = one_record(dr, buf, pos, sector_end, base);
		if (adv < 0)
			return dr->stop;
		pos = adv ? pos + (size_t)adv : sector_end;
	}
	if (dr->have_pending) {
		dr->have_pending = false;
		iso_finding(dr->img, SEV_WARN, dr->pending->off, "directory record",
			    "file_flags", "'%s' is flagged multi-extent but its directory ends",
			    dr->pending->name);
		if (!(dr->flags & ISO_RD_EXTENTS))
			return dr->fn(dr->ctx, dr->pending);
	}
	return 0;
}

int iso_read_dir_flags(struct image *img, const struct iso_tree *t,
		       uint32_t lba, uint64_t size, unsigned flags,
		       iso_rec_fn fn, void *ctx, struct vise_err *e)
{
	struct iso9660 *s = iso_of(img);
	uint64_t base = (uint64_t)lba * s->block;

	if (!iso_extent_ok(s, lba, size))
		return err_set(e, VE_RANGE,
			       "directory at block %u (0x%llx, %llu bytes) is past the end of the file (size 0x%llx)",
			       lba, (unsigned long long)base,
			       (unsigned long long)size, (unsigned long long)s->file_size);
	if (size > ISO_DIR_MAX) {
		iso_finding(img, SEV_WARN, base, "directory", "data_length",
			    "directory of %llu bytes; reading the first %u",
			    (unsigned long long)size, ISO_DIR_MAX);
		size = ISO_DIR_MAX;
	}
	uint8_t *buf = vise_alloc(size ? size : 1, 1, ISO_DIR_MAX, "directory extent", e);
	struct dir_reader dr = { img, t, fn, ctx, flags, NULL, NULL, false, 0 };
	dr.cur = malloc(sizeof *dr.cur);
	dr.pending = malloc(sizeof *dr.pending);
	int r = 0;
	if (!buf || !dr.cur || !dr.pending)
		r = buf ? err_set(e, VE_NOMEM, "out of memory") : -e->code;
	else if ((r = src_read(img->src, base, buf, (size_t)size, e)) == 0)
		r = walk_buffer(&dr, buf, (size_t)size, base);
	free(buf);
	free(dr.cur);
	free(dr.pending);
	return r;
}

int iso_read_dir(struct image *img, const struct iso_tree *t, uint32_t lba,
		 uint64_t size, iso_rec_fn fn, void *ctx, struct vise_err *e)
{
	return iso_read_dir_flags(img, t, lba, size, 0, fn, ctx, e);
}

/* ---- Rock Ridge detection ---- */

/* SUSP is in use when the root's "." record starts its system use area
 * with SP; Rock Ridge when an ER names RRIP or a PX entry is there. */
void iso_detect_rr(struct image *img, struct iso_tree *t)
{
	struct iso9660 *s = iso_of(img);
	uint64_t off = (uint64_t)t->root_lba * s->block;
	uint8_t rec[256];
	struct vise_err e = { 0 };

	if (src_read(img->src, off, rec, sizeof rec, &e) < 0 || rec[0] < 34 ||
	    rec[32] != 1 || rec[33] != 0)
		return;
	size_t start = 34 + 0;   /* "." has a 1-byte identifier, no pad */
	if (start + 7 > rec[0] || memcmp(rec + start, "SP", 2) ||
	    rec[start + 4] != 0xbe || rec[start + 5] != 0xef)
		return;
	struct iso_tree probe = *t;
	probe.rr = true;
	probe.susp_skip = 0;
	struct iso_rec *r = malloc(sizeof *r);
	if (!r)
		return;
	memset(r, 0, sizeof *r);
	struct susp st = { .img = img, .t = &probe, .r = r };
	susp_record(&st, rec, off);
	t->susp_skip = rec[start + 6];
	t->rr = st.er_rrip || st.px;
	free(r);
}

/* ---- lookup, list, member ---- */

struct find {
	const char *want;
	bool fold;                 /* plain ISO names match in any case */
	struct iso_rec *out;
	bool found;
};

static int find_cb(void *ctx, const struct iso_rec *r)
{
	struct find *f = ctx;

	if (r->is_dot || r->is_dotdot || r->relocated ||
	    (r->flags & ISO_FL_ASSOCIATED))
		return 0;
	if (f->fold ? strcasecmp(r->name, f->want) : strcmp(r->name, f->want))
		return 0;
	memcpy(f->out, r, sizeof *r);
	f->found = true;
	return 1;
}

/* The size of a relocated directory (Rock Ridge CL): its "." record. */
static void child_link_size(struct image *img, struct iso_rec *r)
{
	struct iso9660 *s = iso_of(img);
	uint8_t rec[34];
	struct vise_err e = { 0 };

	r->lba = r->child_lba;
	r->size = 0;
	if (iso_extent_ok(s, r->child_lba, 34) &&
	    src_read(img->src, (uint64_t)r->child_lba * s->block, rec, 34, &e) == 0 &&
	    rec[0] >= 34)
		r->size = rd_le32(rec + 10);
}

static void root_rec(const struct iso_tree *t, struct iso_rec *out)
{
	memset(out, 0, sizeof *out);
	out->lba = t->root_lba;
	out->size = t->root_size;
	out->is_dir = true;
	out->nextents = 1;
	out->name[0] = 0;
}

/* Finds `path` ("a/b/c", "/a/b", "" for the root) in the naming tree. */
int iso_lookup(struct image *img, const char *path, struct iso_rec *out,
	       struct vise_err *e)
{
	struct iso9660 *s = iso_of(img);
	const struct iso_tree *t = s->names;
	char comp[ISO_NAME_MAX];
	int depth = 0;

	if (!t || !t->valid)
		return err_set(e, VE_FORMAT, "the volume has no readable root directory");
	root_rec(t, out);
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (!n)
			break;
		if (n >= sizeof comp || ++depth > ISO_PATH_COMPONENTS)
			return err_set(e, VE_NOTFOUND, "path '%s' is too long", path);
		memcpy(comp, p, n);
		comp[n] = 0;
		p += n;
		if (!strcmp(comp, "."))
			continue;
		if (!out->is_dir)
			return err_set(e, VE_NOTFOUND, "'%s' in '%s' is not a directory",
				       out->name, path);
		struct find f = { comp, !t->rr && !t->joliet, out, false };
		struct iso_rec dir = *out;
		int r = iso_read_dir(img, t, dir.lba, dir.size, find_cb, &f, e);
		if (r < 0)
			return r;
		if (!f.found)
			return err_set(e, VE_NOTFOUND, "no '%s' in '/%.*s'", comp,
				       (int)(p - n - path), path);
		if (out->has_child_link)
			child_link_size(img, out);
	}
	return 0;
}

struct list_ctx {
	struct image *img;
	const struct lister *l;
	const char *dir;           /* the folder's path, without slashes */
	char path[ISO_NAME_MAX * 2];
};

static int list_cb(void *ctx, const struct iso_rec *r0)
{
	struct list_ctx *lc = ctx;
	struct iso9660 *s = iso_of(lc->img);
	struct iso_rec *r = (struct iso_rec *)r0;

	if (r->is_dot || r->is_dotdot || r->relocated ||
	    (r->flags & ISO_FL_ASSOCIATED))
		return 0;
	if (r->has_child_link)
		child_link_size(lc->img, r);
	snprintf(lc->path, sizeof lc->path, "%s%s%s", lc->dir,
		 *lc->dir ? "/" : "", r->name);
	struct member m = {
		.name = r->name, .path = lc->path,
		.size = r->is_link ? 0 : r->size, .is_dir = r->is_dir,
		.mode = r->mode & 07777, .mtime = r->mtime,
		.link = r->is_link ? r->link : NULL,
	};
	if (!r->is_dir && !r->is_link && r->nextents == 1 &&
	    iso_extent_ok(s, r->lba, r->size)) {
		m.in_place = true;
		m.off = (uint64_t)r->lba * s->block;
	}
	return lc->l->entry(lc->l->ctx, &m);
}

int iso9660_list(struct image *img, const char *path, const struct lister *l,
		 struct vise_err *e)
{
	struct iso_rec *dir = malloc(sizeof *dir);
	struct list_ctx *lc = malloc(sizeof *lc);
	char *clean = vise_strdup(path ? path : "");
	int r;

	if (!dir || !lc) {
		r = err_set(e, VE_NOMEM, "out of memory");
		goto out;
	}
	/* "/a//b/" -> "a/b": member paths have no leading slash */
	size_t n = 0;
	for (const char *p = clean; *p; p++)
		if (*p != '/' || (n && clean[n - 1] != '/'))
			clean[n++] = *p;
	while (n && clean[n - 1] == '/')
		n--;
	clean[n] = 0;
	r = iso_lookup(img, clean, dir, e);
	if (r < 0)
		goto out;
	if (!dir->is_dir) {
		r = err_set(e, VE_USAGE, "'%s' is not a directory", clean);
		goto out;
	}
	*lc = (struct list_ctx){ .img = img, .l = l, .dir = clean };
	r = iso_read_dir(img, iso_of(img)->names, dir->lba, dir->size, list_cb,
			 lc, e);
	if (r > 0)
		r = 0;
out:
	free(dir);
	free(lc);
	free(clean);
	return r;
}

int iso9660_member(struct image *img, const char *name, uint64_t *off,
		   uint64_t *len, struct vise_err *e)
{
	struct iso9660 *s = iso_of(img);
	struct iso_rec *r = malloc(sizeof *r);
	int rc = 0;

	if (!r)
		return err_set(e, VE_NOMEM, "out of memory");
	rc = iso_lookup(img, name, r, e);
	if (rc == 0 && r->is_dir)
		rc = err_set(e, VE_NOTFOUND, "'%s' is a directory", name);
	else if (rc == 0 && r->is_link)
		rc = err_set(e, VE_NOTFOUND, "'%s' is a symbolic link to '%s'",
			     name, r->link);
	else if (rc == 0 && r->nextents > 1)
		rc = err_set(e, VE_UNSUPPORTED,
			     "'%s' is stored in %u extents, not in place",
			     name, r->nextents);
	else if (rc == 0 && !iso_extent_ok(s, r->lba, r->size))
		rc = err_set(e, VE_RANGE, "'%s' at block %u (%llu bytes) runs past the end of the file",
			     name, r->lba, (unsigned long long)r->size);
	if (rc == 0) {
		*off = (uint64_t)r->lba * s->block;
		*len = r->size;
	}
	free(r);
	return rc;
}
