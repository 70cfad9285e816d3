/*
 * ListHosts load generator of the coordinator-load bench (built by main.ts with cc).
 *
 *   list-load HOST:PORT CA CERT KEY RATE SECONDS EXPECTED_HOSTS [RAMP_SECONDS]
 *
 * Sends RATE ListHosts calls per second for RAMP_SECONDS (default 0) and then SECONDS over
 * CONNECTIONS mTLS HTTP/2 connections, open loop: call k is due at start + k/RATE, and every call
 * due goes out whether or not earlier answers have come back. The ramp's calls are checked and
 * their errors counted like the others, but their latencies are reported apart (rampP99Ms), as
 * h2load's --warm-up-time does: the first second at full rate is the server's JIT warming up to
 * the load, not its steady state. Prints one JSON line of latencies (the keys main.ts reads) and exits 0;
 * a connection, TLS or warm-up failure is a message on stderr and exit status 1.
 *
 * Native, like ghz or h2load: the node:http2 generator it replaces took about 30 % of a core per
 * 500 calls/s on the 2-core machine the coordinator under test shares, and its own event-loop
 * stalls showed up as server latency. This one, a single thread sleeping in ppoll() between
 * calls, takes about 9 %.
 *
 * It speaks gRPC itself instead of linking a gRPC library: the same TLS identities, HTTP/2
 * settings and request bytes as umbractl's channel (shared/grpc-client.ts, shared/tls.ts), and
 * each answer is checked by counting its hosts in the wire bytes rather than decoding them.
 * main.ts decodes one answer with grpc-js first, so a count that disagrees with what umbractl
 * sees fails the warm-up here.
 *
 * Latency is measured from each call's scheduled send time (CLOCK_MONOTONIC), so a generator
 * that falls behind shows up in the figures (its send lag is reported separately) instead of
 * being hidden.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* main.ts passes shared/grpc-server.ts's value with -D, so the two cannot drift apart. */
#ifndef FLOW_CONTROL_WINDOW_BYTES
#define FLOW_CONTROL_WINDOW_BYTES (4 * 1024 * 1024)
#endif
#define DEADLINE_MS 10000.0
#define CONNECTIONS 4
#define WARMUP_CALLS 200
/* A connection that is neither up nor refused by then would hang the bench. */
#define CONNECT_TIMEOUT_MS 10000.0
/* Bytes nghttp2 may queue for a connection before it is told to wait for the socket. */
#define OUT_LIMIT (1024 * 1024)
/* Far above any ListHosts answer; a runaway body is an error, not an out-of-memory kill. */
#define MAX_ANSWER_BYTES (256u * 1024 * 1024)
/* As channelOptions' grpc.ssl_target_name_override: identities are checked, not host names. */
#define SERVER_NAME "umbra"
#define LIST_HOSTS_PATH "/umbra.coordinator.v1.CoordinatorService/ListHosts"

/*
 * ListHostsRequest { view: HOST_VIEW_BASIC } (field 2, varint 1), what umbractl hosts asks for,
 * as one gRPC length-prefixed message: not compressed, 4-byte big-endian length, message.
 */
static const uint8_t FRAMED_REQUEST[] = {0, 0, 0, 0, 2, 0x10, 0x01};

struct conn {
  int index;
  int fd;
  SSL *ssl;
  nghttp2_session *session;
  bool dead;
  /* The last SSL_read or SSL_write wanted the socket writable: poll for POLLOUT. */
  bool io_wants_write;
  /* SSL_read wanted a write: retry the read once writable, even without POLLIN. */
  bool read_wants_write;
  /*
   * What nghttp2 has framed, written with one SSL_write per flush: a request's HEADERS and DATA
   * (and any WINDOW_UPDATE) then go out as one TLS record and one TCP segment, as node:http2
   * sends them, instead of a segment per frame for the server to read one by one.
   */
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  /* Bytes nghttp2 has framed in all: tells whether a send pass produced anything. */
  uint64_t framed;
  char error[256];
};

struct call {
  struct conn *conn;
  int32_t stream_id;
  bool warmup;
  bool finished;
  bool expired;
  bool has_status;
  /* The header block being read carried grpc-status (trailers must). */
  bool block_has_status;
  bool trailers_without_status;
  bool too_big;
  char status[16];
  char *message;
  uint8_t *body;
  size_t body_len, body_cap;
  double scheduled_at, sent_at;
  /* Warm-up calls keep their outcome for the caller to check. */
  int code;
  long count;
};

static const char *endpoint;
static double rate;
static int seconds;
static long expected_hosts;

static struct conn conns[CONNECTIONS];
static struct call *calls;
static long n_calls; /* warm-up calls plus the run's */
static long n_sent;
/* Calls before this index are finished or expired: the deadline sweep starts here. */
static long oldest;
static char warm_detail[512];

