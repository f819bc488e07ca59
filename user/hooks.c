// SPDX-License-Identifier: MIT
/*
 * The BPF side's lifecycle: open -> set rodata -> load -> attach, with the
 * cheapest selector hook this kernel allows (feature probes and fallback,
 * never #ifs), and the privileges that needs.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "asyncprobe.h"
#include "asyncprobe.skel.h"
#include "hooks.h"
#include "syscalls.h"

static int log_level;

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (!log_level || (level == LIBBPF_DEBUG && log_level < 2))
		return 0;
	return vfprintf(stderr, fmt, args);
}

void hooks__log_level(int verbose)
{
	log_level = verbose;
	libbpf_set_print(libbpf_print);
}

/* Which of the capabilities asyncprobe needs does this process lack? */
const char *hooks__caps_missing(char *buf, size_t len)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { 0 };
	static const struct {
		int cap;
		const char *name;
	} need[] = {
		{ 39, "CAP_BPF" },
		{ 38, "CAP_PERFMON" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	bool admin;
	size_t off = 0;

	buf[0] = '\0';
	if (syscall(SYS_capget, &hdr, data))
		return buf;
	/* CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON */
	admin = data[0].effective & (1u << CAP_SYS_ADMIN);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		int cap = need[i].cap;
		bool have = data[cap / 32].effective & (1u << (cap % 32));

		if (!have && !(admin && cap != CAP_SYS_PTRACE))
			off += (size_t)snprintf(buf + off, len - off, "%s%s",
						off ? ", " : "", need[i].name);
		if (off >= len)
			break;
	}
	return buf;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

enum sel_hook { SEL_FENTRY, SEL_KPROBE, SEL_TRACEPOINT, SEL_SYS_ENTER };

static const struct variant {
	const char *name; /* for --hooks */
	enum sel_hook sel;
	bool tp_btf;
	const char *what;
} variants[] = {
	{ "fentry", SEL_FENTRY, true,
	  "fentry on selector syscalls, BTF sched_switch" },
	{ "kprobe", SEL_KPROBE, true,
	  "kprobes on selector syscalls, BTF sched_switch" },
	{ "tracepoint", SEL_TRACEPOINT, true,
	  "selector syscall tracepoints, BTF sched_switch" },
	{ "sys_enter", SEL_SYS_ENTER, false,
	  "raw sys_enter (every syscall), raw sched_switch" },
};

static const char *tracefs_dir(void)
{
	static const char *const dirs[] = { "/sys/kernel/tracing",
					    "/sys/kernel/debug/tracing" };

	for (size_t i = 0; i < 2; i++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/events", dirs[i]);
		if (!access(p, F_OK))
			return dirs[i];
	}
	return NULL;
}

/* Syscall tracepoints need tracefs, which a fresh machine may not mount. */
static bool tracefs_ready(int verbose)
{
	if (tracefs_dir())
		return true;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL)) {
		if (verbose)
			fprintf(stderr,
				"asyncprobe: cannot mount tracefs on "
				"/sys/kernel/tracing: %s\n",
				strerror(errno));
		return false;
	}
	if (verbose)
		fprintf(stderr, "asyncprobe: mounted tracefs on "
				"/sys/kernel/tracing\n");
	return tracefs_dir() != NULL;
}

/* The selector program attached to every syscall tracepoint below. */
static bool is_selector_tp(const char *sec)
{
	return !strcmp(sec, "tracepoint");
}

/* A selector program chosen (loaded) whose hook costs every syscall on the
 * machine: a syscall tracepoint, raw sys_enter. */
static bool costs_every_syscall(const struct bpf_program *prog)
{
	const char *sec = bpf_program__section_name(prog);

	return bpf_program__autoload(prog) &&
	       (is_selector_tp(sec) || !strcmp(sec, "raw_tp/sys_enter"));
}

/* Does this kernel have syscall @name's tracepoint (tracefs lists it)? */
static bool tracepoint_exists(const char *name)
{
	const char *dir = tracefs_dir();
	char p[256];

	if (!dir)
		return false;
	snprintf(p, sizeof(p), "%s/events/syscalls/sys_enter_%s", dir, name);
	return !access(p, F_OK);
}

