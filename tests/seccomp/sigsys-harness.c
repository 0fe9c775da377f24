/*
 * Runs the VMM's SIGSYS handler outside the VMM: loads the handler image (code and parameters, as
 * SigSysHandler.Image builds it) from argv[1] into an executable page, installs it for SIGSYS, puts on a seccomp
 * filter that traps system call argv[2] and allows everything else, and makes that call. The handler must print
 * its line and end the process with status 159; if the call returns, this exits 2.
 *   sigsys-harness <image> <number> [<log file opened as fd 3>]
 * With SIGSYS_HARNESS_DIRECT=1 in the environment it calls the handler as the kernel would for that call, with no
 * filter: for an emulator that has no seccomp (qemu-user runs the aarch64 handler this way).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s <image> <number> [<log file>]\n", argv[0]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror(argv[1]); return 2; }
    void *page = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || read(fd, page, st.st_size) != st.st_size) { perror("load"); return 2; }
    close(fd);
    if (mprotect(page, st.st_size, PROT_READ | PROT_EXEC) != 0) { perror("mprotect"); return 2; }
    if (argc > 3) {
        int log = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (log < 0 || dup2(log, 3) != 3) { perror(argv[3]); return 2; }
    }

    struct sigaction act = { 0 };
    act.sa_sigaction = (void (*)(int, siginfo_t *, void *))page;
    act.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &act, NULL) != 0) { perror("sigaction"); return 2; }

    unsigned nr = (unsigned)strtoul(argv[2], NULL, 0);
    const char *direct = getenv("SIGSYS_HARNESS_DIRECT");
    if (direct && direct[0] == '1') {
        siginfo_t info = { 0 };
        info.si_signo = SIGSYS;
        info.si_syscall = (int)nr;
        act.sa_sigaction(SIGSYS, &info, NULL);
        return 2;
    }
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof code / sizeof code[0], code };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        perror("seccomp");
        return 2;
    }
    syscall(nr, 0, 0, 0);
    return 2;
}
