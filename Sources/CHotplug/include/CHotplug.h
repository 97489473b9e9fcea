// The one C module of hotplugd: the headers of libudev and libsystemd, plus the few Linux
// constants and calls that Swift's Glibc module does not import (they sit behind _GNU_SOURCE
// or in headers it leaves out).
#ifndef C_HOTPLUG_H
#define C_HOTPLUG_H

#include <libudev.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

// O_PATH: open a directory only to use it as the base of openat(2), never to read it.
extern const int chotplug_O_PATH;

// SCHED_BATCH (sched(7)): a thread woken that does not preempt the one running.
extern const int chotplug_SCHED_BATCH;

// eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK: the monitor thread's stop signal.
int chotplug_eventfd(void);

// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: a path below
// `directory` in one call, refusing any symbolic link on the way and any escape by "..".
// Returns -1 with errno ENOSYS on kernels before 5.6 (the caller then walks the path itself).
int chotplug_openat_beneath(int directory, const char *path, int flags);

// The sender of a netlink datagram: its port (0: the kernel), the multicast groups it went to,
// and the uid from SCM_CREDENTIALS (has_uid is 0 when none came).
struct chotplug_sender {
    unsigned int port;
    unsigned int groups;
    unsigned int uid;
    int has_uid;
};

// recvmsg(2) with MSG_TRUNC | MSG_DONTWAIT: takes the next datagram off the socket, copies up to
// `capacity` bytes of it, and says who sent it. It is C because the sender's credentials come as
// a control message, read with the CMSG_* macros, which Swift cannot call. Returns the
// datagram's full length (more than `capacity` when it was cut short), or -1 with errno
// (EAGAIN: none queued; ENOBUFS: the socket overran and datagrams were dropped).
long chotplug_receive_datagram(int fd, void *buffer, unsigned long capacity, struct chotplug_sender *sender);

// What a socket holds unreceived, in bytes as the kernel counts them against its receive buffer
// (SO_MEMINFO's SK_MEMINFO_RMEM_ALLOC, Linux 4.12), and that buffer's size (SK_MEMINFO_RCVBUF).
// It is C because the SK_MEMINFO_* indices are an enum in linux/sock_diag.h, which Swift's
// Glibc module leaves out. Returns 0, or -1 with errno.
int chotplug_queued_bytes(int fd, unsigned int *queued, unsigned int *limit);

// Starts a hook's command without the daemon's powers. fork(2), then in the child, before
// execve(2): its own process group (the whole group is signalled at a timeout), the default OOM
// score (the daemon's -900 is not for its children), no ambient capabilities (under the unit's
// SecureBits=noroot that leaves the command none), and outside such a unit no capabilities at all
// (no_new_privs, then capset(2) to nothing, so execve(2) as root grants none); signals unblocked
// and at their defaults; stdin /dev/null, stdout and stderr `output`; every other descriptor
// closed. It is C because only async-signal-safe calls may run between fork and exec, which Swift
// cannot promise. Returns the child's pid, or -1 with errno when it could not start (the
// child's execve error is passed back through a close-on-exec pipe).
int chotplug_spawn_hook(const char *path, char *const argv[], char *const envp[], int output);

// pidfd_open(2): a descriptor that polls readable when the process ends (Linux 5.3); -1 with
// errno ENOSYS before.
int chotplug_pidfd_open(int pid);

#endif
