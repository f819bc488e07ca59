// SPDX-License-Identifier: MIT
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include "elfsym.h"
#include "pysym.h"
#include "pytasks.h"

static const struct py_asyncio_layout rows[] = {
	/* python 3.8.18, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 8,
		.interp_modules = 56,
		.mod_dict = 16,
		.mod_state = -1,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = 16,
		.ws_data_a = -1,
		.ws_data_b = -1,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 112,
		.task_fut_waiter = 104,
		.task_name = 120,
		.task_cancels = -1,
		.st_counter = -1,
		.st_scheduled = -1,
		.st_eager = -1,
		.fut_state = 72,
		.fut_exception = 48,
		.coro_code = 32,
		.coro_stack = -1,
		.coro_stack_kind = -1,
		.coro_localsplus = -1,
		.coro_yf_back = 0,
	},
	/* python 3.9.18, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 9,
		.interp_modules = 856,
		.mod_dict = 16,
		.mod_state = -1,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = 16,
		.ws_data_a = -1,
		.ws_data_b = -1,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 152,
		.task_fut_waiter = 144,
		.task_name = 160,
		.task_cancels = -1,
		.st_counter = -1,
		.st_scheduled = -1,
		.st_eager = -1,
		.fut_state = 80,
		.fut_exception = 48,
		.coro_code = 32,
		.coro_stack = -1,
		.coro_stack_kind = -1,
		.coro_localsplus = -1,
		.coro_yf_back = 0,
	},
	/* python 3.10.13, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 10,
		.interp_modules = 856,
		.mod_dict = 16,
		.mod_state = -1,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = 16,
		.ws_data_a = -1,
		.ws_data_b = -1,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 160,
		.task_fut_waiter = 152,
		.task_name = 168,
		.task_cancels = -1,
		.st_counter = -1,
		.st_scheduled = -1,
		.st_eager = -1,
		.fut_state = 88,
		.fut_exception = 48,
		.coro_code = 24,
		.coro_stack = -1,
		.coro_stack_kind = -1,
		.coro_localsplus = -1,
		.coro_yf_back = 0,
	},
	/* python 3.11.7, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 11,
		.interp_modules = 888,
		.mod_dict = 16,
		.mod_state = -1,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = -1,
		.ws_data_a = -32,
		.ws_data_b = 0,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 136,
		.task_fut_waiter = 128,
		.task_name = 144,
		.task_cancels = 168,
		.st_counter = -1,
		.st_scheduled = -1,
		.st_eager = -1,
		.fut_state = 88,
		.fut_exception = 48,
		.coro_code = 112,
		.coro_stack = 144,
		.coro_stack_kind = 1,
		.coro_localsplus = 152,
		.coro_yf_back = 1,
	},
	/* python 3.12.1, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 12,
		.interp_modules = 944,
		.mod_dict = 16,
		.mod_state = 32,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = -1,
		.ws_data_a = -24,
		.ws_data_b = 8,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 136,
		.task_fut_waiter = 128,
		.task_name = 144,
		.task_cancels = 168,
		.st_counter = 168,
		.st_scheduled = 56,
		.st_eager = 64,
		.fut_state = 88,
		.fut_exception = 48,
		.coro_code = 72,
		.coro_stack = 136,
		.coro_stack_kind = 1,
		.coro_localsplus = 144,
		.coro_yf_back = 1,
	},
	/* python 3.13.0, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 13,
		.interp_modules = 7656,
		.mod_dict = 16,
		.mod_state = 32,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = -1,
		.ws_data_a = 24,
		.ws_data_b = -1,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 120,
		.task_fut_waiter = 112,
		.task_name = 128,
		.task_cancels = 104,
		.st_counter = 152,
		.st_scheduled = 56,
		.st_eager = 64,
		.fut_state = 96,
		.fut_exception = 48,
		.coro_code = 72,
		.coro_stack = 136,
		.coro_stack_kind = 1,
		.coro_localsplus = 144,
		.coro_yf_back = 1,
	},
	/* python 3.14.10, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 14,
		.interp_modules = 7688,
		.mod_dict = 16,
		.mod_state = 32,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = -1,
		.ws_data_a = 32,
		.ws_data_b = -1,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 128,
		.task_fut_waiter = 120,
		.task_name = 136,
		.task_cancels = 112,
		.st_counter = 144,
		.st_scheduled = -1,
		.st_eager = -1,
		.fut_state = 104,
		.fut_exception = 48,
		.coro_code = 72,
		.coro_stack = 136,
		.coro_stack_kind = 2,
		.coro_localsplus = -1,
		.coro_yf_back = 1,
	},
	/* python 3.15.2, measured by symbolizer/gen/asyncio_gen.py */
	{
		.major = 3,
		.minor = 15,
		.interp_modules = 7592,
		.mod_dict = 16,
		.mod_state = 24,
		.set_used = 16,
		.set_mask = 32,
		.set_table = 40,
		.ws_dict = -1,
		.ws_data_a = 32,
		.ws_data_b = -1,
		.wr_object = 16,
		.type_base = 256,
		.type_name = 24,
		.fut_loop = 16,
		.task_coro = 128,
		.task_fut_waiter = 120,
		.task_name = 136,
		.task_cancels = 112,
		.st_counter = 144,
		.st_scheduled = -1,
		.st_eager = -1,
		.fut_state = 104,
		.fut_exception = 48,
		.coro_code = 72,
		.coro_stack = 136,
		.coro_stack_kind = 2,
		.coro_localsplus = -1,
		.coro_yf_back = 2,
	},
};

