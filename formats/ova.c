/* OVA: a tar whose first member is an OVF descriptor (.ovf), followed by
 * an optional manifest (.mf: a SHA-1 or SHA-256 digest per file), an
 * optional certificate (.cert), and the files the descriptor names (disk
 * images, usually streamOptimized VMDKs).  The tar reading is formats/tar.c;
 * this file reads the descriptor, checks it against the members (which are
 * opened in place, as windows of the archive), and verifies the manifest by
 * streaming each member through the hash.
 *
 * OpenStack's Image service names an OVA container_format "ova"; its
 * disk_format is that of the first disk (e.g. "vmdk"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/sha.h"
#include "core/sink.h"
#include "formats/ova.h"
#include "formats/writers.h"
#include "formats/xml.h"

static struct ova *ova_of(struct image *img)
{
	return ((struct tar_state *)img->priv)->ext;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcasecmp(s + n - m, suffix);
}

static int ova_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t size)
{
	char name[TAR_BLOCK];

	(void)tail; (void)tlen; (void)size;
	if (!tar_header_plausible(head, hlen))
		return 0;
	tar_header_name(head, name, sizeof name);
	if (!ends_with(name, ".ovf"))
		return 0;
	return tar_header_valid(head, hlen) ? 95 : 50;
}

/* A member's bytes, whole, when they are at most max. */
static char *read_member(struct image *img, const struct tar_entry *te,
			 uint64_t max, const char *what)
{
	struct vise_err e = { 0 };

	if (!tar_entry_in_place(te) || te->size > max) {
		finding_add(&img->findings, SEV_ERROR, te->hdr_off, what, "size",
			    "'%.100s' (%llu bytes) is not read: %s", te->name,
			    (unsigned long long)te->size,
			    te->size > max ? "too large" : "not a readable member");
		return NULL;
	}
	char *buf = vise_alloc(te->size + 1, 1, max + 1, what, &e);
	if (!buf)
		return NULL;
	if (src_read(img->src, te->data_off, buf, te->size, &e) < 0) {
		char msg[300];
		finding_add(&img->findings, SEV_ERROR, te->data_off, what, "",
			    "%s", err_str(&e, msg, sizeof msg));
		free(buf);
		return NULL;
	}
	buf[te->size] = 0;
	return buf;
}

/* ---- the manifest ---- */

static bool parse_mf_line(char *line, struct mf_entry *me)
{
	char *open = strchr(line, '('), *close = strrchr(line, ')');
	if (!open || !close || close < open)
		return false;
	*open = 0;
	char *algo = line;
	while (*algo == ' ')
		algo++;
	size_t an = strcspn(algo, " ");
	algo[an] = 0;
	if (!strcasecmp(algo, "SHA1"))
		me->sha256 = false;
	else if (!strcasecmp(algo, "SHA256"))
		me->sha256 = true;
	else
		return false;
	*close = 0;
	char *eq = strchr(close + 1, '=');
	if (!eq)
		return false;
	char *hex = eq + 1;
	while (*hex == ' ')
		hex++;
	size_t hn = strcspn(hex, " \r\t");
	size_t want = me->sha256 ? 2 * SHA256_LEN : 2 * SHA1_LEN;
	if (hn != want || strspn(hex, "0123456789abcdefABCDEF") < hn)
		return false;
	for (size_t i = 0; i < hn; i++)
		me->hex[i] = (char)((hex[i] >= 'A' && hex[i] <= 'F') ?
				    hex[i] - 'A' + 'a' : hex[i]);
	me->hex[hn] = 0;
	me->file = vise_strdup(open + 1);
	return true;
}

static void read_manifest(struct image *img, struct ova *o)
{
	char *buf = read_member(img, o->mf, OVA_MF_MAX, "OVA manifest");
	size_t lineno = 0;

	if (!buf)
		return;
	o->mf_v = calloc(OVA_MF_ENTRIES_MAX, sizeof *o->mf_v);
	for (char *line = buf, *next; o->mf_v && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if (!line[strspn(line, " \r\t")])
			continue;
		if (o->mf_n >= OVA_MF_ENTRIES_MAX) {
			finding_add(&img->findings, SEV_WARN, o->mf->data_off,
				    "OVA manifest", "", "more than %d entries: line "
				    "%zu and later are ignored", OVA_MF_ENTRIES_MAX,
				    lineno);
			break;
		}
		if (!parse_mf_line(line, &o->mf_v[o->mf_n])) {
			finding_add(&img->findings, SEV_WARN, o->mf->data_off,
				    "OVA manifest", "", "line %zu is not "
				    "'SHA1(file)= hex' or 'SHA256(file)= hex': '%.60s'",
				    lineno, line);
			continue;
		}
		o->mf_n++;
	}
	free(buf);
}

