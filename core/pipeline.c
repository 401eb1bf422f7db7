/* The two-slot pipeline (core/pipeline.h says what it is for). */
#include <signal.h>
#include <string.h>

#include "core/pipeline.h"

int thread_start_masked(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r ? -1 : 0;
}

static void *producer_main(void *arg)
{
	struct pipeline *p = arg;
	unsigned i = 0;

	pthread_mutex_lock(&p->mu);
	while (!p->quit && !p->last_made) {
		if (p->ready[i]) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		/* slot i is the producer's until it is marked ready */
		pthread_mutex_unlock(&p->mu);
		bool last = p->produce(p->ctx, p->item[i]);
		pthread_mutex_lock(&p->mu);
		p->ready[i] = true;
		p->last_made = last;
		i ^= 1;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int pipeline_start(struct pipeline *p, pipeline_produce_fn produce,
		   void *ctx, void *item0, void *item1, bool threaded)
{
	memset(p, 0, sizeof *p);
	p->produce = produce;
	p->ctx = ctx;
	p->item[0] = item0;
	p->item[1] = item1;
	if (!threaded)
		return 0;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (thread_start_masked(&p->th, producer_main, p) < 0) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		return -1;
	}
	p->threaded = p->running = true;
	return 0;
}

void *pipeline_take(struct pipeline *p)
{
	unsigned i = p->next_out;

	if (!p->threaded) {
		p->produce(p->ctx, p->item[0]);
		return p->item[0];
	}
	pthread_mutex_lock(&p->mu);
	while (!p->ready[i])
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	return p->item[i];
}

void pipeline_give_back(struct pipeline *p)
{
	if (!p->threaded)
		return;
	pthread_mutex_lock(&p->mu);
	p->ready[p->next_out] = false;
	p->next_out ^= 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void pipeline_stop(struct pipeline *p)
{
	if (!p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->quit = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->th, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	p->running = false;
}
