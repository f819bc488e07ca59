// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "elfsym.h"
#include "pytarget.h"

#define MAX_INTERPRETERS 64
#define MAX_THREADS 4096

int proc_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr,
				.iov_len = len };
	ssize_t n;

	if (!len)
		return 0;
	if (!addr)
		return -EFAULT;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static int read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return proc_read(pid, addr, v, sizeof(*v));
}

/* "libpython3.11.so.1.0" or "python3.11" -> 3, 11 */
static int version_from_name(const char *path, int *major, int *minor)
{
	const char *base = strrchr(path, '/');
	const char *p;

	base = base ? base + 1 : path;
	p = strstr(base, "python");
	if (!p)
		return -ENOENT;
	if (sscanf(p, "python%d.%d", major, minor) == 2)
		return 0;
	return -ENOENT;
}

struct mapping {
	uint64_t start;
	uint64_t offset;
	char path[PATH_MAX];
};

/* Try one mapped object: does it hold _PyRuntime? */
static int try_object(struct py_target *t, const struct mapping *m)
{
	char host_path[PATH_MAX + 32];
	uint64_t sym = 0, base, pyver = 0;
	struct elf_file *ef;
	uint32_t hex;
	int err;

	/* the target's view of its files, right for chroots and containers */
	snprintf(host_path, sizeof(host_path), "/proc/%d/root%s", t->pid,
		 m->path);
	ef = elf_file__open(host_path);
	if (!ef)
		return -errno;
	err = elf_file__symbol(ef, "_PyRuntime", &sym);
	if (err)
		err = elf_file__section(ef, ".PyRuntime", &sym);
	if (!err)
		err = elf_file__load_base(ef, &base);
	if (!err && elf_file__symbol(ef, "Py_Version", &pyver))
		pyver = 0;
	elf_file__close(ef);
	if (err)
		return err;

	t->runtime = m->start - base + sym;
	snprintf(t->object, sizeof(t->object), "%s", m->path);
	t->major = t->minor = t->micro = 0;
	/* Py_Version (3.11+) is PY_VERSION_HEX; else the file name says */
	if (pyver &&
	    !proc_read(t->pid, m->start - base + pyver, &hex, sizeof(hex)) &&
	    (hex >> 24) == 3) {
		t->major = hex >> 24;
		t->minor = (hex >> 16) & 0xff;
		t->micro = (hex >> 8) & 0xff;
	} else if (version_from_name(m->path, &t->major, &t->minor)) {
		return -ENOENT;
	}
	return 0;
}

static int is_candidate(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libpython", 9) || !strncmp(base, "python", 6);
}

int py_target__open(struct py_target *t, pid_t pid, char *err, size_t errlen)
{
	char maps_path[64], line[PATH_MAX + 128], exe[PATH_MAX] = "";
	char supported[128];
	struct mapping m;
	int found = -ENOENT, saw_python = 0;
	FILE *f;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", pid);
	f = fopen(maps_path, "re");
	if (!f) {
		int e = errno;

		snprintf(err, errlen,
			 e == ENOENT ? "no process with PID %d"
				     : "cannot read /proc/%d/maps: %s",
			 pid, strerror(e));
		return -e;
	}
	snprintf(maps_path, sizeof(maps_path), "/proc/%d/exe", pid);
	ssize_t n = readlink(maps_path, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';

	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end, off;
		char perms[8];
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s%n", &start, &end,
			   perms, &off, &pos) < 4 ||
		    !pos)
			continue;
		char *path = line + pos;
		while (*path == ' ')
			path++;
		path[strcspn(path, "\n")] = '\0';
		if (path[0] != '/' || off != 0)
			continue;
		char *del = strstr(path, " (deleted)");
		if (del)
			*del = '\0';
		if (!is_candidate(path) && strcmp(path, exe))
			continue;
		saw_python |= is_candidate(path);
		m.start = start;
		m.offset = off;
		snprintf(m.path, sizeof(m.path), "%s", path);
		found = try_object(t, &m);
		if (!found)
			break;
	}
	fclose(f);

	if (found) {
		snprintf(err, errlen,
			 saw_python ? "PID %d (%s) maps a Python binary but no "
				      "_PyRuntime was found in it: "
				      "Python 3.8 or newer is needed"
				    : "PID %d (%s) is not a CPython process "
				      "(no libpython or python binary mapped)",
			 pid, exe[0] ? exe : "?");
		return found;
	}
	t->off = py_offsets__find(t->major, t->minor);
	if (!t->off) {
		snprintf(err, errlen,
			 "PID %d runs Python %d.%d (%s), which this asyncprobe "
			 "does not support; supported: %s",
			 pid, t->major, t->minor, t->object,
			 py_offsets__supported(supported, sizeof(supported)));
		return -ENOTSUP;
	}
	return 0;
}

