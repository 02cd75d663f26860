// Long-polling fetches wait here for new data on any of their partitions, a timeout, or their
// connection closing, whichever comes first.

type Wake = () => void

export class FetchWaiters {
  private readonly byKey = new Map<string, Set<Wake>>()

  /** Resolves when `notify` is called for one of `keys`, after `timeoutMs`, or on abort. */
  wait(keys: readonly string[], timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake: Wake = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', wake)
        for (const key of keys) {
          const set = this.byKey.get(key)
          set?.delete(wake)
          if (set?.size === 0) this.byKey.delete(key)
        }
        resolve()
      }
      const timer = setTimeout(wake, Math.max(0, timeoutMs))
      if (signal.aborted) {
        wake()
        return
      }
      signal.addEventListener('abort', wake, { once: true })
      for (const key of keys) {
        let set = this.byKey.get(key)
        if (set === undefined) this.byKey.set(key, (set = new Set()))
        set.add(wake)
      }
    })
  }

  notify(key: string): void {
    const set = this.byKey.get(key)
    if (set === undefined) return
    for (const wake of [...set]) wake()
  }

  /** Wakes every waiter (topic deleted, broker stopping). */
  notifyAll(): void {
    for (const key of [...this.byKey.keys()]) this.notify(key)
  }
}

export function partitionKey(topicId: Buffer, partition: number): string {
  return `${topicId.toString('hex')}:${partition}`
}
