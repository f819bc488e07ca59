// SPDX-License-Identifier: MIT
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include "asyncprobe.h"
#include "asyncprobe.skel.h"
#include "hooks.h"
#include "selhook.h"

#define MAX_HOOKS 8

struct selhook {
	struct asyncprobe_bpf *skel;
	/* the selector hooks: program, tracepoint, where the link is kept */
	struct bpf_program *progs[MAX_HOOKS];
	const char *tps[MAX_HOOKS];
	struct bpf_link **links[MAX_HOOKS];
	int n;
	bool attached, always;
	bool failed; /* attaching again failed: it stays detached */
	int verbose;
	double start, since, attached_s; /* since: the last change */
	/* closing a tracepoint's perf event waits a grace period (~70 ms
	 * each): links are destroyed by a thread of their own */
	pthread_t closer;
	bool closing;
	struct bpf_link *closed[MAX_HOOKS];
};

struct selhook *selhook__new(struct asyncprobe_bpf *skel, double now,
			     bool always, int verbose)
{
	struct selhook *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->skel = skel;
	h->always = always;
	h->verbose = verbose;
	h->attached = true;
	h->start = h->since = now;
	h->n = hooks__selector(skel, h->progs, h->tps, h->links, MAX_HOOKS);
	/* without a writable .data the programs could not tell */
	if (!skel->data)
		h->n = 0;
	return h;
}

bool selhook__windowed(const struct selhook *h)
{
	return h && h->n && !h->always;
}

static void *close_links(void *arg)
{
	struct selhook *h = arg;

	for (int i = 0; i < h->n; i++) {
		bpf_link__destroy(h->closed[i]);
		h->closed[i] = NULL;
	}
	return NULL;
}

static void closer_join(struct selhook *h)
{
	if (h->closing)
		pthread_join(h->closer, NULL);
	h->closing = false;
}

static void epoch_bump(struct selhook *h)
{
	__atomic_add_fetch(&h->skel->data->hook_epoch, 1, __ATOMIC_SEQ_CST);
}

/* What an iteration timed now stands for (hook_weight in the BPF side). */
static void weight_set(struct selhook *h, bool window)
{
	uint32_t w =
		window ? (uint32_t)(SELHOOK_PERIOD_S / SELHOOK_WINDOW_S + 0.5)
		       : 1;

	__atomic_store_n(&h->skel->data->hook_weight, w, __ATOMIC_SEQ_CST);
}

static void hook_attach(struct selhook *h, double now)
{
	closer_join(h);
	for (int i = 0; i < h->n; i++) {
		int err;

		if (*h->links[i])
			continue;
		*h->links[i] = hooks__sel_attach(h->progs[i], h->tps[i]);
		if (*h->links[i])
			continue;
		/* half a hook would time iterations wrong: none */
		err = -errno;
		fprintf(stderr,
			"asyncprobe: cannot attach %s again (%s); from now on "
			"only loops with a clock of their own are timed, and "
			"the lag histogram has only their stalls\n",
			bpf_program__name(h->progs[i]), strerror(-err));
		for (int j = 0; j < h->n; j++) {
			bpf_link__destroy(*h->links[j]);
			*h->links[j] = NULL;
		}
		h->failed = true;
		return;
	}
	/* odd: from now on every selector entry is seen */
	epoch_bump(h);
	h->attached = true;
	h->since = now;
	if (h->verbose > 1)
		fprintf(stderr,
			"asyncprobe: selector hook attached at %.3f s of the "
			"monotonic clock\n",
			now);
}

static void hook_detach(struct selhook *h, double now)
{
	closer_join(h);
	/* even first: an iteration going on is no longer timed exactly */
	epoch_bump(h);
	for (int i = 0; i < h->n; i++) {
		h->closed[i] = *h->links[i];
		*h->links[i] = NULL;
	}
	if (pthread_create(&h->closer, NULL, close_links, h))
		close_links(h);
	else
		h->closing = true;
	h->attached_s += now - h->since;
	h->attached = false;
	h->since = now;
	if (h->verbose > 1)
		fprintf(stderr,
			"asyncprobe: selector hook detached at %.3f s of the "
			"monotonic clock\n",
			now);
}

void selhook__tick(struct selhook *h, double now, bool needed)
{
	double period_at;
	bool window;

	if (!selhook__windowed(h) || h->failed)
		return;
	/*
	 * Windows at fixed times of the monotonic clock, not of the start:
	 * every asyncprobe on the machine (and every target of one) has the
	 * same windows, and the tracing path, which one hook turns on for
	 * all, is paid for one.  The ticks are aligned too (session.c).
	 */
	period_at = fmod(now, SELHOOK_PERIOD_S);
	window = !needed && period_at < SELHOOK_WINDOW_S;
	weight_set(h, window);
	if ((needed || window) && !h->attached)
		hook_attach(h, now);
	else if (!needed && !window && h->attached)
		hook_detach(h, now);
}

double selhook__share(const struct selhook *h, double now)
{
	double run, on;

	if (!selhook__windowed(h))
		return 1.0;
	run = now - h->start;
	on = h->attached_s + (h->attached ? now - h->since : 0);
	return run > 0 ? on / run : 1.0;
}

void selhook__free(struct selhook *h)
{
	if (!h)
		return;
	closer_join(h);
	free(h);
}