/*
 * Does this kernel have the hook?  Kept cheap (no BTF parse, no load):
 * only epoll_pwait2 (5.11) is missing anywhere we run.
 */
static bool hook_exists(const char *sec)
{
	if (is_selector_tp(sec))
		return tracefs_dir() != NULL;
	if (strstr(sec, "epoll_pwait2")) {
		long nr = syscall__nr("epoll_pwait2");

		/* EBADF when it exists, ENOSYS when it does not */
		return nr >= 0 && syscall(nr, -1, NULL, 0, NULL, NULL, 0) < 0 &&
		       errno != ENOSYS;
	}
	return true;
}

/* The selector syscalls, whose tracepoints tp_selector is attached to. */
static const char *const selector_syscalls[] = {
	"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll",
	"ppoll",      "select",	     "pselect6",
};

#define NSELECTORS (sizeof(selector_syscalls) / sizeof(selector_syscalls[0]))

/*
 * The links of tp_selector, one per tracepoint (a skeleton keeps one link
 * per program), listed by the skeleton they belong to.  Used from the
 * main thread only.
 */
struct tp_links {
	struct asyncprobe_bpf *skel;
	const char *tps[NSELECTORS];
	struct bpf_link *links[NSELECTORS];
	int n;
	struct tp_links *next;
};

static struct tp_links *tp_links_all;

static struct tp_links *tp_links_find(const struct asyncprobe_bpf *skel)
{
	for (struct tp_links *t = tp_links_all; t; t = t->next)
		if (t->skel == skel)
			return t;
	return NULL;
}

struct bpf_link *hooks__sel_attach(struct bpf_program *prog, const char *tp)
{
	char name[64];

	if (!tp)
		return bpf_program__attach(prog);
	snprintf(name, sizeof(name), "sys_enter_%s", tp);
	return bpf_program__attach_tracepoint(prog, "syscalls", name);
}

/* Attach tp_selector to the tracepoint of every selector syscall here. */
static int tp_links_attach(struct asyncprobe_bpf *skel)
{
	struct tp_links *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->skel = skel;
	t->next = tp_links_all;
	tp_links_all = t;
	for (size_t i = 0; i < NSELECTORS; i++) {
		const char *tp = selector_syscalls[i];

		/* epoll_pwait2 is 5.11+ */
		if (!tracepoint_exists(tp))
			continue;
		t->links[t->n] = hooks__sel_attach(skel->progs.tp_selector, tp);
		if (!t->links[t->n])
			return -errno;
		t->tps[t->n++] = tp;
	}
	return t->n ? 0 : -ENOENT;
}

int hooks__selector(struct asyncprobe_bpf *skel, struct bpf_program **progs,
		    const char **tps, struct bpf_link ***links, int max)
{
	const struct bpf_object_skeleton *s = skel->skeleton;
	struct tp_links *t = tp_links_find(skel);
	int n = 0;

	for (int i = 0; t && i < t->n && n < max; i++, n++) {
		progs[n] = skel->progs.tp_selector;
		tps[n] = t->tps[i];
		links[n] = &t->links[i];
	}
	for (int i = 0; i < s->prog_cnt && n < max; i++) {
		struct bpf_program *prog = *s->progs[i].prog;

		if (prog && costs_every_syscall(prog) && *s->progs[i].link) {
			progs[n] = prog;
			tps[n] = NULL;
			links[n++] = s->progs[i].link;
		}
	}
	return n;
}

void hooks__destroy(struct asyncprobe_bpf *skel)
{
	struct tp_links **pp = &tp_links_all;

	while (*pp && (*pp)->skel != skel)
		pp = &(*pp)->next;
	if (*pp) {
		struct tp_links *t = *pp;

		*pp = t->next;
		for (int i = 0; i < t->n; i++)
			bpf_link__destroy(t->links[i]);
		free(t);
	}
	asyncprobe_bpf__destroy(skel);
}

/* Can this kernel attach kprobes at all (CONFIG_KPROBES)? */
static bool kprobes_available(void)
{
	const char *dir = tracefs_dir();
	char p[128];

	if (!access("/sys/bus/event_source/devices/kprobe/type", F_OK))
		return true;
	snprintf(p, sizeof(p), "%s/kprobe_events", dir ? dir : "/nonexistent");
	return !access(p, F_OK);
}