#define PTR 8
#define TAG_MASK (~(uint64_t)7)	 /* tagged references (3.14+) */
#define MAX_SET_SLOTS (1u << 20) /* 16 MB of table: ~600k tasks */
#define MAX_DICT_ENTRIES (1u << 16)
#define MAX_CHAIN 64  /* coroutines in one task's await chain */
#define TASK_READ 256 /* bytes of a task read at once */
#define NAME_READ 80  /* bytes of a name object: header and "Task-N" */
#define MAX_CAND_BYTES (64u << 10) /* writable segment calibrated in */
#define CAND_MAX (1ull << 40)	   /* a count, not a pointer */
#define CAND_STEP_MAX (1ull << 27) /* tasks between two reads, at most */
#define IOV_BATCH 1024		   /* iovecs per process_vm_readv */
#define EMIT_BATCH 4096		   /* tasks read and reported at once */
#define TYPE_CACHE 32

/* PyDictObject: ma_used, then a version/watcher word, ma_keys, ma_values;
 * the same in every version from 3.8 on. */
#define DICT_KEYS 32
#define DICT_VALUES 40
#define FUTUREITER_FUTURE 16 /* FutureIterObject: HEAD, future */

enum type_kind {
	TYPE_OTHER = 0,
	TYPE_TASK,
	TYPE_FUTUREITER,
	TYPE_CORO,
	TYPE_STR,
	TYPE_INT,
};

struct type_entry {
	uint64_t type;
	enum type_kind kind;
};

struct py_tasks {
	const struct py_target *t;
	const struct py_asyncio_layout *l;
	struct py_asyncio aio; /* 3.14+ lists */
	bool lists;
	uint64_t module, state;
	uint64_t weakset; /* all tasks (<= 3.11), scheduled tasks (3.12+) */
	uint64_t eager;	  /* tasks running eagerly (3.12, 3.13) */
	uint64_t counter; /* address of the counter; 0: none or calibrating */
	uint64_t base;	  /* its value when opened */
	const char *counter_src;
	/* calibration: the module's writable words, as candidates */
	uint64_t cand_addr;
	size_t cand_words;
	uint64_t *cand_base, *cand_last;
	bool *cand_live;
	long cand_which;	/* the leader at the last read, -1: none yet */
	uint64_t cand_acc;	/* its steps summed: tasks created since open */
	unsigned counter_epoch; /* bumped when the leader changes */
	uint64_t max_number;	/* largest automatic task number seen */
	struct type_entry types[TYPE_CACHE];
	int ntypes;
	/* addresses a walk gathers, then read in batches */
	uint64_t *addrs;
	size_t cap;
};

const struct py_asyncio_layout *py_asyncio__layout(int major, int minor)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (rows[i].major == major && rows[i].minor == minor)
			return &rows[i];
	return NULL;
}

static int rd(const struct py_tasks *pt, uint64_t addr, void *buf, size_t len)
{
	return proc_read(pt->t->pid, addr, buf, len);
}

static int rd64(const struct py_tasks *pt, uint64_t addr, uint64_t *v)
{
	return rd(pt, addr, v, sizeof(*v));
}

