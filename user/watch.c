// SPDX-License-Identifier: MIT
/* Hardware write watchpoints on target memory (see watch.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "asyncprobe.h"
#include "watch.h"

struct watch_slot {
	uint64_t addr; /* 0: free */
	int *fds;      /* per CPU; -1: that CPU is offline */
	struct bpf_link **links;
};

struct watch {
	struct bpf_program *prog;
	int hits_fd;
	int ncpus;
	struct watch_slot slots[AP_WATCH_MAX];
};

struct watch *watch__new(struct bpf_program *prog, int hits_fd)
{
	struct watch *w = calloc(1, sizeof(*w));
	int ncpus = libbpf_num_possible_cpus();

	if (!w || ncpus <= 0) {
		free(w);
		return NULL;
	}
	w->prog = prog;
	w->hits_fd = hits_fd;
	w->ncpus = ncpus;
	for (int i = 0; i < AP_WATCH_MAX; i++) {
		struct watch_slot *s = &w->slots[i];

		s->fds = malloc(ncpus * sizeof(*s->fds));
		s->links = calloc(ncpus, sizeof(*s->links));
		if (!s->fds || !s->links) {
			watch__free(w);
			return NULL;
		}
		for (int c = 0; c < ncpus; c++)
			s->fds[c] = -1;
	}
	return w;
}

static void slot_close(struct watch *w, struct watch_slot *s)
{
	for (int c = 0; c < w->ncpus; c++) {
		/* a link owns its event's fd: destroying it closes that */
		if (s->links[c])
			bpf_link__destroy(s->links[c]);
		else if (s->fds[c] >= 0)
			close(s->fds[c]);
		s->links[c] = NULL;
		s->fds[c] = -1;
	}
	if (s->addr)
		bpf_map_delete_elem(w->hits_fd, &s->addr);
	s->addr = 0;
}

void watch__free(struct watch *w)
{
	if (!w)
		return;
	for (int i = 0; i < AP_WATCH_MAX; i++) {
		if (w->slots[i].fds && w->slots[i].links)
			slot_close(w, &w->slots[i]);
		free(w->slots[i].fds);
		free(w->slots[i].links);
	}
	free(w);
}

/* The slot watching @addr; 0: a free one. */
static struct watch_slot *slot_of(struct watch *w, uint64_t addr)
{
	for (int i = 0; i < AP_WATCH_MAX; i++)
		if (w->slots[i].addr == addr)
			return &w->slots[i];
	return NULL;
}

int watch__arm(struct watch *w, uint64_t addr)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_BREAKPOINT,
		.size = sizeof(attr),
		.bp_type = HW_BREAKPOINT_W,
		.bp_addr = addr,
		.bp_len = HW_BREAKPOINT_LEN_8,
		.sample_period = 1,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};
	struct watch_slot *s;
	uint64_t zero = 0;
	int err = 0, online = 0;

	/* a word of the target's: aligned, in user space */
	if (!w || !addr || addr % 8 || addr >> 47)
		return -EINVAL;
	if (slot_of(w, addr))
		return 0;
	s = slot_of(w, 0);
	if (!s)
		return -ENOSPC;
	/* counted from now: the key first, then the breakpoints */
	if (bpf_map_update_elem(w->hits_fd, &addr, &zero, BPF_ANY))
		return -errno;
	s->addr = addr;
	for (int c = 0; c < w->ncpus; c++) {
		int fd = (int)syscall(__NR_perf_event_open, &attr, -1, c, -1,
				      PERF_FLAG_FD_CLOEXEC);

		if (fd < 0) {
			/* a possible CPU that is not online */
			if (errno == ENODEV)
				continue;
			err = -errno;
			break;
		}
		s->fds[c] = fd;
		s->links[c] = bpf_program__attach_perf_event(w->prog, fd);
		if (!s->links[c]) {
			err = -errno;
			break;
		}
		online++;
	}
	if (!err && !online)
		err = -ENODEV;
	if (err)
		slot_close(w, s);
	return err;
}

void watch__disarm(struct watch *w, uint64_t addr)
{
	struct watch_slot *s = w && addr ? slot_of(w, addr) : NULL;

	if (s)
		slot_close(w, s);
}

int64_t watch__hits(struct watch *w, uint64_t addr)
{
	uint64_t n;

	if (!w || !addr || !slot_of(w, addr))
		return -ENOENT;
	if (bpf_map_lookup_elem(w->hits_fd, &addr, &n))
		return -errno;
	return (int64_t)(n > INT64_MAX ? INT64_MAX : n);
}

int watch__armed(const struct watch *w)
{
	int n = 0;

	for (int i = 0; w && i < AP_WATCH_MAX; i++)
		n += w->slots[i].addr != 0;
	return n;
}
