// SPDX-License-Identifier: MIT
/*
 * `asyncprobe check`: what this kernel lets asyncprobe do.  Every variant
 * of the BPF programs is loaded and attached (to this process, so nothing
 * else is watched), then the optional parts: the perf-event sampler,
 * uprobes and hardware watchpoints.  One line per feature, then what a run
 * would use; exit 0 when a run can work here, 1 when it cannot.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "asyncprobe.h"
#include "asyncprobe.skel.h"
#include "check.h"
#include "clock.h"
#include "hooks.h"
#include "selhook.h"
#include "version.h"
#include "watch.h"

static void line(FILE *out, const char *feature, const char *fmt, ...)
{
	va_list ap;

	fprintf(out, "  %-20s ", feature);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

/* The uprobe's target: a function of our own, never called. */
__attribute__((noinline, used)) void check__uprobe_target(void)
{
	__asm__ volatile("");
}

/* A uprobe on this binary (what GC timing by USDT rests on). */
static int uprobe_check(struct asyncprobe_bpf *skel, char *why, size_t len)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "check__uprobe_target");
	char exe[PATH_MAX];
	struct bpf_link *link;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0) {
		snprintf(why, len, "/proc/self/exe: %s", strerror(errno));
		return -1;
	}
	exe[n] = '\0';
	link = bpf_program__attach_uprobe_opts(skel->progs.on_gc_start,
					       getpid(), exe, 0, &uo);
	if (!link) {
		snprintf(why, len, "attach: %s", strerror(errno));
		return -1;
	}
	bpf_link__destroy(link);
	return 0;
}

/* The per-thread sampler (--sample-period): a task-clock perf event. */
static int perf_check(struct asyncprobe_bpf *skel, char *why, size_t len)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_TASK_CLOCK,
		.sample_period = 10000000,
	};
	struct bpf_link *link;
	int fd;

	fd = (int)syscall(__NR_perf_event_open, &attr, 0, -1, -1,
			  PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "perf_event_open: %s", strerror(errno));
		return -1;
	}
	link = bpf_program__attach_perf_event(skel->progs.on_sample, fd);
	if (!link) {
		snprintf(why, len, "attach: %s", strerror(errno));
		close(fd);
		return -1;
	}
	bpf_link__destroy(link); /* closes fd too */
	return 0;
}

/* A hardware watchpoint (long_await): armed on a word of our own, which
 * is then written once; the BPF filter must count exactly that write. */
static int watch_check(struct asyncprobe_bpf *skel, char *why, size_t len)
{
	static volatile uint64_t word __attribute__((aligned(8)));
	struct watch *w = watch__new(skel->progs.on_watch,
				     bpf_map__fd(skel->maps.watch_hits));
	int64_t hits;
	int err;

	if (!w) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	err = watch__arm(w, (uint64_t)(uintptr_t)&word);
	if (err) {
		snprintf(why, len, "perf breakpoint: %s",
			 err == -ENOSPC ? "the CPUs' debug registers are "
					  "taken (a debugger, another "
					  "asyncprobe)"
					: strerror(-err));
		watch__free(w);
		return -1;
	}
	word = word + 1;
	hits = watch__hits(w, (uint64_t)(uintptr_t)&word);
	watch__free(w);
	if (hits != 1) {
		snprintf(why, len, "a write counted %lld times, not once",
			 (long long)hits);
		return -1;
	}
	return 0;
}

