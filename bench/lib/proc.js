// Child-process bookkeeping for the bench: every process the bench starts is registered here and
// stopped when the bench exits, is interrupted, or crashes. Node children also get an IPC channel and
// exit on their own when it disconnects (the parent died), and when `setpriv` exists every child gets a
// parent-death signal, so nothing outlives the bench even if it is SIGKILLed.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'

const children = new Set()
const tempDirs = new Set()
let cleanupInstalled = false

/** True when `cmd` can be run (looked up on PATH). */
export function hasCommand(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return r.status === 0 && r.stdout.trim() !== ''
}

const HAS_SETPRIV = hasCommand('setpriv')
const HAS_TASKSET = hasCommand('taskset')

export const tools = { setpriv: HAS_SETPRIV, taskset: HAS_TASKSET }

/**
 * Start a child process.
 * @param {string} cmd
 * @param {string[]} args
 * @param {{ name: string, cpus?: string | null, ipc?: boolean, stdout?: 'pipe' | 'ignore' | 'inherit' | number,
 *   stderr?: 'pipe' | 'ignore' | 'inherit' | number, env?: NodeJS.ProcessEnv, group?: boolean, cwd?: string,
 *   noDeathSig?: boolean }} opts
 *   `group` puts the child in its own process group so stop() also reaches its own children;
 *   `noDeathSig` skips the parent-death signal (for lib/guard.js, which must outlive the bench to clean up).
 */
export function startChild(cmd, args, opts) {
  installCleanup()
  const prefix = []
  if (HAS_SETPRIV && !opts.noDeathSig) prefix.push('setpriv', '--pdeathsig', 'KILL', '--')
  if (opts.cpus && HAS_TASKSET) prefix.push('taskset', '-c', opts.cpus)
  const argv = [...prefix, cmd, ...args]
  const stdio = ['ignore', opts.stdout ?? 'ignore', opts.stderr ?? 'pipe']
  if (opts.ipc) stdio.push('ipc')
  const child = spawn(argv[0], argv.slice(1), {
    stdio,
    env: opts.env ?? process.env,
    detached: opts.group === true,
    cwd: opts.cwd,
  })
  const entry = { child, name: opts.name, group: opts.group === true, stderrTail: '' }
  child.entry = entry
  children.add(entry)
  if (child.stderr) {
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (s) => {
      entry.stderrTail = (entry.stderrTail + s).slice(-4000)
    })
  }
  child.on('exit', () => children.delete(entry))
  child.on('error', (err) => {
    entry.stderrTail += `\nspawn error: ${err.message}`
    children.delete(entry)
  })
  return child
}

function signal(entry, sig) {
  const { child } = entry
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
  try {
    if (entry.group) process.kill(-child.pid, sig)
    else child.kill(sig)
  } catch {
    // already gone
  }
}

/** Ask a child to stop (SIGTERM), SIGKILL it after `graceMs`. Resolves once it has exited. */
export async function stopChild(child, graceMs = 5000) {
  const entry = child.entry
  if (!entry || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  signal(entry, 'SIGTERM')
  const timer = setTimeout(() => signal(entry, 'SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
  // a process group may still hold a straggler (nginx worker); make sure it is gone
  if (entry.group) {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // nothing left
    }
  }
}

export async function stopAll(graceMs = 3000) {
  await Promise.all([...children].map((e) => stopChild(e.child, graceMs)))
}

/** A temp dir removed on exit. */
export function tempDir(prefix) {
  installCleanup()
  const dir = fs.mkdtempSync(`${process.env.TMPDIR ?? '/tmp'}/${prefix}`)
  tempDirs.add(dir)
  return dir
}

export function removeTempDir(dir) {
  tempDirs.delete(dir)
  fs.rmSync(dir, { recursive: true, force: true })
}

function killAllSync() {
  for (const entry of children) signal(entry, 'SIGKILL')
  children.clear()
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  tempDirs.clear()
}

function installCleanup() {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.on('exit', killAllSync)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping child processes\n`)
      const hard = setTimeout(() => process.exit(130), 4000)
      hard.unref()
      stopAll(2000).finally(() => process.exit(130))
    })
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`)
    killAllSync()
    process.exit(1)
  })
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection: ${err?.stack ?? err}\n`)
    killAllSync()
    process.exit(1)
  })
}

/** Wait for the first IPC message matching `pred` from a child, or fail on exit/timeout. */
export function waitForMessage(child, pred, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs)
    function onMessage(m) {
      if (pred(m)) done(null, m)
    }
    function onExit(code, sig) {
      const tail = child.entry?.stderrTail?.trim()
      done(
        new Error(
          `${what}: exited (${sig ?? code})${tail ? `: ${tail.split('\n').slice(-5).join(' | ')}` : ''}`,
        ),
      )
    }
    function done(err, value) {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (err) reject(err)
      else resolve(value)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

/** Exit the current (child) process when its parent goes away. */
export function exitWithParent(onExit = () => process.exit(0)) {
  if (process.send) process.on('disconnect', onExit)
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, onExit)
}

/** RSS in bytes of a process and all its descendants (Linux /proc), or null when unreadable. */
export function treeRss(pid) {
  let total = 0
  let seen = false
  const stack = [pid]
  const visited = new Set()
  while (stack.length > 0 && visited.size < 10_000) {
    const p = stack.pop()
    if (visited.has(p)) continue
    visited.add(p)
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8')
      const m = /VmRSS:\s+(\d+) kB/.exec(status)
      if (m) {
        total += Number(m[1]) * 1024
        seen = true
      }
    } catch {
      continue
    }
    try {
      for (const t of fs.readdirSync(`/proc/${p}/task`)) {
        const kids = fs.readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim()
        if (kids) for (const k of kids.split(/\s+/)) stack.push(Number(k))
      }
    } catch {
      // no children info
    }
  }
  return seen ? total : null
}
