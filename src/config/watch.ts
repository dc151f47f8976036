// Config file watching for hot reload. The file's directory is watched rather than the file, so
// editors that save by writing a new file and renaming it over the old one (vim, many IDEs) and
// symlink swaps (Kubernetes ConfigMaps) are seen too. Events are debounced; a reload is asked only
// when the file's identity or content metadata (inode, size, mtime) changed, so unrelated files in
// the same directory (a rollout state file, say) do not trigger one.
import { type FSWatcher, watch } from 'node:fs'
import { stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

export interface ConfigWatcher {
  close(): void
}

export interface WatchOptions {
  /** Quiet time after the last event before the file is looked at (default 200 ms). */
  debounceMs?: number
  onError?: (err: Error) => void
}

async function signature(file: string): Promise<string> {
  try {
    const s = await stat(file)
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
  } catch {
    return 'missing'
  }
}

export async function watchConfigFile(
  file: string,
  onChange: () => void,
  opts: WatchOptions = {},
): Promise<ConfigWatcher> {
  const path = resolve(file)
  const debounceMs = opts.debounceMs ?? 200
  let last = await signature(path)
  let timer: NodeJS.Timeout | null = null
  let closed = false
  const check = async () => {
    timer = null
    const now = await signature(path)
    if (closed || now === last) return
    last = now
    // A file that is gone right now (mid-rename) is looked at again on the next event.
    if (now !== 'missing') onChange()
  }
  let watcher: FSWatcher
  try {
    watcher = watch(dirname(path), { persistent: false }, () => {
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(() => void check(), debounceMs)
      timer.unref()
    })
  } catch (err) {
    opts.onError?.(err as Error)
    return { close() {} }
  }
  watcher.on('error', (err) => opts.onError?.(err))
  return {
    close() {
      closed = true
      if (timer !== null) clearTimeout(timer)
      watcher.close()
    },
  }
}
