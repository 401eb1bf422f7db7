/* The error record: a message and a short chain of context lines. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static int err_vset(struct vise_err *e, int code, const char *fmt, va_list ap)
{
	if (!e)
		return -code;
	e->code = code;
	e->nctx = 0;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	return -code;
}

int err_set(struct vise_err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(e, code, fmt, ap);
	va_end(ap);
	return r;
}

int err_errno(struct vise_err *e, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(e, VE_IO, fmt, ap);
	va_end(ap);
	if (e) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof e->msg - n, ": %s", strerror(errnum));
	}
	return r;
}

int err_ctx(struct vise_err *e, const char *fmt, ...)
{
	if (!e)
		return -VE_IO;
	if (e->nctx < VISE_ERR_CTX_MAX) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->ctx[e->nctx], sizeof e->ctx[0], fmt, ap);
		va_end(ap);
		e->nctx++;
	}
	return -(e->code ? e->code : VE_IO);
}

void err_clear(struct vise_err *e)
{
	if (e)
		memset(e, 0, sizeof *e);
}

/* Outermost context first: "open 'a.qcow2': read L1: past end". */
const char *err_str(const struct vise_err *e, char *buf, size_t len)
{
	size_t n = 0;
	if (!len)
		return buf;
	buf[0] = 0;
	for (int i = e->nctx - 1; i >= 0 && n < len; i--) {
		int w = snprintf(buf + n, len - n, "%s: ", e->ctx[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
	if (n < len)
		snprintf(buf + n, len - n, "%s", e->msg[0] ? e->msg : "unknown error");
	return buf;
}