static uint64_t at64(const uint8_t *buf, long off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

/*
 * Read @n objects of @len bytes at @addrs into @out (n * len bytes), many
 * per syscall.  ok[i] says which reads succeeded: a read that faults (the
 * object died and its page went away) does not stop the others.
 */
static int read_many(pid_t pid, const uint64_t *addrs, size_t n, size_t len,
		     uint8_t *out, bool *ok)
{
	struct iovec local[IOV_BATCH], remote[IOV_BATCH];
	size_t i = 0;

	while (i < n) {
		size_t m = n - i < IOV_BATCH ? n - i : IOV_BATCH, done;
		ssize_t got;

		for (size_t j = 0; j < m; j++) {
			local[j].iov_base = out + (i + j) * len;
			local[j].iov_len = len;
			remote[j].iov_base = (void *)(uintptr_t)addrs[i + j];
			remote[j].iov_len = len;
		}
		got = process_vm_readv(pid, local, m, remote, m, 0);
		if (got < 0 && errno != EFAULT)
			return -errno;
		done = got > 0 ? (size_t)got / len : 0;
		for (size_t j = 0; j < done; j++)
			ok[i + j] = true;
		if (done < m)
			ok[i + done] = false; /* the one that faulted */
		i += done < m ? done + 1 : m;
	}
	return 0;
}

static int scratch(struct py_tasks *pt, size_t n)
{
	uint64_t *a;

	if (n <= pt->cap)
		return 0;
	a = realloc(pt->addrs, n * sizeof(*a));
	if (!a)
		return -ENOMEM;
	pt->addrs = a;
	pt->cap = n;
	return 0;
}

static int read_cstr(const struct py_tasks *pt, uint64_t addr, char *buf,
		     size_t len)
{
	int err;

	/* one read of the whole buffer can cross into an unmapped page */
	err = rd(pt, addr, buf, len - 1);
	for (size_t n = len - 1; err && n > 8; n /= 2)
		err = rd(pt, addr, buf, n);
	if (err)
		return err;
	buf[len - 1] = '\0';
	return 0;
}

int py_tasks__type_name(struct py_tasks *pt, uint64_t obj, char *buf,
			size_t len)
{
	uint64_t type, name;
	int err;

	if ((err = rd64(pt, obj + pt->t->off->object_type, &type)) ||
	    (err = rd64(pt, type + pt->l->type_name, &name)))
		return err;
	return read_cstr(pt, name, buf, len);
}

/* What an object's type is, following tp_base for subclasses (cached). */
static enum type_kind type_kind(struct py_tasks *pt, uint64_t type)
{
	enum type_kind kind = TYPE_OTHER;
	uint64_t t = type, name;
	char buf[64];

	for (int i = 0; i < pt->ntypes; i++)
		if (pt->types[i].type == type)
			return pt->types[i].kind;
	for (int depth = 0; t && depth < 8 && kind == TYPE_OTHER; depth++) {
		if (rd64(pt, t + pt->l->type_name, &name) ||
		    read_cstr(pt, name, buf, sizeof(buf)))
			return TYPE_OTHER; /* not cached: maybe garbage */
		if (!strcmp(buf, "_asyncio.Task"))
			kind = TYPE_TASK;
		else if (!strcmp(buf, "_asyncio.FutureIter"))
			kind = TYPE_FUTUREITER;
		else if (!strcmp(buf, "coroutine"))
			kind = TYPE_CORO;
		else if (depth == 0 && !strcmp(buf, "str"))
			kind = TYPE_STR;
		else if (depth == 0 && !strcmp(buf, "int"))
			kind = TYPE_INT;
		else if (rd64(pt, t + pt->l->type_base, &t))
			return TYPE_OTHER;
	}
	if (pt->ntypes < TYPE_CACHE)
		pt->types[pt->ntypes++] =
			(struct type_entry){ .type = type, .kind = kind };
	return kind;
}

static enum type_kind obj_kind(struct py_tasks *pt, uint64_t obj)
{
	uint64_t type;

	if (!obj || rd64(pt, obj + pt->t->off->object_type, &type) || !type)
		return TYPE_OTHER;
	return type_kind(pt, type);
}

bool py_tasks__is_task(struct py_tasks *pt, uint64_t obj)
{
	return obj_kind(pt, obj) == TYPE_TASK;
}

static bool str_equals(struct py_tasks *pt, uint64_t obj, const char *s)
{
	char buf[128];

	return !pysym__decode_unicode(pt->t->off, pt->t->pid, obj, buf,
				      sizeof(buf)) &&
	       !strcmp(buf, s);
}

/* dict[@key] for a dict with str keys (module dicts, sys.modules). */
static int dict_get(struct py_tasks *pt, uint64_t dict, const char *key,
		    uint64_t *value)
{
	const bool compact = pt->t->minor >= 11;
	uint64_t keys, values, nentries, size, entries;
	uint8_t hdr[40], *ents = NULL;
	size_t esize, n;
	int err;

	if ((err = rd64(pt, dict + DICT_KEYS, &keys)) ||
	    (err = rd64(pt, dict + DICT_VALUES, &values)) ||
	    (err = rd(pt, keys, hdr, sizeof(hdr))))
		return err;
	if (compact) {
		/* refcnt, log2_size, log2_index_bytes, kind, version, usable,
		 * nentries, indices */
		if (hdr[8] > 30 || hdr[9] > 34)
			return -EINVAL;
		nentries = at64(hdr, 24);
		entries = keys + 32 + (1ull << hdr[9]);
		esize = hdr[10] ? 16 : 24; /* str-keyed: no hash */
	} else {
		/* refcnt, size, lookup, usable, nentries, indices */
		size = at64(hdr, 8);
		if (!size || size > (1ull << 30) || (size & (size - 1)))
			return -EINVAL;
		nentries = at64(hdr, 32);
		entries = keys + 40 +
			  size * (size <= 0xff	   ? 1
				  : size <= 0xffff ? 2
						   : 4);
		esize = 24;
	}
	if (values && compact)
		return -ENOTSUP; /* split tables: instance dicts only */
	if (nentries > MAX_DICT_ENTRIES)
		return -E2BIG;
	n = (size_t)nentries;
	ents = malloc(n * esize + 1);
	if (!ents)
		return -ENOMEM;
	if ((err = rd(pt, entries, ents, n * esize)))
		goto cleanup;
	err = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = ents + i * esize;
		uint64_t k = at64(e, esize == 16 ? 0 : 8);

		if (!k || !str_equals(pt, k, key))
			continue;
		if (values)
			err = rd64(pt, values + i * PTR, value); /* split */
		else
			*value = at64(e, esize == 16 ? 8 : 16), err = 0;
		if (!err && !*value)
			err = -ENOENT;
		break;
	}
cleanup:
	free(ents);
	return err;
}

