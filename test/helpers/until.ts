// The one polling helper for tests: wait for a condition with a generous deadline instead of sleeping
// a fixed time. Two forms:
//   t.ok(await until(() => controller.phase === 'aborted', 15_000))   → true, or false at the deadline
//   const span = await until('the server span', () => spans.find(...))  → the value, or throws
//                                                                        "timed out waiting for the server span"
// The first form is done when the probe's answer is truthy; the named form when it returns anything
// but undefined, null or false (so a found 0 or '' counts).

type Probe<T> = () => T | undefined | null | false | Promise<T | undefined | null | false>

const found = (v: unknown) => v !== undefined && v !== null && v !== false

async function poll<T>(probe: Probe<T>, timeoutMs: number, done = found): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (done(v)) return v as T
    if (Date.now() > deadline) return undefined
    await new Promise((r) => setTimeout(r, 20))
  }
}

export function until(probe: Probe<unknown>, timeoutMs?: number): Promise<boolean>
export function until<T>(what: string, probe: Probe<T>, timeoutMs?: number): Promise<T>
export async function until<T>(
  a: string | Probe<T>,
  b?: Probe<T> | number,
  c?: number,
): Promise<T | boolean> {
  if (typeof a !== 'string')
    return (await poll(a, (b as number | undefined) ?? 10_000, Boolean)) !== undefined
  const v = await poll(b as Probe<T>, c ?? 15_000)
  if (v === undefined) throw new Error(`timed out waiting for ${a}`)
  return v
}
