/* VHDX: the log.  A writer puts every metadata change (and some data) in
 * the log first; when the file was not closed cleanly (the header's
 * log_guid is non-zero) the newest complete run of entries, the active
 * sequence, must be replayed before the BAT or the metadata mean anything.
 *
 * vise opens images read-only and never writes them, so the replay goes to
 * memory: an overlay source over the file that answers reads with the
 * replayed 4 KiB sectors and zero runs laid over the file's own bytes.
 * Every later read (region table, metadata, BAT, payload) goes through it.
 *
 * The log is a circular buffer; an entry may wrap past its end.  Finding
 * the active sequence: every 4 KiB position that holds a valid entry (right
 * signature, log GUID, lengths, descriptors, data sectors and CRC-32C) is a
 * node; an entry followed (at pos + length, modulo the log length) by one
 * with the next sequence number continues a chain.  The chain ending in the
 * highest sequence number wins; replay runs from the entry its head's
 * `tail` names up to the head. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/endian.h"
#include "formats/vhdx.h"

#define LOG_ST "log"
#define MAX_FILE_OFFSET (1ull << 50)   /* replay targets beyond are bogus */

/* The log is read from the file as the scan goes, never held whole: a
 * hostile header may name a log of 256 MiB, and the replayed sectors
 * already take up to VHDX_LOG_MAX_OPS x 4 KiB. */
struct log_scan {
	struct image *img;
	struct vhdx *v;
	uint64_t len;
	const uint8_t *guid;
	uint64_t crc_budget;
	bool budget_hit;
	/* per 4 KiB position: index+1 into ent[], 0 = no valid entry */
	uint32_t *at;
	struct vhdx_log_entry *ent;
	size_t nent;
};

/* len bytes of the log starting at pos, wrapping at its end; what
 * cannot be read is zeros (its checksum then fails). */
static void log_copy(const struct log_scan *ls, uint64_t pos, void *out,
		     size_t len)
{
	uint8_t *o = out;

	pos %= ls->len;
	while (len) {
		size_t n = ls->len - pos < len ? (size_t)(ls->len - pos) : len;
		struct vise_err e = { 0 };
		if (src_read(ls->v->file, ls->v->log_off + pos, o, n, &e) < 0)
			memset(o, 0, n);
		o += n;
		len -= n;
		pos = (pos + n) % ls->len;
	}
}

static uint32_t log_crc(struct log_scan *ls, uint64_t pos, uint32_t len)
{
	uint8_t buf[16384];
	uint32_t c;

	log_copy(ls, pos, buf, 64);
	memset(buf + 4, 0, 4);
	c = crc32c(0, buf, 64);
	pos += 64;
	len -= 64;
	while (len) {
		uint32_t n = len < sizeof buf ? len : (uint32_t)sizeof buf;
		log_copy(ls, pos, buf, n);
		c = crc32c(c, buf, n);
		len -= n;
		pos += n;
	}
	return c;
}

/* Checks the descriptors of the entry at pos; counts its data sectors. */
static bool descs_ok(const struct log_scan *ls, uint64_t pos, uint64_t seq,
		     uint32_t ndesc, uint64_t hdr_area, uint32_t *ndata)
{
	uint32_t nd = 0;

	for (uint32_t i = 0; i < ndesc; i++) {
		uint8_t d[32];
		log_copy(ls, pos + 64 + 32ull * i, d, sizeof d);
		uint64_t foff = rd_le64(d + 16);
		if (rd_le64(d + 24) != seq || (foff & (VHDX_LOG_SECTOR - 1)) ||
		    foff > MAX_FILE_OFFSET)
			return false;
		if (!memcmp(d, "zero", 4)) {
			uint64_t zl = rd_le64(d + 8);
			if ((zl & (VHDX_LOG_SECTOR - 1)) ||
			    zl > MAX_FILE_OFFSET - foff)
				return false;
			continue;
		}
		if (memcmp(d, "desc", 4))
			return false;
		uint8_t s[VHDX_LOG_SECTOR];
		log_copy(ls, pos + hdr_area + (uint64_t)nd * VHDX_LOG_SECTOR, s,
			 sizeof s);
		if (memcmp(s, "data", 4) || rd_le32(s + 4) != (uint32_t)(seq >> 32) ||
		    rd_le32(s + 4092) != (uint32_t)seq)
			return false;
		nd++;
	}
	*ndata = nd;
	return true;
}