/* A WeakSet's underlying set of weak references. */
static int weakset_data(struct py_tasks *pt, uint64_t ws, uint64_t *data)
{
	const struct py_asyncio_layout *l = pt->l;
	char name[16];
	uint64_t p;
	int err;

	if (l->ws_dict >= 0) {
		if ((err = rd64(pt, ws + l->ws_dict, &p)))
			return err;
		err = dict_get(pt, p, "data", data);
	} else if (l->ws_data_b >= 0) {
		if ((err = rd64(pt, ws + l->ws_data_a, &p)))
			return err;
		p &= TAG_MASK; /* 3.12 tags a values pointer */
		err = p ? rd64(pt, p + l->ws_data_b, data) : -ENOTSUP;
	} else {
		err = rd64(pt, ws + l->ws_data_a, data);
	}
	if (err)
		return err;
	/* its instance dict was materialized: not followed (rare) */
	if (py_tasks__type_name(pt, *data, name, sizeof(name)) ||
	    strcmp(name, "set"))
		return -ENOTSUP;
	return 0;
}

/* Calibration for a stripped _asyncio (<= 3.11): the counter is a static
 * word in the module's writable segment.  Every word there that could be
 * it is a candidate; each read drops those that stop behaving like it. */
static void counter_candidates(struct py_tasks *pt, const char *object)
{
	char path[64], line[PATH_MAX + 128];
	bool in_object = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pt->t->pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		char perms[8] = "";
		int pos = 0;

		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &start, &end,
			   perms, &pos) < 3)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (strstr(line + pos, object))
			in_object = true;
		else if (strspn(line + pos, " ") != strlen(line + pos))
			in_object = false; /* its .bss may follow, anonymous */
		if (!in_object || perms[0] != 'r' || perms[1] != 'w')
			continue;
		/* the writable segment of a module is a few pages, with its
		 * .bss perhaps in an anonymous mapping right after */
		if (!pt->cand_words)
			pt->cand_addr = start;
		else if (start != pt->cand_addr + pt->cand_words * PTR)
			break;
		if (end - pt->cand_addr > MAX_CAND_BYTES)
			break;
		pt->cand_words = (end - pt->cand_addr) / PTR;
	}
	fclose(f);
	if (!pt->cand_words)
		return;
	pt->cand_base = calloc(pt->cand_words, sizeof(uint64_t));
	pt->cand_last = calloc(pt->cand_words, sizeof(uint64_t));
	pt->cand_live = calloc(pt->cand_words, sizeof(bool));
	if (!pt->cand_base || !pt->cand_last || !pt->cand_live ||
	    rd(pt, pt->cand_addr, pt->cand_base, pt->cand_words * PTR)) {
		pt->cand_words = 0;
		return;
	}
	for (size_t i = 0; i < pt->cand_words; i++) {
		uint64_t v = pt->cand_base[i];

		/* a count, not a pointer; 0 and 1 too: a young service has
		 * numbered no task, or only its main one */
		pt->cand_live[i] = v < CAND_MAX;
		pt->cand_last[i] = v;
	}
	pt->cand_which = -1;
	pt->counter_src = "calibrated";
}

static int counter_find(struct py_tasks *pt)
{
	const struct py_asyncio_layout *l = pt->l;
	struct elf_file *ef;
	uint64_t bias, sym;

	if (l->st_counter >= 0) {
		pt->counter = pt->state + l->st_counter;
		pt->counter_src = "module state";
		return 0;
	}
	ef = py_target__object(pt->t->pid, "/_asyncio", &bias, NULL);
	if (!ef)
		return -ENOENT; /* built in: a static binary's data is too
				 * large to calibrate in */
	if (!elf_file__symbol(ef, "task_name_counter", &sym)) {
		pt->counter = bias + sym;
		pt->counter_src = "symbol";
	}
	elf_file__close(ef);
	if (!pt->counter)
		counter_candidates(pt, "/_asyncio");
	return 0;
}

/*
 * Did a word go from @last up by @step by setting one high bit?  That is
 * a flags word, not a count: a static type's tp_flags gains
 * Py_TPFLAGS_VALID_VERSION_TAG (1 << 19) when its method cache is first
 * used, which once passed for half a million tasks created at once.
 */
static bool flag_set(uint64_t last, uint64_t step)
{
	return step >= 256 && !(step & (step - 1)) && !(last & step);
}

