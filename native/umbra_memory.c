/* N-API addon: the system calls Node lacks for memory shadowing (userfaultfd, pidfd_getfd,
 * PAGEMAP_SCAN, soft-dirty pagemap bits, hole punching) and an xxh64 page hasher.
 * Kept deliberately thin: every decision lives in TypeScript (agent/memory). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pcap-capture.h"
#include "uffd-abi.h"
#include "page-hash.h"
#include "xxh64.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define SCAN_VEC_LEN 4096
#define HASH_CHUNK_BYTES (256 * 1024)
#define PAGEMAP_CHUNK_ENTRIES 4096

/* Throws an Error whose .code is the errno name (EPERM, ENOSYS...) and whose message names the call. */
static napi_value throw_errno(napi_env env, const char *call, int err) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", call, strerror(err), name ? name : "E?");
  napi_throw_error(env, name ? name : "EUNKNOWN", msg);
  return NULL;
}

static napi_value throw_arg(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    throw_arg(env, "missing arguments");
    return 0;
  }
  return 1;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d) {
    throw_arg(env, "expected a number");
    return 0;
  }
  *out = (int64_t)d;
  return 1;
}

static int get_u32_array(napi_env env, napi_value v, uint32_t **data, size_t *len) {
  napi_typedarray_type t;
  void *p;
  if (napi_get_typedarray_info(env, v, &t, len, &p, NULL, NULL) != napi_ok || t != napi_uint32_array) {
    throw_arg(env, "expected a Uint32Array");
    return 0;
  }
  *data = (uint32_t *)p;
  return 1;
}

static int get_u64_array(napi_env env, napi_value v, uint64_t **data, size_t *len) {
  napi_typedarray_type t;
  void *p;
  if (napi_get_typedarray_info(env, v, &t, len, &p, NULL, NULL) != napi_ok || t != napi_biguint64_array) {
    throw_arg(env, "expected a BigUint64Array");
    return 0;
  }
  *data = (uint64_t *)p;
  return 1;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

/* userfaultfdCreate(features): a userfaultfd of this process with the API handshake done. */
static napi_value userfaultfd_create(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t features;
  if (!get_args(env, info, 1, argv) || !get_i64(env, argv[0], &features)) return NULL;
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return throw_errno(env, "userfaultfd", errno);
  struct uffdio_api api = {.api = UFFD_API, .features = (uint64_t)features};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "UFFDIO_API", err);
  }
  return num(env, fd);
}

static napi_value pidfd_open_fn(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t pid;
  if (!get_args(env, info, 1, argv) || !get_i64(env, argv[0], &pid)) return NULL;
  int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  return num(env, fd);
}

static napi_value pidfd_getfd_fn(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t pidfd, target;
  if (!get_args(env, info, 2, argv) || !get_i64(env, argv[0], &pidfd) || !get_i64(env, argv[1], &target)) return NULL;
  int fd = (int)syscall(SYS_pidfd_getfd, (int)pidfd, (int)target, 0);
  if (fd < 0) return throw_errno(env, "pidfd_getfd", errno);
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  return num(env, fd);
}

/* uffdRegisterWp(uffd, startAddress, lengthBytes): registers a range of the fd's owner process. */
static napi_value uffd_register_wp(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, start, len;
  if (!get_args(env, info, 3, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &start) ||
      !get_i64(env, argv[2], &len))
    return NULL;
  struct uffdio_register reg = {.range = {.start = (uint64_t)start, .len = (uint64_t)len}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl((int)fd, UFFDIO_REGISTER, &reg) < 0) return throw_errno(env, "UFFDIO_REGISTER", errno);
  return num(env, (double)reg.ioctls);
}

