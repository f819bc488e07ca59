/* SPDX-License-Identifier: MIT */
/* Symbols, sections and load address of an ELF file (libelf). */
#ifndef ELFSYM_H
#define ELFSYM_H

#include <stdint.h>

struct elf_file;

/* NULL with errno set when @path cannot be read as ELF. */
struct elf_file *elf_file__open(const char *path);
void elf_file__close(struct elf_file *ef);

/* Link-time address of symbol @name, from .dynsym, else .symtab. */
int elf_file__symbol(struct elf_file *ef, const char *name, uint64_t *addr);

/* Link-time address of section @name (e.g. ".PyRuntime"). */
int elf_file__section(struct elf_file *ef, const char *name, uint64_t *addr);

/* The first @len bytes of section @name as stored in the file. */
int elf_file__section_data(struct elf_file *ef, const char *name, void *buf,
			   size_t len);

/* Lowest link-time address of a PT_LOAD segment, page aligned: the load
 * bias is the start of the file's offset-0 mapping minus this. */
int elf_file__load_base(struct elf_file *ef, uint64_t *vaddr);

#endif
