/*
 * kvm-floor: the least a KVM VMM must do to run a payload guest, in plain C.
 * It is the floor our VMM is compared against, and the validator of the
 * payloads in tests/payloads.
 *
 *   kvm-floor [-m MiB] [-smp N] [-c] <payload.bin | payload.bzImage>
 *
 * A flat binary is loaded at 0x1000000 and entered there; a bzImage's
 * protected-mode part is loaded at 0x100000 and entered at 0x100200 (its
 * 64-bit entry). Entry state: 64-bit long mode, identity-mapped first 4 GiB
 * (2 MiB pages), RSP 0x8FF0, RSI 0x7000, interrupts off; GDT with code 0x08,
 * data 0x10. In-kernel irqchip and PIT, CPUID from KVM_GET_SUPPORTED_CPUID.
 *
 * Devices: UART output at 0x3F8 goes to stdout; i8042 reset (0xFE to 0x64)
 * exits 0; a minimal CMOS RTC at 0x70/0x71 (UTC, BCD, 24 h); unclaimed MMIO
 * reads as all ones; the boot timer: a 1-byte write of 123 at 0xC0000000
 * prints on stderr
 *   Guest-boot-time = <us> us <ms> ms, <cpu us> CPU us <cpu ms> CPU ms (monotonic <ns> ns)
 * measured from the start of main, and exits 0 (with -c it keeps running,
 * as a VMM does). A triple fault or failed emulation prints one line and
 * exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GDT_ADDR        0x500
#define IDT_ADDR        0x520
#define ZERO_PAGE       0x7000
#define BOOT_STACK      0x8ff0
#define PML4_ADDR       0x9000
#define PDPT_ADDR       0xa000
#define PD_ADDR         0xb000          /* four page directories: 0xb000-0xefff */
#define KERNEL_ADDR     0x1000000
#define BZIMAGE_ADDR    0x100000
#define BZIMAGE_ENTRY64 0x200
#define TSS_ADDR        0xfffbd000
#define BOOT_TIMER_ADDR 0xc0000000ULL
#define BOOT_TIMER_MAGIC 123

#define MAX_VCPUS       32

static uint8_t *guest_mem;
static size_t guest_size;
static int kvm_fd, vm_fd;
static int keep_running;
static struct timespec t_start_mono, t_start_cpu;
static struct kvm_cpuid2 *supported_cpuid;
static size_t run_size;
static uint8_t cmos_index;
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("kvm-floor: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t ts_ns(const struct timespec *t) { return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec; }

static void boot_timer_fired(void)
{
    struct timespec now_mono, now_cpu;
    clock_gettime(CLOCK_MONOTONIC, &now_mono);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now_cpu);
    uint64_t wall_us = (ts_ns(&now_mono) - ts_ns(&t_start_mono)) / 1000;
    uint64_t cpu_us = (ts_ns(&now_cpu) - ts_ns(&t_start_cpu)) / 1000;
    fprintf(stderr, "Guest-boot-time = %llu us %llu ms, %llu CPU us %llu CPU ms (monotonic %llu ns)\n",
            (unsigned long long)wall_us, (unsigned long long)(wall_us / 1000),
            (unsigned long long)cpu_us, (unsigned long long)(cpu_us / 1000),
            (unsigned long long)ts_ns(&now_mono));
    if (!keep_running)
        exit(0);
}

static uint8_t to_bcd(int v) { return (uint8_t)(((v / 10) << 4) | (v % 10)); }

static uint8_t cmos_read(uint8_t index)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    switch (index) {
    case 0x00: return to_bcd(tm.tm_sec);
    case 0x02: return to_bcd(tm.tm_min);
    case 0x04: return to_bcd(tm.tm_hour);
    case 0x06: return to_bcd(tm.tm_wday + 1);
    case 0x07: return to_bcd(tm.tm_mday);
    case 0x08: return to_bcd(tm.tm_mon + 1);
    case 0x09: return to_bcd(tm.tm_year % 100);
    case 0x0a: return 0x26;             /* UIP clear, 32.768 kHz, 1024 Hz */
    case 0x0b: return 0x02;             /* 24 h, BCD */
    case 0x0d: return 0x80;             /* battery good */
    case 0x32: return to_bcd((tm.tm_year + 1900) / 100);
    default:   return 0;
    }
}

static void handle_io(struct kvm_run *run)
{
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    size_t len = (size_t)run->io.size * run->io.count;
    uint16_t port = run->io.port;

    if (run->io.direction == KVM_EXIT_IO_OUT) {
        switch (port) {
        case 0x3f8:
            if (write(STDOUT_FILENO, data, len) < 0) { /* nothing to do */ }
            break;
        case 0x64:
            if (data[0] == 0xfe)
                exit(0);
            break;
        case 0x70:
            cmos_index = data[0] & 0x7f;
            break;
        default:
            break;
        }
        return;
    }
    memset(data, 0, len);
    switch (port) {
    case 0x3fd: memset(data, 0x60, len); break;   /* LSR: transmitter empty */
    case 0x71:  memset(data, cmos_read(cmos_index), len); break;
    case 0x60: case 0x64: break;
    default:    memset(data, 0xff, len); break;
    }
}