int check__run(const struct ap_options *o)
{
	struct hooks_config cfg = {
		.tgid = getpid(),
		.stall_ns = 100000000,
		.block_ns = 10000000,
		.both_samplers = true,
		.verbose = o->verbose,
	};
	const char *use = NULL, *what, *step;
	struct asyncprobe_bpf *kept = NULL;
	char buf[256], missing[128];
	struct utsname u;
	FILE *out = o->out;
	int err, rc = 1;

	hooks__log_level(o->verbose);
	uname(&u);
	fprintf(out, "asyncprobe %s on Linux %s (%s), libbpf %s\n", AP_VERSION,
		u.release, u.machine, libbpf_version_string());

	if (hooks__caps_missing(missing, sizeof(missing))[0]) {
		line(out, "capabilities", "no (missing %s)", missing);
		fprintf(out, "cannot check: run as root, or grant CAP_BPF, "
			     "CAP_PERFMON and CAP_SYS_PTRACE\n");
		return 1;
	}
	line(out, "capabilities", "ok");
	line(out, "btf", "%s",
	     access("/sys/kernel/btf/vmlinux", R_OK)
		     ? "no (/sys/kernel/btf/vmlinux: CO-RE needs a kernel "
		       "built with CONFIG_DEBUG_INFO_BTF)"
		     : "ok (/sys/kernel/btf/vmlinux)");

	for (int i = 0; i < hooks__nvariants(); i++) {
		const char *name = hooks__variant(i, &what);
		double t0 = clock__mono();
		struct asyncprobe_bpf *skel;

		snprintf(buf, sizeof(buf), "hooks/%s", name);
		skel = hooks__try(&cfg, i, &step, &err);
		if (!skel && !strcmp(step, "probe"))
			line(out, buf, "no (%s)",
			     !strcmp(name, "kprobe")
				     ? "this kernel has no kprobes"
				     : "no tracefs, and it cannot be mounted");
		else if (!skel)
			line(out, buf, "no (%s: %s)", step, strerror(-err));
		else
			line(out, buf, "ok (%.0f ms): %s",
			     (clock__mono() - t0) * 1e3, what);
		if (!skel)
			continue;
		if (!use)
			use = what;
		if (!kept)
			kept = skel;
		else
			hooks__destroy(skel);
	}
	if (!kept) {
		fprintf(out, "asyncprobe cannot run here: no variant of its "
			     "BPF programs loads (asyncprobe check -vv shows "
			     "the verifier's log)\n");
		goto cleanup;
	}
	line(out, "sampler/timer-tick", "%s",
	     bpf_program__autoload(kept->progs.tp_btf_local_timer_entry) ||
			     bpf_program__autoload(
				     kept->progs.raw_tp_local_timer_entry)
		     ? "ok (local_timer_entry: loop stacks by default)"
		     : "no (no local_timer_entry: use --sample-period)");
	if (perf_check(kept, buf, sizeof(buf)))
		line(out, "sampler/perf-event", "no (%s: no --sample-period)",
		     buf);
	else
		line(out, "sampler/perf-event", "ok (--sample-period)");
	if (uprobe_check(kept, buf, sizeof(buf)))
		line(out, "uprobes", "no (%s: GC time is sampled)", buf);
	else
		line(out, "uprobes",
		     "ok (GC timed by USDT where Python has it)");
	if (watch_check(kept, buf, sizeof(buf)))
		line(out, "watchpoints",
		     "no (%s: --await-threshold finds nothing)", buf);
	else
		line(out, "watchpoints",
		     "ok (hardware: --await-threshold confirms long awaits)");
	line(out, "exec-events", "%s",
	     bpf_program__autoload(kept->progs.tp_btf_sched_process_exec)
		     ? "ok (BTF sched_process_exec)"
		     : "ok (raw sched_process_exec)");
	{
		struct selhook *h = selhook__new(kept, 0, false, 0);

		line(out, "selector-hook", "%s",
		     selhook__windowed(h)
			     ? "windows (it slows every syscall here: "
			       "attached " SELHOOK_WINDOWS_TEXT
			       ", loops' own clocks time "
			       "the rest)"
			     : "always attached");
		selhook__free(h);
	}
	fprintf(out, "asyncprobe can run here: it uses %s\n", use);
	rc = 0;
cleanup:
	hooks__destroy(kept);
	return rc;
}
