// SPDX-License-Identifier: MIT
/*
 * The userspace half of asyncprobe.bpf.c: lifecycle (open -> set rodata ->
 * load -> attach), loop-thread confirmation, thread-state map upkeep, and
 * turning raw events into symbolized findings.
 */
#include <dirent.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/membarrier.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "elfsym.h"
#include "asyncprobe.h"
#include "asyncprobe.skel.h"
#include "churn.h"
#include "collector.h"
#include "fdinfo.h"
#include "hygiene.h"
#include "hooks.h"
#include "output.h"
#include "pyclock.h"
#include "pysym.h"
#include "pytarget.h"
#include "pytasks.h"
#include "selhook.h"
#include "sitetab.h"
#include "watch.h"
#include "syscalls.h"

#define GC_RING 64 /* readings of the collector's counters kept */
#define CONFIRM_TRIES 5
/* finds of a loop's clock, one a tick: a busy loop's stack, read while it
 * changes, can miss the frame */
#define CLOCK_TRIES 20
#define MAX_SAMPLES 128	 /* CPU samples kept per loop iteration */
#define MAX_TRACKED 4096 /* thread states tracked per refresh */
#define MAX_SITES 256	 /* call sites counted apart for the metrics */
#define AP_RING_SMALL (1u << 20)
#define RECENT 32      /* findings kept for the live view */
#define WSTACKS 8      /* distinct sampled stacks a recorded stall keeps */
#define LOOP_STATS_S 5 /* records: loop counters this often */

enum loop_state { LOOP_PENDING, LOOP_CONFIRMED, LOOP_REJECTED };

struct sample {
	uint64_t weight;
	uint32_t n;
	bool gc;       /* taken while the garbage collector ran */
	uint64_t task; /* the asyncio task running then (3.14+) */
	uint8_t task_name[AP_NAME_SNAP];
	struct ap_frame frames[AP_MAX_FRAMES];
};

struct loop_rec {
	uint32_t tid;
	enum loop_state state;
	int tries;
	struct bpf_link *perf_link; /* the sampler (its perf event's fd too) */
	/* samples of the current iteration, for the stall's stack */
	uint64_t agg_seq;
	int nsamples;
	uint64_t nseen; /* samples offered this iteration */
	struct sample *samples;
	uint64_t stalls, blocks;
	/* in-progress findings already reported, so each is said once */
	uint64_t reported_seq, reported_blk;
	/* time counters as last exported: they never go back */
	uint64_t busy_out, idle_out;
	/* the loop's own clock (pyclock.h), in the clocks map when found */
	struct py_loop_clock clock;
	bool clocked;
	/* it runs a loop that has none (uvloop, asyncio without end_time) */
	bool clockless;
	int clock_tries; /* finds failed: CLOCK_TRIES, and it runs no loop */
};

struct collector {
	const struct ap_options *o;
	int pidfd;
	char comm[17];
	struct py_target target;
	struct py_symbolizer *sym;
	struct asyncprobe_bpf *skel;
	struct ring_buffer *rb;
	struct loop_rec loops[AP_MAX_LOOPS];
	int nloops;
	uint64_t stalls, blocks, in_progress;
	double start_ts;
	/* when the BPF side was stopped at the end of the run (0: watching):
	 * what happened after it is unseen, so nothing is measured past it */
	double watched_until;
	char python[32];
	const char *variant;
	struct py_asyncio asyncio; /* 3.14+: where tasks keep their names */
	struct churn *churn;	   /* task counts, lifetimes, sites, leaks */
	struct hygiene *hygiene;   /* descriptor growth, ignored cancels */
	struct watch *watch;	   /* long awaits' watchpoints */
	struct selhook *selhook;   /* when the selector hook is attached */
	bool clocks_usable;	   /* the target's CLOCK_MONOTONIC is ours */
	/* gc.generation_stats: collections per generation, read every tick */
	uint64_t gc_stats;
	uint64_t gc_first[3];
	struct gc_reading {
		double ts;
		uint64_t n[3];
	} gc_ring[GC_RING];
	int gc_len, gc_head;
	struct bpf_link *gc_links[2];	 /* USDT gc__start, gc__done */
	struct bpf_link *unawaited_link; /* _PyErr_WarnUnawaitedCoroutine */
	/* the _asyncio finalizers' two reports, and whether the objects they
	 * report are laid out as we know */
	struct bpf_link *fin_links[2];
	bool fin_known;
	bool gc_usdt;
	bool uvloop_checked, uvloop;
	bool execd; /* the target ran execve: its memory is another program */
	/* the Python threads at the last refresh */
	struct py_thread {
		uint32_t tid;	 /* as the host sees it */
		uint32_t ns_tid; /* in the target's PID namespace */
		uint64_t tstate;
	} threads[MAX_TRACKED];
	int nthreads;
	/* for the exporter: findings by call site, durations by syscall */
	struct sitetab *stall_sites, *block_sites;
	struct ap_syscall_hist block_hist[AP_METRICS_SYSCALLS];
	int nblock_hist;
	struct ap_loop_metrics *loop_metrics;
	uint64_t tasks_created_out, tasks_finished_out;
	struct ap_recent recent[RECENT];
	/* records: a stall's distinct sampled stacks (frames in wframes) */
	struct ap_wstack wstacks[WSTACKS];
	struct py_frame_info (*wframes)[AP_MAX_FRAMES];
	int nrecent, recent_head;
};

static struct loop_rec *loop_find(struct collector *c, uint32_t tid)
{
	for (int i = 0; i < c->nloops; i++)
		if (c->loops[i].tid == tid)
			return &c->loops[i];
	return NULL;
}

static struct loop_rec *loop_add(struct collector *c, uint32_t tid)
{
	struct loop_rec *lr = loop_find(c, tid);

	if (lr)
		return lr;
	if (c->nloops >= AP_MAX_LOOPS)
		return NULL;
	lr = &c->loops[c->nloops++];
	memset(lr, 0, sizeof(*lr));
	lr->tid = tid;
	return lr;
}

/* Thread @tid's loop counters as the kernel has them now. */
static bool loop_lookup(struct collector *c, uint32_t tid, struct ap_loop *l)
{
	return !bpf_map__lookup_elem(c->skel->maps.loops, &tid, sizeof(tid), l,
				     sizeof(*l), 0);
}

/* A confirmed loop's counters. */
static bool loop_read(struct collector *c, const struct loop_rec *lr,
		      struct ap_loop *l)
{
	return lr->state == LOOP_CONFIRMED && loop_lookup(c, lr->tid, l);
}

/* Count the wait or the iteration going on at @now into @l's idle or busy
 * time; returns how long that iteration has run (0: it waits). */
static uint64_t loop_until(struct ap_loop *l, uint64_t now)
{
	uint64_t d;

	if (!l->busy_start || now <= l->busy_start)
		return 0;
	d = now - l->busy_start;
	if (l->sel_sleep) {
		l->idle_ns += d;
		return 0;
	}
	l->busy_ns += d;
	return d;
}

/* --- thread states ------------------------------------------------- */

static int tstate_cb(void *ctx, uint32_t host_tid, uint32_t ns_tid,
		     uint64_t tstate)
{
	struct collector *c = ctx;

	if (c->nthreads >= MAX_TRACKED)
		return 1;
	c->threads[c->nthreads++] =
		(struct py_thread){ host_tid, ns_tid, tstate };
	bpf_map__update_elem(c->skel->maps.tstates, &host_tid, sizeof(host_tid),
			     &tstate, sizeof(tstate), BPF_ANY);
	return 0;
}

/* The host tid of thread state @tstate; 0 when not known. */
static uint32_t tid_of_tstate(const struct collector *c, uint64_t tstate)
{
	for (int i = 0; tstate && i < c->nthreads; i++)
		if (c->threads[i].tstate == tstate)
			return c->threads[i].tid;
	return 0;
}

