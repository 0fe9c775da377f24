/*
 * Test shim, loaded into stratovirt with LD_PRELOAD: every epoll_wait first makes a system call that no
 * thread's seccomp list allows (uname). The VMM calls epoll_wait only from its event loops, which run after
 * their thread is confined, so under seccomp the first call must be reported and stop the VM; with
 * -disable-seccomp the VM runs as usual.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static int (*real_epoll_wait)(int, struct epoll_event *, int, int);

/* Resolved at load time: dlsym may allocate, which a confined thread could not. */
__attribute__((constructor)) static void resolve(void)
{
    real_epoll_wait = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    struct utsname name;
    syscall(SYS_uname, &name);
    return real_epoll_wait(epfd, events, maxevents, timeout);
}
