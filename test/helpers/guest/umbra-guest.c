// umbra-guest: the test guest's workload, run as PID 1 after /init has brought up the network.
// It answers UDP probes, keeps a counter that ticks every 100 ms, optionally fills part of RAM
// with non-zero data and keeps rewriting a memory region at a configured rate. Settings come
// from the kernel command line (umbra.KEY=VALUE), so one image serves every test and benchmark.
//
// UDP (port umbra.port, default 7007): a datagram starting with "stat" gets one line back:
//   "counter=N boot=HEX fill_mb=N fill_done=0|1 memwrite_mb=N memwrite_passes=N\n"
// any other datagram is echoed back unchanged (clients measure gaps with it).
// Console: "umbra-counter N" every second, "umbra-fill-done mb=N" once the fill is written.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 100
#define PRINT_EVERY_TICKS 10
#define PAGE_BYTES 4096
#define FILL_MARGIN_MB 16 // left free when filling, so the guest kernel never runs out

struct shared_stats {
  volatile uint64_t memwrite_passes;
  volatile uint32_t fill_done;
  volatile uint32_t fill_mb;
};

static struct {
  int port;
  int fill_pct;
  int memwrite_mb;
  int memwrite_rate_mbps; // 0 = as fast as the vCPU allows
} cfg = {7007, 0, 0, 0};

static void read_cmdline(void) {
  char buf[4096];
  int fd = open("/proc/cmdline", O_RDONLY);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
    if (strncmp(tok, "umbra.", 6) != 0) continue;
    char *eq = strchr(tok, '=');
    if (!eq) continue;
    *eq = 0;
    int v = atoi(eq + 1);
    if (v < 0) continue; // bad values are ignored, defaults stay
    const char *key = tok + 6;
    if (!strcmp(key, "port")) cfg.port = v;
    else if (!strcmp(key, "fill_pct")) cfg.fill_pct = v > 95 ? 95 : v;
    else if (!strcmp(key, "memwrite_mb")) cfg.memwrite_mb = v;
    else if (!strcmp(key, "memwrite_rate")) cfg.memwrite_rate_mbps = v;
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + ts.tv_nsec / 1000000u;
}

