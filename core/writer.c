/* -o option helpers shared by the writers (core/writer.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "core/convert.h"
#include "core/writer.h"

const char *wopt_get(const struct writer_opts *o, const char *key)
{
	const char *v = NULL;

	/* the last one wins, as in qemu-img */
	for (size_t i = 0; o && i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			v = o->values[i];
	return v;
}

int wopt_validate(const struct writer_opts *o, const struct wopt_desc *desc,
		  const char *fmt, struct vise_err *e)
{
	for (size_t i = 0; o && i < o->n; i++) {
		const struct wopt_desc *d = desc;

		while (d && d->name && strcmp(d->name, o->keys[i]))
			d++;
		if (!d || !d->name)
			return err_set(e, VE_USAGE,
				       "invalid option '%s' for format '%s' (see -o help)",
				       o->keys[i], fmt);
		if (d->type == WOPT_ENUM) {
			size_t n = strlen(o->values[i]);
			const char *p = d->values;
			bool ok = false;

			while (p && *p && !ok) {
				const char *bar = strchr(p, '|');
				size_t l = bar ? (size_t)(bar - p) : strlen(p);

				ok = l == n && !strncmp(p, o->values[i], n);
				p = bar ? bar + 1 : p + l;
			}
			if (!ok)
				return err_set(e, VE_USAGE,
					       "invalid value '%s' for option '%s' (one of %s)",
					       o->values[i], d->name, d->values);
		}
	}
	return 0;
}

int wopt_bool(const struct writer_opts *o, const char *key, bool *out,
	      struct vise_err *e)
{
	const char *v = wopt_get(o, key);

	if (!v)
		return 0;
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes") ||
	    !strcmp(v, "1") || !*v)
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") ||
		 !strcmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return err_set(e, VE_USAGE,
			       "invalid value '%s' for option '%s' (on or off)",
			       v, key);
	return 0;
}

int wopt_size(const struct writer_opts *o, const char *key, uint64_t *out,
	      struct vise_err *e)
{
	const char *v = wopt_get(o, key);

	if (!v)
		return 0;
	if (parse_size(v, out) < 0)
		return err_set(e, VE_USAGE, "invalid size '%s' for option '%s'",
			       v, key);
	return 0;
}

int wopt_uint(const struct writer_opts *o, const char *key, uint64_t *out,
	      struct vise_err *e)
{
	const char *v = wopt_get(o, key);
	char *end;
	unsigned long long n;

	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *end || *v == '-')
		return err_set(e, VE_USAGE, "invalid number '%s' for option '%s'",
			       v, key);
	*out = n;
	return 0;
}

/* ---- -o parsing for the commands ---- */

static char *unescape_item(const char *s, size_t len)
{
	char *o = malloc(len + 1), *p = o;

	if (!o)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		*p++ = s[i];
		if (s[i] == ',' && i + 1 < len && s[i + 1] == ',')
			i++;
	}
	*p = 0;
	return o;
}

int wopt_list_add(struct wopt_list *l, const char *arg, struct vise_err *e)
{
	const char *p = arg;

	while (*p) {
		const char *q = p;

		/* an item ends at a single comma; ",," is a literal one */
		while (*q && !(*q == ',' && q[1] != ','))
			q += (*q == ',' && q[1] == ',') ? 2 : 1;
		char *item = unescape_item(p, (size_t)(q - p));

		if (!item)
			return err_set(e, VE_NOMEM, "out of memory");
		if (!strcmp(item, "help") || !strcmp(item, "?")) {
			l->help = true;
			free(item);
		} else if (*item) {
			char *eq = strchr(item, '=');

			if (l->n >= WOPT_LIST_MAX) {
				free(item);
				return err_set(e, VE_USAGE, "too many -o options");
			}
			if (!eq) {
				free(item);
				return err_set(e, VE_USAGE,
					       "invalid option '%.*s': KEY=VALUE expected",
					       (int)(q - p), p);
			}
			*eq = 0;
			l->store[l->n] = item;
			l->keys[l->n] = item;
			l->values[l->n] = eq + 1;
			l->n++;
		} else {
			free(item);
		}
		p = *q ? q + 1 : q;
	}
	return 0;
}

void wopt_list_free(struct wopt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->store[i]);
	l->n = 0;
}

void wopt_print_help(FILE *fp, const char *fmt, const struct writer_ops *w)
{
	static const char *const types[] = { "bool (on/off)", "size", "number",
					     "str", "enum" };

	fprintf(fp, "Supported options for %s:\n", fmt);
	for (const struct wopt_desc *d = w ? w->options : NULL; d && d->name; d++) {
		fprintf(fp, "  %-24s <%s>\n", d->name,
			d->type == WOPT_ENUM && d->values ? d->values : types[d->type]);
		if (d->help)
			fprintf(fp, "    %s%s%s%s\n", d->help, d->def ? " (default: " : "",
				d->def ? d->def : "", d->def ? ")" : "");
	}
}

int write_run_flush(struct src *out, struct write_run *r, struct vise_err *e)
{
	int rc = r->len ? src_write(out, r->host, r->p, r->len, e) : 0;

	r->len = 0;
	return rc;
}

int write_run_add(struct src *out, struct write_run *r, uint64_t host,
		  const uint8_t *p, size_t n, struct vise_err *e)
{
	if (r->len && (r->host + r->len != host || r->p + r->len != p) &&
	    write_run_flush(out, r, e) < 0)
		return -e->code;
	if (!r->len) {
		r->host = host;
		r->p = p;
	}
	r->len += n;
	return 0;
}
