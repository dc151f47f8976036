// The cluster's worker slots: forks one worker per slot (worker 1 is the leader), marks them ready,
// replaces a worker that dies, and drains them all on stop.
//
// - A worker that dies is logged and replaced; one that keeps dying within seconds of starting is
//   restarted with a growing delay, and after MAX_QUICK_DEATHS in a row the cluster stops (exit 1).
// - A worker that dies before every worker was ready stops the cluster (exit 1).
// - stop(): every worker drains (shutdown.drainTimeout); one still running STOP_MARGIN_MS later is
//   killed. `stopped` resolves with the exit code once every worker is gone.
import cluster, { type Worker } from 'node:cluster'
import type { Logger } from '../telemetry/logger.js'
import { type FromWorker, isTurnoutMessage, type ToWorker, WORKER_ID_ENV } from './messages.js'

/** A worker that dies sooner than this after it was started died "quickly". */
export const QUICK_DEATH_MS = 10_000
export const MAX_QUICK_DEATHS = 5
/** Restart delay after the n-th quick death in a row (n >= 1): 250 ms, 500 ms, 1 s, 2 s, ... (max 5 s). */
export function restartDelay(quickDeaths: number): number {
  return quickDeaths === 0 ? 0 : Math.min(5000, 250 * 2 ** (quickDeaths - 1))
}
/** Beyond shutdown.drainTimeout, for the workers' own closing work. */
const STOP_MARGIN_MS = 5000

export interface Slot {
  /** 1..N; 1 is the leader. */
  id: number
  worker: Worker | null
  ready: boolean
  startedAt: number
  quickDeaths: number
  /** The last weights seq this worker applied. */
  applied: number
  restart: NodeJS.Timeout | null
}

export interface SupervisorOptions {
  workers: number
  logger: Logger
  /** shutdown.drainTimeout of the config in force when the drain starts. */
  drainTimeout: () => number
  /** Every message of a worker (`turnout:ready` once its slot is marked ready). */
  onMessage: (slot: Slot, m: FromWorker) => void
  /** A worker exited; its slot is already empty, and it is not replaced yet. */
  onExit: (slot: Slot) => void
  /** Every worker is ready, for the first time; `proxyAddress` is the first one reported. */
  onStarted: (proxyAddress: string | null) => void
  /** The drain begins. */
  onStopping: () => void
}

export class Supervisor {
  state: 'starting' | 'running' | 'stopping' = 'starting'
  readonly slots: Slot[]
  /** The exit code, once every worker is gone after stop(). */
  readonly stopped: Promise<number>
  #finished!: (code: number) => void
  #exitCode = 0
  #proxyAddress: string | null = null
  #killTimer: NodeJS.Timeout | null = null

  constructor(readonly opts: SupervisorOptions) {
    this.slots = Array.from({ length: opts.workers }, (_, i) => ({
      id: i + 1,
      worker: null,
      ready: false,
      startedAt: 0,
      quickDeaths: 0,
      applied: -1,
      restart: null,
    }))
    this.stopped = new Promise((resolve) => {
      this.#finished = resolve
    })
  }

  get leader(): Slot {
    return this.slots[0]!
  }

  get followers(): Slot[] {
    return this.slots.slice(1)
  }

  live(s: Slot): s is Slot & { worker: Worker } {
    return s.worker?.isConnected() === true
  }

  tell(s: Slot, m: ToWorker): void {
    if (this.live(s)) s.worker.send(m)
  }

  /** Running, with at least one worker serving. */
  ready(): boolean {
    return this.state === 'running' && this.slots.some((s) => s.ready)
  }

  /** Workers run this same command line (bin + argv); WORKER_ID_ENV tells them apart. */
  start(): void {
    if (this.state === 'stopping') return
    for (const s of this.slots) this.#fork(s)
  }

  stop(code: number): void {
    if (this.state === 'stopping') return
    this.state = 'stopping'
    this.#exitCode = code
    this.opts.onStopping()
    const drainTimeout = this.opts.drainTimeout()
    this.opts.logger.info({ drainTimeout, workers: this.slots.length }, 'draining')
    for (const s of this.slots) {
      if (s.restart !== null) clearTimeout(s.restart)
      s.restart = null
      this.tell(s, { type: 'turnout:drain' })
    }
    this.#killTimer = setTimeout(() => this.#kill(), drainTimeout + STOP_MARGIN_MS)
    this.#finishIfGone()
  }

  #kill(): void {
    for (const s of this.slots) {
      if (s.worker === null) continue
      this.opts.logger.warn(
        { worker: s.id, workerPid: s.worker.process.pid },
        'worker did not stop in time: killing it',
      )
      s.worker.process.kill('SIGKILL')
    }
  }

  #finishIfGone(): void {
    if (!this.slots.every((s) => s.worker === null)) return
    if (this.#killTimer !== null) clearTimeout(this.#killTimer)
    this.#finished(this.#exitCode)
  }

  #fork(slot: Slot): void {
    slot.restart = null
    // A replacement's listen(port 0) joins the handle the other workers share, so it gets their port.
    const worker = cluster.fork({ [WORKER_ID_ENV]: String(slot.id) })
    slot.worker = worker
    slot.ready = false
    slot.applied = -1
    slot.startedAt = performance.now()
    worker.on('message', (m: unknown) => {
      if (!isTurnoutMessage<FromWorker>(m)) return
      if (m.type === 'turnout:ready') this.#ready(slot, m.address)
      this.opts.onMessage(slot, m)
    })
    worker.on('exit', (code: number | null, signal: string | null) =>
      this.#exited(slot, worker, code, signal),
    )
  }

  #ready(slot: Slot, address: string): void {
    slot.ready = true
    this.#proxyAddress ??= address
    if (this.state === 'starting' && this.slots.every((s) => s.ready)) {
      this.state = 'running'
      this.opts.onStarted(this.#proxyAddress)
      const pids = this.slots.map((s) => s.worker?.process.pid)
      this.opts.logger.info({ workers: this.slots.length, pids }, 'workers started')
    } else if (this.state === 'running') {
      this.opts.logger.info({ worker: slot.id, workerPid: slot.worker?.process.pid }, 'worker replaced')
    }
  }

  #exited(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return
    slot.worker = null
    slot.ready = false
    this.opts.onExit(slot)
    if (this.state === 'stopping') {
      this.#finishIfGone()
      return
    }
    const death = { worker: slot.id, workerPid: worker.process.pid, code, signal }
    const { logger } = this.opts
    if (this.state === 'starting') {
      logger.error(death, 'worker failed to start')
      this.stop(1)
      return
    }
    const lived = performance.now() - slot.startedAt
    slot.quickDeaths = lived < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0
    if (slot.quickDeaths >= MAX_QUICK_DEATHS) {
      logger.error(death, 'worker died')
      logger.fatal(
        { worker: slot.id, deaths: slot.quickDeaths },
        `worker ${slot.id} died ${slot.quickDeaths} times in a row within ${QUICK_DEATH_MS / 1000} s of starting: giving up`,
      )
      this.stop(1)
      return
    }
    const restartInMs = restartDelay(slot.quickDeaths)
    logger.error({ ...death, restartInMs }, 'worker died')
    slot.restart = setTimeout(() => this.#fork(slot), restartInMs)
  }
}