/* ---- the disks, opened in place ---- */

/* The VMDK create type (or any driver's) from its info, written as JSON. */
static void member_subformat(struct image *inner, char *out, size_t outlen)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp;
	struct sink s;

	out[0] = 0;
	if (!inner->drv->info || !(fp = open_memstream(&text, &len)))
		return;
	sink_init(&s, fp, true);
	sink_obj_begin(&s, NULL);
	inner->drv->info(inner, &s);
	sink_obj_end(&s);
	sink_end(&s);
	fclose(fp);
	const char *k = text ? strstr(text, "\"create-type\": \"") : NULL;
	if (k) {
		k += 16;
		size_t n = strcspn(k, "\"");
		snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), k);
	}
	free(text);
}

static void open_disk_member(struct image *img, const struct tar_entry *te,
			     struct ovf_disk *d)
{
	struct open_opts opts = { .no_backing = true };
	struct vise_err e = { 0 };
	struct image *inner;
	struct src *w;
	char path[600];

	snprintf(path, sizeof path, "%s/%s", img->path, te->name);
	if (src_window(img->src, te->data_off, te->size, path, &w, &e) < 0)
		return;
	if (image_open_src(w, path, img->dir, &opts, 0, &inner, &e) == 0) {
		d->member_opened = true;
		d->member_format = inner->drv->name;
		d->member_disk_format = inner->drv->disk_format;
		d->member_size = inner->virtual_size;
		member_subformat(inner, d->member_subformat,
				 sizeof d->member_subformat);
		image_close(inner);
	}
	src_put(w);
}

/* What a DiskSection format URI says the file is: a driver name and, for
 * VMDK, the create type its fragment names. */
static bool uri_format(const char *uri, const char **fmt, const char **sub)
{
	*sub = NULL;
	if (strstr(uri, "vmdk")) {
		*fmt = "vmdk";
		const char *frag = strchr(uri, '#');
		if (frag && !strcmp(frag, "#streamOptimized"))
			*sub = "streamOptimized";
		else if (frag && !strcmp(frag, "#sparse"))
			*sub = "monolithicSparse";
		else if (frag && !strcmp(frag, "#compressed"))
			*sub = "streamOptimized";
		return true;
	}
	if (strstr(uri, "qcow")) {
		*fmt = "qcow2";
		return true;
	}
	if (strstr(uri, "vhdx")) {
		*fmt = "vhdx";
		return true;
	}
	if (strstr(uri, "vhd")) {
		*fmt = "vpc";
		return true;
	}
	if (strstr(uri, "vdi")) {
		*fmt = "vdi";
		return true;
	}
	return false;
}

static void check_disk(struct image *img, struct ova *o, struct ovf_disk *d)
{
	struct tar_state *st = img->priv;
	const struct ovf_file *fl = NULL;
	uint64_t at = o->ovf->data_off;

	for (size_t i = 0; d->file_ref && i < o->app.nfiles; i++)
		if (o->app.files[i].id && !strcmp(o->app.files[i].id, d->file_ref))
			fl = &o->app.files[i];
	if (!fl) {
		if (d->file_ref)
			finding_add(&img->findings, SEV_ERROR, at, "OVF Disk", "fileRef",
				    "disk '%.60s' names file '%.60s', which References "
				    "does not list", d->id ? d->id : "?", d->file_ref);
		return;
	}
	const struct tar_entry *te = fl->href ? tar_find(&st->ar, fl->href) : NULL;
	if (!te || !tar_entry_in_place(te))
		return;              /* reported with the files */
	open_disk_member(img, te, d);
	if (!d->member_opened)
		return;
	if (d->capacity_ok && d->capacity != d->member_size) {
		char found[24], want[24];

		snprintf(found, sizeof found, "%llu",
			 (unsigned long long)d->member_size);
		snprintf(want, sizeof want, "%llu",
			 (unsigned long long)d->capacity);
		problem_add(&img->findings, PC_CORRUPT, at, "OVF Disk",
			    "capacity", found, want, "disk '%.60s' declares "
			    "%llu bytes, its file '%.100s' holds a %s disk of "
			    "%llu bytes", d->id ? d->id : "?",
			    (unsigned long long)d->capacity, te->name,
			    d->member_format, (unsigned long long)d->member_size);
	}
	const char *fmt, *sub;
	if (!d->format)
		return;
	if (!uri_format(d->format, &fmt, &sub))
		finding_add(&img->findings, SEV_INFO, at, "OVF Disk", "format",
			    "format URI '%.100s' is not one vise knows", d->format);
	else if (strcmp(fmt, d->member_format) ||
		 (sub && d->member_subformat[0] && strcmp(sub, d->member_subformat)))
		finding_add(&img->findings, SEV_ERROR, at, "OVF Disk", "format",
			    "URI '%.100s' says %s%s%s, the file '%.80s' is %s%s%s",
			    d->format, fmt, sub ? " " : "", sub ? sub : "", te->name,
			    d->member_format, d->member_subformat[0] ? " " : "",
			    d->member_subformat);
}

