// SPDX-License-Identifier: GPL-2.0
/*
 * asyncprobe: event-loop stalls and blocking syscalls of one CPython process.
 *
 * What fires, and who pays:
 *  - entry to the selector syscalls (fentry, else kprobe, else their
 *    tracepoints, else raw sys_enter): each such call on the machine (with
 *    raw sys_enter, every syscall) pays a tgid compare; the target's loop
 *    threads get iteration accounting.
 *  - sched_switch: every context switch pays a tgid compare; a loop thread
 *    that sleeps in a syscall other than its loop wait starts a blocking
 *    episode, and its Python stack is read right then, while it is stable.
 *  - the timer tick (local_timer_entry: a tgid compare per tick), or with
 *    --sample-period a task-clock perf event on each loop thread only: CPU
 *    samples of the Python stack while an iteration is busy, to name what
 *    a stall ran, and whether the garbage collector was running.
 *  - the gc__start/gc__done USDT probes, where the build has them (Debian's
 *    do): a uprobe per collection, rare, on loop threads only.
 *  - _PyErr_WarnUnawaitedCoroutine, where the build names it (a uprobe):
 *    only when a coroutine is dropped that never ran, a bug.
 *  - sched_process_exec: each execve pays a tgid compare; the target's
 *    own tells userspace that every address it knows is stale.
 * Nothing here writes to the target (the kernel counts USDT users in the
 * probes' semaphores, which is how the interpreter knows to fire them).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/usdt.bpf.h>
#include "asyncprobe.h"

char LICENSE[] SEC("license") = "GPL";

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define AF_INET 2
#define AF_INET6 10

const volatile __u32 targ_tgid = 0;
const volatile __u64 stall_ns = 100000000ULL;
const volatile __u64 block_ns = 10000000ULL;
/* iterations busy for less than this keep 1 in AP_SAMPLE_THIN samples:
 * short iterations need only a few (task creation sites), and each kept
 * one costs the sampled thread a stack walk */
const volatile __u64 sample_full_ns = 25000000ULL;
/* the period of the task-clock sampler (--sample-period) */
const volatile __u64 sample_period_ns = 5000000ULL;
/* sampling on the timer interrupt: the loop CPU time between samples, at
 * least (below the 4 ms tick of HZ=250, a sample every 3 at HZ=1000) */
const volatile __u64 tick_min_ns = 3000000ULL;
const volatile struct ap_py_walk py = {};

/*
 * Set by userspace when a run ends: from then on no program changes a
 * thing, so the run's last reads see a settled state at once (detaching
 * takes the better part of a second).
 */
volatile __u32 stopped = 0;

/*
 * Odd while the selector hook is attached, so that every selector entry is
 * seen; userspace bumps it after attaching and before detaching.  Where
 * the hook costs every syscall on the machine (a syscall tracepoint), it
 * is attached only now and then, and a loop's own clock times the rest.
 */
volatile __u32 hook_epoch = 1;
/*
 * What an iteration timed with the hook attached stands for: 1 while it is
 * attached all along; SELHOOK_PERIOD_S / SELHOOK_WINDOW_S in a window, for
 * the iterations unseen outside the windows (those shorter than a stall:
 * the longer ones are timed by the loop's clock there, and count once).
 */
volatile __u32 hook_weight = 1;

static __always_inline bool is_target(__u32 tgid)
{
	return tgid == targ_tgid && !stopped;
}

/* the GIL state of the target's main interpreter: a futex wait inside it
 * is a GIL wait; last_holder says who had it */
const volatile __u64 gil_lo = 0;
const volatile __u64 gil_size = 0;
const volatile __u64 gil_holder_off = 0;

/* int gc.collecting of the target's main interpreter: a sample taken
 * while it is set is garbage-collection time */
const volatile __u64 gc_flag = 0;

/* where a thread state keeps its running asyncio task (3.14+); 0: no */
const volatile __u64 running_task_off = 0;
/* where a coroutine object keeps its code object (0: unknown) */
const volatile __u64 coro_code_off = 0;
const volatile __u64 task_name_off = 0;
/* the objects the _asyncio finalizers report (fut_state 0: unknown) */
const volatile struct ap_fin_layout fin = {};

/* syscall numbers, set by userspace for this architecture */
const volatile __s32 nr_epoll_wait = -1, nr_epoll_pwait = -1,
		     nr_epoll_pwait2 = -1, nr_poll = -1, nr_ppoll = -1,
		     nr_select = -1, nr_pselect6 = -1, nr_futex = -1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AP_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct ap_loop);
} loops SEC(".maps");

/* A zeroed loop: too big for the BPF stack, new loops are copied from it */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ap_loop);
} loop_zero SEC(".maps");

/* tid -> PyThreadState * in the target, maintained by userspace */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} tstates SEC(".maps");

/* tid -> the loop's own clock, maintained by userspace */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AP_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct ap_clock);
} clocks SEC(".maps");

/* Python stack captured when a blocking episode began, per tid */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AP_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct ap_stack);
} blk_stacks SEC(".maps");

/*
 * Events are built in per-CPU scratch space (too big for the stack).  More
 * than one program can be building one on a CPU at a time: the sampler's
 * timer interrupts a syscall program of the same thread, and a syscall
 * program can be preempted (syscall tracepoints may fault).  So each
 * builder claims a slot of its own.
 */
#define AP_SCRATCH_SLOTS 4

struct ap_slot {
	__u32 busy;
	__u32 pad;
	struct ap_event e;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AP_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct ap_slot);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

/* address watched in the target (a hardware watchpoint on every CPU) ->
 * the target's writes to it since armed; keys are put by userspace */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AP_WATCH_MAX);
	__type(key, __u64);
	__type(value, __u64);
} watch_hits SEC(".maps");

/* enum ap_count */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AP_CNT_KEYS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* findings of one kind sent with their stack in the current second, per
 * CPU */
