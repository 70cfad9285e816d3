/* Live libpcap capture for the DHCP sniffer, delivering frames in batches: the selectable fd of a
 * non-blocking pcap handle is watched with uv_poll; when readable, pcap_dispatch copies frames
 * into fixed-size slots of one JS-owned batch buffer (lengths in a Uint32Array) and ONE JS
 * callback gets the count, so the per-frame cost is a memcpy. After a wakeup that delivered
 * frames, polling pauses for `delayMs` (a uv timer) so frames arriving meanwhile come in one
 * batch: in immediate mode each frame would otherwise wake the loop on its own. Part of the
 * umbra_memory addon (umbra_memory.c's init calls umbra_pcap_capture_define()). Decoding, accounting (truncation,
 * counter wrap) and error mapping live in TypeScript (agent/dhcp/pcap-capture.ts).
 *
 * Lifetime: the C state (struct capture) is owned by the JS handle object (napi_wrap). The C side
 * holds the handle only weakly, so a handle nobody references is collected and its finalizer
 * closes the capture. pcapClose() closes at once; an env cleanup hook closes at exit. The struct
 * is freed once both the handle was finalized and uv has closed the poll and timer handles. */
#define _GNU_SOURCE
#include <node_api.h>
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "pcap-capture.h"

/* Batches delivered per readable event at most, so a flood cannot starve the event loop (the
 * poll is level-triggered: what is left is read on the next loop turn). */
#define MAX_BATCHES_PER_WAKEUP 16

struct capture {
  napi_env env;
  pcap_t *pcap;
  uv_poll_t poll;
  uv_timer_t delay;     /* pause between wakeups, so frames gather into batches */
  uint32_t delay_ms;
  int uv_open;          /* uv handles initialized and not yet closed */
  int closed;           /* pcap closed, poll and timer stopped */
  int poll_closed;      /* every uv close callback ran (or none was needed) */
  int finalized;        /* JS handle collected */
  int hook_registered;  /* env cleanup hook in place */
  napi_ref handle_ref;  /* weak: the JS handle (holds onBatch, batch and meta) */
  napi_async_context async_ctx;
  uint8_t *batch;       /* slot i at batch + i * slot_bytes */
  uint32_t *meta;       /* per slot: captured length, original length */
  uint32_t slot_bytes;
  uint32_t slots;
  uint32_t count;       /* frames in the current batch */
};

static napi_value pc_throw(napi_env env, const char *code, const char *what, const char *detail) {
  char msg[PCAP_ERRBUF_SIZE + 160];
  snprintf(msg, sizeof msg, "%s: %s", what, detail);
  napi_throw_error(env, code, msg);
  return NULL;
}

static void pc_maybe_free(struct capture *c) {
  if (c->finalized && c->poll_closed) free(c);
}

static void pc_on_uv_closed(uv_handle_t *h) {
  struct capture *c = h->data;
  if (--c->uv_open > 0) return;
  c->poll_closed = 1;
  pc_maybe_free(c);
}

static void pc_cleanup_hook(void *arg);

/* Stops polling and closes the pcap handle; idempotent. No N-API calls except the hook removal,
 * so it is safe from the env cleanup hook. */
static void pc_close(struct capture *c, int from_hook) {
  if (c->closed) return;
  c->closed = 1;
  if (c->uv_open > 0) {
    if (c->poll.data) {
      uv_poll_stop(&c->poll);
      uv_close((uv_handle_t *)&c->poll, pc_on_uv_closed);
    }
    if (c->delay.data) {
      uv_timer_stop(&c->delay);
      uv_close((uv_handle_t *)&c->delay, pc_on_uv_closed);
    }
  } else {
    c->poll_closed = 1;
  }
  if (c->pcap) pcap_close(c->pcap);
  c->pcap = NULL;
  if (c->hook_registered && !from_hook) napi_remove_env_cleanup_hook(c->env, pc_cleanup_hook, c);
  c->hook_registered = 0;
}

static void pc_cleanup_hook(void *arg) {
  struct capture *c = arg;
  c->hook_registered = 0;
  pc_close(c, 1);
}

static void pc_finalize(napi_env env, void *data, void *hint) {
  struct capture *c = data;
  pc_close(c, 0);
  if (c->handle_ref) napi_delete_reference(env, c->handle_ref);
  c->handle_ref = NULL;
  if (c->async_ctx) napi_async_destroy(env, c->async_ctx);
  c->async_ctx = NULL;
  c->finalized = 1;
  pc_maybe_free(c);
}

