/** MemberService: signs members up and announces it. It knows nothing about e-mail. */
import { randomUUID } from 'node:crypto'
import type { Messaging } from '@msgkit/core'
import { connect, isMain, runAsProcess } from './connect.js'
import { MemberSignedUp } from './topics.js'

export function createMemberService(messaging: Messaging) {
  return {
    async signUp(name: string, email: string): Promise<string> {
      const memberId = randomUUID()
      // … store the member …
      await messaging.publish(MemberSignedUp, { memberId, email, name }, { key: memberId })
      return memberId
    },
  }
}

if (isMain(import.meta.url)) {
  runAsProcess('member-service', async () => {
    const messaging = await connect('member-service')
    const service = createMemberService(messaging)
    const names = ['Kim Minji', 'Lee Jiho', 'Park Seoyeon']
    for (const [i, name] of names.entries()) {
      const id = await service.signUp(name, `member${i + 1}@example.com`)
      console.log(`[member-service] signed up ${name} (${id})`)
    }
    await messaging.close()
    return { close: async () => {} }
  })
}