static void check_files(struct image *img, struct ova *o)
{
	struct tar_state *st = img->priv;

	for (size_t i = 0; i < o->app.nfiles; i++) {
		const struct ovf_file *fl = &o->app.files[i];
		if (!fl->href)
			continue;
		const struct tar_entry *te = tar_find(&st->ar, fl->href);
		if (!te) {
			problem_add(&img->findings, PC_CORRUPT, o->ovf->data_off,
				    "OVF File", "href", "no such member",
				    "a member", "'%.100s' is not in the archive",
				    fl->href);
		} else if (fl->has_size && fl->size != te->size) {
			char found[24], want[24];

			snprintf(found, sizeof found, "%llu",
				 (unsigned long long)te->size);
			snprintf(want, sizeof want, "%llu",
				 (unsigned long long)fl->size);
			problem_add(&img->findings, PC_CORRUPT, o->ovf->data_off,
				    "OVF File", "size", found, want, "'%.100s' "
				    "declares %llu bytes, the member has %llu",
				    fl->href, (unsigned long long)fl->size,
				    (unsigned long long)te->size);
		} else if (te->unsafe) {
			finding_add(&img->findings, SEV_ERROR, o->ovf->data_off,
				    "OVF File", "href", "'%.100s' climbs out of the "
				    "appliance: never opened", fl->href);
		}
	}
	for (size_t i = 0; i < o->app.ndisks; i++)
		check_disk(img, o, &o->app.disks[i]);
}

static void find_parts(struct image *img, struct ova *o)
{
	struct tar_state *st = img->priv;

	for (size_t i = 0; i < st->ar.n; i++) {
		const struct tar_entry *te = &st->ar.v[i];
		if (!o->ovf && ends_with(te->name, ".ovf")) {
			o->ovf = te;
			/* DSP0243: the descriptor shall be the first file,
			 * so that a reader streaming the tar meets it first */
			if (i) {
				char found[32];

				snprintf(found, sizeof found, "member %zu", i + 1);
				problem_add(&img->findings, PC_CORRUPT, te->hdr_off,
					    "OVA", "descriptor", found, "member 1",
					    "'%.100s' is member %zu; the OVF "
					    "standard wants it first", te->name,
					    i + 1);
			}
		} else if (!o->mf && ends_with(te->name, ".mf")) {
			o->mf = te;
		} else if (!o->cert && ends_with(te->name, ".cert")) {
			o->cert = te;
		}
	}
}

static int ova_open(struct image *img, struct vise_err *e)
{
	int r = tar_open_archive(img, e);
	if (r < 0)
		return r;
	struct ova *o = calloc(1, sizeof *o);
	if (!o)
		return err_set(e, VE_NOMEM, "out of memory");
	((struct tar_state *)img->priv)->ext = o;
	find_parts(img, o);
	if (!o->ovf) {
		finding_add(&img->findings, SEV_ERROR, 0, "OVA", "descriptor",
			    "no .ovf member: this is a plain tar");
		return 0;
	}
	char *xml = read_member(img, o->ovf, XML_SIZE_MAX, "OVF descriptor");
	if (xml) {
		ovf_parse(xml, o->ovf->size, o->ovf->data_off, &img->findings,
			  &o->app);
		free(xml);
		check_files(img, o);
	}
	if (o->mf)
		read_manifest(img, o);
	return 0;
}

static void ova_close(struct image *img)
{
	struct tar_state *st = img->priv;
	if (!st)
		return;
	struct ova *o = st->ext;
	if (o) {
		ovf_free(&o->app);
		for (size_t i = 0; i < o->mf_n; i++)
			free(o->mf_v[i].file);
		free(o->mf_v);
		free(o);
	}
	tar_state_free(st);
	img->priv = NULL;
}

static int ova_list(struct image *img, const char *path, const struct lister *l,
		    struct vise_err *e)
{
	struct tar_state *st = img->priv;
	return tar_list_archive(img, &st->ar, true, path, l, e);
}

static void ova_openstack(struct image *img, const char **df, const char **cf)
{
	struct ova *o = ova_of(img);
	(void)cf;
	if (o && o->app.ndisks && o->app.disks[0].member_disk_format)
		*df = o->app.disks[0].member_disk_format;
}

