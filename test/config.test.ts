// Config validation: golden files for bad configs, every shipped example validates, the published
// JSON Schema matches the zod declaration, defaults and units.
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { clientTimeouts } from '../src/app.js'
import { main } from '../src/cli/main.js'
import { ConfigError, configJsonSchema, parseConfig } from '../src/config/load.js'

function capture() {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s), env: {} }, out, err }
}

const FIXTURES = 'test/fixtures/configs'

t.test('bad configs: every problem at once, FILE:LINE:COL: path: message (golden files)', async (t) => {
  for (const name of readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml'))) {
    const file = `${FIXTURES}/${name}`
    const { io, out } = capture()
    const code = await main(['validate', file], io)
    t.equal(code, 1, `${name} is rejected`)
    t.equal(
      `${out.join('\n')}\n`,
      readFileSync(file.replace(/\.yaml$/, '.expected'), 'utf8'),
      `${name} messages`,
    )
  }
})

t.test('every example in config/ validates', async (t) => {
  const files = readdirSync('config').filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  t.ok(files.length >= 2, 'gateway and local-dev examples exist')
  for (const f of files) {
    const { io, out } = capture()
    t.equal(await main(['validate', `config/${f}`], io), 0, `config/${f}`)
    t.same(out, ['ok'])
    t.match(readFileSync(`config/${f}`, 'utf8'), /yaml-language-server: \$schema=/, 'editors find the schema')
  }
})

t.test('config/turnout.schema.json is generated from the zod schema (run `npm run schema`)', async (t) => {
  const published = JSON.parse(readFileSync('config/turnout.schema.json', 'utf8'))
  t.same(published, { title: 'Turnout configuration', ...configJsonSchema() })
})

t.test('defaults and units', async (t) => {
  const c = parseConfig(
    'routes:\n  - name: a\n    primary: { endpoints: [http://127.0.0.1:1] }\n    split: { sticky: { cookie: id, assign: true } }\n',
  )
  t.equal(c.listen, '0.0.0.0:8080')
  t.equal(c.admin.listen, '127.0.0.1:9901')
  t.same(c.routes[0]!.timeouts, { connect: 2000, response: 30_000, idle: 60_000 })
  t.equal(c.routes[0]!.split.canary, 0)
  t.equal(c.routes[0]!.split.sticky!.maxAge, 30 * 86_400_000)
  t.equal(c.shutdown.drainTimeout, 25_000)
  t.equal(c.limits.maxBodySize, undefined, 'body size limit is off by default')
  const json = parseConfig(
    JSON.stringify({ routes: [{ name: 'j', primary: { endpoints: ['http://127.0.0.1:1'] } }] }),
  )
  t.equal(json.routes[0]!.name, 'j', 'JSON works too')
})

t.test('$' + '{NAME} comes from the environment', async (t) => {
  const c = parseConfig(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the config's own ${NAME} syntax
    'routes:\n  - name: a\n    primary: { endpoints: ["http://${HOST}:${PORT}"] }\n',
    'env.yaml',
    { HOST: '127.0.0.1', PORT: '3001' },
  )
  t.same(c.routes[0]!.primary.endpoints, ['http://127.0.0.1:3001'])
})

t.test(
  'headersTimeout/requestTimeout: one alone still starts (clamped), both the wrong way is an error',
  async (t) => {
    t.same(clientTimeouts({ requestTimeout: 5000 } as never), { headersTimeout: 5000, requestTimeout: 5000 })
    t.same(clientTimeouts({ headersTimeout: 400_000 } as never), {
      headersTimeout: 400_000,
      requestTimeout: 400_000,
    })
    t.same(clientTimeouts({} as never), { headersTimeout: 10_000, requestTimeout: 300_000 })
    t.throws(
      () =>
        parseConfig(
          'limits: { headersTimeout: 20s, requestTimeout: 10s }\nroutes:\n  - name: a\n    primary: { endpoints: [http://127.0.0.1:1] }\n',
        ),
      ConfigError,
    )
  },
)

t.test('empty and non-mapping documents', async (t) => {
  t.throws(() => parseConfig(''), /routes: is required/)
  t.throws(() => parseConfig('- 1\n- 2\n'), /the document must be a mapping/)
  t.throws(() => parseConfig('a: 1\na: 2\nroutes: []\n'), /invalid YAML/)
})
