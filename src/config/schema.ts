// The configuration contract, declared once. The same zod declaration gives the TypeScript types
// (`ConfigInput`, `Config`), the validation (with the messages `turnout validate` prints) and the
// published JSON Schema (`npm run schema` writes config/turnout.schema.json from it).
// Units are parsed here: durations become milliseconds, sizes bytes, percentages numbers 0..100.
import { z } from 'zod'
import { parseStatusRanges } from '../upstream/status-ranges.js'
import { parseDuration, parsePercent, parseSize } from './units.js'

const DURATION_PATTERN = '^\\d+(\\.\\d+)?(ms|s|m|h|d)$'
const SIZE_PATTERN = '^\\d+(\\.\\d+)?\\s*(B|KB|KiB|MB|MiB|GB|GiB)?$'

/** "250ms", "2s", "1m", "30d" → milliseconds. */
export const duration = z
  .string({ error: 'must be a duration like 250ms, 2s, 1m or 30d' })
  .regex(new RegExp(DURATION_PATTERN), { error: 'must be a duration like 250ms, 2s, 1m or 30d' })
  .transform((s) => parseDuration(s) as number)

/** "64KiB", "10MiB" or a number of bytes → bytes. */
const SIZE_ERROR = 'must be a size like 64KiB, 10MiB or a number of bytes'
export const size = z
  .union(
    [
      z.number({ error: SIZE_ERROR }).int({ error: SIZE_ERROR }).nonnegative({ error: SIZE_ERROR }),
      z.string({ error: SIZE_ERROR }).regex(new RegExp(SIZE_PATTERN), { error: SIZE_ERROR }),
    ],
    { error: SIZE_ERROR },
  )
  .transform((v) => (typeof v === 'number' ? v : (parseSize(v) as number)))

/** "5%" or a number of percent points (5) → 5. */
const PERCENT_ERROR = 'must be a percentage from 0 to 100, like 5% or 0.5%'
export const percent = z
  .union(
    [
      z.number({ error: PERCENT_ERROR }).min(0, { error: PERCENT_ERROR }).max(100, { error: PERCENT_ERROR }),
      z.string({ error: PERCENT_ERROR }).regex(/^\d+(\.\d+)?\s*%$/, { error: PERCENT_ERROR }),
    ],
    { error: PERCENT_ERROR },
  )
  .transform((v, ctx) => {
    const n = typeof v === 'number' ? v : parsePercent(v)
    if (n === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a percentage from 0 to 100, like 5% or 0.5%' })
      return z.NEVER
    }
    return n
  })

const weight = z
  .number({ error: 'must be a number from 0 to 100' })
  .min(0, { error: 'must be a number from 0 to 100' })
  .max(100, { error: 'must be a number from 0 to 100' })

const hostPort = z
  .string({ error: 'must be an address like 127.0.0.1:8080, :8080 or 8080' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]*)?:?\d{1,5}$/, {
    error: 'must be an address like 127.0.0.1:8080, :8080 or 8080',
  })

const endpoint = z.string({ error: 'must be an http:// or https:// URL' }).refine(
  (s) => {
    try {
      const u = new URL(s)
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.search === ''
    } catch {
      return false
    }
  },
  { error: 'must be an http:// or https:// URL like http://127.0.0.1:3001' },
)

const variantName = z.enum(['primary', 'canary'], { error: 'must be primary or canary' })

/** A whole number >= 1 (thresholds and counts where 0 would mean "never" or "always"). */
const atLeastOne = (error: string) => z.number({ error }).int({ error }).min(1, { error })

const STATUS_ERROR = 'must be an HTTP status or a list of statuses and ranges, like 200-399 or "200,204"'
const statusList = z
  .union(
    [
      z.number({ error: STATUS_ERROR }),
      z.string({ error: STATUS_ERROR }),
      z.array(z.union([z.number(), z.string()])),
    ],
    {
      error: STATUS_ERROR,
    },
  )
  .transform((v, ctx) => {
    const ranges = parseStatusRanges(v)
    if (ranges === null) {
      ctx.addIssue({ code: 'custom', message: STATUS_ERROR })
      return z.NEVER
    }
    return ranges
  })