struct rate {
	__u64 sec, sent;
};

enum { RATE_UNAWAITED, RATE_PENDING, RATE_UNRETRIEVED, RATE_KEYS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RATE_KEYS);
	__type(key, __u32);
	__type(value, struct rate);
} rates SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &key);

	if (n)
		(*n)++;
}

/* Another finding of kind @key this second is within @per_s; else it is
 * counted under @skipped, with no stack walk and no ring space taken. */
static __always_inline bool rate_ok(__u32 key, __u64 now, __u64 per_s,
				    __u32 skipped)
{
	struct rate *r = bpf_map_lookup_elem(&rates, &key);

	if (!r)
		return false;
	if (r->sec != now / 1000000000ULL) {
		r->sec = now / 1000000000ULL;
		r->sent = 0;
	}
	if (++r->sent > per_s) {
		count(skipped);
		return false;
	}
	return true;
}

static __always_inline void count_lost(void)
{
	count(AP_CNT_LOST);
}

/* A scratch event, or NULL (counted as lost) when every slot is taken;
 * hand it back with event_submit() or event_put(). */
static __always_inline struct ap_event *event_get(__u32 kind, __u32 tid,
						  __u64 now)
{
	struct ap_slot *s = NULL, *t;
	struct ap_event *e;

	for (__u32 i = 0; i < AP_SCRATCH_SLOTS && !s; i++) {
		__u32 key = i;

		t = bpf_map_lookup_elem(&scratch, &key);
		if (t && !__sync_val_compare_and_swap(&t->busy, 0, 1))
			s = t;
	}
	if (!s) {
		count_lost();
		return NULL;
	}
	e = &s->e;
	e->kind = kind;
	e->tid = tid;
	e->ts = now;
	e->start_ns = 0;
	e->duration_ns = 0;
	e->iter_seq = 0;
	e->syscall_nr = -1;
	e->fd = -1;
	e->flags = 0;
	e->nframes = 0;
	e->gil_holder = 0;
	e->task = 0;
	e->gc_ns = 0;
	e->gc_gens = 0;
	e->code = 0;
	__builtin_memset(e->task_name, 0, AP_NAME_SNAP);
	e->exc_type[0] = 0;
	__builtin_memset(&e->file, 0, sizeof(e->file));
	return e;
}

static __always_inline void event_put(struct ap_event *e)
{
	struct ap_slot *s =
		(struct ap_slot *)((char *)e - offsetof(struct ap_slot, e));

	s->busy = 0;
}

static __always_inline void event_submit(struct ap_event *e)
{
	__u32 n = e->nframes;
	__u64 size;

	if (n > AP_MAX_FRAMES)
		n = AP_MAX_FRAMES;
	size = offsetof(struct ap_event, frames) + n * sizeof(struct ap_frame);
	if (size > sizeof(*e))
		size = sizeof(*e);
	/* CPU samples wait for the next finding or the collector's tick: a
	 * wakeup per sample would cost the sampled thread more than the
	 * sample itself.  A finding wakes the collector even when samples
	 * are still unread (the default wakes only a reader that is
	 * caught up), or it would wait for the tick.  Unawaited coroutines
	 * can come by the thousand: those wake only a caught-up reader. */
	if (bpf_ringbuf_output(&events, e, size,
			       e->kind == AP_EV_SAMPLE ? BPF_RB_NO_WAKEUP
			       : e->kind == AP_EV_UNAWAITED
				       ? 0
				       : BPF_RB_FORCE_WAKEUP))
		count_lost();
	event_put(e);
}

struct walk_ctx {
	__u64 p;    /* next frame to read */
	__u64 mask; /* clears the tag bits of a code pointer */
	struct ap_frame *frames;
	__u32 n;
	__u32 flags;
};

/* One frame per bpf_loop() step: the verifier checks this body once,
 * whatever the depth. */
static long walk_step(__u32 i, void *arg)
{
	struct walk_ctx *w = arg;
	__u64 p = w->p, code, instr;
	char owner = 0;
	__u32 idx;

	if (!p)
		return 1;
	if (bpf_probe_read_user(&code, sizeof(code),
				(void *)(p + py.frame_code)) ||
	    bpf_probe_read_user(&instr, sizeof(instr),
				(void *)(p + py.frame_instr)) ||
	    (py.frame_owner >= 0 &&
	     bpf_probe_read_user(&owner, sizeof(owner),
				 (void *)(p + py.frame_owner)))) {
		w->flags |= AP_F_READ_ERR;
		return 1;
	}
	/* C-stack shim frames (3.12+) are written over by the next frame */
	idx = w->n & (AP_MAX_FRAMES - 1);
	w->frames[idx].code = code & w->mask;
	w->frames[idx].instr = py.instr_size == 4 ? (__u32)instr : instr;
	if (py.owner_cstack < 0 || owner < py.owner_cstack)
		w->n++;
	if (w->n >= AP_MAX_FRAMES) {
		w->flags |= AP_F_TRUNCATED;
		return 1;
	}
	if (bpf_probe_read_user(&w->p, sizeof(w->p),
				(void *)(p + py.frame_previous))) {
		w->flags |= AP_F_READ_ERR;
		return 1;
	}
	return 0;
}

/*
 * Walk the current thread's Python frames into @frames. Must run in the
 * context of thread @tid (reads go to the current mm). Returns flags.
 */
