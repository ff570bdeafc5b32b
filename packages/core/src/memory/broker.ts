/**
 * An in-process broker that behaves like a durable one: queues per (topic or pattern, group),
 * competing consumers with prefetch, acks, requeue with a delivery count, delayed delivery,
 * and a restart that cuts every connection while keeping the queues.
 */
import { patternToRegExp } from '../names.js'
import type { Headers } from '../spi.js'
import { Deque } from './deque.js'

export interface StoredMessage {
  id: string
  topic: string
  key?: string
  headers: Headers
  body: Uint8Array
  timestamp: number
}

interface QueueEntry {
  message: StoredMessage
  deliveries: number
}

export interface MemoryConsumer {
  prefetch: number
  unacked: Map<number, QueueEntry>
  deliver(entry: { message: StoredMessage; deliveries: number; tag: number }): void
}

interface Queue {
  name: string
  exact?: string
  pattern?: RegExp
  ready: Deque<QueueEntry>
  consumers: MemoryConsumer[]
  next: number
  /** a dispatch is queued (one microtask however many publishes and acks asked for it) */
  scheduled: boolean
  dispatchSoon: () => void
}

export interface MemoryBroker {
  readonly name: string
  /** false while stopped or restarting */
  readonly up: boolean
  /** set to require this password from connections */
  password?: string
  /** connections are told about outages through this */
  onStateChange(listener: (up: boolean) => void): () => void
  ensureQueue(binding: { topic?: string; pattern?: string }, group: string): string
  /** returns false when no queue took the message (nobody provisioned a group for the topic) */
  publish(topic: string, message: StoredMessage, delayMs?: number): boolean
  attach(queueName: string, consumer: MemoryConsumer): void
  detach(queueName: string, consumer: MemoryConsumer): void
  ack(queueName: string, consumer: MemoryConsumer, tag: number): void
  requeue(queueName: string, consumer: MemoryConsumer, tag: number): void
  /** messages ready or unacked in a queue */
  pending(queueName: string): number
  /** true when the queue exists */
  hasQueue(queueName: string): boolean
  /** removes a queue with its messages; its consumers get nothing more. Idempotent. */
  deleteQueue(queueName: string): void
  /** stores a message in one queue only; false when there is no such queue */
  enqueue(queueName: string, message: StoredMessage): boolean
  /** the first `limit` ready messages of a queue, oldest first, left in place (with their delivery counts) */
  peek(queueName: string, limit: number): Array<{ message: StoredMessage; deliveries: number }>
  /** cut every connection, stay down for `downMs`, then accept connections again; queues survive */
  restart(downMs?: number): Promise<void>
  /** stop for good: connections fail until `start()` */
  stop(): void
  start(): void
}

let tagSeq = 0

/** The name of the queue that holds a group's messages for a topic or pattern. */
export function memoryQueueName(binding: { topic?: string; pattern?: string }, group: string): string {
  return `${binding.topic ?? `pattern:${binding.pattern}`}|${group}`
}

