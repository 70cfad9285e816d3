/*
 * UDP prober of the ip-switchover bench, run in the client namespace (built by the bench with cc).
 *
 *   udp-prober TARGET_IPV4 PORT PERIOD_US [DRAIN_US]
 *
 * Sends one 8-byte datagram (big-endian sequence number) every PERIOD_US to TARGET:PORT on a
 * fixed grid of absolute CLOCK_MONOTONIC deadlines, sleeping in ppoll() between them, and records
 * every answer with the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME): the answer
 * times do not depend on when this process gets the CPU, and it does not spin a core (the Node
 * prober it replaces did, on a 2-core machine, beside the processes under test).
 *
 * Prints "started <realtime ns>" once the socket is up. On a "stop" line on stdin it stops
 * sending, prints "stopped <realtime ns> <monotonic ns>" (both clocks read together, so a caller
 * can place the answers on CLOCK_MONOTONIC), keeps receiving for DRAIN_US (default 0; echoes
 * still in flight from a slow answerer, e.g. a TCG guest, are then counted), then prints
 * "answer <realtime ns> <seq> <tag>" per answer and "end <sent>", and exits.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TAG_MAX 15
/* Fell this many periods behind: restart the grid rather than send a burst. */
#define MAX_BEHIND_PERIODS 10

struct answer {
  int64_t at_ns;
  uint32_t seq;
  char tag[TAG_MAX + 1];
};

static struct answer *answers;
static size_t n_answers, cap_answers;

static int64_t now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "udp-prober: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void record(int64_t at_ns, const unsigned char *buf, ssize_t len) {
  if (len < 8) return;
  if (n_answers == cap_answers) {
    cap_answers = cap_answers ? cap_answers * 2 : 4096;
    answers = realloc(answers, cap_answers * sizeof *answers);
    if (!answers) die("realloc");
  }
  struct answer *a = &answers[n_answers++];
  a->at_ns = at_ns;
  a->seq = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) | buf[3];
  size_t tag_len = (size_t)len - 8 > TAG_MAX ? TAG_MAX : (size_t)len - 8;
  memcpy(a->tag, buf + 8, tag_len);
  a->tag[tag_len] = '\0';
  for (size_t i = 0; i < tag_len; i++)
    if (a->tag[i] <= ' ') a->tag[i] = '_';
}

/* Reads every queued answer with its kernel receive timestamp. */
static void drain(int fd) {
  for (;;) {
    unsigned char buf[64];
    char control[CMSG_SPACE(sizeof(struct timespec))];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t len = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (len < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNREFUSED) continue; /* ICMP errors surface here; not answers */
      die("recvmsg");
    }
    int64_t at = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(c), sizeof ts);
        at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
      }
    }
    record(at >= 0 ? at : now_ns(CLOCK_REALTIME), buf, len);
  }
}

/* True once a "stop" line was read from stdin (or stdin closed). */
static int stop_requested(void) {
  static char line[64];
  static size_t used;
  ssize_t n = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
  if (n <= 0) return 1;
  used += (size_t)n;
  line[used] = '\0';
  if (strstr(line, "stop")) return 1;
  if (used >= sizeof line - 1) used = 0;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: udp-prober TARGET_IPV4 PORT PERIOD_US [DRAIN_US]\n");
    return 2;
  }
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
    fprintf(stderr, "udp-prober: '%s' is not an IPv4 address\n", argv[1]);
    return 2;
  }
  int64_t period_ns = (int64_t)(atof(argv[3]) * 1000.0);
  if (period_ns < 10000) {
    fprintf(stderr, "udp-prober: PERIOD_US must be >= 10\n");
    return 2;
  }
  int64_t drain_ns = argc == 5 ? (int64_t)(atof(argv[4]) * 1000.0) : 0;
  if (drain_ns < 0) {
    fprintf(stderr, "udp-prober: DRAIN_US must be >= 0\n");
    return 2;
  }
  /* Wake-ups on the grid, not up to the default 50 us timer slack late. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) die("SO_TIMESTAMPNS");
  struct sockaddr_in any = {.sin_family = AF_INET};
  if (bind(fd, (struct sockaddr *)&any, sizeof any) < 0) die("bind");
  printf("started %" PRId64 "\n", now_ns(CLOCK_REALTIME));
  fflush(stdout);

  uint32_t sent = 0;
  int64_t next = now_ns(CLOCK_MONOTONIC);
  for (;;) {
    int64_t now = now_ns(CLOCK_MONOTONIC);
    if (now >= next) {
      unsigned char payload[8] = {(unsigned char)(sent >> 24), (unsigned char)(sent >> 16), (unsigned char)(sent >> 8), (unsigned char)sent, 0, 0, 0, 0};
      /* A send refused (no route, neighbour failure) is a lost probe, as on the wire. */
      sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&to, sizeof to);
      sent++;
      next += period_ns;
      if (now - next > MAX_BEHIND_PERIODS * period_ns) next = now + period_ns;
      continue;
    }
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    int64_t wait = next - now;
    struct timespec timeout = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    int r = ppoll(fds, 2, &timeout, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("ppoll");
    }
    if (fds[0].revents & POLLIN) drain(fd);
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (stop_requested()) break;
    }
  }
  int64_t stopped_real = now_ns(CLOCK_REALTIME);
  printf("stopped %" PRId64 " %" PRId64 "\n", stopped_real, now_ns(CLOCK_MONOTONIC));
  for (int64_t until = now_ns(CLOCK_MONOTONIC) + drain_ns;;) {
    drain(fd);
    int64_t wait = until - now_ns(CLOCK_MONOTONIC);
    if (wait <= 0) break;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    struct timespec timeout = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    if (ppoll(&pfd, 1, &timeout, NULL) < 0 && errno != EINTR) die("ppoll");
  }
  for (size_t i = 0; i < n_answers; i++) printf("answer %" PRId64 " %" PRIu32 " %s\n", answers[i].at_ns, answers[i].seq, answers[i].tag);
  printf("end %" PRIu32 "\n", sent);
  fflush(stdout);
  close(fd);
  free(answers);
  return 0;
}
