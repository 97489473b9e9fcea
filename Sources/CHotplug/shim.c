#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <linux/sock_diag.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "CHotplug.h"

const int chotplug_O_PATH = O_PATH;
const int chotplug_SCHED_BATCH = SCHED_BATCH;

int chotplug_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int chotplug_openat_beneath(int directory, const char *path, int flags) {
#ifdef SYS_openat2
    struct open_how how = {
        .flags = (unsigned long long)(flags | O_CLOEXEC | O_NOFOLLOW),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof how);
#else
    errno = ENOSYS;
    return -1;
#endif
}

long chotplug_receive_datagram(int fd, void *buffer, unsigned long capacity, struct chotplug_sender *sender) {
    struct sockaddr_nl address;
    struct iovec iov = { .iov_base = buffer, .iov_len = capacity };
    union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct msghdr message = {
        .msg_name = &address, .msg_namelen = sizeof address,
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = &control, .msg_controllen = sizeof control,
    };
    memset(&address, 0, sizeof address);
    memset(sender, 0, sizeof *sender);
    ssize_t length = recvmsg(fd, &message, MSG_TRUNC | MSG_DONTWAIT);
    if (length < 0) return -1;
    sender->port = address.nl_pid;
    sender->groups = address.nl_groups;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS &&
            header->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
            sender->uid = credentials.uid;
            sender->has_uid = 1;
        }
    }
    return (long)length;
}

int chotplug_queued_bytes(int fd, unsigned int *queued, unsigned int *limit) {
    unsigned int meminfo[SK_MEMINFO_VARS];
    socklen_t length = sizeof meminfo;
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &length) < 0) return -1;
    if (length <= SK_MEMINFO_RCVBUF * sizeof meminfo[0]) {
        errno = EINVAL;
        return -1;
    }
    *queued = meminfo[SK_MEMINFO_RMEM_ALLOC];
    *limit = meminfo[SK_MEMINFO_RCVBUF];
    return 0;
}

// Runs in the forked child: async-signal-safe calls only.
static void become_hook(int output, int report) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction fallback = { .sa_handler = SIG_DFL };
    for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &fallback, NULL);
    setpgid(0, 0);
    int score = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (score >= 0) {
        (void)!write(score, "0", 1);
        close(score);
    }
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    // Refused by the unit's system call filter (capset is @privileged); SecureBits=noroot and the
    // ambient set cleared above do it there.
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    syscall(SYS_capset, &header, data);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0 && null != 0) dup2(null, 0);
    if (output != 1) dup2(output, 1);
    if (output != 2) dup2(output, 2);
    // Everything else, the report pipe excepted: it closes itself at a successful execve.
#ifdef SYS_close_range
    if ((report <= 3 || syscall(SYS_close_range, 3, report - 1, 0) == 0) &&
        syscall(SYS_close_range, report + 1, ~0U, 0) == 0) {
        return;
    }
#endif
    for (int fd = 3; fd < 65536; fd++) {
        if (fd != report) close(fd);
    }
}

int chotplug_spawn_hook(const char *path, char *const argv[], char *const envp[], int output) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(report[0]);
        close(report[1]);
        errno = error;
        return -1;
    }
    if (pid == 0) {
        close(report[0]);
        become_hook(output, report[1]);
        execve(path, argv, envp);
        int error = errno;
        (void)!write(report[1], &error, sizeof error);
        _exit(127);
    }
    close(report[1]);
    int error = 0;
    ssize_t got;
    do {
        got = read(report[0], &error, sizeof error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == sizeof error) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        errno = error;
        return -1;
    }
    return pid;
}

int chotplug_pidfd_open(int pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}