/** Creates a broker (use `getMemoryBroker` to share one by name). */
export function createMemoryBroker(name: string): MemoryBroker {
  const queues = new Map<string, Queue>()
  // routing looks up a topic's own queues instead of testing every queue on every publish
  const exactQueues = new Map<string, Queue[]>()
  const patternQueues: Queue[] = []
  const listeners = new Set<(up: boolean) => void>()
  let up = true

  const setUp = (value: boolean): void => {
    up = value
    for (const l of [...listeners]) l(value)
  }

  const dispatch = (queue: Queue): void => {
    if (!up) return
    while (queue.ready.length > 0) {
      const n = queue.consumers.length
      let chosen: MemoryConsumer | undefined
      for (let i = 0; i < n; i++) {
        const c = queue.consumers[(queue.next + i) % n]
        if (c && c.unacked.size < c.prefetch) {
          chosen = c
          queue.next = (queue.next + i + 1) % n
          break
        }
      }
      if (!chosen) return
      const entry = queue.ready.shift() as QueueEntry
      entry.deliveries += 1
      const tag = ++tagSeq
      chosen.unacked.set(tag, entry)
      chosen.deliver({ message: entry.message, deliveries: entry.deliveries, tag })
    }
  }

  /** one stored message, shared read-only by every queue it routes to */
  const route = (topic: string, message: StoredMessage): boolean => {
    const stored = message.topic === topic ? message : { ...message, topic }
    let routed = false
    for (const q of exactQueues.get(topic) ?? []) {
      q.ready.push({ message: stored, deliveries: 0 })
      q.dispatchSoon()
      routed = true
    }
    for (const q of patternQueues) {
      if (q.pattern?.test(topic)) {
        q.ready.push({ message: stored, deliveries: 0 })
        q.dispatchSoon()
        routed = true
      }
    }
    return routed
  }

  const routable = (topic: string): boolean =>
    (exactQueues.get(topic)?.length ?? 0) > 0 || patternQueues.some((q) => q.pattern?.test(topic))

  const queue = (name: string): Queue => {
    const q = queues.get(name)
    if (!q) throw new Error(`memory broker ${name}: no queue ${name}`)
    return q
  }

  const returnUnacked = (q: Queue, consumer: MemoryConsumer): void => {
    const back = [...consumer.unacked.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e)
    consumer.unacked.clear()
    q.ready.unshift(...back)
  }

  return {
    name,
    get up() {
      return up
    },
    password: undefined,
    onStateChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    ensureQueue(binding, group) {
      const qname = memoryQueueName(binding, group)
      if (!queues.has(qname)) {
        const q: Queue = {
          name: qname,
          ready: new Deque(),
          consumers: [],
          next: 0,
          scheduled: false,
          dispatchSoon() {
            if (q.scheduled) return
            q.scheduled = true
            queueMicrotask(() => {
              // while it runs, publishes and acks need no dispatch of their own: its loop sees
              // them (a consumer that settles inside deliver() gets its whole batch in one go)
              try {
                dispatch(q)
              } finally {
                q.scheduled = false
              }
            })
          },
        }
        if (binding.topic !== undefined) {
          q.exact = binding.topic
          const list = exactQueues.get(binding.topic)
          if (list) list.push(q)
          else exactQueues.set(binding.topic, [q])
        }
        if (binding.pattern !== undefined) {
          q.pattern = patternToRegExp(binding.pattern)
          patternQueues.push(q)
        }
        queues.set(qname, q)
      }
      return qname
    },
    publish(topic, message, delayMs) {
      if (delayMs && delayMs > 0) {
        const t = setTimeout(() => route(topic, message), delayMs)
        t.unref?.()
        return routable(topic)
      }
      return route(topic, message)
    },
    attach(qname, consumer) {
      const q = queue(qname)
      q.consumers.push(consumer)
      q.dispatchSoon()
    },
    detach(qname, consumer) {
      const q = queues.get(qname)
      if (!q) return
      q.consumers = q.consumers.filter((c) => c !== consumer)
      returnUnacked(q, consumer)
      q.dispatchSoon()
    },
    ack(qname, consumer, tag) {
      if (consumer.unacked.delete(tag)) {
        const q = queues.get(qname)
        if (q) q.dispatchSoon()
      }
    },
    requeue(qname, consumer, tag) {
      const entry = consumer.unacked.get(tag)
      if (!entry) return
      consumer.unacked.delete(tag)
      const q = queues.get(qname)
      if (!q) return
      q.ready.unshift(entry)
      q.dispatchSoon()
    },
    pending(qname) {
      const q = queues.get(qname)
      if (!q) return 0
      let n = q.ready.length
      for (const c of q.consumers) n += c.unacked.size
      return n
    },
    hasQueue(qname) {
      return queues.has(qname)
    },
    deleteQueue(qname) {
      const q = queues.get(qname)
      if (!q) return
      queues.delete(qname)
      if (q.exact !== undefined) {
        const list = exactQueues.get(q.exact)?.filter((x) => x !== q) ?? []
        if (list.length > 0) exactQueues.set(q.exact, list)
        else exactQueues.delete(q.exact)
      }
      if (q.pattern) patternQueues.splice(patternQueues.indexOf(q), 1)
      for (const c of q.consumers) c.unacked.clear()
      q.consumers = []
    },
    enqueue(qname, message) {
      const q = queues.get(qname)
      if (!q) return false
      q.ready.push({ message, deliveries: 0 })
      q.dispatchSoon()
      return true
    },
    peek(qname, limit) {
      const q = queues.get(qname)
      if (!q) return []
      return q.ready.first(limit).map((e) => ({ message: e.message, deliveries: e.deliveries }))
    },
    async restart(downMs = 500) {
      setUp(false)
      // a restart drops connections: every consumer loses its unacked messages back to the queue
      for (const q of queues.values()) {
        for (const c of q.consumers) returnUnacked(q, c)
        q.consumers = []
      }
      await new Promise((r) => setTimeout(r, downMs))
      setUp(true)
    },
    stop() {
      for (const q of queues.values()) {
        for (const c of q.consumers) returnUnacked(q, c)
        q.consumers = []
      }
      setUp(false)
    },
    start() {
      setUp(true)
    },
  }
}

const brokers = new Map<string, MemoryBroker>()

/** The process-wide broker called `name` (`memory://name`), created on first use. */
export function getMemoryBroker(name = 'default'): MemoryBroker {
  let b = brokers.get(name)
  if (!b) {
    b = createMemoryBroker(name)
    brokers.set(name, b)
  }
  return b
}