/* ---- info ---- */

static void info_str(struct sink *s, const char *key, const char *v)
{
	if (v)
		sink_str(s, key, v);
}

static void info_disks(struct sink *s, struct image *img, struct ova *o)
{
	sink_arr_begin(s, "disks");
	for (size_t i = 0; i < o->app.ndisks; i++) {
		const struct ovf_disk *d = &o->app.disks[i];
		const char *href = NULL;
		for (size_t k = 0; d->file_ref && k < o->app.nfiles; k++)
			if (o->app.files[k].id &&
			    !strcmp(o->app.files[k].id, d->file_ref))
				href = o->app.files[k].href;
		sink_obj_begin(s, NULL);
		info_str(s, "id", d->id);
		info_str(s, "file", href);
		if (d->capacity_ok)
			sink_u64(s, "capacity", d->capacity);
		info_str(s, "capacity-units", d->units);
		if (d->has_populated)
			sink_u64(s, "populated-size", d->populated);
		info_str(s, "format-uri", d->format);
		if (d->member_opened) {
			sink_str(s, "member-format", d->member_format);
			if (d->member_subformat[0])
				sink_str(s, "member-subformat", d->member_subformat);
			sink_u64(s, "member-virtual-size", d->member_size);
		}
		sink_obj_end(s);
	}
	sink_arr_end(s);
	(void)img;
}

static void info_system(struct sink *s, struct ova *o)
{
	const struct ovf_appliance *a = &o->app;

	info_str(s, "name", a->name);
	info_str(s, "ovf-version", a->version);
	info_str(s, "os-id", a->os_id);
	info_str(s, "os-type", a->os_type);
	info_str(s, "os-description", a->os_desc);
	info_str(s, "system-type", a->system_type);
	info_str(s, "product", a->product);
	info_str(s, "vendor", a->vendor);
	info_str(s, "product-version", a->product_version);
	if (a->has_cpus)
		sink_u64(s, "cpus", a->cpus);
	if (a->has_memory)
		sink_u64(s, "memory", a->memory);
	sink_arr_begin(s, "nics");
	for (size_t i = 0; i < a->nnics; i++) {
		sink_obj_begin(s, NULL);
		info_str(s, "name", a->nics[i].name);
		info_str(s, "type", a->nics[i].subtype);
		info_str(s, "connection", a->nics[i].connection);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

static const char *mf_status_name(enum mf_status st)
{
	switch (st) {
	case MF_OK: return "ok";
	case MF_MISMATCH: return "mismatch";
	case MF_MISSING: return "missing";
	case MF_UNREADABLE: return "unreadable";
	default: return "unchecked";
	}
}

static void info_manifest(struct sink *s, struct image *img, struct ova *o)
{
	size_t bad = 0;

	struct vise_err e = { 0 };

	ova_verify_manifest(img, NULL, &e);
	for (size_t i = 0; i < o->mf_n; i++)
		bad += o->mf_v[i].status != MF_OK;
	sink_str(s, "manifest", !o->mf ? "absent" : bad || !o->mf_n ?
		 "does not verify" : "verified");
	if (o->mf) {
		sink_arr_begin(s, "manifest-entries");
		for (size_t i = 0; i < o->mf_n; i++) {
			sink_obj_begin(s, NULL);
			sink_str(s, "file", o->mf_v[i].file);
			sink_str(s, "algorithm", o->mf_v[i].sha256 ? "SHA256" : "SHA1");
			sink_str(s, "status", mf_status_name(o->mf_v[i].status));
			sink_obj_end(s);
		}
		sink_arr_end(s);
	}
	sink_bool(s, "certificate", o->cert != NULL);
}

static void ova_info(struct image *img, struct sink *s)
{
	struct tar_state *st = img->priv;
	struct ova *o = st->ext;

	tar_info_archive(&st->ar, s);
	if (!o || !o->ovf)
		return;
	sink_str(s, "descriptor", o->ovf->name);
	info_system(s, o);
	info_disks(s, img, o);
	info_manifest(s, img, o);
}

const struct driver ova_driver = {
	.name = "ova",
	.description = "OVA appliance (OVF descriptor, manifest and disks in a tar)",
	.kind = DRV_CONTAINER,
	.disk_format = "vmdk",
	.container_format = "ova",
	.probe = ova_probe,
	.open = ova_open,
	.close = ova_close,
	.extent = tar_op_extent,
	.walk = tar_op_walk,
	.trace = tar_op_trace,
	.info = ova_info,
	.list = ova_list,
	.member = tar_op_member,
	.openstack = ova_openstack,
	.check = ova_check,
	.writer = &ova_writer_ops,
};