int py_tasks__counter(struct py_tasks *pt, uint64_t *now, uint64_t *base)
{
	uint64_t *v, best = 0;
	long which = -1;

	if (pt->counter) {
		*base = pt->base;
		return rd64(pt, pt->counter, now);
	}
	if (!pt->cand_words)
		return -ENOENT;
	v = malloc(pt->cand_words * PTR);
	if (!v)
		return -ENOMEM;
	if (rd(pt, pt->cand_addr, v, pt->cand_words * PTR)) {
		free(v);
		return -EFAULT;
	}
	for (size_t i = 0; i < pt->cand_words; i++) {
		if (!pt->cand_live[i])
			continue;
		/* a counter never goes down, is past every number given, and
		 * never becomes a pointer (a static that was NULL at open) */
		uint64_t step = v[i] - pt->cand_last[i];

		if (v[i] < pt->cand_last[i] || v[i] < pt->max_number ||
		    v[i] >= CAND_MAX || step > CAND_STEP_MAX ||
		    flag_set(pt->cand_last[i], step)) {
			pt->cand_live[i] = false;
			continue;
		}
		/* the one that moved most: other monotonic words (a type's
		 * reference count in a leak) move at most as fast */
		if (which < 0 || v[i] - pt->cand_base[i] > best) {
			best = v[i] - pt->cand_base[i];
			which = (long)i;
		}
	}
	if (which < 0) {
		free(v);
		return -ENOENT;
	}
	/* tasks created: the sum of the steps of whichever candidate leads
	 * at each read, so that a change of leader is no jump; but no less
	 * than the leader moved: the counter found late (another word led
	 * while the service was young) counts from the start */
	pt->cand_acc += v[which] - pt->cand_last[which];
	if (pt->cand_acc < v[which] - pt->cand_base[which])
		pt->cand_acc = v[which] - pt->cand_base[which];
	if (which != pt->cand_which) {
		pt->cand_which = which;
		pt->counter_epoch++;
	}
	for (size_t i = 0; i < pt->cand_words; i++)
		if (pt->cand_live[i])
			pt->cand_last[i] = v[i];
	free(v);
	*now = pt->cand_last[which];
	*base = *now - pt->cand_acc;
	return 0;
}

unsigned py_tasks__counter_epoch(const struct py_tasks *pt)
{
	return pt->counter_epoch;
}

const char *py_tasks__counter_source(const struct py_tasks *pt)
{
	return pt->counter_src;
}

int py_tasks__open(struct py_tasks **out, const struct py_target *t, char *err,
		   size_t errlen)
{
	struct py_tasks *pt;
	uint64_t interp, modules, dict;
	int e;

	*out = NULL;
	pt = calloc(1, sizeof(*pt));
	if (!pt)
		return -ENOMEM;
	pt->t = t;
	pt->l = py_asyncio__layout(t->major, t->minor);
	if (!pt->l) {
		snprintf(err, errlen,
			 "no asyncio layout for Python %d.%d: task counts and "
			 "dumps are unavailable",
			 t->major, t->minor);
		e = -ENOTSUP;
		goto cleanup;
	}
	if ((e = rd64(pt, t->runtime + t->off->runtime_interpreters_head,
		      &interp)) ||
	    (e = rd64(pt, interp + pt->l->interp_modules, &modules)))
		goto unreadable;
	e = dict_get(pt, modules, "_asyncio", &pt->module);
	if (e == -ENOENT) {
		snprintf(err, errlen, "asyncio is not imported (yet)");
		goto cleanup;
	}
	if (e)
		goto unreadable;
	if (pt->l->mod_state >= 0) {
		if ((e = rd64(pt, pt->module + pt->l->mod_state, &pt->state)))
			goto unreadable;
		if (pt->l->st_scheduled >= 0 &&
		    ((e = rd64(pt, pt->state + pt->l->st_scheduled,
			       &pt->weakset)) ||
		     (e = rd64(pt, pt->state + pt->l->st_eager, &pt->eager))))
			goto unreadable;
	} else {
		if ((e = rd64(pt, pt->module + pt->l->mod_dict, &dict)) ||
		    (e = dict_get(pt, dict, "_all_tasks", &pt->weakset)))
			goto unreadable;
	}
	if (t->minor >= 14) {
		if ((e = py_target__asyncio(t, &pt->aio))) {
			snprintf(err, errlen,
				 "no readable AsyncioDebug section in the "
				 "_asyncio module: tasks cannot be listed");
			goto cleanup;
		}
		pt->lists = true;
	}
	counter_find(pt);
	if (pt->counter && rd64(pt, pt->counter, &pt->base))
		pt->counter = 0;
	*out = pt;
	return 0;

unreadable:
	snprintf(err, errlen,
		 "cannot read the asyncio task registry of PID %d (%s): %s",
		 t->pid, t->object, strerror(-e));
cleanup:
	py_tasks__free(pt);
	return e;
}

void py_tasks__free(struct py_tasks *pt)
{
	if (!pt)
		return;
	free(pt->addrs);
	free(pt->cand_base);
	free(pt->cand_last);
	free(pt->cand_live);
	free(pt);
}