int py_target__threads(const struct py_target *t, py_thread_cb cb, void *ctx)
{
	const struct py_offsets *o = t->off;
	uint64_t interp, ts, tid;
	int count = 0, err;

	err = read_u64(t->pid, t->runtime + o->runtime_interpreters_head,
		       &interp);
	if (err)
		return err;
	for (int i = 0; interp && i < MAX_INTERPRETERS; i++) {
		if (read_u64(t->pid, interp + o->interp_threads_head, &ts))
			break;
		for (int j = 0; ts && j < MAX_THREADS; j++) {
			if (read_u64(t->pid, ts + o->tstate_native_thread_id,
				     &tid))
				break;
			count++;
			if (cb && cb(ctx, tid, ts))
				return count;
			if (read_u64(t->pid, ts + o->tstate_next, &ts))
				break;
		}
		if (read_u64(t->pid, interp + o->interp_next, &interp))
			break;
	}
	return count;
}

int py_target__walk(const struct py_target *t, uint64_t tstate,
		    struct ap_frame *frames, int max)
{
	const struct py_offsets *o = t->off;
	uint64_t p, code, instr, mask;
	int n = 0;

	mask = ~((1ULL << (o->code_ptr_mask_bits & 7)) - 1);
	if (read_u64(t->pid, tstate + o->tstate_frame, &p))
		return -EFAULT;
	if (o->cframe_current_frame >= 0 && p &&
	    read_u64(t->pid, p + (uint64_t)o->cframe_current_frame, &p))
		return -EFAULT;
	for (int i = 0; p && i < max + 16 && n < max; i++) {
		int8_t owner = 0;

		if (read_u64(t->pid, p + o->frame_code, &code) ||
		    read_u64(t->pid, p + o->frame_instr, &instr))
			return n ? n : -EFAULT;
		if (o->frame_owner >= 0 &&
		    proc_read(t->pid, p + (uint64_t)o->frame_owner, &owner, 1))
			return n ? n : -EFAULT;
		if (o->owner_cstack < 0 || owner != o->owner_cstack) {
			frames[n].code = code & mask;
			frames[n].instr = instr;
			n++;
		}
		if (read_u64(t->pid, p + o->frame_previous, &p))
			break;
	}
	return n;
}

void py_target__bpf_walk(const struct py_target *t, struct ap_py_walk *w)
{
	const struct py_offsets *o = t->off;

	memset(w, 0, sizeof(*w));
	w->tstate_frame = (uint32_t)o->tstate_frame;
	w->cframe_frame = (int32_t)o->cframe_current_frame;
	w->frame_code = (uint32_t)o->frame_code;
	w->frame_previous = (uint32_t)o->frame_previous;
	w->frame_instr = (uint32_t)o->frame_instr;
	w->frame_owner = (int32_t)o->frame_owner;
	w->owner_cstack = o->owner_cstack;
	w->code_ptr_mask_bits = (uint32_t)o->code_ptr_mask_bits;
}
