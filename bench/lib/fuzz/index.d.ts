// Types for the differential fuzz core (plain JS, shared by bench/fuzz.js and the test suite).

export interface Atom {
  side: 'upstream' | 'client'
  what: string
  name?: string
  direct?: unknown
  proxy?: unknown
}

export interface KnownDifference {
  id: string
  kind: 'documented' | 'pending'
  reason: string
  matches(atom: Atom, exchange: unknown): boolean
}

export interface DifferenceClass {
  id: string
  kind: 'documented' | 'pending' | 'unexplained'
  reason: string
  /** Requests that showed this class. */
  count: number
  /** The smallest request that showed it. */
  example: { session: number; requestId: string; bytes: Buffer; atom: Atom }
}

export interface FuzzReport {
  seed: number
  requests: number
  sessions: number
  atoms: number
  classes: Map<string, DifferenceClass>
}

export interface FuzzOptions {
  seed: number
  requests: number
  /** Sessions in flight (default 8). */
  concurrency?: number
  /** Deadline for each answer in ms (default 15000). */
  timeoutMs?: number
  /** Starts the proxy under test in front of `upstreamUrl`. */
  startProxy(upstreamUrl: string): Promise<{ url: string; close(): Promise<void> }>
  onProgress?(done: number): void
  /** Replay only these session numbers (from a report's example) instead of `requests` requests. */
  sessions?: number[]
  /** Sees every request's two runs and its differences, each with its class. */
  onExchange?(exchange: unknown, atoms: Array<Atom & { class: string }>): void
}

export const KNOWN: KnownDifference[]
export function runFuzz(opts: FuzzOptions): Promise<FuzzReport>
export function unexplained(report: FuzzReport): DifferenceClass[]
export function formatReport(report: FuzzReport, opts?: { maxExample?: number }): string
