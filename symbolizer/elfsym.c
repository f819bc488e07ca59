// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "elfsym.h"

struct elf_file {
	int fd;
	Elf *elf;
};

struct elf_file *elf_file__open(const char *path)
{
	struct elf_file *ef;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = EINVAL;
		return NULL;
	}
	ef = calloc(1, sizeof(*ef));
	if (!ef)
		return NULL;
	ef->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (ef->fd < 0)
		goto err;
	ef->elf = elf_begin(ef->fd, ELF_C_READ_MMAP, NULL);
	if (!ef->elf || elf_kind(ef->elf) != ELF_K_ELF) {
		errno = ENOEXEC;
		goto err;
	}
	return ef;
err:
	elf_file__close(ef);
	return NULL;
}

void elf_file__close(struct elf_file *ef)
{
	int saved = errno;

	if (!ef)
		return;
	if (ef->elf)
		elf_end(ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef);
	errno = saved;
}

static int symtab_lookup(struct elf_file *ef, Elf64_Word type, const char *name,
			 uint64_t *addr)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(ef->elf, scn))) {
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type ||
		    !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *s;

			if (!gelf_getsym(data, (int)i, &sym))
				break;
			if (sym.st_shndx == SHN_UNDEF || !sym.st_value)
				continue;
			s = elf_strptr(ef->elf, sh.sh_link, sym.st_name);
			if (s && !strcmp(s, name)) {
				*addr = sym.st_value;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int elf_file__symbol(struct elf_file *ef, const char *name, uint64_t *addr)
{
	if (!symtab_lookup(ef, SHT_DYNSYM, name, addr))
		return 0;
	return symtab_lookup(ef, SHT_SYMTAB, name, addr);
}

static Elf_Scn *section_find(struct elf_file *ef, const char *name,
			     GElf_Shdr *sh)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(ef->elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(ef->elf, scn))) {
		const char *s;

		if (!gelf_getshdr(scn, sh))
			continue;
		s = elf_strptr(ef->elf, shstrndx, sh->sh_name);
		if (s && !strcmp(s, name))
			return scn;
	}
	return NULL;
}

int elf_file__section(struct elf_file *ef, const char *name, uint64_t *addr)
{
	GElf_Shdr sh;

	if (!section_find(ef, name, &sh))
		return -ENOENT;
	*addr = sh.sh_addr;
	return 0;
}

int elf_file__section_data(struct elf_file *ef, const char *name, void *buf,
			   size_t len)
{
	Elf_Data *data;
	Elf_Scn *scn;
	GElf_Shdr sh;

	scn = section_find(ef, name, &sh);
	if (!scn || sh.sh_type == SHT_NOBITS)
		return -ENOENT;
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf)
		return -ENOENT;
	if (data->d_size < len)
		return -EINVAL;
	memcpy(buf, data->d_buf, len);
	return 0;
}

int elf_file__load_base(struct elf_file *ef, uint64_t *vaddr)
{
	uint64_t lowest = UINT64_MAX;
	size_t n;

	if (elf_getphdrnum(ef->elf, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(ef->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr < lowest)
			lowest = ph.p_vaddr;
	}
	if (lowest == UINT64_MAX)
		return -ENOENT;
	*vaddr = lowest & ~0xfffULL;
	return 0;
}

/* Link-time address of the first copy of @str (NUL included) in an
 * allocated, non-executable section; 0 when there is none. */
static uint64_t string_addr(struct elf_file *ef, const char *str)
{
	size_t len = strlen(str) + 1;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(ef->elf, scn))) {
		Elf_Data *d;
		const char *p, *end;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC) || (sh.sh_flags & SHF_EXECINSTR))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < len)
			continue;
		p = d->d_buf;
		end = p + d->d_size - len;
		while (p <= end) {
			p = memchr(p, str[0], (size_t)(end - p) + 1);
			if (!p)
				break;
			if (!memcmp(p, str, len))
				return sh.sh_addr +
				       (uint64_t)(p - (char *)d->d_buf);
			p++;
		}
	}
	return 0;
}

int elf_file__string_loads(struct elf_file *ef, const char *str, uint64_t *offs,
			   int max)
{
	uint64_t target = string_addr(ef, str);
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	int n = 0;

	if (!target)
		return -ENOENT;
	while ((scn = elf_nextscn(ef->elf, scn))) {
		const uint8_t *b;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || d->d_size < 7)
			continue;
		b = d->d_buf;
		for (size_t i = 0; i + 7 <= d->d_size; i++) {
			uint64_t at = sh.sh_addr + i;
			int32_t disp;
			uint32_t imm;
			bool hit = false;

			/* 48 8d 3d disp32: lea disp32(%rip),%rdi */
			if (b[i] == 0x48 && b[i + 1] == 0x8d &&
			    b[i + 2] == 0x3d) {
				memcpy(&disp, b + i + 3, sizeof(disp));
				hit = at + 7 + (int64_t)disp == target;
			}
			/* bf imm32: mov $imm32,%edi */
			if (!hit && b[i] == 0xbf && target < (1ULL << 32)) {
				memcpy(&imm, b + i + 1, sizeof(imm));
				hit = imm == target;
			}
			if (!hit)
				continue;
			if (n < max)
				offs[n] = sh.sh_offset + i;
			n++;
		}
	}
	return n;
}
