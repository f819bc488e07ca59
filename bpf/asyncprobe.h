/* SPDX-License-Identifier: MIT */
/* Types shared by asyncprobe.bpf.c and userspace: plain structs only. */
#ifndef ASYNCPROBE_H
#define ASYNCPROBE_H

#ifndef __VMLINUX_H__ /* userspace; the BPF side has vmlinux.h */
#include <linux/types.h>
#endif

#define AP_MAX_FRAMES 64
#define AP_MAX_LOOPS 1024
#define AP_NAME_SNAP 80	 /* bytes of a task's name object kept */
#define AP_SAMPLE_THIN 8 /* short iterations: 1 sample kept in this many */

/*
 * Histogram bucket upper bounds in ns, shared by the BPF side (which
 * counts into them) and the exporter (which prints them as `le`); each
 * histogram has one bucket more, for what is above the last bound.
 */
#define AP_LAG_BOUNDS                                                          \
	{                                                                      \
		250000ULL, 500000ULL, 1000000ULL, 2500000ULL, 5000000ULL,      \
			10000000ULL, 25000000ULL, 50000000ULL, 100000000ULL,   \
			250000000ULL, 500000000ULL, 1000000000ULL,             \
			2500000000ULL, 5000000000ULL, 10000000000ULL           \
	}
#define AP_LAG_NBOUNDS 15
#define AP_GC_BOUNDS                                                           \
	{                                                                      \
		100000ULL, 250000ULL, 500000ULL, 1000000ULL, 2500000ULL,       \
			5000000ULL, 10000000ULL, 25000000ULL, 50000000ULL,     \
			100000000ULL, 250000000ULL, 1000000000ULL              \
	}
#define AP_GC_NBOUNDS 12

/* Which syscall family a loop thread waits in. */
enum ap_selector_kind {
	AP_SEL_NONE = 0,
	AP_SEL_EPOLL = 1, /* epoll_wait, epoll_pwait(2); fd = epfd */
	AP_SEL_POLL = 2,  /* poll, ppoll, select, pselect6 (no fd) */
};

enum ap_event_kind {
	AP_EV_LOOP_NEW = 1, /* a thread of the target waited in a selector */
	AP_EV_SAMPLE = 2,   /* CPU sample of a busy loop thread */
	AP_EV_STALL = 3,    /* a loop iteration ran longer than the threshold */
	AP_EV_BLOCK = 4,    /* a loop thread blocked in a syscall too long */
	AP_EV_EXEC = 5,	    /* the target ran execve: its runtime is gone */
	AP_EV_UNAWAITED = 6, /* a coroutine was dropped that never ran */
	AP_EV_FINALIZE = 7, /* _asyncio reports a task or future it finalizes */
};

/* What the _asyncio finalizer reports (AP_EV_FINALIZE's syscall_nr) */
enum ap_fin_kind {
	AP_FIN_PENDING = 1,   /* "Task was destroyed but it is pending!" */
	AP_FIN_EXCEPTION = 2, /* "... exception was never retrieved" */
};

/* Where the objects the finalizers report keep what a finding says, in
 * bytes (0: unknown): from the asyncio layout row of this Python. */
struct ap_fin_layout {
	__u64 ob_type, type_name, type_base;
	__u64 fut_state, fut_exception,
		task_coro; /* task name: task_name_off */
};

#define AP_TYPE_SNAP 48 /* bytes of an exception's type name kept */

/* Unawaited coroutines sent with their stack, per CPU and second; the
 * rest are only counted (AP_CNT_UNAWAITED_SKIPPED): a flood of them must
 * not crowd findings out of the ring buffer. */
#define AP_UNAWAITED_PER_S 100
/* the same for each kind of the _asyncio finalizers' reports */
#define AP_FIN_PER_S 100
/* hardware write watchpoints on target memory at once (x86: 4 debug
 * registers per CPU, shared with anyone else's) */
#define AP_WATCH_MAX 4

