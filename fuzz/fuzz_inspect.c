/* `vise inspect`, the safety verdict an image service asks before it hands
 * an upload to a hypervisor: the input is the upload, in no claimed format,
 * so every probe, every driver's open, containers' members and images
 * hidden in partitions are reached the way the command reaches them.
 *
 * inspect opens its image by path, so the input is written to a file of
 * its own in a folder of ours (vise-fuzz-inspect-UID/upload under TMPDIR):
 * a name the image holds can only find that file again (a loop), and
 * nothing outside the folder is opened without --allow-external.  One
 * fuzzer at a time (the file name is fixed). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cmd.h"
#include "core/sink.h"
#include "fuzz/fuzz.h"

static char upload[96];
static FILE *devnull;

static void inspect_init(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[80];
	struct stat st;

	if (devnull)
		return;
	snprintf(dir, sizeof dir, "%s/vise-fuzz-inspect-%u",
		 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp", (unsigned)getuid());
	mkdir(dir, 0700);
	snprintf(upload, sizeof upload, "%s/upload", dir);
	devnull = fopen("/dev/null", "w");
	if (!devnull || lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != getuid()) {
		fprintf(stderr, "fuzz_inspect: '%s' must be a folder of ours\n", dir);
		abort();
	}
}

static int write_upload(const uint8_t *data, size_t size)
{
	int fd = open(upload, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
	size_t done = 0;

	if (fd < 0)
		return -1;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	return close(fd);
}

static void run_inspect(bool json)
{
	struct sink s;
	struct cmd_ctx ctx = { 0 };
	char cmd[] = "inspect", opt[] = "--json";
	char *argv[4];
	int argc = 0;

	sink_init(&s, devnull, false);
	ctx.out = &s;
	ctx.outfp = devnull;
	ctx.err = devnull;
	argv[argc++] = cmd;
	if (json)
		argv[argc++] = opt;
	argv[argc++] = upload;
	argv[argc] = NULL;
	command_run(&ctx, argc, argv);
	fflush(devnull);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	inspect_init();
	if (!command_find("inspect") || write_upload(data, size) < 0)
		return 0;
	run_inspect(true);
	run_inspect(false);
	return 0;
}
