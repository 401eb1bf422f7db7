/* `vise inspect`: the rules on one layer: the names it uses to reach
 * other files (inspect_refs.c), the feature bits a reader must understand,
 * the dirty, corrupt and encrypted states, the structures that end past
 * the end of the file, and what else the open found broken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inspect.h"

/* ---- header fields ---- */

struct field_find {
	const char *id;
	const struct sinst *si;
	struct sinst copy;
};

static int field_visit(void *ctx, const struct image *img,
		       const struct sinst *si)
{
	struct field_find *ff = ctx;

	(void)img;
	if (!si->desc || strcmp(si->desc->id, ff->id))
		return 0;
	ff->copy = *si;
	ff->si = &ff->copy;
	return 1;
}

bool inspect_header_field(struct image *img, const char *sdesc_id,
			  const char *field, const struct field **f,
			  uint64_t *value, uint64_t *offset)
{
	struct field_find ff = { sdesc_id, NULL, { 0 } };
	struct walker w = { field_visit, &ff };
	struct vise_err e = { 0 };
	uint8_t buf[16];

	image_walk(img, WALK_META, &w, &e);
	if (!ff.si || !(*f = sdesc_field(ff.si->desc, field)))
		return false;
	if ((*f)->width > sizeof buf || (*f)->off + (*f)->width > ff.si->len ||
	    src_read(img->src, ff.si->off + (*f)->off, buf, (*f)->width, &e) < 0)
		return false;
	/* wider fields (GUIDs) give their first 8 bytes, as field_u64 does */
	*value = field_get_raw(buf, (*f)->width, 0,
			       (*f)->width < 8 ? (*f)->width : 8,
			       ff.si->desc->endian);
	*offset = ff.si->off + (*f)->off;
	return true;
}

/* The bits the field's own flag table names: what vise knows. */
static uint64_t known_bits(const struct field *f)
{
	uint64_t m = 0;

	for (const struct fname *n = f->names; n && n->name; n++)
		if (n->value < 64)
			m |= 1ull << n->value;
	return m;
}

/* ---- feature and state rules ---- */

/* Header fields whose bits a reader must understand to read the disk. */
static const struct {
	const char *sdesc_id, *field;
} must_know[] = {
	{ "qcow2_header", "incompatible_features" },
	{ "qed_header", "features" },
};

static void rule_unknown_bits(struct inspection *in, struct image *img,
			      const char *where)
{
	for (size_t i = 0; i < sizeof must_know / sizeof must_know[0]; i++) {
		const struct field *f;
		uint64_t v, off, unknown;
		char value[40];

		if (!inspect_header_field(img, must_know[i].sdesc_id,
					  must_know[i].field, &f, &v, &off))
			continue;
		unknown = v & ~known_bits(f);
		if (!unknown)
			continue;
		snprintf(value, sizeof value, "0x%llx", (unsigned long long)v);
		inspect_rule(in, "unknown-feature", RULE_FAIL, where, f->name,
			     off, value, "%s has bits 0x%llx that no known "
			     "feature uses: a reader that knew them would read "
			     "the disk differently", f->name,
			     (unsigned long long)unknown);
	}
}

/* A VHDX region or metadata item marked required that the driver does not
 * know: the driver records it as an error on the entry's id. */
static void rule_unknown_required(struct inspection *in, struct image *img,
				  const char *where)
{
	const struct findings *fs = &img->findings;

	for (size_t i = 0; i < fs->n; i++) {
		const struct finding *x = &fs->v[i];
		if (x->sev != SEV_ERROR || !strstr(x->msg, "marked required") ||
		    (strcmp(x->field, "guid") && strcmp(x->field, "item_id")))
			continue;
		inspect_rule(in, "unknown-feature", RULE_FAIL, where, x->field,
			     x->offset, x->msg, "%s is marked required and "
			     "unknown: a reader that does not know it must refuse "
			     "the file", x->structure);
	}
}

/* Where formats keep their dirty and corrupt state. */
static const struct {
	const char *sdesc_id, *field;
} state_fields[] = {
	{ "qcow2_header", "incompatible_features" },
	{ "vhdx_header", "log_guid" },     /* a log to replay: dirty */
};

/* The evidence for a state flag: the header field that holds it (its
 * first 8 bytes for a GUID), else nothing but the flag. */
static void state_evidence(struct image *img, char *field, size_t flen,
			   uint64_t *off, char *value, size_t vlen)
{
	const struct field *f;
	uint64_t v;

	for (size_t i = 0; i < sizeof state_fields / sizeof state_fields[0]; i++)
		if (inspect_header_field(img, state_fields[i].sdesc_id,
					 state_fields[i].field, &f, &v, off)) {
			snprintf(field, flen, "%s", f->name);
			snprintf(value, vlen, "0x%llx", (unsigned long long)v);
			return;
		}
	*off = EVIDENCE_NO_OFFSET;
	snprintf(field, flen, "state");
	snprintf(value, vlen, "set");
}

