/*
 * pool.c - a small fixed pool of threads for background validation and
 * finalize jobs.
 */
#include <pthread.h>
#include <stdlib.h>

#include "ra/ra_int.h"

struct job {
	ra_job_fn fn;
	void *arg;
	struct job *next;
};

struct ra_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	int stopping;
	int n;
	pthread_t *threads;
};

static void *
worker(void *arg)
{
	struct ra_pool *p = arg;
	struct job *j;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		j = p->head;
		if (j == NULL) { /* stopping and drained */
			pthread_mutex_unlock(&p->mu);
			break;
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg);
		free(j);
	}
	return NULL;
}

/* n worker threads; caller frees with ra_pool_free. NULL on failure. */
struct ra_pool *
ra_pool_new(int n)
{
	struct ra_pool *p = xcalloc(1, sizeof(*p));
	int i;

	xmutex_init(&p->mu);
	xcond_init(&p->cv);
	p->threads = xcalloc((size_t)n, sizeof(pthread_t));
	for (i = 0; i < n; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			log_error("ra: cannot start worker thread");
			break;
		}
		p->n++;
	}
	if (p->n == 0) {
		ra_pool_free(p);
		return NULL;
	}
	return p;
}

/* Queues fn(arg) (arg owned by the job). 0 or -1 when stopping. */
int
ra_pool_submit(struct ra_pool *p, ra_job_fn fn, void *arg)
{
	struct job *j;

	pthread_mutex_lock(&p->mu);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	j = xcalloc(1, sizeof(*j));
	j->fn = fn;
	j->arg = arg;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* Drains the queue, joins the threads, frees. NULL is a no-op. */
void
ra_pool_free(struct ra_pool *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
