// The primary's IPC call table without processes: answers, exits and timeouts.
import t from 'tap'
import { CallTable } from '../src/cluster/calls.js'

const NEVER = { timeoutMs: 60_000, timedOut: () => new Error('timed out') }

t.test('a call resolves once every asked worker answered, with their answers', async (t) => {
  const table = new CallTable<string>()
  const sent: Array<[number, number]> = []
  const result = table.ask([1, 2], { ...NEVER, send: (id, w) => sent.push([id, w]) })
  t.equal(sent.length, 2)
  const id = sent[0]![0]
  t.same(sent, [
    [id, 1],
    [id, 2],
  ])
  table.answer(id, 2, 'two')
  table.answer(id, 2, 'again')
  table.answer(id, 3, 'not asked')
  t.equal(table.size, 1, 'still waiting for worker 1')
  table.answer(id, 1, 'one')
  t.same(await result, ['two', 'one'])
  t.equal(table.size, 0)
  table.answer(id, 1, 'late')
})

t.test('a worker that exits is no longer waited for', async (t) => {
  const table = new CallTable<string>()
  let id = -1
  const both = table.ask([1, 2], { ...NEVER, send: (i) => (id = i) })
  const other = table.ask([2], { ...NEVER, send: () => {} })
  table.answer(id, 1, 'one')
  table.exited(2)
  t.same(await both, ['one'])
  t.same(await other, [], 'a call whose only worker exited ends with no answer')
  t.equal(table.size, 0)
})

t.test('a call that asks nobody resolves at once; ids differ per call', async (t) => {
  const table = new CallTable<number>()
  t.same(await table.ask([], { ...NEVER, send: () => t.fail('nobody to send to') }), [])
  const ids: number[] = []
  void table.ask([1], { ...NEVER, send: (i) => ids.push(i) })
  void table.ask([1], { ...NEVER, send: (i) => ids.push(i) })
  t.not(ids[0], ids[1])
  table.exited(1)
})

t.test('a call times out with its error and is forgotten', async (t) => {
  const table = new CallTable<string>()
  let id = -1
  const call = table.ask([1], {
    timeoutMs: 20,
    timedOut: () => new Error('worker 1 did not answer'),
    send: (i) => (id = i),
  })
  await t.rejects(call, { message: 'worker 1 did not answer' })
  t.equal(table.size, 0)
  table.answer(id, 1, 'late')
  t.equal(table.size, 0)
})
