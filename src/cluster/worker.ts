// One cluster worker: a normal Turnout (startTurnout) with the proxy listener only. The primary owns
// the admin listener and talks to the workers over IPC (messages.ts).
//
// Worker 1 is the leader: it keeps its routes' rollout blocks, so the rollout controllers, the admin
// API's state and the mirror diffs live in it alone; it reports its live weights whenever they may
// have changed (and once a second, as a safety net). The other workers (followers) drop the rollout
// blocks from their config and take the leader's weights, relayed by the primary. The leader's
// reports also carry its runtime state (weights with the config weight they were set under, rollout
// states), which the primary keeps: every worker waits for it (the answer to its hello) and starts
// from it, so a replaced worker does not fall back to the file's weights.
import { pino } from 'pino'
import { startTurnout, type Turnout } from '../app.js'
import { ConfigError, formatProblem, loadConfigFile } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { onSignals } from '../lifecycle/shutdown.js'
import { formatAddress, parseHostPort } from '../net/address.js'
import { captureWeights, EMPTY_RUNTIME, type RuntimeState } from '../rollout/runtime-state.js'
import type { Logger } from '../telemetry/logger.js'
import { TurnoutMetrics } from '../telemetry/metrics.js'
import { supportsReusePort } from './count.js'
import { exchange } from './exchange.js'
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

export interface WorkerOptions {
  configFile: string
  env: NodeJS.ProcessEnv
}

/** JSON lines tagged with the worker id. The primary logs the listening lines, once, for the cluster. */
function workerLogger(id: number): Logger {
  return pino(
    {
      base: { pid: process.pid, worker: id },
      level: process.env.TURNOUT_LOG_LEVEL ?? 'info',
      hooks: {
        logMethod(args, method) {
          if (args[1] === 'listening') return
          method.apply(this, args)
        },
      },
    },
    pino.destination({ dest: 1, sync: false, minLength: 0 }),
  )
}

/** A follower's config has no rollout blocks: the leader's controllers drive every worker's weights. */
export function workerConfig(config: Config, leader: boolean): Config {
  if (leader) return config
  return {
    ...config,
    routes: config.routes.map(({ rollout: _rollout, ...route }) => route),
  }
}

export function weightsOf(turnout: Pick<Turnout, 'holder'>): Weights {
  const weights: Weights = {}
  for (const r of turnout.holder.current.routes) weights[r.name] = r.weight.canary
  return weights
}

export function applyWeights(turnout: Pick<Turnout, 'holder'>, weights: Weights): void {
  const table = turnout.holder.current
  for (const [name, canary] of Object.entries(weights)) {
    const route = table.byName.get(name)
    if (route) route.weight.canary = canary
  }
}

/** How long a worker waits for the primary's kept runtime state before it starts from the file alone. */
const RUNTIME_WAIT_MS = 10_000

