/* The host map: who owns each byte range of a layer's file.  Drivers only
 * claim ranges (image_walk with WALK_META|WALK_DATA|WALK_ALLOC); this one
 * generic builder sorts the claims and finds overlaps, claims past the end
 * of the file, and unclaimed ranges (leaked when the format's allocator
 * says they are in use, free otherwise), for every format alike.
 *
 * Memory: one record per run of adjacent claims with the same owner (data
 * clusters written in order coalesce), and past 64K runs whole data
 * clusters in two bits each (and the allocator's in one), so a fragmented
 * image costs a bitmap of its file, not a record per cluster
 * (core/hostmap.c). */
#ifndef VISE_HOSTMAP_H
#define VISE_HOSTMAP_H

#include "core/image.h"

/* Runs kept as records, with guest offsets, before whole data clusters
 * go to a bitmap instead. */
#define HOSTMAP_DETAILED_RUNS (64u << 10)

struct hm_range {
	uint64_t off, len;
	enum owner owner;          /* OWN_FREE/LEAKED/OVERLAP/PAST_EOF too */
	enum owner other;          /* OVERLAP: the second owner */
	const char *name;          /* the structure's name, when one */
	int64_t index;             /* of the first claim in the run, -1 none */
	bool has_guest;
	uint64_t guest_off;        /* of the range's first byte */
};

struct hostmap {
	struct hm_range *v;
	size_t n;
	uint64_t file_size;
	uint64_t bytes[OWN__COUNT];  /* totals per owner */
	size_t overlaps, leaked_ranges, past_eof;
	/* An image of more than 64K runs: whole data clusters were kept
	 * as a bitmap, and their ranges carry no guest offset or index. */
	bool guest_offsets_dropped;
};

/* Builds the map of one layer.  Findings for overlaps and claims past the
 * end are added to img->findings. */
int hostmap_build(struct image *img, struct hostmap *hm, struct vise_err *e);
void hostmap_free(struct hostmap *hm);

#endif
