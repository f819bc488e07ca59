/* SPDX-License-Identifier: MIT */
/*
 * A target's memory for the harnesses of the readers of CPython objects
 * (fuzz_pyobjects, fuzz_pytasks).  The input's segments are copied into a
 * region mapped at IMAGE_BASE in the harness's own process; the code under
 * test reads them with process_vm_readv on its own PID, the path it takes
 * on a real target, and a pointer that leads outside them reads zeros or
 * faults as it could there.
 *
 * Input, after the harness's own header: segments {u32 offset from
 * IMAGE_BASE, u16 length, bytes}, as many as there are.
 *
 * Seeds: with FUZZ_GEN set, a harness does to a live interpreter what it
 * does to an input and writes every read that succeeded (a snapshot: its
 * header with the live addresses, which header words are pointers, then
 * {u64 address, u32 length, bytes} per read).  gen_seeds.py packs the
 * reads into segments, moved to IMAGE_BASE with every pointer among them.
 */
#ifndef FUZZ_IMAGE_H
#define FUZZ_IMAGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "pydebug.h"
#include "pytarget.h"
#include "pyversions.h"

#include "../unit/fixtures/debug_offsets_3_13.h"
#include "../unit/fixtures/debug_offsets_3_14.h"
#include "../unit/fixtures/debug_offsets_3_15.h"

#define IMAGE_BASE 0x7e0000000000ULL
/* address space only: the pages an input does not write stay untouched */
#define IMAGE_SIZE (64ULL << 20)
#define IMAGE_SEGS 4096 /* segments an input sets, at most */
#define SNAP_MAGIC "APSNAP1"

static uint8_t *image;
static struct {
	uint32_t off, len;
} image_segs[IMAGE_SEGS];
static size_t image_nsegs;

/* Layouts to read the image with: the version table's rows, then what
 * the 3.13-3.15 fixtures' _Py_DebugOffsets say.  One more choice than
 * rows: the _Py_DebugOffsets at the image's runtime, as a 3.13+ target
 * supplies it. */
static struct py_offsets rows[16];
static int nrows;

static FILE *image_log; /* what a run finds, to compare a seed with its
			 * source; NULL: quiet */

static void image_say(const char *fmt, ...)
{
	va_list ap;

	if (!image_log)
		return;
	va_start(ap, fmt);
	vfprintf(image_log, fmt, ap);
	va_end(ap);
}

static void image_rows(void)
{
	static const struct {
		const uint8_t *blob;
		size_t len;
	} dbg[] = {
		{ dbg_blob_3_13, sizeof(dbg_blob_3_13) },
		{ dbg_blob_3_14, sizeof(dbg_blob_3_14) },
		{ dbg_blob_3_15, sizeof(dbg_blob_3_15) },
	};
	char err[256];

	for (int minor = 8; minor <= 13; minor++) {
		const struct py_offsets *o = py_offsets__find(3, minor);

		if (o)
			rows[nrows++] = *o;
	}
	for (size_t i = 0; i < sizeof(dbg) / sizeof(dbg[0]); i++)
		if (!py_debug__parse(dbg[i].blob, dbg[i].len, &rows[nrows], err,
				     sizeof(err)))
			nrows++;
}

/* Set up @t to read the image per choice @sel (see rows); t->runtime set.
 * Non-zero when the image's own _Py_DebugOffsets are refused, as
 * py_target__open would refuse the target. */
static int image_layout(struct py_target *t, uint8_t sel)
{
	uint8_t blob[1024]; /* what py_target__open reads */
	char err[256];
	int i = sel % (nrows + 1);

	t->major = 3;
	t->micro = -1;
	t->pthread_tid_off = -1;
	if (i < nrows) {
		t->off = &rows[i];
		t->minor = rows[i].minor;
		return 0;
	}
	if (proc_read(t->pid, t->runtime, blob, sizeof(blob)) ||
	    py_debug__parse(blob, sizeof(blob), &t->dyn, err, sizeof(err)))
		return -1;
	t->off = &t->dyn;
	t->major = t->dyn.major;
	t->minor = t->dyn.minor;
	return 0;
}

/* The choice that reads as @t does: its own _Py_DebugOffsets if it has
 * them, else the table's row. */
static uint8_t image_sel(const struct py_target *t)
{
	if (t->off == &t->dyn)
		return (uint8_t)nrows;
	for (int i = 0; i < nrows; i++)
		if (rows[i].minor == t->minor)
			return (uint8_t)i;
	return (uint8_t)nrows;
}

