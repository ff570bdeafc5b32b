// A throwaway RabbitMQ vhost (rabbitmqctl add_vhost + set_permissions; delete_vhost takes every queue
// and exchange in it along): what `pnpm test:brokers` gives each RabbitMQ run and the mail example's
// test its fresh broker. MSGKIT_RABBITMQCTL names rabbitmqctl, e.g. with Docker
// "docker compose exec -T rabbitmq rabbitmqctl" (default: the local `rabbitmqctl`, run as root).
import { spawnSync } from 'node:child_process'

const HINT =
  'rabbitmqctl must reach the broker node (run as root on its machine); with Docker set ' +
  "MSGKIT_RABBITMQCTL='docker compose exec -T rabbitmq rabbitmqctl'"

function rabbitmqctl(args) {
  const ctl = (process.env.MSGKIT_RABBITMQCTL ?? 'rabbitmqctl').split(' ').filter(Boolean)
  const r = spawnSync(ctl[0], [...ctl.slice(1), ...args], { encoding: 'utf8', timeout: 120_000 })
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim()
  return { ok: r.status === 0, command: [...ctl, ...args].join(' '), output }
}

/**
 * Creates `vhost` on the broker behind `baseUrl`, open to the URL's user. Returns the URL with that
 * vhost and `dispose()` (undefined once deleted, otherwise what went wrong), or `error`.
 */
export function createVhost(baseUrl, vhost) {
  const u = new URL(baseUrl)
  const user = decodeURIComponent(u.username) || 'guest'
  for (const args of [
    ['add_vhost', vhost],
    ['set_permissions', '-p', vhost, user, '.*', '.*', '.*'],
  ]) {
    const r = rabbitmqctl(args)
    if (!r.ok) return { error: `${r.command} failed:\n${r.output}\n${HINT}` }
  }
  u.pathname = `/${encodeURIComponent(vhost)}`
  return {
    url: u.toString(),
    dispose() {
      const r = rabbitmqctl(['delete_vhost', vhost])
      return r.ok ? undefined : `${r.command} failed: ${r.output}`
    },
  }
}