static long total;
static int ramp_seconds;
/* Start of the measured part (after the ramp). */
static double run_start;
static double *ramp_latencies;
static long n_ramp;
static long completed;
static long errors;
static long wrong_count;
static double *latencies, *from_send, *send_lags;
static int *latency_second;
static long n_latencies, n_send_lags;

static nghttp2_nv request_headers[7];

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("list-load: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* Appends `len` bytes to a buffer grown by doubling from 64 KiB (`what` names it in the error). */
static void append(uint8_t **buf, size_t *used, size_t *cap, const uint8_t *data, size_t len, const char *what) {
  if (*used + len > *cap) {
    size_t want = *cap ? *cap : 64 * 1024;
    while (want < *used + len) want *= 2;
    uint8_t *grown = realloc(*buf, want);
    if (!grown) fail("out of memory for %zu bytes of %s", want, what);
    *buf = grown;
    *cap = want;
  }
  memcpy(*buf + *used, data, len);
  *used += len;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* floor() without libm (the build links only nghttp2 and OpenSSL); exact below 2^63. */
static double floor_d(double x) {
  double t = (double)(long long)x;
  return t > x ? t - 1 : t;
}

/* OpenSSL's queued errors as one line (empty when there are none). */
static const char *ssl_errors(void) {
  static char buf[512];
  size_t used = 0;
  unsigned long e;
  buf[0] = '\0';
  while ((e = ERR_get_error()) != 0 && used + 2 < sizeof buf) {
    if (used > 0) used += (size_t)snprintf(buf + used, sizeof buf - used, "; ");
    ERR_error_string_n(e, buf + used, sizeof buf - used);
    used = strlen(buf);
  }
  return buf;
}

static void describe_ssl_failure(int err, char *out, size_t len) {
  int saved = errno;
  const char *queued = ssl_errors();
  if (err == SSL_ERROR_ZERO_RETURN) snprintf(out, len, "server closed the connection");
  else if (err == SSL_ERROR_SYSCALL && queued[0] == '\0') snprintf(out, len, "%s", saved ? strerror(saved) : "connection closed without close_notify");
  else snprintf(out, len, "%s", queued[0] ? queued : "TLS error");
}

/* ---- Host counting: top-level `hosts` entries (field 1, length-delimited) of a ListHostsResponse. */

static bool varint(const uint8_t *buf, size_t len, size_t *i, uint64_t *out, const char **err) {
  uint64_t v = 0;
  for (unsigned shift = 0;; shift += 7) {
    if (*i >= len) return *err = "truncated varint", false;
    if (shift > 63) return *err = "varint longer than 64 bits", false;
    uint8_t b = buf[(*i)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80) return *out = v, true;
  }
}

/* Number of hosts, or -1 with *err set when the bytes are not a ListHostsResponse. */
static long count_hosts(const uint8_t *buf, size_t len, const char **err, char *errbuf, size_t errlen) {
  size_t i = 0;
  long n = 0;
  while (i < len) {
    uint64_t key, length;
    if (!varint(buf, len, &i, &key, err)) return -1;
    if (key != 0x0a) {
      snprintf(errbuf, errlen, "unexpected field key %llu", (unsigned long long)key);
      *err = errbuf;
      return -1;
    }
    if (!varint(buf, len, &i, &length, err)) return -1;
    if (length > len - i) return *err = "truncated host entry", -1;
    i += length;
    n++;
  }
  return n;
}

/* ---- Calls */

static void finish(struct call *c, int code, long count, const char *detail) {
  if (c->finished) return;
  c->finished = true;
  double now = now_ms();
  if (c->warmup) {
    c->code = code;
    c->count = count;
    if (c->expired) snprintf(warm_detail, sizeof warm_detail, "no answer within the %.0f ms deadline", DEADLINE_MS);
    else snprintf(warm_detail, sizeof warm_detail, "%s", detail);
  } else {
    completed++;
    if (code == 0 && c->scheduled_at < run_start) {
      ramp_latencies[n_ramp++] = now - c->scheduled_at;
      if (count != expected_hosts) wrong_count++;
    } else if (code == 0) {
      double latency = now - c->scheduled_at;
      latencies[n_latencies] = latency;
      from_send[n_latencies] = now - c->sent_at;
      /* By the second of the scheduled send, to tell a start-up transient from a steady state. */
      int second = (int)((c->scheduled_at - run_start) / 1000);
      latency_second[n_latencies++] = second < seconds ? second : seconds - 1;
      if (count != expected_hosts) wrong_count++;
    } else if (errors++ == 0) {
      if (c->expired) fprintf(stderr, "first error: no answer within the %.0f ms deadline\n", DEADLINE_MS);
      else if (code == -1) fprintf(stderr, "first error: transport: %s\n", detail);
      else fprintf(stderr, "first error: status %d: %s\n", code, detail);
    }
  }
  free(c->body);
  c->body = NULL;
  free(c->message);
  c->message = NULL;
}

/*
 * The stream has closed: judge the answer as list-load.ts did. Returns the outcome's detail
 * (empty on success) and sets *code (gRPC status, -1 for a transport failure) and *count.
 */
static const char *judge(struct call *c, uint32_t error_code, int *code, long *count, char *detail, size_t len) {
  *code = -1;
  *count = 0;
  if (error_code != NGHTTP2_NO_ERROR) {
    snprintf(detail, len, "stream closed with error code NGHTTP2_%s", nghttp2_http2_strerror(error_code));
    return detail;
  }
  if (c->trailers_without_status) return "trailers carry no grpc-status";
  if (!c->has_status) {
    snprintf(detail, len, "stream closed without a status (HTTP/2 code %u)", error_code);
    return detail;
  }
  if (strcmp(c->status, "0") != 0) {
    char *end;
    long status = strtol(c->status, &end, 10);
    if (*end != '\0' || end == c->status || status <= 0 || status > 1000) {
      snprintf(detail, len, "grpc-status \"%s\" is not a status code", c->status);
      return detail;
    }
    *code = (int)status;
    return c->message ? c->message : "";
  }
  if (c->too_big) {
    snprintf(detail, len, "answer is larger than %u bytes", MAX_ANSWER_BYTES);
    return detail;
  }
  if (c->body_len < 5 || c->body[0] != 0) return "answer is not one uncompressed gRPC message";
  uint32_t length = (uint32_t)c->body[1] << 24 | (uint32_t)c->body[2] << 16 | (uint32_t)c->body[3] << 8 | c->body[4];
  if (c->body_len - 5 != length) {
    snprintf(detail, len, "answer has %zu bytes, its frame says %u", c->body_len - 5, length);
    return detail;
  }
  const char *err = NULL;
  long n = count_hosts(c->body + 5, c->body_len - 5, &err, detail, len);
  if (n < 0) return err;
  *code = 0;
  *count = n;
  return "";
}

static void complete(struct call *c, uint32_t error_code) {
  char buf[256];
  int code;
  long count;
  const char *detail = judge(c, error_code, &code, &count, buf, sizeof buf);
  finish(c, code, count, detail);
}

/* ---- nghttp2 callbacks */

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user) {
  struct conn *cn = user;
  (void)s, (void)flags;
  if (cn->out_len - cn->out_off >= OUT_LIMIT) return NGHTTP2_ERR_WOULDBLOCK;
  if (cn->out_len + len > cn->out_cap && cn->out_off > 0) {
    // Unsent bytes move to the front: OpenSSL accepts a moved retry (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
    memmove(cn->out, cn->out + cn->out_off, cn->out_len - cn->out_off);
    cn->out_len -= cn->out_off;
    cn->out_off = 0;
  }
  append(&cn->out, &cn->out_len, &cn->out_cap, data, len, "output");
  cn->framed += len;
  return (ssize_t)len;
}

/* Writes what is queued until done or the socket is full; false (cn->error set) on failure. */
static bool write_out(struct conn *cn) {
  while (cn->out_off < cn->out_len) {
    ERR_clear_error();
    size_t left = cn->out_len - cn->out_off;
    int n = SSL_write(cn->ssl, cn->out + cn->out_off, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n > 0) {
      cn->out_off += (size_t)n;
      continue;
    }
    int err = SSL_get_error(cn->ssl, n);
    if (err == SSL_ERROR_WANT_WRITE) cn->io_wants_write = true;
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) return true;
    describe_ssl_failure(err, cn->error, sizeof cn->error);
    return false;
  }
  cn->out_off = cn->out_len = 0;
  return true;
}

