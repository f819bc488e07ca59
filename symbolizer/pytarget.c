// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "elfsym.h"
#include "pydebug.h"
#include "pytarget.h"

#define MAX_INTERPRETERS 64
#define MAX_THREADS 4096
#define PY_DEBUG_READ 1024 /* bytes of _PyRuntime read for _Py_DebugOffsets */
#define MAX_TASKS 4096
#define PTHREAD_SCAN_MAX 4096 /* bytes of struct pthread searched for tid */

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
	uint64_t end;
	uint64_t offset;
	char path[PATH_MAX];
};

typedef int (*mapping_cb)(void *ctx, const struct mapping *m);

/*
 * Call @cb for the start (file offset 0) of every file mapped by @pid,
 * until it returns non-zero; that value is returned.  -errno when the
 * maps cannot be read.
 */
static int maps_foreach(pid_t pid, mapping_cb cb, void *ctx)
{
	char path[64], line[PATH_MAX + 128];
	struct mapping m;
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		unsigned long start, end, off;
		char *file, *del;
		int pos = 0;

		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s%n", &start, &end,
			   &off, &pos) < 3 ||
		    !pos || off)
			continue;
		file = line + pos;
		while (*file == ' ')
			file++;
		file[strcspn(file, "\n")] = '\0';
		del = strstr(file, " (deleted)");
		if (del)
			*del = '\0';
		if (file[0] != '/')
			continue;
		m.start = start;
		m.end = end;
		m.offset = off;
		snprintf(m.path, sizeof(m.path), "%s", file);
		ret = cb(ctx, &m);
	}
	fclose(f);
	return ret;
}

struct needle {
	const char *s;
};

static int has_needle(void *ctx, const struct mapping *m)
{
	return strstr(m->path, ((struct needle *)ctx)->s) != NULL;
}

bool py_target__maps_object(pid_t pid, const char *needle)
{
	struct needle n = { needle };

	return maps_foreach(pid, has_needle, &n) > 0;
}

/*
 * The ELF file behind a mapping: the mapped file itself (map_files), else
 * the path in the target's root (a container's own mount namespace), else
 * the path as we see it (a chroot: maps shows paths from our root).
 */
static struct elf_file *mapping_open(pid_t pid, const struct mapping *m)
{
	char path[PATH_MAX + 32];
	struct elf_file *ef;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid,
		 (unsigned long)m->start, (unsigned long)m->end);
	ef = elf_file__open(path);
	if (!ef) {
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->path);
		ef = elf_file__open(path);
	}
	if (!ef)
		ef = elf_file__open(m->path);
	return ef;
}

/* Try one mapped object: does it hold _PyRuntime? */
static int try_object(struct py_target *t, const struct mapping *m)
{
	uint64_t sym = 0, base, pyver = 0;
	struct elf_file *ef;
	uint32_t hex;
	int err;

	ef = mapping_open(t->pid, m);
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
	t->major = t->minor = 0;
	t->micro = -1;
	/* Py_Version (3.11+) is PY_VERSION_HEX; else the file name says */
	if (pyver &&
	    !proc_read(t->pid, m->start - base + pyver, &hex, sizeof(hex)) &&
	    (hex >> 24) == 3) {
		t->major = hex >> 24;
		t->minor = (hex >> 16) & 0xff;
		t->micro = (hex >> 8) & 0xff;
	} else if (version_from_name(m->path, &t->major, &t->minor)) {
		char cookie[16];
		uint64_t v;

		/* a renamed binary: 3.13+ still say who they are */
		if (proc_read(t->pid, t->runtime, cookie, sizeof(cookie)) ||
		    memcmp(cookie, PY_DEBUG_COOKIE, 8))
			return -ENOENT;
		memcpy(&v, cookie + 8, sizeof(v));
		t->major = (int)(v >> 24 & 0xff);
		t->minor = (int)(v >> 16 & 0xff);
		t->micro = (int)(v >> 8 & 0xff);
	}
	return 0;
}

