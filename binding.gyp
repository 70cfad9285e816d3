{
  "targets": [
    {
      "target_name": "umbra_memory",
      "sources": ["native/umbra_memory.c", "native/pcap-capture.c"],
      "include_dirs": ["native"],
      "libraries": ["-lpcap"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"]
    },
    {
      "target_name": "uffd_preload",
      "type": "shared_library",
      "product_name": "umbra-uffd-preload",
      "product_extension": "so",
      "sources": ["native/uffd-preload.c"],
      "include_dirs": ["native"],
      "cflags": ["-O2", "-Wall", "-fPIC"]
    },
    {
      "target_name": "shm_writer",
      "type": "executable",
      "product_name": "umbra-shm-writer",
      "sources": ["native/shm-writer.c"],
      "cflags": ["-O2", "-Wall"]
    }
  ]
}
