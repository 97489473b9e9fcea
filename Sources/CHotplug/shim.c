#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/eventfd.h>

#include "CHotplug.h"

const int chotplug_O_PATH = O_PATH;

int chotplug_eventfd(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}