/*
 * The target's threads as (host tid, tid in the target's PID namespace),
 * from /proc/PID/task/TID/status ("NSpid: host ... innermost").
 */
static int task_ids(pid_t pid, struct py_task *tasks, int max)
{
	char path[96], line[256];
	struct dirent *de;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)) && n < max) {
		unsigned long host;
		char *end;
		FILE *f;

		host = strtoul(de->d_name, &end, 10);
		if (*end || !host)
			continue;
		tasks[n].host = (uint32_t)host;
		tasks[n].ns = (uint32_t)host;
		snprintf(path, sizeof(path), "/proc/%d/task/%lu/status", pid,
			 host);
		f = fopen(path, "re");
		if (f) {
			while (fgets(line, sizeof(line), f)) {
				char *p = line + 6;

				if (strncmp(line, "NSpid:", 6))
					continue;
				/* the last number is the innermost namespace's
				 */
				while (*p) {
					unsigned long v = strtoul(p, &end, 10);

					if (end == p)
						break;
					tasks[n].ns = (uint32_t)v;
					p = end;
				}
				break;
			}
			fclose(f);
		}
		n++;
	}
	closedir(dir);
	return n;
}

static const struct py_task *task_by_ns(const struct py_task *tasks, int n,
					uint64_t ns)
{
	for (int i = 0; i < n; i++)
		if (tasks[i].ns == ns)
			return &tasks[i];
	return NULL;
}

static int is_candidate(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libpython", 9) || !strncmp(base, "python", 6);
}

/* "3.8, ..., 3.15": the version table's rows and the 3.13+ layouts */
static const char *supported_versions(char *buf, size_t len)
{
	buf[0] = '\0';
	py_offsets__supported(buf, len);
	return py_debug__supported(buf, len);
}

/*
 * The offsets for this target: 3.13+ describe themselves in
 * _Py_DebugOffsets at the start of _PyRuntime, which wins over the table.
 */
static int py_target__layout(struct py_target *t, char *err, size_t errlen)
{
	char supported[128], why[256];
	uint8_t blob[PY_DEBUG_READ];
	int e = -ENOENT;

	if (t->major == 3 && t->minor >= 13 &&
	    !proc_read(t->pid, t->runtime, blob, sizeof(blob))) {
		e = py_debug__parse(blob, sizeof(blob), &t->dyn, why,
				    sizeof(why));
		if (!e) {
			t->off = &t->dyn;
			t->layout_source = "_Py_DebugOffsets";
			return 0;
		}
		if (e != -ENOENT) {
			snprintf(err, errlen, "PID %d (%s): %s; supported: %s",
				 t->pid, t->object, why,
				 supported_versions(supported,
						    sizeof(supported)));
			return e;
		}
	}
	t->off = py_offsets__find(t->major, t->minor);
	t->layout_source = "version table";
	if (!t->off) {
		snprintf(err, errlen,
			 "PID %d runs Python %d.%d (%s), which asyncprobe does "
			 "not support; supported: %s",
			 t->pid, t->major, t->minor, t->object,
			 supported_versions(supported, sizeof(supported)));
		return -ENOTSUP;
	}
	return 0;
}

struct open_state {
	struct py_target *t;
	char exe[PATH_MAX];
	char seen[PATH_MAX]; /* first libpython or python binary mapped */
};

/* Is this mapped object the one holding _PyRuntime?  1 stops the walk. */
static int open_candidate(void *ctx, const struct mapping *m)
{
	struct open_state *st = ctx;

	if (!is_candidate(m->path) && strcmp(m->path, st->exe))
		return 0;
	if (is_candidate(m->path) && !st->seen[0])
		snprintf(st->seen, sizeof(st->seen), "%s", m->path);
	return try_object(st->t, m) == 0;
}