static void pc_on_frame(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
  struct capture *c = (struct capture *)user;
  if (c->count >= c->slots) return; /* cannot happen: dispatch is bounded by the free slots */
  uint32_t n = h->caplen < c->slot_bytes ? h->caplen : c->slot_bytes;
  memcpy(c->batch + (size_t)c->count * c->slot_bytes, bytes, n);
  c->meta[2 * c->count] = n;
  c->meta[2 * c->count + 1] = h->len;
  c->count++;
}

/* onBatch(count) with frames, or onBatch(-1, message) once on a read error (polling stops). */
static void pc_call(struct capture *c, napi_value handle, int32_t count, const char *error) {
  napi_env env = c->env;
  napi_value fn, argv[2];
  if (napi_get_named_property(env, handle, "onBatch", &fn) != napi_ok) return;
  napi_create_int32(env, count, &argv[0]);
  size_t argc = 1;
  if (error) {
    napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &argv[1]);
    argc = 2;
  }
  napi_value result;
  if (napi_make_callback(env, c->async_ctx, handle, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* as for any callback from the event loop: uncaughtException */
  }
}

static void pc_on_readable(uv_poll_t *h, int status, int events);

static void pc_on_delay(uv_timer_t *t) {
  struct capture *c = t->data;
  if (!c->closed) uv_poll_start(&c->poll, UV_READABLE, pc_on_readable);
}

static void pc_on_readable(uv_poll_t *h, int status, int events) {
  struct capture *c = h->data;
  if (c->closed) return;
  napi_env env = c->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value handle = NULL;
  napi_get_reference_value(env, c->handle_ref, &handle);
  if (handle == NULL) {
    pc_close(c, 0); /* the handle was collected; its finalizer frees the rest */
  } else if (status < 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "polling the capture fd failed: %s", uv_strerror(status));
    uv_poll_stop(&c->poll);
    pc_call(c, handle, -1, msg);
  } else {
    int delivered = 0, failed = 0;
    for (int round = 0; round < MAX_BATCHES_PER_WAKEUP && !c->closed; round++) {
      c->count = 0;
      int r = pcap_dispatch(c->pcap, (int)c->slots, pc_on_frame, (u_char *)c);
      if (r < 0) {
        char msg[PCAP_ERRBUF_SIZE + 40];
        snprintf(msg, sizeof msg, "pcap_dispatch: %s", r == PCAP_ERROR_BREAK ? "loop broken" : pcap_geterr(c->pcap));
        failed = 1;
        uv_poll_stop(&c->poll);
        if (c->count > 0) pc_call(c, handle, (int32_t)c->count, NULL);
        if (!c->closed) pc_call(c, handle, -1, msg);
        break;
      }
      if (c->count > 0) {
        delivered = 1;
        pc_call(c, handle, (int32_t)c->count, NULL);
      }
      if (c->count < c->slots) break; /* the ring is empty */
    }
    if (delivered && !failed && !c->closed && c->delay_ms > 0) {
      uv_poll_stop(&c->poll);
      uv_timer_start(&c->delay, pc_on_delay, c->delay_ms, 0);
    }
  }
  napi_close_handle_scope(env, scope);
}

static int pc_string_arg(napi_env env, napi_value v, char *out, size_t cap) {
  size_t n = 0;
  return napi_get_value_string_utf8(env, v, out, cap, &n) == napi_ok && n > 0 && n < cap - 1;
}

/* pcapOpen(ifname, filter, snaplen, bufferBytes, batch: Buffer, meta: Uint32Array, onBatch, delayMs) ->
 * handle { linkType (DLT number), slots }. Throws EINVAL on bad arguments, EFILTER when the filter
 * does not compile, EPCAP with the pcap error text when the capture cannot be opened. */
