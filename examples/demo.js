'use strict'

// The main job: a server and two clients exchanging encrypted requests with progress updates,
// then a throughput line. Run with `npm run demo`.
const { Server, Client } = require('..')

const USERS = {
  'pub-api': { channel: 'api', privateKey: 'priv-api-3f9a', authKey: 'auth-api', groups: ['jobs'] },
  'pub-worker': { channel: 'worker', privateKey: 'priv-worker-77c1', authKey: 'auth-worker', groups: ['jobs'] }
}

function log (who, ...args) {
  console.log(`[${who}]`.padEnd(9), ...args)
}

async function main () {
  const server = new Server()
  server.authCallback = async ({ publicKey, ip }) => {
    const user = USERS[publicKey]
    if (!user) throw new Error(`unknown publicKey ${publicKey}`)
    return { publicKey, ip, ...user }
  }
  server.on('clientReady', ({ id }) => log('server', 'client ready', id.slice(0, 8)))
  server.on('clientAuthFail', (e) => log('server', 'auth failed', e.code))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  log('server', `listening on 127.0.0.1:${port}`)

  const connect = (publicKey) => new Promise((resolve) => {
    const c = new Client()
    c.once('ready', ({ channel, groups }) => {
      log(channel, 'ready, groups', JSON.stringify(groups))
      resolve(c)
    })
    c.connect({ host: '127.0.0.1', port, publicKey, privateKey: USERS[publicKey].privateKey, authKey: USERS[publicKey].authKey })
  })
  const worker = await connect('pub-worker')
  const api = await connect('pub-api')

  // The worker sums numbers in chunks, reporting progress after each chunk.
  worker.handle('math.sum', (body, reply) => {
    const nums = body.numbers
    let total = 0
    const half = Math.ceil(nums.length / 2)
    total += nums.slice(0, half).reduce((a, b) => a + b, 0)
    reply.emit('update', { done: half, of: nums.length })
    total += nums.slice(half).reduce((a, b) => a + b, 0)
    reply.emit('update', { done: nums.length, of: nums.length })
    reply.emit('response', null, { total })
  })
  worker.handle('bench.echo', (body, reply) => reply.emit('response', null, body))

  const numbers = Array.from({ length: 10 }, (_, i) => i + 1)
  log('api', 'request math.sum', JSON.stringify(numbers))
  const total = await api.requestAsync('worker', 'math.sum', { numbers }, {
    onUpdate: (u) => log('api', `progress ${u.done}/${u.of}`)
  })
  log('api', 'response', JSON.stringify(total))

  try {
    await api.requestAsync('nobody', 'math.sum', { numbers })
  } catch (err) {
    log('api', 'request to an unknown channel failed as expected:', err.code)
  }

  // Throughput: encrypted request/reply round trips with 64 in flight.
  const N = 20000
  const inFlight = 64
  let sent = 0
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (sent < N) {
      sent++
      await api.requestAsync('worker', 'bench.echo', { seq: sent, data: 'x'.repeat(160) })
    }
  }))
  const secs = Number(process.hrtime.bigint() - start) / 1e9
  log('api', `throughput: ${N} encrypted round trips in ${secs.toFixed(2)} s = ${Math.round(N / secs)} req/s (64 in flight)`)

  await api.close()
  await worker.close()
  await server.close()
  log('server', `closed after routing ${server.stats.messages} messages`)
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
