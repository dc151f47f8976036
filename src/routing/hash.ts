// Sticky buckets: a key hashes to a bucket in [0, 10000). The hash is fixed (FNV-1a 32-bit with
// murmur3's finaliser for avalanche), so every replica and every worker decides the same way with no
// shared state, and `bucket < weight * 100` makes raising the weight only ever move users to canary.

export const BUCKETS = 10_000

export function stickyBucket(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) % BUCKETS
}

/** True when a sticky key at this bucket goes to the canary at `weight` percent (0..100, decimals allowed). */
export function bucketIsCanary(bucket: number, weight: number): boolean {
  return bucket < weight * 100
}
