// The cluster primary (`workers: N`, N > 1): forks N workers that share the proxy listener, owns the
// admin listener, and keeps the workers in step.
//
// - /healthz, /readyz: the primary's own (ready while at least one worker serves and no drain runs).
// - /metrics: every ready worker's registry as JSON over IPC, merged by prom-client's
//   AggregatorRegistry.aggregate (counters and histograms summed; the weight gauge taken once).
// - /api/...: forwarded to the leader (worker 1), which answers through its own AdminServer; weight
//   changes the leader reports are relayed to the followers, and an API call is answered only once
//   every follower has applied them (so a PUT .../weight is in force everywhere when it returns).
// - Runtime state (live weights, rollout states): the leader reports it with its weights; the primary
//   keeps the latest and answers every worker's hello with it, so a replaced worker (the leader
//   included) starts from it, before it serves, instead of from the file's weights.
// - SIGTERM/SIGINT: every worker drains (shutdown.drainTimeout), then exit 0. SIGHUP or a change of
//   the config file: the primary re-reads its admin token, then every worker reloads.
// - A worker that dies is logged and replaced; one that keeps dying within seconds of starting is
//   restarted with a growing delay, and after MAX_QUICK_DEATHS in a row the cluster stops (exit 1).
import cluster, { type Worker } from 'node:cluster'
import { once } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AggregatorRegistry } from 'prom-client'
import { AdminError, type AdminRequest, AdminServer } from '../admin/server.js'
import { assertAdminListen, assertAdminToken } from '../admin/token-rule.js'
import { ConfigError, formatProblem, loadConfigFile, loadedText } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { type ConfigWatcher, watchConfigFile } from '../config/watch.js'
import { formatAddress, parseHostPort } from '../proxy/address.js'
import { EMPTY_RUNTIME, type RuntimeState } from '../rollout/runtime-state.js'
import { createLogger, flushLogger, type Logger } from '../telemetry/logger.js'
import { warnUnresolved } from '../upstream/resolve.js'
import { CallTable } from './calls.js'
import {
  type ApiAnswer,
  type ApiRequest,
  type FromWorker,
  isTurnoutMessage,
  type MetricsJson,
  type ToWorker,
  type Weights,
  WORKER_ID_ENV,
} from './messages.js'
import { PrimaryMetrics } from './primary-metrics.js'

/** A worker that dies sooner than this after it was started died "quickly". */
export const QUICK_DEATH_MS = 10_000
export const MAX_QUICK_DEATHS = 5
/** Restart delay after the n-th quick death in a row (n >= 1): 250 ms, 500 ms, 1 s, 2 s, ... (max 5 s). */
export function restartDelay(quickDeaths: number): number {
  return quickDeaths === 0 ? 0 : Math.min(5000, 250 * 2 ** (quickDeaths - 1))
}

const API_TIMEOUT_MS = 30_000
const METRICS_TIMEOUT_MS = 5000
const APPLY_TIMEOUT_MS = 2000
/** Beyond shutdown.drainTimeout, for the workers' own closing work. */
const STOP_MARGIN_MS = 5000

export interface PrimaryOptions {
  config: Config
  configFile: string
  env: NodeJS.ProcessEnv
  workers: number
  logger?: Logger
}

interface Slot {
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

const LEADER_EXITED: ApiAnswer = {
  status: 502,
  headers: { 'content-type': 'application/json' },
  body: '{"error":"the leader worker exited before answering"}\n',
}

export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const logger = opts.logger ?? createLogger()
  let config = opts.config
  await assertAdminListen(config, opts.configFile)
  const adminListen = parseHostPort(config.admin.listen)

