// SPDX-License-Identifier: MIT
/*
 * The run loop: one epoll over every watched target's ring buffer and
 * pidfd, a tick timer, signals, and the exporter's HTTP server; with
 * --match, /proc is scanned for new targets every --rescan seconds.
 */
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "collector.h"
#include "exporter.h"
#include "hooks.h"
#include "metrics.h"
#include "pytarget.h"
#include "record.h"
#include "session.h"
#include "top.h"
#include "version.h"

#define MAX_TARGETS 128
#define MAX_FAILED 256 /* processes --match could not attach to */
#define FAIL_TRIES 3   /* attempts, one per scan: a new one may be early */
#define CMDLINE_MAX 4096

enum src_kind { SRC_SIGNAL = 1, SRC_TIMER, SRC_HTTP, SRC_RING, SRC_PIDFD };

struct failed {
	pid_t pid;
	unsigned long long start; /* its start time: PIDs are reused */
	int tries;
};

struct session {
	const struct ap_options *o;
	int epfd, sigfd, timerfd;
	struct collector *targets[MAX_TARGETS];
	int ntargets;
	struct failed failed[MAX_FAILED];
	int nfailed;
	regex_t re;
	bool have_re;
	double next_scan;
	struct exporter *http;
	uint64_t exited, scrapes;
	double started; /* unix time */
	struct record *rec;
	double begin;	 /* monotonic */
	bool progress;	 /* a progress line on the terminal */
	struct top *top; /* `asyncprobe top` */
	FILE *view;	 /* where top draws */
};

static int watch(struct session *s, int fd, enum src_kind kind, int slot)
{
	struct epoll_event ev = {
		.events = EPOLLIN,
		.data.u64 = (uint64_t)kind << 32 | (uint32_t)slot,
	};

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int target_add(struct session *s, pid_t pid, char *err, size_t len)
{
	const struct ap_options *o = s->o;
	struct collector *c;
	int slot = 0;

	while (slot < MAX_TARGETS && s->targets[slot])
		slot++;
	if (slot == MAX_TARGETS) {
		snprintf(err, len,
			 "already watching %d processes: PID %d left "
			 "out",
			 MAX_TARGETS, pid);
		return -1;
	}
	c = collector__new(o, pid, err, len);
	if (!c)
		return -1;
	if (watch(s, collector__ring_fd(c), SRC_RING, slot) ||
	    (collector__pidfd(c) >= 0 &&
	     watch(s, collector__pidfd(c), SRC_PIDFD, slot))) {
		snprintf(err, len, "cannot watch PID %d: epoll_ctl: %s", pid,
			 strerror(errno));
		collector__free(c);
		return -1;
	}
	s->targets[slot] = c;
	s->ntargets++;
	fprintf(stderr,
		"asyncprobe: watching PID %d (Python %s, %s); stall > %g ms, "
		"blocking syscall > %g ms.%s\n",
		pid, collector__python(c), collector__object(c), o->stall_ms,
		o->syscall_ms,
		o->duration_s > 0 || o->listen || o->match ? ""
							   : " Ctrl-C to end.");
	if (o->verbose)
		fprintf(stderr, "asyncprobe: PID %d: selector hooks: %s\n", pid,
			collector__hooks(c));
	return 0;
}

/* The target in @slot has exited or exec'd (@ended), or the run ends: say
 * how it went. */
static void target_end(struct session *s, int slot, bool ended)
{
	struct collector *c = s->targets[slot];

	if (!c)
		return;
	if (collector__execd(c))
		/* an exec is unusual enough to say so in every mode */
		fprintf(stderr,
			"asyncprobe: PID %d ran execve: the Python program "
			"watched is gone, so is its watch\n",
			collector__pid(c));
	else if (ended && (s->o->verbose || s->o->listen || s->o->match))
		fprintf(stderr, "asyncprobe: PID %d exited\n",
			collector__pid(c));
	collector__finish(c);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, collector__ring_fd(c), NULL);
	if (collector__pidfd(c) >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, collector__pidfd(c), NULL);
	collector__free(c);
	s->targets[slot] = NULL;
	s->ntargets--;
	if (ended)
		s->exited++;
	fflush(s->o->out);
}

/* --- discovery ----------------------------------------------------- */