const healthCheck = z
  .strictObject({
    path: z
      .string({ error: 'must be a path starting with /, like /healthz' })
      .regex(/^\/[^\s]*$/, { error: 'must be a path starting with /, like /healthz' }),
    interval: duration.prefault('5s'),
    timeout: duration.prefault('1s'),
    unhealthyThreshold: atLeastOne('must be a whole number of consecutive failed checks, at least 1').default(
      3,
    ),
    healthyThreshold: atLeastOne('must be a whole number of consecutive passed checks, at least 1').default(
      2,
    ),
    expectStatus: statusList.prefault('200-399'),
  })
  .describe(
    'Active health checks (off when absent): GET path on every endpoint each interval, with user-agent turnout-health. unhealthyThreshold consecutive failures take an endpoint out, healthyThreshold consecutive passes bring it back; before the first result an endpoint counts as usable.',
  )

const outlierDetection = z
  .strictObject({
    enabled: z.boolean().default(true),
    consecutiveFailures: atLeastOne('must be a whole number of consecutive failures, at least 1').default(5),
    baseEjectionTime: duration.prefault('30s'),
    maxEjectionPercent: z
      .number({ error: 'must be a number from 0 to 100' })
      .min(0, { error: 'must be a number from 0 to 100' })
      .max(100, { error: 'must be a number from 0 to 100' })
      .default(50),
  })
  .describe(
    'Passive outlier detection from live traffic (on by default): consecutiveFailures 5xx answers or gateway errors in a row eject an endpoint for baseEjectionTime times the number of its ejections (at most 10x); it then returns on probation, where one failure ejects it again. At most maxEjectionPercent of the endpoints are ejected at once (one always can be).',
  )

const upstream = z.strictObject({
  endpoints: z.array(endpoint, { error: 'must be a list of URLs' }).min(1, {
    error: 'a variant needs at least one endpoint',
  }),
  healthCheck: healthCheck.optional(),
  outlierDetection: outlierDetection.prefault({}),
  maxInFlight: atLeastOne('must be a whole number of requests, at least 1')
    .optional()
    .describe('Circuit breaker: requests to this variant beyond this many in flight get a 503 at once.'),
})

const RETRY_ON = ['connect-failure', 'reset', 'gateway-error', '5xx'] as const
const RETRY_ON_ERROR = `must be ${RETRY_ON.join(', ')} or an HTTP status from 500 to 599`
const retryOn = z.union(
  [
    z.enum(RETRY_ON, { error: RETRY_ON_ERROR }),
    z
      .number({ error: RETRY_ON_ERROR })
      .int({ error: RETRY_ON_ERROR })
      .min(500, { error: RETRY_ON_ERROR })
      .max(599, {
        error: RETRY_ON_ERROR,
      }),
  ],
  { error: RETRY_ON_ERROR },
)

const retry = z
  .strictObject({
    attempts: atLeastOne(
      'must be a whole number of tries, at least 1 (the first try counts; 1 = no retry)',
    ).default(2),
    on: z
      .array(retryOn)
      .min(1, { error: 'needs at least one condition' })
      .default(['connect-failure', 'reset', 'gateway-error']),
    perTryTimeout: duration.optional(),
    budget: percent.default(20),
    backoff: duration.prefault('25ms'),
    maxBodyBytes: size.prefault('64KiB'),
  })
  .describe(
    'Retries (per route): attempts counts the first try. Only requests that can be replayed are retried (idempotent methods without a body, or a Content-Length body of at most maxBodyBytes, buffered), and only before any byte of the answer reached the client; a retry prefers another endpoint. Retries in flight stay within budget percent of the requests in flight of the variant (at least 3); a connect failure sent nothing, and a retry away from an endpoint ejected meanwhile is down to that endpoint: neither counts against the budget. backoff doubles per retry, with jitter. perTryTimeout bounds the wait for the answer head of each try.',
  )