/* A thread's name, as ps shows it ("" when gone). */
static void thread_name(pid_t pid, uint32_t tid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/task/%u/comm", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* The tid the target itself knows @tid by (its PID namespace's). */
static uint32_t ns_tid_of(const struct collector *c, uint32_t tid)
{
	for (int i = 0; i < c->nthreads; i++)
		if (c->threads[i].tid == tid)
			return c->threads[i].ns_tid;
	return tid;
}

/* Mirror the interpreter's thread list into the tstates map. */
static void threads_refresh(struct collector *c)
{
	uint32_t key, next, stale[256];
	int nstale = 0;
	void *prev = NULL;

	c->nthreads = 0;
	if (py_target__threads(&c->target, tstate_cb, c) < 0)
		return;
	while (!bpf_map__get_next_key(c->skel->maps.tstates, prev, &next,
				      sizeof(next))) {
		bool live = false;

		for (int i = 0; i < c->nthreads && !live; i++)
			live = c->threads[i].tid == next;
		if (!live && nstale < 256)
			stale[nstale++] = next;
		key = next;
		prev = &key;
	}
	for (int i = 0; i < nstale; i++)
		bpf_map__delete_elem(c->skel->maps.tstates, &stale[i],
				     sizeof(stale[i]), 0);
}

static int tstate_of(struct collector *c, uint32_t tid, uint64_t *tstate)
{
	return bpf_map__lookup_elem(c->skel->maps.tstates, &tid, sizeof(tid),
				    tstate, sizeof(*tstate), 0);
}

/* --- symbolization ------------------------------------------------- */

static int stack_resolve(struct collector *c, const struct ap_frame *frames,
			 int n, struct py_frame_info *out)
{
	for (int i = 0; i < n; i++)
		pysym__resolve(c->sym, &frames[i], &out[i]);
	return n;
}

static bool target_has_uvloop(struct collector *c)
{
	if (c->uvloop_checked)
		return c->uvloop;
	c->uvloop = py_target__maps_object(c->target.pid, "/uvloop/loop.");
	/* uvloop may be imported later: only a positive answer is final */
	c->uvloop_checked = c->uvloop;
	return c->uvloop;
}

/* --- loop threads -------------------------------------------------- */

static int perf_open(struct collector *c, struct loop_rec *lr)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_TASK_CLOCK,
		.sample_period = (uint64_t)(c->o->sample_ms * 1e6),
	};
	int fd;

	fd = (int)syscall(__NR_perf_event_open, &attr, lr->tid, -1, -1,
			  PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr,
			"asyncprobe: cannot sample loop thread %u "
			"(perf_event_open: %s); stalls will have no stack. "
			"Needs CAP_PERFMON.\n",
			lr->tid, strerror(errno));
		return -errno;
	}
	lr->perf_link =
		bpf_program__attach_perf_event(c->skel->progs.on_sample, fd);
	if (!lr->perf_link) {
		int err = -errno;

		fprintf(stderr,
			"asyncprobe: cannot attach the sampler to thread %u: "
			"%s\n",
			lr->tid, strerror(-err));
		close(fd);
		return err;
	}
	return 0;
}

static void loop_reject(struct collector *c, struct loop_rec *lr)
{
	struct ap_loop l;

	lr->state = LOOP_REJECTED;
	if (loop_lookup(c, lr->tid, &l)) {
		l.ignored = 1;
		bpf_map__update_elem(c->skel->maps.loops, &lr->tid,
				     sizeof(lr->tid), &l, sizeof(l), BPF_EXIST);
	}
	if (c->o->verbose)
		fprintf(stderr,
			"asyncprobe: thread %u waits in a selector but runs no "
			"asyncio loop; ignored\n",
			lr->tid);
}

/*
 * Find the loop's own clock and give it to the BPF side, which reads it
 * while the selector hook is detached.  Without one (uvloop, a loop of
 * its own making) the hook stays attached.
 */
static void loop_clock_find(struct collector *c, struct loop_rec *lr,
			    uint64_t tstate)
{
	struct ap_clock ac = {};
	int err;

	if (!c->clocks_usable || lr->clocked || lr->clockless ||
	    lr->clock_tries >= CLOCK_TRIES)
		return;
	err = py_clock__find(c->sym, &c->target, tstate, &lr->clock);
	if (!err) {
		ac.frame = lr->clock.frame;
		ac.code = lr->clock.code;
		ac.slot = lr->clock.slot;
		ac.value_off = (uint32_t)c->target.off->float_value;
		err = bpf_map__update_elem(c->skel->maps.clocks, &lr->tid,
					   sizeof(lr->tid), &ac, sizeof(ac),
					   BPF_ANY);
	}
	lr->clocked = !err;
	/* no _run_once on its stack with uvloop in the process: a uvloop
	 * loop; a _run_once without end_time: an asyncio of its own */
	if ((err == -ENOENT && target_has_uvloop(c)) || err == -EINVAL)
		lr->clockless = true;
	else if (err)
		lr->clock_tries++;
	if (lr->clocked && c->o->verbose)
		fprintf(stderr,
			"asyncprobe: thread %u: the loop's own clock found "
			"(end_time of BaseEventLoop._run_once)\n",
			lr->tid);
	else if (c->o->verbose && (lr->clockless || c->o->verbose > 1))
		fprintf(stderr,
			"asyncprobe: thread %u: no clock of its own (%s)%s\n",
			lr->tid,
			err == -ENOENT	 ? "no BaseEventLoop._run_once on its "
					   "stack"
			: err == -EINVAL ? "its _run_once has no end_time"
					 : strerror(-err),
			lr->clockless ? ": the selector hook stays attached"
				      : "");
}

/*
 * A loop without its clock yet: look again.  One whose clock no longer
 * reads (the loop stopped, another runs on the thread): found anew.
 */
static void loop_clock_check(struct collector *c, struct loop_rec *lr,
			     bool stale_too)
{
	double since;
	uint64_t tstate;

	if (lr->state != LOOP_CONFIRMED)
		return;
	if (stale_too && lr->clocked &&
	    py_clock__read(&c->target, &lr->clock, &since) == -ESTALE) {
		bpf_map__delete_elem(c->skel->maps.clocks, &lr->tid,
				     sizeof(lr->tid), 0);
		lr->clocked = false;
		lr->clockless = false;
		lr->clock_tries = 0;
	}
	if (!lr->clocked && !tstate_of(c, lr->tid, &tstate))
		loop_clock_find(c, lr, tstate);
}

/*
 * Must the selector hook be attached outside its windows?  While a loop is
 * being confirmed, or its clock looked for; while a loop without one runs.
 * Not for a loop whose thread is gone, or that runs no loop any more (its
 * clock went stale and none is found again).
 */
static bool selhook_needed(struct collector *c, double now)
{
	int confirmed = 0;
	uint64_t tstate;

	for (int i = 0; i < c->nloops; i++) {
		struct loop_rec *lr = &c->loops[i];

		if (lr->state == LOOP_PENDING)
			return true;
		if (lr->state != LOOP_CONFIRMED)
			continue;
		confirmed++;
		if (!lr->clocked &&
		    (lr->clockless || lr->clock_tries < CLOCK_TRIES) &&
		    !tstate_of(c, lr->tid, &tstate))
			return true;
	}
	/* a loop that never sleeps is found by the hook alone */
	return !confirmed && now - c->start_ts < SELHOOK_START_S;
}

/*
 * A thread that waits in a selector is a loop only if it runs asyncio (or
 * uvloop): its Python stack says so.  Read it while it most likely sleeps
 * in that wait; a failed read is retried on later ticks.
 */
static void loop_confirm(struct collector *c, struct loop_rec *lr)
{
	struct ap_frame frames[AP_MAX_FRAMES];
	struct py_frame_info info[AP_MAX_FRAMES];
	struct ap_loop before, after;
	uint64_t tstate;
	bool asyncio = false, asleep;
	int n;

	if (lr->state != LOOP_PENDING)
		return;
	if (tstate_of(c, lr->tid, &tstate)) {
		threads_refresh(c);
		if (tstate_of(c, lr->tid, &tstate)) {
			if (++lr->tries >= CONFIRM_TRIES)
				loop_reject(c, lr);
			return;
		}
	}
	/* asleep in its wait (seen by the kernel, not just seeded) before
	 * and after the walk, in the same iteration: the chain was still */
	asleep = loop_lookup(c, lr->tid, &before) && before.sel_sleep &&
		 before.iterations;
	n = py_target__walk(&c->target, tstate, frames, AP_MAX_FRAMES);
	asleep = asleep && loop_lookup(c, lr->tid, &after) && after.sel_sleep &&
		 after.iter_seq == before.iter_seq;
	if (n > 0) {
		stack_resolve(c, frames, n, info);
		for (int i = 0; i < n && !asyncio; i++)
			asyncio = strstr(info[i].file, "asyncio/") ||
				  strstr(info[i].file, "uvloop/");
		if (!asyncio)
			asyncio = target_has_uvloop(c);
	}
	if (!asyncio) {
		if (c->o->verbose > 1)
			fprintf(stderr,
				"asyncprobe: thread %u: %d frames, innermost "
				"%s (%s), outermost %s (%s)\n",
				lr->tid, n, n > 0 ? info[0].function : "-",
				n > 0 ? info[0].file : "-",
				n > 0 ? info[n - 1].function : "-",
				n > 0 ? info[n - 1].file : "-");
		/* a stack read while it runs can be cut short (a coroutine
		 * being resumed has no caller yet): only a still one is final
		 */
		if (n > 0 && asleep)
			lr->tries = CONFIRM_TRIES;
		if (++lr->tries >= CONFIRM_TRIES)
			loop_reject(c, lr);
		return;
	}
	lr->state = LOOP_CONFIRMED;
	loop_clock_find(c, lr, tstate);
	if (c->o->sample_ms > 0)
		perf_open(c, lr);
	output__loop(c->o->out, c->o->format,
		     &(struct ap_finding){
			     .event = "loop",
			     .pid = c->target.pid,
			     .ns_pid = c->target.ns_pid,
			     .tid = lr->tid,
			     .ns_tid = ns_tid_of(c, lr->tid),
			     .ts = clock__mono(),
			     .stack = { .n = n, .frames = info },
		     });
}

