// Scenario definitions shared by run.js, memory.js and the upstream.

export const SMALL_BODY = 'hello from the turnout bench upstream\n'
export const BIG_SIZE = 64 * 1024
export const BIG_BODY = Buffer.alloc(BIG_SIZE)
for (let i = 0; i < BIG_SIZE; i++) BIG_BODY[i] = 97 + (i % 26)
export const UPLOAD_SIZE = 1024 * 1024

/** The request kinds the upstream serves, with what a correct answer looks like. */
export const REQUESTS = {
  small: { method: 'GET', path: '/small', bodySize: 0, expect: Buffer.from(SMALL_BODY) },
  big: { method: 'GET', path: '/64k', bodySize: 0, expect: BIG_BODY },
  upload: {
    method: 'POST',
    path: '/upload',
    bodySize: UPLOAD_SIZE,
    expect: Buffer.from(`received ${UPLOAD_SIZE}\n`),
  },
}

/**
 * Each scenario: the request kind, default client connections, and the target rows it compares.
 * A row is { id, base, label, variant }: `base` is what --targets filters on; `variant` tells the target
 * how to configure itself ('split' = 90/10 split to two fast upstreams, 'mirror' = all traffic to the
 * primary plus a 100% mirror to the slow canary, 'nomirror' = all traffic to the primary, no mirror).
 */
const SPLIT_ROWS = ['direct', 'turnout', 'turnout-minimal', 'undici-min', 'http-proxy', 'nginx'].map(
  (id) => ({
    id,
    base: id,
    label: id,
    variant: 'split',
  }),
)

export const SCENARIOS = {
  'small-get': {
    description: 'GET with a small fixed body (the headline)',
    request: 'small',
    connections: 50,
    rows: SPLIT_ROWS,
  },
  'get-64k': {
    description: 'GET with a 64 KiB response body',
    request: 'big',
    connections: 50,
    rows: SPLIT_ROWS,
  },
  'post-1m': {
    description: '1 MiB POST upload (request body streamed through the proxy)',
    request: 'upload',
    connections: 16,
    rows: SPLIT_ROWS,
  },
  'conn-1000': {
    description: 'small GET over 1,000 concurrent client connections',
    request: 'small',
    connections: 1000,
    rows: SPLIT_ROWS,
  },
  'mirror-slow': {
    description:
      'small GET; 100% of GETs mirrored to a canary that answers in 200 ms (client p99 is the point)',
    request: 'small',
    connections: 50,
    slowCanary: true,
    rows: [
      { id: 'direct', base: 'direct', label: 'direct', variant: 'nomirror' },
      { id: 'turnout-nomirror', base: 'turnout', label: 'turnout (no mirror)', variant: 'nomirror' },
      { id: 'turnout-mirror', base: 'turnout', label: 'turnout + mirror', variant: 'mirror' },
      { id: 'undici-min-mirror', base: 'undici-min', label: 'undici-min --mirror', variant: 'mirror' },
      { id: 'nginx-mirror', base: 'nginx', label: 'nginx + mirror', variant: 'mirror' },
    ],
  },
}

export const HEADLINE = 'small-get'
export const ALL_TARGETS = ['direct', 'turnout', 'turnout-minimal', 'undici-min', 'http-proxy', 'nginx']
