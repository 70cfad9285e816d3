/* Test and benchmark helper: a process that maps a memfd shared (like QEMU's memory-backend-memfd)
 * and writes exact patterns into it on command, one command per stdin line, answering "ok".
 *   fill <page> <count> <byte>     every byte of the pages set to <byte>
 *   pattern <page> <count> <seed>  each 8-byte word = f(seed, page, word)
 *   poke <page> <seed>             one word of the page changed
 *   random <count> <seed>          poke <count> pseudo-random pages
 *   quit
 * Prints "ready <mapAddressHex> <sizeBytes> <memfd>" once mapped. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: shm-writer <pageCount>\n");
    return 2;
  }
  long page = sysconf(_SC_PAGESIZE);
  uint64_t pages = strtoull(argv[1], NULL, 10);
  size_t size = (size_t)(pages * (uint64_t)page);
  int fd = memfd_create("umbra-test-ram", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
    perror("memfd");
    return 1;
  }
  uint8_t *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  printf("ready %llx %zu %d\n", (unsigned long long)(uintptr_t)mem, size, fd);
  fflush(stdout);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[32];
    unsigned long long a = 0, b = 0, c = 0;
    int n = sscanf(line, "%31s %llu %llu %llu", cmd, &a, &b, &c);
    if (n < 1) continue;
    int ok = 1;
    if (!strcmp(cmd, "fill") && n == 4 && a + b <= pages) {
      memset(mem + a * page, (int)c, b * page);
    } else if (!strcmp(cmd, "pattern") && n == 4 && a + b <= pages) {
      for (uint64_t p = a; p < a + b; p++) {
        uint64_t *w = (uint64_t *)(mem + p * page);
        for (long i = 0; i < page / 8; i++) w[i] = c * 0x9E3779B97F4A7C15ULL + p * 0x100000001B3ULL + (uint64_t)i + 1;
      }
    } else if (!strcmp(cmd, "poke") && n == 3 && a < pages) {
      uint64_t *w = (uint64_t *)(mem + a * page);
      w[(b * 7) % (page / 8)] = b * 0xD6E8FEB86659FD93ULL + a + 1;
    } else if (!strcmp(cmd, "random") && n == 3) {
      uint64_t x = b * 6364136223846793005ULL + 1442695040888963407ULL;
      for (uint64_t i = 0; i < a; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t p = (x >> 17) % pages;
        uint64_t *w = (uint64_t *)(mem + p * page);
        w[(x >> 7) % (page / 8)] = x | 1;
      }
    } else if (!strcmp(cmd, "quit")) {
      break;
    } else {
      ok = 0;
    }
    printf(ok ? "ok\n" : "error bad command\n");
    fflush(stdout);
  }
  return 0;
}
