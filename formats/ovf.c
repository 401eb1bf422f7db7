/* The OVF descriptor: References (the files), DiskSection (virtual disks:
 * capacity in capacityAllocationUnits, the format URI, the file), and the
 * first VirtualSystem (name, OperatingSystemSection, VirtualHardwareSection
 * items by CIM ResourceType: 3 CPU, 4 memory, 17 disk, 10 NIC; the
 * ProductSection).  Names are matched without namespace prefixes: tools
 * write "ovf:", "rasd:" or default namespaces as they please. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/image.h"
#include "formats/ovf.h"
#include "formats/xml.h"

static char *dup_or_null(const char *s)
{
	return s ? vise_strdup(s) : NULL;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s)
		return false;
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	while (*s == ' ')
		s++;
	*out = v;
	return *s == 0;
}

static bool mul_ok(uint64_t *acc, uint64_t m)
{
	if (m && *acc > UINT64_MAX / m)
		return false;
	*acc *= m;
	return true;
}

/* One factor of a units expression: "byte", "2^30", "1024", "MegaBytes". */
static bool unit_factor(const char *t, size_t n, uint64_t *acc)
{
	static const struct { const char *name; uint64_t mult; } words[] = {
		{ "byte", 1 }, { "bytes", 1 }, { "KiloBytes", 1ull << 10 },
		{ "MegaBytes", 1ull << 20 }, { "GigaBytes", 1ull << 30 },
		{ "TeraBytes", 1ull << 40 }, { "KB", 1ull << 10 },
		{ "MB", 1ull << 20 }, { "GB", 1ull << 30 },
	};
	char tok[32];

	if (!n || n >= sizeof tok)
		return false;
	memcpy(tok, t, n);
	tok[n] = 0;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (!strcasecmp(tok, words[i].name))
			return mul_ok(acc, words[i].mult);
	char *caret = strchr(tok, '^');
	uint64_t base, exp;
	if (caret) {
		*caret = 0;
		if (!parse_u64(tok, &base) || !parse_u64(caret + 1, &exp) ||
		    exp > 64 || (base != 2 && base != 10))
			return false;
		while (exp--)
			if (!mul_ok(acc, base))
				return false;
		return true;
	}
	return parse_u64(tok, &base) && mul_ok(acc, base);
}

bool ovf_units(const char *units, uint64_t *mult)
{
	uint64_t acc = 1;
	const char *p = units;

	if (!units || !*units) {
		*mult = 1;
		return true;
	}
	while (*p) {
		while (*p == ' ' || *p == '*')
			p++;
		const char *s = p;
		while (*p && *p != ' ' && *p != '*')
			p++;
		if (p > s && !unit_factor(s, (size_t)(p - s), &acc))
			return false;
	}
	*mult = acc;
	return true;
}

/* ---- sections ---- */

static void read_references(const struct xml_node *env, uint64_t base,
			    struct findings *f, struct ovf_appliance *app)
{
	const struct xml_node *refs = xml_child(env, "References");
	for (const struct xml_node *n = xml_child(refs, "File"); n;
	     n = xml_next(n, "File")) {
		if (app->nfiles >= OVF_ITEMS_MAX) {
			finding_add(f, SEV_WARN, base + n->off, "OVF References",
				    "File", "more than %d files: the rest ignored",
				    OVF_ITEMS_MAX);
			return;
		}
		struct ovf_file *fl = &app->files[app->nfiles++];
		fl->id = dup_or_null(xml_attr(n, "id"));
		fl->href = dup_or_null(xml_attr(n, "href"));
		const char *size = xml_attr(n, "size");
		if (size && !(fl->has_size = parse_u64(size, &fl->size)))
			finding_add(f, SEV_ERROR, base + n->off, "OVF File", "size",
				    "'%.40s' is not a number", size);
		if (!fl->href)
			finding_add(f, SEV_ERROR, base + n->off, "OVF File", "href",
				    "file '%.60s' has no href", fl->id ? fl->id : "?");
	}
}

static void read_disk(const struct xml_node *n, uint64_t base,
		      struct findings *f, struct ovf_disk *d)
{
	uint64_t cap, mult;