async function keptRuntime(kept: Promise<RuntimeState>, logger: Logger): Promise<RuntimeState> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<RuntimeState>((resolve) => {
    timer = setTimeout(() => {
      logger.warn(
        { waitedMs: RUNTIME_WAIT_MS },
        'the primary did not send the runtime state: starting from the config file',
      )
      resolve(EMPTY_RUNTIME)
    }, RUNTIME_WAIT_MS)
  })
  try {
    return await Promise.race([kept, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The leader's reports to the primary: its weights and runtime state, each time they changed. */
function leaderReporter(send: (m: FromWorker) => void): (turnout: Turnout) => void {
  let lastSent = ''
  return (turnout) => {
    const runtime: RuntimeState = {
      weights: captureWeights(turnout.holder.current),
      rollouts: turnout.rollouts.snapshot(),
    }
    const key = JSON.stringify(runtime)
    if (key === lastSent) return
    lastSent = key
    send({ type: 'turnout:weights', weights: weightsOf(turnout), runtime })
  }
}

/** A relayed API call, answered by this worker's AdminServer (not listening: exchanged in memory). */
function answerApi(turnout: Turnout | null, request: ApiRequest): Promise<ApiAnswer> {
  if (turnout === null) return Promise.resolve({ status: 503, headers: {}, body: '{"error":"starting"}\n' })
  return exchange(turnout.admin.server, request).catch((err: Error) => ({
    status: 500,
    headers: { 'content-type': 'application/json' },
    body: `${JSON.stringify({ error: 'internal_error', message: err.message })}\n`,
  }))
}

async function metricsOf(turnout: Turnout | null): Promise<MetricsJson> {
  const metrics = turnout?.metrics
  return metrics instanceof TurnoutMetrics ? await metrics.registry.getMetricsAsJSON() : []
}

/** This worker's Turnout, proxy listener only; a failure is reported on stderr and ends the process. */
async function startWorkerTurnout(
  opts: WorkerOptions,
  leader: boolean,
  logger: Logger,
  kept: Promise<RuntimeState>,
): Promise<Turnout> {
  try {
    // Read here, not handed over: a replacement worker starts from the file as it is now.
    const config = await loadConfigFile(opts.configFile, opts.env)
    const runtime = await keptRuntime(kept, logger)
    return await startTurnout({
      runtime,
      config,
      configFile: opts.configFile,
      env: opts.env,
      logger,
      watch: false,
      adminListener: false,
      prepare: (c) => workerConfig(c, leader),
      // Each worker its own SO_REUSEPORT socket where Node has it; port 0 needs the shared handle
      // (one port for all), and so does any Node before 22.12.
      reusePort: supportsReusePort() && parseHostPort(config.listen).port !== 0,
    })
  } catch (err) {
    // Reported here: the IPC channel keeps the process alive, and cluster exits 0 when it closes.
    const text =
      err instanceof ConfigError
        ? err.problems.map(formatProblem).join('\n')
        : `turnout: ${(err as Error).message}`
    process.stderr.write(`${text}\n`)
    process.exit(1)
  }
}

export async function runWorker(opts: WorkerOptions): Promise<number> {
  const id = Number(opts.env[WORKER_ID_ENV])
  const leader = id === 1
  const logger = workerLogger(id)
  const send = (m: FromWorker) => {
    if (process.connected) process.send?.(m)
  }
  let turnout: Turnout | null = null
  let pendingWeights: Weights | null = null
  let stopRequested = false
  let closing: Promise<void> | null = null
  const report = leaderReporter(send)
  const syncWeights = () => {
    if (leader && turnout !== null) report(turnout)
  }
  // The primary answers `hello` with the runtime state it kept: a replacement starts from it.
  let keptArrived: (state: RuntimeState) => void = () => {}
  const kept = new Promise<RuntimeState>((resolve) => {
    keptArrived = resolve
  })
  const heartbeat = setInterval(syncWeights, 1000)
  heartbeat.unref()

  const stop = () => {
    stopRequested = true
    if (turnout === null || closing !== null) return
    clearInterval(heartbeat)
    closing = turnout.close()
    closing.then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }

  const onMessage = async (m: ToWorker) => {
    if (m.type === 'turnout:drain') stop()
    else if (m.type === 'turnout:reload') void turnout?.reload().catch(() => {})
    else if (m.type === 'turnout:runtime') keptArrived(m.state)
    else if (m.type === 'turnout:weights') {
      if (turnout === null) pendingWeights = m.weights
      else applyWeights(turnout, m.weights)
      send({ type: 'turnout:applied', seq: m.seq })
    } else if (m.type === 'turnout:api') {
      const answer = await answerApi(turnout, m.request)
      // The weights first: the primary relays them before it answers the API call.
      syncWeights()
      send({ type: 'turnout:api-answer', id: m.id, answer })
    } else if (m.type === 'turnout:metrics') {
      send({ type: 'turnout:metrics', id: m.id, metrics: await metricsOf(turnout) })
    }
  }
  process.on('message', (m: unknown) => {
    if (isTurnoutMessage<ToWorker>(m)) {
      onMessage(m).catch((err: Error) => logger.error({ err: err.message }, 'cluster message failed'))
    }
  })
  // The primary is gone: nothing will route new connections here any more.
  process.on('disconnect', stop)
  // A terminal's Ctrl-C reaches the whole process group; the primary coordinates (and relays SIGHUP).
  onSignals(stop, () => {})
  send({ type: 'turnout:hello' })

  const started = await startWorkerTurnout(opts, leader, logger, kept)
  turnout = started
  if (pendingWeights !== null) applyWeights(started, pendingWeights)
  if (leader) {
    started.rollouts.onChange(syncWeights)
    started.holder.onSwap(syncWeights)
    syncWeights()
  } else {
    started.holder.onSwap(() => send({ type: 'turnout:swapped' }))
  }
  send({ type: 'turnout:ready', address: formatAddress(started.proxyAddress) })
  logger.info({ leader }, 'worker started')
  if (stopRequested) stop()
  // Ends with process.exit() once drained.
  return new Promise<number>(() => {})
}
