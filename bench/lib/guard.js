#!/usr/bin/env node
// Process-group guard for programs that fork their own workers (nginx): runs `cmd args...` in its own
// process group and kills the whole group when the bench asks (SIGTERM) or when the bench dies (the
// IPC channel closes), so no worker is ever orphaned.
// Usage (from the bench, with an IPC channel): node bench/lib/guard.js cmd [args...]
import { spawn } from 'node:child_process'

const [cmd, ...args] = process.argv.slice(2)
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], detached: true })
let stopping = false

function killGroup(sig) {
  try {
    process.kill(-child.pid, sig)
  } catch {
    // group gone
  }
}

function stop() {
  if (stopping) return
  stopping = true
  killGroup('SIGTERM')
  setTimeout(() => {
    killGroup('SIGKILL')
    process.exit(1)
  }, 5000).unref()
}

child.on('spawn', () => process.send?.({ started: true, pid: child.pid }))
child.on('error', (err) => {
  process.stderr.write(`guard: ${cmd}: ${err.message}\n`)
  process.exit(127)
})
child.on('exit', (code, sig) => {
  // make sure nothing of the group is left (a worker of a master that died abruptly)
  killGroup('SIGKILL')
  process.exit(code ?? (sig ? 1 : 0))
})
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('disconnect', stop)