/* The N of an automatic "Task-N" name from the name object's bytes. */
static uint64_t name_number(struct py_tasks *pt, const uint8_t *obj)
{
	const struct py_offsets *o = pt->t->off;
	enum type_kind kind = type_kind(pt, at64(obj, o->object_type));
	uint64_t n = 0;

	if (kind == TYPE_INT) {
		/* 3.14+: lv_tag (digit count << 3 | sign) then 30-bit digits */
		uint64_t tag = at64(obj, 16);
		uint32_t d;

		memcpy(&d, obj + 24, sizeof(d));
		return (tag >> 3) == 1 && !(tag & 3) ? d : 0;
	}
	/* the offsets come from the target (_Py_DebugOffsets, which bounds
	 * them by the str struct only): they must fall in what was read */
	if (kind != TYPE_STR || o->unicode_state + 4 > NAME_READ ||
	    o->unicode_length + 8 > NAME_READ)
		return 0;
	uint32_t state;
	int64_t len;

	memcpy(&state, obj + o->unicode_state, sizeof(state));
	memcpy(&len, obj + o->unicode_length, sizeof(len));
	/* compact ASCII only: what "Task-%d" makes */
	if (!((state >> 6) & 1) || !((state >> 5) & 1) || len < 6 ||
	    o->unicode_ascii_data + (size_t)len > NAME_READ ||
	    memcmp(obj + o->unicode_ascii_data, "Task-", 5))
		return 0;
	for (int64_t i = 5; i < len; i++) {
		char c = (char)obj[o->unicode_ascii_data + i];

		if (c < '0' || c > '9' || n > (1ull << 56))
			return 0;
		n = n * 10 + (uint64_t)(c - '0');
	}
	return n;
}

int py_tasks__name_bytes(struct py_tasks *pt, const uint8_t *obj, size_t n,
			 char *buf, size_t len)
{
	const struct py_offsets *o = pt->t->off;
	enum type_kind kind;
	uint32_t state, digits[2] = { 0, 0 };
	uint64_t tag;
	int64_t slen;

	if (n < 32 || o->object_type + 8 > n)
		return -EINVAL;
	kind = type_kind(pt, at64(obj, o->object_type));
	if (kind == TYPE_INT) {
		/* 3.14+: lv_tag (digit count << 3 | sign) then 30-bit digits */
		tag = at64(obj, 16);
		if ((tag & 3) || !(tag >> 3) || (tag >> 3) > 2)
			return -EINVAL;
		memcpy(digits, obj + 24, (size_t)(tag >> 3) * 4);
		snprintf(buf, len, "Task-%llu",
			 (unsigned long long)digits[0] |
				 (unsigned long long)digits[1] << 30);
		return 0;
	}
	if (kind != TYPE_STR || o->unicode_state + 4 > n ||
	    o->unicode_length + 8 > n || o->unicode_ascii_data >= n)
		return -EINVAL;
	memcpy(&state, obj + o->unicode_state, sizeof(state));
	memcpy(&slen, obj + o->unicode_length, sizeof(slen));
	/* compact ASCII only: that is what task names are */
	if (!((state >> 5) & 1) || !((state >> 6) & 1) || slen < 0)
		return -EINVAL;
	if ((uint64_t)slen > n - o->unicode_ascii_data)
		slen = (int64_t)(n - o->unicode_ascii_data);
	snprintf(buf, len, "%.*s", (int)slen,
		 (const char *)obj + o->unicode_ascii_data);
	return 0;
}

/* Is the name object a str (or the int of a lazy "Task-N", 3.14+)? */
static bool name_is_text(struct py_tasks *pt, const uint8_t *obj)
{
	enum type_kind kind = type_kind(pt, at64(obj, pt->t->off->object_type));

	return kind == TYPE_STR || kind == TYPE_INT;
}

/* Fill @ti from a task's bytes. */
static void task_parse(struct py_tasks *pt, uint64_t addr, const uint8_t *b,
		       struct py_task_info *ti)
{
	const struct py_asyncio_layout *l = pt->l;
	int32_t state;

	memset(ti, 0, sizeof(*ti));
	ti->addr = addr;
	ti->loop = at64(b, l->fut_loop);
	ti->coro = at64(b, l->task_coro);
	ti->waiter = at64(b, l->task_fut_waiter);
	ti->name = at64(b, l->task_name);
	if (l->task_cancels >= 0)
		memcpy(&ti->cancels, b + l->task_cancels, sizeof(ti->cancels));
	memcpy(&state, b + l->fut_state, sizeof(state));
	ti->state = state;
}

/*
 * Parse a batch of task addresses: check each is a task, read it, its
 * name and its coroutine's code, then call @cb.  Returns tasks reported.
 */
