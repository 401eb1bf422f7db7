/* The TUI command pane's tokenizer (tui/verbs.c's tokenise(): words,
 * quotes, backslashes), which every line typed or pasted goes through,
 * and parse_size() on each word (trace's offset, -S sizes).
 *
 * tokenise() is static and has no other home, so this file includes
 * tui/verbs.c itself; its one external function is renamed here so that
 * the library's own copy links beside it.  Nothing is run: the words are
 * only checked, never executed (a command could write files). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ui_run_line fuzz_unused_ui_run_line
#include "tui/verbs.c"
#undef ui_run_line

#include "fuzz/fuzz.h"

#define STORE 4096   /* what ui_run_line gives tokenise */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	/* the store is a heap block of exactly STORE bytes, so ASan sees a
	 * write one past its end (on the stack a neighbour might hide it) */
	char *store = malloc(STORE);
	char *argv[ARGS_MAX];
	int argc;
	uint64_t v;

	if (!line || !store) {
		free(line);
		free(store);
		return 0;
	}
	memcpy(line, data, size);
	line[size] = 0;
	argc = tokenise(line, store, STORE, argv);
	if (argc < 0 || argc >= ARGS_MAX || argv[argc] != NULL)
		abort();
	for (int i = 0; i < argc; i++) {
		/* every word lies inside the store and is terminated there */
		if (argv[i] < store || argv[i] >= store + STORE ||
		    !memchr(argv[i], 0, (size_t)(store + STORE - argv[i])))
			abort();
		parse_size(argv[i], &v);
	}
	free(store);
	free(line);
	return 0;
}
