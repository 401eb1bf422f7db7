/* `vise layout` for people: the disk line, a table like fdisk -l, the free
 * gaps, and the partitions drawn to scale along the disk. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/cmd_layout.h"
#include "core/cmd_shared.h"

#define BAR_WIDTH 64

static void disk_lines(struct sink *s, const char *path, const struct layout *l)
{
	char size[32], guid[37];

	cmd_size_str(l->disk_size, size, sizeof size);
	sink_printf(s, "Disk %s: %s, %" PRIu64 " bytes, %" PRIu64 " sectors\n",
		    path, size, l->disk_size, l->disk_sectors);
	sink_printf(s, "Sector size: %u bytes\n", l->sector_size);
	sink_printf(s, "Scheme: %s", l->scheme);
	if (l->gpt_used)
		sink_printf(s, " (GPT read from the %s header)", l->gpt_used);
	sink_printf(s, "\n");
	if (l->has_mbr)
		sink_printf(s, "Disk signature: 0x%08x\n", l->disk_signature);
	if (l->gpt_used) {
		guid_text(l->disk_guid, guid);
		sink_printf(s, "Disk GUID: %s\n", guid);
		sink_printf(s, "Usable sectors: %" PRIu64 "-%" PRIu64 "\n",
			    l->first_usable, l->last_usable);
	}
}

static void fs_words(const struct fsinfo *fs, char *out, size_t len)
{
	int n = snprintf(out, len, "%s", fs->type);

	if (fs->label[0] && n >= 0 && (size_t)n < len)
		n += snprintf(out + n, len - (size_t)n, " \"%s\"", fs->label);
	if (fs->uuid[0] && n >= 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, " %s", fs->uuid);
}

static void part_row(struct sink *s, const struct partition *p)
{
	char size[32], code[40], fs[200] = "";
	uint64_t end = p->sectors ? p->start_lba + p->sectors - 1 : p->start_lba;

	cmd_size_str(p->size, size, sizeof size);
	layout_type_code(p, code, sizeof code);
	if (p->role == PART_GPT)
		snprintf(code, sizeof code, "%s", p->type_name);
	else
		snprintf(code + strlen(code), sizeof code - strlen(code), " %s",
			 p->type_name);
	if (p->has_fs)
		fs_words(&p->fs, fs, sizeof fs);
	sink_printf(s, "%3d  %-4s %12" PRIu64 " %12" PRIu64 " %12" PRIu64
		    " %10s  %-26s %-16s %s\n", p->number,
		    p->bootable ? "*" : p->role == PART_LOGICAL ? "log" : "",
		    p->start_lba, end, p->sectors, size, code,
		    p->role == PART_GPT ? p->name : part_role_name(p->role), fs);
}

static void table(struct sink *s, const struct layout *l)
{
	if (!l->nparts) {
		sink_printf(s, "\nNo partitions.\n");
		return;
	}
	sink_printf(s, "\n%3s  %-4s %12s %12s %12s %10s  %-26s %-16s %s\n", "#",
		    "Boot", "Start", "End", "Sectors", "Size", "Type",
		    l->gpt_used ? "Name" : "Kind", "Contents");
	for (size_t i = 0; i < l->nparts; i++)
		part_row(s, &l->parts[i]);
}

static void gaps(struct sink *s, const struct layout *l)
{
	char size[32];

	if (!l->ngaps)
		return;
	sink_printf(s, "\nUnused:\n");
	for (size_t i = 0; i < l->ngaps; i++) {
		uint64_t a = l->gaps[i].start / l->sector_size;
		uint64_t n = l->gaps[i].size / l->sector_size;

		cmd_size_str(l->gaps[i].size, size, sizeof size);
		sink_printf(s, "     %17" PRIu64 " %12" PRIu64 " %12" PRIu64
			    " %10s\n", a, a + n - 1, n, size);
	}
}

static char part_symbol(int number)
{
	if (number >= 1 && number <= 9)
		return (char)('0' + number);
	if (number >= 10 && number < 36)
		return (char)('a' + number - 10);
	return '#';
}

/* One character per 1/BAR_WIDTH of the disk: the partition holding the
 * middle of that stretch, '-' inside an extended partition, '.' unused. */
static void drawing(struct sink *s, const struct layout *l)
{
	char bar[BAR_WIDTH + 1], size[32];

	if (!l->nparts || !l->disk_size)
		return;
	for (int c = 0; c < BAR_WIDTH; c++) {
		uint64_t mid = l->disk_size / BAR_WIDTH * (unsigned)c +
			       l->disk_size / (2 * BAR_WIDTH);
		bar[c] = '.';
		for (size_t i = 0; i < l->nparts; i++) {
			const struct partition *p = &l->parts[i];

			if (mid < p->start || mid - p->start >= p->size)
				continue;
			if (p->role != PART_EXTENDED) {
				bar[c] = part_symbol(p->number);
				break;
			}
			bar[c] = '-';
		}
	}
	bar[BAR_WIDTH] = '\0';
	cmd_size_str(l->disk_size, size, sizeof size);
	sink_printf(s, "\n|%s|\n0%*s\n", bar, BAR_WIDTH + 1, size);
}

void layout_print_text(struct sink *s, const char *path, const struct layout *l)
{
	disk_lines(s, path, l);
	if (l->has_disk_fs) {
		char fs[200];

		fs_words(&l->disk_fs, fs, sizeof fs);
		sink_printf(s, "Whole disk: %s\n", fs);
	}
	table(s, l);
	gaps(s, l);
	drawing(s, l);
	if (l->findings.n || l->findings.dropped)
		sink_printf(s, "\n");
	cmd_emit_findings(s, &l->findings);
}