static void rule_state(struct inspection *in, struct image *img,
		       const char *where)
{
	char field[64], value[64];
	uint64_t off;

	if (img->corrupt) {
		state_evidence(img, field, sizeof field, &off, value, sizeof value);
		inspect_rule(in, "corrupt", RULE_FAIL, where, field, off, value,
			     "the image's corrupt flag is set: a writer found its "
			     "metadata inconsistent");
	}
	if (img->dirty) {
		state_evidence(img, field, sizeof field, &off, value, sizeof value);
		inspect_rule(in, "dirty", RULE_WARN, where, field, off, value,
			     "the image was not closed cleanly: metadata must be "
			     "repaired or a log replayed before it is used");
	}
}

/* qcow2's own encryption: LUKS is sound, the old AES-CBC is broken and
 * qemu refuses to create it; a method nobody knows is not readable. */
static void rule_encryption(struct inspection *in, struct image *img,
			    const char *where)
{
	const struct field *f;
	uint64_t v, off;
	char value[32];

	if (!inspect_header_field(img, "qcow2_header", "crypt_method", &f, &v,
				  &off) || !v)
		return;
	snprintf(value, sizeof value, "%llu", (unsigned long long)v);
	if (v > 2)
		inspect_rule(in, "unknown-encryption", RULE_FAIL, where, f->name,
			     off, value, "encryption method %llu is unknown",
			     (unsigned long long)v);
	else
		inspect_rule(in, "encrypted", v == 1 ? RULE_WARN : RULE_INFO,
			     where, f->name, off, value, "guest data is "
			     "encrypted with %s%s", v == 1 ? "AES-CBC" : "LUKS",
			     v == 1 ? ", a broken scheme qemu no longer creates" :
			     ": the service cannot look inside");
}

/* ---- truncation and damage ---- */

struct past_eof {
	uint64_t size;
	struct sinst first;
	char name[64];
	size_t count;
};

static int eof_visit(void *ctx, const struct image *img, const struct sinst *si)
{
	struct past_eof *pe = ctx;

	(void)img;
	if (si->weak || !si->len || (si->off < pe->size &&
				     si->len <= pe->size - si->off))
		return 0;
	if (!pe->count++) {
		pe->first = *si;
		snprintf(pe->name, sizeof pe->name, "%s", si->name ? si->name : "?");
	}
	return 0;
}

/* The format's structures (or its data) end past the end of the file: a
 * cut upload, or a file that wants a hypervisor to read past its end. */
static void rule_truncated(struct inspection *in, struct image *img,
			   const char *where)
{
	struct past_eof pe = { .size = img->src->size };
	struct walker w = { eof_visit, &pe };
	struct vise_err e = { 0 };
	char value[96];

	image_walk(img, WALK_META | WALK_DATA, &w, &e);
	if (!pe.count)
		return;
	snprintf(value, sizeof value, "ends at 0x%llx, the file at 0x%llx",
		 (unsigned long long)(pe.first.off + pe.first.len),
		 (unsigned long long)pe.size);
	inspect_rule(in, "truncated", RULE_FAIL, where, pe.name, pe.first.off,
		     value, "%zu structure%s or data range%s end past the end "
		     "of the file", pe.count, pe.count == 1 ? "" : "s",
		     pe.count == 1 ? "" : "s");
}

/* Whether a rule in `where` already cites the finding's place. */
static bool finding_cited(const struct inspection *in, const char *where,
			  const struct finding *x)
{
	for (size_t i = 0; i < in->nrules; i++) {
		const struct rule_hit *r = &in->rules[i];
		if (strcmp(r->where, where))
			continue;
		if (x->offset != FINDING_NO_OFFSET && r->offset == x->offset)
			return true;
		/* reference findings carry no offset: the reference rule
		 * is the finding */
		if (x->offset == FINDING_NO_OFFSET &&
		    (strstr(r->name, "backing-file") || strstr(r->name, "data-file")) &&
		    (!strcmp(x->structure, "backing file") ||
		     !strcmp(x->structure, "data file extension")))
			return true;
	}
	return false;
}

/* What the open found wrong and no other rule explains: an error, or a
 * warning (qemu-img's own images give none), is a reason to look before
 * a hypervisor reads the file.  The evidence is the first error, else the
 * first warning. */
static void rule_damaged(struct inspection *in, struct image *img,
			 const char *where)
{
	const struct findings *fs = &img->findings;
	const struct finding *first = NULL;
	size_t n = 0, errors = 0;

	for (size_t i = 0; i < fs->n; i++) {
		const struct finding *x = &fs->v[i];
		if (x->sev == SEV_INFO || finding_cited(in, where, x))
			continue;
		n++;
		if (x->sev == SEV_ERROR && !errors++)
			first = x;
		else if (!first)
			first = x;
	}
	if (!first)
		return;
	n += fs->dropped;
	inspect_rule(in, "damaged", RULE_WARN, where, first->field,
		     first->offset == FINDING_NO_OFFSET ? EVIDENCE_NO_OFFSET :
		     first->offset, first->msg, "the open found %zu problem%s "
		     "(%zu error%s) in the image's structures; the first in %s",
		     n, n == 1 ? "" : "s", errors, errors == 1 ? "" : "s",
		     first->structure);
}

void inspect_layer(struct inspection *in, struct image *img,
		   const struct inspect_opts *o, const char *where)
{
	inspect_references(in, img, o, where);
	rule_unknown_bits(in, img, where);
	rule_unknown_required(in, img, where);
	rule_state(in, img, where);
	rule_encryption(in, img, where);
	rule_truncated(in, img, where);
	rule_damaged(in, img, where);
}
