// A typed worker and caller. Type-checked with `tsc --strict` and run by __test__/examples.test.js
// (compiled to a temporary folder first).
import { Server, Client, Reply, Frame, RicochetError } from 'ricochet'

interface SumRequest { numbers: number[] }
interface SumResult { total: number }

async function main (): Promise<void> {
  const server = new Server({ timeouts: { auth: 2000 } })
  server.authCallback = async ({ publicKey }) => {
    if (publicKey !== 'pub-ts-api' && publicKey !== 'pub-ts-worker') throw new Error('unknown key')
    const name = String(publicKey).slice('pub-ts-'.length)
    return { channel: name, privateKey: `priv-${name}`, groups: ['ts'] }
  }
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', () => resolve()) })
  const port = server.address()?.port ?? 0

  const connect = (name: string): Promise<Client> => new Promise((resolve) => {
    const c = new Client()
    c.once('ready', ({ channel }) => { console.log(`[${channel}] ready`); resolve(c) })
    c.connect({ port, publicKey: `pub-ts-${name}`, privateKey: `priv-${name}` })
  })
  const worker = await connect('worker')
  const api = await connect('api')

  worker.handle<SumRequest>('math.sum', (body: SumRequest, reply: Reply, msg: Frame<SumRequest>) => {
    reply.emit('update', { received: body.numbers.length, from: msg.headers.from })
    const result: SumResult = { total: body.numbers.reduce((a, b) => a + b, 0) }
    reply.emit('response', null, result)
  })

  const result = await api.requestAsync<SumResult>('worker', 'math.sum', { numbers: [1, 2, 3, 4] }, {
    timeout: 2000,
    onUpdate: (u) => console.log('[api] update', JSON.stringify(u))
  })
  console.log('[api] total', result.total.toFixed(0))

  try {
    await api.requestAsync('nobody', 'math.sum', { numbers: [] })
  } catch (err) {
    console.log('[api] failed as expected:', (err as RicochetError).code)
  }

  await api.close()
  await worker.close()
  await server.close()
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
