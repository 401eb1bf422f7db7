/* `vise inspect`: every name a layer uses to reach another file (backing
 * file or parent, external data file, VMDK extent) is judged without
 * opening anything: a protocol or json: name, a device, a path that leaves
 * the image's folder (absolute, climbing out with "..", or through a
 * symbolic link), or a file in the folder, which makes the disk not
 * self-contained.  The evidence offset is where the name is stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/inspect.h"

#define NAME_SCAN_MAX (1u << 20)      /* bytes of one structure searched */
#define NAME_SCAN_BUDGET (8u << 20)   /* bytes searched for one name */
#define NAME_LEN_MAX 4096

/* ---- where a name leads ---- */

/* qemu's rule: a ':' before any '/' makes the name a protocol (json:,
 * nbd:, http:, file: ...), whatever follows: it is never a path. */
static bool names_protocol(const char *name)
{
	return name[strcspn(name, ":/")] == ':';
}

/* "C:/x.vhdx": a VHDX or VHD locator's absolute path, its '\' already
 * turned into '/'.  qemu would take "C" for a protocol. */
static bool windows_absolute(const char *name)
{
	return ((name[0] >= 'A' && name[0] <= 'Z') ||
		(name[0] >= 'a' && name[0] <= 'z')) && name[1] == ':' &&
	       (name[2] == '/' || name[2] == '\\');
}

/* Whether path, inside dir by its spelling, resolves outside it through a
 * symbolic link, or is a link that leads nowhere.  realpath() and lstat()
 * only look at names: nothing is opened. */
static bool leaves_by_link(const char *dir, const char *path)
{
	char *rd = realpath(dir, NULL), *rp = realpath(path, NULL);
	struct stat st;
	bool out = false;

	if (rd && rp) {
		size_t n = strlen(rd);
		out = strcmp(rd, "/") && (strncmp(rp, rd, n) ||
					  (rp[n] != '/' && rp[n] != 0));
	} else if (!rp && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		out = true;
	}
	free(rd);
	free(rp);
	return out;
}

static bool special_file(const char *name, const char *path)
{
	struct stat st;

	if (!strncmp(name, "/dev/", 5))
		return true;
	return stat(path, &st) == 0 && (S_ISBLK(st.st_mode) ||
		S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode) ||
		S_ISSOCK(st.st_mode));
}

static char *join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* Sets ref->kind, ->why and ->path for name, read from img. */
static void classify(const struct image *img, const char *name,
		     struct file_ref *ref)
{
	ref->kind = "inside";
	if (windows_absolute(name)) {
		ref->kind = "outside";
		snprintf(ref->why, sizeof ref->why, "is an absolute Windows path");
		return;
	}
	if (names_protocol(name)) {
		ref->kind = "protocol";
		snprintf(ref->why, sizeof ref->why, "names a protocol or JSON target");
		return;
	}
	ref->path = name[0] == '/' ? vise_strdup(name) : join_path(img->dir, name);
	if (ref->path && special_file(name, ref->path)) {
		ref->kind = "device";
		snprintf(ref->why, sizeof ref->why, "is a device or special file");
	} else if (name[0] == '/') {
		ref->kind = "outside";
		snprintf(ref->why, sizeof ref->why, "is an absolute path");
	} else if (path_climbs_out(name)) {
		ref->kind = "outside";
		snprintf(ref->why, sizeof ref->why, "climbs out of the image's folder");
	} else if (ref->path && leaves_by_link(img->dir, ref->path)) {
		ref->kind = "outside";
		snprintf(ref->why, sizeof ref->why,
			 "leads out of the image's folder through a symbolic link");
	}
}

/* ---- where a name is stored ---- */

struct name_search {
	const struct image *img;
	uint8_t pat[4][2 * NAME_LEN_MAX];
	size_t plen[4];
	uint64_t budget, found;
};

/* The name as stored: UTF-8, UTF-16LE (VHDX and VHD locators, with '\'
 * separators too), UTF-16BE (the VHD parent name). */
