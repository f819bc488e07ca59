// SPDX-License-Identifier: MIT
/*
 * ELF files of the target, read through /proc/PID/map_files and
 * /proc/PID/root: a container's files are whatever its image holds.
 *
 * Input: the file, opened as /proc/self/fd/N of a memfd.  Each lookup
 * asyncprobe makes is made: _PyRuntime and Py_Version, the .PyRuntime
 * section, the _asyncio module's .AsyncioDebug words and counter symbol,
 * USDT notes, the load base, the instructions that load the finalizers'
 * messages.  Seeds: small real ELF objects (compiled
 * probes, a libpython's symbols and notes, an _asyncio module).
 */
#include <stdint.h>
#include <unistd.h>
#include "elfsym.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const syms[] = { "_PyRuntime", "PyVersion",
					    "Py_Version", "task_name_counter" };
	static const char *const secs[] = { ".PyRuntime", ".AsyncioDebug",
					    ".note.stapsdt", ".probes" };
	static const size_t lens[] = { 8, 13 * 8, 512 };
	uint8_t buf[512];
	uint64_t v;
	char path[64];
	int fd = fuzz_memfd(data, size, path, sizeof(path));
	struct elf_file *ef;

	if (fd < 0)
		return 0;
	ef = elf_file__open(path);
	if (ef) {
		for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
			elf_file__symbol(ef, syms[i], &v);
		for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
			elf_file__section(ef, secs[i], &v);
			for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]);
			     j++)
				elf_file__section_data(ef, secs[i], buf,
						       lens[j]);
		}
		elf_file__load_base(ef, &v);
		{
			uint64_t offs[2];

			elf_file__string_loads(
				ef, "Task was destroyed but it is pending!",
				offs, 2);
			elf_file__string_loads(
				ef, "%s exception was never retrieved", offs,
				2);
		}
		elf_file__close(ef);
	}
	close(fd);
	return 0;
}
