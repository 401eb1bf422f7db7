/* The convert engine.  A conversion is a job whose steps each hand one
 * chunk of guest bytes (CHUNK_MIN, or one writer unit when bigger) to the
 * writer, in increasing guest order:
 *
 *  - the source's chain-level map (image_map_rec) says which ranges need
 *    no reading at all: zero and unallocated ranges are skipped whole,
 *    however long, without touching the source;
 *  - data is read with image_read into a chunk buffer, and every unit
 *    (the writer's granularity, widened to -S) that is all zero is left
 *    out: the writer leaves it unallocated, or a hole;
 *  - mapping, reading and zero detection run on a producer thread one
 *    chunk ahead of the writer (core/pipeline.c), so that reading the
 *    source and writing the output overlap;
 *  - with -c, the units go to a pool of worker threads that compress
 *    them in parallel; the results are handed to the writer in guest
 *    order.
 *
 * Memory bound: two chunk buffers (max(4 MiB, unit); one when a unit is
 * bigger than READAHEAD_MAX) plus, with -c, one output buffer of a
 * chunk's size, plus whatever tables the writer keeps.
 *
 * Output safety: every output file is created as NAME.partial (O_EXCL),
 * flushed with fsync and renamed to NAME only after the writer finished;
 * the job's cleanup removes every .partial file when it did not finish. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/convert.h"
#include "core/driver.h"
#include "core/image.h"
#include "core/pipeline.h"

#define CHUNK_MIN (4u << 20)
#define UNIT_MAX (256u << 20)
#define FILES_MAX 4096   /* a 2 TiB twoGbMaxExtent VMDK has 1025 */
#define READAHEAD_MAX (32u << 20)   /* bigger chunks are not held twice */

struct cfile {
	char *final;
	char *partial;        /* NULL: written in place (-n on raw) */
	struct src *s;
};

/* One chunk of guest bytes on its way from the source to the writer
 * (the pipeline's item), or a hole to step over, or the end. */
struct chunk {
	enum { CH_DATA, CH_SKIP, CH_END, CH_ERROR } kind;
	uint64_t base, end;    /* CH_DATA: the chunk; CH_SKIP: the hole */
	uint8_t *buf;
	uint8_t *need;         /* per unit of the chunk: must it be written */
	uint8_t *keep;         /* per zero piece: needed and not all zero */
	struct vise_err err;   /* CH_ERROR */
};

struct ctask {
	const uint8_t *in;
	size_t len;
	uint8_t *out;
	size_t clen;
};

struct pool {
	pthread_t th[CONVERT_THREADS_MAX];
	unsigned n;
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	struct ctask *tasks;
	size_t ntasks, next, ndone;
	bool quit;
	const struct writer *w;
};

struct conv {
	struct job job;
	struct image *img;
	struct writer w;
	struct writer_opts wo;
	uint64_t rate;         /* -r, bytes a second; 0 = no limit */
	char **strs;           /* every copied string, freed at the end */
	size_t nstrs;
	struct cfile *files;
	size_t nfiles, files_cap;
	bool force;
	uint64_t off;          /* next guest offset to copy */
	uint64_t copy_end;     /* min(source size, output size) */
	uint64_t sparse;       /* -S */
	uint32_t unit;         /* zero-detection unit: granularity widened to -S */
	size_t chunk;
	uint64_t piece;        /* zero detection inside a unit: zero_piece() */
	uint64_t per_unit;     /* pieces to a unit */
	struct chunk ch[2];    /* the pipeline's two items */
	struct pipeline pipe;
	bool pipe_up;
	uint64_t read_off;     /* the next guest offset the producer maps */
	struct map_rec map_last;   /* map_at's last answer (producer only) */
	bool top_only;         /* -B: copy only the source's top layer */
	bool compress;
	uint8_t *cbuf;         /* compressed units of one chunk */
	struct ctask *tasks;
	struct pool pool;
	bool pool_up;
	bool begun;
	int clone_in, clone_out;   /* raw to raw: try FICLONE first */
};

enum { R_HOLE, R_ZERO, R_DATA };