/* Field 22 of /proc/PID/stat; 0 when gone. */
static unsigned long long proc_start(pid_t pid)
{
	unsigned long long start = 0;
	char path[64], buf[1024], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')'))) {
		/* after "(comm)": state is field 3, starttime field 22 */
		for (int field = 2; p && field < 22; field++)
			p = strchr(p + 1, ' ');
		if (p)
			start = strtoull(p + 1, NULL, 10);
	}
	fclose(f);
	return start;
}

/* The command line with its NULs as spaces; false when empty or gone. */
static bool proc_cmdline(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return n > 0;
}

static bool watched(const struct session *s, pid_t pid)
{
	for (int i = 0; i < MAX_TARGETS; i++)
		if (s->targets[i] && collector__pid(s->targets[i]) == pid)
			return true;
	return false;
}

static struct failed *failed_get(struct session *s, pid_t pid,
				 unsigned long long start)
{
	for (int i = 0; i < s->nfailed; i++)
		if (s->failed[i].pid == pid && s->failed[i].start == start)
			return &s->failed[i];
	if (s->nfailed >= MAX_FAILED)
		return NULL;
	s->failed[s->nfailed] = (struct failed){ pid, start, 0 };
	return &s->failed[s->nfailed++];
}

/* Forget the failures of processes that are gone. */
static void failed_prune(struct session *s)
{
	int n = 0;

	for (int i = 0; i < s->nfailed; i++)
		if (proc_start(s->failed[i].pid) == s->failed[i].start)
			s->failed[n++] = s->failed[i];
	s->nfailed = n;
}

static void scan(struct session *s)
{
	char cmd[CMDLINE_MAX], err[512];
	pid_t self = getpid();
	struct dirent *de;
	DIR *dir;

	failed_prune(s);
	dir = opendir("/proc");
	if (!dir) {
		fprintf(stderr, "asyncprobe: cannot list /proc: %s\n",
			strerror(errno));
		return;
	}
	while ((de = readdir(dir))) {
		unsigned long long start;
		struct failed *f;
		pid_t pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)strtol(de->d_name, NULL, 10);
		if (pid == self || watched(s, pid) ||
		    !proc_cmdline(pid, cmd, sizeof(cmd)) ||
		    regexec(&s->re, cmd, 0, NULL, 0))
			continue;
		/* a shell or a wrapper that matches too: not ours */
		if (!py_target__maps_object(pid, "python"))
			continue;
		start = proc_start(pid);
		f = failed_get(s, pid, start);
		if (!f || f->tries >= FAIL_TRIES)
			continue;
		if (!target_add(s, pid, err, sizeof(err))) {
			f->tries = 0;
			continue;
		}
		if (++f->tries == FAIL_TRIES)
			fprintf(stderr, "asyncprobe: %s; not tried again\n",
				err);
	}
	closedir(dir);
	/* attached ones need no failure record */
	for (int i = 0; i < s->nfailed; i++)
		if (!s->failed[i].tries)
			s->failed[i--] = s->failed[--s->nfailed];
}

/* --- exporter ------------------------------------------------------ */

static int write_metrics(void *ctx, FILE *out)
{
	struct session *s = ctx;
	struct ap_target_metrics ms[MAX_TARGETS];
	struct ap_self_metrics self = {
		.version = AP_VERSION,
		.libbpf = libbpf_version_string(),
		.targets_exited = s->exited,
		.scrapes = ++s->scrapes,
		.start_s = clock__mono(),
		.process_start = s->started,
	};
	int n = 0;

	for (int i = 0; i < MAX_TARGETS; i++)
		if (s->targets[i])
			collector__metrics(s->targets[i], &ms[n++]);
	self.targets_active = n;
	for (int i = 0; i < s->nfailed; i++)
		self.targets_failed += s->failed[i].tries >= FAIL_TRIES;
	return metrics__render(out, ms, n, &self, s->o->top_sites);
}

static int write_page(void *ctx, FILE *out)
{
	struct session *s = ctx;

	fprintf(out,
		"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		"<title>asyncprobe</title></head><body>\n"
		"<h1>asyncprobe %s</h1>\n<p>Event loop stalls, blocking "
		"syscalls and task churn of asyncio services.</p>\n"
		"<p><a href=\"/metrics\">Metrics</a></p>\n<h2>Watched "
		"processes</h2>\n<ul>\n",
		AP_VERSION);
	for (int i = 0; i < MAX_TARGETS; i++)
		if (s->targets[i])
			fprintf(out, "<li>PID %d, Python %s</li>\n",
				collector__pid(s->targets[i]),
				collector__python(s->targets[i]));
	fprintf(out, "</ul>\n%s</body></html>\n",
		s->ntargets ? "" : "<p>None yet.</p>\n");
	return 0;
}

