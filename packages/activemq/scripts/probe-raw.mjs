#!/usr/bin/env node
// Raw stompit 1.0 against the real ActiveMQ started by scripts/brokers/activemq.sh: checks and
// measures the facts the @msgkit/activemq adapter relies on. Each section prints what it saw.
//
//   node packages/activemq/scripts/probe-raw.mjs [section…]     (default: all but the slow ones)
//   sections: connect nodelay virtual groups scheduler headers escaping binary errors nack
//             redelivery tx wildcards, and the slow ones: limits prefetch persistence throughput
//
// Environment: ACTIVEMQ_STOMP_PORT (61613), ACTIVEMQ_USER/ACTIVEMQ_PASSWORD (msgkit/msgkit),
// PROBE_REDELIVERY_PORT: STOMP port of a second broker started with ACTIVEMQ_REDELIVERY_DELAY=1000
// (`nack` with the broker's redeliveryPlugin), PROBE_SMALL_PORT + PROBE_SMALL_MAX: a broker started
// with a small ACTIVEMQ_MAX_DATA_LENGTH (`limits` without sending 64 MiB), PROBE_PREFETCH_* (see
// the `prefetch` section), PROBE_JSTACK_PID: the broker's pid, for a thread dump when a consumer stalls.
import { randomBytes } from 'node:crypto'
import {
  ack,
  connect,
  disconnect,
  drain,
  frameWithReceipt,
  log,
  ms,
  nack,
  provisionQueue,
  STOMP_PORT,
  send,
  sha256,
  sleep,
  subscribe,
  subscribeWithReceipt,
  uid,
  waitFor,
} from './lib/stomp.mjs'

const queue = (name) => `/queue/${name}`
const vtopic = (topic) => `/topic/VirtualTopic.${topic}`
const vqueue = (group, topic) => `/queue/Consumer.${group}.VirtualTopic.${topic}`

