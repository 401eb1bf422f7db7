/* OVA internals shared by the reader (formats/ova.c) and `vise check`
 * (formats/tar_check.c): the appliance's parts and its manifest. */
#ifndef VISE_FORMATS_OVA_H
#define VISE_FORMATS_OVA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/sha.h"
#include "formats/ovf.h"
#include "formats/tar.h"

#define OVA_MF_MAX (16u << 20)      /* bytes of manifest read */
#define OVA_MF_ENTRIES_MAX 4096     /* manifest lines kept */
#define OVA_HASH_CHUNK (1u << 20)   /* bytes hashed per read */
#define OVA_MF_FINDINGS_MAX 32      /* per-entry findings, then a count */

enum mf_status { MF_UNCHECKED, MF_OK, MF_MISMATCH, MF_MISSING, MF_UNREADABLE };

struct mf_entry {
	char *file;
	bool sha256;                 /* else SHA-1 */
	char hex[2 * SHA256_LEN + 1];
	enum mf_status status;
};

struct ova {
	struct ovf_appliance app;
	const struct tar_entry *ovf, *mf, *cert;
	struct mf_entry *mf_v;
	size_t mf_n;
	bool verified;
};

struct check_ctx;

/* Hashes every member the manifest names (streamed in OVA_HASH_CHUNK
 * reads) and records each that does not verify as a corruption with the
 * digest found and the one the manifest expects.  Once per image: later
 * calls return at once.  cc (may be NULL) gets progress in bytes and is
 * polled for cancel: <0 then, with e set. */
int ova_verify_manifest(struct image *img, struct check_ctx *cc,
			struct vise_err *e);

/* `vise check` of an OVA: the tar's checks, then the appliance's
 * (tar_check.c). */
int ova_check(struct image *img, struct check_ctx *cc, struct vise_err *e);

#endif
