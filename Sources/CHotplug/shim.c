#define _GNU_SOURCE
#include <fcntl.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CHotplug.h"

const int chotplug_O_PATH = O_PATH;

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
