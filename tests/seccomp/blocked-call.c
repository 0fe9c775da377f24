/*
 * Test shim, loaded into stratovirt with LD_PRELOAD: it makes a system call that no thread's seccomp list allows
 * (uname) on the kind of thread BLOCKED_CALL_ON names, once that thread is confined:
 *   main      the main thread's event loop (its epoll_wait)
 *   iothread  an -object iothread's event loop (epoll_wait on any other thread)
 *   vcpu      a vCPU thread (its KVM_RUN ioctl)
 *   unset     every epoll_wait
 * Under seccomp the call must be reported in one line and stop the VM; with -disable-seccomp nothing changes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define KVM_RUN 0xAE80

static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static int (*real_ioctl)(int, unsigned long, void *);
static pthread_t main_thread;
static enum { ANY_LOOP, MAIN, IOTHREAD, VCPU } target = ANY_LOOP;

/* Resolved at load time, on the main thread: dlsym and getenv may allocate, which a confined thread could not. */
__attribute__((constructor)) static void resolve(void)
{
    real_epoll_wait = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
    real_ioctl = (int (*)(int, unsigned long, void *))dlsym(RTLD_NEXT, "ioctl");
    main_thread = pthread_self();
    const char *on = getenv("BLOCKED_CALL_ON");
    if (on && strcmp(on, "main") == 0) target = MAIN;
    else if (on && strcmp(on, "iothread") == 0) target = IOTHREAD;
    else if (on && strcmp(on, "vcpu") == 0) target = VCPU;
}

static void blocked_call(void)
{
    struct utsname name;
    syscall(SYS_uname, &name);
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    int on_main = pthread_equal(pthread_self(), main_thread);
    if (target == ANY_LOOP || (target == MAIN && on_main) || (target == IOTHREAD && !on_main))
        blocked_call();
    return real_epoll_wait(epfd, events, maxevents, timeout);
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (target == VCPU && request == KVM_RUN) blocked_call();
    return real_ioctl(fd, request, arg);
}
