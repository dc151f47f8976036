// `workers: N` with N > 1: the same command line runs as the cluster primary and as each worker
// (cluster.fork re-runs bin/turnout.js with the same arguments and WORKER_ID_ENV set).
import cluster from 'node:cluster'
import type { Config } from '../config/schema.js'
import { workerCount } from './count.js'
import { WORKER_ID_ENV } from './messages.js'
import { runPrimary } from './primary.js'
import { runWorker } from './worker.js'

export function runClusterPrimary(opts: {
  config: Config
  configFile: string
  env: NodeJS.ProcessEnv
}): Promise<number> {
  return runPrimary({ ...opts, workers: workerCount(opts.config.workers) })
}

export function runClusterWorker(opts: { configFile: string; env: NodeJS.ProcessEnv }): Promise<number> {
  if (!cluster.isWorker) {
    throw new Error(`${WORKER_ID_ENV} is set by turnout for its cluster workers only: unset it`)
  }
  return runWorker(opts)
}
