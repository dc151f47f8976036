// Wires one Turnout instance: config → compiled table → listeners, with telemetry and the admin
// listener around it. Everything that changes at runtime goes through `holder.swap()`.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AdminServer } from './admin/server.js'
import { compile } from './config/compile.js'
import { ConfigError, formatProblem, loadConfigFile } from './config/load.js'
import type { Config, RouteConfig } from './config/schema.js'
import { formatAddress, isLoopback, parseHostPort } from './proxy/address.js'
import { createRequestHandler } from './proxy/handle.js'
import { createUpgradeHandler } from './proxy/upgrade.js'
import { TableHolder } from './routing/holder.js'
import type { RouteTable } from './routing/table.js'
import { createTelemetry } from './telemetry/index.js'
import { createLogger, flushLogger, type Logger } from './telemetry/logger.js'
import { Pools } from './upstream/pools.js'

export interface TurnoutOptions {
  config: Config
  /** Where the config came from; reload() re-reads it. */
  configFile?: string
  logger?: Logger
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
  /** Re-reads the config file, validates and swaps it in; throws ConfigError and changes nothing if invalid. */
  reload(): Promise<void>
  /** Applies an already validated config. */
  apply(config: Config): void
  /** Graceful stop: stop accepting, finish in-flight requests (bounded by drainTimeout), close. */
  close(): Promise<void>
}

const DEFAULT_HEADERS_TIMEOUT = 10_000
const DEFAULT_REQUEST_TIMEOUT = 300_000

/** Node refuses headersTimeout > requestTimeout; a config that sets one of them still starts. */
export function clientTimeouts(limits: Config['limits']): { headersTimeout: number; requestTimeout: number } {
  const requestTimeout =
    limits.requestTimeout ?? Math.max(DEFAULT_REQUEST_TIMEOUT, limits.headersTimeout ?? 0)
  const headersTimeout = limits.headersTimeout ?? Math.min(DEFAULT_HEADERS_TIMEOUT, requestTimeout)
  return { headersTimeout, requestTimeout }
}

export async function startTurnout(opts: TurnoutOptions): Promise<Turnout> {
  let config = opts.config
  const logger = opts.logger ?? createLogger()
  const adminListen = parseHostPort(config.admin.listen)
  if (!isLoopback(adminListen.host) && !config.admin.token) {
    throw new ConfigError([
      {
        file: opts.configFile ?? '<config>',
        line: 1,
        col: 1,
        path: 'admin.token',
        message: `is required when admin.listen (${config.admin.listen}) is not a loopback address`,
      },
    ])
  }

  const pools = new Pools()
  const telemetry = createTelemetry(config, logger)
  const compileTable = (c: Config, previous?: RouteTable): RouteTable =>
    compile(c, {
      pools,
      // A reload keeps a weight changed at runtime unless the config changed that route's weight.
      weightFor: previous
        ? (r: RouteConfig) => {
            const old = previous.byName.get(r.name)
            return old && old.config.split.canary === r.split.canary ? old.weight.canary : r.split.canary
          }
        : undefined,
    })
  const holder = new TableHolder(compileTable(config))

  let draining = false
  let ready = false
  const limits = config.limits
  const { headersTimeout, requestTimeout } = clientTimeouts(limits)
  const proxy: Server = createServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout: limits.keepAliveTimeout,
      maxHeaderSize: limits.maxHeaderSize,
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
    },
    createRequestHandler({
      holder,
      observer: telemetry.observer,
      trustForwarded: config.trustForwardedHeaders,
      maxBodySize: limits.maxBodySize ?? null,
      draining: () => draining,
    }),
  )
  proxy.maxConnections = limits.maxConnections
  proxy.on(
    'upgrade',
    createUpgradeHandler({
      holder,
      observer: telemetry.observer,
      trustForwarded: config.trustForwardedHeaders,
    }),
  )
  proxy.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const code = err.code ?? ''
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const status =
      code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_TIMEOUT'
          ? 408
          : 400
    logger.warn(
      { client: (socket as import('node:net').Socket).remoteAddress, code, status, err: err.message },
      'bad client request',
    )
    const body = JSON.stringify({
      error: status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request',
    })
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    )
  })

  const admin = new AdminServer({
    token: config.admin.token ?? null,
    protectHealth: config.admin.protectHealth,
    protectMetrics: config.admin.protectMetrics,
    logger,
    ready: () => ready && !draining,
  })
  telemetry.mount(admin)

  const listen = async (server: Server, address: string, name: string): Promise<AddressInfo> => {
    const { host, port } = parseHostPort(address)
    server.listen(port, host)
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw new Error(`cannot listen on ${address} for the ${name} listener: ${(err as Error).message}`)
      }),
    ])
    const info = server.address() as AddressInfo
    logger.info({ listener: name, address: formatAddress(info) }, 'listening')
    return info
  }

  let proxyAddress: AddressInfo
  let adminAddress: AddressInfo
  try {
    proxyAddress = await listen(proxy, config.listen, 'proxy')
    adminAddress = await listen(admin.server, config.admin.listen, 'admin')
  } catch (err) {
    proxy.close()
    admin.server.close()
    await pools.destroy()
    throw err
  }
  ready = true

  const hostFor = (a: AddressInfo) =>
    a.address === '0.0.0.0' || a.address === '::'
      ? '127.0.0.1'
      : a.family === 'IPv6'
        ? `[${a.address}]`
        : a.address

  let closing: Promise<void> | null = null
  const turnout: Turnout = {
    get config() {
      return config
    },
    holder,
    admin,
    logger,
    url: `http://${hostFor(proxyAddress)}:${proxyAddress.port}`,
    adminUrl: `http://${hostFor(adminAddress)}:${adminAddress.port}`,
    proxyAddress,
    adminAddress,
    apply(next: Config) {
      holder.swap(compileTable(next, holder.current))
      config = next
    },
    async reload() {
      if (!opts.configFile) throw new Error('no config file to reload')
      try {
        const next = await loadConfigFile(opts.configFile)
        turnout.apply(next)
        logger.info({ file: opts.configFile, routes: next.routes.length }, 'config reloaded')
      } catch (err) {
        if (err instanceof ConfigError) {
          for (const p of err.problems) logger.error({ problem: formatProblem(p) }, 'config reload rejected')
        } else {
          logger.error({ err: (err as Error).message }, 'config reload failed')
        }
        throw err
      }
    },
    close() {
      closing ??= (async () => {
        draining = true
        logger.info({ drainTimeout: config.shutdown.drainTimeout }, 'draining')
        const closed = once(proxy, 'close')
        proxy.close()
        proxy.closeIdleConnections()
        // Connections that finish their last response while draining become idle: close them too.
        const sweep = setInterval(() => proxy.closeIdleConnections(), 50)
        const deadline = setTimeout(() => proxy.closeAllConnections(), config.shutdown.drainTimeout)
        await closed
        clearInterval(sweep)
        clearTimeout(deadline)
        admin.server.close()
        admin.server.closeAllConnections()
        await pools.close()
        await telemetry.shutdown()
        logger.info('stopped')
        await flushLogger(logger)
      })()
      return closing
    },
  }
  return turnout
}
