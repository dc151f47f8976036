// The programmatic API: `import { start } from 'turnout'`. Start Turnout from a config object or a
// config file, read its addresses, look at and change route weights, reload, stop. A config object
// is validated by the same schema, with the same messages, as a file (`turnout validate`).
//
//   const turnout = await start({ listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0' },
//     routes: [{ name: 'shop', primary: { endpoints: ['http://127.0.0.1:3000'] },
//                canary: { endpoints: ['http://127.0.0.1:3001'] } }] })
//   turnout.url              // 'http://127.0.0.1:PORT' of the proxy listener
//   turnout.setWeight('shop', 25)
//   await turnout.stop()

import { type RouteView, routeView } from './admin/api.js'
import { AdminError } from './admin/server.js'
import { setCanaryWeight } from './admin/weight.js'
import { startTurnout, type Turnout } from './app.js'
import { ConfigError, type ConfigProblem, loadConfigFile, parseConfig } from './config/load.js'
import type { Config, ConfigInput } from './config/schema.js'
import { TurnoutError } from './core/errors.js'
import { createLogger, type Logger } from './telemetry/logger.js'

export type { Config, ConfigInput, ConfigProblem, RouteView }
export { ConfigError, TurnoutError }

export interface StartOptions {
  /**
   * A pino logger (default: JSON lines on stdout at env.TURNOUT_LOG_LEVEL, else info; set it to
   * `silent` for a quiet embedded proxy).
   */
  logger?: Logger
  /** `${NAME}` substitution in config strings, TURNOUT_LOG_LEVEL and OTEL_* settings (default process.env). */
  env?: NodeJS.ProcessEnv
  /** When started from a file: reload it when it changes (default true). */
  watch?: boolean
}

/** A running Turnout. */
export interface TurnoutInstance {
  /** `http://HOST:PORT` of the proxy listener (a wildcard bind is reported as 127.0.0.1). */
  readonly url: string
  /** `http://HOST:PORT` of the admin listener: /healthz, /readyz, /metrics, /api/routes. */
  readonly adminUrl: string
  /** The validated config in effect (units parsed: durations in ms, sizes in bytes). */
  readonly config: Config
  /** Every route as `GET /api/routes` shows it. */
  routes(): RouteView[]
  /**
   * Sets a route's live canary share (0–100), exactly as `PUT /api/routes/NAME/weight` does: a
   * running rollout is paused. Throws TurnoutApiError (TURNOUT_ERR_UNKNOWN_ROUTE,
   * TURNOUT_ERR_INVALID_WEIGHT). Returns the route afterwards.
   */
  setWeight(route: string, canaryPercent: number): RouteView
  /** Re-reads the config file (started from a file only); throws ConfigError and keeps the old config. */
  reload(): Promise<void>
  /** Graceful stop: stops accepting, drains in-flight requests (shutdown.drainTimeout), closes. */
  stop(): Promise<void>
}

export class TurnoutApiError extends TurnoutError {
  constructor(
    message: string,
    override readonly code: 'TURNOUT_ERR_UNKNOWN_ROUTE' | 'TURNOUT_ERR_INVALID_WEIGHT',
  ) {
    super(code, message, code === 'TURNOUT_ERR_UNKNOWN_ROUTE' ? 404 : 400)
    this.name = 'TurnoutApiError'
  }
}

/**
 * Validates a config object (what a YAML/JSON file would parse to) with the file schema. Returns
 * the parsed config or throws ConfigError listing every problem (`<config>:LINE:COL: path: message`,
 * the line and column counted in the object's JSON form).
 */
export function validateConfig(input: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string
  try {
    text = JSON.stringify(input ?? null, null, 2)
  } catch (err) {
    throw new ConfigError([
      {
        file: '<config>',
        line: 1,
        col: 1,
        path: '',
        message: `not serialisable (${(err as Error).message})`,
      },
    ])
  }
  return parseConfig(text, '<config>', env)
}

/**
 * Starts Turnout. `source` is a config object (validated like a file) or the path of a YAML/JSON
 * config file (watched and reloaded on change unless `watch: false`). Resolves once both listeners
 * are bound; rejects with ConfigError on an invalid config, or an Error when a listener cannot bind.
 */
export async function start(
  source: ConfigInput | string,
  options: StartOptions = {},
): Promise<TurnoutInstance> {
  const env = options.env ?? process.env
  const configFile = typeof source === 'string' ? source : undefined
  const config =
    configFile === undefined ? validateConfig(source, env) : await loadConfigFile(configFile, env)
  const logger = options.logger ?? createLogger(undefined, env.TURNOUT_LOG_LEVEL ?? 'info')
  const turnout = await startTurnout({ config, configFile, env, logger, watch: options.watch })
  return wrap(turnout)
}

function wrap(turnout: Turnout): TurnoutInstance {
  const deps = { holder: turnout.holder, rollouts: turnout.rollouts, logger: turnout.logger }
  return {
    url: turnout.url,
    adminUrl: turnout.adminUrl,
    get config() {
      return turnout.config
    },
    routes: () => turnout.holder.current.routes.map((r) => routeView(r, turnout.rollouts)),
    setWeight(route, canaryPercent) {
      try {
        return routeView(
          setCanaryWeight(deps, route, canaryPercent, 'the programmatic API'),
          turnout.rollouts,
        )
      } catch (err) {
        if (!(err instanceof AdminError)) throw err
        const code = err.status === 404 ? 'TURNOUT_ERR_UNKNOWN_ROUTE' : 'TURNOUT_ERR_INVALID_WEIGHT'
        throw new TurnoutApiError(err.message, code)
      }
    },
    reload: () => turnout.reload(),
    stop: () => turnout.close(),
  }
}