static void image_init(void)
{
	image_rows();
	image = mmap((void *)IMAGE_BASE, IMAGE_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			     MAP_FIXED_NOREPLACE,
		     -1, 0);
	if (image != (void *)IMAGE_BASE) {
		fprintf(stderr, "cannot map the memory image at %#llx\n",
			IMAGE_BASE);
		exit(1);
	}
	if (getenv("FUZZ_VERBOSE"))
		image_log = stderr;
}

/* Copy the segments of @data into the image, after zeroing what the last
 * input left there. */
static void image_load(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < image_nsegs; i++)
		memset(image + image_segs[i].off, 0, image_segs[i].len);
	image_nsegs = 0;
	while (size >= 6 && image_nsegs < IMAGE_SEGS) {
		uint32_t off;
		uint16_t len;

		memcpy(&off, data, sizeof(off));
		memcpy(&len, data + 4, sizeof(len));
		data += 6;
		size -= 6;
		off %= IMAGE_SIZE;
		if (len > size)
			len = (uint16_t)size;
		if (len > IMAGE_SIZE - off)
			len = (uint16_t)(IMAGE_SIZE - off);
		memcpy(image + off, data, len);
		image_segs[image_nsegs].off = off;
		image_segs[image_nsegs++].len = len;
		data += len;
		size -= len;
	}
}

/* Recording (FUZZ_GEN): every read of the code under test goes through
 * process_vm_readv; this one takes its place, hands the call on to the
 * sanitizer's (which checks the local buffers) and keeps what was read. */
static uint8_t *snap;
static size_t snap_len, snap_cap;
static bool snap_on;

static void snap_put(const void *p, size_t n)
{
	if (snap_len + n > snap_cap) {
		snap_cap = (snap_len + n) * 2;
		snap = realloc(snap, snap_cap);
		if (!snap) {
			perror("snapshot");
			exit(1);
		}
	}
	memcpy(snap + snap_len, p, n);
	snap_len += n;
}

ssize_t __interceptor_process_vm_readv(pid_t, const struct iovec *,
				       unsigned long, const struct iovec *,
				       unsigned long, unsigned long)
	__attribute__((weak));

ssize_t process_vm_readv(pid_t pid, const struct iovec *local,
			 unsigned long nlocal, const struct iovec *remote,
			 unsigned long nremote, unsigned long flags)
{
	ssize_t got =
		__interceptor_process_vm_readv
			? __interceptor_process_vm_readv(pid, local, nlocal,
							 remote, nremote, flags)
			: syscall(SYS_process_vm_readv, pid, local, nlocal,
				  remote, nremote, flags);
	size_t left = got > 0 ? (size_t)got : 0, li = 0, loff = 0;

	if (!snap_on)
		return got;
	/* the remote ranges were filled in order, into the local ones */
	for (unsigned long r = 0; r < nremote && left; r++) {
		uint64_t addr = (uintptr_t)remote[r].iov_base;
		uint32_t n =
			(uint32_t)(remote[r].iov_len < left ? remote[r].iov_len
							    : left);

		snap_put(&addr, sizeof(addr));
		snap_put(&n, sizeof(n));
		left -= n;
		while (n) {
			size_t k;

			while (li < nlocal && loff == local[li].iov_len)
				li++, loff = 0;
			k = local[li].iov_len - loff < n
				    ? local[li].iov_len - loff
				    : n;
			snap_put((uint8_t *)local[li].iov_base + loff, k);
			loff += k;
			n -= (uint32_t)k;
		}
	}
	return got;
}

static void snap_start(void)
{
	snap_len = 0;
	snap_on = true;
}

/* Write the snapshot: @hdr (@hdr_len bytes) with the words at @rel[]
 * being pointers, then the reads.  0 or -1. */
static int snap_write(const char *path, const void *hdr, uint32_t hdr_len,
		      const uint32_t *rel, uint32_t nrel)
{
	FILE *f = fopen(path, "we");
	int ok;

	snap_on = false;
	if (!f)
		return -1;
	ok = fwrite(SNAP_MAGIC, 8, 1, f) == 1 &&
	     fwrite(&hdr_len, 4, 1, f) == 1 &&
	     fwrite(hdr, 1, hdr_len, f) == hdr_len &&
	     fwrite(&nrel, 4, 1, f) == 1 &&
	     (!nrel || fwrite(rel, 4, nrel, f) == nrel) &&
	     (!snap_len || fwrite(snap, 1, snap_len, f) == snap_len);
	free(snap);
	snap = NULL;
	return fclose(f) || !ok ? -1 : 0;
}

#endif
