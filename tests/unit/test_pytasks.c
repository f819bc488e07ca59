// SPDX-License-Identifier: MIT
/*
 * The asyncio task registry reader: CPython 3.13 objects (sys.modules, the
 * _asyncio module and its state, a WeakSet, tasks, coroutines) laid out in
 * this test's own memory per the 3.13 rows, read back through the same
 * process_vm_readv path the tool uses on a target — then broken on purpose.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "pytarget.h"
#include "pytasks.h"

#define OBJ 8192 /* bytes of every fabricated object (an interpreter too) */

static struct py_target target;
static const struct py_asyncio_layout *L;

/* everything allocated, freed by teardown */
static void *pool[256];
static int npool;

static uint8_t *obj_new(void)
{
	uint8_t *o = calloc(1, OBJ);

	assert_non_null(o);
	pool[npool++] = o;
	return o;
}

static void put(uint8_t *obj, long off, uint64_t v)
{
	memcpy(obj + off, &v, sizeof(v));
}

static uint64_t A(const void *p)
{
	return (uintptr_t)p;
}

static uint8_t *type_new(const char *name)
{
	uint8_t *t = obj_new();
	char *s = (char *)obj_new();

	strcpy(s, name);
	put(t, L->type_name, A(s));
	return t;
}

static uint8_t *t_str, *t_dict, *t_set, *t_task, *t_coro, *t_iter, *t_int,
	*t_weakref, *t_other;

static uint8_t *of_type(uint8_t *type)
{
	uint8_t *o = obj_new();

	put(o, target.off->object_type, A(type));
	return o;
}

static uint8_t *str_new(const char *s)
{
	const struct py_offsets *o = target.off;
	uint8_t *u = of_type(t_str);
	uint32_t state = (1u << 2) | (1u << 5) | (1u << 6);

	put(u, o->unicode_length, strlen(s));
	memcpy(u + o->unicode_state, &state, sizeof(state));
	strcpy((char *)u + o->unicode_ascii_data, s);
	return u;
}

/* A 3.11+ str-keyed dict with up to 8 entries. */
static uint8_t *dict_new(const char **keys, uint8_t **values, int n)
{
	uint8_t *d = of_type(t_dict), *k = obj_new();

	k[8] = 3;  /* log2_size */
	k[9] = 3;  /* log2_index_bytes: 8 one-byte indices */
	k[10] = 1; /* unicode keys: entries {key, value} */
	put(k, 24, (uint64_t)n);
	for (int i = 0; i < n; i++) {
		put(k, 40 + 16 * i, A(str_new(keys[i])));
		put(k, 40 + 16 * i + 8, A(values[i]));
	}
	put(d, 32, A(k));
	return d;
}

/* A set whose 8 slots hold @keys (0: empty, 1: a removed entry). */
static uint8_t *set_new(uint8_t **keys, int n)
{
	uint8_t *s = of_type(t_set), *table = obj_new();

	put(s, L->set_mask, 7);
	put(s, L->set_table, A(table));
	for (int i = 0; i < n && i < 8; i++) {
		uint64_t k =
			keys[i] == (uint8_t *)1 ? A(obj_new()) : A(keys[i]);

		put(table, 16 * i, keys[i] ? k : 0);
		put(table, 16 * i + 8,
		    keys[i] == (uint8_t *)1 ? (uint64_t)-1 : 12345);
	}
	return s;
}

static uint8_t *weakref_to(uint8_t *o)
{
	uint8_t *w = of_type(t_weakref);

	put(w, L->wr_object, A(o));
	return w;
}

static uint8_t *code_new(void)
{
	return obj_new();
}

/* A coroutine suspended in its frame, awaiting @awaits. */
static uint8_t *coro_new(uint8_t *code, uint64_t instr, uint8_t *awaits)
{
	uint8_t *c = of_type(t_coro);
	long iframe = L->coro_code - (long)target.off->frame_code;
	int32_t top = 3;

	put(c, L->coro_code, A(code));
	put(c, iframe + (long)target.off->frame_instr, instr);
	memcpy(c + L->coro_stack, &top, sizeof(top));
	put(c, L->coro_localsplus + (top - L->coro_yf_back) * 8, A(awaits));
	return c;
}

static uint8_t *task_new(const char *name, int state, uint8_t *coro)
{
	uint8_t *t = of_type(t_task);
	int32_t st = state;

	put(t, L->fut_loop, 0x1000);
	put(t, L->task_coro, A(coro));
	put(t, L->task_name, A(str_new(name)));
	memcpy(t + L->fut_state, &st, sizeof(st));
	return t;
}

static uint8_t *runtime, *module_state, *tasks[4], *codes[2], *fut;