static ssize_t recv_cb(nghttp2_session *s, uint8_t *buf, size_t len, int flags, void *user) {
  struct conn *cn = user;
  (void)s, (void)flags;
  ERR_clear_error();
  int n = SSL_read(cn->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0) return n;
  int err = SSL_get_error(cn->ssl, n);
  if (err == SSL_ERROR_WANT_READ) return NGHTTP2_ERR_WOULDBLOCK;
  if (err == SSL_ERROR_WANT_WRITE) {
    cn->io_wants_write = cn->read_wants_write = true;
    return NGHTTP2_ERR_WOULDBLOCK;
  }
  describe_ssl_failure(err, cn->error, sizeof cn->error);
  return err == SSL_ERROR_ZERO_RETURN ? NGHTTP2_ERR_EOF : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  (void)user;
  struct call *c = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (c) c->block_has_status = false;
  return 0;
}

static int hex_digit(uint8_t ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* grpc-message is percent-encoded (list-load.ts undid it with decodeURIComponent). */
static char *percent_decode(const uint8_t *v, size_t len) {
  char *out = malloc(len + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    int hi = i + 2 < len && v[i] == '%' ? hex_digit(v[i + 1]) : -1;
    int lo = hi >= 0 ? hex_digit(v[i + 2]) : -1;
    if (lo >= 0) {
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      out[o++] = (char)v[i];
    }
  }
  out[o] = '\0';
  return out;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user) {
  (void)flags, (void)user;
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  struct call *c = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (!c || c->finished) return 0;
  // A trailers-only answer (an error) carries its status in the headers, a full one in trailers.
  if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
    size_t n = valuelen < sizeof c->status - 1 ? valuelen : sizeof c->status - 1;
    memcpy(c->status, value, n);
    c->status[n] = '\0';
    c->has_status = c->block_has_status = true;
  } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
    free(c->message);
    c->message = percent_decode(value, valuelen);
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  (void)user;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_HEADERS) return 0;
  struct call *c = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (c && !c->block_has_status) c->trailers_without_status = true;
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len, void *user) {
  (void)flags, (void)user;
  struct call *c = nghttp2_session_get_stream_user_data(s, stream_id);
  if (!c || c->finished || c->too_big) return 0;
  if (len > MAX_ANSWER_BYTES - c->body_len) {
    c->too_big = true;
    return 0;
  }
  append(&c->body, &c->body_len, &c->body_cap, data, len, "an answer");
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user) {
  (void)user;
  struct call *c = nghttp2_session_get_stream_user_data(s, stream_id);
  if (c) complete(c, error_code);
  return 0;
}