static void name_patterns(struct name_search *ns, const char *name)
{
	size_t n = strlen(name);

	memcpy(ns->pat[0], name, n);
	ns->plen[0] = n;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)name[i];
		ns->pat[1][2 * i] = c;
		ns->pat[1][2 * i + 1] = 0;
		ns->pat[2][2 * i] = c == '/' ? '\\' : c;
		ns->pat[2][2 * i + 1] = 0;
		ns->pat[3][2 * i] = 0;
		ns->pat[3][2 * i + 1] = c;
	}
	ns->plen[1] = ns->plen[2] = ns->plen[3] = 2 * n;
}

static int search_visit(void *ctx, const struct image *img,
			const struct sinst *si)
{
	struct name_search *ns = ctx;
	struct vise_err e = { 0 };
	uint8_t *buf;
	long long got;

	if (si->owner != OWN_HEADER && si->owner != OWN_HEADER_EXT &&
	    si->owner != OWN_DESCRIPTOR && si->owner != OWN_METADATA)
		return 0;
	if (!si->len || si->len > NAME_SCAN_MAX || si->len > ns->budget)
		return 0;
	ns->budget -= si->len;
	buf = malloc(si->len);
	got = buf ? src_read_upto(img->src, si->off, buf, si->len, &e) : -1;
	for (int k = 0; k < 4 && got > 0; k++) {
		const uint8_t *hit = memmem(buf, (size_t)got, ns->pat[k], ns->plen[k]);
		if (hit) {
			ns->found = si->off + (uint64_t)(hit - buf);
			break;
		}
	}
	free(buf);
	return ns->found != EVIDENCE_NO_OFFSET;
}

/* The file offset of the name in the layer's metadata, for the evidence:
 * every format keeps its backing name somewhere in a header, a locator or
 * a descriptor. */
static uint64_t name_offset(struct image *img, const char *name)
{
	struct name_search *ns = calloc(1, sizeof *ns);
	struct walker w = { search_visit, ns };
	struct vise_err e = { 0 };
	uint64_t off = EVIDENCE_NO_OFFSET;

	if (!ns)
		return off;
	if (strlen(name) > 0 && strlen(name) <= NAME_LEN_MAX) {
		ns->img = img;
		ns->budget = NAME_SCAN_BUDGET;
		ns->found = EVIDENCE_NO_OFFSET;
		name_patterns(ns, name);
		image_walk(img, WALK_META, &w, &e);
		off = ns->found;
	}
	free(ns);
	return off;
}

static bool header_field_offset(struct image *img, const char *id,
				  const char *field, uint64_t *off)
{
	const struct field *f;
	uint64_t v;

	return inspect_header_field(img, id, field, &f, &v, off);
}

/* Where the backing name is stored; a VDI names its parent by UUID only,
 * so its evidence is the UUID field. */
static uint64_t backing_offset(struct image *img)
{
	uint64_t off = name_offset(img, img->backing_name);

	if (off == EVIDENCE_NO_OFFSET &&
	    !header_field_offset(img, "vdi_header1", "uuid_link", &off))
		off = EVIDENCE_NO_OFFSET;
	return off;
}

/* ---- the reference rules ---- */

static struct file_ref *add_ref(struct inspection *in)
{
	if (in->nrefs >= INSPECT_REFS_MAX)
		return NULL;
	if (in->nrefs == in->refcap) {
		size_t cap = in->refcap ? in->refcap * 2 : 8;
		struct file_ref *v = realloc(in->refs, cap * sizeof *v);
		if (!v)
			return NULL;
		in->refs = v;
		in->refcap = cap;
	}
	struct file_ref *r = &in->refs[in->nrefs++];
	memset(r, 0, sizeof *r);
	return r;
}

/* The severity of a reference of this kind.  Protocols and devices are
 * never acceptable; a path outside the folder is, when the user said so;
 * an external data file is the CVE-2024-32498 shape, so even one inside
 * the folder needs --allow-external. */
