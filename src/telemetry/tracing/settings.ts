// Tracing settings: the config's `tracing:` block and the OTEL_* environment (the injected `env`,
// never process.env directly), resolved and validated at start-up whether tracing is on or off, so
// a bad value is a start-up error naming the variable. Imports nothing from OpenTelemetry: the SDK
// is only loaded (sdk.ts, observer.ts) when these settings turn tracing on.

import type { Config } from '../../config/schema.js'
import { TurnoutError } from '../../core/errors.js'

/** An OTEL_* value Turnout cannot read: a startup error naming the variable. */
export class TelemetryConfigError extends TurnoutError {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super('TURNOUT_ERR_TELEMETRY_CONFIG', `${variable}: ${message}`)
    this.name = 'TelemetryConfigError'
  }
}

export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const
export type SamplerName = (typeof SAMPLERS)[number]
export type OtlpProtocol = 'http/protobuf' | 'http/json'

export interface BatchSettings {
  maxQueueSize: number
  maxExportBatchSize: number
  scheduledDelayMillis: number
  exportTimeoutMillis: number
}

export interface TracingSettings {
  enabled: boolean
  /** Full URL the spans are POSTed to (…/v1/traces). */
  url: string
  protocol: OtlpProtocol
  sampler: SamplerName
  /** For the ratio samplers, 0..1. */
  ratio: number
  serviceName: string
  resourceAttributes: Record<string, string>
  headers: Record<string, string>
  /** One export request's deadline, retries included (ms). */
  timeoutMillis: number
  batch: BatchSettings
}

export type Env = Record<string, string | undefined>

const DEFAULT_ENDPOINT = 'http://localhost:4318'

function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim()
  return v === undefined || v === '' ? undefined : v
}

function tracesUrl(base: string): string {
  return base.endsWith('/') ? `${base}v1/traces` : `${base}/v1/traces`
}

function httpUrl(env: Env, name: string): string | undefined {
  const v = envValue(env, name)
  if (v === undefined) return undefined
  let u: URL
  try {
    u = new URL(v)
  } catch {
    throw new TelemetryConfigError(name, `"${v}" is not a URL; expected one like http://collector:4318`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TelemetryConfigError(name, `"${v}" must be an http:// or https:// URL (OTLP over HTTP)`)
  }
  return v
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const v = envValue(env, name)
  if (v === undefined) return fallback
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new TelemetryConfigError(
      name,
      `"${v}" must be a whole number${min > 0 ? ` of at least ${min}` : ''}`,
    )
  }
  return Number(v)
}

/**
 * `key1=value1,key2=value2` (W3C Baggage format, percent-encoded, as OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_EXPORTER_OTLP_HEADERS are written) → record. Entries without a key or value, or that do not
 * decode, are skipped; `;metadata` is ignored. Same rules as @opentelemetry/core's
 * parseKeyPairsIntoRecord, which is not imported here because loading core costs ~200 ms.
 */
export function parseKeyPairs(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (value === undefined) return out
  for (const entry of value.split(',')) {
    const pair = entry.split(';', 1)[0]!
    const eq = pair.indexOf('=')
    if (eq <= 0) continue
    const rawKey = pair.slice(0, eq).trim()
    const rawValue = pair.slice(eq + 1).trim()
    if (rawKey === '' || rawValue === '') continue
    try {
      out[decodeURIComponent(rawKey)] = decodeURIComponent(rawValue)
    } catch {
      // not percent-decodable: skipped, as the SDK does
    }
  }
  return out
}

function offSettings(): TracingSettings {
  return {
    enabled: false,
    url: tracesUrl(DEFAULT_ENDPOINT),
    protocol: 'http/protobuf',
    sampler: 'parentbased_always_on',
    ratio: 1,
    serviceName: 'turnout',
    resourceAttributes: {},
    headers: {},
    timeoutMillis: 10_000,
    batch: {
      maxQueueSize: 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: 5000,
      exportTimeoutMillis: 30_000,
    },
  }
}

function readDisabled(env: Env): boolean {
  const raw = envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase()
  if (raw !== undefined && raw !== 'true' && raw !== 'false') {
    throw new TelemetryConfigError('OTEL_SDK_DISABLED', `"${raw}" must be true or false`)
  }
  return raw === 'true'
}

