// Starts Turnout in-process from a config object, quiet, on loopback port 0.
import { pino } from 'pino'
import type { Test } from 'tap'
import { startTurnout, type Turnout } from '../../src/app.js'
import { parseConfig } from '../../src/config/load.js'
import { startSampleUpstreams } from './upstream.js'

export type ConfigObject = Record<string, unknown>

export async function startProxy(
  t: Test,
  config: ConfigObject,
  opts: { logger?: pino.Logger } = {},
): Promise<Turnout> {
  const full = {
    listen: '127.0.0.1:0',
    admin: { listen: '127.0.0.1:0' },
    accessLog: { enabled: false },
    ...config,
  }
  const turnout = await startTurnout({
    config: parseConfig(JSON.stringify(full), 'test'),
    logger: opts.logger ?? pino({ level: 'silent' }),
  })
  t.teardown(() => turnout.close())
  return turnout
}

/**
 * The demo's sample upstreams behind an in-process Turnout with one route, `shop`, from the primary to
 * the canary, `route` merged into it (rollout, overrides…).
 */
export async function startSampleShop(t: Test, route: ConfigObject, canaryExtra: ConfigObject = {}) {
  const { primary, canary } = await startSampleUpstreams(t)
  const turnout = await startProxy(t, {
    routes: [
      {
        name: 'shop',
        primary: { endpoints: [primary.url] },
        canary: { endpoints: [canary.url], ...canaryExtra },
        ...route,
      },
    ],
  })
  return { primary, canary, turnout }
}

/** A pino logger whose lines land in an array (parsed JSON), for asserting on logs. */
export function memoryLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino(
    { level: 'info' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>)
      },
    },
  )
  return { logger, lines }
}

/** Sends raw bytes on a fresh TCP connection and resolves with everything the server sent back. */
export async function rawExchange(url: string, bytes: string | Buffer, timeoutMs = 10_000): Promise<string> {
  const { connect } = await import('node:net')
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname)
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(Buffer.concat(chunks).toString('latin1'))
    }, timeoutMs)
    socket.on('data', (c) => chunks.push(c))
    socket.on('error', (err) => {
      clearTimeout(timer)
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'))
      else reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString('latin1'))
    })
    socket.write(bytes)
  })
}