/** `{ header: x, equals: v }`, `{ cookie: c, matches: re }`: the matcher overrides and faults share. */
export const matcher = z
  .strictObject({
    header: z.string().min(1).optional(),
    cookie: z.string().min(1).optional(),
    equals: z.string().optional(),
    matches: z.string().optional(),
  })
  .superRefine((m, ctx) => {
    if ((m.header === undefined) === (m.cookie === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of header or cookie' })
    }
    if ((m.equals === undefined) === (m.matches === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of equals or matches' })
    }
    if (m.matches !== undefined) {
      try {
        new RegExp(m.matches)
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path: ['matches'],
          message: `is not a valid regular expression (${(err as Error).message})`,
        })
      }
    }
  })

const sticky = z
  .strictObject({
    header: z.string().min(1).optional(),
    cookie: z.string().min(1).optional(),
    assign: z.boolean().default(false),
    maxAge: duration.prefault('30d'),
  })
  .superRefine((s, ctx) => {
    if ((s.header === undefined) === (s.cookie === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of header or cookie' })
    }
    if (s.assign && s.cookie === undefined) {
      ctx.addIssue({ code: 'custom', path: ['assign'], message: 'only works with cookie stickiness' })
    }
  })

const timeouts = z.strictObject({
  connect: duration.prefault('2s'),
  response: duration.prefault('30s'),
  idle: duration.prefault('60s'),
})

const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS']

const compare = z.strictObject({
  status: z.boolean().default(true),
  headers: z.array(z.string().min(1).toLowerCase()).default([]),
  body: z.boolean().default(true),
  ignore: z
    .array(
      z.string().regex(/^\$(\.[^.[\]]+|\[\d+\])*$/, {
        error: 'must be a JSON path like $.generatedAt or $.items[0].id',
      }),
    )
    .default([]),
  maxBodyBytes: size.prefault('1MiB'),
  noise: percent.default(0),
})

const mirror = z
  .strictObject({
    percent: percent.default(100),
    methods: z.array(z.string().min(1).toUpperCase()).default(SAFE_METHODS),
    unsafe: z.boolean().default(false),
    maxInFlight: z.number().int().min(1).default(64),
    timeout: duration.prefault('5s'),
    maxBodyBytes: size.prefault('1MiB'),
    compare: compare.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.unsafe) return
    m.methods.forEach((method, i) => {
      if (!SAFE_METHODS.includes(method)) {
        ctx.addIssue({
          code: 'custom',
          path: ['methods', i],
          message: `${method} is not a safe method: mirroring it would duplicate writes on the canary; set mirror.unsafe: true to allow it`,
        })
      }
    })
  })

const faultRule = z
  .strictObject({
    variant: z.enum(['primary', 'canary', 'both'], { error: 'must be primary, canary or both' }),
    when: matcher.optional(),
    delay: z
      .strictObject({
        fixed: duration.optional(),
        min: duration.optional(),
        max: duration.optional(),
        percent: percent.default(100),
      })
      .superRefine((d, ctx) => {
        const range = d.min !== undefined || d.max !== undefined
        if ((d.fixed !== undefined) === range) {
          ctx.addIssue({ code: 'custom', message: 'needs either fixed, or min and max' })
        } else if (range && (d.min === undefined || d.max === undefined || d.min > d.max)) {
          ctx.addIssue({ code: 'custom', message: 'needs min and max with min <= max' })
        }
      })
      .optional(),
    abort: z
      .strictObject({
        status: z
          .number({ error: 'must be an HTTP status from 200 to 599' })
          .int()
          .min(200, { error: 'must be an HTTP status from 200 to 599' })
          .max(599, { error: 'must be an HTTP status from 200 to 599' }),
        percent: percent.default(100),
      })
      .optional(),
  })
  .superRefine((f, ctx) => {
    if (!f.delay && !f.abort) ctx.addIssue({ code: 'custom', message: 'needs a delay or an abort' })
  })

const faults = z.union([
  z.array(faultRule),
  z.strictObject({ allowHeaders: z.boolean().default(false), rules: z.array(faultRule).default([]) }),
])

