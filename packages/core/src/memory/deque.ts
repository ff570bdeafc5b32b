/**
 * A FIFO with cheap operations at both ends: an array with a moving head, compacted when the dead
 * prefix outgrows the live part. `shift()` on a plain array is O(n), which made the memory broker
 * quadratic in the number of queued messages.
 */
export class Deque<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  /** put back at the front (a requeued message is next) */
  unshift(...items: T[]): void {
    if (items.length <= this.head) {
      this.head -= items.length
      for (let i = 0; i < items.length; i++) this.items[this.head + i] = items[i]
      return
    }
    this.items = [...items, ...this.items.slice(this.head)]
    this.head = 0
  }

  /** the first `count` items, front first, left in place */
  first(count: number): T[] {
    return this.items.slice(this.head, this.head + Math.max(0, count)) as T[]
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}
