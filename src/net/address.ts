// "host:port" parsing for listen addresses. ":8080" and "8080" mean 127.0.0.1 for developer-facing
// shorthands; the config's default proxy address is 0.0.0.0:8080.
import dns from 'node:dns'
import { type AddressInfo, isIP } from 'node:net'

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

/**
 * A loopback IP: 127.0.0.0/8, ::1, or an IPv4-mapped 127.x (::ffff:127.0.0.1 in any spelling). Names
 * are not IPs (resolve them first); 0.0.0.0 and :: are every interface, not loopback.
 */
export function isLoopbackIp(ip: string): boolean {
  const version = isIP(ip)
  if (version === 4) return ip.startsWith('127.')
  if (version !== 6) return false
  let canonical: string
  try {
    canonical = new URL(`http://[${ip}]/`).hostname
  } catch {
    return false // a zone id (fe80::1%eth0) is link-local anyway
  }
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical)
}

/** Host name or IP → every IP it stands for (an IP stands for itself); rejects when it does not resolve. */
export type Resolver = (host: string) => Promise<string[]>

export const systemResolver: Resolver = async (host) => {
  if (isIP(host) !== 0) return [host]
  // Looked up at call time (not a bound import), as net.Server.listen and undici do.
  return (await dns.promises.lookup(host, { all: true })).map((a) => a.address)
}
