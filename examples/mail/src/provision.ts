/**
 * `pnpm … provision`: the deploy step. Makes every group the example's consumers own exist on the
 * broker MSGKIT_URL points at, then exits. Run it before anything publishes (at every deploy; it is
 * idempotent): from then on no event is lost, whatever order the services start in and whether
 * MailService is up yet. Only MailService consumes in this example; a second consumer would add
 * its own provision function here.
 */
import { connect, runAsProcess } from './connect.js'
import { MAIL_SERVICE_GROUP, MAIL_SERVICE_TOPICS, provisionMailService } from './mail-service.js'

runAsProcess('provision', async () => {
  const started = Date.now()
  const messaging = await connect('provision')
  try {
    await provisionMailService(messaging)
  } finally {
    await messaging.close()
  }
  const topics = MAIL_SERVICE_TOPICS.map((t) => t.name).join(', ')
  console.log(
    `[provision] group ${MAIL_SERVICE_GROUP} exists on ${topics} (${messaging.transport.name}, ${Date.now() - started} ms)`,
  )
  return { close: async () => {} }
})
