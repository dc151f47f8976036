// Wires one Turnout instance: config → compiled table → listeners, with telemetry and the admin
// listener around it. Everything that changes at runtime goes through `holder.swap()`. The parts are
// their own modules, shared with the cluster: the proxy server (server/proxy-server.ts), listen,
// reload and drain (lifecycle/).
import type { AddressInfo } from 'node:net'
import { mountRoutesApi } from './admin/api.js'
import { AdminServer } from './admin/server.js'
import { assertAdminListen, assertAdminToken } from './admin/token-rule.js'
import { compile } from './config/compile.js'
import { loadedText } from './config/load.js'
import type { Config, RouteConfig } from './config/schema.js'
import { type ConfigWatcher, watchConfigFile } from './config/watch.js'
import { combineObservers } from './core/observers.js'
import { compileFaults } from './faults/phase.js'
import { listen, localUrl } from './lifecycle/listen.js'
import { createReloader, warnRestartOnly } from './lifecycle/reload.js'
import { closeNow, drain } from './lifecycle/shutdown.js'
import { Mirror } from './mirror/index.js'
import { RolloutManager } from './rollout/controller.js'
import { type RuntimeState, restoreWeights } from './rollout/runtime-state.js'
import { TableHolder } from './routing/holder.js'
import type { RouteTable } from './routing/table.js'
import { createProxyServer } from './server/proxy-server.js'
import { rateLimitedWarn } from './telemetry/failure-log.js'
import { createTelemetry } from './telemetry/index.js'
import { createLogger, flushLogger, type Logger } from './telemetry/logger.js'
import type { Metrics } from './telemetry/metrics.js'
import { HealthRegistry } from './upstream/health.js'
import { HealthChecker } from './upstream/health-check.js'
import { Pools } from './upstream/pools.js'
import { warnUnresolved } from './upstream/resolve.js'

export { clientTimeouts } from './server/proxy-server.js'

export interface TurnoutOptions {
  config: Config
  /** Where the config came from; reload() re-reads it. */
  configFile?: string
  logger?: Logger
  /** Watch configFile and reload on change (default true when configFile is set); debounce in ms. */
  watch?: boolean | { debounceMs: number }
  /** Environment for OTEL_* tracing settings (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Bind admin.listen (default true). Cluster workers pass false: the cluster primary owns it. */
  adminListener?: boolean
  /** Applied to the config at start and to every reloaded one (cluster workers adjust theirs). */
  prepare?: (config: Config) => Config
  /** Bind the proxy listener with SO_REUSEPORT, exclusively (cluster workers, where Node supports it). */
  reusePort?: boolean
  /** Weights and rollout states to start from (a cluster worker the primary replaced); before listening. */
  runtime?: RuntimeState
}

export interface Turnout {
  readonly config: Config
  readonly holder: TableHolder
  readonly admin: AdminServer
  readonly logger: Logger
  /** `http://127.0.0.1:PORT` of the proxy listener. */
  readonly url: string
  readonly adminUrl: string
  readonly proxyAddress: AddressInfo
  readonly adminAddress: AddressInfo
  /** Every route's rollout controller (admin API, CLI, demo). */
  readonly rollouts: RolloutManager
  /** The recording handle (a TurnoutMetrics, whose registry cluster workers report, when enabled). */
  readonly metrics: Metrics
  /** Re-reads the config file, validates and swaps it in; throws ConfigError and changes nothing if invalid. */
  reload(): Promise<void>
  /** Applies an already validated config. */
  apply(config: Config): void
  /** Graceful stop: stop accepting, finish in-flight requests (bounded by drainTimeout), close. */
  close(): Promise<void>
}

const NO_ADDRESS: AddressInfo = { address: '', family: '', port: 0 }

/** A reload keeps a weight changed at runtime unless the config changed that route's weight. */
function keepRuntimeWeights(previous: RouteTable) {
  return (r: RouteConfig) => {
    const old = previous.byName.get(r.name)
    return old && old.config.split.canary === r.split.canary ? old.weight.canary : r.split.canary
  }
}

/** What one instance is made of, before any listener: the table, its phases, telemetry and rollouts. */
interface Core {
  config: Config
  readonly prepare: (config: Config) => Config
  readonly logger: Logger
  readonly pools: Pools
  readonly telemetry: Awaited<ReturnType<typeof createTelemetry>>
  readonly mirror: Mirror
  readonly holder: TableHolder
  readonly rollouts: RolloutManager
  /** Active health checks for the live table (follows every swap). */
  readonly checker: HealthChecker
  /** Swaps in an already validated config, keeping weights changed at runtime. */
  apply(next: Config): void
}

/** Active health checks for the live table, following every swap; transitions are logged. */
function startHealthChecks(holder: TableHolder, logger: Logger): HealthChecker {
  const checker = new HealthChecker({
    changed: (h, down) => {
      const where = { route: h.route, variant: h.variant, endpoint: h.url }
      if (down) logger.warn(where, 'endpoint down: health checks failing')
      else logger.info(where, 'endpoint up again: health checks passing')
    },
  })
  checker.sync(holder.current.routes)
  holder.onSwap((next) => checker.sync(next.routes))
  return checker
}

