/* Live libpcap capture delivering frames in batches (pcap-capture.c), on the umbra_memory addon. */
#ifndef UMBRA_PCAP_CAPTURE_H
#define UMBRA_PCAP_CAPTURE_H
#include <node_api.h>

/* Adds pcapOpen(...), pcapStats(handle) and pcapClose(handle) to `exports`. */
napi_status umbra_pcap_capture_define(napi_env env, napi_value exports);

#endif
