/*
 * Linked into the NativeAOT binaries (stratovirt and ozone); runs as an ELF constructor, before main starts the
 * .NET runtime.
 *
 * The executable's writable segment ends in zero-filled memory that the file does not back: .bss and NativeAOT's
 * .hydrated section (about 1.4 MB in stratovirt), which the runtime fills before Main by expanding the compressed
 * data the binary carries. Filled byte by byte, that memory arrives one page fault per 4 KiB page, about 340 of
 * them; where a fault is dear (a PVM guest, a nested VM) they are a visible share of the CPU the VMM spends before
 * the guest's first instruction. One madvise(MADV_POPULATE_WRITE) maps the whole range in a single system call.
 * The runtime writes nearly every page of it anyway, so the memory this costs is the few pages it would have
 * skipped. Best effort: a kernel older than 5.14 refuses the advice, and the pages then fault in as before.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int populate_zero_fill(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)size;
    (void)unused;
    uintptr_t page = (uintptr_t)getauxval(AT_PAGESZ);
    if (page == 0)
        return 1;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz <= ph->p_filesz)
            continue;
        /* The page that holds the file's last byte is a private copy of the file; the anonymous zero fill the
           kernel mapped for the rest of the segment starts at the next page boundary. */
        uintptr_t start = (info->dlpi_addr + ph->p_vaddr + ph->p_filesz + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        if (end > start)
            madvise((void *)start, end - start, MADV_POPULATE_WRITE);
    }
    return 1; /* the first object dl_iterate_phdr reports is the executable; its libraries are left alone */
}

__attribute__((constructor)) static void populate_startup_data(void)
{
    dl_iterate_phdr(populate_zero_fill, 0);
}