const analysisCheck = z
  .strictObject({
    metric: z
      .enum(['errorRate', 'latencyP99', 'errorRateVsPrimary', 'latencyVsPrimary'], {
        error: 'must be errorRate, latencyP99, errorRateVsPrimary or latencyVsPrimary',
      })
      .optional(),
    max: z.union([z.number(), z.string()]).optional(),
    tolerance: percent.optional(),
    confidence: percent.optional(),
    prometheus: z
      .strictObject({
        address: endpoint,
        query: z.string().min(1),
        max: z.number().optional(),
        min: z.number().optional(),
        timeout: duration.prefault('5s'),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    if ((c.metric === undefined) === (c.prometheus === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of metric or prometheus' })
      return
    }
    if (c.prometheus) {
      if (c.prometheus.max === undefined && c.prometheus.min === undefined) {
        ctx.addIssue({ code: 'custom', path: ['prometheus'], message: 'needs max or min' })
      }
      return
    }
    if (c.metric === 'latencyVsPrimary') {
      if (c.max !== undefined) ctx.addIssue({ code: 'custom', path: ['max'], message: 'use tolerance' })
      return
    }
    const m = c.max
    const ok =
      c.metric === 'latencyP99'
        ? typeof m === 'string' && parseDuration(m) !== null
        : (typeof m === 'string' && parsePercent(m) !== null) || (typeof m === 'number' && m >= 0 && m <= 100)
    if (!ok) {
      ctx.addIssue({
        code: 'custom',
        path: ['max'],
        message:
          c.metric === 'latencyP99'
            ? 'must be a duration like 500ms'
            : 'must be a percentage from 0 to 100, like 1% or 0.5%',
      })
    }
  })

const WEBHOOK_TYPES = [
  'confirm-rollout',
  'pre-rollout',
  'rollout',
  'confirm-traffic-increase',
  'confirm-promotion',
  'post-rollout',
  'rollback',
  'event',
] as const

const rollout = z
  .strictObject({
    start: z.enum(['manual', 'auto'], { error: 'must be manual or auto' }).default('manual'),
    steps: z.array(weight).min(1).optional(),
    stepWeight: weight.optional(),
    maxWeight: weight.optional(),
    interval: duration.prefault('1m'),
    minRequests: z.number().int().min(0).default(100),
    failureLimit: z.number().int().min(1).default(2),
    analysis: z.array(analysisCheck).default([]),
    webhooks: z
      .array(
        z.strictObject({
          type: z.enum(WEBHOOK_TYPES, { error: `must be one of ${WEBHOOK_TYPES.join(', ')}` }),
          url: endpoint,
          timeout: duration.prefault('5s'),
          name: z.string().optional(),
        }),
      )
      .default([]),
    stateFile: z.string().min(1).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.steps && (r.stepWeight !== undefined || r.maxWeight !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'use either steps, or stepWeight and maxWeight' })
    } else if (!r.steps && r.stepWeight === undefined) {
      ctx.addIssue({ code: 'custom', message: 'needs steps, or stepWeight (and optionally maxWeight)' })
    } else if (r.stepWeight === 0) {
      ctx.addIssue({ code: 'custom', path: ['stepWeight'], message: 'must be more than 0' })
    }
    if (r.steps) {
      for (let i = 1; i < r.steps.length; i++) {
        if (r.steps[i]! <= r.steps[i - 1]!) {
          ctx.addIssue({ code: 'custom', path: ['steps', i], message: 'steps must increase' })
        }
      }
    }
  })

export const ROUTE_NAME = /^[a-z0-9_-]+$/

const route = z
  .strictObject({
    name: z.string({ error: 'must be a string of a-z, 0-9, _ and -' }).regex(ROUTE_NAME, {
      error: 'must be a string of a-z, 0-9, _ and -',
    }),
    match: z
      .strictObject({
        hosts: z.array(z.string().min(1)).optional(),
        pathPrefix: z.string().regex(/^\//, { error: 'must start with /' }).optional(),
      })
      .prefault({}),
    primary: upstream,
    canary: upstream.optional(),
    split: z
      .strictObject({
        canary: weight.default(0),
        sticky: sticky.optional(),
      })
      .prefault({}),
    overrides: z.array(z.strictObject({ when: matcher, to: variantName })).default([]),
    timeouts: timeouts.prefault({}),
    exposeVariant: z.boolean().default(true),
    balance: z
      .enum(['round-robin', 'least-request'], { error: 'must be round-robin or least-request' })
      .default('round-robin'),
    mirror: mirror.optional(),
    faults: faults.optional(),
    rollout: rollout.optional(),
    retry: retry.optional(),
    failover: z
      .boolean()
      .default(true)
      .describe(
        'While the canary has no usable endpoint (all ejected or down), weighted and sticky canary requests go to the primary. Overrides never fail over.',
      ),
  })
  .superRefine((r, ctx) => {
    if (r.canary) return
    if (r.split.canary > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['split', 'canary'],
        message: 'needs canary endpoints (routes[].canary)',
      })
    }
    r.overrides.forEach((o, i) => {
      if (o.to === 'canary') {
        ctx.addIssue({
          code: 'custom',
          path: ['overrides', i, 'to'],
          message: 'needs canary endpoints (routes[].canary)',
        })
      }
    })
    for (const key of ['mirror', 'rollout'] as const) {
      if (r[key])
        ctx.addIssue({ code: 'custom', path: [key], message: 'needs canary endpoints (routes[].canary)' })
    }
  })

