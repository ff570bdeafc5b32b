/**
 * pnpm bench soak — a long run at a steady moderate rate with retries and a few dead letters, to
 * show that nothing accumulates: the heap after a full GC, sampled every 10 s, must stay flat.
 * Not part of `all` or of the smoke (it takes 10 minutes by default).
 *
 *   BENCH_SOAK_SECONDS (600)   BENCH_SOAK_RATE (2000 msg/s)   BENCH_SOAK_URL (memory://)
 *
 * Every message is published with publish(); 5 % of them fail once in the handler (a retry), 0.1 %
 * fail every time (dead-lettered after 3 attempts); the dead-letter topic is consumed too, so a
 * dead letter that stays on the broker is not counted as a leak of ours.
 */
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMessaging } from '@msgkit/core'
import {
  type BenchModule,
  type Cell,
  envInt,
  jsonBody,
  paced,
  percentile,
  progress,
  type Settings,
} from './harness.js'

const SAMPLE_EVERY_MS = 10_000

const soakCell: Cell = async (args) => {
  const seconds = envInt('BENCH_SOAK_SECONDS', 600)
  const rate = envInt('BENCH_SOAK_RATE', 2_000)
  const url = process.env.BENCH_SOAK_URL ?? `memory://soak-${process.pid}`
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('the soak needs --expose-gc (runner.ts passes it)')
  const base = jsonBody(args.bytes)
  const topic = `msgkit-bench.soak.${process.pid}`
  const m = await createMessaging(url)
  let handled = 0
  let retried = 0
  let deadLetters = 0
  let failed = 0
  const latencies: number[] = []
  const failedOnce = new Set<number>()
  await m.subscribe(
    topic,
    { group: 'soak', concurrency: 8, retry: { attempts: 3, backoff: { initialMs: 5, maxMs: 20 } } },
    (msg) => {
      const body = msg.body as { n: number; sentAt: number }
      if (body.n % 1000 === 999) throw new Error('always fails: dead-lettered after 3 attempts')
      if (body.n % 20 === 0 && !failedOnce.has(body.n)) {
        failedOnce.add(body.n)
        retried += 1
        throw new Error('fails once: retried')
      }
      failedOnce.delete(body.n)
      handled += 1
      if (latencies.length < 100_000) latencies.push(performance.now() - body.sentAt)
    },
  )
  await m.subscribe(`${topic}.soak.dlq`, { group: 'dlq' }, () => {
    deadLetters += 1
  })
  m.on('error', () => {
    failed += 1
  })

  const samples: Array<{ at: number; heapMb: number; rssMb: number }> = []
  const start = performance.now()
  const sample = (): void => {
    gc()
    gc()
    const mem = process.memoryUsage()
    samples.push({
      at: (performance.now() - start) / 1000,
      heapMb: mem.heapUsed / 2 ** 20,
      rssMb: mem.rss / 2 ** 20,
    })
    progress(
      `soak ${Math.round((performance.now() - start) / 1000)}/${seconds} s: heap after GC ${(mem.heapUsed / 2 ** 20).toFixed(1)} MB, rss ${(mem.rss / 2 ** 20).toFixed(0)} MB; handled ${handled}, retried ${retried}, dead letters ${deadLetters}, errors ${failed}`,
    )
  }
  const sampler = setInterval(sample, SAMPLE_EVERY_MS)
  let n = 0
  const total = seconds * rate
  await paced(total, rate, () => {
    const body = { ...base, n: n++, sentAt: performance.now() }
    m.publish(topic, body).catch(() => {
      failed += 1
    })
  })
  // let the last retries and dead letters finish
  await new Promise((r) => setTimeout(r, 2_000))
  clearInterval(sampler)
  sample()
  await m.close()
  // the first minute warms up (JIT, pools); compare the minute after it with the last minute
  const window = (from: number, to: number) =>
    samples.filter((s) => s.at >= from && s.at < to).map((s) => s.heapMb)
  const median = (xs: number[]) => (xs.length === 0 ? Number.NaN : percentile(xs, 50))
  const first = median(window(Math.min(60, seconds / 3), Math.min(120, (2 * seconds) / 3)))
  const last = median(window(seconds - 60, seconds + 10))
  const summary = {
    ranAt: new Date().toISOString(),
    url: url.replace(/\/\/[^@/]*@/, '//'),
    seconds,
    rate,
    bytes: args.bytes,
    heapAfterGcMb: { secondMinute: first, lastMinute: last, growthPct: ((last - first) / first) * 100 },
    counts: { published: total, handled, retried, deadLetters, errors: failed },
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    samples,
  }
  if (!process.env.BENCH_SOAK_NO_WRITE)
    writeFileSync(
      join(dirname(fileURLToPath(import.meta.url)), 'results', 'soak.json'),
      `${JSON.stringify(summary, null, 2)}\n`,
    )
  return {
    messages: total,
    ms: performance.now() - start,
    latencies,
    extra: {
      seconds,
      rate,
      heapAfterGcFirstMb: first,
      heapAfterGcLastMb: last,
      heapGrowthPct: ((last - first) / first) * 100,
      handled,
      retried,
      deadLetters,
      errors: failed,
      samples: samples.length,
    },
  }
}

export const bench: BenchModule = {
  async plan(settings: Settings) {
    const seconds = envInt('BENCH_SOAK_SECONDS', 600)
    const rate = envInt('BENCH_SOAK_RATE', 2_000)
    return {
      name: 'soak',
      title: `soak: ${seconds} s at ${rate} msg/s on ${process.env.BENCH_SOAK_URL?.replace(/\/\/[^@/]*@/, '//') ?? 'memory://'}, retries and dead letters; heap after GC sampled every ${SAMPLE_EVERY_MS / 1000} s`,
      details: [
        '5 % of the messages fail once (retried in process), 0.1 % fail every time (dead-lettered after 3 attempts); the dead-letter topic is consumed',
        'heap growth = median heap after a full GC in the last minute vs in the second minute (the first one warms up); target: within 10 %',
      ],
      scenarios: [
        {
          id: 'soak',
          title: 'steady publish + consume with retries and dead letters',
          kind: 'latency',
          messages: seconds * rate,
          warmup: 0,
          bytes: settings.bytes,
          variants: [{ id: 'msgkit', role: 'msgkit', label: 'msgkit publish() + subscribe (concurrency 8)' }],
          primary: { msgkit: 'msgkit', raw: 'msgkit' },
          comparisons: [],
        },
      ],
      async cleanup() {},
    }
  },
  cells: { 'soak/msgkit': soakCell },
}