static ssize_t read_request(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t len, uint32_t *flags, nghttp2_data_source *src, void *user) {
  (void)s, (void)stream_id, (void)src, (void)user;
  if (len < sizeof FRAMED_REQUEST) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* never: nghttp2 offers a frame's worth */
  memcpy(buf, FRAMED_REQUEST, sizeof FRAMED_REQUEST);
  *flags |= NGHTTP2_DATA_FLAG_EOF;
  return sizeof FRAMED_REQUEST;
}

/* ---- Connections */

/* A connection that fails mid-run fails its calls (counted as errors); the others carry on. */
static void conn_failed(struct conn *cn, const char *why) {
  if (cn->dead) return;
  cn->dead = true;
  if (why != cn->error) snprintf(cn->error, sizeof cn->error, "%s", why);
  fprintf(stderr, "list-load: connection %d failed: %s\n", cn->index, cn->error);
  char detail[320];
  snprintf(detail, sizeof detail, "connection lost: %s", cn->error);
  for (long i = 0; i < n_sent; i++)
    if (calls[i].conn == cn) finish(&calls[i], -1, 0, detail);
  nghttp2_session_del(cn->session);
  cn->session = NULL;
  SSL_free(cn->ssl);
  cn->ssl = NULL;
  close(cn->fd);
  cn->fd = -1;
}

static void session_failed(struct conn *cn, int rv) {
  conn_failed(cn, cn->error[0] ? cn->error : nghttp2_strerror(rv));
}

/* Frames what nghttp2 has queued and writes it; 0, or the nghttp2 error that ended the connection. */
static int send_pending(struct conn *cn) {
  for (;;) {
    uint64_t before = cn->framed;
    int rv = nghttp2_session_send(cn->session);
    if (rv != 0) return rv;
    if (!write_out(cn)) return NGHTTP2_ERR_CALLBACK_FAILURE;
    // Done, blocked on the socket, or nghttp2 held back (flow control): poll again.
    if (cn->out_len > 0 || cn->framed == before || !nghttp2_session_want_write(cn->session)) return 0;
  }
}

static void flush(struct conn *cn) {
  if (cn->dead) return;
  int rv = send_pending(cn);
  if (rv != 0) session_failed(cn, rv);
}

static void service(struct conn *cn, short revents) {
  if (cn->dead) return;
  bool retry_read = cn->read_wants_write && (revents & POLLOUT);
  cn->io_wants_write = cn->read_wants_write = false;
  if ((revents & (POLLIN | POLLHUP | POLLERR)) || retry_read) {
    int rv = nghttp2_session_recv(cn->session);
    if (rv != 0) {
      session_failed(cn, rv);
      return;
    }
  }
  flush(cn);
  if (!cn->dead && !nghttp2_session_want_read(cn->session) && !nghttp2_session_want_write(cn->session))
    conn_failed(cn, "server ended the HTTP/2 session (GOAWAY)");
}

static bool wait_fd(int fd, short events, double give_up_at) {
  for (;;) {
    double left = give_up_at - now_ms();
    if (left <= 0) return false;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)left + 1);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) fail("poll: %s", strerror(errno));
  }
}