/*
 * Loops that are asleep in their selector when we attach would only show
 * up once they wake; an idle service may not wake for minutes.  Find them
 * now from /proc/PID/task/TID/syscall ("232 0x5 ..." while in epoll_wait).
 */
static void loops_seed(struct collector *c)
{
	long epoll_nrs[] = { syscall__nr("epoll_wait"),
			     syscall__nr("epoll_pwait"),
			     syscall__nr("epoll_pwait2") };
	long poll_nrs[] = { syscall__nr("poll"), syscall__nr("ppoll"),
			    syscall__nr("select"), syscall__nr("pselect6") };
	char path[64];
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", c->target.pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		struct ap_loop init = { .sel_sleep = 1, .sel_entered = 1 };
		unsigned long long arg0 = 0;
		struct loop_rec *lr;
		char buf[256];
		long nr = -1;
		uint32_t tid;
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		tid = (uint32_t)strtoul(de->d_name, NULL, 10);
		snprintf(path, sizeof(path), "/proc/%d/task/%u/syscall",
			 c->target.pid, tid);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f) ||
		    sscanf(buf, "%ld %llx", &nr, &arg0) != 2)
			nr = -1;
		fclose(f);
		for (size_t i = 0; i < 3; i++)
			if (nr >= 0 && nr == epoll_nrs[i])
				init.kind = AP_SEL_EPOLL;
		for (size_t i = 0; i < 4; i++)
			if (nr >= 0 && nr == poll_nrs[i])
				init.kind = AP_SEL_POLL;
		if (init.kind == AP_SEL_NONE)
			continue;
		init.loop_fd = init.kind == AP_SEL_EPOLL ? (int32_t)arg0 : -1;
		/* idle from now on: bpf_ktime_get_ns() is CLOCK_MONOTONIC */
		init.busy_start = (uint64_t)(clock__mono() * 1e9);
		if (bpf_map__update_elem(c->skel->maps.loops, &tid, sizeof(tid),
					 &init, sizeof(init), BPF_NOEXIST))
			continue;
		lr = loop_add(c, tid);
		if (lr)
			loop_confirm(c, lr);
	}
	closedir(dir);
}

/* The name of asyncio task @task (3.14+) from @snap, the first bytes of
 * its name object as the kernel read them.  NULL when unknown. */
static const char *task_name(struct collector *c, uint64_t task,
			     const uint8_t *snap, char *buf, size_t len)
{
	struct py_tasks *pt = churn__tasks(c->churn);

	if (!task || !pt ||
	    py_tasks__name_bytes(pt, snap, AP_NAME_SNAP, buf, len))
		return NULL;
	return buf;
}

/* --- events -------------------------------------------------------- */

static void sample_add(struct loop_rec *lr, const struct ap_event *e,
		       uint32_t n, uint64_t weight)
{
	struct sample *s;
	uint64_t slot;

	if (e->iter_seq != lr->agg_seq) {
		lr->agg_seq = e->iter_seq;
		lr->nsamples = 0;
		lr->nseen = 0;
	}
	if (!lr->samples) {
		lr->samples = calloc(MAX_SAMPLES, sizeof(*lr->samples));
		if (!lr->samples)
			return;
	}
	if (!n)
		return;
	/* a reservoir: a long stall is represented by all of its length */
	slot = lr->nseen++;
	if (slot >= MAX_SAMPLES) {
		slot = ((uint64_t)random() << 31 ^ (uint64_t)random()) %
		       lr->nseen;
		if (slot >= MAX_SAMPLES)
			return;
	} else {
		lr->nsamples++;
	}
	s = &lr->samples[slot];
	s->gc = e->flags & AP_F_GC;
	s->task = e->task;
	memcpy(s->task_name, e->task_name, sizeof(s->task_name));
	s->weight = weight;
	s->n = n;
	memcpy(s->frames, e->frames, n * sizeof(e->frames[0]));
}

static bool same_stack(const struct py_frame_info *a, int na,
		       const struct py_frame_info *b, int nb)
{
	if (na != nb)
		return false;
	for (int i = 0; i < na; i++)
		if (a[i].line != b[i].line ||
		    strcmp(a[i].function, b[i].function) ||
		    strcmp(a[i].file, b[i].file))
			return false;
	return true;
}

/*
 * The stack that represents a stall: the innermost function that took
 * most of the sampled time, then the exact stack most often seen with it.
 * Returns the number of frames written to @out.
 */
static int stall_stack(struct collector *c, struct loop_rec *lr, uint64_t seq,
		       struct py_frame_info *out, int *samples, double *share,
		       double *gc_share, uint64_t *task, const uint8_t **snap)
{
	static struct py_frame_info cand[AP_MAX_FRAMES];
	uint64_t total = 0, gc = 0, best_w = 0, leaf = 0, key_w;
	int best = -1, n = 0;

	*samples = 0;
	*share = 0;
	*gc_share = 0;
	*task = 0;
	*snap = NULL;
	if (lr->agg_seq != seq || !lr->nsamples)
		return 0;
	*samples = (int)lr->nseen;
	for (int i = 0; i < lr->nsamples; i++) {
		uint64_t w = 0;

		total += lr->samples[i].weight;
		if (lr->samples[i].gc)
			gc += lr->samples[i].weight;
		for (int j = 0; j < lr->nsamples; j++)
			if (lr->samples[j].frames[0].code ==
			    lr->samples[i].frames[0].code)
				w += lr->samples[j].weight;
		if (w > best_w) {
			best_w = w;
			leaf = lr->samples[i].frames[0].code;
		}
	}
	best_w = 0;
	for (int i = 0; i < lr->nsamples; i++) {
		struct sample *s = &lr->samples[i];

		if (s->frames[0].code != leaf)
			continue;
		stack_resolve(c, s->frames, (int)s->n, cand);
		key_w = 0;
		for (int j = 0; j < lr->nsamples; j++) {
			static struct py_frame_info other[AP_MAX_FRAMES];
			struct sample *t = &lr->samples[j];

			if (t->frames[0].code != leaf)
				continue;
			stack_resolve(c, t->frames, (int)t->n, other);
			if (same_stack(cand, (int)s->n, other, (int)t->n))
				key_w += t->weight;
		}
		if (key_w > best_w) {
			best_w = key_w;
			best = i;
			n = (int)s->n;
			memcpy(out, cand, n * sizeof(cand[0]));
		}
	}
	*share = total && best >= 0 ? (double)best_w / (double)total : 0;
	*gc_share = total ? (double)gc / (double)total : 0;
	if (best >= 0) {
		*task = lr->samples[best].task;
		*snap = lr->samples[best].task_name;
	}
	return n;
}

/*
 * Records: the distinct stacks of a stall's samples and their shares of
 * its sampled time, the largest first (flame graphs weight each one; the
 * finding's own stack is only the largest).  Returns how many.
 */