/* --- the loop ------------------------------------------------------ */

static int session_setup(struct session *s)
{
	const uint64_t period_ns = AP_TICK_MS * 1000000ULL;
	struct itimerspec tick = {
		.it_interval = { 0, AP_TICK_MS * 1000000L },
	};
	struct timespec now;
	uint64_t next_ns;
	sigset_t mask;

	/* on multiples of the period: every asyncprobe on the machine ticks
	 * at the same times, so their selector-hook windows coincide */
	clock_gettime(CLOCK_MONOTONIC, &now);
	next_ns = ((now.tv_sec * 1000000000ULL + now.tv_nsec) / period_ns + 1) *
		  period_ns;
	tick.it_value.tv_sec = next_ns / 1000000000ULL;
	tick.it_value.tv_nsec = next_ns % 1000000000ULL;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s->timerfd =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->sigfd < 0 || s->timerfd < 0 || s->epfd < 0 ||
	    watch(s, s->sigfd, SRC_SIGNAL, 0) ||
	    watch(s, s->timerfd, SRC_TIMER, 0) ||
	    timerfd_settime(s->timerfd, TFD_TIMER_ABSTIME, &tick, NULL)) {
		fprintf(stderr,
			"asyncprobe: cannot set up the event loop: %s\n",
			strerror(errno));
		return -1;
	}
	return 0;
}

/* Recording: how far, and what it has so far, on one terminal line. */
static void progress_print(struct session *s)
{
	uint64_t stalls = 0, blocks = 0, st, bl;

	for (int i = 0; i < MAX_TARGETS; i++) {
		if (!s->targets[i])
			continue;
		collector__counts(s->targets[i], &st, &bl);
		stalls += st;
		blocks += bl;
	}
	fprintf(stderr, "\rrecording %.0f s", clock__mono() - s->begin);
	if (s->o->duration_s > 0)
		fprintf(stderr, " of %g", s->o->duration_s);
	fprintf(stderr,
		": %d process%s, %llu stalls, %llu blocking syscalls \033[K",
		s->ntargets, s->ntargets == 1 ? "" : "es",
		(unsigned long long)stalls, (unsigned long long)blocks);
}

static void on_tick(struct session *s, unsigned long ticks)
{
	uint64_t expirations;

	if (read(s->timerfd, &expirations, sizeof(expirations)) < 0)
		expirations = 0;
	for (int i = 0; i < MAX_TARGETS; i++) {
		struct collector *c = s->targets[i];

		if (!c)
			continue;
		if (collector__execd(c) ||
		    (collector__pidfd(c) < 0 && collector__gone(c)))
			target_end(s, i, true);
		else
			collector__tick(c, ticks);
	}
	if (s->have_re && clock__mono() >= s->next_scan) {
		scan(s);
		s->next_scan = clock__mono() + s->o->rescan_s;
	}
	fflush(s->o->out);
	if (s->top && ticks % (1000 / AP_TICK_MS) == 0) {
		struct collector *cs[MAX_TARGETS];
		int n = 0;

		for (int i = 0; i < MAX_TARGETS; i++)
			if (s->targets[i])
				cs[n++] = s->targets[i];
		top__draw(s->top, cs, n, s->view, isatty(fileno(s->view)));
	}
	if (s->rec)
		record__sync(s->rec);
	if (s->progress)
		progress_print(s);
}