static void *map_region(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

// Fills fill_pct of total RAM with pseudo-random non-zero words and keeps it resident forever.
static void run_filler(struct shared_stats *st) {
  struct sysinfo si;
  if (sysinfo(&si) != 0) _exit(1);
  uint64_t total_mb = (uint64_t)si.totalram * si.mem_unit >> 20;
  uint64_t free_mb = (uint64_t)si.freeram * si.mem_unit >> 20;
  uint64_t want_mb = total_mb * (uint64_t)cfg.fill_pct / 100u;
  // The memory writer starts after the fill and needs its region too.
  uint64_t keep_mb = FILL_MARGIN_MB + (uint64_t)cfg.memwrite_mb;
  if (want_mb + keep_mb > free_mb) want_mb = free_mb > keep_mb ? free_mb - keep_mb : 0;
  size_t bytes = (size_t)want_mb << 20;
  uint64_t *p = bytes ? map_region(bytes) : NULL;
  uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
  if (p) {
    for (size_t i = 0; i < bytes / 8; i++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17; // xorshift64: never zero
      p[i] = x;
    }
  }
  st->fill_mb = p ? (uint32_t)want_mb : 0;
  __sync_synchronize();
  st->fill_done = 1;
  printf("umbra-fill-done mb=%u\n", st->fill_mb);
  fflush(stdout);
  for (;;) pause();
}

// Rewrites one word in every page of its region, pass after pass, at memwrite_rate MB/s.
static void run_memwriter(struct shared_stats *st) {
  size_t bytes = (size_t)cfg.memwrite_mb << 20;
  uint8_t *p = map_region(bytes);
  if (!p) _exit(1);
  const size_t chunk = 1u << 20;
  uint64_t start = now_ms(), written_mb = 0;
  for (uint64_t pass = 1;; pass++) {
    for (size_t off = 0; off < bytes; off += chunk) {
      for (size_t pg = off; pg < off + chunk; pg += PAGE_BYTES) *(volatile uint64_t *)(p + pg) = (pass << 32) | (pg / PAGE_BYTES) | 1;
      written_mb++;
      if (cfg.memwrite_rate_mbps > 0) {
        uint64_t due = start + written_mb * 1000u / (uint64_t)cfg.memwrite_rate_mbps;
        uint64_t t = now_ms();
        if (due > t) usleep((useconds_t)(due - t) * 1000u);
      }
    }
    st->memwrite_passes = pass;
  }
}

static pid_t start_child(void (*fn)(struct shared_stats *), struct shared_stats *st, int nice_value) {
  pid_t pid = fork();
  if (pid == 0) {
    setpriority(PRIO_PROCESS, 0, nice_value);
    fn(st);
    _exit(0);
  }
  return pid;
}

int main(void) {
  read_cmdline();
  setvbuf(stdout, NULL, _IOLBF, 0);
  uint8_t boot[8] = {0};
  int rnd = open("/dev/urandom", O_RDONLY);
  if (rnd >= 0) { if (read(rnd, boot, sizeof boot) < 0) boot[0] = 1; close(rnd); }
  struct shared_stats *st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (st == MAP_FAILED) return 1;
  memset(st, 0, sizeof *st);
  if (cfg.fill_pct > 0) start_child(run_filler, st, 5);
  else st->fill_done = 1;
  int memwriter_started = 0; // started once the fill is done: fill first, then keep writing
  setpriority(PRIO_PROCESS, 0, -10); // probes are answered ahead of the memory loops

  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port), .sin_addr = {htonl(INADDR_ANY)}};
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("umbra-guest bind"); return 1; }
  printf("umbra-guest-ready port=%d fill_pct=%d memwrite_mb=%d memwrite_rate=%d\n", cfg.port, cfg.fill_pct, cfg.memwrite_mb, cfg.memwrite_rate_mbps);

  uint64_t counter = 0, next_tick = now_ms() + TICK_MS;
  char buf[2048];
  for (;;) {
    uint64_t t = now_ms();
    if (t >= next_tick) {
      counter++;
      // After a long pause (VM stopped), restart the cadence instead of bursting to catch up.
      next_tick = t - next_tick > TICK_MS ? t + TICK_MS : next_tick + TICK_MS;
      if (!memwriter_started && st->fill_done && cfg.memwrite_mb > 0) {
        start_child(run_memwriter, st, 10);
        memwriter_started = 1;
      }
      if (counter % PRINT_EVERY_TICKS == 0) printf("umbra-counter %llu\n", (unsigned long long)counter);
      while (waitpid(-1, NULL, WNOHANG) > 0) {} // PID 1 reaps orphans (udhcpc's scripts)
    }
    struct pollfd pfd = {.fd = s, .events = POLLIN};
    int wait_ms = (int)(next_tick > t ? next_tick - t : 0);
    if (poll(&pfd, 1, wait_ms) <= 0) continue;
    for (;;) {
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
      if (n < 0) break;
      if (n >= 4 && memcmp(buf, "stat", 4) == 0) {
        int m = snprintf(buf, sizeof buf,
                         "counter=%llu boot=%02x%02x%02x%02x%02x%02x%02x%02x fill_mb=%u fill_done=%u memwrite_mb=%d memwrite_passes=%llu\n",
                         (unsigned long long)counter, boot[0], boot[1], boot[2], boot[3], boot[4], boot[5], boot[6], boot[7],
                         st->fill_mb, st->fill_done, cfg.memwrite_mb, (unsigned long long)st->memwrite_passes);
        sendto(s, buf, (size_t)m, 0, (struct sockaddr *)&from, fl);
      } else {
        sendto(s, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
      }
    }
  }
}
