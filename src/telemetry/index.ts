// Builds the request Observer for a config: access log now; metrics and tracing plug in here.

import type { AdminServer } from '../admin/server.js'
import type { Config } from '../config/schema.js'
import { combineObservers, type Observer } from '../proxy/context.js'
import { accessLogObserver } from './access-log.js'
import type { Logger } from './logger.js'

export interface Telemetry {
  observer: Observer
  /** Registers admin endpoints (GET /metrics). */
  mount(admin: AdminServer): void
  shutdown(): Promise<void>
}

export function createTelemetry(config: Config, logger: Logger): Telemetry {
  const observers: Observer[] = []
  if (config.accessLog.enabled) observers.push(accessLogObserver(logger, config.accessLog.sample))
  return {
    observer: combineObservers(observers),
    mount() {},
    async shutdown() {},
  }
}