/* Whether a valid entry starts at pos; fills *le. */
static bool entry_ok(struct log_scan *ls, uint64_t pos,
		     struct vhdx_log_entry *le)
{
	uint8_t h[64];

	log_copy(ls, pos, h, sizeof h);
	uint32_t len = rd_le32(h + 8), ndesc = rd_le32(h + 24);
	uint64_t seq = rd_le64(h + 16);
	if (memcmp(h, "loge", 4) || memcmp(h + 32, ls->guid, 16) || !seq ||
	    len < VHDX_LOG_SECTOR || len % VHDX_LOG_SECTOR || len > ls->len)
		return false;
	/* the header area: 64 bytes + 32 per descriptor, to 4 KiB */
	uint64_t hdr_area = (64 + 32ull * ndesc + VHDX_LOG_SECTOR - 1) &
			    ~(VHDX_LOG_SECTOR - 1);
	uint32_t ndata;
	if (hdr_area > len || !descs_ok(ls, pos, seq, ndesc, hdr_area, &ndata) ||
	    hdr_area + (uint64_t)ndata * VHDX_LOG_SECTOR != len)
		return false;
	if (len > ls->crc_budget) {
		ls->budget_hit = true;
		return false;
	}
	ls->crc_budget -= len;
	if (log_crc(ls, pos, len) != rd_le32(h + 4))
		return false;
	*le = (struct vhdx_log_entry){ pos, len, ndesc, ndata, seq };
	return true;
}

static void scan_entries(struct log_scan *ls)
{
	for (uint64_t pos = 0; pos < ls->len; pos += VHDX_LOG_SECTOR) {
		struct vhdx_log_entry le;
		if (!entry_ok(ls, pos, &le))
			continue;
		ls->ent[ls->nent++] = le;
		ls->at[pos / VHDX_LOG_SECTOR] = (uint32_t)ls->nent;
	}
}

static const struct vhdx_log_entry *next_of(const struct log_scan *ls,
					    const struct vhdx_log_entry *le)
{
	uint64_t q = (le->pos + le->len) % ls->len;
	uint32_t k = ls->at[q / VHDX_LOG_SECTOR];

	if (!k || ls->ent[k - 1].seq != le->seq + 1)
		return NULL;
	return &ls->ent[k - 1];
}

/* The chain whose last entry has the highest sequence number: its start
 * and its head.  Only chain starts (entries nobody continues into) are
 * followed, so the search is linear in the number of entries. */
static bool find_chain(const struct log_scan *ls, size_t *start,
		       size_t *head)
{
	bool *has_pred = calloc(ls->nent ? ls->nent : 1, sizeof *has_pred);
	bool found = false;
	uint64_t best = 0;

	if (!has_pred)
		return false;
	for (size_t i = 0; i < ls->nent; i++) {
		const struct vhdx_log_entry *n = next_of(ls, &ls->ent[i]);
		if (n)
			has_pred[n - ls->ent] = true;
	}
	for (size_t i = 0; i < ls->nent; i++) {
		if (has_pred[i])
			continue;
		const struct vhdx_log_entry *e = &ls->ent[i], *n;
		size_t steps = 0;
		while ((n = next_of(ls, e)) && ++steps <= ls->nent)
			e = n;
		if (!found || e->seq > best) {
			found = true;
			best = e->seq;
			*start = i;
			*head = (size_t)(e - ls->ent);
		}
	}
	free(has_pred);
	return found;
}

