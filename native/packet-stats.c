/* Packet socket statistics for the DHCP capture: getsockopt(SOL_PACKET, PACKET_STATISTICS) on a
 * socket libpcap opened in this process (the `cap` binding offers no pcap_stats()), and
 * if_nametoindex. Part of the umbra_memory addon; umbra_memory.c's init calls
 * umbra_packet_stats_define(). Finding the right fd and accumulating the counters (the kernel
 * resets them on every read) is done in TypeScript (agent/net/packet-socket-stats.ts). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "packet-stats.h"

static napi_value ps_throw_errno(napi_env env, const char *call, int err) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s failed: %s (%s)", call, strerror(err), name ? name : "E?");
  napi_throw_error(env, name ? name : "EUNKNOWN", msg);
  return NULL;
}

static napi_value ps_throw_arg(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EINVAL", msg);
  return NULL;
}

static int ps_set_u32(napi_env env, napi_value obj, const char *key, uint32_t value) {
  napi_value v;
  return napi_create_uint32(env, value, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

/* packetStatistics(fd) -> { packets, drops, freezeQueueCount? }: the counters since the previous
 * read (the kernel zeroes them). `packets` counts every frame that passed the socket filter,
 * dropped ones included (the kernel adds tp_drops into it); freezeQueueCount only for TPACKET_V3.
 * Throws ENOTSOCK for a non-socket, ENOPROTOOPT for a socket that is not AF_PACKET. */
static napi_value packet_statistics(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return ps_throw_arg(env, "missing fd");
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return ps_throw_arg(env, "fd must be a non-negative integer");
  int domain = 0;
  socklen_t dlen = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0) return ps_throw_errno(env, "getsockopt(SO_DOMAIN)", errno);
  if (domain != AF_PACKET) return ps_throw_errno(env, "getsockopt(PACKET_STATISTICS) on a non-AF_PACKET socket", ENOPROTOOPT);
  struct tpacket_stats_v3 st;
  memset(&st, 0, sizeof st);
  socklen_t len = sizeof st;
  if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return ps_throw_errno(env, "getsockopt(PACKET_STATISTICS)", errno);
  napi_value out;
  if (napi_create_object(env, &out) != napi_ok) return NULL;
  if (!ps_set_u32(env, out, "packets", st.tp_packets) || !ps_set_u32(env, out, "drops", st.tp_drops)) return NULL;
  if (len >= sizeof(struct tpacket_stats_v3) && !ps_set_u32(env, out, "freezeQueueCount", st.tp_freeze_q_cnt)) return NULL;
  return out;
}

/* interfaceIndex(name) -> the ifindex in this process's network namespace; throws ENODEV. */
static napi_value interface_index(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char name[IF_NAMESIZE + 1];
  size_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return ps_throw_arg(env, "missing interface name");
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok) return ps_throw_arg(env, "interface name must be a string");
  if (n == 0 || n >= IF_NAMESIZE) return ps_throw_arg(env, "interface name must have 1 to 15 bytes");
  unsigned int index = if_nametoindex(name);
  if (index == 0) return ps_throw_errno(env, "if_nametoindex", errno);
  napi_value v;
  napi_create_uint32(env, index, &v);
  return v;
}

napi_status umbra_packet_stats_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"packetStatistics", NULL, packet_statistics, NULL, NULL, NULL, napi_default, NULL},
      {"interfaceIndex", NULL, interface_index, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