static napi_value pcap_open_fn(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  char ifname[256], filter[4096], errbuf[PCAP_ERRBUF_SIZE];
  int32_t snaplen, buffer_bytes, delay_ms;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 8) return pc_throw(env, "EINVAL", "pcapOpen", "expected 8 arguments");
  if (!pc_string_arg(env, argv[0], ifname, sizeof ifname)) return pc_throw(env, "EINVAL", "pcapOpen", "interfaceName must be a non-empty string");
  if (!pc_string_arg(env, argv[1], filter, sizeof filter)) return pc_throw(env, "EINVAL", "pcapOpen", "filter must be a non-empty string under 4 KiB");
  if (napi_get_value_int32(env, argv[2], &snaplen) != napi_ok || snaplen < 64) return pc_throw(env, "EINVAL", "pcapOpen", "snaplen must be an integer >= 64");
  if (napi_get_value_int32(env, argv[3], &buffer_bytes) != napi_ok || buffer_bytes < 65536) return pc_throw(env, "EINVAL", "pcapOpen", "bufferBytes must be an integer >= 65536");
  void *batch = NULL, *meta = NULL;
  size_t batch_len = 0, meta_len = 0;
  bool is_buf = false;
  napi_typedarray_type tt;
  napi_valuetype fnt;
  if (napi_is_buffer(env, argv[4], &is_buf) != napi_ok || !is_buf || napi_get_buffer_info(env, argv[4], &batch, &batch_len) != napi_ok)
    return pc_throw(env, "EINVAL", "pcapOpen", "batch must be a Buffer");
  if (napi_get_typedarray_info(env, argv[5], &tt, &meta_len, &meta, NULL, NULL) != napi_ok || tt != napi_uint32_array)
    return pc_throw(env, "EINVAL", "pcapOpen", "meta must be a Uint32Array");
  if (napi_typeof(env, argv[6], &fnt) != napi_ok || fnt != napi_function) return pc_throw(env, "EINVAL", "pcapOpen", "onBatch must be a function");
  if (napi_get_value_int32(env, argv[7], &delay_ms) != napi_ok || delay_ms < 0 || delay_ms > 1000) return pc_throw(env, "EINVAL", "pcapOpen", "delayMs must be an integer from 0 to 1000");
  size_t slots = batch_len / (size_t)snaplen;
  if (meta_len / 2 < slots) slots = meta_len / 2;
  if (slots < 1 || slots > 1u << 20) return pc_throw(env, "EINVAL", "pcapOpen", "batch must hold 1 to 2^20 frames of snaplen bytes, meta 2 words per frame");

  errbuf[0] = 0;
  pcap_t *p = pcap_create(ifname, errbuf);
  if (!p) return pc_throw(env, "EPCAP", "pcap_create", errbuf);
  const char *step = NULL;
  if (pcap_set_snaplen(p, snaplen) != 0) step = "pcap_set_snaplen";
  else if (pcap_set_promisc(p, 1) != 0) step = "pcap_set_promisc";
  else if (pcap_set_immediate_mode(p, 1) != 0) step = "pcap_set_immediate_mode";
  else if (pcap_set_buffer_size(p, buffer_bytes) != 0) step = "pcap_set_buffer_size";
  if (step) {
    pcap_close(p);
    return pc_throw(env, "EPCAP", step, "refused on a handle not yet activated");
  }
  int ar = pcap_activate(p);
  if (ar < 0) {
    char detail[PCAP_ERRBUF_SIZE + 64];
    const char *text = pcap_geterr(p);
    snprintf(detail, sizeof detail, "%s%s%s", pcap_statustostr(ar), text && text[0] ? ": " : "", text ? text : "");
    pcap_close(p);
    return pc_throw(env, "EPCAP", "pcap_activate", detail);
  }
  struct bpf_program prog;
  if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0) {
    char detail[PCAP_ERRBUF_SIZE];
    snprintf(detail, sizeof detail, "%s", pcap_geterr(p));
    pcap_close(p);
    return pc_throw(env, "EFILTER", "pcap_compile", detail);
  }
  int fr = pcap_setfilter(p, &prog);
  pcap_freecode(&prog);
  if (fr != 0 || pcap_setnonblock(p, 1, errbuf) != 0) {
    char detail[PCAP_ERRBUF_SIZE];
    snprintf(detail, sizeof detail, "%s", fr != 0 ? pcap_geterr(p) : errbuf);
    pcap_close(p);
    return pc_throw(env, "EPCAP", fr != 0 ? "pcap_setfilter" : "pcap_setnonblock", detail);
  }
  int fd = pcap_get_selectable_fd(p);
  if (fd < 0) {
    pcap_close(p);
    return pc_throw(env, "EPCAP", "pcap_get_selectable_fd", "no selectable fd on this interface");
  }

  struct capture *c = calloc(1, sizeof *c);
  if (!c) {
    pcap_close(p);
    return pc_throw(env, "ENOMEM", "pcapOpen", "out of memory");
  }
  c->env = env;
  c->pcap = p;
  c->batch = batch;
  c->meta = meta;
  c->slot_bytes = (uint32_t)snaplen;
  c->slots = (uint32_t)slots;
  c->delay_ms = (uint32_t)delay_ms;
  c->poll_closed = 1;

  napi_value handle, v, resource_name;
  if (napi_create_object(env, &handle) != napi_ok || napi_wrap(env, handle, c, pc_finalize, NULL, NULL) != napi_ok) {
    pcap_close(p);
    free(c);
    return pc_throw(env, "EINVAL", "pcapOpen", "cannot create the handle");
  }
  /* From here the handle owns c: failures close it, the finalizer frees it. */
  napi_set_named_property(env, handle, "onBatch", argv[6]);
  napi_set_named_property(env, handle, "batch", argv[4]);
  napi_set_named_property(env, handle, "meta", argv[5]);
  napi_create_int32(env, pcap_datalink(p), &v);
  napi_set_named_property(env, handle, "linkType", v);
  napi_create_uint32(env, c->slots, &v);
  napi_set_named_property(env, handle, "slots", v);
  napi_create_string_utf8(env, "UmbraPcapCapture", NAPI_AUTO_LENGTH, &resource_name);
  uv_loop_t *loop = NULL;
  if (napi_create_reference(env, handle, 0, &c->handle_ref) != napi_ok || napi_async_init(env, NULL, resource_name, &c->async_ctx) != napi_ok ||
      napi_get_uv_event_loop(env, &loop) != napi_ok) {
    pc_close(c, 0);
    return pc_throw(env, "EINVAL", "pcapOpen", "cannot set up the callback");
  }
  int ur = uv_poll_init(loop, &c->poll, fd);
  if (ur == 0) {
    c->poll.data = c;
    c->uv_open++;
    c->poll_closed = 0;
    ur = uv_timer_init(loop, &c->delay);
  }
  if (ur == 0) {
    c->delay.data = c;
    c->uv_open++;
    ur = uv_poll_start(&c->poll, UV_READABLE, pc_on_readable);
  }
  if (ur != 0) {
    pc_close(c, 0);
    return pc_throw(env, "EPCAP", "uv_poll_start", uv_strerror(ur));
  }
  if (napi_add_env_cleanup_hook(env, pc_cleanup_hook, c) == napi_ok) c->hook_registered = 1;
  return handle;
}