static void handle_mmio(struct kvm_run *run)
{
    if (run->mmio.is_write) {
        if (run->mmio.phys_addr == BOOT_TIMER_ADDR && run->mmio.len == 1 && run->mmio.data[0] == BOOT_TIMER_MAGIC)
            boot_timer_fired();
        return;
    }
    memset(run->mmio.data, 0xff, run->mmio.len);  /* unclaimed MMIO reads as all ones */
}

static void run_vcpu(int id, int vcpu_fd, struct kvm_run *run)
{
    for (;;) {
        if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("vCPU %d: KVM_RUN: %s", id, strerror(errno));
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            pthread_mutex_lock(&io_lock);
            handle_io(run);
            pthread_mutex_unlock(&io_lock);
            break;
        case KVM_EXIT_MMIO:
            pthread_mutex_lock(&io_lock);
            handle_mmio(run);
            pthread_mutex_unlock(&io_lock);
            break;
        case KVM_EXIT_HLT:                      /* only without an in-kernel LAPIC */
            if (!keep_running)
                die("vCPU %d halted", id);
            pause();
            break;
        case KVM_EXIT_SHUTDOWN:
            die("vCPU %d: guest triple fault (KVM_EXIT_SHUTDOWN)", id);
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            die("vCPU %d: KVM internal error, suberror %u (%s)", id, run->internal.suberror,
                run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? "emulation failed" : "other");
            break;
        case KVM_EXIT_FAIL_ENTRY:
            die("vCPU %d: VM entry failed, reason 0x%llx", id,
                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                exit(0);
            die("vCPU %d: system event %u", id, run->system_event.type);
            break;
        default:
            die("vCPU %d: unhandled exit reason %u", id, run->exit_reason);
        }
    }
}

struct vcpu { int id, fd; struct kvm_run *run; pthread_t thread; };

static void *ap_thread(void *arg)
{
    struct vcpu *v = arg;
    run_vcpu(v->id, v->fd, v->run);
    return NULL;
}

static void load_supported_cpuid(void)
{
    for (int nent = 64; ; nent *= 2) {
        supported_cpuid = calloc(1, sizeof(*supported_cpuid) + nent * sizeof(struct kvm_cpuid_entry2));
        if (!supported_cpuid) die("out of memory");
        supported_cpuid->nent = nent;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, supported_cpuid) == 0)
            return;
        if (errno != E2BIG || nent > 4096)
            die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        free(supported_cpuid);
    }
}

static void set_cpuid(int vcpu_fd, int id)
{
    size_t size = sizeof(*supported_cpuid) + supported_cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(size);
    if (!c) die("out of memory");
    memcpy(c, supported_cpuid, size);
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 1)
            e->ebx = (e->ebx & 0x00ffffff) | ((uint32_t)id << 24);     /* initial APIC ID */
        else if (e->function == 0xb || e->function == 0x1f)
            e->edx = (uint32_t)id;                                    /* x2APIC ID */
    }
    if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0)
        die("KVM_SET_CPUID2: %s", strerror(errno));
    free(c);
}

static void setup_page_tables(void)
{
    uint64_t *pml4 = (uint64_t *)(guest_mem + PML4_ADDR);
    uint64_t *pdpt = (uint64_t *)(guest_mem + PDPT_ADDR);
    uint64_t *pd = (uint64_t *)(guest_mem + PD_ADDR);
    pml4[0] = PDPT_ADDR | 0x3;                                      /* present, writable */
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (PD_ADDR + i * 0x1000) | 0x3;
    for (uint64_t j = 0; j < 4 * 512; j++)
        pd[j] = (j << 21) | 0x83;                                   /* present, writable, 2 MiB page */
}

static struct kvm_segment segment(uint16_t selector, uint8_t type, int code64)
{
    struct kvm_segment s = {
        .base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
        .present = 1, .dpl = 0, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0, .g = 1,
    };
    return s;
}

static void setup_bsp(int vcpu_fd, uint64_t entry)
{
    uint64_t *gdt = (uint64_t *)(guest_mem + GDT_ADDR);
    gdt[0] = 0;
    gdt[1] = 0x00af9b000000ffffull;     /* 0x08: 64-bit code */
    gdt[2] = 0x00cf93000000ffffull;     /* 0x10: data */
    gdt[3] = 0x008f8b000000ffffull;     /* 0x18: busy TSS */
    memset(guest_mem + IDT_ADDR, 0, 8);

    struct kvm_sregs sregs;
    if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        die("KVM_GET_SREGS: %s", strerror(errno));
    sregs.cs = segment(0x08, 0xb, 1);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(0x10, 0x3, 0);
    sregs.tr = (struct kvm_segment){ .base = 0, .limit = 0xfffff, .selector = 0x18, .type = 0xb,
                                     .present = 1, .s = 0, .g = 1 };
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = 4 * 8 - 1;
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = 7;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = 0x20;                                   /* PAE */
    sregs.cr0 = 0x80000031;                             /* PG | NE | ET | PE */
    sregs.efer = 0x500;                                 /* LMA | LME */
    if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        die("KVM_SET_SREGS: %s", strerror(errno));

    struct kvm_regs regs = { .rip = entry, .rsp = BOOT_STACK, .rbp = BOOT_STACK, .rsi = ZERO_PAGE, .rflags = 2 };
    if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
        die("KVM_SET_REGS: %s", strerror(errno));
}