bool buf_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	static const uint8_t z[16];

	if (len <= 16)
		return !memcmp(b, z, len);
	/* the first 16 bytes are zero and every byte equals the one 16
	 * bytes before it: memcmp's vector loop does the rest */
	return !memcmp(b, z, 16) && !memcmp(b, b + 16, len - 16);
}

static char *conv_strdup(struct conv *c, const char *s)
{
	char **n;

	if (!s)
		return NULL;
	n = realloc(c->strs, (c->nstrs + 1) * sizeof *n);
	if (!n)
		return NULL;
	c->strs = n;
	n[c->nstrs] = strdup(s);
	return n[c->nstrs] ? n[c->nstrs++] : NULL;
}

/* ---- compression pool ---- */

static void *pool_main(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->quit && p->next >= p->ntasks)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->quit)
			break;
		struct ctask *t = &p->tasks[p->next++];

		pthread_mutex_unlock(&p->mu);
		t->clen = p->w->ops->compress(p->w, t->in, t->len, t->out,
					      t->len);
		pthread_mutex_lock(&p->mu);
		if (++p->ndone == p->ntasks)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static int pool_start(struct pool *p, const struct writer *w, unsigned n,
		      struct vise_err *e)
{
	p->w = w;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	for (p->n = 0; p->n < n; p->n++)
		if (thread_start_masked(&p->th[p->n], pool_main, p) < 0)
			break;
	if (!p->n)
		return err_set(e, VE_NOMEM, "cannot start compression threads");
	return 0;
}

static void pool_stop(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
}

/* Compresses n tasks on the pool and waits for all of them. */
static void pool_run(struct pool *p, struct ctask *t, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&p->mu);
	p->tasks = t;
	p->ntasks = n;
	p->next = 0;
	p->ndone = 0;
	pthread_cond_broadcast(&p->work);
	while (p->ndone < p->ntasks)
		pthread_cond_wait(&p->idle, &p->mu);
	p->ntasks = 0;
	pthread_mutex_unlock(&p->mu);
}

/* ---- output files ---- */

/* Room for one more output file, and a descriptor for it: the soft limit
 * on open files (often 1024) is raised to the hard one when it is near. */
