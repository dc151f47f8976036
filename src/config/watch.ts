// Config file watching for hot reload. The file's directory is watched rather than the file, so
// editors that save by writing a new file and renaming it over the old one (vim, many IDEs) and
// symlink swaps (Kubernetes ConfigMaps) are seen too. Events are debounced; a reload is asked only
// when the file's content changed, so unrelated files in the same directory (a rollout state file,
// say) do not trigger one.
//
// Content, not stat metadata: two in-place writes of the same size within the file system's
// timestamp granularity look identical to stat. And the baseline is the text the running config was
// parsed from (`initialText`), not the file as first seen by the watcher, so a change made between
// reading the config and starting to watch is still reloaded.
import { type FSWatcher, watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

export interface ConfigWatcher {
  close(): void
}

export interface WatchOptions {
  /** Quiet time after the last event before the file is looked at (default 200 ms). */
  debounceMs?: number
  /** The text the running config was parsed from; when the file differs already, a reload is asked at once. */
  initialText?: string
  onError?: (err: Error) => void
}

async function content(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8')
  } catch {
    return null
  }
}

export async function watchConfigFile(
  file: string,
  onChange: () => void,
  opts: WatchOptions = {},
): Promise<ConfigWatcher> {
  const path = resolve(file)
  const debounceMs = opts.debounceMs ?? 200
  let last = opts.initialText ?? (await content(path))
  let timer: NodeJS.Timeout | null = null
  let closed = false
  const check = async () => {
    timer = null
    const now = await content(path)
    // A file that is gone right now (mid-rename) is looked at again on the next event.
    if (closed || now === null || now === last) return
    last = now
    onChange()
  }
  const schedule = () => {
    if (timer !== null) clearTimeout(timer)
    timer = setTimeout(() => void check(), debounceMs)
    timer.unref()
  }
  let watcher: FSWatcher
  try {
    watcher = watch(dirname(path), { persistent: false }, schedule)
  } catch (err) {
    opts.onError?.(err as Error)
    return { close() {} }
  }
  watcher.on('error', (err) => opts.onError?.(err))
  // Anything written between reading the config and watching is seen now.
  if (opts.initialText !== undefined) schedule()
  return {
    close() {
      closed = true
      if (timer !== null) clearTimeout(timer)
      watcher.close()
    },
  }
}