static int stall_wstacks(struct collector *c, struct loop_rec *lr, uint64_t seq)
{
	static struct py_frame_info tmp[AP_MAX_FRAMES];
	uint64_t w[WSTACKS] = { 0 }, total = 0;
	int n = 0;

	if (c->o->command != AP_CMD_RECORD || lr->agg_seq != seq)
		return 0;
	if (!c->wframes && !(c->wframes = calloc(WSTACKS, sizeof(*c->wframes))))
		return 0;
	for (int i = 0; i < lr->nsamples; i++) {
		struct sample *s = &lr->samples[i];
		int k, ns = stack_resolve(c, s->frames, (int)s->n, tmp);

		total += s->weight;
		for (k = 0; k < n; k++)
			if (same_stack(tmp, ns, c->wstacks[k].stack.frames,
				       c->wstacks[k].stack.n))
				break;
		if (k == n) {
			/* full: the smallest makes room for a bigger one */
			if (n == WSTACKS) {
				k = 0;
				for (int j = 1; j < n; j++)
					if (w[j] < w[k])
						k = j;
				if (w[k] >= s->weight)
					continue;
			} else {
				n++;
			}
			memcpy(c->wframes[k], tmp, (size_t)ns * sizeof(tmp[0]));
			c->wstacks[k].stack =
				(struct ap_stack_out){ ns, 0, c->wframes[k] };
			w[k] = 0;
		}
		w[k] += s->weight;
	}
	for (int i = 0; i < n; i++)
		c->wstacks[i].share = total ? (double)w[i] / (double)total : 0;
	/* largest first: an insertion sort of at most WSTACKS */
	for (int i = 1; i < n; i++)
		for (int j = i;
		     j > 0 && c->wstacks[j].share > c->wstacks[j - 1].share;
		     j--) {
			struct ap_wstack t = c->wstacks[j];

			c->wstacks[j] = c->wstacks[j - 1];
			c->wstacks[j - 1] = t;
		}
	return n;
}

static bool gc_read(struct collector *c, uint64_t n[3])
{
	uint64_t st[9]; /* 3 x {collections, collected, uncollectable} */

	if (!c->gc_stats ||
	    proc_read(c->target.pid, c->gc_stats, st, sizeof(st)))
		return false;
	for (int i = 0; i < 3; i++)
		n[i] = st[3 * i];
	return true;
}

static void gc_tick(struct collector *c, double ts)
{
	struct gc_reading *r = &c->gc_ring[c->gc_head];

	if (!gc_read(c, r->n))
		return;
	r->ts = ts;
	if (!c->gc_len)
		memcpy(c->gc_first, r->n, sizeof(c->gc_first));
	c->gc_head = (c->gc_head + 1) % GC_RING;
	if (c->gc_len < GC_RING)
		c->gc_len++;
}

/* Collections per generation between the last reading before @start and
 * now. */
static bool gc_since(struct collector *c, double start, uint64_t out[3])
{
	const struct gc_reading *best = NULL;
	uint64_t now[3];

	for (int i = 0; i < c->gc_len; i++) {
		const struct gc_reading *r = &c->gc_ring[i];

		if (r->ts <= start && (!best || r->ts > best->ts))
			best = r;
	}
	bool found = best != NULL;
	/* began before the first reading: count from the oldest */
	for (int i = 0; !found && i < c->gc_len; i++)
		if (!best || c->gc_ring[i].ts < best->ts)
			best = &c->gc_ring[i];
	if (!best || !gc_read(c, now))
		return false;
	for (int i = 0; i < 3; i++)
		out[i] = now[i] - best->n[i];
	return true;
}

/* A finding that ended, for `asyncprobe top`. */
static void recent_add(struct collector *c, const struct ap_finding *f)
{
	struct ap_recent *r = &c->recent[c->recent_head];
	int app = output__app_frame(f->stack.frames, f->stack.n);
	const struct py_frame_info *fr =
		app >= 0 ? &f->stack.frames[app] : NULL;
	r->ts = clock__mono();
	r->ms = f->duration_ms;
	r->stall = !strcmp(f->event, "stall");
	snprintf(r->what, sizeof(r->what), "%s%s", r->stall ? "" : f->syscall,
		 f->gil_wait ? " (GIL)" : "");
	if (fr)
		snprintf(r->where, sizeof(r->where), "%s (%s:%d)", fr->function,
			 output__short_path(fr->file), fr->line);
	else
		snprintf(r->where, sizeof(r->where), "(no Python stack)");
	c->recent_head = (c->recent_head + 1) % RECENT;
	if (c->nrecent < RECENT)
		c->nrecent++;
}

int collector__recent(const struct collector *c, struct ap_recent *out, int max)
{
	int n = 0;

	for (int i = 0; i < c->nrecent && n < max; i++)
		out[n++] =
			c->recent[(c->recent_head - 1 - i + RECENT) % RECENT];
	return n;
}

/* A blocking syscall that ended, for the exporter. */
static void block_count(struct collector *c, const struct ap_finding *f)
{
	static const double bounds[AP_BLOCK_NBOUNDS] = AP_BLOCK_BOUNDS;
	struct ap_syscall_hist *h = NULL;
	char site[SITETAB_SITE_MAX];
	double s = f->duration_ms / 1e3;
	int b = 0;

	metrics__call_site(f->stack.frames, f->stack.n, site, sizeof(site));
	sitetab__add(c->block_sites, f->syscall, site, s);
	for (int i = 0; i < c->nblock_hist && !h; i++)
		if (!strcmp(c->block_hist[i].name, f->syscall))
			h = &c->block_hist[i];
	if (!h && c->nblock_hist < AP_METRICS_SYSCALLS) {
		h = &c->block_hist[c->nblock_hist++];
		snprintf(h->name, sizeof(h->name), "%s", f->syscall);
	}
	if (!h)
		return;
	while (b < AP_BLOCK_NBOUNDS && s > bounds[b])
		b++;
	h->buckets[b]++;
	h->count++;
	h->sum += s;
}

/* A report of an _asyncio finalizer (AP_EV_FINALIZE). */
static void on_finalized(struct collector *c, const struct ap_event *e,
			 uint32_t n)
{
	char tname[PYSYM_NAME_MAX], exc[AP_TYPE_SNAP + 1];

	snprintf(exc, sizeof(exc), "%.*s", AP_TYPE_SNAP, e->exc_type);
	hygiene__finalized(
		c->hygiene,
		&(struct ap_fin_report){
			.kind = e->syscall_nr,
			.what = e->fd,
			.task = e->fd == 2 ? task_name(c, e->task, e->task_name,
						       tname, sizeof(tname))
					   : NULL,
			.code = e->code,
			.exception = exc[0] ? exc : NULL,
			.frames = e->frames,
			.n = (int)n,
			.ts = e->ts / 1e9,
		});
}

static void on_stall(struct collector *c, const struct ap_event *e)
{
	char site[SITETAB_SITE_MAX];
	static struct py_frame_info info[AP_MAX_FRAMES];
	char tname[PYSYM_NAME_MAX];
	const uint8_t *task_snap;
	uint64_t task;
	struct loop_rec *lr = loop_find(c, e->tid);
	struct ap_finding f = {
		.event = "stall",
		.pid = c->target.pid,
		.ns_pid = c->target.ns_pid,
		.tid = e->tid,
		.ns_tid = ns_tid_of(c, e->tid),
		.ts = e->ts / 1e9,
		.duration_ms = e->duration_ns / 1e6,
		.fd = -1,
		.clocked = !!(e->flags & AP_F_CLOCKED),
	};

	/* only threads known to run an asyncio loop have findings */
	if (!lr || lr->state != LOOP_CONFIRMED)
		return;
	f.stack.n = stall_stack(c, lr, e->iter_seq, info, &f.samples,
				&f.stack_share, &f.gc_share, &task, &task_snap);
	f.nwstacks = stall_wstacks(c, lr, e->iter_seq);
	f.wstacks = c->wstacks;
	f.task = task_snap ? task_name(c, task, task_snap, tname, sizeof(tname))
			   : NULL;
	f.stack.frames = info;
	f.gc_known =
		gc_since(c, (e->ts - e->duration_ns) / 1e9, f.gc_collections);
	if (c->gc_usdt && e->duration_ns) {
		/* timed, not sampled */
		f.gc_share = (double)e->gc_ns / (double)e->duration_ns;
		f.gc_timed = 1;
		f.gc_pause_ms = e->gc_ns / 1e6;
		f.gc_gens = e->gc_gens;
	}
	lr->stalls++;
	lr->nsamples = 0;
	lr->nseen = 0;
	c->stalls++;
	metrics__call_site(f.stack.frames, f.stack.n, site, sizeof(site));
	sitetab__add(c->stall_sites, "", site, f.duration_ms / 1e3);
	recent_add(c, &f);
	output__finding(c->o->out, c->o->format, &f);
}

