/* A two-slot pipeline: one thread produces items (the convert engine's
 * chunks: mapped, read and zero-scanned) while the caller consumes the
 * previous one (hands it to the writer), so that reading the source and
 * writing the output overlap on two cores, as qemu-img's requests in
 * flight do.
 *
 * The items are the caller's: the pipeline only says whose turn each of
 * its two slots is.  Items are consumed in the order they were produced.
 * The producer says when it produced the last item (the end, or an
 * error): it is not called again after that.
 *
 * Without a thread (pipeline_start's `threaded` false: a chunk too big to
 * hold twice), pipeline_take produces the item itself. */
#ifndef VISE_PIPELINE_H
#define VISE_PIPELINE_H

#include <pthread.h>
#include <stdbool.h>

/* Fills item; returns true when it was the last one. */
typedef bool (*pipeline_produce_fn)(void *ctx, void *item);

struct pipeline {
	pipeline_produce_fn produce;
	void *ctx;
	void *item[2];
	bool ready[2];        /* produced, not yet given back */
	unsigned next_out;     /* the slot the consumer takes next */
	bool last_made;       /* the producer made its last item */
	bool quit;
	bool threaded, running;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* The thread, when threaded, starts producing into item0 and item1 at
 * once.  Returns 0, or -1 when the thread cannot start (nothing to undo:
 * the caller may go on with threaded false). */
int pipeline_start(struct pipeline *p, pipeline_produce_fn produce,
		   void *ctx, void *item0, void *item1, bool threaded);
/* The next item, waiting for it; never call it again after the last one
 * was taken. */
void *pipeline_take(struct pipeline *p);
/* Gives the item taken last back, for the producer to fill again. */
void pipeline_give_back(struct pipeline *p);
/* Stops the producer (after the item it is filling) and joins it. */
void pipeline_stop(struct pipeline *p);

/* pthread_create with every signal blocked in the new thread: Ctrl-C and
 * SIGTERM stay with the thread that handles them, and a worker's read is
 * never cut short by EINTR. */
int thread_start_masked(pthread_t *th, void *(*fn)(void *), void *arg);

#endif
