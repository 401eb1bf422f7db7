/* The fuzz targets' shared harness: what a user can make vise do with one
 * image, run on bytes held in memory.  Every loop is bounded here, so a
 * timeout or an out-of-memory report is vise's, not the harness's. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/check.h"
#include "core/cmd.h"
#include "core/driver.h"
#include "core/endian.h"
#include "core/image.h"
#include "core/io.h"
#include "core/layout.h"
#include "core/sink.h"
#include "fuzz/fuzz.h"

#define MAP_RECS_MAX 4096      /* guest map records followed */
#define DATA_READS_MAX 8       /* data records read back */
#define READ_LEN 65536         /* bytes per guest read at most */
#define LIST_ENTRIES_MAX 512   /* container entries visited */
#define LIST_DIRS_MAX 16       /* folders listed */
#define MEMBERS_MAX 16         /* members windowed and probed */

/* The inputs' folder: relative external names (VMDK extents, data files)
 * resolve inside it and find nothing, so an input cannot make vise read a
 * file of this machine.  One fixed folder, ours and empty, shared by every
 * run: a folder per run would be left behind by each crash and timeout. */
static char empty_dir[64];
static FILE *devnull;

static bool dir_is_ours_and_empty(const char *dir)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	bool empty = true;

	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid())
		return false;
	d = opendir(dir);
	if (!d)
		return false;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