static bool name_char(char ch, bool first) {
  if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) return true;
  return !first && (ch == '.' || ch == '_' || ch == '@' || ch == '-');
}

/*
 * The peer's identity as identityFromSubjectAltName (shared/peer-identity.ts) reads it: the one
 * URI SAN of the form umbra://<role>/<name>. Writes "role/name", or "(none)" when there is not
 * exactly one; returns whether the role is coordinator.
 */
static bool peer_is_coordinator(X509 *cert, char *who, size_t wholen) {
  static const char *const roles[] = {"coordinator", "agent", "operator"};
  GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  int found = 0, role = -1;
  snprintf(who, wholen, "(none)");
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
    if (gn->type != GEN_URI) continue;
    const char *uri = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
    size_t len = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
    if (len < 8 || memcmp(uri, "umbra://", 8) != 0) continue;
    for (int r = 0; r < 3; r++) {
      size_t rl = strlen(roles[r]);
      const char *name = uri + 8 + rl + 1;
      size_t nl = len - 8 - rl - 1;
      if (len < 8 + rl + 2 || memcmp(uri + 8, roles[r], rl) != 0 || uri[8 + rl] != '/' || nl > 63) continue;
      bool ok = true;
      for (size_t k = 0; k < nl && ok; k++) ok = name_char(name[k], k == 0);
      if (!ok) continue;
      if (found++ == 0) {
        char copy[64];
        memcpy(copy, name, nl);
        copy[nl] = '\0';
        role = r;
        snprintf(who, wholen, "%s/%s", roles[r], copy);
      }
    }
  }
  GENERAL_NAMES_free(sans);
  if (found != 1) snprintf(who, wholen, "(none)");
  return found == 1 && role == 0;
}

static void conn_open(struct conn *cn, int index, struct addrinfo *addrs, SSL_CTX *ctx) {
  double give_up_at = now_ms() + CONNECT_TIMEOUT_MS;
  const char *why = "no address";
  cn->index = index;
  cn->fd = -1;
  for (struct addrinfo *ai = addrs; ai && cn->fd < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail("socket: %s", strerror(errno));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      why = strerror(errno);
      close(fd);
      continue;
    }
    if (!wait_fd(fd, POLLOUT, give_up_at)) fail("cannot connect to %s: no answer within %.0f ms", endpoint, CONNECT_TIMEOUT_MS);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr != 0) {
      why = strerror(soerr);
      close(fd);
      continue;
    }
    cn->fd = fd;
  }
  if (cn->fd < 0) fail("cannot connect to %s: %s", endpoint, why);
  // Each request is one small write: do not let Nagle hold it for the previous one's ACK.
  int one = 1;
  setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  cn->ssl = SSL_new(ctx);
  if (!cn->ssl) fail("SSL_new: %s", ssl_errors());
  SSL_set_fd(cn->ssl, cn->fd);
  SSL_set_tlsext_host_name(cn->ssl, SERVER_NAME);
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(cn->ssl);
    if (r == 1) break;
    int err = SSL_get_error(cn->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait_fd(cn->fd, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, give_up_at))
        fail("TLS handshake with %s: no answer within %.0f ms", endpoint, CONNECT_TIMEOUT_MS);
      continue;
    }
    char detail[512];
    describe_ssl_failure(err, detail, sizeof detail);
    long verify = SSL_get_verify_result(cn->ssl);
    if (verify != X509_V_OK) fail("TLS handshake with %s failed: server certificate rejected: %s", endpoint, X509_verify_cert_error_string(verify));
    fail("TLS handshake with %s failed: %s", endpoint, detail);
  }
  const unsigned char *proto;
  unsigned proto_len;
  SSL_get0_alpn_selected(cn->ssl, &proto, &proto_len);
  if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) fail("%s did not agree to HTTP/2 (ALPN h2)", endpoint);
  X509 *peer = SSL_get1_peer_certificate(cn->ssl);
  if (!peer) fail("%s presented no certificate", endpoint);
  char who[128];
  if (!peer_is_coordinator(peer, who, sizeof who)) fail("server identity %s is not the expected coordinator", who);
  X509_free(peer);

  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_send_callback(cb, send_cb);
  nghttp2_session_callbacks_set_recv_callback(cb, recv_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  if (nghttp2_session_client_new(&cn->session, cb, cn) != 0) fail("nghttp2_session_client_new failed");
  nghttp2_session_callbacks_del(cb);
  // A 64 KiB window holds two answers of a 200-host cluster; see FLOW_CONTROL_WINDOW_BYTES.
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, FLOW_CONTROL_WINDOW_BYTES},
  };
  int rv = nghttp2_submit_settings(cn->session, NGHTTP2_FLAG_NONE, settings, sizeof settings / sizeof settings[0]);
  if (rv == 0) rv = nghttp2_session_set_local_window_size(cn->session, NGHTTP2_FLAG_NONE, 0, FLOW_CONTROL_WINDOW_BYTES);
  if (rv != 0) fail("HTTP/2 settings: %s", nghttp2_strerror(rv));
  rv = send_pending(cn);
  if (rv != 0) fail("HTTP/2 preface to %s: %s", endpoint, cn->error[0] ? cn->error : nghttp2_strerror(rv));
}

