/* Findings: recording, the cap, the dropped count. */
#include <string.h>

#include "core/findings.h"
#include "tests/unit/harness.h"

TEST(findings_record_fields)
{
	struct findings f;

	memset(&f, 0, sizeof f);
	finding_add(&f, SEV_ERROR, 0x28, "header", "l1_table_offset",
		    "L1 table at 0x%x past end of file", 0x500000);
	finding_add(&f, SEV_INFO, FINDING_NO_OFFSET, "snapshot 1", "",
		    "note");
	CHECK_EQ_U64(f.n, 2);
	CHECK_EQ_U64(f.dropped, 0);
	CHECK_EQ_U64(f.count[SEV_ERROR], 1);
	CHECK_EQ_U64(f.count[SEV_INFO], 1);
	CHECK_EQ_U64(f.count[SEV_WARN], 0);
	if (f.n == 2) {
		CHECK_EQ_U64(f.v[0].sev, SEV_ERROR);
		CHECK_EQ_U64(f.v[0].offset, 0x28);
		CHECK_STR(f.v[0].structure, "header");
		CHECK_STR(f.v[0].field, "l1_table_offset");
		CHECK_STR(f.v[0].msg, "L1 table at 0x500000 past end of file");
		CHECK_EQ_U64(f.v[1].offset, FINDING_NO_OFFSET);
	}
	findings_free(&f);
	CHECK_EQ_U64(f.n, 0);
}

TEST(findings_long_strings_truncate)
{
	struct findings f;
	char big[600];

	memset(&f, 0, sizeof f);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	finding_add(&f, SEV_WARN, 0, big, big, "%s", big);
	CHECK_EQ_U64(f.n, 1);
	if (f.n == 1) {
		CHECK(strlen(f.v[0].structure) < sizeof f.v[0].structure);
		CHECK(strlen(f.v[0].field) < sizeof f.v[0].field);
		CHECK(strlen(f.v[0].msg) < sizeof f.v[0].msg);
		CHECK(f.v[0].msg[0] == 'a');
	}
	findings_free(&f);
}

TEST(findings_cap_and_dropped)
{
	struct findings f;
	const size_t extra = 7;

	memset(&f, 0, sizeof f);
	for (size_t i = 0; i < FINDINGS_MAX + extra; i++)
		finding_add(&f, SEV_WARN, i, "L2 table", "entry", "n %zu", i);
	CHECK_EQ_U64(f.n, FINDINGS_MAX);
	CHECK_EQ_U64(f.dropped, extra);
	CHECK_EQ_U64(f.count[SEV_WARN], FINDINGS_MAX + extra);
	if (f.n == FINDINGS_MAX) {
		/* the first ones are kept, in order */
		CHECK_EQ_U64(f.v[0].offset, 0);
		CHECK_EQ_U64(f.v[FINDINGS_MAX - 1].offset, FINDINGS_MAX - 1);
	}
	findings_free(&f);
}

TEST(severity_names)
{
	CHECK(severity_name(SEV_INFO) != NULL);
	CHECK(severity_name(SEV_WARN) != NULL);
	CHECK(severity_name(SEV_ERROR) != NULL);
	CHECK(strcmp(severity_name(SEV_ERROR), severity_name(SEV_WARN)) != 0);
	CHECK(strcmp(severity_name(SEV_INFO), severity_name(SEV_WARN)) != 0);
}
