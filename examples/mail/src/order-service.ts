/** OrderService: completes orders and announces it. */
import { randomUUID } from 'node:crypto'
import type { Messaging } from '@msgkit/core'
import { connect, isMain, runAsProcess } from './connect.js'
import { OrderCompleted } from './topics.js'

export function createOrderService(messaging: Messaging) {
  return {
    async complete(
      memberId: string,
      email: string,
      items: Array<{ sku: string; quantity: number }>,
      totalCents: number,
    ): Promise<string> {
      const orderId = randomUUID()
      await messaging.publish(
        OrderCompleted,
        { orderId, memberId, email, items, totalCents },
        { key: memberId },
      )
      return orderId
    },
  }
}

if (isMain(import.meta.url)) {
  runAsProcess('order-service', async () => {
    const messaging = await connect('order-service')
    const service = createOrderService(messaging)
    const id = await service.complete(
      randomUUID(),
      'member1@example.com',
      [{ sku: 'KEYBOARD-01', quantity: 1 }],
      89_000,
    )
    console.log(`[order-service] completed order ${id}`)
    await messaging.close()
    return { close: async () => {} }
  })
}
