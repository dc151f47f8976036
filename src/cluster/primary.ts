// The cluster primary (`workers: N`, N > 1): forks N workers that share the proxy listener, owns the
// admin listener, and keeps the workers in step. Its parts:
//
// - supervisor.ts: the worker slots (fork, replace a worker that dies, give up on one that keeps
//   dying, drain on stop).
// - /healthz, /readyz: the primary's own (ready while at least one worker serves and no drain runs).
// - /metrics: cluster-metrics.ts (every ready worker's registry merged with the primary's own).
// - /api/...: admin-relay.ts (forwarded to the leader, worker 1; answered once every follower applied
//   the weights the leader reported), with weights-sync.ts relaying the leader's weights and keeping
//   its runtime state for every (re)started worker.
// - Listen, reload and shutdown are the single-process modules (lifecycle/): SIGTERM/SIGINT: every
//   worker drains (shutdown.drainTimeout), then exit 0. SIGHUP or a change of the config file: the
//   primary re-reads its admin token (a rejected file is logged and counted here, once for the
//   cluster), then every worker reloads.
import type { AddressInfo } from 'node:net'
import { AdminServer } from '../admin/server.js'
import { assertAdminListen, assertAdminToken } from '../admin/token-rule.js'
import { loadedText } from '../config/load.js'
import type { Config } from '../config/schema.js'
import { watchConfigFile } from '../config/watch.js'
import { listen } from '../lifecycle/listen.js'
import { createReloader } from '../lifecycle/reload.js'
import { closeNow, onSignals } from '../lifecycle/shutdown.js'
import { formatAddress } from '../net/address.js'
import { createLogger, flushLogger, type Logger } from '../telemetry/logger.js'
import { warnUnresolved } from '../upstream/resolve.js'
import { mountAdminRelay } from './admin-relay.js'
import type { CallTable } from './calls.js'
import { mountClusterMetrics } from './cluster-metrics.js'
import type { ApiAnswer, FromWorker, MetricsJson } from './messages.js'
import { PrimaryMetrics } from './primary-metrics.js'
import { type Slot, Supervisor } from './supervisor.js'
import { WeightsSync } from './weights-sync.js'

export interface PrimaryOptions {
  config: Config
  configFile: string
  env: NodeJS.ProcessEnv
  workers: number
  logger?: Logger
}

/** What the workers' messages are dispatched to. */
interface Parts {
  supervisor: Supervisor
  sync: WeightsSync
  api: CallTable<ApiAnswer>
  metrics: CallTable<MetricsJson> | null
}

function dispatch(parts: Parts, slot: Slot, m: FromWorker): void {
  const { sync } = parts
  if (m.type === 'turnout:hello') sync.hello(slot)
  else if (m.type === 'turnout:swapped') sync.swapped(slot)
  else if (m.type === 'turnout:weights') sync.reported(slot, m.weights, m.runtime)
  else if (m.type === 'turnout:applied') sync.applied(slot, m.seq)
  else if (m.type === 'turnout:api-answer') parts.api.answer(m.id, slot.id, m.answer)
  else if (m.type === 'turnout:metrics') parts.metrics?.answer(m.id, slot.id, m.metrics)
}

function exited(parts: Parts, slot: Slot): void {
  parts.api.exited(slot.id)
  parts.metrics?.exited(slot.id)
  parts.sync.recheck()
}

interface ReloadParts {
  file: string
  env: NodeJS.ProcessEnv
  logger: Logger
  supervisor: Supervisor
  admin: AdminServer
  bound: AddressInfo
  ownMetrics: PrimaryMetrics
}

/** SIGHUP or a file change: the primary checks the file and takes its admin token, then every worker reloads. */
function reloaderFor(p: ReloadParts, accepted: (next: Config) => void): () => void {
  const reloadConfig = createReloader({
    file: p.file,
    env: p.env,
    logger: p.logger,
    announce: false,
    // The workers would refuse it too (each alike): the primary counts it once and leaves them be;
    // a reload they apply they count themselves.
    counted: (result) => {
      if (result === 'error') p.ownMetrics.reloadRejected()
    },
    apply: (next) => {
      assertAdminToken(next, p.file, p.bound)
      p.admin.setToken(next.admin.token ?? null)
      accepted(next)
      void warnUnresolved(next, p.logger)
    },
  })
  const { supervisor } = p
  return () => {
    if (supervisor.state !== 'running') return
    reloadConfig().then(
      () => {
        for (const s of supervisor.slots) supervisor.tell(s, { type: 'turnout:reload' })
      },
      () => {},
    )
  }
}

export async function runPrimary(opts: PrimaryOptions): Promise<number> {
  const logger = opts.logger ?? createLogger()
  const file = opts.configFile
  let config = opts.config
  await assertAdminListen(config, file)
  let stopWatching = () => {}
  let adminAddress = ''
  // Filled in below, before any worker exists to send a message (workers are forked by start()).
  const parts = {} as Parts
  const supervisor = new Supervisor({
    workers: opts.workers,
    logger,
    drainTimeout: () => config.shutdown.drainTimeout,
    onMessage: (slot, m) => dispatch(parts, slot, m),
    onExit: (slot) => exited(parts, slot),
    onStarted: (proxyAddress) => {
      logger.info({ listener: 'proxy', address: proxyAddress }, 'listening')
      logger.info({ listener: 'admin', address: adminAddress }, 'listening')
    },
    onStopping: () => stopWatching(),
  })
  const admin = new AdminServer({
    token: config.admin.token ?? null,
    protectHealth: config.admin.protectHealth,
    protectMetrics: config.admin.protectMetrics,
    logger,
    ready: () => supervisor.ready(),
  })
  const ownMetrics = new PrimaryMetrics()
  parts.supervisor = supervisor
  parts.sync = new WeightsSync(supervisor, logger)
  parts.metrics = config.metrics.enabled ? mountClusterMetrics(admin, supervisor, ownMetrics) : null
  parts.api = mountAdminRelay(admin, supervisor, parts.sync)

  // The admin listener first: a busy admin port fails before any worker is forked.
  const bound = await listen(admin.server, config.admin.listen, 'admin')
  adminAddress = formatAddress(bound)
  try {
    assertAdminToken(config, file, bound)
  } catch (err) {
    admin.server.close()
    throw err
  }
  const reload = reloaderFor(
    { file, env: opts.env, logger, supervisor, admin, bound, ownMetrics },
    (next) => {
      config = next
    },
  )
  const removeSignals = onSignals((signal) => {
    logger.info({ signal }, 'shutting down')
    supervisor.stop(0)
  }, reload)
  // Workers do not check (each would say it again): the primary says it once for the cluster.
  void warnUnresolved(config, logger)
  const watcher = await watchConfigFile(file, reload, {
    initialText: loadedText(opts.config),
    onError: (err) => logger.warn({ file, err: err.message }, 'config file watching failed'),
  })
  stopWatching = () => watcher.close()
  // A signal while the watcher started: no workers then.
  if (supervisor.state === 'stopping') watcher.close()
  supervisor.start()

  const code = await supervisor.stopped
  closeNow(admin.server)
  removeSignals()
  logger.info('stopped')
  await flushLogger(logger)
  return code
}
