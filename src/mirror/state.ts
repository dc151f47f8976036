// Per-route mirror state that must outlive config reloads (a reload compiles new phase objects, but
// the in-flight count, the share counters, the noise windows and the diff samples belong to the route
// name). Created once per route name, kept in a Map the mirror module owns.
import type { MirrorConfig } from '../config/schema.js'
import { DiffRing } from './diff-ring.js'
import { NoiseClassifier } from './noise.js'

export class RouteMirrorState {
  /** Mirrors and noise replays outstanding (sent, or waiting for the request body). */
  inFlight = 0
  /** Requests with an eligible method (the percent share's denominator) and how many were chosen. */
  eligible = 0
  selected = 0
  /** Compared requests (the noise share's denominator) and how many were replayed to the primary. */
  compared = 0
  replayed = 0
  /** Primary-vs-canary and primary-vs-primary comparisons done (for tests and debugging). */
  canaryComparisons = 0
  pairComparisons = 0
  classifier = new NoiseClassifier()
  readonly ring: DiffRing
  #percent = -1
  #compareKey = ''
  #noise = -1

  constructor(readonly route: string) {
    this.ring = new DiffRing(route)
  }

  /** Applies a (re)compiled route's mirror config: counters and windows restart when what they measure changed. */
  configure(m: MirrorConfig): void {
    if (m.percent !== this.#percent) {
      this.#percent = m.percent
      this.eligible = 0
      this.selected = 0
    }
    const noise = m.compare?.noise ?? 0
    if (noise !== this.#noise) {
      this.#noise = noise
      this.compared = 0
      this.replayed = 0
    }
    const c = m.compare
    const key = c ? JSON.stringify([c.status, c.headers, c.body, c.ignore, c.maxBodyBytes]) : ''
    if (key !== this.#compareKey) {
      // Different fields are compared now: the windows' rates would mix two definitions.
      this.#compareKey = key
      this.classifier = new NoiseClassifier()
    }
  }
}