async function createCore(opts: TurnoutOptions): Promise<Core> {
  const prepare = opts.prepare ?? ((c: Config) => c)
  const config = prepare(opts.config)
  const logger = opts.logger ?? createLogger()
  const pools = new Pools()
  // Endpoint health (ejections, active checks, in flight) outlives every table, like the pools.
  const health = new HealthRegistry()
  // The weight gauge reads the live table at scrape time (holder is assigned below, before any scrape).
  const telemetry = await createTelemetry(config, logger, {
    table: () => holder.current,
    env: opts.env,
    health,
  })
  const mirror = new Mirror({
    recorder: telemetry.mirrorRecorder,
    trustForwarded: config.trustForwardedHeaders,
    onInternalError: (err) => logger.warn({ err: (err as Error).message }, 'mirror internal error'),
  })
  const compileTable = (c: Config, previous?: RouteTable): RouteTable =>
    compile(c, {
      pools,
      health,
      weightFor: previous ? keepRuntimeWeights(previous) : undefined,
      phases: { faults: compileFaults, mirror: mirror.phase },
    })
  const holder = new TableHolder(compileTable(config))
  const checker = startHealthChecks(holder, logger)
  if (opts.runtime) restoreWeights(holder.current, opts.runtime.weights)
  // Rollouts keep their own per-route state across table swaps and feed on every finished request.
  const rollouts = new RolloutManager({
    holder,
    logger,
    metrics: telemetry.metrics,
    kept: opts.runtime?.rollouts,
  })
  const core: Core = {
    config,
    prepare,
    logger,
    pools,
    telemetry,
    mirror,
    holder,
    rollouts,
    checker,
    apply(next) {
      holder.swap(compileTable(next, holder.current))
      core.config = next
    },
  }
  return core
}

function createAdmin(core: Core, ready: () => boolean): AdminServer {
  const { config } = core
  const admin = new AdminServer({
    token: config.admin.token ?? null,
    protectHealth: config.admin.protectHealth,
    protectMetrics: config.admin.protectMetrics,
    logger: core.logger,
    ready,
  })
  core.telemetry.mount(admin)
  core.mirror.mount(admin, core.holder)
  mountRoutesApi(admin, { holder: core.holder, rollouts: core.rollouts, logger: core.logger })
  return admin
}

/** Re-reads the config file, checks what a running instance cannot change, and applies it. */
function reloaderFor(core: Core, admin: AdminServer, adminAddress: AddressInfo | null, opts: TurnoutOptions) {
  const file = opts.configFile
  if (file === undefined) return () => Promise.reject(new Error('no config file to reload'))
  const { logger } = core
  return createReloader({
    file,
    env: opts.env,
    logger,
    counted: (result) => core.telemetry.metrics.configReload(result),
    apply: (loaded) => {
      const next = core.prepare(loaded)
      // The admin listener is not restarted: a token it needs cannot be removed by a reload.
      if (adminAddress !== null) assertAdminToken(next, file, adminAddress)
      warnRestartOnly(core.config, next, logger)
      core.apply(next)
      admin.setToken(next.admin.token ?? null)
      if (adminAddress !== null) void warnUnresolved(next, logger)
    },
  })
}

async function watchFile(opts: TurnoutOptions, reload: () => Promise<void>, logger: Logger) {
  const file = opts.configFile
  if (file === undefined || opts.watch === false) return null
  return watchConfigFile(file, () => void reload().catch(() => {}), {
    debounceMs: typeof opts.watch === 'object' ? opts.watch.debounceMs : undefined,
    initialText: loadedText(opts.config),
    onError: (err) => logger.warn({ file, err: err.message }, 'config file watching failed'),
  })
}

export async function startTurnout(opts: TurnoutOptions): Promise<Turnout> {
  const withAdmin = opts.adminListener !== false
  if (withAdmin)
    await assertAdminListen(opts.prepare?.(opts.config) ?? opts.config, opts.configFile ?? '<config>')
  const core = await createCore(opts)
  const { logger, telemetry, holder, rollouts } = core
  let draining = false
  let ready = false
  const proxy = createProxyServer({
    config: core.config,
    holder,
    observer: combineObservers([telemetry.observer, rollouts.observer], telemetry.observerErrors),
    metrics: telemetry.metrics,
    logger,
    clientErrorLine: rateLimitedWarn(logger, telemetry.metrics, 'client_error'),
    draining: () => draining,
  })
  const admin = createAdmin(core, () => ready && !draining)
  // Resume rollouts from their state files before the first request.
  await rollouts.ready()

  let proxyAddress: AddressInfo
  let adminAddress = NO_ADDRESS
  try {
    const { config } = core
    proxyAddress = await listen(proxy.server, config.listen, 'proxy', { reusePort: opts.reusePort, logger })
    if (withAdmin) {
      adminAddress = await listen(admin.server, config.admin.listen, 'admin', { logger })
      assertAdminToken(config, opts.configFile ?? '<config>', adminAddress)
    }
  } catch (err) {
    core.checker.close()
    proxy.server.close()
    admin.server.close()
    await core.pools.destroy()
    await core.mirror.close()
    throw err
  }
  ready = true
  if (withAdmin) void warnUnresolved(core.config, logger)
  const reload = reloaderFor(core, admin, withAdmin ? adminAddress : null, opts)
  const watcher: ConfigWatcher | null = await watchFile(opts, reload, logger)

  let closing: Promise<void> | null = null
  const close = async () => {
    draining = true
    watcher?.close()
    core.checker.close()
    logger.info({ drainTimeout: core.config.shutdown.drainTimeout }, 'draining')
    await drain(proxy.server, core.config.shutdown.drainTimeout, proxy.upgrades.open)
    closeNow(admin.server)
    await rollouts.close()
    await core.pools.close()
    await core.mirror.close()
    await telemetry.shutdown()
    logger.info('stopped')
    await flushLogger(logger)
  }
  return {
    get config() {
      return core.config
    },
    holder,
    admin,
    logger,
    url: localUrl(proxyAddress),
    adminUrl: withAdmin ? localUrl(adminAddress) : '',
    proxyAddress,
    adminAddress,
    rollouts,
    metrics: telemetry.metrics,
    apply: (next) => core.apply(next),
    reload,
    close() {
      closing ??= close()
      return closing
    },
  }
}
