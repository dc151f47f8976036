// The leader's weights, kept in step on the followers. The leader reports its live weights and its
// runtime state (weights with the config weight they were set under, rollout states); the primary
// numbers each report, relays the weights to the followers, and keeps the latest runtime state to
// answer every worker's hello with, so a replaced worker (the leader included) starts from it, before
// it serves, instead of from the file's weights.
import { EMPTY_RUNTIME, type RuntimeState } from '../rollout/runtime-state.js'
import type { Logger } from '../telemetry/logger.js'
import type { Weights } from './messages.js'
import type { Slot, Supervisor } from './supervisor.js'

const APPLY_TIMEOUT_MS = 2000

export class WeightsSync {
  /** The sequence number of the leader's last report. */
  seq = 0
  #weights: Weights | null = null
  #runtime: RuntimeState = EMPTY_RUNTIME
  readonly #waiters = new Set<() => void>()

  constructor(
    readonly supervisor: Supervisor,
    readonly logger: Logger,
  ) {}

  /** A (re)started worker: its runtime state, and a follower the weights as they are now. */
  hello(slot: Slot): void {
    this.supervisor.tell(slot, { type: 'turnout:runtime', state: this.#runtime })
    this.swapped(slot)
  }

  /** A follower swapped its table (a reload): the weights again, onto the new table. */
  swapped(slot: Slot): void {
    if (slot !== this.supervisor.leader) this.#send(slot)
  }

  reported(slot: Slot, weights: Weights, runtime: RuntimeState): void {
    if (slot !== this.supervisor.leader) return
    this.#weights = weights
    this.#runtime = runtime
    this.seq++
    for (const s of this.supervisor.followers) this.#send(s)
  }

  applied(slot: Slot, seq: number): void {
    slot.applied = Math.max(slot.applied, seq)
    this.recheck()
  }

  /** Wakes the waiters whose followers all applied (or exited). */
  recheck(): void {
    for (const check of [...this.#waiters]) check()
  }

  /** Resolves once every running follower applied weights `target` (or after APPLY_TIMEOUT_MS). */
  appliedEverywhere(target: number): Promise<void> {
    const { supervisor } = this
    const pending = () =>
      supervisor.followers.some((s) => s.ready && supervisor.live(s) && s.applied < target)
    if (!pending()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => {
        if (!pending()) finish()
      }
      const finish = () => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        this.logger.warn({ seq: target }, 'a follower did not confirm the new weights in time')
        finish()
      }, APPLY_TIMEOUT_MS)
      this.#waiters.add(check)
    })
  }

  #send(slot: Slot): void {
    if (this.#weights !== null) {
      this.supervisor.tell(slot, { type: 'turnout:weights', seq: this.seq, weights: this.#weights })
    }
  }
}