static napi_value uffd_unregister(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, start, len;
  if (!get_args(env, info, 3, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &start) ||
      !get_i64(env, argv[2], &len))
    return NULL;
  struct uffdio_range range = {.start = (uint64_t)start, .len = (uint64_t)len};
  if (ioctl((int)fd, UFFDIO_UNREGISTER, &range) < 0) return throw_errno(env, "UFFDIO_UNREGISTER", errno);
  return NULL;
}

/* uffdWriteProtect(uffd, startAddress, lengthBytes, protect) */
static napi_value uffd_write_protect(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int64_t fd, start, len;
  bool protect;
  if (!get_args(env, info, 4, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &start) ||
      !get_i64(env, argv[2], &len))
    return NULL;
  if (napi_get_value_bool(env, argv[3], &protect) != napi_ok) return throw_arg(env, "protect must be a boolean");
  struct uffdio_writeprotect wp = {.range = {.start = (uint64_t)start, .len = (uint64_t)len},
                                   .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
  if (ioctl((int)fd, UFFDIO_WRITEPROTECT, &wp) < 0) return throw_errno(env, "UFFDIO_WRITEPROTECT", errno);
  return NULL;
}

/* pagemapScanWritten(pagemapFd, startAddress, lengthBytes, pageSizeBytes, out: Uint32Array):
 * page indexes (relative to start) written since the previous scan, re-protecting them in the same
 * walk. Returns the count; throws E2BIG if `out` cannot hold them all. */
static napi_value pagemap_scan_written(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t fd, start, len, page;
  uint32_t *out;
  size_t cap;
  if (!get_args(env, info, 5, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &start) ||
      !get_i64(env, argv[2], &len) || !get_i64(env, argv[3], &page) || !get_u32_array(env, argv[4], &out, &cap))
    return NULL;
  if (page <= 0) return throw_arg(env, "pageSizeBytes must be positive");
  struct page_region *vec = malloc(sizeof(struct page_region) * SCAN_VEC_LEN);
  if (!vec) return throw_errno(env, "malloc", ENOMEM);
  uint64_t end = (uint64_t)start + (uint64_t)len;
  uint64_t cursor = (uint64_t)start;
  size_t count = 0;
  while (cursor < end) {
    struct pm_scan_arg arg;
    memset(&arg, 0, sizeof arg);
    arg.size = sizeof arg;
    arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    arg.start = cursor;
    arg.end = end;
    arg.vec = (uint64_t)(uintptr_t)vec;
    arg.vec_len = SCAN_VEC_LEN;
    arg.category_mask = PAGE_IS_WRITTEN;
    arg.return_mask = PAGE_IS_WRITTEN;
    long n = ioctl((int)fd, PAGEMAP_SCAN, &arg);
    if (n < 0) {
      int err = errno;
      free(vec);
      return throw_errno(env, "PAGEMAP_SCAN", err);
    }
    for (long i = 0; i < n; i++) {
      for (uint64_t a = vec[i].start; a < vec[i].end; a += (uint64_t)page) {
        if (count >= cap) {
          free(vec);
          return throw_errno(env, "pagemapScanWritten (output full)", E2BIG);
        }
        out[count++] = (uint32_t)((a - (uint64_t)start) / (uint64_t)page);
      }
    }
    if (arg.walk_end <= cursor) break; /* no progress: the kernel walked nothing */
    cursor = arg.walk_end;
  }
  free(vec);
  return num(env, (double)count);
}

/* pagemapSoftDirty(pagemapFd, startAddress, pageCount, pageSizeBytes, out: Uint32Array):
 * indexes of pages whose pagemap entry has bit 55 (soft-dirty) set. Returns the count. */
static napi_value pagemap_soft_dirty(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t fd, start, pages, page;
  uint32_t *out;
  size_t cap;
  if (!get_args(env, info, 5, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &start) ||
      !get_i64(env, argv[2], &pages) || !get_i64(env, argv[3], &page) || !get_u32_array(env, argv[4], &out, &cap))
    return NULL;
  if (page <= 0) return throw_arg(env, "pageSizeBytes must be positive");
  uint64_t entries[PAGEMAP_CHUNK_ENTRIES];
  size_t count = 0;
  off_t base = (off_t)((uint64_t)start / (uint64_t)page) * 8;
  for (int64_t done = 0; done < pages;) {
    int64_t want = pages - done < PAGEMAP_CHUNK_ENTRIES ? pages - done : PAGEMAP_CHUNK_ENTRIES;
    ssize_t got = pread((int)fd, entries, (size_t)want * 8, base + done * 8);
    if (got < 0) return throw_errno(env, "pread pagemap", errno);
    if (got == 0) break;
    int64_t n = got / 8;
    for (int64_t i = 0; i < n; i++) {
      if (entries[i] & (1ULL << 55)) {
        if (count >= cap) return throw_errno(env, "pagemapSoftDirty (output full)", E2BIG);
        out[count++] = (uint32_t)(done + i);
      }
    }
    done += n;
  }
  return num(env, (double)count);
}

/* xxh64(buffer[, seedLow32]): BigInt hash of the whole buffer. */
static napi_value xxh64_fn(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  size_t len;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) return throw_arg(env, "expected a Buffer");
  napi_value v;
  napi_create_bigint_uint64(env, xxh64(data, len, 0), &v);
  return v;
}