static __always_inline __u32 stack_walk(__u32 tid, struct ap_frame *frames,
					__u32 *nframes)
{
	__u64 *tsp = bpf_map_lookup_elem(&tstates, &tid);
	struct walk_ctx w = { .frames = frames };
	__u64 p = 0;

	*nframes = 0;
	if (!tsp)
		return AP_F_NO_TSTATE;
	if (bpf_probe_read_user(&p, sizeof(p),
				(void *)(*tsp + py.tstate_frame)))
		return AP_F_READ_ERR;
	if (py.cframe_frame >= 0 && p &&
	    bpf_probe_read_user(&p, sizeof(p), (void *)(p + py.cframe_frame)))
		return AP_F_READ_ERR;
	w.p = p;
	w.mask = ~(__u64)py.code_ptr_tag_mask;
	/* more steps than frames: shim frames take steps too */
	if (bpf_loop(AP_MAX_FRAMES + 16, walk_step, &w, 0) ==
		    AP_MAX_FRAMES + 16 &&
	    w.p)
		w.flags |= AP_F_TRUNCATED;
	*nframes = w.n < AP_MAX_FRAMES ? w.n : AP_MAX_FRAMES;
	return w.flags;
}

/* The first bytes of task @task's name object into @name (zeros when
 * unreadable), read at once: the task may be gone before userspace looks. */
static __always_inline void task_name_snap(__u64 task, __u8 *name)
{
	__u64 obj = 0;

	if (!task_name_off ||
	    bpf_probe_read_user(&obj, sizeof(obj),
				(void *)(task + task_name_off)) ||
	    !obj || bpf_probe_read_user(name, AP_NAME_SNAP, (void *)obj))
		__builtin_memset(name, 0, AP_NAME_SNAP);
}

/* The asyncio task thread @tid is running now (its tstate's field), and
 * a snapshot of its name object into @name. */
static __always_inline __u64 running_task(__u32 tid, __u8 *name)
{
	__u64 *tsp, task = 0;

	if (!running_task_off)
		return 0;
	tsp = bpf_map_lookup_elem(&tstates, &tid);
	if (!tsp || bpf_probe_read_user(&task, sizeof(task),
					(void *)(*tsp + running_task_off)))
		return 0;
	if (task)
		task_name_snap(task, name);
	return task;
}

/* The code object of coroutine @coro; 0 when unknown. */
static __always_inline __u64 coro_code(__u64 coro)
{
	__u64 code = 0;

	if (!coro || !coro_code_off ||
	    bpf_probe_read_user(&code, sizeof(code),
				(void *)(coro + coro_code_off)))
		return 0;
	return code & ~(__u64)py.code_ptr_tag_mask;
}