int py_target__open(struct py_target *t, pid_t pid, char *err, size_t errlen)
{
	struct open_state st = { 0 };
	char exe_link[64], supported[128];
	int found, saw_python, major, minor, r;
	ssize_t n;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->ns_pid = pid;
	t->pthread_tid_off = -1;
	snprintf(exe_link, sizeof(exe_link), "/proc/%d/exe", pid);
	n = readlink(exe_link, st.exe, sizeof(st.exe) - 1);
	st.exe[n > 0 ? n : 0] = '\0';
	st.t = t;
	r = maps_foreach(pid, open_candidate, &st);
	if (r < 0) {
		snprintf(err, errlen,
			 r == -ENOENT ? "no process with PID %d"
				      : "cannot read /proc/%d/maps: %s",
			 pid, strerror(-r));
		return r;
	}
	found = r > 0 ? 0 : -ENOENT;
	saw_python = st.seen[0] != '\0';
	if (found && saw_python &&
	    !version_from_name(st.seen, &major, &minor)) {
		snprintf(err, errlen,
			 "PID %d runs Python %d.%d (%s), which asyncprobe does "
			 "not support; supported: %s",
			 pid, major, minor, st.seen,
			 supported_versions(supported, sizeof(supported)));
		return -ENOTSUP;
	}
	if (found) {
		snprintf(err, errlen,
			 saw_python ? "PID %d (%s) maps a Python binary but no "
				      "_PyRuntime was found in it: "
				      "Python 3.8 or newer is needed"
				    : "PID %d (%s) is not a CPython process "
				      "(no libpython or python binary mapped)",
			 pid, st.exe[0] ? st.exe : "?");
		return found;
	}
	{
		struct py_task tasks[1];

		/* the main thread is listed first: its ns tid is the ns pid */
		if (task_ids(pid, tasks, 1) == 1 &&
		    tasks[0].host == (uint32_t)pid)
			t->ns_pid = (pid_t)tasks[0].ns;
	}
	return py_target__layout(t, err, errlen);
}

/*
 * <= 3.10 keep only pthread_t (the address of glibc's or musl's struct
 * pthread), which holds the kernel tid at a libc-specific offset.  Find
 * the offset where every thread state's pthread maps to a distinct live
 * thread; trust it once two or more threads agree.
 */
static void pthread_tid_calibrate(struct py_target *t, const uint64_t *pthr,
				  int n, const struct py_task *tasks,
				  int ntasks)
{
	if (t->pthread_tid_sure || n <= 0)
		return;
	for (long off = 0; off < PTHREAD_SCAN_MAX; off += 4) {
		uint32_t seen[64];
		int ok = 0;

		for (int i = 0; i < n && i < 64; i++) {
			uint32_t tid;
			bool dup = false;

			if (proc_read(t->pid, pthr[i] + (uint64_t)off, &tid,
				      sizeof(tid)) ||
			    !task_by_ns(tasks, ntasks, tid))
				break;
			for (int j = 0; j < ok; j++)
				dup |= seen[j] == tid;
			if (dup)
				break;
			seen[ok++] = tid;
		}
		if (ok == (n < 64 ? n : 64)) {
			t->pthread_tid_off = off;
			t->pthread_tid_sure = n >= 2;
			return;
		}
	}
	t->pthread_tid_off = -1;
}

