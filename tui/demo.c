/* The demo disk: a small qcow2 that exercises every pane of the workbench.
 *
 * It is made by a compact qcow2 emitter of its own (the convert engine's
 * writers stream one image; the demo needs things a conversion never makes:
 * internal snapshots sharing tables, zero clusters over a backing file).
 * Everything is built in memory, then written to NAME.tmp and renamed, so a
 * half-built demo is never picked up by the next run.
 *
 * Guest view (64 MiB, GPT):
 *   1 MiB..9 MiB    EFI system partition, a FAT32 boot sector
 *   9 MiB..49 MiB   Linux filesystem, an ext4 superblock, compressed text
 *   49 MiB..63 MiB  Linux swap, a swap header
 *   12 MiB..13 MiB  data in the backing file, partly hidden by zero clusters
 * Two internal snapshots: the older one sees neither the zero clusters nor
 * the cluster written after it, so the tables differ and refcounts vary. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/endian.h"
#include "tui/demo.h"

#define DEMO_NAME "vise-demo-1.qcow2"
#define DEMO_BASE "vise-demo-1-base.raw"

#define CBITS 16
#define CSIZE (1u << CBITS)
#define VSIZE (64ull << 20)
#define GCLUSTERS (VSIZE / CSIZE)
#define HOST_MAX 64                 /* host clusters the demo may use */
#define SECT 512u

enum gkind { G_NONE, G_DATA, G_COMP, G_ZERO };

struct demo {
	uint8_t *guest;             /* the top layer's guest view, VSIZE */
	uint8_t *host;              /* the qcow2 file, HOST_MAX clusters */
	uint64_t next;              /* next free host byte */
	uint16_t refs[HOST_MAX];
};

static uint64_t host_cluster(struct demo *d)
{
	uint64_t off = (d->next + CSIZE - 1) & ~(uint64_t)(CSIZE - 1);

	d->next = off + CSIZE;
	return off;
}

/* ---- the guest view: GPT and filesystem signatures ---- */

static const uint8_t guid_esp[16] = {   /* C12A7328-F81F-11D2-BA4B-00A0C93EC93B */
	0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
	0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b };
static const uint8_t guid_linux[16] = { /* 0FC63DAF-8483-4772-8E79-3D69D8477DE4 */
	0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
	0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };
static const uint8_t guid_swap[16] = {  /* 0657FD6D-A4AB-43C4-84E5-0933C84B4F4F */
	0x6d, 0xfd, 0x57, 0x06, 0xab, 0xa4, 0xc4, 0x43,
	0x84, 0xe5, 0x09, 0x33, 0xc8, 0x4b, 0x4f, 0x4f };

/* A fixed, made-up GUID per use: the demo is the same on every machine. */
static void demo_guid(uint8_t g[16], uint8_t seed)
{
	for (int i = 0; i < 16; i++)
		g[i] = (uint8_t)(0x5a ^ (seed * 29 + i * 7));
	g[7] = (uint8_t)(0x40 | (g[7] & 0x0f));    /* version 4 */
	g[8] = (uint8_t)(0x80 | (g[8] & 0x3f));
}

struct dpart {
	const uint8_t *type;
	uint64_t first, last;      /* LBA */
	const char *name;
};

static const struct dpart demo_parts[] = {
	{ guid_esp, 2048, 18431, "EFI system" },
	{ guid_linux, 18432, 100351, "vise-root" },
	{ guid_swap, 100352, 129023, "swap" },
};
#define NPARTS (sizeof demo_parts / sizeof demo_parts[0])

static void gpt_header(uint8_t *h, uint64_t self, uint64_t alt,
		       uint64_t entries, uint32_t entries_crc)
{
	uint64_t sectors = VSIZE / SECT;

	memcpy(h, "EFI PART", 8);
	wr_le32(h + 8, 0x00010000);
	wr_le32(h + 12, 92);
	wr_le64(h + 24, self);
	wr_le64(h + 32, alt);
	wr_le64(h + 40, 34);
	wr_le64(h + 48, sectors - 34);
	demo_guid(h + 56, 1);
	wr_le64(h + 72, entries);
	wr_le32(h + 80, 128);
	wr_le32(h + 84, 128);
	wr_le32(h + 88, entries_crc);
	wr_le32(h + 16, (uint32_t)crc32(0, h, 92));
}

