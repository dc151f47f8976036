// The one place the live route table lives. Requests read `current` once and keep that snapshot;
// hot reload swaps it with one assignment. Listeners, pools and the forwarder never change.
import type { RouteTable } from './table.js'

export class TableHolder {
  #current: RouteTable
  readonly #listeners: Array<(next: RouteTable, previous: RouteTable) => void> = []

  constructor(initial: RouteTable) {
    this.#current = initial
  }

  get current(): RouteTable {
    return this.#current
  }

  swap(next: RouteTable): void {
    const previous = this.#current
    this.#current = next
    for (const l of this.#listeners) l(next, previous)
  }

  onSwap(listener: (next: RouteTable, previous: RouteTable) => void): void {
    this.#listeners.push(listener)
  }
}