/* A blocking syscall finding; @in_progress: it has not returned yet. */
static void block_report(struct collector *c, const struct ap_event *e,
			 uint32_t n, bool in_progress, bool count)
{
	static struct py_frame_info info[AP_MAX_FRAMES];
	struct loop_rec *lr = loop_find(c, e->tid);
	const char *name = syscall__name(e->syscall_nr);
	char unknown[32], holder[32], tname[PYSYM_NAME_MAX];
	struct fd_desc fdd;
	struct ap_finding f = {
		.event = "blocking_syscall",
		.pid = c->target.pid,
		.ns_pid = c->target.ns_pid,
		.tid = e->tid,
		.ns_tid = ns_tid_of(c, e->tid),
		.ts = e->ts / 1e9,
		.duration_ms = e->duration_ns / 1e6,
		.syscall_nr = e->syscall_nr,
		.fd = -1,
		.in_progress = in_progress,
	};

	if (!lr || lr->state != LOOP_CONFIRMED)
		return;
	/* already said while it was going on: now say how it ended */
	if (!in_progress && lr && lr->reported_blk == e->start_ns)
		lr->reported_blk = 0;
	if (!name) {
		snprintf(unknown, sizeof(unknown), "syscall_%d", e->syscall_nr);
		name = unknown;
	}
	f.syscall = name;
	if (syscall__fd_arg(e->syscall_nr) && e->fd >= 0) {
		f.fd = e->fd;
		if (!fd__describe_captured(c->target.pid, e->fd, &e->file,
					   &fdd))
			f.fdd = &fdd;
	}
	if (e->flags & AP_F_GIL) {
		f.gil_wait = 1;
		f.fd = -1;
		f.gil_holder_tid = tid_of_tstate(c, e->gil_holder);
		if (f.gil_holder_tid == e->tid) /* it had it last itself */
			f.gil_holder_tid = 0;
		if (f.gil_holder_tid) {
			thread_name(c->target.pid, f.gil_holder_tid, holder,
				    sizeof(holder));
			f.gil_holder_name = holder;
		}
	}
	f.task = task_name(c, e->task, e->task_name, tname, sizeof(tname));
	f.stack.n = stack_resolve(c, e->frames, (int)n, info);
	f.stack.frames = info;
	f.stack.truncated = !!(e->flags & AP_F_TRUNCATED);
	if (count) {
		lr->blocks++;
		c->blocks++;
		if (in_progress)
			c->in_progress++;
	}
	/* off-CPU time is part of a stall: let it vote for the stack */
	if (!in_progress) {
		sample_add(lr, e, n, e->duration_ns);
		block_count(c, &f);
		recent_add(c, &f);
	}
	output__finding(c->o->out, c->o->format, &f);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct collector *c = ctx;
	const struct ap_event *e = data;
	struct loop_rec *lr;
	uint32_t n;

	if (len < offsetof(struct ap_event, frames) || c->execd)
		return 0;
	if (e->kind == AP_EV_EXEC) {
		c->execd = true;
		/* stop: the ring's later events are the new program's */
		return -ECANCELED;
	}
	n = e->nframes;
	if (n > AP_MAX_FRAMES)
		n = AP_MAX_FRAMES;
	if (n >
	    (len - offsetof(struct ap_event, frames)) / sizeof(e->frames[0]))
		n = (len - offsetof(struct ap_event, frames)) /
		    sizeof(e->frames[0]);

	switch (e->kind) {
	case AP_EV_LOOP_NEW:
		lr = loop_add(c, e->tid);
		if (lr && lr->state != LOOP_CONFIRMED) {
			lr->state = LOOP_PENDING;
			lr->tries = 0;
			loop_confirm(c, lr);
		}
		break;
	case AP_EV_SAMPLE:
		lr = loop_find(c, e->tid);
		if (lr && lr->state != LOOP_REJECTED)
			sample_add(lr, e, n, e->duration_ns);
		if (lr && lr->state == LOOP_CONFIRMED)
			churn__sample(c->churn, e->frames, n);
		break;
	case AP_EV_STALL:
		on_stall(c, e);
		break;
	case AP_EV_BLOCK:
		block_report(c, e, n, false, true);
		break;
	case AP_EV_UNAWAITED:
		if (c->hygiene)
			hygiene__unawaited(c->hygiene, e->code, e->frames,
					   (int)n, e->ts / 1e9);
		break;
	case AP_EV_FINALIZE:
		if (c->hygiene)
			on_finalized(c, e, n);
		break;
	}
	return 0;
}

/* Now, or when the BPF side stopped watching: a loop that got back to its
 * selector after that still looks busy in the map. */
static double seen_until(const struct collector *c)
{
	return c->watched_until ? c->watched_until : clock__mono();
}

/*
 * A loop that hangs never gets back to its selector, so the BPF side never
 * sees the iteration end.  Report what is still going on: periodically
 * once it has lasted a second (@final false), and at the end of the run
 * whatever is over its threshold (@final true).
 */
static void loops_watch(struct collector *c, bool final)
{
	static struct py_frame_info info[AP_MAX_FRAMES];
	static struct ap_event e;
	char tname[PYSYM_NAME_MAX];
	const uint8_t *task_snap;
	uint64_t now = (uint64_t)(seen_until(c) * 1e9), task;
	uint64_t min_stall = (uint64_t)(c->o->stall_ms * 1e6);
	uint64_t min_block = (uint64_t)(c->o->syscall_ms * 1e6);

	if (!final) {
		min_stall =
			min_stall > 1000000000ULL ? min_stall : 1000000000ULL;
		min_block =
			min_block > 1000000000ULL ? min_block : 1000000000ULL;
	}
	for (int i = 0; i < c->nloops; i++) {
		struct loop_rec *lr = &c->loops[i];
		struct ap_stack st;
		struct ap_loop l;
		bool ongoing, returned;
		uint32_t n = 0;

		if (!loop_read(c, lr, &l))
			continue;
		/* blocked in a syscall right now (@ongoing); or, at the end,
		 * back from one that the BPF side closes only when the loop
		 * next switches out or gets back to its selector */
		ongoing = l.blk_start && l.blk_out && now > l.blk_start &&
			  now - l.blk_start >= min_block &&
			  (final || lr->reported_blk != l.blk_start);
		returned = final && l.blk_start && !l.blk_out &&
			   l.blk_last_in > l.blk_start &&
			   l.blk_last_in - l.blk_start >= min_block;

		if (ongoing || returned) {
			uint64_t end = ongoing ? now : l.blk_last_in;

			e = (struct ap_event){
				.kind = AP_EV_BLOCK,
				.tid = lr->tid,
				.ts = end,
				.start_ns = l.blk_start,
				.duration_ns = end - l.blk_start,
				.iter_seq = l.blk_iter_seq,
				.syscall_nr = l.blk_nr,
				.fd = l.blk_fd,
				.flags = l.blk_flags,
				.file = l.blk_file,
				.gil_holder = l.blk_gil_holder,
				.task = l.blk_task,
			};
			n = l.blk_nframes;
			if (n > AP_MAX_FRAMES ||
			    bpf_map__lookup_elem(c->skel->maps.blk_stacks,
						 &lr->tid, sizeof(lr->tid), &st,
						 sizeof(st), 0))
				n = 0;
			memcpy(e.frames, st.frames, n * sizeof(st.frames[0]));
			memcpy(e.task_name, l.blk_task_name,
			       sizeof(e.task_name));
			lr->reported_blk = l.blk_start;
			block_report(c, &e, n, ongoing, final);
		}
		/* an iteration that has not ended */
		if (l.busy_start && !l.sel_sleep && now > l.busy_start &&
		    now - l.busy_start >= min_stall &&
		    (final || lr->reported_seq != l.iter_seq)) {
			struct ap_finding f = {
				.event = "stall",
				.pid = c->target.pid,
				.ns_pid = c->target.ns_pid,
				.tid = lr->tid,
				.ns_tid = ns_tid_of(c, lr->tid),
				.ts = now / 1e9,
				.duration_ms = (now - l.busy_start) / 1e6,
				.fd = -1,
				.in_progress = 1,
			};

			f.stack.n = stall_stack(c, lr, l.iter_seq, info,
						&f.samples, &f.stack_share,
						&f.gc_share, &task, &task_snap);
			f.nwstacks = stall_wstacks(c, lr, l.iter_seq);
			f.wstacks = c->wstacks;
			/* no CPU samples: it is the blocking call above */
			if (!f.stack.n && n && e.tid == lr->tid) {
				f.stack.n = stack_resolve(c, e.frames, (int)n,
							  info);
				f.stack_share = 1;
				task = e.task;
				task_snap = e.task_name;
			}
			f.task = task_snap ? task_name(c, task, task_snap,
						       tname, sizeof(tname))
					   : NULL;
			f.stack.frames = info;
			lr->reported_seq = l.iter_seq;
			if (final) {
				c->stalls++;
				c->in_progress++;
				lr->stalls++;
			}
			output__finding(c->o->out, c->o->format, &f);
		}
	}
}

/* --- BPF lifecycle ------------------------------------------------- */