static void make_gpt(uint8_t *g)
{
	uint64_t sectors = VSIZE / SECT;
	uint8_t *ents = g + 2 * SECT;
	uint32_t crc;

	/* The protective MBR: one 0xee entry over the whole disk. */
	g[446 + 4] = 0xee;
	g[446 + 2] = 0x02;
	g[446 + 5] = 0xff; g[446 + 6] = 0xff; g[446 + 7] = 0xff;
	wr_le32(g + 446 + 8, 1);
	wr_le32(g + 446 + 12, (uint32_t)(sectors - 1));
	g[510] = 0x55;
	g[511] = 0xaa;

	for (size_t i = 0; i < NPARTS; i++) {
		uint8_t *e = ents + i * 128;
		const char *n = demo_parts[i].name;

		memcpy(e, demo_parts[i].type, 16);
		demo_guid(e + 16, (uint8_t)(10 + i));
		wr_le64(e + 32, demo_parts[i].first);
		wr_le64(e + 40, demo_parts[i].last);
		for (size_t k = 0; n[k] && k < 36; k++)
			wr_le16(e + 56 + 2 * k, (uint8_t)n[k]);
	}
	crc = (uint32_t)crc32(0, ents, 128 * 128);
	gpt_header(g + SECT, 1, sectors - 1, 2, crc);
	/* The backup: entries just before the last sector, header in it. */
	memcpy(g + (sectors - 33) * SECT, ents, 128 * 128);
	gpt_header(g + (sectors - 1) * SECT, sectors - 1, 1, sectors - 33, crc);
}

static void make_fat32(uint8_t *b)
{
	static const uint8_t jump[3] = { 0xeb, 0x58, 0x90 };

	memcpy(b, jump, 3);
	memcpy(b + 3, "VISEDEMO", 8);
	wr_le16(b + 11, 512);
	b[13] = 1;                   /* sectors per cluster */
	wr_le16(b + 14, 32);        /* reserved sectors */
	b[16] = 2;                   /* FATs */
	b[21] = 0xf8;
	wr_le16(b + 24, 32);
	wr_le16(b + 26, 64);
	wr_le32(b + 28, 2048);      /* hidden sectors: the partition start */
	wr_le32(b + 32, 16384);     /* total sectors */
	wr_le32(b + 36, 126);       /* sectors per FAT */
	wr_le32(b + 44, 2);         /* root directory cluster */
	wr_le16(b + 48, 1);
	wr_le16(b + 50, 6);
	b[64] = 0x80;
	b[66] = 0x29;
	wr_le32(b + 67, 0x5eed1234);
	memcpy(b + 71, "VISE-EFI   ", 11);
	memcpy(b + 82, "FAT32   ", 8);
	b[510] = 0x55;
	b[511] = 0xaa;
}

static void make_ext4(uint8_t *p)
{
	uint8_t *sb = p + 1024;

	wr_le32(sb + 0, 10240);     /* inodes */
	wr_le32(sb + 4, 10240);     /* blocks of 4 KiB: 40 MiB */
	wr_le32(sb + 20, 0);        /* first data block */
	wr_le32(sb + 24, 2);        /* log2(block size) - 10 */
	wr_le32(sb + 28, 2);
	wr_le32(sb + 32, 32768);
	wr_le32(sb + 40, 8192);
	wr_le16(sb + 56, 0xef53);
	wr_le16(sb + 58, 1);        /* cleanly unmounted */
	wr_le32(sb + 76, 1);        /* dynamic revision */
	wr_le32(sb + 84, 11);
	wr_le16(sb + 88, 256);
	wr_le32(sb + 92, 0x3c);     /* journal, xattr, resize_inode, dir_index */
	wr_le32(sb + 96, 0x2c2);    /* filetype, extent, 64bit, flex_bg */
	wr_le32(sb + 100, 0x6b);    /* sparse_super, large_file, huge_file, ... */
	demo_guid(sb + 104, 20);
	memcpy(sb + 120, "vise-root", 9);
	memcpy(sb + 136, "/", 1);
}

static void make_swap(uint8_t *p)
{
	uint8_t *h = p + 1024;

	wr_le32(h + 0, 1);                          /* version */
	wr_le32(h + 4, (14u << 20) / 4096 - 1);     /* last page */
	demo_guid(h + 12, 30);
	memcpy(h + 28, "vise-swap", 9);
	memcpy(p + 4096 - 10, "SWAPSPACE2", 10);
}