/* per-CPU counters, keys of the `counts` map */
enum ap_count {
	AP_CNT_LOST = 0, /* events dropped: the ring buffer was full */
	AP_CNT_UNAWAITED_SKIPPED = 1, /* unawaited coroutines over the rate */
	/* a loop wait whose entry no program saw: its iteration was closed
	 * when the thread slept in it */
	AP_CNT_ENTRY_UNSEEN = 2,
	/* a wake-up flagged as from the loop wait with the thread elsewhere:
	 * not taken as the start of an iteration */
	AP_CNT_STALE_WAKE = 3,
	/* _asyncio finalizer reports over the rate, by kind */
	AP_CNT_PENDING_SKIPPED = 4,
	AP_CNT_UNRETRIEVED_SKIPPED = 5,
	AP_CNT_KEYS = 6,
};

enum ap_event_flags {
	AP_F_NO_TSTATE = 1, /* no thread state known for this thread yet */
	AP_F_TRUNCATED = 2, /* stack deeper than AP_MAX_FRAMES */
	AP_F_READ_ERR = 4,  /* a read of target memory failed mid-walk */
	AP_F_GIL = 8,	    /* a futex wait on the GIL's own lock or cond */
	AP_F_GC = 16,	    /* sampled while the garbage collector ran */
	/* a stall timed by the loop's own clock (no selector hook then): its
	 * end is the next iteration seen, about a timer tick after the real one
	 */
	AP_F_CLOCKED = 32,
};

/*
 * How to walk one CPython version's frame chain from a thread state.
 * Userspace fills it from the version table before load.
 */
struct ap_py_walk {
	__u32 tstate_frame; /* tstate -> cframe, or -> top frame */
	__s32 cframe_frame; /* cframe -> top frame; -1: no cframe */
	__u32 frame_code;
	__u32 frame_previous;
	__u32 frame_instr;
	__s32 frame_owner;  /* -1: no owner field */
	__s32 owner_cstack; /* owner value of C-stack shim frames; -1: none */
	__u32 code_ptr_tag_mask; /* tag bits of a code pointer, cleared */
	__u32 instr_size;	 /* 8: a pointer; 4: an int f_lasti (<= 3.10) */
};

/*
 * A loop's own clock (symbolizer/pyclock.h), found by userspace: the local
 * end_time of BaseEventLoop._run_once's frame, a float holding when the
 * running iteration's callbacks began (CLOCK_MONOTONIC seconds).
 */
struct ap_clock {
	__u64 frame;	 /* _run_once's frame */
	__u64 code;	 /* its code object: the frame is still _run_once's */
	__u64 slot;	 /* the local end_time: PyFloatObject *, or NULL */
	__u32 value_off; /* ob_fval in a float */
	__u32 pad;
};

/* What a syscall's fd was when the thread blocked: read in the kernel,
 * since the fd is often closed by the time userspace sees the event. */
struct ap_fd {
	__u64 ino;
	__u32 mode;	/* inode i_mode; 0: not captured */
	__u16 family;	/* sockets: AF_INET, AF_INET6, AF_UNIX, ... */
	__u16 sotype;	/* sockets: SOCK_STREAM, SOCK_DGRAM, ... */
	__u16 sport;	/* host byte order */
	__u16 dport;	/* host byte order */
	__u8 saddr[16]; /* network byte order; IPv4 in the first 4 */
	__u8 daddr[16];
};

/* One Python frame as read in the kernel: symbolized in userspace. */
struct ap_frame {
	__u64 code;  /* PyCodeObject * in the target */
	__u64 instr; /* instruction pointer (or index) in the target */
};

struct ap_stack {
	struct ap_frame frames[AP_MAX_FRAMES];
};