/* Identify fd @fd of the current task: inode, and a socket's addresses. */
static __always_inline void fd_capture(int fd, struct ap_fd *out)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds, *f = NULL;
	struct socket *sock;
	struct inode *inode;
	struct sock *sk;

	__builtin_memset(out, 0, sizeof(*out));
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return;
	inode = BPF_CORE_READ(f, f_inode);
	out->mode = BPF_CORE_READ(inode, i_mode);
	out->ino = BPF_CORE_READ(inode, i_ino);
	if ((out->mode & S_IFMT) != S_IFSOCK)
		return;
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	out->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->sotype = BPF_CORE_READ(sk, sk_type);
	out->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	out->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (out->family == AF_INET) {
		bpf_core_read(out->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(out->daddr, 4, &sk->__sk_common.skc_daddr);
	} else if (out->family == AF_INET6) {
		bpf_core_read(out->saddr, 16,
			      &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(out->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

static __always_inline bool is_selector_nr(long nr)
{
	return nr >= 0 &&
	       (nr == nr_epoll_wait || nr == nr_epoll_pwait ||
		nr == nr_epoll_pwait2 || nr == nr_poll || nr == nr_ppoll ||
		nr == nr_select || nr == nr_pselect6);
}

static __always_inline __u32 selector_kind(long nr)
{
	if (nr == nr_epoll_wait || nr == nr_epoll_pwait ||
	    nr == nr_epoll_pwait2)
		return AP_SEL_EPOLL;
	if (is_selector_nr(nr))
		return AP_SEL_POLL;
	return AP_SEL_NONE;
}

/* Is this wait the loop's own selector (as opposed to a nested one)? */
static __always_inline bool is_loop_wait(const struct ap_loop *l, __u32 kind,
					 int fd)
{
	if (kind == AP_SEL_NONE || kind != l->kind)
		return false;
	return kind == AP_SEL_POLL || fd == l->loop_fd;
}

/* Emit the finished blocking episode of @l if it was long enough. */
static __always_inline void episode_end(struct ap_loop *l, __u32 tid, __u64 now)
{
	struct ap_stack *st;
	struct ap_event *e;
	__u64 start = l->blk_start, dur;
	__u32 n;

	if (!start)
		return;
	dur = (l->blk_last_in > start ? l->blk_last_in : now) - start;
	l->blk_start = 0;
	l->blk_out = 0;
	if (l->blk_flags & AP_F_GIL) {
		l->gil_wait_ns += dur;
		l->gil_waits++;
	}
	if (dur < block_ns)
		return;
	l->blocks++;
	e = event_get(AP_EV_BLOCK, tid, now);
	if (!e)
		return;
	e->start_ns = start;
	e->duration_ns = dur;
	e->iter_seq = l->blk_iter_seq;
	e->syscall_nr = l->blk_nr;
	e->fd = l->blk_fd;
	e->flags = l->blk_flags;
	e->file = l->blk_file;
	e->gil_holder = l->blk_gil_holder;
	e->task = l->blk_task;
	__builtin_memcpy(e->task_name, l->blk_task_name, AP_NAME_SNAP);
	n = l->blk_nframes;
	st = bpf_map_lookup_elem(&blk_stacks, &tid);
	if (st && n <= AP_MAX_FRAMES) {
		__builtin_memcpy(e->frames, st->frames, sizeof(st->frames));
		e->nframes = n;
	}
	event_submit(e);
}

static __always_inline struct ap_loop *loop_get(__u32 tid, __u32 kind, int fd,
						__u64 now)
{
	struct ap_loop *l = bpf_map_lookup_elem(&loops, &tid), *zero;
	struct ap_event *e;
	__u32 key = 0;

	if (l) {
		/* A thread is a candidate again when it waits differently:
		 * rejected, then a new selector (asyncio.run after a
		 * subprocess poll); or an epoll wait after poll ones. */
		bool again =
			l->ignored ? kind != l->kind || (kind == AP_SEL_EPOLL &&
							 fd != l->loop_fd)
				   : l->kind == AP_SEL_POLL &&
					     kind == AP_SEL_EPOLL;

		if (!again)
			return l;
		l->kind = kind;
		l->loop_fd = kind == AP_SEL_EPOLL ? fd : -1;
		l->ignored = 0;
		l->alien_waits = 0;
		l->busy_start = 0;
		l->sel_sleep = 0;
		l->blk_start = 0;
		l->blk_out = 0;
	} else {
		zero = bpf_map_lookup_elem(&loop_zero, &key);
		if (!zero ||
		    bpf_map_update_elem(&loops, &tid, zero, BPF_NOEXIST))
			return NULL;
		l = bpf_map_lookup_elem(&loops, &tid);
		if (!l)
			return NULL;
		l->kind = kind;
		l->loop_fd = kind == AP_SEL_EPOLL ? fd : -1;
	}
	e = event_get(AP_EV_LOOP_NEW, tid, now);
	if (e) {
		e->fd = kind == AP_SEL_EPOLL ? fd : -1;
		e->syscall_nr = kind;
		event_submit(e);
	}
	return l;
}

/*
 * A loop iteration's busy time runs from the selector's return to its next
 * entry.  Return probes are avoided (kretprobe instances run out when many
 * threads sleep in epoll_wait, and fexit is not available everywhere): a
 * selector that sleeps returns when its thread is switched back in, one
 * that does not sleep returns microseconds after its entry.
 */
static const __u64 lag_bounds[AP_LAG_NBOUNDS] = AP_LAG_BOUNDS;
static const __u64 gc_bounds[AP_GC_NBOUNDS] = AP_GC_BOUNDS;

/* The bucket of @v: the first bound it does not exceed, else the last. */
static __always_inline __u32 bucket_of(const __u64 *bounds, __u32 n, __u64 v)
{
	__u32 i;

	for (i = 0; i < n; i++)
		if (v <= bounds[i])
			break;
	return i;
}

/* An iteration starts at @now (the loop's selector returned, or will). */
static __always_inline void iteration_start(struct ap_loop *l, __u64 now)
{
	l->busy_start = now;
	l->start_epoch = hook_epoch;
	l->clk_bits = 0;
	l->alive_ns = now;
}

/*
 * The loop is back in its selector at @now: the iteration ends.  Timed
 * with the selector hook attached from its start, it is exact.  Else (the
 * loop's clock, or a sleep in the selector seen by the scheduler)
 * iterations unseen between may be merged into it: only a stall that
 * surely lasted is reported and counted, with @now as its end.
 */
static __always_inline void iteration_end(struct ap_loop *l, __u32 tid,
					  __u64 now)
{
	bool exact = (hook_epoch & 1) && l->start_epoch == hook_epoch;
	struct ap_event *e;
	__u64 busy, sure;
	__u32 b, w;

	episode_end(l, tid, now);
	if (l->busy_start && now >= l->busy_start) {
		busy = now - l->busy_start;
		l->busy_ns += busy;
		sure = exact ? busy
		       : l->alive_ns > l->busy_start
			       ? l->alive_ns - l->busy_start
			       : 0;
		/* the lag histogram: what was timed, each standing for w */
		w = busy >= stall_ns ? 1 : hook_weight;
		if (exact || sure >= stall_ns) {
			l->iterations += w;
			l->lag_sum_ns += busy * w;
			b = bucket_of(lag_bounds, AP_LAG_NBOUNDS, busy);
			if (b <= AP_LAG_NBOUNDS)
				l->lag_hist[b] += w;
		}
		if (sure > l->max_busy_ns)
			l->max_busy_ns = sure;
		if (busy >= stall_ns && sure >= stall_ns) {
			l->stalls++;
			e = event_get(AP_EV_STALL, tid, now);
			if (e) {
				e->start_ns = l->busy_start;
				e->duration_ns = busy;
				e->iter_seq = l->iter_seq;
				e->flags = exact ? 0 : AP_F_CLOCKED;
				if (l->iter_gc_seq == l->iter_seq) {
					e->gc_ns = l->iter_gc_ns;
					e->gc_gens = l->iter_gc_gens;
				}
				event_submit(e);
			}
		}
	}
	/* until the wait sleeps, the next iteration starts now */
	iteration_start(l, now);
	l->iter_seq++;
	l->sel_entered = 1;
	l->sel_sleep = 0;
}

/*
 * CLOCK_MONOTONIC nanoseconds from a double's bits holding seconds (no
 * floating point here); 0 for what is no such time (below 1 s, above
 * 2^40 s, negative, not a number).
 */
static __always_inline __u64 mono_ns(__u64 bits)
{
	__u64 m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52), secs, frac;
	__u32 e = (bits >> 52) & 0x7ff, sh;

	if (bits >> 63 || e < 1023 || e >= 1023 + 40)
		return 0;
	sh = 1075 - e; /* the value is m / 2^sh, 13 <= sh <= 52 */
	secs = m >> sh;
	frac = m & ((1ULL << sh) - 1);
	if (sh > 32) { /* keep frac * 1e9 within 64 bits */
		frac >>= sh - 32;
		sh = 32;
	}
	return secs * 1000000000ULL + ((frac * 1000000000ULL) >> sh);
}

/*
 * Read the loop's own clock, on the loop thread (a timer tick that found
 * it running, or its switch-out).  The same value: its iteration still
 * runs.  Another: the loop went through its selector since, and the
 * running iteration began then.  Unset after a value: it ended, the next
 * call has begun.  Read while the selector hook is attached too (it ends
 * the iterations then): a stall begun before a window must still be seen
 * to last.
 */
static __always_inline void clock_read(struct ap_loop *l, __u32 tid)
{
	__u64 mask = ~(__u64)py.code_ptr_tag_mask, code, p, bits, start, now;
	struct ap_clock *c;

	c = bpf_map_lookup_elem(&clocks, &tid);
	if (!c)
		return;
	if (bpf_probe_read_user(&code, sizeof(code),
				(void *)(c->frame + py.frame_code)) ||
	    (code & mask) != c->code ||
	    bpf_probe_read_user(&p, sizeof(p), (void *)c->slot))
		return;
	p &= mask; /* 3.14+: a tagged stack reference */
	if (!p) {
		/* unset: a new call, not yet back from its selector; the
		 * iteration whose clock was read has ended (else a GIL wait
		 * here would join the last one's) */
		if (l->clk_bits)
			iteration_end(l, tid, bpf_ktime_get_ns());
		return;
	}
	if (bpf_probe_read_user(&bits, sizeof(bits),
				(void *)(p + c->value_off)))
		return;
	now = bpf_ktime_get_ns();
	if (bits == l->clk_bits) {
		l->alive_ns = now;
		return;
	}
	start = mono_ns(bits);
	/* not a time of this iteration's: a float freed as it was read */
	if (!start || start > now || start < l->busy_start)
		return;
	if (l->clk_bits) {
		iteration_end(l, tid, start);
		l->sel_entered = 0;
	}
	/* else the first reading since a wake-up in the selector: the same
	 * iteration, most likely (if not, one more merged into it) */
	l->clk_bits = bits;
	l->alive_ns = now;
}

static __always_inline int selector_enter(long nr, int fd)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 tid = (__u32)id, kind = selector_kind(nr);
	struct ap_loop *l;

	if (!is_target(id >> 32))
		return 0;
	now = bpf_ktime_get_ns();
	l = loop_get(tid, kind, fd, now);
	if (!l || l->ignored)
		return 0;
	if (!is_loop_wait(l, kind, fd)) {
		/* another epoll fd: a nested selector, or a new loop on this
		 * thread replacing a closed one (then it repeats) */
		if (kind == AP_SEL_EPOLL && l->kind == AP_SEL_EPOLL &&
		    ++l->alien_waits >= 3) {
			l->loop_fd = fd;
			l->alien_waits = 0;
		}
		l->sel_entered = 0;
		return 0;
	}
	l->alien_waits = 0;
	iteration_end(l, tid, now);
	return 0;
}

/*
 * Selector entry, in the cheapest form the kernel allows, chosen by
 * userspace before load: fentry; kprobe; the per-syscall tracepoints (run
 * for selector calls only, but turn on the syscall tracing slow path for
 * every task); raw sys_enter (runs for every syscall on the machine).
 */
#define SELECTOR_PROBES(name, NR)                                              \
	SEC("fentry/__x64_sys_" #name)                                         \
	int BPF_PROG(fentry_##name, struct pt_regs *regs)                      \
	{                                                                      \
		return selector_enter(NR, (int)BPF_CORE_READ(regs, di));       \
	}                                                                      \
	SEC("kprobe/__x64_sys_" #name)                                         \
	int BPF_KPROBE(kprobe_##name, struct pt_regs *regs)                    \
	{                                                                      \
		return selector_enter(NR, (int)BPF_CORE_READ(regs, di));       \
	}

SELECTOR_PROBES(epoll_wait, nr_epoll_wait)
SELECTOR_PROBES(epoll_pwait, nr_epoll_pwait)
SELECTOR_PROBES(epoll_pwait2, nr_epoll_pwait2)
SELECTOR_PROBES(poll, nr_poll)
SELECTOR_PROBES(ppoll, nr_ppoll)
SELECTOR_PROBES(select, nr_select)
SELECTOR_PROBES(pselect6, nr_pselect6)

/*
 * One program for every selector syscall's tracepoint, which userspace
 * attaches to each (no target here: nothing auto-attaches it), so that it
 * is verified once, not seven times; the event says which syscall.
 */
SEC("tracepoint")
int tp_selector(struct trace_event_raw_sys_enter *ctx)
{
	return selector_enter(ctx->id, (int)ctx->args[0]);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_tp_sys_enter, struct pt_regs *regs, long id)
{
	if (!is_target(bpf_get_current_pid_tgid() >> 32) || !is_selector_nr(id))
		return 0;
	return selector_enter(id, (int)BPF_CORE_READ(regs, di));
}

struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___old *)t, state);
}

/*
 * Runs for every context switch on the machine: the tgids come from the
 * caller, read directly where BTF allows (no helper call).  @btf: the
 * tasks are BTF pointers, so a wake-up in the loop wait can be checked
 * against @next's registers (a flag left over would make the thread's
 * running time idle).
 */
static __always_inline int on_switch(bool preempt, struct task_struct *prev,
				     struct task_struct *next, __u32 prev_tgid,
				     __u32 next_tgid, bool btf)
{
	__u32 tid;
	struct ap_loop *l;
	struct pt_regs *regs;
	struct ap_stack *st;
	__u64 now = 0, ip, sp;
	bool gil;
	long nr;
	int fd;

	if (is_target(next_tgid)) {
		tid = BPF_CORE_READ(next, pid);
		l = bpf_map_lookup_elem(&loops, &tid);
		if (l && l->sel_sleep) {
			/* woken in its loop wait: idle until now */
			now = bpf_ktime_get_ns();
			l->sel_sleep = 0;
			/* no hook to see the next selector call: its sleep
			 * must end the iteration (the hook's mark would stay
			 * after it detached, and a blocking episode with it) */
			if (!(hook_epoch & 1))
				l->sel_entered = 0;
			regs = btf ? (struct pt_regs *)bpf_task_pt_regs(next)
				   : NULL;
			if (regs &&
			    !is_loop_wait(
				    l,
				    selector_kind(BPF_CORE_READ(regs, orig_ax)),
				    (int)BPF_CORE_READ(regs, di))) {
				count(AP_CNT_STALE_WAKE);
			} else {
				if (l->busy_start)
					l->idle_ns += now - l->busy_start;
				iteration_start(l, now);
			}
		} else if (l && l->blk_out) {
			/* back from a blocking call inside the iteration */
			now = bpf_ktime_get_ns();
			l->blk_last_in = now;
			l->blk_out = 0;
			l->alive_ns = now;
		}
	}

	if (!is_target(prev_tgid))
		return 0;
	tid = BPF_CORE_READ(prev, pid);
	l = bpf_map_lookup_elem(&loops, &tid);
	/* prev is current here: its memory can be read, its clock too */
	if (l && !l->ignored && l->busy_start && !l->sel_sleep)
		clock_read(l, tid);
	if (preempt)
		return 0;
	if (task_state(prev) == 0) /* TASK_RUNNING: yielded, not blocked */
		return 0;
	if (l ? l->ignored || !l->busy_start : hook_epoch & 1)
		return 0;

	/* its user registers say which syscall */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	nr = BPF_CORE_READ(regs, orig_ax);
	if (!l) {
		/* with the selector hook detached, a new loop shows itself
		 * by sleeping in its selector: idle from now */
		if (!is_selector_nr(nr))
			return 0;
		if (!now)
			now = bpf_ktime_get_ns();
		l = loop_get(tid, selector_kind(nr),
			     (int)BPF_CORE_READ(regs, di), now);
		if (!l)
			return 0;
		iteration_start(l, now);
		l->sel_entered = 1;
		l->sel_sleep = 1;
		return 0;
	}
	if (nr < 0) { /* not in a syscall (page fault): not a blocking call */
		l->sel_entered = 0;
		return 0;
	}
	fd = (int)BPF_CORE_READ(regs, di);
	if (!now)
		now = bpf_ktime_get_ns();
	if (is_loop_wait(l, selector_kind(nr), fd)) {
		/* no program saw this wait's entry (the kernel can skip a
		 * tracing program): its iteration ended by now */
		if (!l->sel_entered) {
			if (hook_epoch & 1)
				count(AP_CNT_ENTRY_UNSEEN);
			iteration_end(l, tid, now);
		}
		l->sel_sleep = 1;
		return 0;
	}
	l->sel_entered = 0;
	ip = BPF_CORE_READ(regs, ip);
	sp = BPF_CORE_READ(regs, sp);

	/* the same call site sleeping again (a futex retry, a wait loop in
	 * C) continues the episode; so does any wait for the GIL after one
	 * (its condition variable, then its mutex) */
	gil = nr == nr_futex && gil_size &&
	      (__u64)BPF_CORE_READ(regs, di) - gil_lo < gil_size;
	if (l->blk_start && ((l->blk_nr == nr && l->blk_ip == ip &&
			      l->blk_sp == sp && l->blk_fd == fd) ||
			     (gil && (l->blk_flags & AP_F_GIL)))) {
		l->blk_out = now;
		return 0;
	}
	episode_end(l, tid, now);
	l->blk_start = now;
	l->blk_out = now;
	l->blk_last_in = 0;
	l->blk_nr = nr;
	l->blk_fd = fd;
	l->blk_ip = ip;
	l->blk_sp = sp;
	l->blk_iter_seq = l->iter_seq;
	l->blk_gil_holder = 0;
	l->blk_task = running_task(tid, l->blk_task_name);
	if (gil)
		bpf_probe_read_user(&l->blk_gil_holder, sizeof(__u64),
				    (void *)(gil_lo + gil_holder_off));
	else
		fd_capture(fd, &l->blk_file);
	st = bpf_map_lookup_elem(&blk_stacks, &tid);
	if (!st) {
		struct ap_event *tmp = event_get(0, tid, now);

		/* the map wants a source; any will do, the walk fills it */
		if (!tmp)
			return 0;
		bpf_map_update_elem(&blk_stacks, &tid, tmp->frames, BPF_ANY);
		event_put(tmp);
		st = bpf_map_lookup_elem(&blk_stacks, &tid);
		if (!st)
			return 0;
	}
	l->blk_flags = stack_walk(tid, st->frames, &l->blk_nframes) |
		       (gil ? AP_F_GIL : 0);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_btf_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return on_switch(preempt, prev, next, prev->tgid, next->tgid, true);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_tp_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return on_switch(preempt, prev, next, BPF_CORE_READ(prev, tgid),
			 BPF_CORE_READ(next, tgid), false);
}

/*
 * A CPU sample of the current thread, if it is a loop thread, standing for
 * @cpu_ns of its CPU time; @user: it was interrupted in user mode.
 */
static __always_inline int loop_sample(__u64 cpu_ns, bool user, bool read_clock)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 tid = (__u32)id;
	struct ap_event *e;
	struct ap_loop *l;
	int collecting = 0;

	if (!is_target(id >> 32))
		return 0;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l || l->ignored || !l->busy_start)
		return 0;
	if (read_clock)
		clock_read(l, tid);
	now = bpf_ktime_get_ns();
	/* back in user mode: any blocking syscall has returned; but a GIL
	 * wait returns to user mode between its timed waits and goes on */
	if (user)
		l->sel_entered = 0;
	if (l->blk_start && user && !(l->blk_flags & AP_F_GIL))
		episode_end(l, tid, now);
	l->samples++;
	if (gc_flag &&
	    !bpf_probe_read_user(&collecting, sizeof(collecting),
				 (void *)gc_flag) &&
	    collecting)
		l->gc_sample_cpu_ns += cpu_ns;
	if (l->thin_seq != l->iter_seq) {
		l->thin_seq = l->iter_seq;
		l->thin_cpu_ns = 0;
	}
	if (now - l->busy_start < sample_full_ns &&
	    l->samples % AP_SAMPLE_THIN) {
		l->thin_cpu_ns += cpu_ns;
		return 0;
	}
	e = event_get(AP_EV_SAMPLE, tid, now);
	if (!e)
		return 0;
	/* it stands for the ones skipped before it in this iteration */
	e->duration_ns = cpu_ns + l->thin_cpu_ns;
	l->thin_cpu_ns = 0;
	e->iter_seq = l->iter_seq;
	e->start_ns = l->busy_start;
	e->flags = stack_walk(tid, e->frames, &e->nframes);
	if (collecting)
		e->flags |= AP_F_GC;
	e->task = running_task(tid, e->task_name);
	event_submit(e);
	return 0;
}

/* task-clock sampling of loop threads (--sample-period); runs in the
 * sampled thread */
SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	/* a user-mode address: interrupted in user mode */
	return loop_sample(sample_period_ns, (long)ctx->regs.ip >= 0, true);
}