/* Text that compresses well, so the compressed clusters are small. */
static void fill_text(uint8_t *p, size_t len, const char *what)
{
	char line[128];
	size_t n = 0;

	for (unsigned i = 0; n < len; i++) {
		int k = snprintf(line, sizeof line,
				 "%s: line %u of the vise demo disk\n", what, i);

		if (k <= 0)
			break;
		for (int j = 0; j < k && n < len; j++)
			p[n++] = (uint8_t)line[j];
	}
}

/* The three views the file keeps: each snapshot's and the active one.
 * The compressed clusters were written last, after both snapshots. */
enum { VIEW_SNAP1, VIEW_SNAP2, VIEW_ACTIVE };

/* What the top layer holds at each guest cluster, in one view. */
static enum gkind top_kind(uint64_t c, int view)
{
	switch (c) {
	case 0: case 16: case 144: case 784: case GCLUSTERS - 1:
		return G_DATA;
	case 145: case 146: case 147: case 148:
		return view == VIEW_ACTIVE ? G_COMP : G_NONE;
	case 196: case 197: case 198: case 199:
		return view == VIEW_SNAP1 ? G_NONE : G_ZERO;
	case 200:
		return view == VIEW_SNAP1 ? G_NONE : G_DATA;
	}
	return G_NONE;
}

/* ---- the qcow2 file ---- */

static int write_compressed(struct demo *d, const uint8_t *src, uint64_t *desc,
			    struct vise_err *e)
{
	uint8_t out[CSIZE + 1024];
	z_stream z = { 0 };
	uint64_t off, len, extra;