static SSL_CTX *tls_context(const char *ca, const char *cert, const char *key) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) fail("SSL_CTX_new: %s", ssl_errors());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // The cluster CA alone, as Node's `ca` option: the system roots are not trusted.
  if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) fail("cannot load CA %s: %s", ca, ssl_errors());
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) fail("cannot load certificate %s: %s", cert, ssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) fail("cannot load key %s: %s", key, ssl_errors());
  if (SSL_CTX_check_private_key(ctx) != 1) fail("key %s does not match certificate %s: %s", key, cert, ssl_errors());
  // Chain checked against the CA; the host name is not (peer_is_coordinator checks the identity).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  static const unsigned char alpn[] = {2, 'h', '2'};
  if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn) != 0) fail("cannot set ALPN");
  // A blocked write is retried from conn.out, which may have grown (moved) and gained bytes since.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read the socket in large chunks, not each TLS record's header and body separately.
  SSL_CTX_set_read_ahead(ctx, 1);
  return ctx;
}

/* ---- The loop */

static void submit(struct call *c, struct conn *cn) {
  static const nghttp2_data_provider body = {.read_callback = read_request};
  c->conn = cn;
  c->stream_id = -1;
  n_sent++;
  if (cn->dead) {
    char detail[320];
    snprintf(detail, sizeof detail, "connection lost: %s", cn->error);
    finish(c, -1, 0, detail);
    return;
  }
  int32_t id = nghttp2_submit_request(cn->session, NULL, request_headers, sizeof request_headers / sizeof request_headers[0], &body, c);
  if (id < 0) finish(c, -1, 0, nghttp2_strerror(id));
  else c->stream_id = id;
}

