/* Output helpers the commands share: sizes the way qemu-img prints them,
 * findings, field values, and reading a described structure's bytes. */
#include <stdlib.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/sink.h"

void cmd_size_str(uint64_t v, char *out, size_t len)
{
	static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	/* qemu-img moves to the next unit once the number would reach 1000
	 * (so 1000 bytes are "0.977 KiB"), and keeps 3 significant digits. */
	double scaled = (double)v / (1000.0 / 1024.0);
	int i = 0;

	while (i < 6 && scaled >= (double)(1ull << (10 * (i + 1))))
		i++;
	snprintf(out, len, "%0.3g %sB", (double)v / (double)(1ull << (10 * i)),
		 units[i]);
}

/* class: always (check's problems) or only when not a note (info). */
static void finding_json(struct sink *s, const struct finding *f,
			 bool always_class)
{
	sink_obj_begin(s, NULL);
	if (always_class)
		sink_str(s, "class", pclass_name(f->cls));
	sink_str(s, "severity", severity_name(f->sev));
	if (f->offset != FINDING_NO_OFFSET)
		sink_u64(s, "offset", f->offset);
	sink_str(s, "structure", f->structure);
	sink_str(s, "field", f->field);
	sink_str(s, "message", f->msg);
	if (!always_class && f->cls != PC_NOTE)
		sink_str(s, "class", pclass_name(f->cls));
	if (f->found[0])
		sink_str(s, "found", f->found);
	if (f->expected[0])
		sink_str(s, "expected", f->expected);
	if (f->has_guest) {
		sink_u64(s, "guest-offset", f->guest_off);
		sink_u64(s, "guest-length", f->guest_len);
	}
	sink_obj_end(s);
}

static void finding_text(struct sink *s, const struct finding *f)
{
	char where[128] = "", values[192] = "", guest[80] = "";

	if (f->offset != FINDING_NO_OFFSET)
		snprintf(where, sizeof where, " at 0x%llx",
			 (unsigned long long)f->offset);
	if (f->found[0] || f->expected[0])
		snprintf(values, sizeof values, " (found %s, expected %s)",
			 f->found[0] ? f->found : "-",
			 f->expected[0] ? f->expected : "-");
	if (f->has_guest)
		snprintf(guest, sizeof guest, " [guest 0x%llx+0x%llx]",
			 (unsigned long long)f->guest_off,
			 (unsigned long long)f->guest_len);
	sink_printf(s, "    %s: %s%s%s%s: %s%s%s\n", severity_name(f->sev),
		    f->structure, f->field[0] ? ": " : "", f->field, where,
		    f->msg, values, guest);
}

void cmd_emit_findings(struct sink *s, const struct findings *f)
{
	if (sink_json(s)) {
		sink_arr_begin(s, "findings");
		for (size_t i = 0; i < f->n; i++)
			finding_json(s, &f->v[i], false);
		sink_arr_end(s);
		return;
	}
	if (!f->n && !f->dropped)
		return;
	sink_printf(s, "Findings:\n");
	for (size_t i = 0; i < f->n; i++)
		finding_text(s, &f->v[i]);
	if (f->dropped)
		sink_printf(s, "    ... and %zu more not stored\n", f->dropped);
}

void cmd_emit_problems(struct sink *s, const char *key,
		       const struct findings *f)
{
	sink_arr_begin(s, key);
	for (size_t i = 0; i < f->n; i++)
		finding_json(s, &f->v[i], true);
	sink_arr_end(s);
}

bool cmd_field_numeric(const struct field *f)
{
	if (f->width > 8)
		return false;
	switch (f->kind) {
	case FK_UINT: case FK_HEX: case FK_OFFSET: case FK_SIZE:
	case FK_SHIFT: case FK_FLAGS: case FK_ENUM: case FK_TIME:
	case FK_BOOL: case FK_RESERVED:
		return true;
	default:
		return false;
	}
}

bool cmd_field_present(const struct field *f, size_t len)
{
	return (uint64_t)f->off + f->width <= len;
}

void cmd_emit_field_value(struct sink *s, const struct sdesc *d,
			  const struct field *f, const uint8_t *buf, size_t len)
{
	char text[512];

	if (cmd_field_numeric(f)) {
		sink_u64(s, f->name, field_u64(d, f, buf, len));
		return;
	}
	field_format(d, f, buf, len, text, sizeof text);
	sink_str(s, f->name, text);
}

/* Bytes a structure instance covers: its table, or its one record. */
static uint64_t sinst_bytes(const struct sinst *si)
{
	uint64_t want;

	if (si->count > 1) {
		uint32_t esz = si->entry_size ? si->entry_size : si->desc->size;

		want = (uint64_t)si->count * esz;
	} else {
		want = si->desc->size;
	}
	if (si->len && si->len < want)
		want = si->len;
	return want;
}

int cmd_read_sinst(const struct image *img, const struct sinst *si,
		   size_t max, uint8_t **buf, size_t *len, struct vise_err *e)
{
	uint64_t want = si->desc ? sinst_bytes(si) : si->len;
	long long got;

	if (want > max)
		want = max;
	*buf = vise_alloc(want ? want : 1, 1, max ? max : 1,
			  "structure bytes", e);
	if (!*buf)
		return -e->code;
	got = src_read_upto(img->src, si->off, *buf, (size_t)want, e);
	if (got < 0) {
		free(*buf);
		*buf = NULL;
		return (int)got;
	}
	*len = (size_t)got;
	return 0;
}

char *cmd_backing_full(const struct image *img)
{
	const char *name = img->backing_name, *slash;
	size_t dirlen;
	char *full;

	if (img->backing_full)
		return vise_strdup(img->backing_full);
	if (!name)
		return NULL;
	slash = img->path ? strrchr(img->path, '/') : NULL;
	if (name[0] == '/' || !slash)
		return vise_strdup(name);
	/* Relative names count from the image's folder, as qemu-img shows. */
	dirlen = (size_t)(slash - img->path);
	full = malloc(dirlen + strlen(name) + 2);
	if (!full)
		return vise_strdup(name);
	memcpy(full, img->path, dirlen);
	full[dirlen] = '/';
	strcpy(full + dirlen + 1, name);
	return full;
}
