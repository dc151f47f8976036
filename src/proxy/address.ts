// "host:port" parsing for listen addresses. ":8080" and "8080" mean 127.0.0.1 for developer-facing
// shorthands; the config's default proxy address is 0.0.0.0:8080.
import type { AddressInfo } from 'node:net'

export interface HostPort {
  host: string
  port: number
}

export function parseHostPort(text: string, defaultHost = '127.0.0.1'): HostPort {
  const t = text.trim()
  if (/^\d+$/.test(t)) return { host: defaultHost, port: Number(t) }
  const idx = t.lastIndexOf(':')
  if (idx === -1) throw new Error(`not an address: ${text}`)
  let host = t.slice(0, idx)
  const port = Number(t.slice(idx + 1))
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not a port: ${text}`)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  return { host: host === '' ? defaultHost : host, port }
}

export function formatAddress(a: AddressInfo | string | null): string {
  if (a === null) return ''
  if (typeof a === 'string') return a
  return a.family === 'IPv6' || a.address.includes(':')
    ? `[${a.address}]:${a.port}`
    : `${a.address}:${a.port}`
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host)
}