int py_target__threads(struct py_target *t, py_thread_cb cb, void *ctx)
{
	const struct py_offsets *o = t->off;
	struct py_task tasks[MAX_TASKS];
	uint64_t interp, ts, *tss = NULL, *ids = NULL;
	int n = 0, ntasks, err = 0, count = 0;

	ntasks = task_ids(t->pid, tasks, MAX_TASKS);
	if (ntasks < 0)
		return ntasks;
	tss = calloc(MAX_THREADS, sizeof(*tss));
	ids = calloc(MAX_THREADS, sizeof(*ids));
	if (!tss || !ids) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = read_u64(t->pid, t->runtime + o->runtime_interpreters_head,
		       &interp);
	if (err)
		goto cleanup;
	for (int i = 0; interp && i < MAX_INTERPRETERS; i++) {
		if (read_u64(t->pid, interp + o->interp_threads_head, &ts))
			break;
		for (int j = 0; ts && j < MAX_THREADS && n < MAX_THREADS; j++) {
			size_t id_off =
				o->tstate_native_thread_id >= 0
					? (size_t)o->tstate_native_thread_id
					: o->tstate_thread_id;

			if (read_u64(t->pid, ts + id_off, &ids[n]))
				break;
			tss[n++] = ts;
			if (read_u64(t->pid, ts + o->tstate_next, &ts))
				break;
		}
		if (read_u64(t->pid, interp + o->interp_next, &interp))
			break;
	}
	if (o->tstate_native_thread_id < 0) {
		pthread_tid_calibrate(t, ids, n, tasks, ntasks);
		for (int i = 0; i < n; i++) {
			uint32_t tid = 0;

			if (t->pthread_tid_off < 0 ||
			    proc_read(t->pid,
				      ids[i] + (uint64_t)t->pthread_tid_off,
				      &tid, sizeof(tid)))
				tid = 0;
			ids[i] = tid;
		}
	}
	for (int i = 0; i < n; i++) {
		const struct py_task *task = task_by_ns(tasks, ntasks, ids[i]);

		if (!ids[i] || !task) /* gone, or not started yet */
			continue;
		count++;
		if (cb && cb(ctx, task->host, task->ns, tss[i]))
			break;
	}
	err = count;
cleanup:
	free(tss);
	free(ids);
	return err;
}

int py_target__walk(const struct py_target *t, uint64_t tstate,
		    struct ap_frame *frames, int max)
{
	return py_target__walk_addrs(t, tstate, frames, NULL, max);
}

int py_target__walk_addrs(const struct py_target *t, uint64_t tstate,
			  struct ap_frame *frames, uint64_t *addrs, int max)
{
	const struct py_offsets *o = t->off;
	uint64_t p, code, instr, mask;
	int n = 0;

	mask = ~(uint64_t)o->code_ptr_tag_mask;
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
		if (o->owner_cstack < 0 || owner < o->owner_cstack) {
			if (addrs)
				addrs[n] = p;
			frames[n].code = code & mask;
			frames[n].instr = o->instr_kind == PY_INSTR_POINTER
						  ? instr
						  : (uint32_t)instr;
			n++;
		}
		if (read_u64(t->pid, p + o->frame_previous, &p))
			break;
	}
	return n;
}

/*
 * 3.14+: _asyncio describes its task and thread-state fields in an
 * .AsyncioDebug section (Py_AsyncioModuleDebugOffsets: 13 u64, the task
 * object's group, the interpreter's, the thread state's).  _asyncio is in
 * the binary or in its own extension module; look in both.
 */
struct object_find {
	pid_t pid;
	const char *needle;
	struct elf_file *ef;
	uint64_t bias, start;
};

static int object_match(void *ctx, const struct mapping *m)
{
	struct object_find *of = ctx;
	uint64_t base;

	if (!strstr(m->path, of->needle))
		return 0;
	of->ef = mapping_open(of->pid, m);
	if (!of->ef)
		return 0;
	if (elf_file__load_base(of->ef, &base)) {
		elf_file__close(of->ef);
		of->ef = NULL;
		return 0;
	}
	of->bias = m->start - base;
	of->start = m->start;
	return 1;
}

struct elf_file *py_target__object(pid_t pid, const char *needle,
				   uint64_t *bias, uint64_t *start)
{
	struct object_find of = { .pid = pid, .needle = needle };

	if (maps_foreach(pid, object_match, &of) <= 0)
		return NULL;
	*bias = of.bias;
	if (start)
		*start = of.start;
	return of.ef;
}

