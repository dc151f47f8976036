// createReloader without a running instance: success and rejection are counted, problems logged in
// the `validate` format, and `announce: false` (the cluster primary) leaves `config reloaded` out.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createReloader } from '../src/lifecycle/reload.js'
import { memoryLogger } from './helpers/turnout.js'

const dir = mkdtempSync(join(tmpdir(), 'turnout-reloader-'))
const GOOD = `listen: 127.0.0.1:0
routes:
  - name: web
    primary:
      endpoints: [http://127.0.0.1:1]
`

t.test('announce: false applies and counts a good file without logging config reloaded', async (t) => {
  const file = join(dir, 'quiet.yaml')
  writeFileSync(file, GOOD)
  const { logger, lines } = memoryLogger()
  const counted: string[] = []
  const applied: number[] = []
  const reload = createReloader({
    file,
    logger,
    announce: false,
    apply: (next) => applied.push(next.routes.length),
    counted: (r) => counted.push(r),
  })
  await reload()
  t.same(applied, [1])
  t.same(counted, ['success'])
  t.equal(lines.filter((l) => l.msg === 'config reloaded').length, 0)

  writeFileSync(file, 'routes: 7\n')
  await t.rejects(reload())
  t.same(counted, ['success', 'error'])
  t.ok(
    lines.some((l) => l.msg === 'config reload rejected'),
    'a rejection is still logged',
  )
  t.same(applied, [1], 'a rejected file is not applied')
})

t.test('by default a good reload is logged', async (t) => {
  const file = join(dir, 'loud.yaml')
  writeFileSync(file, GOOD)
  const { logger, lines } = memoryLogger()
  const reload = createReloader({ file, logger, apply: () => {}, counted: () => {} })
  await reload()
  t.match(
    lines.find((l) => l.msg === 'config reloaded'),
    { file, routes: 1 },
  )
})