/* The interpreter's object file as we can open it: false if unknown. */
static bool object_path(const struct collector *c, char *path, size_t len)
{
	const char *obj = c->target.object;

	if (obj[0] != '/')
		return false;
	/* a container's own root first; a chroot's paths are ours already */
	snprintf(path, len, "/proc/%d/root%s", c->target.pid, obj);
	if (access(path, R_OK))
		snprintf(path, len, "%s", obj);
	return true;
}

/* The file the target's _asyncio module is in, as we can open it: its
 * shared object, else the interpreter (built in); false if unknown. */
static bool asyncio_object(const struct collector *c, char *path, size_t len)
{
	char maps[64], line[PATH_MAX + 128], *p;
	bool found = false;
	FILE *f;

	snprintf(maps, sizeof(maps), "/proc/%d/maps", c->target.pid);
	f = fopen(maps, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		p = strchr(line, '/');
		if (!p || !strstr(p, "/_asyncio."))
			continue;
		p[strcspn(p, "\n")] = '\0';
		snprintf(path, len, "/proc/%d/root%s", c->target.pid, p);
		if (access(path, R_OK))
			snprintf(path, len, "%s", p);
		found = true;
	}
	fclose(f);
	return found || object_path(c, path, len);
}

/*
 * Time every collection on loop threads with the interpreter's own
 * gc__start/gc__done USDT probes, where the build has them (Debian's do);
 * elsewhere GC time stays sampled.
 */
static void gc_usdt_attach(struct collector *c)
{
	char path[PATH_MAX + 32];

	if (!object_path(c, path, sizeof(path)))
		return;
	c->gc_links[0] = bpf_program__attach_usdt(c->skel->progs.on_gc_start,
						  c->target.pid, path, "python",
						  "gc__start", NULL);
	if (c->gc_links[0])
		c->gc_links[1] = bpf_program__attach_usdt(
			c->skel->progs.on_gc_done, c->target.pid, path,
			"python", "gc__done", NULL);
	c->gc_usdt = c->gc_links[0] && c->gc_links[1];
	if (!c->gc_usdt) {
		bpf_link__destroy(c->gc_links[0]);
		c->gc_links[0] = NULL;
	}
	if (c->o->verbose)
		fprintf(stderr, "asyncprobe: garbage collections %s\n",
			c->gc_usdt ? "timed by the gc__start/gc__done USDT "
				     "probes"
				   : "sampled (no gc USDT probes in the "
				     "interpreter)");
}

/*
 * Catch coroutines dropped unawaited where the interpreter names the
 * function that warns of them (python.org-style builds keep it in their
 * symbol table; Debian strips it).  It runs only for such a bug.
 */
/*
 * Catch what _asyncio's finalizers report: a uprobe on the one instruction
 * of each report that loads its message (found by the string's address in
 * the machine code), so it runs for that report only, never for a healthy
 * task.  Not attached when either is not found exactly once.
 */
static void fin_attach(struct collector *c)
{
	static const char *const msgs[2] = {
		"Task was destroyed but it is pending!",
		"%s exception was never retrieved",
	};
	struct bpf_program *progs[2] = {
		c->skel->progs.on_task_pending,
		c->skel->progs.on_exception_unretrieved,
	};
	char path[PATH_MAX + 32];
	struct elf_file *ef;
	uint64_t off[2];

	if (!c->fin_known || !asyncio_object(c, path, sizeof(path)))
		return;
	ef = elf_file__open(path);
	if (!ef)
		return;
	for (int i = 0; i < 2; i++) {
		int n = elf_file__string_loads(ef, msgs[i], off, 2);

		if (n == 1)
			c->fin_links[i] = bpf_program__attach_uprobe(
				progs[i], false, c->target.pid, path, off[0]);
		if (c->o->verbose)
			fprintf(stderr, "asyncprobe: \"%s\": %s (%s)\n",
				msgs[i],
				c->fin_links[i] ? "each one caught"
						: "not seen",
				n == 1	 ? "uprobe on its message"
				: n <= 0 ? "no code loads the message"
					 : "the message is loaded in more "
					   "than one place");
	}
	elf_file__close(ef);
}

static void unawaited_attach(struct collector *c)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts,
		    .func_name = "_PyErr_WarnUnawaitedCoroutine");
	char path[PATH_MAX + 32];
	libbpf_print_fn_t was;

	if (!object_path(c, path, sizeof(path)))
		return;
	/* a stripped build is the common case, not a failure to print */
	was = libbpf_set_print(NULL);
	c->unawaited_link = bpf_program__attach_uprobe_opts(
		c->skel->progs.on_unawaited, c->target.pid, path, 0, &opts);
	libbpf_set_print(was);
	if (c->o->verbose)
		fprintf(stderr, "asyncprobe: coroutines never awaited: %s\n",
			c->unawaited_link
				? "each one caught (uprobe on "
				  "_PyErr_WarnUnawaitedCoroutine)"
				: "not seen (the interpreter does not name "
				  "_PyErr_WarnUnawaitedCoroutine)");
}

/* Which loop thread runs event loop object @loop: the thread state says
 * on 3.14+; elsewhere only a lone loop with a lone loop thread is sure. */
static uint32_t loop_tid_of(void *ctx, uint64_t loop, int nloops)
{
	struct collector *c = ctx;
	uint32_t only = 0;
	int confirmed = 0;

	for (int i = 0; i < c->nloops; i++) {
		struct loop_rec *lr = &c->loops[i];
		uint64_t ts, running;

		if (lr->state != LOOP_CONFIRMED)
			continue;
		confirmed++;
		only = lr->tid;
		if (c->asyncio.tstate_running_loop &&
		    !tstate_of(c, lr->tid, &ts) &&
		    !proc_read(c->target.pid,
			       ts + c->asyncio.tstate_running_loop, &running,
			       sizeof(running)) &&
		    running == loop)
			return lr->tid;
	}
	return nloops == 1 && confirmed == 1 ? only : 0;
}

/*
 * Does the target see another CLOCK_MONOTONIC (a time namespace)?  Its
 * loop's clock would then not compare with the kernel's.
 */
static bool timens_offset(const struct collector *c)
{
	char path[64], name[32];
	long long sec, nsec;
	bool off = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/timens_offsets", c->target.pid);
	f = fopen(path, "re");
	if (!f)
		return false; /* no time namespaces here */
	while (fscanf(f, "%31s %lld %lld", name, &sec, &nsec) == 3)
		if (!strcmp(name, "monotonic") && (sec || nsec))
			off = true;
	fclose(f);
	return off;
}

static int bpf_open_load(struct collector *c)
{
	struct hooks_config cfg = {
		.tgid = c->target.pid,
		.stall_ns = (uint64_t)(c->o->stall_ms * 1e6),
		.block_ns = (uint64_t)(c->o->syscall_ms * 1e6),
		.only = c->o->hooks,
		.sample_period_ns = (uint64_t)(c->o->sample_ms * 1e6),
		/* an exporter watches many: a ring each, mapped twice */
		.ring_bytes = c->o->listen || c->o->match ? AP_RING_SMALL : 0,
		.verbose = c->o->verbose,
	};
	const struct py_asyncio_layout *al;
	int err;

	py_target__bpf_walk(&c->target, &cfg.walk);
	if (!py_target__gil(&c->target, &cfg.gil)) {
		cfg.gil_size = c->target.off->gil_size;
		cfg.gil_holder_off = c->target.off->gil_last_holder;
	}
	py_target__gc_flag(&c->target, &cfg.gc_flag);
	al = py_asyncio__layout(c->target.major, c->target.minor);
	if (al)
		cfg.coro_code_off = (uint64_t)al->coro_code;
	if (al && al->fut_state > 0 && al->fut_exception > 0 &&
	    al->task_coro > 0 && al->task_name > 0 && al->type_name > 0 &&
	    al->type_base > 0) {
		cfg.fin = (struct ap_fin_layout){
			.ob_type = (uint64_t)c->target.off->object_type,
			.type_name = (uint64_t)al->type_name,
			.type_base = (uint64_t)al->type_base,
			.fut_state = (uint64_t)al->fut_state,
			.fut_exception = (uint64_t)al->fut_exception,
			.task_coro = (uint64_t)al->task_coro,
		};
		cfg.task_name_off = (uint64_t)al->task_name;
		c->fin_known = true;
	}
	if (!py_target__asyncio(&c->target, &c->asyncio)) {
		cfg.running_task_off = c->asyncio.tstate_running_task;
		cfg.task_name_off = c->asyncio.task_name;
		if (c->o->verbose)
			fprintf(stderr,
				"asyncprobe: asyncio tasks from .AsyncioDebug "
				"(running task at +%zu, name at +%zu)\n",
				c->asyncio.tstate_running_task,
				c->asyncio.task_name);
	}
	c->skel = hooks__load(&cfg, &c->variant);
	if (!c->skel)
		return -EINVAL;
	c->selhook = selhook__new(c->skel, clock__mono(), c->o->selector_always,
				  c->o->verbose);
	c->clocks_usable = selhook__windowed(c->selhook) && !timens_offset(c);
	if (selhook__windowed(c->selhook) && !c->clocks_usable)
		fprintf(stderr,
			"asyncprobe: PID %d lives in a time namespace of its "
			"own: its loops' clocks do not compare with the "
			"kernel's, so the selector hook (a syscall tracepoint, "
			"slowing every syscall here) stays attached\n",
			c->target.pid);
	if (c->o->verbose) {
		if (cfg.sample_period_ns)
			fprintf(stderr,
				"asyncprobe: loop stacks sampled every %g ms "
				"of loop CPU (task-clock)\n",
				c->o->sample_ms);
		else
			fprintf(stderr, "asyncprobe: loop stacks sampled on "
					"the timer tick\n");
	}
	gc_usdt_attach(c);
	c->rb = ring_buffer__new(bpf_map__fd(c->skel->maps.events), on_event, c,
				 NULL);
	if (!c->rb) {
		err = -errno;
		fprintf(stderr,
			"asyncprobe: failed to open the ring buffer: %s\n",
			strerror(-err));
		return err;
	}
	return 0;
}

