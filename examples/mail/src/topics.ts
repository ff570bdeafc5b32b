/** The events the three services share. The schemas are checked on publish and on consume. */
import { defineTopic } from '@msgkit/core'
import { z } from 'zod'

export const MemberSignedUp = defineTopic(
  'member.signed-up',
  z.object({ memberId: z.string(), email: z.email(), name: z.string().min(1) }),
)

export const OrderCompleted = defineTopic(
  'order.completed',
  z.object({
    orderId: z.string(),
    memberId: z.string(),
    email: z.email(),
    items: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })).min(1),
    totalCents: z.number().int().nonnegative(),
  }),
)