static int tasks_emit(struct py_tasks *pt, const uint64_t *addrs, size_t n,
		      py_task_cb cb, void *ctx, int *stop)
{
	const struct py_offsets *o = pt->t->off;
	struct py_task_info *ti;
	uint8_t *tb = NULL, *nb = NULL;
	uint64_t *second = NULL;
	bool *ok = NULL, *ok2 = NULL;
	int count = 0;

	ti = calloc(n ? n : 1, sizeof(*ti));
	tb = malloc(n * TASK_READ + 1);
	nb = malloc(n * NAME_READ + 1);
	second = calloc(n + 1, sizeof(*second));
	ok = calloc(n + 1, sizeof(*ok));
	ok2 = calloc(n + 1, sizeof(*ok2));
	if (!ti || !tb || !nb || !second || !ok || !ok2) {
		count = -ENOMEM;
		goto cleanup;
	}
	if ((count = read_many(pt->t->pid, addrs, n, TASK_READ, tb, ok)))
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		ok[i] = ok[i] &&
			type_kind(pt, at64(tb + i * TASK_READ,
					   o->object_type)) == TYPE_TASK;
		if (ok[i])
			task_parse(pt, addrs[i], tb + i * TASK_READ, &ti[i]);
		second[i] = ok[i] ? ti[i].name : 0;
	}
	/* names: the automatic number; a failed read is just "named" */
	read_many(pt->t->pid, second, n, NAME_READ, nb, ok2);
	for (size_t i = 0; i < n; i++) {
		if (!ok[i] || !ok2[i])
			continue;
		ti[i].number = name_number(pt, nb + i * NAME_READ);
		/* a freed name (the task died meanwhile) is neither */
		ti[i].named =
			!ti[i].number && name_is_text(pt, nb + i * NAME_READ);
		if (ti[i].number > pt->max_number && !pt->counter)
			pt->max_number = ti[i].number;
	}
	/* the coroutine's code: what the task runs */
	for (size_t i = 0; i < n; i++)
		second[i] =
			ok[i] && ti[i].coro ? ti[i].coro + pt->l->coro_code : 0;
	read_many(pt->t->pid, second, n, PTR, nb, ok2);
	count = 0;
	for (size_t i = 0; i < n && !*stop; i++) {
		if (!ok[i])
			continue;
		if (ok2[i])
			ti[i].code = at64(nb + i * PTR, 0) & TAG_MASK;
		count++;
		*stop = cb(ctx, &ti[i]);
	}
cleanup:
	free(ti);
	free(tb);
	free(nb);
	free(second);
	free(ok);
	free(ok2);
	return count;
}

/* Addresses of the tasks in a set: of weak references to them (a
 * WeakSet's data) or of the tasks themselves. */
static int set_members(struct py_tasks *pt, uint64_t set, bool weak, size_t *n,
		       size_t max)
{
	uint8_t hdr[48], *table;
	uint64_t mask, tbl, *refs;
	bool *ok;
	size_t slots, m = 0;
	int err;

	if ((err = rd(pt, set, hdr, sizeof(hdr))))
		return err;
	mask = at64(hdr, pt->l->set_mask);
	tbl = at64(hdr, pt->l->set_table);
	if (mask >= MAX_SET_SLOTS || ((mask + 1) & mask))
		return -E2BIG;
	slots = (size_t)mask + 1;
	table = malloc(slots * 16);
	refs = malloc(slots * sizeof(*refs));
	ok = calloc(slots, sizeof(*ok));
	if (!table || !refs || !ok) {
		err = -ENOMEM;
		goto cleanup;
	}
	if ((err = rd(pt, tbl, table, slots * 16)))
		goto cleanup;
	for (size_t i = 0; i < slots; i++) {
		uint64_t key = at64(table, i * 16);
		int64_t hash = (int64_t)at64(table, i * 16 + 8);

		if (key && hash != -1) /* -1: the dummy of a removed entry */
			refs[m++] = key;
	}
	if (weak) {
		for (size_t i = 0; i < m; i++)
			refs[i] += pt->l->wr_object;
		if ((err = read_many(pt->t->pid, refs, m, PTR, (uint8_t *)refs,
				     ok)))
			goto cleanup;
		size_t k = 0;
		for (size_t i = 0; i < m; i++)
			if (ok[i])
				refs[k++] = refs[i];
		m = k;
	}
	if (m > max - *n)
		m = max - *n;
	if ((err = scratch(pt, *n + m)))
		goto cleanup;
	if (m) /* addrs is NULL while nothing has been kept */
		memcpy(pt->addrs + *n, refs, m * sizeof(*refs));
	*n += m;
cleanup:
	free(table);
	free(refs);
	free(ok);
	return err;
}

/* Follow one circular list of tasks (3.14+) from the node at @head. */
static int list_members(struct py_tasks *pt, uint64_t head, size_t *n,
			size_t max)
{
	uint64_t node;
	int err;

	if ((err = rd64(pt, head, &node)))
		return err;
	while (node && node != head && *n < max) {
		if ((err = scratch(pt, *n + 1)))
			return err;
		pt->addrs[(*n)++] = node - pt->aio.task_node;
		if (rd64(pt, node, &node))
			break; /* the task died under us: keep what we have */
	}
	return 0;
}