/*
 * A write to a watched address (hardware watchpoints are per CPU, so that
 * the target's threads pay nothing per context switch): counted when it
 * is the target's; another process's write to the same address is not.
 */
SEC("perf_event")
int on_watch(struct bpf_perf_event_data *ctx)
{
	__u64 addr = ctx->addr, *n;

	if (!is_target(bpf_get_current_pid_tgid() >> 32))
		return 0;
	n = bpf_map_lookup_elem(&watch_hits, &addr);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/*
 * Sampling on the timer interrupt (the default): it interrupts a busy
 * thread at HZ anyway, where a sampling timer of our own costs the target
 * an interrupt (and, in a VM, an exit) per sample.  A thread is sampled
 * once it has run tick_min_ns since its last sample; the sample stands
 * for the CPU time it ran since then.
 */
static __always_inline int on_tick(void)
{
	__u64 id = bpf_get_current_pid_tgid(), exec;
	__u32 tid = (__u32)id;
	struct task_struct *t;
	struct pt_regs *regs;
	struct ap_loop *l;

	if (!is_target(id >> 32))
		return 0;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l || l->ignored || !l->busy_start)
		return 0;
	clock_read(l, tid);
	t = bpf_get_current_task_btf();
	exec = BPF_CORE_READ(t, se.sum_exec_runtime);
	if (!l->tick_exec_ns || exec < l->tick_exec_ns) {
		l->tick_exec_ns = exec;
		return 0;
	}
	if (exec - l->tick_exec_ns < tick_min_ns)
		return 0;
	exec -= l->tick_exec_ns;
	l->tick_exec_ns += exec;
	/* the frame on top of the kernel stack is the interrupt's when it
	 * came from user mode (orig_ax < 0), a syscall's (its number) when
	 * the thread was in one */
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	return loop_sample(exec, (long)BPF_CORE_READ(regs, orig_ax) < 0, false);
}

