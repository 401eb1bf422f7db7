/* `vise check` for tar archives and OVA appliances.
 *
 * What open() found stays as it is (the scanner's findings: a header
 * checksum that does not match, a size past the end of the file, unsafe
 * names, missing end-of-archive blocks).  The scanner stops at the first
 * damaged header, because nothing after it can be trusted for reading;
 * a check goes on where the damaged header still says how much data
 * follows it (as GNU tar's "skipping to next header" does), so every bad
 * header is counted, not only the first.
 *
 * An OVA adds the manifest: each member it names is streamed through
 * SHA-1 or SHA-256 in bounded chunks, and a digest that differs is a
 * corruption naming the member and both digests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/check.h"
#include "formats/ova.h"

#define TAR_RESUME_MAX 4096        /* damaged headers skipped at most */
#define TAR_NAME_PART_MAX 255      /* NAME_MAX: one path component */
#define TAR_TAIL_CHUNK (1u << 16)  /* bytes read looking past the end */

static uint64_t round_block(uint64_t v)
{
	return (v + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* ---- going on past a damaged header ---- */

struct tail_input {
	struct src *src;
	uint64_t base;             /* the rest of the archive starts here */
};

static int tail_read(void *ctx, uint64_t off, void *buf, size_t len,
		     size_t *got, struct vise_err *e)
{
	struct tail_input *t = ctx;
	long long n = src_read_upto(t->src, t->base + off, buf, len, e);

	if (n < 0)
		return (int)n;
	*got = (size_t)n;
	return 0;
}

/* Where the member after a damaged header at off starts, when the header
 * still looks like one (the ustar magic, or a size field of octal digits)
 * and its size stays inside the file; false when nothing can be trusted. */
static bool skip_damaged(struct image *img, uint64_t off, uint64_t *next)
{
	uint8_t blk[TAR_BLOCK];
	struct vise_err ignore = { 0 };
	uint64_t size = 0, fsize = img->src->size;
	int digits = 0;

	if (off >= fsize || fsize - off < TAR_BLOCK ||
	    src_read(img->src, off, blk, sizeof blk, &ignore) < 0 ||
	    tar_header_valid(blk, sizeof blk))
		return false;
	for (int i = 124; i < 136 && blk[i] != ' ' && blk[i] != 0; i++) {
		if (blk[i] < '0' || blk[i] > '7' || size >> 60)
			return false;
		size = size * 8 + (uint64_t)(blk[i] - '0');
		digits++;
	}
	if (!digits && memcmp(blk + 257, "ustar", 5))
		return false;
	if (strchr("123456", blk[156] ? blk[156] : '0'))
		size = 0;
	if (round_block(size) > fsize - off - TAR_BLOCK)
		return false;
	*next = off + TAR_BLOCK + round_block(size);
	return true;
}

/* A finding of a scan that started at base, moved to where it is. */
static void copy_finding(struct findings *to, const struct finding *f,
			 uint64_t base)
{
	uint64_t off = f->offset == FINDING_NO_OFFSET ? f->offset
						      : f->offset + base;
	struct finding *x;

	if (f->cls == PC_NOTE && f->sev == SEV_INFO)
		x = finding_add(to, SEV_INFO, off, f->structure, f->field, "%s",
				f->msg);
	else
		x = problem_add(to, f->cls, off, f->structure, f->field,
				f->found, f->expected, "%s", f->msg);
	if (f->has_guest)
		finding_guest(x, f->guest_off, f->guest_len);
}

/* ---- names ---- */

/* A name no filesystem can take whole: a component longer than NAME_MAX.
 * (Absolute names and "..", and names past TAR_NAME_MAX, are the
 * scanner's findings.) */
static void check_name(struct image *img, const struct tar_entry *te,
		       uint64_t base)
{
	const char *p = te->name;

	while (*p) {
		size_t n = strcspn(p, "/");

		if (n > TAR_NAME_PART_MAX) {
			char found[48];

			snprintf(found, sizeof found, "%zu bytes", n);
			problem_add(&img->findings, PC_NOTE, base + te->hdr_off,
				    "tar header", "name", found, "<= 255 bytes",
				    "member '%.60s...' has a path component "
				    "longer than any filesystem takes: it "
				    "cannot be extracted as named", te->name);
			return;
		}
		p += n;
		p += *p == '/';
	}
}

static void check_names(struct image *img, const struct tar_archive *ar,
			uint64_t base)
{
	for (size_t i = 0; i < ar->n; i++)
		check_name(img, &ar->v[i], base);
}

/* ---- after the end ---- */

/* Bytes after the end-of-archive blocks are padding to tar's record size
 * (10240 bytes) and read as zeros; anything else is hidden from every
 * reader of the archive: a note with the first such offset. */
static int check_tail(struct image *img, struct check_ctx *cc, uint64_t from,
		      struct vise_err *e)
{
	uint64_t fsize = img->src->size;
	uint8_t *buf;
	int rc = 0;

	if (from >= fsize || !(buf = malloc(TAR_TAIL_CHUNK)))
		return 0;
	for (uint64_t at = from; at < fsize && !rc;) {
		size_t n = fsize - at < TAR_TAIL_CHUNK ? (size_t)(fsize - at)
						       : TAR_TAIL_CHUNK;
		size_t k;

		if (check_cancelled(cc)) {
			rc = err_set(e, VE_CANCEL, "check cancelled");
			break;
		}
		if ((rc = src_read(img->src, at, buf, n, e)) < 0)
			break;
		for (k = 0; k < n && !buf[k]; k++)
			;
		if (k < n) {
			char found[48];

			snprintf(found, sizeof found, "data at 0x%llx",
				 (unsigned long long)(at + k));
			problem_add(&img->findings, PC_NOTE, at + k, "archive",
				    "", found, "zeros", "%llu bytes after the "
				    "end-of-archive blocks are not zero: no tar "
				    "reader sees them", (unsigned long long)
				    (fsize - from));
			break;
		}
		at += n;
	}
	free(buf);
	return rc;
}

/* ---- the check ---- */

struct resume {
	uint64_t at;               /* where the last scan stopped */
	bool stopped, ended;
	uint64_t end;              /* after the end-of-archive blocks */
};

/* One scan of the archive's rest from base; its findings and names are
 * moved to where they are in the file. */
static int scan_rest(struct image *img, uint64_t base, struct resume *rs,
		     struct vise_err *e)
{
	struct tail_input t = { img->src, base };
	struct tar_input in = { tail_read, &t, img->src->size - base };
	struct findings f = { 0 };
	struct tar_archive ar;
	int rc = tar_scan(&in, &f, &ar, NULL, NULL, e);

	if (rc == 0) {
		for (size_t i = 0; i < f.n; i++)
			copy_finding(&img->findings, &f.v[i], base);
		check_names(img, &ar, base);
		rs->at = base + ar.end_off;
		rs->stopped = ar.stopped;
		rs->ended = ar.ended;
		rs->end = base + ar.end_off + ar.end_len;
	}
	tar_archive_free(&ar);
	findings_free(&f);
	return rc;
}

static int check_archive(struct image *img, struct check_ctx *cc,
			 struct vise_err *e)
{
	struct tar_state *st = img->priv;
	struct resume rs;
	uint64_t next;
	int rc;

	if (!st)
		return 0;
	rs = (struct resume){ st->ar.end_off, st->ar.stopped, st->ar.ended,
			      st->ar.end_off + st->ar.end_len };
	check_names(img, &st->ar, 0);
	for (int n = 0; rs.stopped && n < TAR_RESUME_MAX &&
			skip_damaged(img, rs.at, &next); n++) {
		if (check_cancelled(cc))
			return err_set(e, VE_CANCEL, "check cancelled");
		check_progress(cc, next, img->src->size);
		if ((rc = scan_rest(img, next, &rs, e)) < 0)
			return rc;
	}
	if (rs.ended)
		return check_tail(img, cc, rs.end, e);
	return 0;
}

/* A tar holding an OVF descriptor that is not its first member is an OVA
 * whose descriptor is out of place (the probe only calls a tar an OVA
 * when the descriptor comes first): a note pointing at `-f ova`. */
static void ovf_hint(struct image *img)
{
	struct tar_state *st = img->priv;

	for (size_t i = 1; i < st->ar.n; i++) {
		const char *name = st->ar.v[i].name;
		size_t n = strlen(name);
		char found[32];

		if (n < 4 || strcasecmp(name + n - 4, ".ovf"))
			continue;
		snprintf(found, sizeof found, "member %zu", i + 1);
		problem_add(&img->findings, PC_NOTE, st->ar.v[i].hdr_off, "OVA",
			    "descriptor", found, "member 1", "'%.100s' is an "
			    "OVF descriptor after other members: an OVA wants "
			    "it first ('check -f ova' checks it as one)", name);
		return;
	}
}

int tar_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	int rc = check_archive(img, cc, e);

	if (rc == 0 && img->priv)
		ovf_hint(img);
	return rc;
}

/* ---- OVA ---- */

static struct ova *ova_state(struct image *img)
{
	struct tar_state *st = img->priv;

	return st ? st->ext : NULL;
}

/* The digest of a member, streamed; <0 on cancel or a read error. */
static int hash_member(struct image *img, const struct tar_entry *te,
		       bool sha256, char hex[2 * SHA256_LEN + 1],
		       struct check_ctx *cc, uint64_t *done, uint64_t total,
		       struct vise_err *e)
{
	struct sha1 c1;
	struct sha256 c2;
	uint8_t d[SHA256_LEN];
	uint8_t *buf = malloc(OVA_HASH_CHUNK);

	if (!buf)
		return err_set(e, VE_NOMEM, "out of memory");
	sha1_init(&c1);
	sha256_init(&c2);
	for (uint64_t at = 0; at < te->size;) {
		size_t n = te->size - at < OVA_HASH_CHUNK ?
			   (size_t)(te->size - at) : OVA_HASH_CHUNK;

		if (check_cancelled(cc) ||
		    src_read(img->src, te->data_off + at, buf, n, e) < 0) {
			free(buf);
			return check_cancelled(cc)
			       ? err_set(e, VE_CANCEL, "check cancelled")
			       : -e->code;
		}
		if (sha256)
			sha256_update(&c2, buf, n);
		else
			sha1_update(&c1, buf, n);
		at += n;
		*done += n;
		check_progress(cc, *done, total);
	}
	free(buf);
	if (sha256)
		sha256_final(&c2, d);
	else
		sha1_final(&c1, d);
	sha_hex(d, sha256 ? SHA256_LEN : SHA1_LEN, hex);
	return 0;
}

static void report_entry(struct image *img, const struct ova *o,
			 const struct mf_entry *me, const struct tar_entry *te,
			 const char *hex)
{
	const char *algo = me->sha256 ? "SHA256" : "SHA1";
	uint64_t at = te ? te->data_off : o->mf->data_off;
	/* found/expected hold a whole SHA-256 in hex */
	if (me->status == MF_MISMATCH) {
		problem_add(&img->findings, PC_CORRUPT, at, "OVA manifest", algo,
			    hex, me->hex, "'%.30s': digest does not match: %s, "
			    "manifest %s", me->file, hex, me->hex);
	} else {
		problem_add(&img->findings, PC_CORRUPT, at, "OVA manifest", algo,
			    me->status == MF_MISSING ? "no such member"
						     : "unreadable member",
			    "a member with this digest", "'%.100s': %s",
			    me->file, me->status == MF_MISSING
			    ? "no such member" : "member cannot be read");
	}
}

/* Bytes the manifest makes us hash, for the progress bar. */
static uint64_t manifest_bytes(const struct tar_archive *ar,
			       const struct ova *o)
{
	uint64_t total = 0;

	for (size_t i = 0; i < o->mf_n; i++) {
		const struct tar_entry *te = tar_find(ar, o->mf_v[i].file);

		if (te && tar_entry_in_place(te) && total + te->size >= total)
			total += te->size;
	}
	return total;
}

int ova_verify_manifest(struct image *img, struct check_ctx *cc,
			struct vise_err *e)
{
	struct tar_state *st = img->priv;
	struct ova *o = ova_state(img);
	uint64_t done = 0, total;
	size_t bad = 0;

	if (!o || o->verified || !o->mf)
		return 0;
	total = manifest_bytes(&st->ar, o);
	for (size_t i = 0; i < o->mf_n; i++) {
		struct mf_entry *me = &o->mf_v[i];
		const struct tar_entry *te = tar_find(&st->ar, me->file);
		char hex[2 * SHA256_LEN + 1] = "";
		int rc;

		if (!te) {
			me->status = MF_MISSING;
		} else if (!tar_entry_in_place(te)) {
			me->status = MF_UNREADABLE;
		} else {
			rc = hash_member(img, te, me->sha256, hex, cc, &done,
					 total, e);
			if (rc == -VE_CANCEL)
				return rc;
			me->status = rc < 0 ? MF_UNREADABLE :
				     strcmp(hex, me->hex) ? MF_MISMATCH : MF_OK;
		}
		/* one finding each for the first few; a count for the rest */
		if (me->status != MF_OK && ++bad <= OVA_MF_FINDINGS_MAX)
			report_entry(img, o, me, te, hex);
	}
	if (bad > OVA_MF_FINDINGS_MAX)
		finding_add(&img->findings, SEV_ERROR, o->mf->data_off,
			    "OVA manifest", "", "%zu more entries do not verify",
			    bad - OVA_MF_FINDINGS_MAX);
	o->verified = true;
	return 0;
}

/* Index of te in the archive's member list. */
static size_t member_index(const struct tar_archive *ar,
			   const struct tar_entry *te)
{
	return (size_t)(te - ar->v);
}

/* DSP0243 orders the package: descriptor, manifest, certificate, then
 * the files.  The descriptor's place is open()'s finding; a manifest
 * elsewhere only costs a streaming reader a second pass: a note.  So is
 * a member the manifest does not cover (OVF 2.0 wants every file). */
static void check_order(struct image *img, const struct ova *o)
{
	struct tar_state *st = img->priv;
	bool *listed;
	size_t at;

	if (!o->mf)
		return;
	at = member_index(&st->ar, o->mf);
	if (at != member_index(&st->ar, o->ovf) + 1) {
		char found[32];

		snprintf(found, sizeof found, "member %zu", at + 1);
		problem_add(&img->findings, PC_NOTE, o->mf->hdr_off, "OVA",
			    "manifest", found, "right after the descriptor",
			    "'%.100s' does not follow the descriptor",
			    o->mf->name);
	}
	if (!st->ar.n || !(listed = calloc(st->ar.n, sizeof *listed)))
		return;
	for (size_t k = 0; k < o->mf_n; k++) {
		const struct tar_entry *te = tar_find(&st->ar, o->mf_v[k].file);

		if (te)
			listed[member_index(&st->ar, te)] = true;
	}
	for (size_t i = 0; i < st->ar.n; i++) {
		const struct tar_entry *te = &st->ar.v[i];

		if (listed[i] || te == o->mf || te == o->cert ||
		    te->type == '5' || !tar_entry_in_place(te))
			continue;
		problem_add(&img->findings, PC_NOTE, te->hdr_off,
			    "OVA manifest", "", "not listed", "a digest",
			    "member '%.100s' has no digest in the manifest",
			    te->name);
	}
	free(listed);
}

int ova_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	struct ova *o = ova_state(img);
	int rc = check_archive(img, cc, e);

	if (rc < 0 || !o || !o->ovf)
		return rc;
	check_order(img, o);
	return ova_verify_manifest(img, cc, e);
}
