/* Packet socket statistics (packet-stats.c), defined on the umbra_memory addon's exports. */
#ifndef UMBRA_PACKET_STATS_H
#define UMBRA_PACKET_STATS_H
#include <node_api.h>

/* Adds packetStatistics(fd) and interfaceIndex(name) to `exports`. */
napi_status umbra_packet_stats_define(napi_env env, napi_value exports);

#endif
