// Calls from the primary to its workers over IPC: each call has an id, waits for one answer from
// every worker it asked, and ends with the answers it got once every asked worker answered or exited,
// or fails after its timeout. Used for the API calls relayed to the leader and for /metrics.

interface Call<T> {
  waiting: Set<number>
  got: T[]
  done: () => void
}

export interface AskOptions {
  timeoutMs: number
  /** The error a call that times out rejects with. */
  timedOut: () => Error
  /** Sends the request with its call id to one worker. */
  send: (id: number, worker: number) => void
}

export class CallTable<T> {
  #nextId = 0
  readonly #calls = new Map<number, Call<T>>()

  /** Asks `workers` (their ids); resolves with the answers of those that answered (in arrival order). */
  ask(workers: readonly number[], opts: AskOptions): Promise<T[]> {
    const id = this.#nextId++
    return new Promise<T[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#calls.delete(id)
        reject(opts.timedOut())
      }, opts.timeoutMs)
      const call: Call<T> = {
        waiting: new Set(workers),
        got: [],
        done: () => {
          clearTimeout(timer)
          this.#calls.delete(id)
          resolve(call.got)
        },
      }
      this.#calls.set(id, call)
      for (const w of workers) opts.send(id, w)
      if (call.waiting.size === 0) call.done()
    })
  }

  /** A worker's answer to call `id`; ignored when the call is over or did not ask that worker (again). */
  answer(id: number, worker: number, value: T): void {
    const call = this.#calls.get(id)
    if (call === undefined || !call.waiting.delete(worker)) return
    call.got.push(value)
    if (call.waiting.size === 0) call.done()
  }

  /** A worker exited: no call waits for it any more. */
  exited(worker: number): void {
    for (const call of [...this.#calls.values()]) {
      if (call.waiting.delete(worker) && call.waiting.size === 0) call.done()
    }
  }

  /** Calls still waiting (for tests and leaks). */
  get size(): number {
    return this.#calls.size
  }
}