/* The entries to replay, oldest first: from the head's tail to the head. */
static int collect_sequence(struct log_scan *ls, size_t start, size_t head)
{
	struct vhdx *v = ls->v;
	uint8_t h[64];
	const struct vhdx_log_entry *e = &ls->ent[start];

	log_copy(ls, ls->ent[head].pos, h, sizeof h);
	uint64_t tail = rd_le32(h + 12);
	for (const struct vhdx_log_entry *t = e; t; t = next_of(ls, t)) {
		if (t->pos == tail) {
			e = t;
			break;
		}
		if (t == &ls->ent[head]) {
			finding_add(&ls->img->findings, SEV_WARN,
				    v->log_off + ls->ent[head].pos + 12,
				    "log entry", "tail",
				    "0x%llx is not an entry of the active "
				    "sequence: replaying it all from 0x%llx",
				    (unsigned long long)tail,
				    (unsigned long long)ls->ent[start].pos);
			break;
		}
	}
	v->log = vise_alloc(ls->nent, sizeof *v->log, ALLOC_LIMIT_DEFAULT,
			    "log entries", NULL);
	if (!v->log)
		return -1;
	for (const struct vhdx_log_entry *t = e; t && v->nlog < ls->nent;
	     t = next_of(ls, t)) {
		v->log[v->nlog++] = *t;
		if (t == &ls->ent[head])
			break;
	}
	return 0;
}

static int add_op(struct vhdx *v, uint64_t off, uint64_t len,
		  const uint8_t *data)
{
	struct vhdx_op *op = &v->ops[v->nops];

	op->off = off;
	op->len = len;
	op->data = NULL;
	if (data) {
		op->data = malloc(VHDX_LOG_SECTOR);
		if (!op->data)
			return -1;
		memcpy(op->data, data, VHDX_LOG_SECTOR);
	}
	v->nops++;
	if (off + len > v->replay_end)
		v->replay_end = off + len;
	return 0;
}

/* Turns the descriptors of one entry into overlay operations.  A data
 * sector's 4 KiB are the descriptor's 8 leading bytes, the data sector's
 * 4084 middle bytes and the descriptor's 4 trailing bytes. */
static int replay_entry(struct log_scan *ls, const struct vhdx_log_entry *le)
{
	struct vhdx *v = ls->v;
	uint64_t hdr_area = (64 + 32ull * le->ndesc + VHDX_LOG_SECTOR - 1) &
			    ~(VHDX_LOG_SECTOR - 1);
	uint32_t nd = 0;

	for (uint32_t i = 0; i < le->ndesc; i++) {
		uint8_t d[32], s[VHDX_LOG_SECTOR];
		log_copy(ls, le->pos + 64 + 32ull * i, d, sizeof d);
		if (v->nops >= VHDX_LOG_MAX_OPS)
			return -1;
		if (!memcmp(d, "zero", 4)) {
			if (add_op(v, rd_le64(d + 16), rd_le64(d + 8), NULL) < 0)
				return -1;
			continue;
		}
		log_copy(ls, le->pos + hdr_area + (uint64_t)nd++ * VHDX_LOG_SECTOR,
			 s, sizeof s);
		memcpy(s, d + 8, 8);            /* leading bytes */
		memcpy(s + 4092, d + 4, 4);     /* trailing bytes */
		if (add_op(v, rd_le64(d + 16), VHDX_LOG_SECTOR, s) < 0)
			return -1;
	}
	return 0;
}

/* ---- the overlay source ---- */

struct overlay {
	struct src *under;
	const struct vhdx *v;
};