const limits = z
  .strictObject({
    headersTimeout: duration.optional(),
    requestTimeout: duration.optional(),
    keepAliveTimeout: duration.prefault('5s'),
    /** A client that sends no request body bytes for this long gets a 408; its upstream request is cancelled. */
    bodyIdleTimeout: duration.prefault('30s'),
    maxConnections: z.number().int().min(1).default(10_000),
    maxBodySize: size.optional(),
    maxHeaderSize: size.prefault('16KiB'),
  })
  .superRefine((l, ctx) => {
    if (
      l.headersTimeout !== undefined &&
      l.requestTimeout !== undefined &&
      l.headersTimeout > l.requestTimeout
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['headersTimeout'],
        message: 'must not be longer than limits.requestTimeout (Node refuses it)',
      })
    }
  })

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  listen: hostPort.default('0.0.0.0:8080'),
  admin: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:9901'),
      token: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
      protectHealth: z.boolean().default(false),
      protectMetrics: z.boolean().default(false),
    })
    .prefault({}),
  workers: z
    .union([z.number().int().min(1).max(256), z.literal('auto')], {
      error: 'must be a number of workers or auto',
    })
    .default(1),
  trustForwardedHeaders: z.boolean().default(false),
  accessLog: z
    .strictObject({ enabled: z.boolean().default(true), sample: percent.default(100) })
    .prefault({}),
  metrics: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  tracing: z
    .strictObject({
      enabled: z.boolean().optional(),
      endpoint: endpoint.optional(),
      sampleRatio: z.number().min(0).max(1).optional(),
      serviceName: z.string().min(1).optional(),
    })
    .optional(),
  routes: z.array(route, { error: 'must be a list of routes' }).min(1, { error: 'needs at least one route' }),
  limits: limits.prefault({}),
  shutdown: z.strictObject({ drainTimeout: duration.prefault('25s') }).prefault({}),
})

/** The file as a user writes it (units as strings). */
export type ConfigInput = z.input<typeof configSchema>
/** The validated config: defaults applied, durations in ms, sizes in bytes, percentages 0..100. */
export type Config = z.output<typeof configSchema>
export type RouteConfig = Config['routes'][number]
export type MatcherConfig = z.output<typeof matcher>
export type MirrorConfig = z.output<typeof mirror>
export type CompareConfig = z.output<typeof compare>
export type FaultRuleConfig = z.output<typeof faultRule>
export type RolloutConfig = z.output<typeof rollout>
export type AnalysisCheckConfig = z.output<typeof analysisCheck>
export type WebhookType = (typeof WEBHOOK_TYPES)[number]
export type Variant = 'primary' | 'canary'
export type UpstreamConfig = z.output<typeof upstream>
export type HealthCheckConfig = z.output<typeof healthCheck>
export type OutlierConfig = z.output<typeof outlierDetection>
export type RetryConfig = z.output<typeof retry>
export type RetryOn = z.output<typeof retryOn>