/* Counter @key of the BPF side (enum ap_count), summed over the CPUs. */
static uint64_t bpf_count(struct collector *c, uint32_t key)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals, sum = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	if (!bpf_map__lookup_elem(c->skel->maps.counts, &key, sizeof(key), vals,
				  sizeof(*vals) * (size_t)ncpu, 0))
		for (int i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

static uint64_t events_lost(struct collector *c)
{
	return bpf_count(c, AP_CNT_LOST);
}

/* The hygiene findings by kind (with those the BPF side only counted) and
 * the descriptors by kind. */
static void hygiene_counts(struct collector *c, uint64_t *findings,
			   int64_t *fds)
{
	hygiene__skipped(c->hygiene, AP_HY_NEVER_AWAITED,
			 bpf_count(c, AP_CNT_UNAWAITED_SKIPPED));
	hygiene__skipped(c->hygiene, AP_HY_TASK_DESTROYED_PENDING,
			 bpf_count(c, AP_CNT_PENDING_SKIPPED));
	hygiene__skipped(c->hygiene, AP_HY_EXCEPTION_NEVER_RETRIEVED,
			 bpf_count(c, AP_CNT_UNRETRIEVED_SKIPPED));
	hygiene__counts(c->hygiene, findings, fds);
}

/* Each confirmed loop as of @end (the wait or iteration going on then
 * counts too) into @ls; returns how many. */
static int loops_fill(struct collector *c, double end,
		      struct ap_loop_summary *ls)
{
	uint64_t now = (uint64_t)(end * 1e9);
	int n = 0;

	for (int i = 0; ls && i < c->nloops; i++) {
		struct loop_rec *lr = &c->loops[i];
		struct ap_loop l;

		if (!loop_read(c, lr, &l))
			continue;
		loop_until(&l, now);
		ls[n++] = (struct ap_loop_summary){
			.tid = lr->tid,
			.ns_tid = ns_tid_of(c, lr->tid),
			.iterations = l.iterations,
			.busy_ms = l.busy_ns / 1e6,
			.idle_ms = l.idle_ns / 1e6,
			.max_iteration_ms = l.max_busy_ns / 1e6,
			.gil_wait_ms = l.gil_wait_ns / 1e6,
			.gil_waits = l.gil_waits,
			/* timed by USDT, else the CPU time of the samples
			 * taken while collecting */
			.gc_ms = c->gc_usdt ? l.gc_pause_ns / 1e6
					    : l.gc_sample_cpu_ns / 1e6,
			.gc_timed = c->gc_usdt,
			.gc_pauses = l.gc_pauses,
			.gc_pause_max_ms = l.gc_pause_max_ns / 1e6,
			.gc_gen_pauses = { l.gc_gen_pauses[0],
					   l.gc_gen_pauses[1],
					   l.gc_gen_pauses[2] },
			.cpu_samples = l.samples,
			.stalls = lr->stalls,
			.blocking_syscalls = lr->blocks,
		};
	}
	return n;
}

/* Records: the loops' counters every LOOP_STATS_S, so that a recording
 * cut short still tells how busy the loops were. */
static void loop_stats_record(struct collector *c)
{
	struct ap_loop_summary *ls = calloc(AP_MAX_LOOPS, sizeof(*ls));
	double now = clock__mono();
	int n = loops_fill(c, now, ls);

	if (n)
		output__loop_stats(c->o->out, c->target.pid, c->target.ns_pid,
				   now, c->start_ts, ls, n);
	free(ls);
}

/* The hygiene kinds looked for: long_await, the last, only when watched
 * (--await-threshold); one not looked for has no count, rather than a 0. */
static int hygiene_kinds(const struct collector *c)
{
	return c->watch ? AP_HY_KINDS : AP_HY_LONG_AWAIT;
}

static void summary_print(struct collector *c, double end)
{
	struct ap_loop_summary *ls = calloc(AP_MAX_LOOPS, sizeof(*ls));
	struct ap_task_summary tasks;
	uint64_t hygiene[AP_HY_KINDS];
	int64_t fds[AP_FD_KINDS];
	struct ap_summary s = {
		.pid = c->target.pid,
		.ns_pid = c->target.ns_pid,
		.ts = end,
		.start_ts = c->start_ts,
		.end_ts = end,
		.stalls = c->stalls,
		.blocking_syscalls = c->blocks,
		.events_lost = events_lost(c),
		.in_progress = c->in_progress,
		.entries_unseen = bpf_count(c, AP_CNT_ENTRY_UNSEEN),
		.stale_wakeups = bpf_count(c, AP_CNT_STALE_WAKE),
		.selector_hook_share = selhook__share(c->selhook, end),
		.python = c->python,
		.loops = ls,
		.tasks = &tasks,
		.hygiene_names = ap_hygiene_names,
		.hygiene = hygiene,
	};

	if (c->hygiene && !c->execd) {
		hygiene_counts(c, hygiene, fds);
		s.nhygiene = hygiene_kinds(c);
	}

	if (c->execd)
		churn__freeze(c->churn);
	churn__finish(c->churn, end, &tasks);
	if (c->gc_len && !c->execd && gc_read(c, s.gc_collections)) {
		s.gc_known = 1;
		for (int i = 0; i < 3; i++)
			s.gc_collections[i] -= c->gc_first[i];
	}
	s.nloops = loops_fill(c, seen_until(c), ls);
	output__summary(c->o->out, c->o->format, &s);
	free(ls);
}

/*
 * Every BPF program detached but the watchpoints' (watch__free's).  It
 * takes the better part of a second (the kernel closes each tracepoint's
 * perf event after a grace period, one at a time): a run ends by stopping
 * the programs (collector_quiesce) and detaches after its summary.
 */
static void links_destroy(struct collector *c)
{
	if (c->skel)
		asyncprobe_bpf__detach(c->skel);
	for (int i = 0; i < c->nloops; i++) {
		/* the link owns the event's fd: destroying it closes that */
		bpf_link__destroy(c->loops[i].perf_link);
		c->loops[i].perf_link = NULL;
	}
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(c->gc_links[i]);
		bpf_link__destroy(c->fin_links[i]);
		c->gc_links[i] = c->fin_links[i] = NULL;
	}
	bpf_link__destroy(c->unawaited_link);
	c->unawaited_link = NULL;
}

void collector__free(struct collector *c)
{
	if (!c)
		return;
	selhook__free(c->selhook);
	links_destroy(c);
	for (int i = 0; i < c->nloops; i++)
		free(c->loops[i].samples);
	churn__free(c->churn);
	hygiene__free(c->hygiene);
	watch__free(c->watch);
	ring_buffer__free(c->rb);
	hooks__destroy(c->skel);
	pysym__free(c->sym);
	sitetab__free(c->stall_sites);
	sitetab__free(c->block_sites);
	free(c->loop_metrics);
	free(c->wframes);
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c);
}

static void comm_read(struct collector *c)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", c->target.pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(c->comm, sizeof(c->comm), f))
		c->comm[strcspn(c->comm, "\n")] = '\0';
	fclose(f);
}

