// SPDX-License-Identifier: MIT
#include <errno.h>
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