SEC("tp_btf/local_timer_entry")
int BPF_PROG(tp_btf_local_timer_entry, int vector)
{
	return on_tick();
}

SEC("raw_tp/local_timer_entry")
int BPF_PROG(raw_tp_local_timer_entry, int vector)
{
	return on_tick();
}

/*
 * The target replaced its program (execve): every address userspace knows
 * is stale from here on, so it must stop reading and end the target.
 */
static __always_inline int on_exec(struct task_struct *p)
{
	struct ap_event *e;

	if (!is_target(BPF_CORE_READ(p, tgid)))
		return 0;
	e = event_get(AP_EV_EXEC, BPF_CORE_READ(p, pid), bpf_ktime_get_ns());
	if (e)
		event_submit(e);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_btf_sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	return on_exec(p);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(raw_tp_sched_process_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	return on_exec(p);
}

/*
 * A coroutine that never ran is being finalized: the interpreter warns
 * "coroutine ... was never awaited" from its deallocation, so the Python
 * stack now is where its last reference went (the call without await).
 * Read its code object now: it is freed right after.  A service can drop
 * them by the hundred thousand a second: beyond AP_UNAWAITED_PER_S a CPU
 * only counts them.
 */
SEC("uprobe")
int BPF_KPROBE(on_unawaited, void *coro)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 tid = (__u32)id;
	struct ap_event *e;

	if (!is_target(id >> 32))
		return 0;
	now = bpf_ktime_get_ns();
	if (!rate_ok(RATE_UNAWAITED, now, AP_UNAWAITED_PER_S,
		     AP_CNT_UNAWAITED_SKIPPED))
		return 0;
	e = event_get(AP_EV_UNAWAITED, tid, now);
	if (!e)
		return 0;
	e->code = coro_code((__u64)coro);
	e->flags = stack_walk(tid, e->frames, &e->nframes);
	event_submit(e);
	return 0;
}

