/* LD_PRELOAD library for the VM process (QEMU): its constructor creates a userfaultfd inside the
 * process with async write-protect enabled and parks it at a known fd number, so the agent can take
 * it with pidfd_getfd and register guest RAM from its own process. Does nothing else: no faults are
 * ever delivered to a reader (WP_ASYNC resolves them in the kernel).
 *
 * Environment (all optional):
 *   UMBRA_UFFD_FD        fd number to park the userfaultfd at (default 1023)
 *   UMBRA_UFFD_INFO_FILE file to write "<fd> <features>\n" into once ready (or "error <errno>\n")
 * LD_PRELOAD is removed from the environment so that programs QEMU starts do not inherit it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd-abi.h"

#define DEFAULT_PARK_FD 1023

static void publish(const char *line) {
  const char *path = getenv("UMBRA_UFFD_INFO_FILE");
  if (!path || !*path) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t ignored = write(fd, line, strlen(line));
  (void)ignored;
  close(fd);
}

__attribute__((constructor)) static void umbra_uffd_preload_init(void) {
  char line[64];
  unsetenv("LD_PRELOAD");
  int park = DEFAULT_PARK_FD;
  const char *want = getenv("UMBRA_UFFD_FD");
  if (want && *want) park = atoi(want);
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(line, sizeof line, "error %d\n", errno);
    publish(line);
    return;
  }
  struct uffdio_api api = {.api = UFFD_API, .features = UMBRA_UFFD_FEATURES};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    snprintf(line, sizeof line, "error %d\n", errno);
    close(fd);
    publish(line);
    return;
  }
  if (park > 2 && park != fd) {
    if (dup3(fd, park, O_CLOEXEC) < 0) {
      snprintf(line, sizeof line, "error %d\n", errno);
      close(fd);
      publish(line);
      return;
    }
    close(fd);
    fd = park;
  }
  snprintf(line, sizeof line, "%d %llu\n", fd, (unsigned long long)api.features);
  publish(line);
}