  let state: 'starting' | 'running' | 'stopping' = 'starting'
  let watcher: ConfigWatcher | null = null
  let adminAddress: AddressInfo = { address: '', family: '', port: 0 }
  let exitCode = 0
  let proxyAddress: string | null = null
  /** The leader's last reported weights and their sequence number. */
  let weights: Weights | null = null
  /** The leader's last reported runtime state: every worker (re)starts from it. */
  let runtime: RuntimeState = EMPTY_RUNTIME
  let seq = 0
  const apiCalls = new CallTable<ApiAnswer>()
  const metricCalls = new CallTable<MetricsJson>()
  const applyWaiters = new Set<() => void>()
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, i) => ({
    id: i + 1,
    worker: null,
    ready: false,
    startedAt: 0,
    quickDeaths: 0,
    applied: -1,
    restart: null,
  }))
  const leader = slots[0]!
  const followers = slots.slice(1)
  const live = (s: Slot): s is Slot & { worker: Worker } => s.worker?.isConnected() === true
  const tell = (s: Slot, m: ToWorker) => {
    if (live(s)) s.worker.send(m)
  }
  const sendWeights = (s: Slot) => {
    if (weights !== null) tell(s, { type: 'turnout:weights', seq, weights })
  }

  let finished!: (code: number) => void
  const done = new Promise<number>((resolve) => {
    finished = resolve
  })

  // ---- admin listener ---------------------------------------------------------------------------
  const admin = new AdminServer({
    token: config.admin.token ?? null,
    protectHealth: config.admin.protectHealth,
    protectMetrics: config.admin.protectMetrics,
    logger,
    ready: () => state === 'running' && slots.some((s) => s.ready),
  })
  const ownMetrics = new PrimaryMetrics()
  if (config.metrics.enabled) {
    admin.route('GET', '/metrics', async ({ res }) => {
      const merged = AggregatorRegistry.aggregate([...(await gatherMetrics()), await ownMetrics.json()])
      const text = await merged.metrics()
      res.writeHead(200, { 'content-type': merged.contentType, 'cache-control': 'no-store' })
      res.end(text)
    })
  }
  const forward = async ({ req, res, body }: AdminRequest) => {
    const answer = await callLeader({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: pickHeaders(req.headers),
      body: body === undefined ? '' : JSON.stringify(body),
    })
    await weightsApplied(seq)
    res.writeHead(answer.status, { ...answer.headers, 'content-length': Buffer.byteLength(answer.body) })
    res.end(answer.body)
  }
  // Every /api path, whatever its depth (the AdminServer matches whole segments).
  for (let depth = 1; depth <= 8; depth++) {
    const pattern = `/api${Array.from({ length: depth }, (_, i) => `/:p${i}`).join('')}`
    for (const method of ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']) admin.route(method, pattern, forward)
  }

  async function callLeader(request: ApiRequest): Promise<ApiAnswer> {
    if (!leader.ready || !live(leader)) {
      throw new AdminError(503, 'the leader worker (1) is not running; try again shortly')
    }
    const [answer] = await apiCalls.ask([leader.id], {
      timeoutMs: API_TIMEOUT_MS,
      timedOut: () => new AdminError(504, `the leader worker did not answer within ${API_TIMEOUT_MS} ms`),
      send: (id) => tell(leader, { type: 'turnout:api', id, request }),
    })
    return answer ?? LEADER_EXITED
  }

  /** Every ready worker's metrics; a worker that dies meanwhile is left out. */
  function gatherMetrics(): Promise<MetricsJson[]> {
    const asked = slots.filter((s) => s.ready && live(s))
    return metricCalls.ask(
      asked.map((s) => s.id),
      {
        timeoutMs: METRICS_TIMEOUT_MS,
        timedOut: () => new AdminError(503, `worker metrics did not arrive within ${METRICS_TIMEOUT_MS} ms`),
        send: (id, w) => tell(slots[w - 1]!, { type: 'turnout:metrics', id }),
      },
    )
  }

  /** Resolves once every running follower applied weights `target` (or after APPLY_TIMEOUT_MS). */
  function weightsApplied(target: number): Promise<void> {
    const pending = () => followers.some((s) => s.ready && live(s) && s.applied < target)
    if (!pending()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => {
        if (pending()) return
        finish()
      }
      const finish = () => {
        clearTimeout(timer)
        applyWaiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        logger.warn({ seq: target }, 'a follower did not confirm the new weights in time')
        finish()
      }, APPLY_TIMEOUT_MS)
      applyWaiters.add(check)
    })
  }
  const recheckApplied = () => {
    for (const check of [...applyWaiters]) check()
  }

  // ---- workers ----------------------------------------------------------------------------------
  const fork = (slot: Slot) => {
    slot.restart = null
    // A replacement's listen(port 0) joins the handle the other workers share, so it gets their port.
    const worker = cluster.fork({ [WORKER_ID_ENV]: String(slot.id) })
    slot.worker = worker
    slot.ready = false
    slot.applied = -1
    slot.startedAt = performance.now()
    worker.on('message', (m: unknown) => {
      if (isTurnoutMessage<FromWorker>(m)) onMessage(slot, m)
    })
    worker.on('exit', (code: number | null, signal: string | null) => onExit(slot, worker, code, signal))
  }

  const onMessage = (slot: Slot, m: FromWorker) => {
    switch (m.type) {
      case 'turnout:hello':
        tell(slot, { type: 'turnout:runtime', state: runtime })
        if (slot !== leader) sendWeights(slot)
        return
      case 'turnout:swapped':
        if (slot !== leader) sendWeights(slot)
        return
      case 'turnout:ready':
        slot.ready = true
        proxyAddress ??= m.address
        if (state === 'starting' && slots.every((s) => s.ready)) started()
        else if (state === 'running')
          logger.info({ worker: slot.id, workerPid: slot.worker?.process.pid }, 'worker replaced')
        return
      case 'turnout:weights':
        if (slot !== leader) return
        weights = m.weights
        runtime = m.runtime
        seq++
        for (const s of followers) sendWeights(s)
        return
      case 'turnout:applied':
        slot.applied = Math.max(slot.applied, m.seq)
        recheckApplied()
        return
      case 'turnout:api-answer':
        return apiCalls.answer(m.id, slot.id, m.answer)
      case 'turnout:metrics':
        return metricCalls.answer(m.id, slot.id, m.metrics)
    }
  }

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null) => {
    if (slot.worker !== worker) return
    slot.worker = null
    slot.ready = false
    apiCalls.exited(slot.id)
    metricCalls.exited(slot.id)
    recheckApplied()
    if (state === 'stopping') {
      if (slots.every((s) => s.worker === null)) void finish()
      return
    }
    const pid = worker.process.pid
    if (state === 'starting') {
      logger.error({ worker: slot.id, workerPid: pid, code, signal }, 'worker failed to start')
      stop(1)
      return
    }
    const lived = performance.now() - slot.startedAt
    slot.quickDeaths = lived < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0
    if (slot.quickDeaths >= MAX_QUICK_DEATHS) {
      logger.error({ worker: slot.id, workerPid: pid, code, signal }, 'worker died')
      logger.fatal(
        { worker: slot.id, deaths: slot.quickDeaths },
        `worker ${slot.id} died ${slot.quickDeaths} times in a row within ${QUICK_DEATH_MS / 1000} s of starting: giving up`,
      )
      stop(1)
      return
    }
    const restartInMs = restartDelay(slot.quickDeaths)
    logger.error({ worker: slot.id, workerPid: pid, code, signal, restartInMs }, 'worker died')
    slot.restart = setTimeout(() => fork(slot), restartInMs)
  }

  const started = () => {
    state = 'running'
    logger.info({ listener: 'proxy', address: proxyAddress }, 'listening')
    logger.info({ listener: 'admin', address: formatAddress(adminAddress) }, 'listening')
    logger.info({ workers: slots.length, pids: slots.map((s) => s.worker?.process.pid) }, 'workers started')
  }

  // ---- stop, reload -----------------------------------------------------------------------------
  let killTimer: NodeJS.Timeout | null = null
  function stop(code: number): void {
    if (state === 'stopping') return
    state = 'stopping'
    exitCode = code
    watcher?.close()
    logger.info({ drainTimeout: config.shutdown.drainTimeout, workers: slots.length }, 'draining')
    for (const s of slots) {
      if (s.restart !== null) clearTimeout(s.restart)
      s.restart = null
      tell(s, { type: 'turnout:drain' })
    }
    killTimer = setTimeout(() => {
      for (const s of slots) {
        if (s.worker === null) continue
        logger.warn(
          { worker: s.id, workerPid: s.worker.process.pid },
          'worker did not stop in time: killing it',
        )
        s.worker.process.kill('SIGKILL')
      }
    }, config.shutdown.drainTimeout + STOP_MARGIN_MS)
    if (slots.every((s) => s.worker === null)) void finish()
  }

  let finishing = false
  async function finish(): Promise<void> {
    if (finishing) return
    finishing = true
    if (killTimer !== null) clearTimeout(killTimer)
    admin.server.close()
    admin.server.closeAllConnections()
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
    process.off('SIGHUP', onHup)
    logger.info('stopped')
    await flushLogger(logger)
    finished(exitCode)
  }

  let reloading: Promise<void> = Promise.resolve()
  const reload = () => {
    reloading = reloading.then(async () => {
      if (state !== 'running') return
      try {
        const next = await loadConfigFile(opts.configFile, opts.env)
        assertAdminToken(next, opts.configFile, adminAddress)
        admin.setToken(next.admin.token ?? null)
        config = next
        void warnUnresolved(next, logger)
      } catch (err) {
        // The workers would refuse it too (each alike): say it (and count it) once and leave them be.
        ownMetrics.reloadRejected()
        if (err instanceof ConfigError) {
          for (const p of err.problems) logger.error({ problem: formatProblem(p) }, 'config reload rejected')
        } else logger.error({ err: (err as Error).message }, 'config reload failed')
        return
      }
      for (const s of slots) tell(s, { type: 'turnout:reload' })
    })
  }

  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down')
    stop(0)
  }
  const onHup = () => reload()

  // ---- start ------------------------------------------------------------------------------------
  // The admin listener first: a busy admin port fails before any worker is forked.
  admin.server.listen(adminListen.port, adminListen.host)
  await Promise.race([
    once(admin.server, 'listening'),
    once(admin.server, 'error').then(([err]) => {
      throw new Error(
        `cannot listen on ${config.admin.listen} for the admin listener: ${(err as Error).message}`,
      )
    }),
  ])
  adminAddress = admin.server.address() as AddressInfo
  try {
    assertAdminToken(config, opts.configFile, adminAddress)
  } catch (err) {
    admin.server.close()
    throw err
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  process.on('SIGHUP', onHup)
  // Workers do not check (each would say it again): the primary says it once for the cluster.
  void warnUnresolved(config, logger)
  const file = opts.configFile
  watcher = await watchConfigFile(file, reload, {
    initialText: loadedText(opts.config),
    onError: (err) => logger.warn({ file, err: err.message }, 'config file watching failed'),
  })
  // Workers run this same command line (bin + argv); WORKER_ID_ENV tells them apart.
  for (const s of slots) fork(s)
  return done
}

/** The request headers the leader's AdminServer needs (auth and content negotiation). */
function pickHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['authorization', 'content-type', 'accept']) {
    const v = headers[name]
    if (typeof v === 'string') out[name] = v
  }
  return out
}
