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

// eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK: the monitor thread's stop signal.
int chotplug_eventfd(void);

// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: a path below
// `directory` in one call, refusing any symbolic link on the way and any escape by "..".
// Returns -1 with errno ENOSYS on kernels before 5.6 (the caller then walks the path itself).
int chotplug_openat_beneath(int directory, const char *path, int flags);

#endif