	d->id = dup_or_null(xml_attr(n, "diskId"));
	d->file_ref = dup_or_null(xml_attr(n, "fileRef"));
	d->format = dup_or_null(xml_attr(n, "format"));
	d->capacity_text = dup_or_null(xml_attr(n, "capacity"));
	d->units = dup_or_null(xml_attr(n, "capacityAllocationUnits"));
	if (!d->capacity_text) {
		finding_add(f, SEV_ERROR, base + n->off, "OVF Disk", "capacity",
			    "disk '%.60s' has no capacity", d->id ? d->id : "?");
	} else if (!parse_u64(d->capacity_text, &cap)) {
		finding_add(f, SEV_ERROR, base + n->off, "OVF Disk", "capacity",
			    "'%.40s' is not a number (a ${property} reference is "
			    "not resolved)", d->capacity_text);
	} else if (!ovf_units(d->units, &mult)) {
		finding_add(f, SEV_ERROR, base + n->off, "OVF Disk",
			    "capacityAllocationUnits", "'%.60s' is not a unit vise "
			    "understands", d->units);
	} else if (mult && cap > UINT64_MAX / mult) {
		finding_add(f, SEV_ERROR, base + n->off, "OVF Disk", "capacity",
			    "%.40s x %.40s overflows 64 bits", d->capacity_text,
			    d->units);
	} else {
		d->capacity_ok = true;
		d->capacity = cap * mult;
	}
	const char *pop = xml_attr(n, "populatedSize");
	if (pop)
		d->has_populated = parse_u64(pop, &d->populated);
}

static void read_disks(const struct xml_node *env, uint64_t base,
		       struct findings *f, struct ovf_appliance *app)
{
	const struct xml_node *sec = xml_child(env, "DiskSection");
	for (const struct xml_node *n = xml_child(sec, "Disk"); n;
	     n = xml_next(n, "Disk")) {
		if (app->ndisks >= OVF_ITEMS_MAX) {
			finding_add(f, SEV_WARN, base + n->off, "OVF DiskSection",
				    "Disk", "more than %d disks: the rest ignored",
				    OVF_ITEMS_MAX);
			return;
		}
		read_disk(n, base, f, &app->disks[app->ndisks++]);
	}
}

static void read_item(const struct xml_node *it, uint64_t base,
		      struct findings *f, struct ovf_appliance *app)
{
	uint64_t type, q, mult;

	if (!parse_u64(xml_child_text(it, "ResourceType"), &type))
		return;
	const char *qty = xml_child_text(it, "VirtualQuantity");
	switch (type) {
	case 3:
		app->has_cpus = parse_u64(qty, &app->cpus);
		break;
	case 4:
		if (!parse_u64(qty, &q) ||
		    !ovf_units(xml_child_text(it, "AllocationUnits"), &mult) ||
		    (mult && q > UINT64_MAX / mult)) {
			finding_add(f, SEV_WARN, base + it->off, "OVF Item",
				    "VirtualQuantity", "memory '%.40s' in '%.40s' "
				    "is not understood", qty ? qty : "",
				    xml_child_text(it, "AllocationUnits") ?
				    xml_child_text(it, "AllocationUnits") : "");
			break;
		}
		app->has_memory = true;
		app->memory = q * mult;
		break;
	case 17:
		app->disk_items++;
		break;
	case 10: {
		if (app->nnics >= OVF_ITEMS_MAX)
			break;
		struct ovf_nic *nic = &app->nics[app->nnics++];
		nic->name = dup_or_null(xml_child_text(it, "ElementName"));
		nic->connection = dup_or_null(xml_child_text(it, "Connection"));
		nic->subtype = dup_or_null(xml_child_text(it, "ResourceSubType"));
		break;
	}
	}
}

static void read_hardware(const struct xml_node *vs, uint64_t base,
			  struct findings *f, struct ovf_appliance *app)
{
	const struct xml_node *hw = xml_child(vs, "VirtualHardwareSection");
	if (!hw) {
		finding_add(f, SEV_WARN, base + vs->off, "OVF VirtualSystem",
			    "VirtualHardwareSection", "missing");
		return;
	}
	const struct xml_node *sys = xml_child(hw, "System");
	app->system_type = dup_or_null(xml_child_text(sys, "VirtualSystemType"));
	if (app->system_type && strstr(app->system_type, "virtualbox-2.2"))
		finding_add(f, SEV_WARN, base + sys->off, "OVF System",
			    "VirtualSystemType", "'%.60s': VMware products reject "
			    "this system type (use vmx-NN)", app->system_type);
	for (const struct xml_node *it = hw->child; it; it = it->next)
		if (!strcmp(it->local, "Item") || !strcmp(it->local, "StorageItem") ||
		    !strcmp(it->local, "EthernetPortItem"))
			read_item(it, base, f, app);
}