	/* qcow2 stores raw deflate (no zlib header), window 4 KiB as qemu. */
	if (deflateInit2(&z, 9, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return err_set(e, VE_NOMEM, "demo: deflateInit2 failed");
	z.next_in = (Bytef *)src;
	z.avail_in = CSIZE;
	z.next_out = out;
	z.avail_out = sizeof out;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		return err_set(e, VE_FORMAT, "demo: deflate did not finish");
	}
	len = z.total_out;
	deflateEnd(&z);
	off = d->next;
	if (off + len > (uint64_t)HOST_MAX * CSIZE)
		return err_set(e, VE_NOMEM, "demo: host space exhausted");
	memcpy(d->host + off, out, len);
	d->next = off + len;
	extra = ((off + len - 1) / SECT) - off / SECT;
	*desc = (1ull << 62) | (extra << (62 - (CBITS - 8))) | off;
	return 0;
}

/* The L2 table of one view; clusters already written for another view
 * are shared, as qemu shares them after a snapshot. */
static int fill_l2(struct demo *d, uint8_t *l2, int view, uint64_t *shared,
		   struct vise_err *e)
{
	for (uint64_t c = 0; c < GCLUSTERS; c++) {
		enum gkind k = top_kind(c, view);
		uint64_t v = 0;
		int r;

		if (k == G_NONE)
			continue;
		if (k == G_ZERO) {
			v = 1;
		} else if (shared[c]) {
			v = shared[c];      /* the same cluster in both views */
		} else if (k == G_DATA) {
			v = host_cluster(d);
			if (v + CSIZE > (uint64_t)HOST_MAX * CSIZE)
				return err_set(e, VE_NOMEM, "demo: host space exhausted");
			memcpy(d->host + v, d->guest + c * CSIZE, CSIZE);
			shared[c] = v;
		} else {
			r = write_compressed(d, d->guest + c * CSIZE, &v, e);
			if (r < 0)
				return r;
			shared[c] = v;
		}
		wr_be64(l2 + c * 8, v);
	}
	return 0;
}

static void ref_cluster(struct demo *d, uint64_t off)
{
	d->refs[off / CSIZE]++;
}

/* qemu-img check's way: every L1 table (active and each snapshot's) counts
 * its L2 tables and every cluster they point at.  Then the COPIED flag is
 * set exactly where the count is 1, as check demands. */
static void count_refs(struct demo *d, const uint64_t *l1s, size_t nl1)
{
	for (size_t i = 0; i < nl1; i++) {
		uint64_t l2 = rd_be64(d->host + l1s[i]) & 0x00fffffffffffe00ull;
		const uint8_t *t = d->host + l2;

		ref_cluster(d, l2);
		for (uint64_t c = 0; c < GCLUSTERS; c++) {
			uint64_t v = rd_be64(t + c * 8);

			if (v & (1ull << 62)) {
				uint64_t mask = (1ull << (62 - (CBITS - 8))) - 1;
				uint64_t off = v & mask;
				uint64_t n = ((v >> (62 - (CBITS - 8))) & 0xff) + 1;
				uint64_t end = (off & ~(uint64_t)(SECT - 1)) + n * SECT;

				for (uint64_t h = off / CSIZE; h * CSIZE < end; h++)
					d->refs[h]++;
			} else if (v & 0x00fffffffffffe00ull) {
				ref_cluster(d, v & 0x00fffffffffffe00ull);
			}
		}
	}
}

static void set_copied(struct demo *d, uint64_t l1)
{
	uint64_t e = rd_be64(d->host + l1);
	uint64_t l2 = e & 0x00fffffffffffe00ull;

	if (d->refs[l2 / CSIZE] == 1)
		wr_be64(d->host + l1, e | (1ull << 63));
	if (d->refs[l2 / CSIZE] != 1)
		return;
	for (uint64_t c = 0; c < GCLUSTERS; c++) {
		uint8_t *p = d->host + l2 + c * 8;
		uint64_t v = rd_be64(p);
		uint64_t h = v & 0x00fffffffffffe00ull;

		if (!(v & (1ull << 62)) && h && d->refs[h / CSIZE] == 1)
			wr_be64(p, v | (1ull << 63));
	}
}

static size_t put_snapshot(uint8_t *p, uint64_t l1, const char *id,
			   const char *name, uint32_t date)
{
	size_t n = 40 + 16;

	wr_be64(p, l1);
	wr_be32(p + 8, 1);
	wr_be16(p + 12, (uint16_t)strlen(id));
	wr_be16(p + 14, (uint16_t)strlen(name));
	wr_be32(p + 16, date);
	wr_be64(p + 24, (uint64_t)(date - 1767225600u) * 1000000000ull);
	wr_be32(p + 36, 16);                 /* extra data: v3's two fields */
	wr_be64(p + 48, VSIZE);              /* disk size when taken */
	memcpy(p + n, id, strlen(id));
	n += strlen(id);
	memcpy(p + n, name, strlen(name));
	n += strlen(name);
	return (n + 7) & ~(size_t)7;
}

static int build_qcow2(struct demo *d, uint64_t *file_len, struct vise_err *e)
{
	uint64_t hdr, rt, rb, l1, l2, l2a, l2b, st, sl1a, sl1b;
	uint64_t shared[GCLUSTERS];
	uint8_t *h;
	size_t so;
	int r;

	memset(shared, 0, sizeof shared);
	hdr = host_cluster(d);
	rt = host_cluster(d);
	rb = host_cluster(d);
	l1 = host_cluster(d);
	l2 = host_cluster(d);
	l2a = host_cluster(d);
	l2b = host_cluster(d);
	st = host_cluster(d);
	sl1a = host_cluster(d);
	sl1b = host_cluster(d);

	r = fill_l2(d, d->host + l2a, VIEW_SNAP1, shared, e);
	if (r == 0)
		r = fill_l2(d, d->host + l2b, VIEW_SNAP2, shared, e);
	if (r == 0)
		r = fill_l2(d, d->host + l2, VIEW_ACTIVE, shared, e);
	if (r < 0)
		return r;
	wr_be64(d->host + l1, l2);
	wr_be64(d->host + sl1a, l2a);
	wr_be64(d->host + sl1b, l2b);

	/* Snapshot table. */
	so = put_snapshot(d->host + st, sl1a, "1", "fresh-install", 1767261600u);
	so += put_snapshot(d->host + st + so, sl1b, "2", "before-upgrade",
			   1768471200u);

	/* Header, extensions, backing file name. */
	h = d->host + hdr;
	memcpy(h, "QFI\xfb", 4);
	wr_be32(h + 4, 3);
	wr_be32(h + 20, CBITS);
	wr_be64(h + 24, VSIZE);
	wr_be32(h + 36, 1);
	wr_be64(h + 40, l1);
	wr_be64(h + 48, rt);
	wr_be32(h + 56, 1);
	wr_be32(h + 60, 2);
	wr_be64(h + 64, st);
	wr_be32(h + 96, 4);
	wr_be32(h + 100, 104);
	wr_be32(h + 104, 0xe2792aca);        /* backing format */
	wr_be32(h + 108, 3);
	memcpy(h + 112, "raw", 3);
	/* h + 120: the end-of-extensions marker, all zero */
	memcpy(h + 128, DEMO_BASE, strlen(DEMO_BASE));
	wr_be64(h + 8, 128);
	wr_be32(h + 16, (uint32_t)strlen(DEMO_BASE));

	/* Refcounts: metadata once each, then what the L1 tables reach. */
	for (uint64_t c = hdr; c <= sl1b; c += CSIZE)
		if (c != l2 && c != l2a && c != l2b)
			ref_cluster(d, c);
	{
		const uint64_t l1s[] = { l1, sl1a, sl1b };

		count_refs(d, l1s, 3);
	}
	set_copied(d, l1);
	wr_be64(d->host + rt, rb);
	for (uint64_t c = 0; c < HOST_MAX; c++)
		wr_be16(d->host + rb + c * 2, d->refs[c]);
	*file_len = (d->next + CSIZE - 1) & ~(uint64_t)(CSIZE - 1);
	return 0;
}

/* ---- files ---- */

static int write_file(const char *dir, const char *name, const uint8_t *buf,
		      uint64_t len, uint64_t size, struct vise_err *e)
{
	char tmp[4096], dst[4096];
	int fd;

	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s/%s.tmp%ld", dir, name, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return err_errno(e, errno, "create '%s'", tmp);
	/* Only the non-zero pieces are written: the raw backing file stays
	 * sparse. */
	for (uint64_t off = 0; off < len; off += CSIZE) {
		uint64_t n = len - off < CSIZE ? len - off : CSIZE;
		bool zero = true;

		for (uint64_t i = 0; i < n && zero; i++)
			zero = !buf[off + i];
		if (zero)
			continue;
		if (pwrite(fd, buf + off, n, (off_t)off) != (ssize_t)n)
			goto fail;
	}
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0 || rename(tmp, dst) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	{
		int err = errno;

		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return err_errno(e, err, "write '%s'", tmp);
	}
}

int demo_build(const char *dir, struct vise_err *e)
{
	struct demo d = { 0 };
	uint64_t len = 0;
	int r;

	d.guest = calloc(1, VSIZE);      /* untouched pages cost nothing */
	d.host = calloc(HOST_MAX, CSIZE);
	if (!d.guest || !d.host) {
		r = err_set(e, VE_NOMEM, "demo: out of memory");
		goto out;
	}
	/* The backing file first: guest 12 MiB..13 MiB, nothing else. */
	fill_text(d.guest + (12u << 20), 1u << 20, "backing file");
	r = write_file(dir, DEMO_BASE, d.guest, VSIZE, VSIZE, e);
	if (r < 0)
		goto out;
	memset(d.guest + (12u << 20), 0, 1u << 20);

	make_gpt(d.guest);
	make_fat32(d.guest + 2048 * SECT);
	make_ext4(d.guest + 18432 * SECT);
	fill_text(d.guest + 145 * (uint64_t)CSIZE, 4 * CSIZE, "ext4 file");
	make_swap(d.guest + 100352 * (uint64_t)SECT);
	fill_text(d.guest + 200 * (uint64_t)CSIZE, CSIZE, "written after snapshot 2");

	r = build_qcow2(&d, &len, e);
	if (r == 0)
		r = write_file(dir, DEMO_NAME, d.host, len, len, e);
out:
	free(d.guest);
	free(d.host);
	return r;
}

static int make_dir(const char *path)
{
	char tmp[4096];

	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -1;
	return access(tmp, W_OK) == 0 ? 0 : -1;
}

int demo_open_path(char *path, size_t len, bool *built, struct vise_err *e)
{
	const char *env = getenv("VISE_CACHE"), *home = getenv("HOME");
	const char *xdg = getenv("XDG_CACHE_HOME");
	char dir[4096] = "";
	struct stat st;
	int r;

	*built = false;
	if (env && *env)
		snprintf(dir, sizeof dir, "%s", env);
	else if (xdg && *xdg == '/')
		snprintf(dir, sizeof dir, "%s/vise", xdg);
	else if (home && *home == '/')
		snprintf(dir, sizeof dir, "%s/.cache/vise", home);
	if (!*dir || make_dir(dir) < 0) {
		const char *t = getenv("TMPDIR");

		snprintf(dir, sizeof dir, "%s/vise-demo-XXXXXX",
			 t && *t ? t : "/tmp");
		if (!mkdtemp(dir))
			return err_errno(e, errno, "create a folder for the demo");
	}
	snprintf(path, len, "%s/%s", dir, DEMO_NAME);
	if (stat(path, &st) == 0 && st.st_size > 0) {
		char base[4096];

		snprintf(base, sizeof base, "%s/%s", dir, DEMO_BASE);
		if (stat(base, &st) == 0)
			return 0;
	}
	r = demo_build(dir, e);
	if (r < 0)
		return err_ctx(e, "build the demo disk in '%s'", dir);
	*built = true;
	return 0;
}
