// rollout.stateFile: atomic writes, validation on read, and a restart that resumes mid-rollout.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { type RolloutState, readStateFile, writeStateFile } from '../src/rollout/state-file.js'
import { startLoad, until } from './helpers/load.js'
import { type ConfigObject, startProxy } from './helpers/turnout.js'
import { startSampleUpstreams } from './helpers/upstream.js'

const STATE: RolloutState = {
  version: 1,
  route: 'shop',
  canary: ['http://127.0.0.1:1'],
  phase: 'progressing',
  step: 2,
  weight: 25,
  failures: 1,
  reason: 'analysis passed',
  gate: null,
  preRolloutDone: true,
  updatedAt: '2025-01-01T00:00:00.000Z',
}

t.test('state files: atomic round trip; missing, corrupt and unreadable files are told apart', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'sub', 'shop.json')
  t.same(await readStateFile(file), { kind: 'missing' })
  await writeStateFile(file, STATE)
  await writeStateFile(file, { ...STATE, step: 3 })
  t.same(await readStateFile(file), { kind: 'ok', state: { ...STATE, step: 3 } })
  t.same(await readdir(join(dir, 'sub')), ['shop.json'], 'no temporary files left behind')

  await writeFile(file, '{"version":1,')
  const torn = await readStateFile(file)
  t.equal(torn.kind, 'bad')
  t.match(torn.kind === 'bad' && torn.error, /not valid JSON/)
  await writeFile(file, JSON.stringify({ ...STATE, phase: 'exploded' }))
  const odd = await readStateFile(file)
  t.match(odd.kind === 'bad' && odd.error, /unexpected content \(phase:/)
  await mkdir(join(dir, 'dir.json'))
  const unreadable = await readStateFile(join(dir, 'dir.json'))
  t.match(unreadable.kind === 'bad' && unreadable.error, /cannot read it \(EISDIR\)/)
})

function config(primary: string, canary: string, rollout: ConfigObject, split = 0): ConfigObject {
  return {
    routes: [
      {
        name: 'shop',
        primary: { endpoints: [primary] },
        canary: { endpoints: [canary] },
        split: { canary: split },
        rollout,
      },
    ],
  }
}

t.test('a restart mid-rollout resumes at the same step and weight', async (t) => {
  const { primary, canary } = await startSampleUpstreams(t)
  const stateFile = join(t.testdir({}), 'shop.json')
  const rollout = { steps: [10, 30, 60], interval: '250ms', minRequests: 30, stateFile, start: 'auto' }
  const first = await startProxy(t, config(primary.url, canary.url, rollout))
  const load = startLoad(first.url, { workers: 4 })
  t.teardown(() => load.stop())
  const c1 = first.rollouts.get('shop')!
  t.ok(await until(() => c1.status().step === 1, 10_000), 'reached the second step')
  await first.close() // the "crash": state on disk is what was written at the last transition
  await load.stop()
  const before = c1.status()
  t.same([before.phase, before.step, before.weight], ['progressing', 1, 30])
  const disk = JSON.parse(await readFile(stateFile, 'utf8')) as RolloutState
  t.same([disk.phase, disk.step, disk.weight, disk.failures], ['progressing', 1, 30, before.failures])

  const second = await startProxy(t, config(primary.url, canary.url, { ...rollout, interval: '1h' }))
  const s = second.rollouts.status('shop')!
  t.same(
    [s.phase, s.step, s.weight, s.failures],
    ['progressing', 1, 30, before.failures],
    'same phase, step, weight and failures',
  )
  t.equal(
    second.holder.current.byName.get('shop')!.weight.canary,
    30,
    'the live weight from the first request',
  )
  t.match(s.reason, /resumed from the state file/)
})

t.test('an unusable state file: reported, the route starts at the config weight, paused', async (t) => {
  const { primary, canary } = await startSampleUpstreams(t)
  const stateFile = join(t.testdir({ 'shop.json': '{"version":1,"route":' }), 'shop.json')
  const rollout = { steps: [10, 30], interval: '1h', stateFile, start: 'auto' }
  const turnout = await startProxy(t, config(primary.url, canary.url, rollout, 5))
  const c = turnout.rollouts.get('shop')!
  const s = c.status()
  t.same([s.phase, s.step, s.weight], ['paused', 0, 5])
  t.match(s.reason, /state file .*shop\.json is unusable \(not valid JSON/)
  t.equal(await readFile(stateFile, 'utf8'), '{"version":1,"route":', 'left as it was for inspection')
  c.resume()
  t.same([c.status().phase, c.status().weight], ['progressing', 10], 'resume starts at the first step')
  await turnout.rollouts.close()
  t.equal((JSON.parse(await readFile(stateFile, 'utf8')) as RolloutState).weight, 10, 'then written again')
})

t.test('a state file for another canary is not resumed', async (t) => {
  const { primary, canary } = await startSampleUpstreams(t)
  const stateFile = join(t.testdir({ 'shop.json': JSON.stringify(STATE) }), 'shop.json')
  const turnout = await startProxy(
    t,
    config(primary.url, canary.url, { steps: [10], interval: '1h', stateFile }),
  )
  const s = turnout.rollouts.status('shop')!
  t.same([s.phase, s.weight], ['idle', 0])
})