/* hashPages(buffer, pageSizeBytes, out: BigUint64Array, outOffset): xxh64 of each page of buffer. */
static napi_value hash_pages(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  void *data;
  size_t len, cap;
  int64_t page, off;
  uint64_t *out;
  if (!get_args(env, info, 4, argv)) return NULL;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) return throw_arg(env, "expected a Buffer");
  if (!get_i64(env, argv[1], &page) || !get_u64_array(env, argv[2], &out, &cap) || !get_i64(env, argv[3], &off)) return NULL;
  if (page <= 0) return throw_arg(env, "pageSizeBytes must be positive");
  size_t pages = len / (size_t)page;
  if (off < 0 || (size_t)off + pages > cap) return throw_arg(env, "out too small");
  for (size_t i = 0; i < pages; i++) out[off + i] = xxh64((const uint8_t *)data + i * (size_t)page, (size_t)page, 0);
  return num(env, (double)pages);
}

/* hashFdPages(fd, offsetBytes, pageCount, pageSizeBytes, out: BigUint64Array, outOffset): reads the
 * pages with pread in small cache-resident chunks and stores xxh64 of each. Returns pages hashed. */
static napi_value hash_fd_pages(napi_env env, napi_callback_info info) {
  static uint8_t chunk[HASH_CHUNK_BYTES] __attribute__((aligned(4096)));
  napi_value argv[6];
  int64_t fd, offset, pages, page, outOff;
  uint64_t *out;
  size_t cap;
  if (!get_args(env, info, 6, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &offset) ||
      !get_i64(env, argv[2], &pages) || !get_i64(env, argv[3], &page) || !get_u64_array(env, argv[4], &out, &cap) ||
      !get_i64(env, argv[5], &outOff))
    return NULL;
  if (page <= 0 || page > HASH_CHUNK_BYTES) return throw_arg(env, "pageSizeBytes out of range");
  if (outOff < 0 || (uint64_t)outOff + (uint64_t)pages > cap) return throw_arg(env, "out too small");
  int64_t perChunk = HASH_CHUNK_BYTES / page;
  int64_t done = 0;
  while (done < pages) {
    int64_t want = pages - done < perChunk ? pages - done : perChunk;
    ssize_t got = pread((int)fd, chunk, (size_t)(want * page), offset + done * page);
    if (got < 0) {
      if (errno == EINTR) continue;
      return throw_errno(env, "pread", errno);
    }
    int64_t n = got / page;
    if (n == 0) break;
    for (int64_t i = 0; i < n; i++) out[outOff + done + i] = xxh64(chunk + i * page, (size_t)page, 0);
    done += n;
  }
  return num(env, (double)done);
}

