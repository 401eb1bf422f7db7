#!/bin/sh
# Regenerates the field tables in doc/formats/*.md from the structure tables
# in formats/ (through `vise explain --markdown NAME`), between the lines
#   <!-- BEGIN GENERATED: vise explain --markdown NAME -->
#   <!-- END GENERATED -->
# With --check it changes nothing and exits 1 when a page is out of date.
# Usage: doc/gen-formats.sh [--check] [VISE]
check=no
[ "${1:-}" = --check ] && { check=yes; shift; }
VISE=${1:-./vise}
status=0
for page in doc/formats/*.md; do
	grep -q '^<!-- BEGIN GENERATED: vise explain --markdown ' "$page" || continue
	tmp="$page.tmp"
	awk -v vise="$VISE" '
		/^<!-- BEGIN GENERATED: vise explain --markdown / {
			print
			topic = $7
			cmd = vise " explain --markdown " topic
			while ((cmd | getline line) > 0) print line
			if (close(cmd) != 0) { print "gen-formats: " cmd " failed" > "/dev/stderr"; exit 2 }
			skipping = 1
			next
		}
		/^<!-- END GENERATED -->/ { skipping = 0 }
		!skipping { print }
	' "$page" > "$tmp" || { rm -f "$tmp"; exit 2; }
	if cmp -s "$page" "$tmp"; then
		rm -f "$tmp"
	elif [ $check = yes ]; then
		echo "$page: generated tables are out of date (run doc/gen-formats.sh)"
		rm -f "$tmp"
		status=1
	else
		mv "$tmp" "$page"
		echo "updated $page"
	fi
done
exit $status
