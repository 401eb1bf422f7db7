/* Probing: every driver scores the file's first PROBE_HEAD bytes and its
 * last PROBE_TAIL bytes.  All hits are reported, so a polyglot is visible. */
#include <string.h>

#include "core/driver.h"

static void insert_sorted(struct probe_hit *hits, int n, int max,
			  const struct driver *d, int score)
{
	int i = n < max ? n : max - 1;
	if (n >= max && hits[i].score >= score)
		return;
	while (i > 0 && hits[i - 1].score < score) {
		hits[i] = hits[i - 1];
		i--;
	}
	hits[i] = (struct probe_hit){ d, score };
}

int probe_src(struct src *src, struct probe_hit *hits, int max,
	      struct vise_err *e)
{
	uint8_t head[PROBE_HEAD], tail[PROBE_TAIL];   /* on the stack: probes may run on several threads */
	long long hlen = src_read_upto(src, 0, head, sizeof head, e);
	if (hlen < 0)
		return (int)hlen;
	size_t tlen = src->size < PROBE_TAIL ? (size_t)src->size : PROBE_TAIL;
	if (tlen && src_read(src, src->size - tlen, tail, tlen, e) < 0)
		return -VE_IO;
	int n = 0;
	for (const struct driver *const *d = vise_drivers; *d; d++) {
		if (!(*d)->probe)
			continue;
		int score = (*d)->probe(head, (size_t)hlen, tail, tlen, src->size);
		if (score <= 0)
			continue;
		if (max > 0)
			insert_sorted(hits, n, max, *d, score > 100 ? 100 : score);
		n++;
	}
	return n;
}
