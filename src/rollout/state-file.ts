// Rollout state on disk (rollout.stateFile), so a restarted Turnout resumes a rollout at the same step
// and weight. Written atomically at each transition: a temporary file next to the target is written
// and fsync'd, then renamed over it (and the directory fsync'd), so a crash leaves the old or the new
// state, never a torn one. Read back with validation: anything unexpected is reported, never guessed.
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { z } from 'zod'
import { ROLLOUT_PHASES, type RolloutPhase } from './phases.js'

export type Phase = RolloutPhase
export const GATES = ['confirm-rollout', 'confirm-traffic-increase', 'confirm-promotion'] as const
export type Gate = (typeof GATES)[number]

const stateSchema = z.strictObject({
  version: z.literal(1),
  route: z.string(),
  /** The canary endpoints the rollout was for: a state file for another canary is not resumed. */
  canary: z.array(z.string()),
  phase: z.enum(ROLLOUT_PHASES),
  step: z.number().int().min(0),
  weight: z.number().min(0).max(100),
  failures: z.number().int().min(0),
  reason: z.string(),
  gate: z.enum(GATES).nullable(),
  preRolloutDone: z.boolean(),
  updatedAt: z.string(),
})

export type RolloutState = z.infer<typeof stateSchema>

export type StateLoad =
  | { kind: 'missing' }
  | { kind: 'ok'; state: RolloutState }
  | { kind: 'bad'; error: string }

/** Reads and validates a state file. A missing file is not an error (first run). */
export async function readStateFile(file: string): Promise<StateLoad> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code === 'ENOENT') return { kind: 'missing' }
    return { kind: 'bad', error: `cannot read it (${e.code ?? e.message})` }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    return { kind: 'bad', error: `not valid JSON (${(err as Error).message})` }
  }
  const parsed = stateSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return {
      kind: 'bad',
      error: `unexpected content (${issue ? `${issue.path.join('.') || 'document'}: ${issue.message}` : 'invalid'})`,
    }
  }
  return { kind: 'ok', state: parsed.data }
}

/** Writes the state atomically: write a temporary file, fsync, rename over the target, fsync the directory. */
export async function writeStateFile(file: string, state: RolloutState): Promise<void> {
  const dir = dirname(file)
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const fh = await open(tmp, 'w', 0o644)
    try {
      await fh.writeFile(`${JSON.stringify(state, null, 2)}\n`, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {})
    throw err
  }
  // Make the rename itself durable; some platforms cannot open a directory, which is fine.
  try {
    const d = await open(dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  } catch {}
}

/** Serialises writes to one file so that the last transition is the one left on disk. */
export class StateWriter {
  #chain: Promise<void> = Promise.resolve()
  constructor(readonly onError: (file: string, err: Error) => void) {}

  write(file: string, state: RolloutState): Promise<void> {
    this.#chain = this.#chain.then(() => writeStateFile(file, state).catch((err) => this.onError(file, err)))
    return this.#chain
  }

  /** Resolves once every queued write has finished. */
  flush(): Promise<void> {
    return this.#chain
  }
}