static int setup(void **state)
{
	const char *mods[] = { "asyncio", "_asyncio" };
	uint8_t *mvals[2], *interp, *module, *ws, *wkeys[8], *ekeys[8];

	memset(&target, 0, sizeof(target));
	target.pid = getpid();
	target.major = 3;
	target.minor = 13;
	target.off = py_offsets__find(3, 13);
	L = py_asyncio__layout(3, 13);
	if (!target.off || !L)
		return -1;
	t_str = type_new("str");
	t_dict = type_new("dict");
	t_set = type_new("set");
	t_task = type_new("_asyncio.Task");
	t_coro = type_new("coroutine");
	t_iter = type_new("_asyncio.FutureIter");
	t_int = type_new("int");
	t_weakref = type_new("weakref.ReferenceType");
	t_other = type_new("list");

	/* Task-17 runs outer() -> inner() -> await fut; "worker" is named;
	 * Task-18 is done; the eager set holds Task-19 */
	codes[0] = code_new();
	codes[1] = code_new();
	fut = of_type(type_new("_asyncio.Future"));
	{
		uint8_t *iter = of_type(t_iter);
		uint8_t *inner, *outer;

		put(iter, 16, A(fut));
		inner = coro_new(codes[1], 0x2222, iter);
		outer = coro_new(codes[0], 0x1111, inner);
		tasks[0] = task_new("Task-17", PY_TASK_PENDING, outer);
	}
	tasks[1] = task_new("worker", PY_TASK_PENDING,
			    coro_new(codes[1], 0x3333, fut));
	tasks[2] = task_new("Task-18", PY_TASK_FINISHED,
			    coro_new(codes[1], 0, NULL));
	tasks[3] = task_new("Task-19", PY_TASK_PENDING,
			    coro_new(codes[0], 0x4444, fut));
	wkeys[0] = weakref_to(tasks[0]);
	wkeys[1] = NULL;
	wkeys[2] = (uint8_t *)1; /* a removed entry */
	wkeys[3] = weakref_to(tasks[1]);
	wkeys[4] = weakref_to(tasks[2]);
	wkeys[5] = weakref_to(of_type(t_other)); /* not a task */
	wkeys[6] = wkeys[7] = NULL;
	ekeys[0] = tasks[3];
	for (int i = 1; i < 8; i++)
		ekeys[i] = NULL;
	ws = obj_new();
	put(ws, L->ws_data_a, A(set_new(wkeys, 8))); /* 3.13: inline */

	module_state = obj_new();
	put(module_state, L->st_scheduled, A(ws));
	put(module_state, L->st_eager, A(set_new(ekeys, 8)));
	put(module_state, L->st_counter, 19);
	module = obj_new();
	put(module, L->mod_state, A(module_state));
	mvals[0] = obj_new();
	mvals[1] = module;
	interp = obj_new();
	runtime = obj_new();
	put(interp, L->interp_modules, A(dict_new(mods, mvals, 2)));
	put(runtime, target.off->runtime_interpreters_head, A(interp));
	target.runtime = A(runtime);
	return 0;
}

static int teardown(void **state)
{
	while (npool)
		free(pool[--npool]);
	return 0;
}

struct seen {
	struct py_task_info v[8];
	int n;
};

static int collect(void *ctx, const struct py_task_info *ti)
{
	struct seen *s = ctx;

	if (s->n < 8)
		s->v[s->n++] = *ti;
	return 0;
}

static const struct py_task_info *find(const struct seen *s, uint8_t *task)
{
	for (int i = 0; i < s->n; i++)
		if (s->v[i].addr == A(task))
			return &s->v[i];
	return NULL;
}

static void test_walk(void **state)
{
	struct py_tasks *pt;
	struct seen s = { 0 };
	const struct py_task_info *ti;
	uint64_t now, base;
	bool truncated;
	char err[256], name[64];

	assert_int_equal(py_tasks__open(&pt, &target, err, sizeof(err)), 0);
	assert_int_equal(py_tasks__counter(pt, &now, &base), 0);
	assert_int_equal(now, 19);
	assert_int_equal(base, 19);
	assert_string_equal(py_tasks__counter_source(pt), "module state");

	/* removed entries, empty slots and non-tasks are skipped */
	assert_int_equal(py_tasks__walk(pt, 100, collect, &s, &truncated), 4);
	assert_false(truncated);
	ti = find(&s, tasks[0]);
	assert_non_null(ti);
	assert_int_equal(ti->number, 17);
	assert_false(ti->named);
	assert_int_equal(ti->state, PY_TASK_PENDING);
	assert_int_equal(ti->code, A(codes[0]));
	ti = find(&s, tasks[1]);
	assert_non_null(ti);
	assert_int_equal(ti->number, 0);
	assert_true(ti->named);
	assert_int_equal(py_tasks__name(pt, ti, name, sizeof(name)), 0);
	assert_string_equal(name, "worker");
	assert_int_equal(find(&s, tasks[2])->state, PY_TASK_FINISHED);
	assert_int_equal(find(&s, tasks[3])->number, 19); /* eager set */

	/* the bound holds */
	s.n = 0;
	assert_int_equal(py_tasks__walk(pt, 2, collect, &s, &truncated), 2);
	assert_true(truncated);

	/* the counter moves: the pair follows */
	put(module_state, L->st_counter, 25);
	assert_int_equal(py_tasks__counter(pt, &now, &base), 0);
	assert_int_equal(now - base, 6);
	py_tasks__free(pt);
}

