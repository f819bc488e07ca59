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

/*
 * File offsets of the instructions that load the address of the string
 * @str (with its NUL) into the first argument register: `lea str(%rip),
 * %rdi` (position-independent code) or `mov $str, %edi` (non-PIE).  A
 * uprobe there runs only where the code uses that string.  Returns how
 * many were found (at most @max stored), or -errno.
 */
int elf_file__string_loads(struct elf_file *ef, const char *str, uint64_t *offs,
			   int max);

#endif