static int overlay_pread(struct src *s, void *buf, size_t len, uint64_t off,
			 size_t *got, struct vise_err *e)
{
	struct overlay *o = s->priv;
	uint8_t *b = buf;

	if (off >= s->size) {
		*got = 0;
		return 0;
	}
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	long long n = src_read_upto(o->under, off, b, len, e);
	if (n < 0)
		return (int)n;
	memset(b + n, 0, len - (size_t)n);
	/* later operations win: apply in replay order */
	for (size_t i = 0; i < o->v->nops; i++) {
		const struct vhdx_op *op = &o->v->ops[i];
		if (op->off >= off + len || op->off + op->len <= off)
			continue;
		uint64_t from = op->off > off ? op->off : off;
		uint64_t to = op->off + op->len < off + len ? op->off + op->len
							    : off + len;
		if (op->data)
			memcpy(b + (from - off), op->data + (from - op->off),
			       (size_t)(to - from));
		else
			memset(b + (from - off), 0, (size_t)(to - from));
	}
	*got = len;
	return 0;
}

static int overlay_pwrite(struct src *s, const void *buf, size_t len,
			  uint64_t off, struct vise_err *e)
{
	(void)buf; (void)len; (void)off;
	return err_set(e, VE_REFUSED, "'%s' is a read-only log replay overlay",
		       s->name);
}

static int overlay_status(struct src *s, uint64_t off, bool *data,
			  uint64_t *len, struct vise_err *e)
{
	(void)e;
	*data = true;
	*len = s->size - off;
	return 0;
}

static void overlay_close(struct src *s)
{
	struct overlay *o = s->priv;

	src_put(o->under);
	free(o);
}

static const struct src_ops overlay_ops = {
	overlay_pread, overlay_pwrite, overlay_status, overlay_close,
};

static int install_overlay(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	struct overlay *o = calloc(1, sizeof *o);
	struct src *s = calloc(1, sizeof *s);
	char name[512];

	snprintf(name, sizeof name, "%s (log replayed)", img->src->name);
	if (s)
		s->name = vise_strdup(name);
	if (!o || !s || !s->name) {
		free(o);
		if (s)
			free(s->name);
		free(s);
		return -1;
	}
	o->under = src_get(img->src);
	o->v = v;
	s->ops = &overlay_ops;
	s->size = v->replay_end > img->src->size ? v->replay_end
						 : img->src->size;
	s->refs = 1;
	s->priv = o;
	src_put(img->src);
	img->src = s;
	return 0;
}

/* ---- putting it together ---- */

static void log_finding(struct image *img, enum severity sev, const char *field,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void log_finding(struct image *img, enum severity sev, const char *field,
			const char *fmt, ...)
{
	struct vhdx *v = vhdx_of(img);
	const struct field *f = sdesc_field(&vhdx_header_desc, field);
	uint64_t off = (v->cur ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF) +
		       (f ? f->off : 0);
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, off, v->cur ? "header 2" : "header 1",
		    field, "%s", msg);
}

static bool check_log_fields(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	enum severity sev = v->log_dirty ? SEV_ERROR : SEV_WARN;

	if (v->log_len % MiB) {
		log_finding(img, sev, "log_length", "0x%llx is not a multiple "
			    "of 1 MiB", (unsigned long long)v->log_len);
		return false;
	}
	if (v->log_off % MiB || v->log_off < MiB) {
		log_finding(img, sev, "log_offset", "0x%llx is not 1 MiB "
			    "aligned past the first 1 MiB",
			    (unsigned long long)v->log_off);
		return false;
	}
	if (v->log_off > v->file_size || v->log_len > v->file_size - v->log_off) {
		log_finding(img, sev, v->log_off > v->file_size ? "log_offset" :
			    "log_length", "log 0x%llx+0x%llx passes the end of "
			    "the file (0x%llx)", (unsigned long long)v->log_off,
			    (unsigned long long)v->log_len,
			    (unsigned long long)v->file_size);
		return false;
	}
	return v->log_len > 0;
}