/* The deadline is enforced here too (as a client library would), not only by the server. */
static void sweep(double now) {
  while (oldest < n_sent && (calls[oldest].finished || calls[oldest].expired)) oldest++;
  // Calls go out in index order, so the ones past their deadline come first.
  for (long i = oldest; i < n_sent && now - calls[i].sent_at > DEADLINE_MS; i++) {
    struct call *c = &calls[i];
    if (c->finished || c->expired) continue;
    c->expired = true;
    struct conn *cn = c->conn;
    // A stream nghttp2 has not opened yet (still queued) gets no close callback: end it here.
    if (cn->dead || c->stream_id < 0 || !nghttp2_session_find_stream(cn->session, c->stream_id)) {
      finish(c, -1, 0, "deadline exceeded");
      continue;
    }
    nghttp2_submit_rst_stream(cn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
  }
  for (int k = 0; k < CONNECTIONS; k++) flush(&conns[k]);
}

static double next_deadline(void) {
  for (long i = oldest; i < n_sent; i++)
    if (!calls[i].finished && !calls[i].expired) return calls[i].sent_at + DEADLINE_MS;
  return INFINITY;
}

/* Waits for I/O until `wake_at` (or the next deadline) and handles what arrived. */
static void pump(double wake_at) {
  double until = next_deadline();
  if (wake_at < until) until = wake_at;
  struct pollfd p[CONNECTIONS];
  for (int k = 0; k < CONNECTIONS; k++) {
    p[k].fd = conns[k].dead ? -1 : conns[k].fd;
    p[k].events = POLLIN | (conns[k].io_wants_write ? POLLOUT : 0);
    p[k].revents = 0;
  }
  struct timespec ts, *tsp = NULL;
  if (until != INFINITY) {
    double d = until - now_ms();
    if (d < 0) d = 0;
    ts.tv_sec = (time_t)(d / 1000);
    ts.tv_nsec = (long)((d - ts.tv_sec * 1000.0) * 1e6);
    if (ts.tv_nsec > 999999999) ts.tv_nsec = 999999999;
    tsp = &ts;
  }
  if (ppoll(p, CONNECTIONS, tsp, NULL) < 0 && errno != EINTR) fail("ppoll: %s", strerror(errno));
  for (int k = 0; k < CONNECTIONS; k++)
    if (p[k].revents) service(&conns[k], p[k].revents);
  sweep(now_ms());
}

/* ---- Report */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quantile(const double *sorted, long n, double p) {
  if (n == 0) return NAN;
  long i = (long)floor_d(p * (double)n);
  return sorted[i < n - 1 ? i : n - 1];
}

/* As Math.round(x * 1000) / 1000 through JSON.stringify (NaN is null). */
static void put_ms(FILE *f, double x) {
  if (isnan(x) || isinf(x)) {
    fputs("null", f);
    return;
  }
  double r = floor_d(x * 1000 + 0.5) / 1000;
  char b[64];
  snprintf(b, sizeof b, "%.3f", r);
  char *e = b + strlen(b) - 1;
  while (*e == '0') *e-- = '\0';
  if (*e == '.') *e = '\0';
  fputs(strcmp(b, "-0") == 0 ? "0" : b, f);
}

/* The shortest plain decimal that reads back as x, as JSON.stringify prints it. */
static void put_exact(FILE *f, double x) {
  if (isnan(x) || isinf(x)) {
    fputs("null", f);
    return;
  }
  char b[64];
  for (int d = 0; d <= 20; d++) {
    snprintf(b, sizeof b, "%.*f", d, x);
    if (strtod(b, NULL) == x) break;
  }
  fputs(b, f);
}

static void report(double elapsed_s) {
  qsort(send_lags, (size_t)n_send_lags, sizeof(double), cmp_double);
  double *fs = malloc(sizeof(double) * (size_t)(n_latencies + 1));
  double *bucket = malloc(sizeof(double) * (size_t)(n_latencies + 1));
  if (!fs || !bucket) fail("out of memory");
  memcpy(fs, from_send, sizeof(double) * (size_t)n_latencies);
  qsort(fs, (size_t)n_latencies, sizeof(double), cmp_double);

  FILE *f = stdout;
  fprintf(f, "{\"calls\":%ld,\"errors\":%ld,\"wrongCount\":%ld,\"achievedRate\":", n_latencies, errors, wrong_count);
  put_exact(f, (double)n_latencies / elapsed_s);
  fputs(",\"sendLagP50Ms\":", f);
  put_ms(f, quantile(send_lags, n_send_lags, 0.5));
  fputs(",\"sendLagP99Ms\":", f);
  put_ms(f, quantile(send_lags, n_send_lags, 0.99));
  fputs(",\"fromSendP50Ms\":", f);
  put_ms(f, quantile(fs, n_latencies, 0.5));
  fputs(",\"fromSendP99Ms\":", f);
  put_ms(f, quantile(fs, n_latencies, 0.99));
  fputs(",\"sendLagMaxMs\":", f);
  put_ms(f, n_send_lags ? send_lags[n_send_lags - 1] : NAN);
  qsort(ramp_latencies, (size_t)n_ramp, sizeof(double), cmp_double);
  fprintf(f, ",\"rampCalls\":%ld,\"rampP99Ms\":", n_ramp);
  put_ms(f, quantile(ramp_latencies, n_ramp, 0.99));
  fputs(",\"p99BySecondMs\":[", f);
  for (int s = 0; s < seconds; s++) {
    long n = 0;
    for (long i = 0; i < n_latencies; i++)
      if (latency_second[i] == s) bucket[n++] = latencies[i];
    qsort(bucket, (size_t)n, sizeof(double), cmp_double);
    if (s > 0) fputc(',', f);
    put_ms(f, quantile(bucket, n, 0.99));
  }
  fputs("],\"latenciesMs\":[", f);
  for (long i = 0; i < n_latencies; i++) {
    if (i > 0) fputc(',', f);
    put_ms(f, latencies[i]);
  }
  fputs("]}\n", f);
  if (fflush(f) != 0) fail("writing the report: %s", strerror(errno));
  free(fs);
  free(bucket);
}

/* ---- Main */

static double parse_number(const char *what, const char *s) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || isnan(v) || isinf(v)) fail("%s must be a number, not \"%s\"", what, s);
  return v;
}