struct collector *collector__new(const struct ap_options *o, pid_t pid,
				 char *err, size_t errlen)
{
	struct collector *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->o = o;
	c->pidfd = -1;
	if (py_target__open(&c->target, pid, err, errlen))
		goto fail;
	if (c->target.micro >= 0)
		snprintf(c->python, sizeof(c->python), "%d.%d.%d",
			 c->target.major, c->target.minor, c->target.micro);
	else
		snprintf(c->python, sizeof(c->python), "%d.%d", c->target.major,
			 c->target.minor);
	comm_read(c);
	if (o->verbose)
		fprintf(stderr,
			"asyncprobe: PID %d: CPython layout from the %s\n", pid,
			c->target.layout_source);
	c->sym = pysym__new(&c->target);
	c->churn = churn__new(o, &c->target, c->sym);
	c->hygiene = hygiene__new(o, &c->target, c->sym);
	c->stall_sites = sitetab__new(MAX_SITES);
	c->block_sites = sitetab__new(MAX_SITES);
	c->loop_metrics = calloc(AP_MAX_LOOPS, sizeof(*c->loop_metrics));
	if (!c->sym || !c->churn || !c->hygiene || !c->stall_sites ||
	    !c->block_sites || !c->loop_metrics) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	churn__set_loop_tid(c->churn, loop_tid_of, c);
	churn__set_hygiene(c->churn, c->hygiene);
	if (bpf_open_load(c)) {
		snprintf(err, errlen,
			 "could not load the BPF programs for PID %d (see "
			 "above)",
			 pid);
		goto fail;
	}
	/* the collector's counters before any finding can start */
	if (!py_target__gc_stats(&c->target, &c->gc_stats))
		gc_tick(c, clock__mono());
	threads_refresh(c);
	/* once the threads' states are known: the stack is the finding */
	unawaited_attach(c);
	fin_attach(c);
	/* long_await's watchpoints cost the target (debug registers): only
	 * when asked for */
	if (c->o->await_threshold_s > 0) {
		c->watch = watch__new(c->skel->progs.on_watch,
				      bpf_map__fd(c->skel->maps.watch_hits));
		hygiene__set_watch(c->hygiene, c->watch);
	}
	loops_seed(c);
	if (c->nthreads == 0) {
		uint64_t probe;

		if (proc_read(pid, c->target.runtime, &probe, sizeof(probe)) ==
		    -EPERM) {
			snprintf(err, errlen,
				 "cannot read the memory of PID %d: run as "
				 "root, or grant CAP_SYS_PTRACE",
				 pid);
			goto fail;
		}
	}
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	c->start_ts = clock__mono();
	churn__tick(c->churn, c->start_ts);
	return c;
fail:
	collector__free(c);
	return NULL;
}

int collector__ring_fd(const struct collector *c)
{
	return ring_buffer__epoll_fd(c->rb);
}

int collector__pidfd(const struct collector *c)
{
	return c->pidfd;
}

pid_t collector__pid(const struct collector *c)
{
	return c->target.pid;
}

const char *collector__python(const struct collector *c)
{
	return c->python;
}

const char *collector__object(const struct collector *c)
{
	return c->target.object;
}

const char *collector__hooks(const struct collector *c)
{
	return c->variant;
}

void collector__consume(struct collector *c)
{
	ring_buffer__consume(c->rb);
}

bool collector__gone(const struct collector *c)
{
	return kill(c->target.pid, 0) && errno == ESRCH;
}

bool collector__execd(const struct collector *c)
{
	return c->execd;
}

void collector__tick(struct collector *c, unsigned long ticks)
{
	/* samples are queued without a wakeup */
	ring_buffer__consume(c->rb);
	loops_watch(c, false);
	churn__tick(c->churn, clock__mono());
	if (!c->execd)
		hygiene__tick(c->hygiene, clock__mono());
	gc_tick(c, clock__mono());
	if (c->o->command == AP_CMD_RECORD &&
	    ticks % (LOOP_STATS_S * 1000 / AP_TICK_MS) == 0)
		loop_stats_record(c);
	if (ticks % (1000 / AP_TICK_MS) == 0) {
		pysym__new_epoch(c->sym);
		threads_refresh(c);
		for (int j = 0; j < c->nloops; j++)
			loop_confirm(c, &c->loops[j]);
	}
	for (int j = 0; j < c->nloops; j++)
		loop_clock_check(c, &c->loops[j],
				 ticks % (1000 / AP_TICK_MS) == 0);
	if (!c->execd && !c->watched_until)
		selhook__tick(c->selhook, clock__mono(),
			      selhook_needed(c, clock__mono()));
}

/*
 * Stop the BPF side before the run's last reads.  It goes on closing
 * iterations and calls until stopped: one closed between the ring's last
 * drain and the read of its loop would be in neither, and be lost.  The
 * programs are told to stop (the links go later, in collector__free:
 * closing them takes the better part of a second, which a user's Ctrl-C
 * should not wait for); without a writable .bss they are detached.
 */
static void collector_quiesce(struct collector *c)
{
	/* a loop that gets back to its selector from now on is not seen
	 * to, and must not be reported as a stall growing until the final
	 * read */
	c->watched_until = clock__mono();
	if (c->skel && c->skel->bss)
		c->skel->bss->stopped = 1;
	else
		links_destroy(c);
	/* a program that began before that may still be running:
	 * MEMBARRIER_CMD_GLOBAL waits an RCU grace period, which outlasts it */
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		usleep(20000);
}

void collector__finish(struct collector *c)
{
	collector_quiesce(c);
	ring_buffer__consume(c->rb);
	/* after an exec there is nothing of the Python program left to read */
	if (!c->execd)
		loops_watch(c, true);
	summary_print(c, clock__mono());
}

void collector__counts(const struct collector *c, uint64_t *stalls,
		       uint64_t *blocks)
{
	*stalls = c->stalls;
	*blocks = c->blocks;
}

void collector__metrics(struct collector *c, struct ap_target_metrics *m)
{
	struct ap_task_counts tc;
	int n = 0;

	ring_buffer__consume(c->rb);
	for (int i = 0; i < c->nloops; i++) {
		struct loop_rec *lr = &c->loops[i];
		struct ap_loop_metrics *lm = &c->loop_metrics[n];
		uint64_t now = (uint64_t)(clock__mono() * 1e9);
		struct ap_loop l;

		if (!loop_read(c, lr, &l))
			continue;
		memset(lm, 0, sizeof(*lm));
		lm->tid = lr->tid;
		lm->lag_sum_ns = l.lag_sum_ns; /* the iterations timed */
		lm->current_ns = loop_until(&l, now);
		lm->busy_ns = l.busy_ns;
		lm->idle_ns = l.idle_ns;
		/* a wakeup between the read and now: never go back */
		if (lm->busy_ns < lr->busy_out)
			lm->busy_ns = lr->busy_out;
		if (lm->idle_ns < lr->idle_out)
			lm->idle_ns = lr->idle_out;
		lr->busy_out = lm->busy_ns;
		lr->idle_out = lm->idle_ns;
		memcpy(lm->lag, l.lag_hist, sizeof(lm->lag));
		lm->gil_wait_ns = l.gil_wait_ns;
		lm->gil_waits = l.gil_waits;
		lm->gc_timed = c->gc_usdt;
		memcpy(lm->gc_hist, l.gc_hist, sizeof(lm->gc_hist));
		memcpy(lm->gc_ns, l.gc_gen_pause_ns, sizeof(lm->gc_ns));
		n++;
	}
	*m = (struct ap_target_metrics){
		.pid = c->target.pid,
		.ns_pid = c->target.ns_pid,
		.python = c->python,
		.comm = c->comm,
		.nloops = n,
		.loops = c->loop_metrics,
		.stall_sites = c->stall_sites,
		.block_sites = c->block_sites,
		.block_hist = c->block_hist,
		.nblock_hist = c->nblock_hist,
		.events_lost = events_lost(c),
	};
	hygiene_counts(c, m->hygiene, m->fds);
	m->nhygiene = hygiene_kinds(c);
	if (!churn__counts(c->churn, &tc)) {
		m->tasks_known = 1;
		m->tasks_alive = tc.alive;
		/* counters never go back, though their sources are two
		 * readings that are not quite simultaneous */
		if (tc.created > c->tasks_created_out)
			c->tasks_created_out = tc.created;
		if (tc.finished > c->tasks_finished_out)
			c->tasks_finished_out = tc.finished;
		m->tasks_created = c->tasks_created_out;
		m->tasks_finished = c->tasks_finished_out;
	}
}