static bool session_loop(struct session *s)
{
	const struct ap_options *o = s->o;
	double deadline = o->duration_s > 0 ? clock__mono() + o->duration_s : 0;
	unsigned long ticks = 0;

	for (;;) {
		struct epoll_event evs[16];
		int timeout = -1, n;

		if (!s->ntargets && !s->http && !s->have_re)
			return true; /* every target has exited */
		if (deadline) {
			double left = deadline - clock__mono();

			if (left <= 0)
				return true;
			timeout = (int)(left * 1000) + 1;
		}
		n = epoll_wait(s->epfd, evs, 16, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "asyncprobe: epoll_wait: %s\n",
				strerror(errno));
			return false;
		}
		for (int i = 0; i < n; i++) {
			enum src_kind kind = evs[i].data.u64 >> 32;
			int slot = (int)(uint32_t)evs[i].data.u64;

			switch (kind) {
			case SRC_SIGNAL:
				return true;
			case SRC_TIMER:
				on_tick(s, ++ticks);
				if (s->http)
					exporter__run(s->http);
				break;
			case SRC_HTTP:
				exporter__run(s->http);
				break;
			case SRC_RING:
				if (!s->targets[slot])
					break;
				collector__consume(s->targets[slot]);
				if (collector__execd(s->targets[slot]))
					target_end(s, slot, true);
				break;
			case SRC_PIDFD:
				target_end(s, slot, true);
				break;
			}
		}
	}
}

int session__run(const struct ap_options *o, struct record *rec)
{
	struct session *s = calloc(1, sizeof(*s));
	char err[512];
	int ret = 1, rc;

	if (!s) {
		fprintf(stderr, "asyncprobe: out of memory\n");
		return 1;
	}
	s->o = o;
	s->rec = rec;
	s->progress = rec && isatty(STDERR_FILENO);
	s->begin = clock__mono();
	s->epfd = s->sigfd = s->timerfd = -1;
	s->started = (double)time(NULL);
	hooks__log_level(o->verbose);

	if (hooks__caps_missing(err, sizeof(err))[0]) {
		fprintf(stderr,
			"asyncprobe: missing capabilities: %s; run as root, or "
			"grant CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE\n",
			err);
		goto cleanup;
	}
	if (o->match) {
		rc = regcomp(&s->re, o->match, REG_EXTENDED | REG_NOSUB);
		if (rc) {
			regerror(rc, &s->re, err, sizeof(err));
			fprintf(stderr,
				"asyncprobe: invalid --match regex: %s\n", err);
			goto cleanup;
		}
		s->have_re = true;
	}
	if (o->command == AP_CMD_TOP) {
		/* on stdout; the caller sends the finding lines elsewhere */
		s->view = stdout;
		s->top = top__new();
		if (!s->top) {
			fprintf(stderr, "asyncprobe: out of memory\n");
			goto cleanup;
		}
	}
	if (session_setup(s))
		goto cleanup;
	/* explicit targets must attach: say why not, and stop */
	for (int i = 0; i < o->npids; i++) {
		if (target_add(s, o->pids[i], err, sizeof(err))) {
			fprintf(stderr, "asyncprobe: %s\n", err);
			goto cleanup;
		}
	}
	if (o->listen) {
		s->http = exporter__new(o->listen, write_metrics, write_page, s,
					o->verbose, err, sizeof(err));
		if (!s->http) {
			fprintf(stderr, "asyncprobe: %s\n", err);
			goto cleanup;
		}
		if (watch(s, exporter__fd(s->http), SRC_HTTP, 0)) {
			fprintf(stderr,
				"asyncprobe: cannot watch the HTTP "
				"server: %s\n",
				strerror(errno));
			goto cleanup;
		}
		fprintf(stderr,
			"asyncprobe: serving metrics at http://%s/metrics\n",
			exporter__address(s->http));
	}
	if (s->have_re) {
		scan(s);
		s->next_scan = clock__mono() + o->rescan_s;
		fprintf(stderr,
			"asyncprobe: watching Python processes matching '%s' "
			"(%d now; looking again every %g s)\n",
			o->match, s->ntargets, o->rescan_s);
	}
	fflush(stderr);
	ret = session_loop(s) ? 0 : 1;
	if (s->progress)
		fputc('\n', stderr);
	for (int i = 0; i < MAX_TARGETS; i++)
		target_end(s, i, false);

cleanup:
	/* a failed start: the targets attached so far have no summary */
	for (int i = 0; i < MAX_TARGETS; i++)
		collector__free(s->targets[i]);
	exporter__free(s->http);
	top__free(s->top);
	if (s->have_re)
		regfree(&s->re);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->timerfd >= 0)
		close(s->timerfd);
	if (s->sigfd >= 0)
		close(s->sigfd);
	free(s);
	return ret;
}
