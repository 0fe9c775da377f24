/* The ozone test probe: run as -exec-file, it prints what the sandboxed process sees, one "key=value" per line,
 * then waits for a line on stdin ("exit N", or end of input) so the test can look at it from the host meanwhile.
 * Built static (gcc -static) because the chroot holds nothing but the binary and the -source files.
 * if_nameindex needs no /proc (the sandbox has none): it asks the kernel over a netlink socket.
 * Arguments: paths to read ("read=<path>" lines: "ok <bytes>" or the errno text). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static int compare(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void list_dir(const char *key, const char *path) {
    char *names[256];
    int n = 0;
    DIR *d = opendir(path);
    if (!d) { printf("%s=error %s\n", key, strerror(errno)); return; }
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], compare);
    printf("%s=", key);
    for (int i = 0; i < n; i++) printf("%s%s", i ? "," : "", names[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    printf("pid=%d\nuid=%u,%u,%u\ngid=%u,%u,%u\n", getpid(), ru, eu, su, rg, eg, sg);
    gid_t groups[64];
    int ng = getgroups(64, groups);
    printf("groups=");
    for (int i = 0; i < ng; i++) printf("%s%u", i ? "," : "", groups[i]);
    printf("\n");

    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct c[2];
    syscall(SYS_capget, &h, c);
    printf("cap_eff=%016llx\ncap_prm=%016llx\ncap_inh=%016llx\n",
           (unsigned long long)c[1].effective << 32 | c[0].effective,
           (unsigned long long)c[1].permitted << 32 | c[0].permitted,
           (unsigned long long)c[1].inheritable << 32 | c[0].inheritable);
    unsigned long long bnd = 0, amb = 0;
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) bnd |= 1ULL << cap;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1) amb |= 1ULL << cap;
    }
    printf("cap_bnd=%016llx\ncap_amb=%016llx\n", bnd, amb);
    printf("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));

    struct utsname u;
    uname(&u);
    printf("hostname=%s\n", u.nodename);
    char cwd[4096];
    printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : strerror(errno));
    list_dir("root", "/");
    list_dir("dev", "/dev");
    list_dir("dev_net", "/dev/net");

    struct if_nameindex *ifs = if_nameindex();
    printf("ifaces=");
    for (struct if_nameindex *i = ifs; i && i->if_index; i++) printf("%s%s", i == ifs ? "" : ",", i->if_name);
    printf("\n");

    printf("fds=");
    for (int fd = 3, first = 1; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) { printf("%s%d", first ? "" : ",", fd); first = 0; }
    printf("\n");

    for (int i = 1; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) { printf("read=%s error %s\n", argv[i], strerror(errno)); continue; }
        char buf[4096];
        long total = 0, n;
        while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
        printf("read=%s ok %ld\n", argv[i], total);
        close(fd);
    }
    printf("ready\n");
    fflush(stdout);

    char line[64];
    int code = 0;
    if (fgets(line, sizeof line, stdin)) sscanf(line, "exit %d", &code);
    return code;
}