struct asyncio_state {
	pid_t pid;
	uint64_t *v;
};

static int asyncio_section(void *ctx, const struct mapping *m)
{
	struct asyncio_state *st = ctx;
	struct elf_file *ef;
	int err;

	if (!strstr(m->path, "/_asyncio") && !strstr(m->path, "python"))
		return 0;
	ef = mapping_open(st->pid, m);
	if (!ef)
		return 0;
	err = elf_file__section_data(ef, ".AsyncioDebug", st->v,
				     13 * sizeof(uint64_t));
	elf_file__close(ef);
	return !err;
}

int py_target__asyncio(const struct py_target *t, struct py_asyncio *out)
{
	struct asyncio_state st;
	uint64_t v[13];

	memset(out, 0, sizeof(*out));
	if (t->major != 3 || t->minor < 14)
		return -ENOTSUP;
	st.pid = t->pid;
	st.v = v;
	if (maps_foreach(t->pid, asyncio_section, &st) <= 0)
		return -ENOENT;
	/* task: size, task_name, ...; thread state: size, running_loop,
	 * running_task, tasks_head */
	if (!v[0] || v[0] > 4096 || v[1] + 8 > v[0] || !v[9] ||
	    v[9] > (1 << 20) || v[11] + 8 > v[9])
		return -EINVAL;
	if (v[6] + 16 > v[0] || !v[7] || v[7] > (1 << 20) || v[8] + 16 > v[7] ||
	    v[12] + 16 > v[9])
		return -EINVAL;
	out->task_size = (size_t)v[0];
	out->task_name = (size_t)v[1];
	out->task_node = (size_t)v[6];
	if (v[2] + 8 <= v[0] && v[4] < v[0]) {
		out->task_awaited_by = (size_t)v[2];
		out->task_awaited_by_is_set = (size_t)v[4];
	}
	out->interp_tasks_head = (size_t)v[8];
	out->tstate_running_task = (size_t)v[11];
	if (v[10] + 8 <= v[9])
		out->tstate_running_loop = (size_t)v[10];
	out->tstate_tasks_head = (size_t)v[12];
	return 0;
}

int py_target__gil(const struct py_target *t, uint64_t *gil)
{
	const struct py_offsets *o = t->off;
	uint64_t interp;

	*gil = 0;
	if (o->gil_runtime >= 0) {
		*gil = t->runtime + (uint64_t)o->gil_runtime;
		return 0;
	}
	if (o->interp_gil_ptr < 0 ||
	    read_u64(t->pid, t->runtime + o->runtime_interpreters_head,
		     &interp) ||
	    read_u64(t->pid, interp + (uint64_t)o->interp_gil_ptr, gil) ||
	    !*gil)
		return -EFAULT;
	return 0;
}

int py_target__gc_flag(const struct py_target *t, uint64_t *flag)
{
	const struct py_offsets *o = t->off;
	uint64_t interp;

	*flag = 0;
	if (o->gc_runtime_collecting >= 0) {
		*flag = t->runtime + (uint64_t)o->gc_runtime_collecting;
		return 0;
	}
	if (o->interp_gc_collecting < 0 ||
	    read_u64(t->pid, t->runtime + o->runtime_interpreters_head,
		     &interp) ||
	    !interp)
		return -EFAULT;
	*flag = interp + (uint64_t)o->interp_gc_collecting;
	return 0;
}

int py_target__gc_stats(const struct py_target *t, uint64_t *stats)
{
	uint64_t flag;
	int err;

	*stats = 0;
	if (!t->off->gc_stats_back)
		return -ENOTSUP;
	if ((err = py_target__gc_flag(t, &flag)))
		return err;
	*stats = flag - t->off->gc_stats_back;
	return 0;
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
	w->code_ptr_tag_mask = (uint32_t)o->code_ptr_tag_mask;
	w->instr_size = o->instr_kind == PY_INSTR_POINTER ? 8 : 4;
}
