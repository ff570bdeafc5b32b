// Loaded with --import before the CLI, in the CLI's own process: the memory broker lives in one
// process, so this is how a test gives `msgkit … --url memory://x` something to work on.
// SEED_TOPIC / SEED_GROUP name the pair; SEED_DEAD_LETTERS=n makes n dead letters (keys k1…kn) with
// a failing handler; SEED_CONSUMER=1 then runs the fixed handler, printing "handled <id> attempt=<n>"
// on stderr; SEED_PUBLISH=n publishes n messages SEED_PUBLISH_AFTER_MS after start (for tail).
import { createMessaging, deadLetterQueue } from '@msgkit/core'

const url = process.env.MSGKIT_URL ?? 'memory://seed'
const topic = process.env.SEED_TOPIC ?? 'orders'
const group = process.env.SEED_GROUP ?? 'billing'
const messaging = await createMessaging(url)
await messaging.provision(topic, group)

const dead = Number(process.env.SEED_DEAD_LETTERS ?? 0)
if (dead > 0) {
  const failing = await messaging.subscribe(topic, { group, retry: false }, () => {
    throw new TypeError('mail server said 550')
  })
  for (let i = 1; i <= dead; i++)
    await messaging.publish(topic, { n: i }, { key: `k${i}`, headers: { tenant: 't1' } })
  const dlq = deadLetterQueue(messaging, topic, group)
  for (let tries = 0; (await dlq.browse()).length < dead; tries++) {
    if (tries > 200) throw new Error('seed: dead letters did not appear')
    await new Promise((r) => setTimeout(r, 10))
  }
  await failing.close()
}
if (process.env.SEED_CONSUMER) {
  await messaging.subscribe(topic, { group }, (m) => {
    process.stderr.write(`handled ${m.id} attempt=${m.attempt}\n`)
  })
}
const publish = Number(process.env.SEED_PUBLISH ?? 0)
if (publish > 0) {
  setTimeout(
    async () => {
      for (let i = 1; i <= publish; i++) await messaging.publish(topic, { tail: i }, { key: `t${i}` })
    },
    Number(process.env.SEED_PUBLISH_AFTER_MS ?? 500),
  )
}