static int files_room(struct conv *c, struct vise_err *e)
{
	struct rlimit rl;

	if (c->nfiles >= FILES_MAX)
		return err_set(e, VE_RANGE, "more than %u output files", FILES_MAX);
	if (c->nfiles == c->files_cap) {
		size_t cap = c->files_cap ? 2 * c->files_cap : 4;
		struct cfile *n = realloc(c->files, cap * sizeof *n);

		if (!n)
			return err_set(e, VE_NOMEM, "out of memory");
		c->files = n;
		c->files_cap = cap;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    c->nfiles + 64 > rl.rlim_cur && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return 0;
}

static int file_add(struct conv *c, const char *final, bool in_place,
		    struct src **out, struct vise_err *e)
{
	struct cfile *f;
	char *partial = NULL;
	int r;

	if (files_room(c, e) < 0)
		return -e->code;
	f = &c->files[c->nfiles];
	memset(f, 0, sizeof *f);
	f->final = conv_strdup(c, final);
	if (!in_place) {
		size_t n = strlen(final) + sizeof ".partial";

		partial = malloc(n);
		if (partial)
			snprintf(partial, n, "%s.partial", final);
	}
	if (!f->final || (!in_place && !partial)) {
		free(partial);
		return err_set(e, VE_NOMEM, "out of memory");
	}
	if (in_place) {
		r = src_open_file(final, SRC_RDWR, &f->s, e);
	} else {
		if (!c->force && access(final, F_OK) == 0) {
			free(partial);
			return err_set(e, VE_REFUSED,
				       "'%s' exists (-n writes into it, --force replaces it)",
				       final);
		}
		r = src_open_file(partial, SRC_CREATE, &f->s, e);
		if (r == -VE_IO && errno == EEXIST)
			r = err_set(e, VE_REFUSED,
				    "'%s' exists: another conversion is writing it, "
				    "or one was killed (remove it)", partial);
	}
	if (r < 0) {
		free(partial);
		return r;
	}
	f->partial = partial;
	c->nfiles++;
	*out = f->s;
	return 0;
}

static int conv_create_file(struct writer *w, const char *name,
			    struct src **out, struct vise_err *e)
{
	struct conv *c = w->engine;
	const char *slash = strrchr(c->files[0].final, '/');
	size_t dl = slash ? (size_t)(slash - c->files[0].final) + 1 : 0;
	size_t n = dl + strlen(name) + 1;
	char *path = malloc(n);
	int r;

	if (!path)
		return err_set(e, VE_NOMEM, "out of memory");
	snprintf(path, n, "%.*s%s", (int)dl, c->files[0].final, name);
	r = file_add(c, path, false, out, e);
	free(path);
	return r;
}

/* Syncs every file, then renames each .partial to its name, then syncs
 * the folder so the renames are durable too. */
static int files_commit(struct conv *c, struct vise_err *e)
{
	for (size_t i = 0; i < c->nfiles; i++)
		if (src_sync(c->files[i].s, e) < 0)
			return -e->code;
	for (size_t i = 0; i < c->nfiles; i++) {
		struct cfile *f = &c->files[i];

		if (!f->partial)
			continue;
		if (rename(f->partial, f->final) < 0)
			return err_errno(e, errno, "rename '%s' to '%s'",
					 f->partial, f->final);
		free(f->partial);
		f->partial = NULL;
	}
	char *dir = conv_strdup(c, c->files[0].final);
	char *slash = dir ? strrchr(dir, '/') : NULL;

	if (slash)
		slash[slash == dir] = 0;
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

/* ---- the copy ---- */

static int rec_kind(const struct conv *c, const struct map_rec *r)
{
	if (c->top_only) {
		/* what the source's backing layers hold, the output's
		 * backing file holds too: qemu-img's rule for -B */
		if (!r->present || r->depth > 0)
			return R_HOLE;
		return r->zero ? R_ZERO : R_DATA;
	}
	return (r->zero || !r->present || !r->data) ? R_HOLE : R_DATA;
}

/* The source's map record at off, answered from off and cut at copy_end.
 * The last record is kept: a chunk asks about the same range up to three
 * times (the hole skip, then both passes of chunk_load), and on a raw
 * source every question is two lseek calls. */
static int map_at(struct conv *c, uint64_t off, struct map_rec *r,
		  struct vise_err *e)
{
	struct map_rec *m = &c->map_last;

	if (!m->length || off < m->start || off - m->start >= m->length) {
		if (image_map_rec(c->img, off, m, e) < 0) {
			m->length = 0;
			return -e->code;
		}
		if (m->length == 0)
			return err_set(e, VE_FORMAT, "map of '%s' stalls at 0x%" PRIx64,
				       c->img->path, off);
		if (m->start > off || m->start + m->length <= off) {
			m->length = 0;
			return err_set(e, VE_FORMAT, "map of '%s' misses 0x%" PRIx64,
				       c->img->path, off);
		}
	}
	*r = *m;
	if (r->has_offset)
		r->offset += off - m->start;
	r->start = off;
	r->length = m->start + m->length - off;
	if (r->length > c->copy_end - off)
		r->length = c->copy_end - off;
	return 0;
}

/* Reads [off, off+len) of chunk k (ranges the caller decided to write). */
static int fill(struct conv *c, struct chunk *k, uint64_t off, uint64_t len,
		int kind, struct vise_err *e)
{
	uint8_t *p = k->buf + (off - k->base);

	if (kind == R_DATA || (kind == R_HOLE && c->top_only)) {
		if (image_read(c->img, off, p, (size_t)len, e) < 0)
			return -e->code;
	} else {
		memset(p, 0, (size_t)len);
	}
	return 0;
}

/* Pass 1 of chunk_load: which units of [base, end) hold anything that
 * must be written. */
static int mark_needed(struct conv *c, struct chunk *k, struct vise_err *e)
{
	uint64_t base = k->base, end = k->end, off;
	struct map_rec r;

	memset(k->need, c->sparse == 0,
	       (size_t)((end - base + c->unit - 1) / c->unit));
	for (off = base; off < end && off < c->copy_end; off += r.length) {
		if (map_at(c, off, &r, e) < 0)
			return -e->code;
		if (r.length > end - off)
			r.length = end - off;
		if (rec_kind(c, &r) == R_HOLE)
			continue;
		for (uint64_t u = (off - base) / c->unit;
		     u * c->unit < off + r.length - base; u++)
			k->need[u] = 1;
	}
	return 0;
}

/* Fills chunk k's [base, end): marks which units must be written and
 * reads the bytes of those. */
static int chunk_load(struct conv *c, struct chunk *k, struct vise_err *e)
{
	uint64_t base = k->base, end = k->end, off;
	struct map_rec r;

	if (mark_needed(c, k, e) < 0)
		return -e->code;
	if (end > c->copy_end) {
		/* past a source shorter than the output: zeros */
		uint64_t z = c->copy_end > base ? c->copy_end : base;

		memset(k->buf + (z - base), 0, (size_t)(end - z));
	}
	/* pass 2: read what the needed units hold */
	for (off = base; off < end && off < c->copy_end; off += r.length) {
		if (map_at(c, off, &r, e) < 0)
			return -e->code;
		if (r.length > end - off)
			r.length = end - off;
		int kind = rec_kind(c, &r);
		uint64_t a = off, rend = off + r.length;

		while (a < rend) {
			size_t u = (size_t)((a - base) / c->unit);
			uint64_t ue = base + (uint64_t)(u + 1) * c->unit;
			uint64_t b = ue < rend ? ue : rend;

			/* runs of needed units in one read */
			while (b < rend && k->need[u] &&
			       k->need[(b - base) / c->unit]) {
				ue = b + c->unit;
				b = ue < rend ? ue : rend;
			}
			if (k->need[u] && fill(c, k, a, b - a, kind, e) < 0)
				return -e->code;
			a = b;
		}
	}
	return 0;
}

/* The piece zero detection looks at inside a needed unit: the whole unit,
 * or, for a writer that takes runs inside its units (writer.sub_unit),
 * -S rounded up to that run size, so that zero runs inside a partly
 * written VHD/VHDX/VDI block stay holes as qemu-img leaves them. */
static uint64_t zero_piece(const struct conv *c)
{
	uint32_t sub = c->w.sub_unit;

	if (!sub || !c->sparse || c->top_only || sub >= c->unit)
		return c->unit;
	return (c->sparse + sub - 1) / sub * sub;
}

/* Piece i of chunk k: its guest offset and length, or false past the
 * chunk's end.  Pieces are numbered unit by unit, c->per_unit to a unit
 * (the last one of a unit may be short). */
static bool piece_at(const struct conv *c, const struct chunk *k, uint64_t i,
		     uint64_t *off, uint64_t *len)
{
	uint64_t u = k->base + i / c->per_unit * c->unit;
	uint64_t o = u + i % c->per_unit * c->piece;
	uint64_t uend = k->end - u < c->unit ? k->end : u + c->unit;

	if (u >= k->end || o >= uend)
		return false;
	*off = o;
	*len = uend - o < c->piece ? uend - o : c->piece;
	return true;
}

/* Which pieces of chunk k are written: the needed ones, less those that
 * are all zero when -S drops zeros (with -B a zero piece is written: it
 * hides the backing file's). */
static void mark_kept(struct conv *c, struct chunk *k)
{
	bool drop_zero = c->sparse && !c->top_only;
	uint64_t off, len;

	for (uint64_t i = 0; piece_at(c, k, i, &off, &len); i++) {
		bool need = k->need[(off - k->base) / c->unit];

		k->keep[i] = need && !(drop_zero &&
			     buf_is_zero(k->buf + (off - k->base), (size_t)len));
	}
}

/* The pipeline's producer (a thread of its own): maps, reads and
 * zero-scans the next chunk from c->read_off, or finds the hole there to
 * step over.  Only this function touches the source image once the copy
 * runs. */
static bool produce(void *ctx, void *item)
{
	struct conv *c = ctx;
	struct chunk *k = item;
	uint64_t off = c->read_off;
	struct map_rec r;

	k->err = (struct vise_err){ 0 };
	k->base = off;
	if (off >= c->copy_end) {
		k->kind = CH_END;
		return true;
	}
	if (c->sparse) {
		if (map_at(c, off, &r, &k->err) < 0)
			goto fail;
		/* a long hole is skipped whole, to its last whole unit */
		uint64_t to = off + r.length;

		if (to < c->copy_end)
			to -= to % c->unit;
		else
			to = c->w.size;
		if (rec_kind(c, &r) == R_HOLE && to > off) {
			k->kind = CH_SKIP;
			k->end = c->read_off = to;
			return to >= c->w.size;
		}
	}
	k->end = off + c->chunk < c->w.size ? off + c->chunk : c->w.size;
	if (chunk_load(c, k, &k->err) < 0)
		goto fail;
	if (!c->compress)
		mark_kept(c, k);
	k->kind = CH_DATA;
	c->read_off = k->end;
	return k->end >= c->w.size;
fail:
	k->kind = CH_ERROR;
	return true;
}

static int put(struct conv *c, uint64_t off, const uint8_t *p, size_t len,
	       struct vise_err *e)
{
	if (c->w.ops->write(&c->w, off, p, len, e) < 0)
		return -e->code;
	atomic_fetch_add(&c->job.written, len);
	return 0;
}

/* Writes chunk k's kept pieces, neighbours merged into one write. */
static int chunk_write_plain(struct conv *c, struct chunk *k,
			     struct vise_err *e)
{
	uint64_t run_off = 0, run_len = 0, off, len;

	for (uint64_t i = 0; piece_at(c, k, i, &off, &len); i++) {
		if (k->keep[i] && run_len && run_off + run_len == off) {
			run_len += len;
			continue;
		}
		if (run_len && put(c, run_off, k->buf + (run_off - k->base),
				   (size_t)run_len, e) < 0)
			return -e->code;
		run_off = off;
		run_len = k->keep[i] ? len : 0;
	}
	if (run_len && put(c, run_off, k->buf + (run_off - k->base),
			   (size_t)run_len, e) < 0)
		return -e->code;
	return 0;
}

/* -c: every needed cluster is compressed on the pool, then written in
 * guest order; a cluster that does not shrink is written plainly. */
static int chunk_write_compressed(struct conv *c, struct chunk *k,
				  struct vise_err *e)
{
	uint32_t g = c->w.granularity;
	size_t n = 0;

	for (uint64_t off = k->base; off < k->end; off += g) {
		size_t len = (size_t)(k->end - off < g ? k->end - off : g);
		const uint8_t *p = k->buf + (off - k->base);

		if (!k->need[(off - k->base) / c->unit])
			continue;
		if (buf_is_zero(p, len) && !c->top_only)
			continue;
		c->tasks[n] = (struct ctask){ p, len, c->cbuf + (off - k->base), 0 };
		n++;
	}
	pool_run(&c->pool, c->tasks, n);
	for (size_t i = 0; i < n; i++) {
		struct ctask *t = &c->tasks[i];
		uint64_t off = k->base + (uint64_t)(t->in - k->buf);

		if (t->clen && t->clen < t->len) {
			if (c->w.ops->write_compressed(&c->w, off, t->out, t->clen,
						       t->len, e) < 0)
				return -e->code;
			atomic_fetch_add(&c->job.written, t->clen);
		} else if (put(c, off, t->in, t->len, e) < 0) {
			return -e->code;
		}
	}
	return 0;
}

/* raw to raw on a file system that shares extents (btrfs, XFS with
 * reflink): the whole file is cloned, holes and all, in no time.  Where
 * it cannot, the copy reads and zero-detects like any other (a
 * copy_file_range of the data extents would be no faster on a file
 * system without sharing, and would keep zeros that -S asks to drop). */
static bool try_clone(struct conv *c)
{
	if (ioctl(c->clone_out, FICLONE, c->clone_in) < 0)
		return false;
	atomic_fetch_add(&c->job.written, c->copy_end);
	return true;
}

const char *convert_job_note(const struct job *j)
{
	const struct conv *c = j->priv;
	return c && c->w.note[0] ? c->w.note : NULL;
}

static int conv_finish(struct conv *c, struct vise_err *e)
{
	if (c->w.ops->finish(&c->w, e) < 0)
		return -e->code;
	if (files_commit(c, e) < 0)
		return -e->code;
	snprintf(c->job.result, sizeof c->job.result,
		 "wrote '%s': %" PRIu64 " bytes of guest data in %.1f s",
		 c->files[0].final, (uint64_t)atomic_load(&c->job.written),
		 job_elapsed(&c->job));
	return 0;
}

/* -r: while the copy is ahead of the rate, a step only sleeps, a slice at
 * a time, so that a cancel is still seen within a fifth of a second. */
static bool throttle(struct conv *c)
{
	if (!c->rate)
		return false;
	double ahead = (double)c->off / (double)c->rate - job_elapsed(&c->job);
	if (ahead <= 0)
		return false;
	if (ahead > 0.2)
		ahead = 0.2;
	struct timespec ts = { 0, (long)(ahead * 1e9) };
	nanosleep(&ts, NULL);
	return true;
}

/* The copy starts: the producer gets its thread, unless a chunk is too
 * big to hold twice (or no thread starts: then it runs in the step). */
static void copy_begin(struct conv *c)
{
	bool threaded = c->chunk <= READAHEAD_MAX;

	if (pipeline_start(&c->pipe, produce, c, &c->ch[0], &c->ch[1],
			   threaded) < 0)
		pipeline_start(&c->pipe, produce, c, &c->ch[0], &c->ch[1], false);
	c->pipe_up = true;
}

/* Hands the next chunk to the writer, or steps over a hole. */
static int copy_next(struct conv *c, struct vise_err *e)
{
	struct chunk *k = pipeline_take(&c->pipe);
	int rc = 0;

	switch (k->kind) {
	case CH_ERROR:
		*e = k->err;
		return -e->code;
	case CH_END:
		c->off = c->w.size;
		break;
	case CH_SKIP:
		c->off = k->end;
		break;
	case CH_DATA:
		rc = c->compress ? chunk_write_compressed(c, k, e)
				 : chunk_write_plain(c, k, e);
		c->off = k->end;
		break;
	}
	pipeline_give_back(&c->pipe);
	return rc;
}

static int conv_step(struct job *j, struct vise_err *e)
{
	struct conv *c = (struct conv *)j;

	if (throttle(c))
		return 0;
	if (c->off >= c->w.size) {
		if (conv_finish(c, e) < 0)
			return -e->code;
		atomic_store(&j->done, c->w.size);
		return 1;
	}
	if (c->clone_in >= 0) {
		bool cloned = try_clone(c);

		c->clone_in = -1;
		if (cloned) {
			c->off = c->w.size;
			atomic_store(&j->done, c->off);
			return 0;
		}
	}
	if (!c->pipe_up)
		copy_begin(c);
	if (copy_next(c, e) < 0)
		return -e->code;
	atomic_store(&j->done, c->off);
	return 0;
}

static void conv_cleanup(struct job *j, bool ok)
{
	struct conv *c = (struct conv *)j;

	if (c->pipe_up) {
		pipeline_stop(&c->pipe);
		c->pipe_up = false;
	}
	if (c->pool_up) {
		pool_stop(&c->pool);
		c->pool_up = false;
	}
	if (c->begun && c->w.ops->release) {
		c->w.ops->release(&c->w);
		c->begun = false;
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		struct cfile *f = &c->files[i];

		src_put(f->s);
		f->s = NULL;
		if (!ok && f->partial)
			unlink(f->partial);
		free(f->partial);
		f->partial = NULL;
	}
	c->nfiles = 0;
	if (c->img) {
		image_close(c->img);
		c->img = NULL;
	}
}

static void conv_free(struct job *j)
{
	struct conv *c = (struct conv *)j;

	if (c->nfiles || c->img || c->begun)
		conv_cleanup(j, false);
	for (int i = 0; i < 2; i++) {
		free(c->ch[i].buf);
		free(c->ch[i].need);
		free(c->ch[i].keep);
	}
	free(c->cbuf);
	free(c->tasks);
	free((void *)c->wo.keys);
	free((void *)c->wo.values);
	for (size_t i = 0; i < c->nstrs; i++)
		free(c->strs[i]);
	free(c->strs);
	free(c->files);
	free(c);
}

/* ---- setting up ---- */

static int copy_opts(struct conv *c, const struct convert_opts *o,
		     struct vise_err *e)
{
	const char **k = calloc(o->wo.n + 1, sizeof *k);
	const char **v = calloc(o->wo.n + 1, sizeof *v);

	c->wo = o->wo;
	c->wo.keys = k;
	c->wo.values = v;
	if (!k || !v)
		return err_set(e, VE_NOMEM, "out of memory");
	for (size_t i = 0; i < o->wo.n; i++) {
		k[i] = conv_strdup(c, o->wo.keys[i]);
		v[i] = conv_strdup(c, o->wo.values[i]);
		if (!k[i] || !v[i])
			return err_set(e, VE_NOMEM, "out of memory");
	}
	/* -o backing_file=X means what -B X means, as in qemu-img: the
	 * output is an overlay, so only the top layer is copied. */
	const char *b = o->wo.backing ? o->wo.backing : wopt_get(&o->wo, "backing_file");
	const char *bf = o->wo.backing_fmt ? o->wo.backing_fmt
					   : wopt_get(&o->wo, "backing_fmt");
	c->wo.backing = conv_strdup(c, b);
	c->wo.backing_fmt = conv_strdup(c, bf);
	return 0;
}

/* -B names the backing file as the output will store it, so a relative
 * name is relative to DST's folder.  Like qemu-img 7.2: -F is required
 * (a probed backing format is how a raw file gets read as something
 * else), and a backing file that does not open is refused (the user named
 * it, so the folder rule for names read from images does not apply). */
static int check_backing(struct conv *c, const char *dst, struct vise_err *e)
{
	struct open_opts oo = { .format = c->wo.backing_fmt, .allow_external = true };
	struct image *b = NULL;
	char *path;
	int r;

	if (!c->wo.backing_fmt)
		return err_set(e, VE_USAGE, "-B '%s' needs its format (-F FMT): a "
			       "probed backing format is refused, as by qemu-img",
			       c->wo.backing);
	path = path_combine(dst, c->wo.backing);
	r = image_open(path, &oo, &b, e);
	if (r < 0)
		err_ctx(e, "-B '%s' (as seen from the output: '%s')",
			c->wo.backing, path);
	image_close(b);
	free(path);
	return r < 0 ? -e->code : 0;
}

static unsigned online_cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > CONVERT_THREADS_MAX ? CONVERT_THREADS_MAX
						   : (unsigned)n;
}

/* -n: DST must exist; raw is written in place (what qemu-img -n does),
 * other formats are rebuilt beside it and renamed over it. */
static int check_existing(const struct convert_opts *o, const struct driver *d,
			  struct image *src, bool *in_place, struct vise_err *e)
{
	struct open_opts oo = { .format = d->name, .no_backing = true };
	struct image *dst;

	if (image_open(o->dst, &oo, &dst, e) < 0)
		return err_ctx(e, "-n: open the target '%s'", o->dst);
	if (dst->virtual_size < src->virtual_size) {
		uint64_t have = dst->virtual_size;

		image_close(dst);
		return err_set(e, VE_USAGE,
			       "-n: target '%s' is smaller than the source "
			       "(%" PRIu64 " < %" PRIu64 " bytes)",
			       o->dst, have, src->virtual_size);
	}
	image_close(dst);
	*in_place = !strcmp(d->name, "raw");
	return 0;
}

static int conv_buffers(struct conv *c, const struct convert_opts *o,
			struct vise_err *e)
{
	uint32_t g = c->w.granularity;
	uint64_t s = o->sparse;

	if (!g || g > UNIT_MAX)
		return err_set(e, VE_UNSUPPORTED, "writer granularity %u out of range", g);
	c->sparse = s;
	c->unit = s > g ? (uint32_t)((s + g - 1) / g * g) : g;
	c->chunk = c->unit >= CHUNK_MIN ? c->unit
					: (CHUNK_MIN + c->unit - 1) / c->unit * c->unit;
	c->piece = zero_piece(c);
	c->per_unit = (c->unit + c->piece - 1) / c->piece;
	for (int i = 0; i < (c->chunk <= READAHEAD_MAX ? 2 : 1); i++) {
		size_t units = c->chunk / c->unit + 1;
		struct chunk *k = &c->ch[i];

		k->buf = malloc(c->chunk);
		k->need = malloc(units);
		k->keep = malloc(units * c->per_unit);
		if (!k->buf || !k->need || !k->keep)
			return err_set(e, VE_NOMEM, "out of memory for a %zu byte buffer",
				       c->chunk);
	}
	if (!c->compress)
		return 0;
	c->cbuf = malloc(c->chunk);
	c->tasks = calloc(c->chunk / g + 1, sizeof *c->tasks);
	if (!c->cbuf || !c->tasks)
		return err_set(e, VE_NOMEM, "out of memory for compression buffers");
	if (pool_start(&c->pool, &c->w, o->threads ? o->threads : online_cores(), e) < 0)
		return -e->code;
	c->pool_up = true;
	return 0;
}

static int conv_open(struct conv *c, const struct convert_opts *o,
		     struct vise_err *e)
{
	struct open_opts so = { .format = o->src_fmt,
				.allow_external = o->allow_external,
				.snapshot = conv_strdup(c, o->snapshot) };
	const struct driver *d = driver_find(o->dst_fmt);
	bool in_place = false;
	struct src *out;

	/* a container with a writer (ova) wraps a disk writer */
	if (!d || (d->kind != DRV_DISK && !d->writer))
		return err_set(e, VE_USAGE, "unknown output format '%s'", o->dst_fmt);
	if (!d->writer)
		return err_set(e, VE_UNSUPPORTED, "cannot write format '%s'", d->name);
	if (image_open(o->src, &so, &c->img, e) < 0)
		return -e->code;
	image_read_sequentially(c->img);
	if (o->existing && check_existing(o, d, c->img, &in_place, e) < 0)
		return -e->code;
	if (c->wo.backing && check_backing(c, o->dst, e) < 0)
		return -e->code;
	c->force = o->force || o->existing;
	if (file_add(c, o->dst, in_place, &out, e) < 0)
		return -e->code;
	c->w.ops = d->writer;
	c->w.out = out;
	c->w.path = c->files[0].final;
	c->w.size = c->img->virtual_size;
	c->w.create_file = conv_create_file;
	c->w.engine = c;
	c->top_only = c->wo.backing != NULL;
	c->rate = o->rate;
	c->compress = c->wo.compress && d->writer->compress &&
		      d->writer->write_compressed;
	c->begun = true;       /* cleanup releases even a failed begin */
	if (d->writer->begin(&c->w, &c->wo, e) < 0)
		return err_ctx(e, "%s", d->name);
	if (c->w.compress_always && d->writer->compress &&
	    d->writer->write_compressed)
		c->compress = true;
	c->copy_end = c->img->virtual_size < c->w.size ? c->img->virtual_size
						       : c->w.size;
	c->clone_in = -1;
	if (!strcmp(d->name, "raw") && !strcmp(c->img->drv->name, "raw") &&
	    !c->img->backing && !in_place && o->sparse &&
	    c->img->virtual_size == c->w.size)
		c->clone_in = src_fd(c->img->src);
	c->clone_out = src_fd(out);
	if (c->clone_out < 0)
		c->clone_in = -1;
	return conv_buffers(c, o, e);
}

int convert_job_new(const struct convert_opts *o, struct job **out,
		    struct vise_err *e)
{
	struct conv *c = calloc(1, sizeof *c);

	if (!c)
		return err_set(e, VE_NOMEM, "out of memory");
	c->job.step = conv_step;
	c->job.cleanup = conv_cleanup;
	c->job.free = conv_free;
	c->job.priv = c;
	snprintf(c->job.name, sizeof c->job.name, "convert %s -> %s",
		 o->src, o->dst);
	snprintf(c->job.output, sizeof c->job.output, "%s", o->dst);
	if (o->sparse > CONVERT_SPARSE_MAX) {
		conv_free(&c->job);
		return err_set(e, VE_USAGE, "-S %" PRIu64 ": at most %u bytes",
			       o->sparse, CONVERT_SPARSE_MAX);
	}
	if (copy_opts(c, o, e) < 0 || conv_open(c, o, e) < 0) {
		conv_cleanup(&c->job, false);
		conv_free(&c->job);
		return -e->code;
	}
	atomic_store(&c->job.total, c->w.size);
	clock_gettime(CLOCK_MONOTONIC, &c->job.start);
	*out = &c->job;
	return 0;
}