static struct capture *pc_unwrap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_unwrap(env, argv[0], &data) != napi_ok || !data) {
    pc_throw(env, "EINVAL", "pcap capture", "expected a handle from pcapOpen");
    return NULL;
  }
  return data;
}

static int pc_set_u32(napi_env env, napi_value obj, const char *key, uint32_t value) {
  napi_value v;
  return napi_create_uint32(env, value, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

/* pcapStats(handle) -> { received, dropped, ifDropped }: libpcap's running 32-bit counters
 * (pcap_stats): frames that passed the filter incl. dropped ones, frames dropped with the ring
 * full, interface drops. Throws EPCAP when closed or when pcap_stats fails. */
static napi_value pcap_stats_fn(napi_env env, napi_callback_info info) {
  struct capture *c = pc_unwrap(env, info);
  if (!c) return NULL;
  if (c->closed) return pc_throw(env, "EPCAP", "pcap_stats", "capture closed");
  struct pcap_stat st;
  memset(&st, 0, sizeof st);
  if (pcap_stats(c->pcap, &st) != 0) return pc_throw(env, "EPCAP", "pcap_stats", pcap_geterr(c->pcap));
  napi_value out;
  if (napi_create_object(env, &out) != napi_ok) return NULL;
  if (!pc_set_u32(env, out, "received", st.ps_recv) || !pc_set_u32(env, out, "dropped", st.ps_drop) || !pc_set_u32(env, out, "ifDropped", st.ps_ifdrop)) return NULL;
  return out;
}

/* pcapClose(handle): stops delivery and closes the pcap handle; a second call does nothing. */
static napi_value pcap_close_fn(napi_env env, napi_callback_info info) {
  struct capture *c = pc_unwrap(env, info);
  if (!c) return NULL;
  pc_close(c, 0);
  return NULL;
}

napi_status umbra_pcap_capture_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"pcapOpen", NULL, pcap_open_fn, NULL, NULL, NULL, napi_default, NULL},
      {"pcapStats", NULL, pcap_stats_fn, NULL, NULL, NULL, napi_default, NULL},
      {"pcapClose", NULL, pcap_close_fn, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