static void set_header(nghttp2_nv *nv, const char *name, const char *value) {
  *nv = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

int main(int argc, char **argv) {
  if (argc != 8 && argc != 9) {
    fprintf(stderr, "usage: list-load HOST:PORT CA CERT KEY RATE SECONDS EXPECTED_HOSTS [RAMP_SECONDS]\n");
    return 2;
  }
  endpoint = argv[1];
  rate = parse_number("RATE", argv[5]);
  double secs = parse_number("SECONDS", argv[6]);
  double hosts = parse_number("EXPECTED_HOSTS", argv[7]);
  double ramp = argc == 9 ? parse_number("RAMP_SECONDS", argv[8]) : 0;
  if (ramp < 0 || ramp > 3600 || ramp != floor_d(ramp)) fail("RAMP_SECONDS must be a whole number from 0");
  ramp_seconds = (int)ramp;
  if (rate <= 0) fail("RATE must be above 0");
  if (secs < 1 || secs > 86400 || secs != floor_d(secs)) fail("SECONDS must be a whole number from 1");
  if (hosts < 0 || hosts != floor_d(hosts)) fail("EXPECTED_HOSTS must be a whole number");
  seconds = (int)secs;
  expected_hosts = (long)hosts;
  // The schedule sends every call due before the end, the last one possibly a fraction early.
  double exact_total = rate * (ramp_seconds + seconds);
  total = (long)exact_total;
  if ((double)total < exact_total) total++;
  if (total > 100000000) fail("RATE x SECONDS is more than 10^8 calls");

  char host[256], port[16];
  const char *colon = strrchr(endpoint, ':');
  if (!colon || colon == endpoint || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port || (size_t)(colon - endpoint) >= sizeof host)
    fail("endpoint must be HOST:PORT, not \"%s\"", endpoint);
  const char *h = endpoint;
  size_t hl = (size_t)(colon - endpoint);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') h++, hl -= 2;
  memcpy(host, h, hl);
  host[hl] = '\0';
  snprintf(port, sizeof port, "%s", colon + 1);

  // A write to a connection the server has closed is an error to report, not a silent exit.
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOFBF, 1 << 20);

  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *addrs;
  int gai = getaddrinfo(host, port, &hints, &addrs);
  if (gai != 0) fail("cannot resolve %s: %s", endpoint, gai_strerror(gai));
  SSL_CTX *ctx = tls_context(argv[2], argv[3], argv[4]);

  set_header(&request_headers[0], ":method", "POST");
  set_header(&request_headers[1], ":scheme", "https");
  set_header(&request_headers[2], ":authority", endpoint);
  set_header(&request_headers[3], ":path", LIST_HOSTS_PATH);
  set_header(&request_headers[4], "content-type", "application/grpc");
  set_header(&request_headers[5], "te", "trailers");
  set_header(&request_headers[6], "grpc-timeout", "10000m");

  n_calls = WARMUP_CALLS + total;
  calls = calloc((size_t)n_calls, sizeof *calls);
  latencies = malloc(sizeof(double) * (size_t)total);
  from_send = malloc(sizeof(double) * (size_t)total);
  send_lags = malloc(sizeof(double) * (size_t)total);
  latency_second = malloc(sizeof(int) * (size_t)total);
  ramp_latencies = malloc(sizeof(double) * (size_t)total);
  if (!calls || !latencies || !from_send || !send_lags || !latency_second || !ramp_latencies) fail("out of memory for %ld calls", total);

  for (int k = 0; k < CONNECTIONS; k++) conn_open(&conns[k], k, addrs, ctx);
  freeaddrinfo(addrs);
  SSL_CTX_free(ctx); /* each connection holds a reference */

  for (long i = 0; i < WARMUP_CALLS; i++) {
    struct call *c = &calls[i];
    c->warmup = true;
    c->sent_at = now_ms();
    struct conn *cn = &conns[i % CONNECTIONS];
    submit(c, cn);
    flush(cn);
    while (!c->finished) pump(INFINITY);
    if (c->code != 0) fail("warm-up call failed: %d %s", c->code, warm_detail);
    if (c->count != expected_hosts) fail("raw count %ld disagrees with the decoded answer (%ld hosts)", c->count, expected_hosts);
  }

  double start = now_ms();
  run_start = start + ramp_seconds * 1000.0;
  long sent = 0;
  while (completed < total) {
    // Every call due by now goes out: the schedule, not the answers, sets the pace.
    long due = (long)((now_ms() - start) / 1000 * rate) + 1;
    if (due > total) due = total;
    bool any = false;
    bool touched[CONNECTIONS] = {false};
    while (sent < due) {
      struct call *c = &calls[WARMUP_CALLS + sent];
      c->scheduled_at = start + (double)sent * 1000 / rate;
      c->sent_at = now_ms();
      if (c->scheduled_at >= run_start) send_lags[n_send_lags++] = c->sent_at - c->scheduled_at;
      submit(c, &conns[sent % CONNECTIONS]);
      touched[sent % CONNECTIONS] = any = true;
      sent++;
    }
    if (any)
      for (int k = 0; k < CONNECTIONS; k++)
        if (touched[k]) flush(&conns[k]);
    if (completed >= total) break;
    pump(sent < total ? start + (double)sent * 1000 / rate : INFINITY);
  }
  double elapsed_s = (now_ms() - run_start) / 1000;

  for (int k = 0; k < CONNECTIONS; k++) {
    struct conn *cn = &conns[k];
    if (cn->dead) continue;
    nghttp2_session_terminate_session(cn->session, NGHTTP2_NO_ERROR);
    send_pending(cn);
    SSL_shutdown(cn->ssl);
  }
  report(elapsed_s);
  return 0;
}