static void read_system(const struct xml_node *env, uint64_t base,
			struct findings *f, struct ovf_appliance *app)
{
	const struct xml_node *vs = xml_child(env, "VirtualSystem");
	if (!vs) {
		const struct xml_node *coll = xml_child(env, "VirtualSystemCollection");
		vs = xml_child(coll, "VirtualSystem");
	}
	if (!vs) {
		finding_add(f, SEV_WARN, base + env->off, "OVF Envelope",
			    "VirtualSystem", "no virtual system is described");
		return;
	}
	const char *name = xml_child_text(vs, "Name");
	app->name = dup_or_null(name && *name ? name : xml_attr(vs, "id"));
	const struct xml_node *os = xml_child(vs, "OperatingSystemSection");
	app->os_id = dup_or_null(xml_attr(os, "id"));
	app->os_type = dup_or_null(xml_attr(os, "osType"));
	app->os_desc = dup_or_null(xml_child_text(os, "Description"));
	const struct xml_node *prod = xml_child(vs, "ProductSection");
	app->product = dup_or_null(xml_child_text(prod, "Product"));
	app->vendor = dup_or_null(xml_child_text(prod, "Vendor"));
	app->product_version = dup_or_null(xml_child_text(prod, "Version"));
	read_hardware(vs, base, f, app);
}

static void read_version(const struct xml_node *env, struct ovf_appliance *app)
{
	const char *v = xml_attr(env, "version");
	for (size_t i = 0; !v && i < env->nattrs; i++) {
		const char *val = env->attrs[i].value;
		if (!strncmp(env->attrs[i].name, "xmlns", 5) &&
		    strstr(val, "schemas.dmtf.org/ovf/envelope/"))
			v = strstr(val, "/envelope/") + 10;
	}
	app->version = dup_or_null(v);
}

void ovf_parse(const char *buf, size_t len, uint64_t doc_off,
	       struct findings *f, struct ovf_appliance *app)
{
	struct xml_doc doc;

	memset(app, 0, sizeof *app);
	app->files = calloc(OVF_ITEMS_MAX, sizeof *app->files);
	app->disks = calloc(OVF_ITEMS_MAX, sizeof *app->disks);
	app->nics = calloc(OVF_ITEMS_MAX, sizeof *app->nics);
	if (!app->files || !app->disks || !app->nics)
		return;
	if (xml_parse(buf, len, &doc) < 0)
		finding_add(f, SEV_ERROR, doc_off + doc.error_off, "OVF descriptor",
			    "", "XML: %s", doc.error);
	const struct xml_node *env = doc.root;
	if (env && strcmp(env->local, "Envelope")) {
		finding_add(f, SEV_ERROR, doc_off + env->off, "OVF descriptor",
			    "Envelope", "the top element is <%.60s>, not an Envelope",
			    env->name);
		env = NULL;
	}
	if (env) {
		read_version(env, app);
		read_references(env, doc_off, f, app);
		read_disks(env, doc_off, f, app);
		read_system(env, doc_off, f, app);
	}
	xml_free(&doc);
}

void ovf_free(struct ovf_appliance *app)
{
	for (size_t i = 0; app->files && i < app->nfiles; i++) {
		free(app->files[i].id);
		free(app->files[i].href);
	}
	for (size_t i = 0; app->disks && i < app->ndisks; i++) {
		struct ovf_disk *d = &app->disks[i];
		free(d->id);
		free(d->file_ref);
		free(d->format);
		free(d->capacity_text);
		free(d->units);
	}
	for (size_t i = 0; app->nics && i < app->nnics; i++) {
		free(app->nics[i].name);
		free(app->nics[i].connection);
		free(app->nics[i].subtype);
	}
	free(app->files);
	free(app->disks);
	free(app->nics);
	free(app->version);
	free(app->name);
	free(app->os_id);
	free(app->os_desc);
	free(app->os_type);
	free(app->system_type);
	free(app->product);
	free(app->vendor);
	free(app->product_version);
	memset(app, 0, sizeof *app);
}