/* Load the payload; returns the entry point. */
static uint64_t load_payload(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) die("%s: %s", path, strerror(errno));
    size_t size = (size_t)st.st_size;
    uint8_t *img = malloc(size ? size : 1);
    if (!img) die("out of memory");
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, img + got, size - got);
        if (n <= 0) die("%s: short read", path);
        got += (size_t)n;
    }
    close(fd);

    uint64_t load, entry;
    size_t offset = 0;
    if (size >= 0x400 && memcmp(img + 0x202, "HdrS", 4) == 0 && img[0x1fe] == 0x55 && img[0x1ff] == 0xaa) {
        unsigned setup_sects = img[0x1f1] ? img[0x1f1] : 4;
        offset = (setup_sects + 1) * 512;
        if (offset >= size) die("%s: bzImage without a protected-mode part", path);
        load = BZIMAGE_ADDR;
        entry = BZIMAGE_ADDR + BZIMAGE_ENTRY64;
    } else {
        load = KERNEL_ADDR;
        entry = KERNEL_ADDR;
    }
    if (load + (size - offset) > guest_size) die("%s: does not fit in guest memory", path);
    memcpy(guest_mem + load, img + offset, size - offset);
    free(img);
    return entry;
}

int main(int argc, char **argv)
{
    clock_gettime(CLOCK_MONOTONIC, &t_start_mono);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t_start_cpu);

    size_t mem_mib = 256;
    int nr_vcpus = 1;
    const char *payload = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            mem_mib = strtoul(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "-smp") == 0 && i + 1 < argc)
            nr_vcpus = atoi(argv[++i]);
        else if (strcmp(argv[i], "-c") == 0)
            keep_running = 1;
        else if (argv[i][0] != '-' && !payload)
            payload = argv[i];
        else {
            fprintf(stderr, "usage: %s [-m MiB] [-smp N] [-c] <payload.bin|payload.bzImage>\n", argv[0]);
            return 2;
        }
    }
    if (!payload || mem_mib < 32 || nr_vcpus < 1 || nr_vcpus > MAX_VCPUS) {
        fprintf(stderr, "usage: %s [-m MiB (>= 32)] [-smp N (1-%d)] [-c] <payload.bin|payload.bzImage>\n",
                argv[0], MAX_VCPUS);
        return 2;
    }
    guest_size = mem_mib << 20;

    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) die("/dev/kvm: %s", strerror(errno));
    if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) die("unexpected KVM API version");
    vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm_fd < 0) die("KVM_CREATE_VM: %s", strerror(errno));
    ioctl(vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR);         /* VMX real mode needs it; optional elsewhere */
    if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP: %s", strerror(errno));
    struct kvm_pit_config pit = { .flags = 0 };
    if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        fprintf(stderr, "kvm-floor: KVM_CREATE_PIT2: %s (going on without a PIT)\n", strerror(errno));

    guest_mem = mmap(NULL, guest_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (guest_mem == MAP_FAILED) die("mmap guest memory: %s", strerror(errno));
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = guest_size, .userspace_addr = (uint64_t)(uintptr_t)guest_mem,
    };
    if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

    uint64_t entry = load_payload(payload);
    setup_page_tables();
    load_supported_cpuid();

    int mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size <= 0) die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    run_size = (size_t)mmap_size;

    static struct vcpu vcpus[MAX_VCPUS];
    for (int i = 0; i < nr_vcpus; i++) {
        vcpus[i].id = i;
        vcpus[i].fd = ioctl(vm_fd, KVM_CREATE_VCPU, i);
        if (vcpus[i].fd < 0) die("KVM_CREATE_VCPU %d: %s", i, strerror(errno));
        vcpus[i].run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpus[i].fd, 0);
        if (vcpus[i].run == MAP_FAILED) die("mmap kvm_run: %s", strerror(errno));
        set_cpuid(vcpus[i].fd, i);
    }
    setup_bsp(vcpus[0].fd, entry);
    /* APs stay in KVM's wait-for-SIPI state until the guest starts them. */
    for (int i = 1; i < nr_vcpus; i++)
        if (pthread_create(&vcpus[i].thread, NULL, ap_thread, &vcpus[i]) != 0)
            die("pthread_create failed");
    run_vcpu(0, vcpus[0].fd, vcpus[0].run);
    return 0;
}