static int lists_members(struct py_tasks *pt, size_t *n, size_t max)
{
	const struct py_offsets *o = pt->t->off;
	uint64_t interp, ts;
	int err;

	if ((err = rd64(pt, pt->t->runtime + o->runtime_interpreters_head,
			&interp)))
		return err;
	if ((err = list_members(pt, interp + pt->aio.interp_tasks_head, n,
				max)))
		return err;
	if ((err = rd64(pt, interp + o->interp_threads_head, &ts)))
		return err;
	for (int i = 0; ts && i < 4096 && *n < max; i++) {
		if ((err = list_members(pt, ts + pt->aio.tstate_tasks_head, n,
					max)))
			return err;
		if (rd64(pt, ts + o->tstate_next, &ts))
			break;
	}
	return 0;
}

int py_tasks__walk(struct py_tasks *pt, int max, py_task_cb cb, void *ctx,
		   bool *truncated)
{
	size_t n = 0, lim = max > 0 ? (size_t)max + 1 : 1;
	uint64_t data;
	int err = 0, stop = 0, count = 0;

	*truncated = false;
	if (pt->lists)
		err = lists_members(pt, &n, lim);
	else if (pt->weakset && !(err = weakset_data(pt, pt->weakset, &data)))
		err = set_members(pt, data, true, &n, lim);
	if (!err && pt->eager && n < lim)
		err = set_members(pt, pt->eager, false, &n, lim);
	if (err)
		return err;
	if (n == lim) {
		*truncated = true;
		n--;
	}
	/* in batches: memory stays bounded whatever the registry holds */
	for (size_t i = 0; i < n && !stop; i += EMIT_BATCH) {
		int got = tasks_emit(pt, pt->addrs + i,
				     n - i < EMIT_BATCH ? n - i : EMIT_BATCH,
				     cb, ctx, &stop);

		if (got < 0)
			return got;
		count += got;
	}
	return count;
}

int py_tasks__awaited_by(struct py_tasks *pt, uint64_t task, uint64_t *out,
			 int max)
{
	size_t n = 0, base;
	uint64_t by;
	uint8_t is_set;
	int err;

	if (!pt->lists || !pt->aio.task_awaited_by || max <= 0)
		return 0;
	if ((err = rd64(pt, task + pt->aio.task_awaited_by, &by)) ||
	    (err = rd(pt, task + pt->aio.task_awaited_by_is_set, &is_set, 1)))
		return err;
	if (!by)
		return 0;
	if (!is_set) {
		out[0] = by;
		return 1;
	}
	/* a set of awaiters: collected after the addresses walk() holds */
	base = pt->cap;
	n = base;
	if ((err = set_members(pt, by, false, &n, base + (size_t)max)))
		return err;
	if (n > base)
		memcpy(out, pt->addrs + base, (n - base) * sizeof(*out));
	return (int)(n - base);
}

int py_tasks__name(struct py_tasks *pt, const struct py_task_info *ti,
		   char *buf, size_t len)
{
	enum type_kind kind = obj_kind(pt, ti->name);

	if (kind == TYPE_INT) {
		snprintf(buf, len, "Task-%llu", (unsigned long long)ti->number);
		return ti->number ? 0 : -EINVAL;
	}
	if (kind != TYPE_STR)
		return -EINVAL;
	return pysym__decode_unicode(pt->t->off, pt->t->pid, ti->name, buf,
				     len);
}

int py_tasks__coro_stack(struct py_tasks *pt, uint64_t coro,
			 struct ap_frame *frames, int max, uint64_t *awaits)
{
	const struct py_asyncio_layout *l = pt->l;
	const struct py_offsets *o = pt->t->off;
	int n = 0;

	*awaits = 0;
	if (l->coro_stack_kind < 0)
		return -ENOTSUP;
	for (int depth = 0; coro && depth < MAX_CHAIN && n < max; depth++) {
		enum type_kind kind = obj_kind(pt, coro);
		uint64_t code, iframe, instr, slot, yf, sp;
		int32_t top;

		if (kind == TYPE_FUTUREITER) {
			/* `await future` (a task is a future too) */
			if (rd64(pt, coro + FUTUREITER_FUTURE, awaits))
				*awaits = 0;
			break;
		}
		if (kind != TYPE_CORO) {
			*awaits = coro;
			break;
		}
		iframe = coro + l->coro_code - o->frame_code;
		if (rd64(pt, coro + l->coro_code, &code) ||
		    rd64(pt, iframe + o->frame_instr, &instr))
			break;
		frames[n].code = code & TAG_MASK;
		frames[n].instr = instr;
		n++;
		/* what it awaits sits at its stack top */
		if (l->coro_stack_kind == 1) {
			if (rd(pt, coro + l->coro_stack, &top, sizeof(top)) ||
			    top < l->coro_yf_back || top > 4096)
				break;
			slot = coro + l->coro_localsplus +
			       (uint64_t)(top - l->coro_yf_back) * PTR;
		} else {
			if (rd64(pt, coro + l->coro_stack, &sp) ||
			    sp < coro + l->coro_code || sp > coro + (1u << 16))
				break;
			slot = sp - (uint64_t)l->coro_yf_back * PTR;
		}
		if (rd64(pt, slot, &yf))
			break;
		coro = yf & TAG_MASK;
	}
	return n;
}
