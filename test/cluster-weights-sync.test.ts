// The primary's weights sync without processes: a stand-in supervisor records what each slot is told.
import { pino } from 'pino'
import t from 'tap'
import type { ToWorker } from '../src/cluster/messages.js'
import type { Slot, Supervisor } from '../src/cluster/supervisor.js'
import { WeightsSync } from '../src/cluster/weights-sync.js'
import { EMPTY_RUNTIME } from '../src/rollout/runtime-state.js'

function setup(n = 3) {
  const slots: Slot[] = Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    worker: null,
    ready: true,
    startedAt: 0,
    quickDeaths: 0,
    applied: -1,
    restart: null,
  }))
  const told: Array<[number, ToWorker]> = []
  const alive = new Set(slots.map((s) => s.id))
  const supervisor = {
    slots,
    leader: slots[0]!,
    followers: slots.slice(1),
    live: (s: Slot) => alive.has(s.id),
    tell: (s: Slot, m: ToWorker) => told.push([s.id, m]),
  } as unknown as Supervisor
  const sync = new WeightsSync(supervisor, pino({ level: 'silent' }))
  return { slots, told, alive, sync }
}

const RUNTIME = { weights: { web: { canary: 30, configCanary: 10 } }, rollouts: {} }

t.test('the leader report goes to every follower, numbered; a follower report is ignored', async (t) => {
  const { slots, told, sync } = setup()
  sync.reported(slots[1]!, { web: 99 }, EMPTY_RUNTIME)
  t.equal(sync.seq, 0)
  t.same(told, [])
  sync.reported(slots[0]!, { web: 30 }, RUNTIME as never)
  t.equal(sync.seq, 1)
  t.same(told, [
    [2, { type: 'turnout:weights', seq: 1, weights: { web: 30 } }],
    [3, { type: 'turnout:weights', seq: 1, weights: { web: 30 } }],
  ])
})

t.test('hello: the kept runtime state for everyone, the weights for a follower only', async (t) => {
  const { slots, told, sync } = setup()
  sync.hello(slots[1]!)
  t.same(told, [[2, { type: 'turnout:runtime', state: EMPTY_RUNTIME }]], 'no weights reported yet')
  sync.reported(slots[0]!, { web: 30 }, RUNTIME as never)
  told.length = 0
  sync.hello(slots[0]!)
  sync.hello(slots[2]!)
  t.same(told, [
    [1, { type: 'turnout:runtime', state: RUNTIME }],
    [3, { type: 'turnout:runtime', state: RUNTIME }],
    [3, { type: 'turnout:weights', seq: 1, weights: { web: 30 } }],
  ])
})

t.test('appliedEverywhere waits for every running follower, not for one that exited', async (t) => {
  const { slots, alive, sync } = setup()
  sync.reported(slots[0]!, { web: 30 }, RUNTIME as never)
  let done = false
  const waiting = sync.appliedEverywhere(1).then(() => {
    done = true
  })
  sync.applied(slots[1]!, 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(done, false, 'follower 3 has not applied')
  alive.delete(3)
  sync.recheck()
  await waiting
  t.equal(done, true)
  t.equal(slots[1]!.applied, 1)
  await sync.appliedEverywhere(1)
  t.pass('already applied: resolves at once')
})