/* Which variant of each program to load on this kernel. */
static void programs_select(struct asyncprobe_bpf *skel,
			    const struct hooks_config *cfg,
			    const struct variant *v)
{
	struct bpf_program *prog;

	bpf_object__for_each_program (prog, skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		bool load = true;

		if (starts_with(sec, "fentry/"))
			load = v->sel == SEL_FENTRY;
		else if (starts_with(sec, "kprobe/"))
			load = v->sel == SEL_KPROBE;
		else if (is_selector_tp(sec))
			load = v->sel == SEL_TRACEPOINT;
		else if (!strcmp(sec, "raw_tp/sys_enter"))
			load = v->sel == SEL_SYS_ENTER;
		else if (starts_with(sec, "tp_btf/"))
			load = v->tp_btf;
		else if (starts_with(sec, "raw_tp/"))
			load = !v->tp_btf;
		/* the timer-tick sampler, unless a sampling period is set;
		 * the task-clock one only then */
		if (strstr(sec, "/local_timer_entry"))
			load = load &&
			       (!cfg->sample_period_ns || cfg->both_samplers);
		if (prog == skel->progs.on_sample)
			load = cfg->sample_period_ns || cfg->both_samplers;
		/* epoll_pwait2 is 5.11+: skip what this kernel lacks */
		if (load && !hook_exists(sec))
			load = false;
		bpf_program__set_autoload(prog, load);
	}
}

static void rodata_set(const struct hooks_config *cfg,
		       struct asyncprobe_bpf *skel)
{
	skel->rodata->targ_tgid = (uint32_t)cfg->tgid;
	skel->rodata->stall_ns = cfg->stall_ns;
	/* full-rate samples once an iteration is a quarter of a stall */
	skel->rodata->sample_full_ns = cfg->stall_ns / 4;
	skel->rodata->block_ns = cfg->block_ns;
	skel->rodata->sample_period_ns = cfg->sample_period_ns;
	skel->rodata->py = cfg->walk;
	skel->rodata->gil_lo = cfg->gil;
	skel->rodata->gil_size = cfg->gil ? cfg->gil_size : 0;
	skel->rodata->gil_holder_off = cfg->gil_holder_off;
	skel->rodata->gc_flag = cfg->gc_flag;
	skel->rodata->running_task_off = cfg->running_task_off;
	skel->rodata->coro_code_off = cfg->coro_code_off;
	skel->rodata->task_name_off = cfg->task_name_off;
	skel->rodata->fin = cfg->fin;
	skel->rodata->nr_futex = (int)syscall__nr("futex");
	skel->rodata->nr_epoll_wait = (int)syscall__nr("epoll_wait");
	skel->rodata->nr_epoll_pwait = (int)syscall__nr("epoll_pwait");
	skel->rodata->nr_epoll_pwait2 = (int)syscall__nr("epoll_pwait2");
	skel->rodata->nr_poll = (int)syscall__nr("poll");
	skel->rodata->nr_ppoll = (int)syscall__nr("ppoll");
	skel->rodata->nr_select = (int)syscall__nr("select");
	skel->rodata->nr_pselect6 = (int)syscall__nr("pselect6");
}

#define HOOKS_MEMO "/run/asyncprobe/hooks"

/*
 * Which variant worked on this boot of this kernel, so that the next run
 * loads once instead of failing through the cheaper ones (each failed
 * load costs a CO-RE pass, ~0.4 s).  /run is cleared at boot; the boot id
 * guards against a kept /run.
 */
/* This boot's id ("" when unknown). */
static void boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static int hooks_memo_read(void)
{
	char boot[64], line[128], id[64], name[32];
	int found = -1;
	FILE *f;

	boot_id(boot, sizeof(boot));
	if (!boot[0])
		return -1;
	f = fopen(HOOKS_MEMO, "re");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "%63s %31s", id, name) == 2 && !strcmp(id, boot))
		for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]);
		     i++)
			if (!strcmp(variants[i].name, name))
				found = (int)i;
	fclose(f);
	return found;
}