static void report_replay(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	char list[160] = "";
	size_t n = 0;

	for (size_t i = 0; i < v->nops && n + 24 < sizeof list; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%s0x%llx+0x%llx",
				      i ? ", " : "",
				      (unsigned long long)v->ops[i].off,
				      (unsigned long long)v->ops[i].len);
	finding_add(&img->findings, SEV_WARN, v->log_off, LOG_ST, "log_guid",
		    "dirty log replayed in memory, file untouched: %zu "
		    "entr%s (sequence %llu..%llu), %zu change%s: %s%s",
		    v->nlog, v->nlog == 1 ? "y" : "ies",
		    (unsigned long long)v->log[0].seq,
		    (unsigned long long)v->log[v->nlog - 1].seq, v->nops,
		    v->nops == 1 ? "" : "s", list,
		    n + 24 >= sizeof list ? ", ..." : "");
}

static void replay(struct image *img, struct log_scan *ls)
{
	struct vhdx *v = vhdx_of(img);
	size_t start = 0, head = 0, ndesc = 0;

	if (!find_chain(ls, &start, &head)) {
		log_finding(img, SEV_ERROR, "log_guid", "log needs replay but "
			    "holds no valid entry%s: read as it is, may be stale",
			    ls->budget_hit ? " (checksum budget exhausted)" : "");
		return;
	}
	if (collect_sequence(ls, start, head) < 0)
		return;
	for (size_t i = 0; i < v->nlog; i++)
		ndesc += v->log[i].ndesc;
	if (ndesc > VHDX_LOG_MAX_OPS) {
		log_finding(img, SEV_ERROR, "log_guid", "the active log "
			    "sequence has %zu descriptors, more than vise "
			    "replays (%u): not replayed", ndesc,
			    VHDX_LOG_MAX_OPS);
		return;
	}
	v->ops = calloc(ndesc ? ndesc : 1, sizeof *v->ops);
	if (!v->ops)
		return;
	for (size_t i = 0; i < v->nlog; i++)
		if (replay_entry(ls, &v->log[i]) < 0)
			return;
	if (install_overlay(img) < 0)
		return;
	v->replayed = true;
	report_replay(img);
}

void vhdx_log_open(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	const struct vhdx_header *h = &v->hdr[v->cur];
	const uint8_t *guid = v->hdr_raw[v->cur] + 48;

	v->log_off = h->log_offset;
	v->log_len = h->log_length;
	v->log_dirty = !vhdx_guid_is_zero(guid);
	img->dirty = v->log_dirty;
	if (h->log_version != 0)
		log_finding(img, SEV_WARN, "log_version", "%llu is not 0",
			    (unsigned long long)h->log_version);
	v->log_usable = check_log_fields(img);
	if (!v->log_dirty)
		return;
	if (!v->log_usable) {
		log_finding(img, SEV_ERROR, "log_guid", "log needs replay but "
			    "cannot be read: read as it is, may be stale");
		return;
	}
	if (v->log_len > VHDX_LOG_MAX) {
		log_finding(img, SEV_ERROR, "log_length", "%llu bytes is more "
			    "than vise replays (%llu): read as it is",
			    (unsigned long long)v->log_len,
			    (unsigned long long)VHDX_LOG_MAX);
		return;
	}
	struct log_scan ls = { .img = img, .v = v, .len = v->log_len,
			       .guid = guid, .crc_budget = 8 * v->log_len + MiB };
	ls.at = calloc(v->log_len / VHDX_LOG_SECTOR, sizeof *ls.at);
	ls.ent = calloc(v->log_len / VHDX_LOG_SECTOR, sizeof *ls.ent);
	if (ls.at && ls.ent) {
		scan_entries(&ls);
		replay(img, &ls);
	} else {
		log_finding(img, SEV_ERROR, "log_offset", "log cannot be "
			    "scanned: out of memory");
	}
	free(ls.at);
	free(ls.ent);
}

void vhdx_log_free(struct vhdx *v)
{
	for (size_t i = 0; i < v->nops; i++)
		free(v->ops[i].data);
	free(v->ops);
	free(v->log);
	v->ops = NULL;
	v->log = NULL;
	v->nops = v->nlog = 0;
}