/* A read-only shared mapping of a guest RAM file (memfd via /proc/PID/map_files), so pages are
 * hashed where they are instead of being copied out first. */
typedef struct {
  uint8_t *base;
  size_t length;
} mapping_t;

static void mapping_finalize(napi_env env, void *data, void *hint) {
  mapping_t *m = (mapping_t *)data;
  if (m->base) munmap(m->base, m->length);
  free(m);
}

/* mapShared(fd, lengthBytes, offsetBytes): an external handle; unmapShared(handle) releases it early. */
static napi_value map_shared(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, len, off;
  if (!get_args(env, info, 3, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &len) ||
      !get_i64(env, argv[2], &off))
    return NULL;
  if (len <= 0) return throw_arg(env, "lengthBytes must be positive");
  void *base = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, (int)fd, (off_t)off);
  if (base == MAP_FAILED) return throw_errno(env, "mmap", errno);
  mapping_t *m = malloc(sizeof *m);
  if (!m) {
    munmap(base, (size_t)len);
    return throw_errno(env, "malloc", ENOMEM);
  }
  m->base = base;
  m->length = (size_t)len;
  napi_value v;
  napi_create_external(env, m, mapping_finalize, NULL, &v);
  return v;
}

static mapping_t *get_mapping(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || !data) {
    throw_arg(env, "expected a mapping handle");
    return NULL;
  }
  return (mapping_t *)data;
}

static napi_value unmap_shared(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  mapping_t *m = get_mapping(env, argv[0]);
  if (!m) return NULL;
  if (m->base) munmap(m->base, m->length);
  m->base = NULL;
  return NULL;
}

/* hashMappedPages(handle, firstPage, pageCount, pageSizeBytes, out: BigUint64Array, outOffset):
 * the page-change hash (page-hash.h) of each page, read in place. */
static napi_value hash_mapped_pages(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int64_t first, pages, page, outOff;
  uint64_t *out;
  size_t cap;
  if (!get_args(env, info, 6, argv)) return NULL;
  mapping_t *m = get_mapping(env, argv[0]);
  if (!m) return NULL;
  if (!get_i64(env, argv[1], &first) || !get_i64(env, argv[2], &pages) || !get_i64(env, argv[3], &page) ||
      !get_u64_array(env, argv[4], &out, &cap) || !get_i64(env, argv[5], &outOff))
    return NULL;
  if (!m->base) return throw_arg(env, "mapping was released");
  if (page < 64 || page % 64 || first < 0 || pages < 0 || (uint64_t)(first + pages) * (uint64_t)page > m->length)
    return throw_arg(env, "page range outside the mapping");
  if (outOff < 0 || (uint64_t)outOff + (uint64_t)pages > cap) return throw_arg(env, "out too small");
  for (int64_t i = 0; i < pages; i++) out[outOff + i] = page_hash(m->base + (first + i) * page, (size_t)page);
  return num(env, (double)pages);
}

/* sumMappedWords(handle, offsetBytes, lengthBytes): reads every 8-byte word (the raw read rate of
 * the same memory, for benchmarks) and returns a checksum so the loop cannot be optimised away. */
static napi_value sum_mapped_words(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t off, len;
  if (!get_args(env, info, 3, argv)) return NULL;
  mapping_t *m = get_mapping(env, argv[0]);
  if (!m) return NULL;
  if (!get_i64(env, argv[1], &off) || !get_i64(env, argv[2], &len)) return NULL;
  if (!m->base || off < 0 || len < 0 || (uint64_t)(off + len) > m->length) return throw_arg(env, "range outside the mapping");
  const uint64_t *w = (const uint64_t *)(m->base + off);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t n = (size_t)len / 32;
  for (size_t i = 0; i < n; i++) {
    s0 += w[4 * i];
    s1 += w[4 * i + 1];
    s2 += w[4 * i + 2];
    s3 += w[4 * i + 3];
  }
  napi_value v;
  napi_create_bigint_uint64(env, s0 ^ s1 ^ s2 ^ s3, &v);
  return v;
}