/* "_asyncio" and ".Task\0" / ".Future\0" as little-endian words */
#define ASYNCIO_W0 0x6f69636e7973615fULL
#define TASK_W1 0x6b7361542eULL /* 6 bytes, the NUL included */
#define FUTURE_W1 0x6572757475462eULL

/* 2: @type is _asyncio.Task or a subclass; 1: _asyncio.Future or one; 0:
 * neither, or unreadable. */
static __always_inline int asyncio_type(__u64 type)
{
	__u64 name, w[2];
	int i;

	for (i = 0; i < 4 && type; i++) {
		if (bpf_probe_read_user(&name, sizeof(name),
					(void *)(type + fin.type_name)) ||
		    bpf_probe_read_user(w, sizeof(w), (void *)name))
			return 0;
		if (w[0] == ASYNCIO_W0 && (w[1] & 0xffffffffffffULL) == TASK_W1)
			return 2;
		if (w[0] == ASYNCIO_W0 && w[1] == FUTURE_W1)
			return 1;
		if (bpf_probe_read_user(&type, sizeof(type),
					(void *)(type + fin.type_base)))
			return 0;
	}
	return 0;
}

/* Is @v the object of a report of @kind: a task still pending, or a
 * finished future or task holding an exception?  2 task, 1 future. */