struct ap_event {
	__u32 kind;
	__u32 tid;
	__u64 ts;	   /* CLOCK_MONOTONIC ns when the event was made */
	__u64 start_ns;	   /* start of the stall / blocking episode */
	__u64 duration_ns; /* sample: the loop CPU time it stands for */
	__u64 iter_seq;	   /* loop iteration the event belongs to */
	__s32 syscall_nr;
	__s32 fd; /* first syscall argument; -1 if none known */
	__u32 flags;
	__u32 nframes;
	struct ap_fd file; /* blocking: what fd was */
	__u64 gil_holder;  /* AP_F_GIL: PyThreadState * holding the GIL */
	__u64 task;  /* the asyncio task running (3.14+); 0: none or unknown */
	__u64 gc_ns; /* stall: time in timed collections (USDT) */
	__u32 gc_gens; /* stall: generations collected, a mask */
	__u32 pad;
	__u64 code; /* unawaited: the coroutine's code object; 0: unknown */
	/* its name object's first bytes, read at once: the task is often gone
	 * by the time userspace sees the event */
	__u8 task_name[AP_NAME_SNAP];
	/* finalize: the unretrieved exception's type name */
	char exc_type[AP_TYPE_SNAP];
	struct ap_frame frames[AP_MAX_FRAMES];
};

/* Per loop thread state, hash map keyed by tid. Written by BPF only,
 * except `ignored`, which userspace sets for threads that turn out not to
 * be asyncio loops. */
struct ap_loop {
	__u64 busy_start; /* the current iteration began; 0: not yet seen */
	__u64 iter_seq;
	__u64 iterations;
	__u64 busy_ns;
	__u64 idle_ns;
	__u64 stalls;
	__u64 blocks;
	__u64 max_busy_ns;
	__s32 loop_fd;	   /* epfd of the loop's selector, -1 for poll kinds */
	__u32 kind;	   /* enum ap_selector_kind */
	__u32 alien_waits; /* consecutive waits on another epoll fd */
	__u32 ignored;
	__u32 sel_sleep; /* switched out in its loop wait */
	/* entered its loop wait and has not been seen elsewhere since */
	__u32 sel_entered;
	/* current blocking episode: off-CPU in one syscall call site */
	__u64 blk_start;   /* first switch-out, 0 when none */
	__u64 blk_out;	   /* current switch-out, 0 while on CPU */
	__u64 blk_last_in; /* last switch-in */
	__u64 blk_ip;
	__u64 blk_sp;
	__s32 blk_nr;
	__s32 blk_fd;
	__u64 blk_iter_seq;
	__u32 blk_flags;
	__u32 blk_nframes;
	struct ap_fd blk_file;
	__u64 blk_gil_holder;
	__u64 blk_task;
	__u8 blk_task_name[AP_NAME_SNAP];
	__u64 gil_wait_ns; /* all GIL waits, long or short */
	__u64 gil_waits;
	__u64 samples; /* CPU samples taken on this loop thread */
	/* garbage collections timed by the gc__start/gc__done USDT probes */
	__u64 gc_start;	    /* the one running, 0: none */
	__u32 gc_gen;	    /* its generation */
	__u32 iter_gc_gens; /* generations collected this iteration, a mask */
	__u64 iter_gc_seq;  /* the iteration iter_gc_* are about */
	__u64 iter_gc_ns;
	__u64 gc_pauses;
	__u64 gc_pause_ns;
	__u64 gc_pause_max_ns;
	__u64 gc_gen_pauses[3];
	__u64 gc_gen_pause_ns[3];
	__u64 gc_hist[3][AP_GC_NBOUNDS + 1]; /* pauses by generation, length */
	/* iterations by busy time (the lag histogram) and their busy sum */
	__u64 lag_hist[AP_LAG_NBOUNDS + 1];
	__u64 lag_sum_ns;
	/* the loop CPU time of the samples skipped by thinning since the
	 * last kept one, and the iteration they belong to: the next kept
	 * one stands for them */
	__u64 thin_seq;
	__u64 thin_cpu_ns;
	/* the loop CPU time of the samples taken while collecting */
	__u64 gc_sample_cpu_ns;
	/* tick sampling: the thread's CPU time at its last sample */
	__u64 tick_exec_ns;
	/* hook_epoch when busy_start was set: the iteration was timed from
	 * selector entry to selector entry if the epoch, odd, is unchanged */
	__u32 start_epoch;
	__u32 clk_pad;
	/* the loop's clock (struct ap_clock) as last read in this iteration:
	 * a double's bits, 0 when not read since busy_start was set */
	__u64 clk_bits;
	/* when the iteration begun at busy_start was last known to run */
	__u64 alive_ns;
};

#endif /* ASYNCPROBE_H */
