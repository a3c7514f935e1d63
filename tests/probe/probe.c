/* probe: a tiny static program the integration tests copy into containers to make one system
 * call and report how it went ("ok" or the errno name), where busybox has no applet for it. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(long rc) {
    if (rc < 0) {
        printf("%s\n", strerrorname_np(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe add_key|keyctl|unshare-user\n");
        return 2;
    }
    const char* what = argv[1];
    if (!strcmp(what, "add_key"))  /* a key in a new session keyring */
        return report(syscall(SYS_add_key, "user", "probe", "v", 1, -3 /* KEY_SPEC_SESSION_KEYRING */));
    if (!strcmp(what, "keyctl"))   /* KEYCTL_GET_KEYRING_ID of the session keyring */
        return report(syscall(SYS_keyctl, 0, -3, 0));
    if (!strcmp(what, "unshare-user"))
        return report(unshare(CLONE_NEWUSER));
    fprintf(stderr, "probe: unknown probe %s\n", what);
    return 2;
}
