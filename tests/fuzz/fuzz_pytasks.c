// SPDX-License-Identifier: MIT
/*
 * A target's asyncio tasks read out of its memory: sys.modules and the
 * _asyncio module's dicts, the task registry (WeakSet, eager set, 3.14+
 * linked lists), each task's name, coroutine chain and awaiters, type
 * names, the automatic-name counter.
 *
 * Input: layout choice (1 byte, image.h), the address of _PyRuntime (u64),
 * the 13 words of the _asyncio module's .AsyncioDebug section (3.14+),
 * then the memory image (image.h).  The section is served from an ELF
 * file that this harness maps under a name with "python" in it, where
 * py_target__asyncio looks for it.
 *
 * Seeds: snapshots of real interpreters 3.8-3.15 running asyncio tasks
 * (gen_seeds.py): with FUZZ_GEN="PID FILE" this does the same to the live
 * process PID.  FUZZ_VERBOSE=1 prints what a run finds.
 */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"
#include "image.h"
#include "pytasks.h"

#define AIO_WORDS 13
#define HDR (1 + 8 + AIO_WORDS * 8)
#define MAX_TASKS 64
#define MAX_CHAIN 32

struct task_list {
	struct py_task_info ti[MAX_TASKS];
	int n;
};

static int keep_task(void *ctx, const struct py_task_info *ti)
{
	struct task_list *l = ctx;

	if (l->n < MAX_TASKS)
		l->ti[l->n++] = *ti;
	return 0;
}

static void exercise(struct py_target *t)
{
	static struct task_list l;
	struct ap_frame frames[MAX_CHAIN];
	uint64_t now, base, awaits, by[8];
	struct py_tasks *pt;
	uint8_t name[80]; /* what the kernel snapshots of a name object */
	char buf[128], err[256];
	bool truncated;
	int n;

	if (py_tasks__open(&pt, t, err, sizeof(err))) {
		image_say("open: %s\n", err);
		return;
	}
	n = py_tasks__counter(pt, &now, &base);
	image_say("counter: %s %d\n", py_tasks__counter_source(pt) ?: "none",
		  n);
	l.n = 0;
	n = py_tasks__walk(pt, MAX_TASKS - 1, keep_task, &l, &truncated);
	image_say("tasks: %d\n", n);
	for (int i = 0; i < l.n; i++) {
		const struct py_task_info *ti = &l.ti[i];

		n = py_tasks__name(pt, ti, buf, sizeof(buf));
		image_say("  task %s (%d) state %d number %llu named %d\n",
			  n ? "?" : buf, n, ti->state,
			  (unsigned long long)ti->number, ti->named);
		if (!proc_read(t->pid, ti->name, name, sizeof(name)))
			py_tasks__name_bytes(pt, name, sizeof(name), buf,
					     sizeof(buf));
		n = py_tasks__coro_stack(pt, ti->coro, frames, MAX_CHAIN,
					 &awaits);
		image_say("    coroutines %d", n);
		if (awaits &&
		    !py_tasks__type_name(pt, awaits, buf, sizeof(buf)))
			image_say(", awaits a %s%s", buf,
				  py_tasks__is_task(pt, awaits) ? " (task)"
								: "");
		n = py_tasks__awaited_by(pt, ti->addr, by, 8);
		image_say(", awaited by %d\n", n);
	}
	py_tasks__free(pt);
}

/* An ELF file with just .AsyncioDebug, mapped from a memfd: the maps show
 * it as "/memfd:python-asyncio (deleted)". */
static int aio_fd = -1;
static off_t aio_at;

static void aio_init(void)
{
	static const char names[] = "\0.shstrtab\0.AsyncioDebug";
	struct {
		Elf64_Ehdr eh;
		Elf64_Shdr sh[3];
		char names[32];
		uint64_t words[AIO_WORDS];
	} f = {
		.eh = {
			.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3,
				     ELFCLASS64, ELFDATA2LSB, EV_CURRENT },
			.e_type = ET_DYN,
			.e_machine = EM_X86_64,
			.e_version = EV_CURRENT,
			.e_shoff = sizeof(Elf64_Ehdr),
			.e_ehsize = sizeof(Elf64_Ehdr),
			.e_shentsize = sizeof(Elf64_Shdr),
			.e_shnum = 3,
			.e_shstrndx = 1,
		},
	};

	memcpy(f.names, names, sizeof(names));
	f.sh[1] = (Elf64_Shdr){ .sh_name = 1,
				.sh_type = SHT_STRTAB,
				.sh_offset = offsetof(typeof(f), names),
				.sh_size = sizeof(names),
				.sh_addralign = 1 };
	f.sh[2] = (Elf64_Shdr){ .sh_name = 11,
				.sh_type = SHT_PROGBITS,
				.sh_flags = SHF_ALLOC,
				.sh_offset = offsetof(typeof(f), words),
				.sh_size = sizeof(f.words),
				.sh_addralign = 8 };
	aio_at = offsetof(typeof(f), words);
	aio_fd = memfd_create("python-asyncio", MFD_CLOEXEC);
	if (aio_fd < 0 || write(aio_fd, &f, sizeof(f)) != sizeof(f) ||
	    mmap(NULL, sizeof(f), PROT_READ, MAP_PRIVATE, aio_fd, 0) ==
		    MAP_FAILED) {
		perror("fuzz_pytasks: the AsyncioDebug file");
		exit(1);
	}
}

/* The live target's .AsyncioDebug words, where py_target__asyncio finds
 * them. */
static void aio_words(pid_t pid, uint64_t *w)
{
	static const char *const needles[] = { "/_asyncio", "python" };
	uint64_t bias;

	for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
		struct elf_file *ef =
			py_target__object(pid, needles[i], &bias, NULL);
		int err = ef ? elf_file__section_data(ef, ".AsyncioDebug", w,
						      AIO_WORDS * 8)
			     : -1;

		elf_file__close(ef);
		if (!err)
			return;
	}
	memset(w, 0, AIO_WORDS * 8);
}

/* FUZZ_GEN="PID FILE": snapshot what a run reads of the live PID. */
static int gen(const char *spec)
{
	struct py_target *t = calloc(1, sizeof(*t));
	uint8_t hdr[HDR];
	uint32_t rel[] = { 1 };
	char path[512], err[512];
	int pid;

	if (!t || sscanf(spec, "%d %511s", &pid, path) != 2)
		return 2;
	image_log = stderr;
	snap_start();
	if (py_target__open(t, pid, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	exercise(t);
	hdr[0] = image_sel(t);
	memcpy(hdr + 1, &t->runtime, 8);
	aio_words(pid, (uint64_t *)(void *)(hdr + 9));
	if (snap_write(path, hdr, sizeof(hdr), rel, 1)) {
		perror(path);
		return 1;
	}
	free(t);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	image_init();
	if (getenv("FUZZ_GEN"))
		exit(gen(getenv("FUZZ_GEN")));
	aio_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct py_target t;

	if (size < HDR)
		return 0;
	image_load(data + HDR, size - HDR);
	memset(&t, 0, sizeof(t));
	t.pid = t.ns_pid = getpid();
	memcpy(&t.runtime, data + 1, 8);
	if (image_layout(&t, data[0]))
		return 0;
	if (t.minor >= 14 &&
	    pwrite(aio_fd, data + 9, AIO_WORDS * 8, aio_at) != AIO_WORDS * 8)
		return 0;
	exercise(&t);
	return 0;
}
