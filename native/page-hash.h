/* Page-change hash: detects that a guest page differs from the previous round. Eight independent
 * lanes keep the multiply off each lane's dependency chain (add + rotate only), so it runs near
 * memory bandwidth; lanes are then folded with xxh64's avalanche. Any single-word change alters its
 * lane (x -> x * odd constant is a bijection) and so the result; not a cryptographic hash. */
#ifndef UMBRA_PAGE_HASH_H
#define UMBRA_PAGE_HASH_H

#include "xxh64.h"

/* len must be a multiple of 64. */
static inline uint64_t page_hash(const uint8_t *p, size_t len) {
  uint64_t acc[8] = {XXH_P1, XXH_P2, XXH_P3, XXH_P4, XXH_P5, XXH_P1 ^ XXH_P2, XXH_P2 ^ XXH_P3, XXH_P3 ^ XXH_P4};
  for (size_t off = 0; off < len; off += 64) {
    for (int l = 0; l < 8; l++) acc[l] = xxh_rotl(acc[l] + xxh_read64(p + off + 8 * l) * XXH_P2, 31);
  }
  uint64_t h = (uint64_t)len * XXH_P5;
  for (int l = 0; l < 8; l++) h = xxh_merge(h, acc[l]);
  h ^= h >> 33;
  h *= XXH_P2;
  h ^= h >> 29;
  h *= XXH_P3;
  h ^= h >> 32;
  return h;
}

#endif
