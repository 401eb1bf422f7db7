/* The error model: functions that can fail return 0 or a negative VE_* code
 * and fill a caller-owned record.  Context lines are added on the way up, so
 * the final message reads "open 'disk.qcow2': L2 table at 0x50000 past end of
 * file".  The core never prints; front ends format the record. */
#ifndef VISE_ERR_H
#define VISE_ERR_H

#include <stddef.h>

enum {
	VE_OK = 0,
	VE_IO = 1,        /* the operating system said no */
	VE_NOMEM = 2,     /* allocation failed or a size passed a limit */
	VE_FORMAT = 3,    /* the image is corrupt or not what it claims */
	VE_UNSUPPORTED = 4,
	VE_USAGE = 5,     /* the caller asked for something meaningless */
	VE_NOTFOUND = 6,
	VE_REFUSED = 7,   /* a safety rule stopped us (external path, loop) */
	VE_RANGE = 8,     /* an offset or length outside the image */
	VE_CANCEL = 9,
};

#define VISE_ERR_CTX_MAX 4

struct vise_err {
	int code;
	char msg[256];
	int nctx;
	char ctx[VISE_ERR_CTX_MAX][160];
};

/* Sets code and message, clears context; returns -code so that callers can
 * write `return err_set(e, VE_FORMAT, "...")`.  e may be NULL. */
int err_set(struct vise_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, with strerror(errnum) appended as ": <text>". */
int err_errno(struct vise_err *e, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prepends a context line ("open 'x'"); returns -e->code. */
int err_ctx(struct vise_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void err_clear(struct vise_err *e);
/* "ctxN: ...: ctx1: msg" in git's style. */
const char *err_str(const struct vise_err *e, char *buf, size_t len);

#endif
