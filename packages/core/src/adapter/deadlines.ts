/**
 * One timer for many deadlines: a min-heap of (deadline, callback) with a single `setTimeout`
 * armed for the earliest. Publishing thousands of messages costs heap pushes, not timers.
 */

const MAX_TIMER_MS = 2 ** 31 - 1

interface Entry {
  at: number
  fire: () => void
  cancelled: boolean
}

/** A deadline that can be cancelled; cancelling after it fired is a no-op. */
export interface DeadlineHandle {
  cancel(): void
}

export interface DeadlineTimer {
  /** call `fire` at epoch ms `at` (at once, on the next turn, when `at` has passed) */
  schedule(at: number, fire: () => void): DeadlineHandle
  /** deadlines not yet fired or cancelled (cancelled ones may linger until they reach the top) */
  readonly size: number
  /** cancel everything; nothing fires after this */
  clear(): void
}

/**
 * Creates a deadline timer. The timer is not unref'd: a pending deadline is a pending publish or
 * wait, which must settle before the process may exit; cancelling the earliest one re-arms.
 */
export function createDeadlineTimer(): DeadlineTimer {
  const heap: Entry[] = []
  let timer: NodeJS.Timeout | undefined
  let armedAt = Number.POSITIVE_INFINITY

  const swap = (i: number, j: number): void => {
    const a = heap[i] as Entry
    heap[i] = heap[j] as Entry
    heap[j] = a
  }
  const up = (index: number): void => {
    let i = index
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((heap[parent] as Entry).at <= (heap[i] as Entry).at) return
      swap(i, parent)
      i = parent
    }
  }
  const down = (index: number): void => {
    let i = index
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let smallest = i
      if (l < heap.length && (heap[l] as Entry).at < (heap[smallest] as Entry).at) smallest = l
      if (r < heap.length && (heap[r] as Entry).at < (heap[smallest] as Entry).at) smallest = r
      if (smallest === i) return
      swap(i, smallest)
      i = smallest
    }
  }
  const pop = (): Entry | undefined => {
    const top = heap[0]
    const last = heap.pop()
    if (heap.length > 0 && last) {
      heap[0] = last
      down(0)
    }
    return top
  }

  const arm = (): void => {
    while (heap.length > 0 && (heap[0] as Entry).cancelled) pop()
    const next = heap[0]
    if (!next) {
      if (timer) clearTimeout(timer)
      timer = undefined
      armedAt = Number.POSITIVE_INFINITY
      return
    }
    if (timer && armedAt <= next.at) return
    if (timer) clearTimeout(timer)
    armedAt = next.at
    // setTimeout takes at most 2^31 - 1 ms; a later deadline re-arms when that one fires
    timer = setTimeout(run, Math.min(MAX_TIMER_MS, Math.max(0, next.at - Date.now())))
  }

  const run = (): void => {
    timer = undefined
    armedAt = Number.POSITIVE_INFINITY
    const now = Date.now()
    while (heap.length > 0 && (heap[0] as Entry).at <= now) {
      const entry = pop() as Entry
      if (entry.cancelled) continue
      entry.cancelled = true
      try {
        entry.fire()
      } catch {
        // a deadline callback must not stop the others; callers report their own failures
      }
    }
    arm()
  }

  return {
    schedule(at, fire) {
      const entry: Entry = { at, fire, cancelled: false }
      heap.push(entry)
      up(heap.length - 1)
      if (at < armedAt) arm()
      return {
        cancel() {
          if (entry.cancelled) return
          entry.cancelled = true
          if (heap[0] === entry) arm()
        },
      }
    },
    get size() {
      return heap.reduce((n, e) => n + (e.cancelled ? 0 : 1), 0)
    },
    clear() {
      for (const e of heap) e.cancelled = true
      heap.length = 0
      if (timer) clearTimeout(timer)
      timer = undefined
      armedAt = Number.POSITIVE_INFINITY
    },
  }
}