static enum rule_sev ref_severity(const struct file_ref *r,
				  const struct inspect_opts *o)
{
	if (!strcmp(r->kind, "protocol") || !strcmp(r->kind, "device"))
		return RULE_FAIL;
	if (!strcmp(r->kind, "outside") ||
	    (!strcmp(r->kind, "inside") && !strcmp(r->role, "data-file")))
		return o->allow_external ? RULE_WARN : RULE_FAIL;
	return RULE_WARN;
}

static void ref_rule(struct inspection *in, const struct file_ref *r,
		     const struct inspect_opts *o)
{
	static const struct {
		const char *role, *inside, *outside, *protocol, *device;
	} names[] = {
		{ "backing-file", "backing-file", "backing-file-outside",
		  "backing-file-protocol", "backing-file-device" },
		{ "data-file", "data-file", "data-file-outside",
		  "data-file-protocol", "data-file-device" },
		{ "extent-file", "extent-file", "extent-file-outside",
		  "extent-file-protocol", "extent-file-device" },
	};
	const char *name = r->role;
	char what[32];

	/* "backing-file" -> "backing file" */
	snprintf(what, sizeof what, "%s", r->role);
	for (char *c = what; *c; c++)
		if (*c == '-')
			*c = ' ';

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(names[i].role, r->role))
			continue;
		name = !strcmp(r->kind, "outside") ? names[i].outside :
		       !strcmp(r->kind, "protocol") ? names[i].protocol :
		       !strcmp(r->kind, "device") ? names[i].device :
		       names[i].inside;
	}
	if (!strcmp(r->kind, "inside"))
		inspect_rule(in, name, ref_severity(r, o), r->where, r->role,
			     r->offset, r->name, "%s '%s' is another file in the "
			     "image's folder: the disk is not self-contained%s",
			     what, r->name, r->opened ? "" : " (not opened)");
	else
		inspect_rule(in, name, ref_severity(r, o), r->where, r->role,
			     r->offset, r->name, "%s '%s' %s; %s", what, r->name,
			     r->why, r->opened ? "opened: --allow-external" :
			     "never opened");
}

static void add_reference(struct inspection *in, struct image *img,
			  const char *where, const char *role,
			  const char *name, const char *format,
			  uint64_t offset, bool opened,
			  const struct inspect_opts *o)
{
	struct file_ref *r = add_ref(in), spare = { 0 };
	bool kept = r != NULL;

	/* past the list's limit a reference is still judged, not listed */
	if (!kept)
		r = &spare;
	r->role = role;
	r->format = format ? vise_strdup(format) : NULL;
	r->name = vise_strdup(name);
	r->where = vise_strdup(where);
	r->offset = offset;
	r->opened = opened;
	classify(img, name, r);
	ref_rule(in, r, o);
	if (!kept) {
		free(spare.format);
		free(spare.name);
		free(spare.where);
		free(spare.path);
	}
}

struct ext_ctx {
	struct inspection *in;
	struct image *img;
	const char *where;
	const struct inspect_opts *o;
};

static void external_file(void *ctx, const struct extfile *f)
{
	struct ext_ctx *x = ctx;
	const char *role = !strcmp(f->role, "extent") ? "extent-file" : f->role;

	if (f->name && f->name[0])
		add_reference(x->in, x->img, x->where, role, f->name, NULL,
			      f->offset, f->opened, x->o);
}

void inspect_references(struct inspection *in, struct image *img,
			const struct inspect_opts *o, const char *where)
{
	struct ext_ctx x = { in, img, where, o };
	struct extfile_visitor v = { external_file, &x };

	if (img->backing_name && img->backing_name[0])
		add_reference(in, img, where, "backing-file", img->backing_name,
			      img->backing_fmt, backing_offset(img),
			      img->backing != NULL, o);
	if (img->drv->externals)
		img->drv->externals(img, &v);
}