static void test_coro_stack(void **state)
{
	struct ap_frame frames[8];
	struct py_tasks *pt;
	uint64_t awaits, coro;
	char err[256];

	assert_int_equal(py_tasks__open(&pt, &target, err, sizeof(err)), 0);
	memcpy(&coro, tasks[0] + L->task_coro, sizeof(coro));
	assert_int_equal(py_tasks__coro_stack(pt, coro, frames, 8, &awaits), 2);
	assert_int_equal(frames[0].code, A(codes[0]));
	assert_int_equal(frames[0].instr, 0x1111);
	assert_int_equal(frames[1].code, A(codes[1]));
	assert_int_equal(frames[1].instr, 0x2222);
	assert_int_equal(awaits, A(fut)); /* through the FutureIter */
	assert_true(py_tasks__is_task(pt, A(tasks[1])));
	assert_false(py_tasks__is_task(pt, A(fut)));

	/* a coroutine that awaits itself: the chain is bounded */
	uint8_t *loop = coro_new(codes[0], 0x5555, NULL);
	put(loop, L->coro_localsplus + (3 - L->coro_yf_back) * 8, A(loop));
	assert_int_equal(py_tasks__coro_stack(pt, A(loop), frames, 8, &awaits),
			 8);
	/* a garbage stack top ends the chain */
	int32_t top = 1 << 30;
	memcpy(loop + L->coro_stack, &top, sizeof(top));
	assert_int_equal(py_tasks__coro_stack(pt, A(loop), frames, 8, &awaits),
			 1);
	py_tasks__free(pt);
}

static void test_hostile(void **state)
{
	struct py_tasks *pt;
	struct seen s = { 0 };
	uint64_t ws, data, mask;
	bool truncated;
	char err[256];

	/* a huge set mask is refused, not followed */
	memcpy(&ws, module_state + L->st_scheduled, sizeof(ws));
	memcpy(&data, (uint8_t *)(uintptr_t)ws + L->ws_data_a, sizeof(data));
	memcpy(&mask, (uint8_t *)(uintptr_t)data + L->set_mask, sizeof(mask));
	assert_int_equal(py_tasks__open(&pt, &target, err, sizeof(err)), 0);
	put((uint8_t *)(uintptr_t)data, L->set_mask, (1ull << 40) - 1);
	assert_int_equal(py_tasks__walk(pt, 100, collect, &s, &truncated),
			 -E2BIG);
	put((uint8_t *)(uintptr_t)data, L->set_mask, mask);
	/* the WeakSet's data is not a set: refused */
	put((uint8_t *)(uintptr_t)data, target.off->object_type, A(t_other));
	assert_int_equal(py_tasks__walk(pt, 100, collect, &s, &truncated),
			 -ENOTSUP);
	put((uint8_t *)(uintptr_t)data, target.off->object_type, A(t_set));
	py_tasks__free(pt);

	/* no _asyncio in sys.modules: not imported yet */
	uint8_t *interp =
		(uint8_t *)(uintptr_t) *
		(uint64_t *)(runtime + target.off->runtime_interpreters_head);
	uint64_t modules;
	memcpy(&modules, interp + L->interp_modules, sizeof(modules));
	const char *k[] = { "asyncio" };
	uint8_t *v[] = { obj_new() };
	put(interp, L->interp_modules, A(dict_new(k, v, 1)));
	assert_int_equal(py_tasks__open(&pt, &target, err, sizeof(err)),
			 -ENOENT);
	assert_null(pt);
	/* an unreadable sys.modules */
	put(interp, L->interp_modules, 0x10);
	assert_int_not_equal(py_tasks__open(&pt, &target, err, sizeof(err)), 0);
	put(interp, L->interp_modules, modules);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_coro_stack),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