function readProtocol(env: Env): OtlpProtocol {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const v = envValue(env, name)
    if (v === undefined) continue
    if (v !== 'http/protobuf' && v !== 'http/json') {
      throw new TelemetryConfigError(
        name,
        `"${v}" is not supported; use http/protobuf or http/json${v === 'grpc' ? ' (Turnout exports OTLP over HTTP only)' : ''}`,
      )
    }
    return v
  }
  return 'http/protobuf'
}

function readSampler(config: Config['tracing'], env: Env): { sampler: SamplerName; ratio: number } {
  let sampler: SamplerName = 'parentbased_always_on'
  let ratio = 1
  const samplerRaw = envValue(env, 'OTEL_TRACES_SAMPLER')
  if (samplerRaw !== undefined) {
    if (!(SAMPLERS as readonly string[]).includes(samplerRaw)) {
      throw new TelemetryConfigError(
        'OTEL_TRACES_SAMPLER',
        `"${samplerRaw}" is not a sampler Turnout knows; use one of ${SAMPLERS.join(', ')}`,
      )
    }
    sampler = samplerRaw as SamplerName
  }
  if (sampler.endsWith('traceidratio')) {
    const arg = envValue(env, 'OTEL_TRACES_SAMPLER_ARG')
    if (arg !== undefined) {
      const n = Number(arg)
      if (!/^[0-9.eE+-]+$/.test(arg) || !Number.isFinite(n) || n < 0 || n > 1) {
        throw new TelemetryConfigError(
          'OTEL_TRACES_SAMPLER_ARG',
          `"${arg}" must be a sampling ratio from 0 to 1`,
        )
      }
      ratio = n
    }
  }
  if (config?.sampleRatio !== undefined)
    return { sampler: 'parentbased_traceidratio', ratio: config.sampleRatio }
  return { sampler, ratio }
}

function readTimeout(env: Env): number {
  const name =
    envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') !== undefined
      ? 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'
      : 'OTEL_EXPORTER_OTLP_TIMEOUT'
  return integer(env, name, 10_000, 1)
}

function readBatch(env: Env, timeoutMillis: number): BatchSettings {
  const maxQueueSize = integer(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1)
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, integer(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1)),
    scheduledDelayMillis: integer(env, 'OTEL_BSP_SCHEDULE_DELAY', 5000, 0),
    // Past the exporter's own deadline, so a batch's outcome is always known (and counted).
    exportTimeoutMillis: Math.max(integer(env, 'OTEL_BSP_EXPORT_TIMEOUT', 30_000, 1), timeoutMillis + 1000),
  }
}

/**
 * The tracing settings from the config's `tracing:` block and the OTEL_* environment; the config wins.
 * On: `tracing.enabled: true`, or (when `enabled` is not set) an endpoint in the config or in
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT unless OTEL_SDK_DISABLED=true. `tracing.enabled: false` turns
 * tracing off without reading the environment. Throws TelemetryConfigError for an unreadable value.
 */
export function resolveTracingSettings(config: Config['tracing'], env: Env): TracingSettings {
  if (config?.enabled === false) return offSettings()
  const disabled = readDisabled(env)
  const tracesEndpoint = httpUrl(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  const baseEndpoint = httpUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')
  const protocol = readProtocol(env)
  const { sampler, ratio } = readSampler(config, env)
  const timeoutMillis = readTimeout(env)
  const batch = readBatch(env, timeoutMillis)
  const resourceAttributes = parseKeyPairs(envValue(env, 'OTEL_RESOURCE_ATTRIBUTES'))
  const headers = {
    ...parseKeyPairs(envValue(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
    ...parseKeyPairs(envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
  }
  const serviceName =
    config?.serviceName ??
    envValue(env, 'OTEL_SERVICE_NAME') ??
    resourceAttributes['service.name'] ??
    'turnout'
  const url =
    config?.endpoint !== undefined
      ? tracesUrl(config.endpoint)
      : (tracesEndpoint ?? tracesUrl(baseEndpoint ?? DEFAULT_ENDPOINT))
  const enabled =
    config?.enabled ??
    (!disabled &&
      (config?.endpoint !== undefined || tracesEndpoint !== undefined || baseEndpoint !== undefined))
  return {
    enabled,
    url,
    protocol,
    sampler,
    ratio,
    serviceName,
    resourceAttributes,
    headers,
    timeoutMillis,
    batch,
  }
}