/* punchHole(fd, offsetBytes, lengthBytes): deallocates a range of a file, keeping its size. */
static napi_value punch_hole(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, offset, len;
  if (!get_args(env, info, 3, argv) || !get_i64(env, argv[0], &fd) || !get_i64(env, argv[1], &offset) ||
      !get_i64(env, argv[2], &len))
    return NULL;
  if (fallocate((int)fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) < 0)
    return throw_errno(env, "fallocate(PUNCH_HOLE)", errno);
  return NULL;
}

/* mallocRetain(trimThresholdBytes, mmapThresholdBytes): glibc keeps up to trimThresholdBytes of
 * freed memory at the top of its heap instead of returning it to the kernel, and serves blocks
 * below mmapThresholdBytes from that heap. Returns false where malloc is not glibc's. */
static napi_value malloc_retain(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t trim, mmap_threshold;
  if (!get_args(env, info, 2, argv) || !get_i64(env, argv[0], &trim) || !get_i64(env, argv[1], &mmap_threshold)) return NULL;
  int ok = 0;
#ifdef __GLIBC__
  if (trim > 0 && trim <= INT32_MAX && mmap_threshold > 0 && mmap_threshold <= INT32_MAX)
    ok = mallopt(M_TRIM_THRESHOLD, (int)trim) == 1 && mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1;
#endif
  napi_value v;
  napi_get_boolean(env, ok, &v);
  return v;
}

static napi_value page_size(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, (double)sysconf(_SC_PAGESIZE));
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"userfaultfdCreate", NULL, userfaultfd_create, NULL, NULL, NULL, napi_default, NULL},
      {"pidfdOpen", NULL, pidfd_open_fn, NULL, NULL, NULL, napi_default, NULL},
      {"pidfdGetfd", NULL, pidfd_getfd_fn, NULL, NULL, NULL, napi_default, NULL},
      {"uffdRegisterWp", NULL, uffd_register_wp, NULL, NULL, NULL, napi_default, NULL},
      {"uffdUnregister", NULL, uffd_unregister, NULL, NULL, NULL, napi_default, NULL},
      {"uffdWriteProtect", NULL, uffd_write_protect, NULL, NULL, NULL, napi_default, NULL},
      {"pagemapScanWritten", NULL, pagemap_scan_written, NULL, NULL, NULL, napi_default, NULL},
      {"pagemapSoftDirty", NULL, pagemap_soft_dirty, NULL, NULL, NULL, napi_default, NULL},
      {"xxh64", NULL, xxh64_fn, NULL, NULL, NULL, napi_default, NULL},
      {"hashPages", NULL, hash_pages, NULL, NULL, NULL, napi_default, NULL},
      {"hashFdPages", NULL, hash_fd_pages, NULL, NULL, NULL, napi_default, NULL},
      {"mapShared", NULL, map_shared, NULL, NULL, NULL, napi_default, NULL},
      {"unmapShared", NULL, unmap_shared, NULL, NULL, NULL, napi_default, NULL},
      {"hashMappedPages", NULL, hash_mapped_pages, NULL, NULL, NULL, napi_default, NULL},
      {"sumMappedWords", NULL, sum_mapped_words, NULL, NULL, NULL, napi_default, NULL},
      {"punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default, NULL},
      {"pageSize", NULL, page_size, NULL, NULL, NULL, napi_default, NULL},
      {"mallocRetain", NULL, malloc_retain, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value features;
  napi_create_double(env, UMBRA_UFFD_FEATURES, &features);
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_set_named_property(env, exports, "UFFD_FEATURES_WP_ASYNC", features);
  umbra_pcap_capture_define(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
