// Runs the real `turnout` binary (bin/turnout.js → dist/) as a child process.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

export const BIN = new URL('../../bin/turnout.js', import.meta.url).pathname

export interface Running {
  child: ChildProcess
  lines: Array<Record<string, unknown>>
  stderr: string[]
  /** Resolves with the first JSON log line matching `pred`. */
  waitFor(
    pred: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>
  exit: Promise<number | null>
}

/** `nodeArgs` go before the script (e.g. `--import` a preload); cluster workers inherit them. */
export function startBin(args: string[], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Running {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Array<Record<string, unknown>> = []
  const stderr: string[] = []
  const waiters: Array<{
    pred: (l: Record<string, unknown>) => boolean
    resolve: (l: Record<string, unknown>) => void
  }> = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>
    try {
      line = JSON.parse(text) as Record<string, unknown>
    } catch {
      line = { text }
    }
    lines.push(line)
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  })
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text))
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  return {
    child,
    lines,
    stderr,
    exit,
    waitFor(pred, timeoutMs = 20_000) {
      const found = lines.find(pred)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching log line; stderr: ${stderr.join('\n')}`)),
          timeoutMs,
        )
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer)
            resolve(l)
          },
        })
      })
    },
  }
}

export async function runBin(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  nodeArgs: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => {
    stdout += d
  })
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const [code] = await once(child, 'exit')
  return { code: code as number | null, stdout, stderr }
}
