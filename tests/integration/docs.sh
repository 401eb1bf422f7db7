#!/bin/sh
# The documentation stays in step with the code: the generated field tables
# in doc/formats/*.md equal what the structure tables say now, and the man
# page and README name every command vise has.
. tests/lib.sh

if sh doc/gen-formats.sh --check "$VISE" > "$TMP/gen.out" 2>&1; then
	pass generated-tables
else
	fail generated-tables "$(head -c 400 "$TMP/gen.out" | tr '\n' ' ')"
fi

# Every format page with generated tables has a non-empty table.
for page in doc/formats/*.md; do
	name=$(basename "$page" .md)
	grep -q '^<!-- BEGIN GENERATED' "$page" || continue
	if grep -q '^| Offset | Size | Field' "$page"; then
		pass "tables-in/$name"
	else
		fail "tables-in/$name" "no field table between the GENERATED markers"
	fi
done

vok commands "$TMP/help.out" "$TMP/help.err" --help
cmds=$(sed -n 's/^ *\([a-z][a-z-]*\)  .*/\1/p' "$TMP/help.out" | grep -v '^usage')
if [ -z "$cmds" ]; then
	fail command-list "no command names found in 'vise --help'"
fi
for c in $cmds; do
	if grep -q "^\.SS.*\\b$c\\b\|^\.B $c\\b\|^\.TP.*$c" doc/vise.1 ||
		grep -q "fB$c\\\\fR" doc/vise.1; then
		pass "man/$c"
	else
		fail "man/$c" "doc/vise.1 does not describe the '$c' command"
	fi
	vrun "$TMP/h.out" "$TMP/h.err" "$c" --help
	if [ $rc -eq 0 ] && [ -s "$TMP/h.out" ]; then
		pass "help/$c"
	else
		fail "help/$c" "'vise $c --help' exited $rc or printed nothing"
	fi
done
done_testing