static void harness_init(void)
{
	const char *tmp = getenv("TMPDIR");

	if (devnull)
		return;
	devnull = fopen("/dev/null", "w");
	snprintf(empty_dir, sizeof empty_dir, "%s/vise-fuzz-empty-%u",
		 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp", (unsigned)getuid());
	mkdir(empty_dir, 0700);
	if (!devnull || !dir_is_ours_and_empty(empty_dir)) {
		fprintf(stderr, "fuzz harness: '%s' must be an empty folder of ours "
			"(inputs name files in it)\n", empty_dir);
		abort();
	}
}

/* An invariant the core promises was broken: stop loudly, so libFuzzer
 * keeps the input.  Used only where breaking it hangs or corrupts a
 * caller (a map record that does not advance makes `vise map` loop). */
static void broken(const char *what)
{
	fprintf(stderr, "fuzz harness: broken invariant: %s\n", what);
	abort();
}

/* ---- the guest view ---- */

struct data_spots {
	uint64_t off[DATA_READS_MAX];
	int n;
};

/* The chain-level map, as `vise map` walks it, remembering a few data
 * records to read back. */
static void walk_guest_map(struct image *img, struct data_spots *spots)
{
	uint64_t off = 0;

	for (int i = 0; i < MAP_RECS_MAX && off < img->virtual_size; i++) {
		struct vise_err e = { 0 };
		struct map_rec rec;

		if (image_map_rec(img, off, &rec, &e) < 0)
			return;
		if (rec.length == 0 || rec.start + rec.length <= off)
			broken("image_map_rec answered a record that does not advance");
		if ((rec.data || rec.compressed) && spots->n < DATA_READS_MAX)
			spots->off[spots->n++] = off;
		off = rec.start + rec.length;
	}
}

static void read_guest(struct image *img, uint64_t off, size_t len,
		       uint8_t *buf)
{
	struct vise_err e = { 0 };

	if (off >= img->virtual_size)
		return;
	if (len > img->virtual_size - off)
		len = (size_t)(img->virtual_size - off);
	image_read(img, off, buf, len, &e);
}

/* The start, the middle, the last byte and the data found by the map:
 * plain clusters, compressed ones, and ranges falling through. */
static void read_guest_spots(struct image *img, const struct data_spots *spots)
{
	uint8_t *buf = malloc(READ_LEN);
	uint64_t vs = img->virtual_size;

	if (!buf || !vs) {
		free(buf);
		return;
	}
	read_guest(img, 0, 4096, buf);
	read_guest(img, vs / 2 - (vs / 2) % 512, 1536, buf);
	read_guest(img, vs - 1, 1, buf);
	for (int i = 0; i < spots->n; i++)
		read_guest(img, spots->off[i], READ_LEN, buf);
	free(buf);
}

/* ---- structures, the host map, traces ---- */

static void trace_step(void *ctx, const struct image *img,
		       const struct trace_step *st)
{
	(void)ctx;
	(void)img;
	/* the detail is printed with %s by `vise trace` */
	if (!st->what || !memchr(st->detail, 0, sizeof st->detail))
		broken("trace step without a name or an unterminated detail");
}

static void trace_spots(struct image *img, const struct data_spots *spots)
{
	struct tracer t = { trace_step, NULL };
	uint64_t vs = img->virtual_size;
	uint64_t at[3] = { 0, vs / 2, vs ? vs - 1 : 0 };

	if (!img->drv->trace || !vs)
		return;
	for (int i = 0; i < 3; i++) {
		struct vise_err e = { 0 };
		image_trace(img, at[i], &t, &e);
	}
	for (int i = 0; i < spots->n && i < 2; i++) {
		struct vise_err e = { 0 };
		image_trace(img, spots->off[i], &t, &e);
	}
}

static void info_to_null(struct image *img)
{
	struct sink s;

	if (!img->drv->info)
		return;
	sink_init(&s, devnull, true);
	sink_obj_begin(&s, NULL);
	img->drv->info(img, &s);
	sink_obj_end(&s);
	sink_end(&s);
}

static void layout_of_guest(struct image *img)
{
	struct vise_err e = { 0 };
	struct src *disk;
	struct layout l;

	if (src_guest(img, &disk, &e) < 0)
		return;
	layout_read(disk, 0, &l, &e);
	layout_free(&l);
	src_put(disk);
}

/* ---- containers ---- */

struct listing {
	struct image *img;
	char *dirs[LIST_DIRS_MAX];
	int ndirs;
	int entries;
	int members;
};

/* A member the driver says is stored in place is windowed and probed, as
 * opening "x.ova/disk.vmdk" starts. */
static void probe_member(struct listing *ls, const char *path)
{
	struct vise_err e = { 0 };
	uint64_t off, len;
	struct src *w;
	struct probe_hit hits[8];

	if (!ls->img->drv->member || ls->members >= MEMBERS_MAX)
		return;
	ls->members++;
	if (ls->img->drv->member(ls->img, path, &off, &len, &e) < 0)
		return;
	if (src_window(ls->img->src, off, len, path, &w, &e) < 0)
		return;
	probe_src(w, hits, 8, &e);
	src_put(w);
}

static int list_entry(void *ctx, const struct member *m)
{
	struct listing *ls = ctx;

	if (!m->name || !m->path)
		broken("a container listed a member without a name or path");
	if (++ls->entries > LIST_ENTRIES_MAX)
		return 1;
	if (m->is_dir && ls->ndirs < LIST_DIRS_MAX)
		ls->dirs[ls->ndirs++] = strdup(m->path);
	else if (!m->is_dir)
		probe_member(ls, m->path);
	return 0;
}

/* The top folder, then the folders found in it (breadth first, bounded),
 * as `vise ls` and the TUI list them. */
static void list_container(struct image *img)
{
	struct listing ls = { .img = img };
	struct lister l = { list_entry, &ls };
	struct vise_err e = { 0 };

	if (!img->drv->list)
		return;
	img->drv->list(img, "", &l, &e);
	for (int i = 0; i < ls.ndirs && ls.entries <= LIST_ENTRIES_MAX; i++) {
		struct vise_err e2 = { 0 };
		if (ls.dirs[i])
			img->drv->list(img, ls.dirs[i], &l, &e2);
	}
	for (int i = 0; i < ls.ndirs; i++)
		free(ls.dirs[i]);
}

/* ---- the batch commands on the open image (as the TUI runs them) ---- */

/* Only commands that read: nothing here may write a file.  `check`
 * builds the host map (a walk of META | DATA | ALLOC) and runs the
 * driver's check on it; not `clusters`, which builds the same map again:
 * the time limit is for the whole run, and a hostile table of 4 million
 * entries costs a second per walk under the sanitizers. */
static const char *const read_commands[] = {
	"info --json",
	"info",
	"dump",
	"snapshot -l",
	"trace --json 0",
	"layout",
	"ls -l",
	"check --json",
	NULL,
};

static void run_command_line(struct cmd_ctx *ctx, const char *line)
{
	char buf[64];
	char *argv[8];
	int argc = 0;

	snprintf(buf, sizeof buf, "%s", line);
	for (char *w = strtok(buf, " "); w && argc < 7; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	/* commands that do not exist (yet) are not run: check is new */
	if (!command_find(argv[0]))
		return;
	command_run(ctx, argc, argv);
	fflush(devnull);
}

static void run_commands(struct image *img)
{
	struct sink s;
	struct cmd_ctx ctx = { 0 };

	sink_init(&s, devnull, false);
	ctx.out = &s;
	ctx.outfp = devnull;
	ctx.err = devnull;
	ctx.current = img;
	for (int i = 0; read_commands[i]; i++) {
		if (!strncmp(read_commands[i], "ls", 2) && !img->drv->list)
			continue;
		run_command_line(&ctx, read_commands[i]);
	}
}

/* ---- the targets' entry points ---- */

static struct image *open_in_memory(struct src *src, const char *format)
{
	struct open_opts o = { 0 };
	struct vise_err e = { 0 };
	struct image *img = NULL;
	char path[128];

	o.format = format;
	o.no_backing = true;
	snprintf(path, sizeof path, "%s/fuzz.%s", empty_dir, format);
	if (image_open_src(src, path, empty_dir, &o, 0, &img, &e) < 0)
		return NULL;
	return img;
}

int fuzz_image(const uint8_t *data, size_t size, const char *format)
{
	struct vise_err e = { 0 };
	struct probe_hit hits[16];
	struct data_spots spots = { .n = 0 };
	struct src *src;
	struct image *img;

	harness_init();
	if (src_memory(data, size, false, "fuzz-input", &src, &e) < 0)
		return 0;
	probe_src(src, hits, 16, &e);
	img = open_in_memory(src, format);
	if (img) {
		walk_guest_map(img, &spots);
		read_guest_spots(img, &spots);
		trace_spots(img, &spots);
		info_to_null(img);
		layout_of_guest(img);
		list_container(img);
		run_commands(img);
		image_close(img);
	}
	src_put(src);
	return 0;
}

/* The sparse encoding (fuzz/sparse.py says why and how): a size, then
 * (offset, length, bytes) records over zeros. */
int fuzz_image_sparse(const uint8_t *data, size_t size, const char *format)
{
	uint32_t len = size >= 4 ? rd_le32(data) : 0;
	uint32_t max = !strcmp(format, "vpc") || !strcmp(format, "vdi") ?
		       FUZZ_SPARSE_MAX_PER_BLOCK : FUZZ_SPARSE_MAX;
	uint8_t *img;
	size_t pos = 4;

	if (len > max)
		len = max;
	img = calloc(1, len ? len : 1);
	if (!img)
		return 0;
	while (pos + 6 <= size) {
		uint32_t off = rd_le32(data + pos);
		size_t n = rd_le16(data + pos + 4);

		pos += 6;
		if (n > size - pos)
			n = size - pos;
		if (off < len)
			memcpy(img + off, data + pos, n < len - off ? n : len - off);
		pos += n;
	}
	fuzz_image(img, len, format);
	free(img);
	return 0;
}

/* A layout driver's check runs on the disk whose guest view holds it. */
static void layout_checks(struct image *disk)
{
	for (const struct driver *const *d = vise_drivers; *d; d++) {
		struct check_ctx cc = { .disk = disk };
		struct vise_err e = { 0 };

		if ((*d)->kind == DRV_LAYOUT && (*d)->check)
			(*d)->check(disk, &cc, &e);
	}
}

int fuzz_layout(const uint8_t *data, size_t size)
{
	static const uint32_t hints[] = { 0, 512, 4096 };
	struct vise_err e = { 0 };
	struct src *src;
	struct image *disk;

	harness_init();
	if (src_memory(data, size, false, "fuzz-disk", &src, &e) < 0)
		return 0;
	for (int i = 0; i < 3; i++) {
		struct layout l;
		struct vise_err e2 = { 0 };

		layout_read(src, hints[i], &l, &e2);
		layout_free(&l);
	}
	disk = open_in_memory(src, "raw");
	if (disk) {
		struct sink s;
		struct cmd_ctx ctx = { 0 };

		layout_checks(disk);
		sink_init(&s, devnull, false);
		ctx.out = &s;
		ctx.outfp = devnull;
		ctx.err = devnull;
		ctx.current = disk;
		run_command_line(&ctx, "layout --json");
		run_command_line(&ctx, "layout");
		image_close(disk);
	}
	src_put(src);
	return 0;
}
