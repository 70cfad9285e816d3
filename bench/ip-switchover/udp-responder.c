/*
 * UDP responder of the ip-switchover bench, run in each bench "host" namespace (built with cc).
 *
 *   udp-responder BIND_IPV4 PORT TAG
 *
 * The stand-in service at the switched address: answers every datagram with its first 8 bytes
 * (the prober's sequence number) followed by TAG, from the service address, which it binds before
 * the host holds it (IP_FREEBIND). It blocks in recvfrom() between datagrams: it wakes when one
 * arrives, with no event loop or garbage collector of its own between the kernel and the answer
 * (the Node responder it replaces was, on the 2-core machine, itself descheduled for milliseconds
 * around a switchover, which the client counted in every method's gap alike).
 *
 * Prints "ready" once bound; exits on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#define TAG_MAX 15

static void die(const char *what) {
  fprintf(stderr, "udp-responder: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: udp-responder BIND_IPV4 PORT TAG\n");
    return 2;
  }
  /* Ends with the bench that started it, even if the bench dies without stopping it. */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  size_t tag_len = strlen(argv[3]);
  if (tag_len > TAG_MAX) tag_len = TAG_MAX;
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
    fprintf(stderr, "udp-responder: bad address %s\n", argv[1]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0) die("IP_FREEBIND");
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    unsigned char buf[64];
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    ssize_t len = recvfrom(fd, buf, 8, 0, (struct sockaddr *)&from, &from_len);
    if (len < 0) {
      if (errno == EINTR) continue;
      die("recvfrom");
    }
    if (len < 8) continue;
    memcpy(buf + 8, argv[3], tag_len);
    if (sendto(fd, buf, 8 + tag_len, 0, (struct sockaddr *)&from, from_len) < 0 && errno != EINTR) {
      /* The address may be leaving this host mid-switchover: an answer that cannot go is dropped. */
      continue;
    }
  }
}