const sections = {
  // ------------------------------------------------------------------------------------------
  async connect() {
    const S = 'connect'
    let t0 = performance.now()
    try {
      await connect({ port: 1 })
    } catch (e) {
      log(S, 'dead port (127.0.0.1:1) rejects', {
        ms: ms(t0),
        message: e.message,
        code: e.code,
        name: e.name,
      })
    }
    t0 = performance.now()
    try {
      await connect({ login: 'msgkit', passcode: 'wrong-secret-123' })
      log(S, 'WRONG LOGIN WAS ACCEPTED')
    } catch (e) {
      log(S, 'wrong passcode rejects', {
        ms: ms(t0),
        message: e.message,
        longMessage: e.longMessage?.slice(0, 120),
        secretInMessage: `${e.message} ${e.longMessage ?? ''}`.includes('wrong-secret-123'),
      })
    }
    t0 = performance.now()
    try {
      await connect({ login: 'nobody', passcode: 'x' })
    } catch (e) {
      log(S, 'unknown user rejects', { ms: ms(t0), message: e.message })
    }
    t0 = performance.now()
    const anon = await connect({ anonymous: true }).catch((e) => e)
    log(S, 'no login/passcode', anon instanceof Error ? { rejected: anon.message } : { accepted: ms(t0) })
    if (!(anon instanceof Error)) await disconnect(anon)
    t0 = performance.now()
    const c = await connect()
    log(S, 'msgkit/msgkit connects', { ms: ms(t0), server: c.headers.server, version: c.headers.version })
    log(S, 'CONNECTED headers', c.headers)
    await disconnect(c)
    // A TCP listener that never answers CONNECT: stompit's `timeout` only covers the TCP connect.
    const net = await import('node:net')
    const silent = net.createServer(() => {}).listen(0, '127.0.0.1')
    await new Promise((r) => silent.once('listening', r))
    t0 = performance.now()
    const res = await Promise.race([
      connect({ port: silent.address().port, timeout: 1000 }).then(
        () => 'connected?!',
        (e) => `rejected: ${e.message}`,
      ),
      sleep(4000).then(() => 'still pending after 4 s'),
    ])
    log(S, 'server accepts TCP but never answers CONNECT (timeout 1000)', { result: res, ms: ms(t0) })
    silent.close()
  },

  // ------------------------------------------------------------------------------------------
  async nodelay() {
    const S = 'nodelay'
    for (const noDelay of [false, true]) {
      const c = await connect({ noDelay })
      const dest = queue(uid('nodelay'))
      const n = 100
      const t0 = performance.now()
      for (let i = 0; i < n; i++) await send(c, { destination: dest, persistent: 'true' }, `m${i}`)
      log(S, `${n} sequential receipted persistent sends, setNoDelay(${noDelay})`, {
        perSendMs: Math.round((ms(t0) / n) * 100) / 100,
      })
      await drain(c, dest, 300)
      await disconnect(c)
    }
  },

  // ------------------------------------------------------------------------------------------
  async virtual() {
    const S = 'virtual'
    const topic = uid('vt')
    const c = await connect()
    // group A provisioned (SUBSCRIBE + UNSUBSCRIBE with receipts), group B not
    const t0 = performance.now()
    await provisionQueue(c, vqueue('A', topic))
    log(S, 'provision (SUBSCRIBE+UNSUBSCRIBE with receipts)', { ms: ms(t0) })
    for (let i = 0; i < 10; i++) await send(c, { destination: vtopic(topic), persistent: 'true' }, `m${i}`)
    await disconnect(c)
    // the queue lasts across connections; two members of A compete; B sees nothing sent before it existed
    const got = { a1: [], a2: [], b: [] }
    const a1 = await connect()
    const a2 = await connect()
    const b = await connect()
    subscribe(
      a1,
      { destination: vqueue('A', topic), ack: 'client-individual', 'activemq.prefetchSize': '1' },
      (m, _h, body) => {
        got.a1.push(body.toString())
        setTimeout(() => ack(a1, m), 20)
      },
    )
    subscribe(
      a2,
      { destination: vqueue('A', topic), ack: 'client-individual', 'activemq.prefetchSize': '1' },
      (m, _h, body) => {
        got.a2.push(body.toString())
        setTimeout(() => ack(a2, m), 20)
      },
    )
    await subscribeWithReceipt(b, { destination: vqueue('B', topic), ack: 'auto' }, () => got.b.push('x'))
    await waitFor(() => got.a1.length + got.a2.length >= 10, 5000)
    await sleep(300)
    log(S, 'sent 10 before B existed; A provisioned earlier, 2 competing members', {
      a1: got.a1.length,
      a2: got.a2.length,
      b: got.b.length,
    })
    // after B subscribed, a new message reaches both groups once
    got.a1 = []
    got.a2 = []
    const p = await connect()
    await send(p, { destination: vtopic(topic), persistent: 'true' }, 'after')
    await sleep(500)
    log(S, 'one message after both exist', { a: got.a1.length + got.a2.length, b: got.b.length })
    for (const x of [a1, a2, b, p]) await disconnect(x)
  },

  // ------------------------------------------------------------------------------------------
  async groups() {
    const S = 'groups'
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7']
    const perKey = 40
    // (a) both consumers subscribed before the first message; (b) messages wait, consumers join
    // 100 ms apart; then (c) in (a), the owner of some keys leaves halfway: its keys move.
    for (const variant of ['consumers-first', 'messages-first', 'owner-leaves']) {
      const topic = uid('grp')
      const c = await connect()
      await provisionQueue(c, vqueue('G', topic))
      const seen = { c1: [], c2: [] }
      let headersSeen
      const consumers = {}
      const startConsumer = async (name) => {
        const cc = await connect()
        consumers[name] = cc
        subscribe(
          cc,
          { destination: vqueue('G', topic), ack: 'client-individual', 'activemq.prefetchSize': '10' },
          (m, h, body) => {
            headersSeen ??= h
            seen[name].push(body.toString())
            // random handling time: competing consumers interleave
            setTimeout(() => ack(cc, m), Math.random() * 5)
          },
        )
      }
      const publish = async () => {
        for (let i = 0; i < perKey; i++) {
          for (const k of keys)
            await send(
              c,
              {
                destination: vtopic(topic),
                persistent: 'true',
                JMSXGroupID: k,
                'x-key': k,
                'x-seq': String(i),
              },
              `${k}:${i}`,
            )
          if (variant === 'owner-leaves' && i === perKey / 2) {
            await sleep(300)
            consumers.c1.destroy() // leaves with unacked messages
            await sleep(300)
          }
        }
      }
      if (variant === 'messages-first') {
        await publish()
        await startConsumer('c1')
        await sleep(100)
        await startConsumer('c2')
      } else {
        await startConsumer('c1')
        await startConsumer('c2')
        await sleep(200)
        await publish()
      }
      await waitFor(() => new Set([...seen.c1, ...seen.c2]).size >= keys.length * perKey, 20000)
      await sleep(300)
      const owners = {}
      let outOfOrder = 0
      const dupes = seen.c1.length + seen.c2.length - new Set([...seen.c1, ...seen.c2]).size
      for (const name of ['c1', 'c2']) {
        const last = {}
        for (const s of seen[name]) {
          const [k, i] = s.split(':')
          owners[k] = owners[k] ?? new Set()
          owners[k].add(name)
          if (last[k] !== undefined && Number(i) !== last[k] + 1) outOfOrder++
          last[k] = Number(i)
        }
      }
      log(S, `${variant}: two competing consumers (prefetch 10), ${keys.length} keys × ${perKey}`, {
        c1: seen.c1.length,
        c2: seen.c2.length,
        keysOnlyOnC1: keys.filter((k) => owners[k]?.size === 1 && owners[k].has('c1')).length,
        keysOnlyOnC2: keys.filter((k) => owners[k]?.size === 1 && owners[k].has('c2')).length,
        keysOnBoth: keys.filter((k) => owners[k]?.size === 2).length,
        outOfOrderWithinAConsumer: outOfOrder,
        redeliveredDuplicates: dupes,
      })
      if (variant === 'consumers-first')
        log(S, 'delivered frame carries JMSXGroupID?', {
          JMSXGroupID: headersSeen?.JMSXGroupID ?? null,
          JMSXGroupSeq: headersSeen?.JMSXGroupSeq ?? null,
          'x-key': headersSeen?.['x-key'],
        })
      for (const cc of Object.values(consumers)) await disconnect(cc, 500)
      await disconnect(c)
    }
  },

  // ------------------------------------------------------------------------------------------
  async scheduler() {
    const S = 'scheduler'
    const dest = queue(uid('sched'))
    const c = await connect()
    const arrivals = []
    subscribe(c, { destination: dest, ack: 'auto' }, (_m, h, body) => {
      const { sentAt, delay } = JSON.parse(body.toString())
      arrivals.push({ delay, late: Math.round(Date.now() - sentAt - delay), headers: h })
    })
    const delays = [null, 0, 500, 1000, 2000, 2000, 2000, 3000]
    for (const delay of delays) {
      const h = { destination: dest, persistent: 'true' }
      if (delay !== null) h.AMQ_SCHEDULED_DELAY = String(delay)
      await send(c, h, JSON.stringify({ sentAt: Date.now(), delay: delay ?? 0 }))
      await sleep(50)
    }
    await waitFor(() => arrivals.length >= delays.length, 10000)
    arrivals[0].delay = 'none'
    log(
      S,
      'AMQ_SCHEDULED_DELAY: ms after the requested delay',
      arrivals.map(({ delay, late }) => ({ delay, late })),
    )
    log(S, 'headers of a scheduled delivery', arrivals.find((a) => a.delay === 2000)?.headers)
    // a scheduled message survives a restart? (checked by the `restart` flow in the docs, not here)
    await disconnect(c)
  },

  // ------------------------------------------------------------------------------------------
  async headers() {
    const S = 'headers'
    const dest = queue(uid('hdr'))
    const c = await connect()
    const got = []
    subscribe(c, { destination: dest, ack: 'client-individual' }, (m, h, body) => {
      got.push({ h, body: body.toString() })
      ack(c, m)
    })
    await send(c, { destination: dest, persistent: 'true' }, 'plain')
    await send(c, { destination: dest }, 'non-persistent')
    await send(
      c,
      {
        destination: dest,
        persistent: 'true',
        'message-id': 'mine-123',
        'content-type': 'application/json',
        type: 'orders.created',
        'correlation-id': 'corr-1',
        'reply-to': '/queue/replies',
        priority: '7',
        expires: String(Date.now() + 60_000),
        timestamp: '1234',
        redelivered: 'true',
        subscription: 'fake',
        'msgkit-id': 'my-id',
        'x-dup': 'first',
      },
      'with-jms-headers',
    )
    await waitFor(() => got.length >= 3, 3000)
    for (const g of got) log(S, `delivered headers for "${g.body}"`, g.h)
    await disconnect(c)
  },

  // ------------------------------------------------------------------------------------------
  async escaping() {
    const S = 'escaping'
    const dest = queue(uid('esc'))
    const c = await connect()
    const values = {
      colon: 'a:b:c',
      newline: 'line1\nline2',
      cr: 'a\rb',
      backslash: 'back\\slash\\n',
      emoji: 'party 🎉 done',
      korean: '안녕하세요',
      rtl: 'שלום',
      combining: 'e\u0301',
      empty: '',
      spaces: '  padded  ',
    }
    let got
    subscribe(c, { destination: dest, ack: 'auto' }, (_m, h) => {
      got = h
    })
    await send(c, { destination: dest, persistent: 'true', ...values }, 'x')
    await waitFor(() => got, 3000)
    const res = {}
    for (const [k, v] of Object.entries(values)) res[k] = got[k] === v ? 'ok' : { sent: v, got: got[k] }
    log(S, 'header values round trip (STOMP 1.2 escaping)', res)
    // header names with odd characters
    got = undefined
    await send(c, { destination: dest, persistent: 'true', 'x-é名': 'v', 'a.b-c_d': 'v' }, 'x')
    await waitFor(() => got, 3000)
    log(S, 'header names', { 'x-é名': got?.['x-é名'], 'a.b-c_d': got?.['a.b-c_d'] })
    await disconnect(c)
  },

  // ------------------------------------------------------------------------------------------
  async binary() {
    const S = 'binary'
    const dest = queue(uid('bin'))
    const c = await connect()
    const body = randomBytes(64 * 1024)
    body[0] = 0x00
    body[1] = 0xff
    body[2] = 0xc3 // invalid UTF-8 start
    body[3] = 0x28
    let got
    subscribe(c, { destination: dest, ack: 'auto' }, (_m, h, b) => {
      got = { h, b }
    })
    await send(c, { destination: dest, persistent: 'true', 'content-length': String(body.length) }, body)
    await waitFor(() => got, 3000)
    log(S, '64 KiB random with content-length', {
      sent: sha256(body),
      got: sha256(got.b),
      equal: body.equals(got.b),
      contentLengthHeader: got.h['content-length'],
    })
    // without content-length a NUL in the body ends the frame early
    got = undefined
    const withNul = Buffer.from([0x61, 0x00, 0x62])
    await send(c, { destination: dest, persistent: 'true' }, withNul).catch((e) => log(S, 'error', e.message))
    await waitFor(() => got, 2000)
    log(S, 'body a\\0b WITHOUT content-length', {
      got: got?.b.toString('hex'),
      errors: c.errors.map((e) => e.message),
    })
    // empty body
    got = undefined
    const c2 = await connect()
    subscribe(c2, { destination: dest, ack: 'auto' }, (_m, h, b) => {
      got = { h, b }
    })
    await send(c2, { destination: dest, persistent: 'true', 'content-length': '0' }, '')
    await waitFor(() => got, 2000)
    log(S, 'empty body with content-length:0', { length: got?.b.length, cl: got?.h['content-length'] })
    await disconnect(c)
    await disconnect(c2)
  },

  // ------------------------------------------------------------------------------------------
  async limits() {
    const S = 'limits'
    const port = Number(process.env.PROBE_SMALL_PORT ?? STOMP_PORT)
    const maxData = Number(process.env.PROBE_SMALL_MAX ?? 67108864)
    log(S, `broker on ${port}, maxDataLength ${maxData}`)
    const dest = queue(uid('lim'))
    const tryFrame = async (what, headers, body) => {
      const c = await connect({ port })
      const other = send(c, { destination: dest, persistent: 'true' }, 'queued-behind')
      const t0 = performance.now()
      const r = await send(c, { destination: dest, persistent: 'true', ...headers }, body).then(
        () => 'receipt',
        (e) => `rejected: ${e.message}`,
      )
      const second = await Promise.race([
        other.then(
          () => 'receipt',
          (e) => `rejected: ${e.message}`,
        ),
        sleep(3000).then(() => 'pending'),
      ])
      const pending = send(c, { destination: dest }, 'after').then(
        () => 'receipt',
        (e) => `rejected: ${e.message}`,
      )
      const after = await Promise.race([pending, sleep(3000).then(() => 'pending after 3 s')])
      log(S, what, {
        result: r,
        ms: ms(t0),
        sendBeforeIt: second,
        sendAfterIt: after,
        errors: c.errors.map(
          (e) => `${e.message}${e.longMessage ? ` | ${e.longMessage.split('\n')[0]}` : ''}`,
        ),
      })
      c.destroy()
    }
    await tryFrame(
      `body = maxDataLength (${maxData})`,
      { 'content-length': String(maxData) },
      Buffer.alloc(maxData, 0x61),
    )
    await tryFrame(
      `body = maxDataLength + 1 (${maxData + 1})`,
      { 'content-length': String(maxData + 1) },
      Buffer.alloc(maxData + 1, 0x61),
    )
    await tryFrame('body over maxDataLength without content-length', {}, Buffer.alloc(maxData + 1, 0x61))
    // header line: "name:value" (escaped) up to 10240 bytes
    for (const len of [10200, 10238, 10239, 10240, 10241, 12000]) {
      await tryFrame(
        `header line of ${len + 2} bytes (name 'h' + ':' + ${len} value bytes)`,
        { h: 'v'.repeat(len) },
        'x',
      )
    }
    for (const n of [990, 999, 1000, 1001]) {
      const h = {}
      for (let i = 0; i < n; i++) h[`h${i}`] = 'v'
      await tryFrame(`${n} user headers (+ destination, persistent, receipt)`, h, 'x')
    }
    await tryFrame('empty destination', { destination: '' }, 'x')
    await tryFrame('destination /queue/ (empty name)', { destination: '/queue/' }, 'x')
    await tryFrame('destination without /queue/ or /topic/', { destination: 'plainname' }, 'x')
  },

  // ------------------------------------------------------------------------------------------
  async errors() {
    // ERROR frame for a SEND in the middle of pipelined receipted SENDs: what happens to the others?
    const S = 'errors'
    const dest = queue(uid('err'))
    const c = await connect()
    const results = []
    const ps = []
    for (let i = 0; i < 5; i++)
      ps.push(
        send(c, { destination: dest, persistent: 'true' }, `ok${i}`).then(
          () => results.push(`ok${i}: receipt`),
          (e) => results.push(`ok${i}: ${e.message}`),
        ),
      )
    ps.push(
      send(c, { destination: dest, persistent: 'true', h: 'v'.repeat(11000) }, 'bad').then(
        () => results.push('bad: receipt'),
        (e) => results.push(`bad: ${e.message}`),
      ),
    )
    for (let i = 5; i < 10; i++)
      ps.push(
        send(c, { destination: dest, persistent: 'true' }, `ok${i}`).then(
          () => results.push(`ok${i}: receipt`),
          (e) => results.push(`ok${i}: ${e.message}`),
        ),
      )
    await Promise.race([Promise.all(ps), sleep(5000)])
    log(S, 'pipelined 5 good, 1 bad (header line too long), 5 good', results)
    const d = await connect()
    const n = await drain(d, dest, 500)
    log(S, 'messages stored', { n })
    await disconnect(d)
  },

  // ------------------------------------------------------------------------------------------
  async nack() {
    // NACK with and without the broker's redeliveryPlugin; unacked + disconnect
    const S = 'nack'
    const ports = [[`broker on ${STOMP_PORT}`, STOMP_PORT]]
    if (process.env.PROBE_REDELIVERY_PORT)
      ports.push([
        `broker on ${process.env.PROBE_REDELIVERY_PORT} (redeliveryPlugin)`,
        Number(process.env.PROBE_REDELIVERY_PORT),
      ])
    for (const [label, port] of ports) {
      const topic = uid('nack')
      const group = 'N'
      const c = await connect({ port })
      await provisionQueue(c, vqueue(group, topic))
      await send(c, { destination: vtopic(topic), persistent: 'true', 'x-n': '1' }, 'nack-me')
      const deliveries = []
      subscribe(c, { destination: vqueue(group, topic), ack: 'client-individual' }, (m, h) => {
        deliveries.push({ at: performance.now(), h })
        if (deliveries.length < 4) nack(c, m)
        else ack(c, m)
      })
      await waitFor(() => deliveries.length >= 4, 15000)
      const t = deliveries.map((d) => Math.round(d.at - deliveries[0].at))
      log(S, `${label}: deliveries after NACK`, {
        count: deliveries.length,
        msSinceFirst: t,
      })
      for (const [i, d] of deliveries.entries()) log(S, `${label}: delivery ${i + 1} headers`, d.h)
      // where did it go, if not redelivered?
      if (deliveries.length < 4) {
        const dlq = []
        subscribe(
          c,
          { destination: `/queue/DLQ.Consumer.${group}.VirtualTopic.${topic}`, ack: 'auto' },
          (_m, h) => dlq.push(h),
        )
        subscribe(c, { destination: '/queue/ActiveMQ.DLQ', ack: 'auto' }, (_m, h) => dlq.push(h))
        await sleep(1000)
        log(S, `${label}: in a DLQ`, dlq)
      }
      // non-persistent NACKed
      const np = uid('nack-np')
      const npd = []
      subscribe(c, { destination: queue(np), ack: 'client-individual' }, (m, h) => {
        npd.push(h)
        if (npd.length === 1) nack(c, m)
        else ack(c, m)
      })
      await send(c, { destination: queue(np) }, 'np')
      await sleep(3000)
      log(S, `${label}: non-persistent message NACKed once`, { deliveries: npd.length })
      await disconnect(c)
    }
  },

  // ------------------------------------------------------------------------------------------
  async redelivery() {
    // unacked, then the connection goes away: redelivered with which headers, how often?
    const S = 'redelivery'
    const dest = queue(uid('redeliv'))
    const p = await connect()
    await send(p, { destination: dest, persistent: 'true' }, 'unacked')
    const seen = []
    for (let round = 0; round < 4; round++) {
      const c = await connect()
      await new Promise((resolve) => {
        subscribe(c, { destination: dest, ack: 'client-individual' }, (_m, h) => {
          seen.push(h)
          resolve()
        })
      })
      if (round % 2 === 0) c.destroy()
      else await disconnect(c)
      await sleep(100)
    }
    log(
      S,
      'unacked then connection gone (destroy / DISCONNECT alternately), 4 rounds',
      seen.map((h) => ({ redelivered: h.redelivered ?? null, keys: Object.keys(h).sort().join(',') })),
    )
    // transactional: SEND in a tx + ACK in the same tx + COMMIT
    const c = await connect()
    const n = await drain(c, dest, 300)
    log(S, 'left in queue', { n })
    await disconnect(c)
    await disconnect(p)
  },

  // ------------------------------------------------------------------------------------------
  async tx() {
    // re-send + ACK atomically: BEGIN, SEND (transaction), ACK (transaction), COMMIT (receipt)
    const S = 'tx'
    const src = queue(uid('txsrc'))
    const c = await connect()
    await send(c, { destination: src, persistent: 'true', 'msgkit-attempt': '1' }, 'payload')
    const deliveries = []
    const t0 = performance.now()
    subscribe(c, { destination: src, ack: 'client-individual' }, async (m, h, body) => {
      deliveries.push({ at: ms(t0), attempt: h['msgkit-attempt'], redelivered: h.redelivered ?? null })
      const attempt = Number(h['msgkit-attempt'])
      if (attempt >= 3) return ack(c, m)
      const tx = uid('tx')
      await frameWithReceipt(c, 'BEGIN', { transaction: tx })
      c.send({
        destination: src,
        persistent: 'true',
        'msgkit-attempt': String(attempt + 1),
        transaction: tx,
      }).end(body)
      c.sendFrame('ACK', { id: h.ack, transaction: tx }).end()
      await frameWithReceipt(c, 'COMMIT', { transaction: tx })
    })
    await waitFor(() => deliveries.length >= 3, 5000)
    log(S, 're-send + ACK in one transaction (attempt header counts)', deliveries)
    await sleep(300)
    // abort: the ACK is undone? the SEND is dropped?
    const src2 = queue(uid('txabort'))
    await send(c, { destination: src2, persistent: 'true' }, 'x')
    const d2 = []
    const c2 = await connect()
    subscribe(c2, { destination: src2, ack: 'client-individual' }, async (m, h) => {
      d2.push(h.redelivered ?? null)
      if (d2.length > 1) return ack(c2, m)
      const tx = uid('tx')
      await frameWithReceipt(c2, 'BEGIN', { transaction: tx })
      c2.send({ destination: src2, persistent: 'true', transaction: tx }).end('copy')
      c2.sendFrame('ACK', { id: h.ack, transaction: tx }).end()
      await frameWithReceipt(c2, 'ABORT', { transaction: tx })
    })
    await sleep(1500)
    log(S, 'ABORT instead of COMMIT: deliveries of the original', {
      deliveries: d2.length,
      redelivered: d2,
    })
    await disconnect(c2)
    // after disconnect, the un-acked original comes back?
    const c3 = await connect()
    const n = await drain(c3, src2, 500)
    log(S, 'after ABORT + disconnect, left in queue', { n })
    await disconnect(c3)
    await disconnect(c)
  },

  // ------------------------------------------------------------------------------------------
  async wildcards() {
    const S = 'wildcards'
    const base = uid('orders').replace('-', '')
    const c = await connect()
    // group W: wildcard queue only; group D: exact queue AND wildcard queue
    await provisionQueue(c, vqueue('W', `${base}.*`))
    await provisionQueue(c, vqueue('W2', `${base}.>`))
    await provisionQueue(c, vqueue('D', `${base}.created`))
    await provisionQueue(c, vqueue('D', `${base}.*`))
    await send(c, { destination: vtopic(`${base}.created`), persistent: 'true' }, 'created')
    await send(c, { destination: vtopic(`${base}.paid`), persistent: 'true' }, 'paid')
    await send(c, { destination: vtopic(`${base}.eu.created`), persistent: 'true' }, 'eu.created')
    await sleep(200)
    const got = {}
    for (const [g, t] of [
      ['W', `${base}.*`],
      ['W2', `${base}.>`],
      ['D', `${base}.created`],
      ['D', `${base}.*`],
    ]) {
      const key = `Consumer.${g}.VirtualTopic.${t}`
      got[key] = []
      subscribe(c, { destination: vqueue(g, t), ack: 'auto' }, (_m, h, body) =>
        got[key].push({
          body: body.toString(),
          destination: h.destination,
          'original-destination': h['original-destination'],
        }),
      )
    }
    await sleep(1000)
    log(S, 'what each queue got', got)
    // comma = composite destination
    const comp = uid('comp')
    await provisionQueue(c, queue(`${comp}.a`))
    await provisionQueue(c, queue(`${comp}.b`))
    await send(c, { destination: `/queue/${comp}.a,${comp}.b`, persistent: 'true' }, 'composite')
    const ca = await drain(c, queue(`${comp}.a`), 300)
    const cb = await drain(c, queue(`${comp}.b`), 300)
    log(S, 'SEND to "/queue/X.a,X.b" (comma)', { a: ca, b: cb })
    await disconnect(c)
  },

  // ------------------------------------------------------------------------------------------
  async prefetch() {
    // persistent + client-individual + prefetch N: does consuming stall? Two consumer styles:
    // "eager" reads each body at once and acks after the handler; "lazy" leaves a frame's body
    // unread until one of 8 slots is free (stompit then stops parsing the socket: TCP backpressure
    // reaches the broker). Modes: "prefilled" (queue filled, then consumed) or "concurrent"
    // (consumer first, producer sending at the same time on another connection) or "shared" (the
    // producer sends on the consumer's connection).
    const S = 'prefetch'
    const env = process.env
    const total = Number(env.PROBE_PREFETCH_N ?? 5000)
    const size = Number(env.PROBE_PREFETCH_SIZE ?? 1024)
    const runs = Number(env.PROBE_PREFETCH_RUNS ?? 2)
    const handlerMs = Number(env.PROBE_PREFETCH_HANDLER_MS ?? 0)
    const sizes = (env.PROBE_PREFETCH_LIST ?? '100,200,500,1000,default').split(',')
    const styles = (env.PROBE_PREFETCH_STYLES ?? 'eager,lazy').split(',')
    const modes = (env.PROBE_PREFETCH_MODES ?? 'prefilled,concurrent').split(',')
    const stallMs = Number(env.PROBE_PREFETCH_STALL_MS ?? 5000)
    const body = Buffer.alloc(size, 0x61)
    log(S, 'settings', { total, size, runs, handlerMs, port: STOMP_PORT })
    const fill = async (dest, shared) => {
      const p = shared ?? (await connect())
      let inflight = []
      for (let i = 0; i < total; i++) {
        inflight.push(
          send(p, { destination: dest, persistent: 'true', 'content-length': String(size) }, body),
        )
        if (inflight.length >= 200) {
          await Promise.all(inflight)
          inflight = []
        }
      }
      await Promise.all(inflight)
      if (!shared) await disconnect(p)
    }
    const handle = (fn) => (handlerMs > 0 ? setTimeout(fn, handlerMs) : setImmediate(fn))
    for (const mode of modes)
      for (const style of styles)
        for (const pf of sizes)
          for (let run = 0; run < runs; run++) {
            const dest = queue(uid('pf'))
            if (mode === 'prefilled') await fill(dest)
            const c = await connect()
            let done = 0
            let last = performance.now()
            const t0 = performance.now()
            const headers = { destination: dest, ack: 'client-individual' }
            if (pf !== 'default') headers['activemq.prefetchSize'] = pf
            const finish = (m) => {
              ack(c, m)
              done++
              last = performance.now()
            }
            if (style === 'eager') {
              subscribe(c, headers, (m) => handle(() => finish(m)))
            } else {
              let active = 0
              const waiting = []
              const start = (m) => {
                active++
                readBodyLater(m).then(() =>
                  handle(() => {
                    finish(m)
                    active--
                    if (waiting.length) start(waiting.shift())
                  }),
                )
              }
              c.subscribe(headers, (err, m) => {
                if (err) return
                if (active < 8) start(m)
                else waiting.push(m)
              })
            }
            let producing = Promise.resolve()
            if (mode === 'concurrent' || mode === 'shared') {
              await sleep(100)
              last = performance.now()
              producing = fill(dest, mode === 'shared' ? c : undefined).catch((e) =>
                log(S, 'producer failed', e.message),
              )
            }
            let stalled = false
            while (done < total) {
              await sleep(50)
              if (performance.now() - last > stallMs) {
                stalled = true
                break
              }
            }
            const el = ms(t0)
            log(S, `${mode} ${style} prefetch=${pf} run ${run + 1}: ${stalled ? 'STALLED' : 'completed'}`, {
              received: done,
              of: total,
              ms: Math.round(stalled ? el - stallMs : el),
              msgsPerSec: stalled ? null : Math.round((total / el) * 1000),
            })
            if (stalled) {
              // does the broker still answer other connections? does the consumer come back?
              const probe = await connect().then(
                async (x) => {
                  const t = performance.now()
                  const r = await Promise.race([
                    send(x, { destination: queue(uid('alive')), persistent: 'true' }, 'x').then(
                      () => `receipt in ${ms(t)} ms`,
                    ),
                    sleep(3000).then(() => 'no receipt in 3 s'),
                  ])
                  x.destroy()
                  return r
                },
                (e) => `connect failed: ${e.message}`,
              )
              log(S, '  while stalled, a new connection', {
                probe,
                consumerErrors: c.errors.map((e) => e.message),
              })
              if (env.PROBE_JSTACK_PID) {
                // thread dump of the broker while stalled (jstack comes with the JDK)
                const { execFileSync } = await import('node:child_process')
                const file = `/tmp/activemq-stall-${Date.now()}.txt`
                const { writeFileSync } = await import('node:fs')
                writeFileSync(file, execFileSync('jstack', [env.PROBE_JSTACK_PID], { maxBuffer: 64 << 20 }))
                log(S, '  broker thread dump', { file })
              }
            }
            c.destroy()
            await Promise.race([producing, sleep(10000)])
            if (stalled || mode !== 'prefilled') {
              await sleep(300)
              const d = await connect()
              await drain(d, dest, 500)
              await disconnect(d)
            }
          }
  },

  // ------------------------------------------------------------------------------------------
  async persistence() {
    // restart (SIGTERM) and kill -9 of the broker through scripts/brokers/activemq.sh: which
    // messages survive? Needs PROBE_ALLOW_RESTART=1 (it stops the broker under everyone's feet).
    const S = 'persistence'
    if (process.env.PROBE_ALLOW_RESTART !== '1') return log(S, 'skipped: set PROBE_ALLOW_RESTART=1')
    const { execFileSync } = await import('node:child_process')
    const { readFileSync } = await import('node:fs')
    const { join } = await import('node:path')
    const root = new URL('../../..', import.meta.url).pathname
    const script = join(root, 'scripts/brokers/activemq.sh')
    const sh = (cmd) => execFileSync('bash', [script, cmd], { encoding: 'utf8' }).trim().split('\n').pop()
    for (const how of ['restart', 'kill -9']) {
      const tag = uid('persist')
      const q = (x) => queue(`${tag}-${x}`)
      const c = await connect()
      await provisionQueue(c, vqueue('P', tag))
      for (let i = 0; i < 200; i++) await send(c, { destination: q('p'), persistent: 'true' }, 'p')
      for (let i = 0; i < 200; i++) await send(c, { destination: q('np') }, 'np')
      await send(c, { destination: q('sched'), persistent: 'true', AMQ_SCHEDULED_DELAY: '6000' }, 's')
      const schedDue = Date.now() + 6000
      await send(c, { destination: vtopic(tag), persistent: 'true' }, 'vt')
      c.destroy()
      const t0 = performance.now()
      if (how === 'restart') log(S, `restart: ${sh('restart')}`)
      else {
        const brokersDir = process.env.MSGKIT_BROKERS_DIR ?? join(root, '.brokers')
        const pid = readFileSync(join(brokersDir, 'activemq/activemq.pid'), 'utf8').trim()
        process.kill(Number(pid), 'SIGKILL')
        await sleep(500)
        log(S, `kill -9 ${pid}, then start: ${sh('start')}`)
      }
      const down = ms(t0)
      const d = await connect()
      const left = {
        persistent: await drain(d, q('p'), 500),
        nonPersistent: await drain(d, q('np'), 500),
        virtualTopicQueue: await drain(d, vqueue('P', tag), 300),
      }
      let schedAt
      subscribe(d, { destination: q('sched'), ack: 'auto' }, () => {
        schedAt = Date.now()
      })
      await waitFor(() => schedAt, 15000)
      log(S, `after ${how} (${Math.round(down)} ms until ready): 200 + 200 sent`, {
        ...left,
        scheduledMsLate: schedAt ? schedAt - schedDue : 'LOST',
      })
      await disconnect(d)
    }
  },

  // ------------------------------------------------------------------------------------------
  async throughput() {
    const S = 'throughput'
    const total = Number(process.env.PROBE_TP_N ?? 20000)
    const body = Buffer.alloc(1024, 0x62)
    for (const window of [1, 100]) {
      const dest = queue(uid('tp'))
      const p = await connect()
      const t0 = performance.now()
      let inflight = []
      for (let i = 0; i < total; i++) {
        inflight.push(send(p, { destination: dest, persistent: 'true', 'content-length': '1024' }, body))
        if (inflight.length >= window) {
          await Promise.all(inflight)
          inflight = []
        }
      }
      await Promise.all(inflight)
      const el = ms(t0)
      log(S, `send ${total} × 1 KiB persistent with receipt, ${window} in flight`, {
        ms: el,
        msgsPerSec: Math.round((total / el) * 1000),
      })
      await disconnect(p)
      if (window === 1) {
        const d = await connect()
        await drain(d, dest, 500)
        await disconnect(d)
        continue
      }
      for (const pf of ['100', '200']) {
        if (pf === '200') {
          // refill
          const p2 = await connect()
          let f = []
          for (let i = 0; i < total; i++) {
            f.push(send(p2, { destination: dest, persistent: 'true', 'content-length': '1024' }, body))
            if (f.length >= 100) {
              await Promise.all(f)
              f = []
            }
          }
          await Promise.all(f)
          await disconnect(p2)
        }
        const c = await connect()
        let n = 0
        const t1 = performance.now()
        subscribe(c, { destination: dest, ack: 'client-individual', 'activemq.prefetchSize': pf }, (m) => {
          ack(c, m)
          n++
        })
        const ok = await waitFor(() => n >= total, 60000)
        const el2 = ms(t1)
        log(S, `receive ${total} × 1 KiB, ACK each, prefetch ${pf}`, {
          ok,
          ms: el2,
          msgsPerSec: Math.round((n / el2) * 1000),
        })
        await disconnect(c)
      }
    }
  },
}

function readBodyLater(m) {
  return new Promise((resolve) => {
    m.on('data', () => {})
    m.on('end', resolve)
  })
}

const slow = new Set(['prefetch', 'throughput', 'limits', 'persistence'])
const chosen = process.argv.slice(2).filter((a) => a !== '--')
const run = chosen.length > 0 ? chosen : Object.keys(sections).filter((s) => !slow.has(s))
for (const name of run) {
  if (!sections[name]) {
    console.error(`unknown section '${name}' (known: ${Object.keys(sections).join(' ')})`)
    process.exit(2)
  }
  const t0 = performance.now()
  console.log(`\n=== ${name} ===`)
  try {
    await sections[name]()
  } catch (e) {
    console.log(`[${name}] FAILED: ${e.stack ?? e}`)
    process.exitCode = 1
  }
  console.log(`=== ${name}: ${Math.round(ms(t0))} ms ===`)
}
process.exit(process.exitCode ?? 0)
