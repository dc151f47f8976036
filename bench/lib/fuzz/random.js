// Seeded randomness for the differential fuzz: the same seed gives the same requests on every run.

/** A seeded PRNG (mulberry32) with the few draws the generator needs. */
export class Random {
  #a
  constructor(seed) {
    this.#a = seed >>> 0
  }
  /** Uniform in [0, 1). */
  next() {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0
    let x = this.#a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [min, max]. */
  int(min, max) {
    return min + Math.floor(this.next() * (max - min + 1))
  }
  /** True with probability p. */
  chance(p) {
    return this.next() < p
  }
  pick(list) {
    return list[Math.floor(this.next() * list.length)]
  }
  /** A string of `n` characters drawn from `alphabet`. */
  string(alphabet, n) {
    let s = ''
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.next() * alphabet.length)]
    return s
  }
  bytes(n) {
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256)
    return b
  }
  /** Random letter case (header names are case-insensitive). */
  cased(s) {
    const r = this.next()
    if (r < 0.4) return s
    if (r < 0.55) return s.toLowerCase()
    if (r < 0.65) return s.toUpperCase()
    let out = ''
    for (const c of s) out += this.chance(0.5) ? c.toUpperCase() : c.toLowerCase()
    return out
  }
}