static __always_inline int fin_object(__u64 v, __u32 kind)
{
	__u64 type, exc = 0;
	__u32 state;
	int t;

	if (!v || (v & 7) ||
	    bpf_probe_read_user(&type, sizeof(type), (void *)(v + fin.ob_type)))
		return 0;
	t = asyncio_type(type);
	if (!t || (kind == AP_FIN_PENDING && t != 2) ||
	    bpf_probe_read_user(&state, sizeof(state),
				(void *)(v + fin.fut_state)))
		return 0;
	if (kind == AP_FIN_PENDING)
		return state == 0 ? t : 0;
	if (state != 2 || bpf_probe_read_user(&exc, sizeof(exc),
					      (void *)(v + fin.fut_exception)))
		return 0;
	return exc ? t : 0;
}

#define FIN_REGS 7
#define FIN_STACK_WORDS 8

/*
 * The reporting branch of an _asyncio finalizer is running: a task was
 * destroyed while pending, or an exception was never retrieved.  The
 * uprobe sits on the one instruction that loads the message, so healthy
 * tasks never get here.  Which register (or spill slot) holds the object
 * differs between builds: the first candidate of the right type and state
 * is it.  Read what the finding says now: the object is freed right after.
 */
static __always_inline int fin_report(struct pt_regs *ctx, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid(), now, obj = 0, coro = 0;
	__u64 cand[FIN_REGS + FIN_STACK_WORDS] = {}, p = 0, type = 0;
	__u32 tid = (__u32)id;
	struct ap_event *e;
	int i, t = 0;

	if (!is_target(id >> 32) || !fin.fut_state)
		return 0;
	now = bpf_ktime_get_ns();
	if (!rate_ok(kind == AP_FIN_PENDING ? RATE_PENDING : RATE_UNRETRIEVED,
		     now, AP_FIN_PER_S,
		     kind == AP_FIN_PENDING ? AP_CNT_PENDING_SKIPPED
					    : AP_CNT_UNRETRIEVED_SKIPPED))
		return 0;
	cand[0] = ctx->bx;
	cand[1] = ctx->bp;
	cand[2] = ctx->r12;
	cand[3] = ctx->r13;
	cand[4] = ctx->r14;
	cand[5] = ctx->r15;
	cand[6] = ctx->cx;
	bpf_probe_read_user(&cand[FIN_REGS], FIN_STACK_WORDS * sizeof(__u64),
			    (void *)ctx->sp);
	for (i = 0; i < FIN_REGS + FIN_STACK_WORDS; i++) {
		t = fin_object(cand[i], kind);
		if (t) {
			obj = cand[i];
			break;
		}
	}
	e = event_get(AP_EV_FINALIZE, tid, now);
	if (!e)
		return 0;
	e->syscall_nr = (__s32)kind;
	e->fd = t; /* 2 task, 1 future, 0 not found */
	e->task = obj;
	if (obj && t == 2) {
		if (!bpf_probe_read_user(&coro, sizeof(coro),
					 (void *)(obj + fin.task_coro)))
			e->code = coro_code(coro);
		task_name_snap(obj, e->task_name);
	}
	/* the exception's type name */
	if (obj && kind == AP_FIN_EXCEPTION &&
	    (bpf_probe_read_user(&p, sizeof(p),
				 (void *)(obj + fin.fut_exception)) ||
	     bpf_probe_read_user(&type, sizeof(type),
				 (void *)(p + fin.ob_type)) ||
	     bpf_probe_read_user(&p, sizeof(p),
				 (void *)(type + fin.type_name)) ||
	     bpf_probe_read_user_str(e->exc_type, sizeof(e->exc_type),
				     (void *)p) < 0))
		e->exc_type[0] = 0;
	e->flags = stack_walk(tid, e->frames, &e->nframes);
	event_submit(e);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(on_task_pending)
{
	return fin_report(ctx, AP_FIN_PENDING);
}

SEC("uprobe")
int BPF_KPROBE(on_exception_unretrieved)
{
	return fin_report(ctx, AP_FIN_EXCEPTION);
}

/* A collection starts on a loop thread (USDT python:gc__start). */
SEC("usdt")
int BPF_USDT(on_gc_start, int generation)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct ap_loop *l;

	if (!is_target(id >> 32))
		return 0;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l)
		return 0;
	l->gc_start = bpf_ktime_get_ns();
	l->gc_gen = (__u32)generation;
	return 0;
}

/* ... and ends (python:gc__done): its pause, to the loop and iteration. */
SEC("usdt")
int BPF_USDT(on_gc_done, long collected)
{
	__u64 id = bpf_get_current_pid_tgid(), d;
	__u32 tid = (__u32)id, gen;
	struct ap_loop *l;

	if (!is_target(id >> 32))
		return 0;
	l = bpf_map_lookup_elem(&loops, &tid);
	if (!l || !l->gc_start)
		return 0;
	d = bpf_ktime_get_ns() - l->gc_start;
	l->gc_start = 0;
	gen = l->gc_gen;
	l->gc_pauses++;
	l->gc_pause_ns += d;
	if (d > l->gc_pause_max_ns)
		l->gc_pause_max_ns = d;
	if (gen < 3) {
		__u32 b = bucket_of(gc_bounds, AP_GC_NBOUNDS, d);

		l->gc_gen_pauses[gen]++;
		l->gc_gen_pause_ns[gen] += d;
		if (b <= AP_GC_NBOUNDS)
			l->gc_hist[gen][b]++;
	}
	if (l->iter_gc_seq != l->iter_seq) {
		l->iter_gc_seq = l->iter_seq;
		l->iter_gc_ns = 0;
		l->iter_gc_gens = 0;
	}
	l->iter_gc_ns += d;
	if (gen < 32)
		l->iter_gc_gens |= 1u << gen;
	return 0;
}