static void hooks_memo_write(const struct variant *v)
{
	char boot[64];
	FILE *f;

	boot_id(boot, sizeof(boot));
	if (!boot[0] || (mkdir("/run/asyncprobe", 0755) && errno != EEXIST))
		return;
	f = fopen(HOOKS_MEMO ".tmp", "we");
	if (!f)
		return;
	fprintf(f, "%s %s\n", boot, v->name);
	if (!fclose(f))
		rename(HOOKS_MEMO ".tmp", HOOKS_MEMO);
}

int hooks__nvariants(void)
{
	return (int)(sizeof(variants) / sizeof(variants[0]));
}

const char *hooks__variant(int i, const char **what)
{
	if (what)
		*what = variants[i].what;
	return variants[i].name;
}

/* open -> rodata -> load -> attach variant @i, without fallback */
struct asyncprobe_bpf *hooks__try(const struct hooks_config *cfg, int i,
				  const char **step, int *err)
{
	const struct variant *v = &variants[i];
	struct asyncprobe_bpf *skel;

	*step = "probe";
	*err = -ENOENT;
	if (v->sel == SEL_KPROBE && !kprobes_available())
		return NULL; /* no CONFIG_KPROBES */
	if (v->sel == SEL_TRACEPOINT && !tracefs_ready(cfg->verbose))
		return NULL;
	*step = "open";
	skel = asyncprobe_bpf__open();
	if (!skel) {
		*err = -errno;
		return NULL;
	}
	rodata_set(cfg, skel);
	programs_select(skel, cfg, v);
	/* a valid size cannot fail: else the compiled one stays */
	if (cfg->ring_bytes)
		bpf_map__set_max_entries(skel->maps.events, cfg->ring_bytes);
	*step = "load";
	*err = asyncprobe_bpf__load(skel);
	if (!*err) {
		*step = "attach";
		*err = asyncprobe_bpf__attach(skel);
	}
	if (!*err && v->sel == SEL_TRACEPOINT)
		*err = tp_links_attach(skel);
	if (!*err)
		return skel;
	hooks__destroy(skel);
	return NULL;
}

/* open -> rodata -> load -> attach, the cheapest variant that works here */
struct asyncprobe_bpf *hooks__load(const struct hooks_config *cfg,
				   const char **what)
{
	const int nvariants = hooks__nvariants();
	struct asyncprobe_bpf *skel = NULL;
	int err = -EINVAL, memo;

	if (access("/sys/kernel/btf/vmlinux", R_OK))
		fprintf(stderr,
			"asyncprobe: kernel BTF not readable "
			"(/sys/kernel/btf/vmlinux): CO-RE needs a kernel "
			"built with CONFIG_DEBUG_INFO_BTF\n");
	memo = cfg->only ? -1 : hooks_memo_read();

	/* the variant that worked last time first, then the cheapest on */
	for (int k = memo >= 0 ? -1 : 0; k < nvariants; k++) {
		int i = k < 0 ? memo : k;
		const struct variant *v = &variants[i];
		const char *step;

		if (k >= 0 && k == memo) /* already tried */
			continue;
		if (cfg->only && strcmp(cfg->only, v->name))
			continue;
		skel = hooks__try(cfg, i, &step, &err);
		if (skel) {
			*what = v->what;
			if (!cfg->only && k != -1)
				hooks_memo_write(v);
			if (cfg->verbose)
				fprintf(stderr, "asyncprobe: using %s\n",
					v->what);
			break;
		}
		if (!strcmp(step, "open"))
			break;
		if (cfg->verbose && !strcmp(step, "probe"))
			fprintf(stderr,
				"asyncprobe: %s: this kernel has no %s, "
				"trying the next\n",
				v->what,
				v->sel == SEL_KPROBE ? "kprobes" : "tracefs");
		else if (cfg->verbose)
			fprintf(stderr, "asyncprobe: %s: %s failed (%s)%s\n",
				v->what, step, strerror(-err),
				k + 1 < nvariants ? ", trying the next" : "");
	}
	if (!skel)
		fprintf(stderr,
			"asyncprobe: failed to load and attach BPF programs: "
			"%s\n  run with -vv for libbpf's and the verifier's "
			"log; `asyncprobe check` says what this kernel "
			"supports; asyncprobe needs BTF, tracepoints and BPF "
			"ring buffers (Linux 5.17+)\n",
			strerror(-err));
	return skel;
}
