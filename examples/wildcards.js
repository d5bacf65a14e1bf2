'use strict'

// Wildcard handles: one worker serves a whole family of handles with EventEmitter2 patterns
// (`files.*` matches one segment, `**` any depth). Run: node examples/wildcards.js
const { Server, Client } = require('..')

const KEYS = {
  'pub-web': { channel: 'web', privateKey: 'priv-web', authKey: 'auth-web', groups: ['files'] },
  'pub-store': { channel: 'store', privateKey: 'priv-store', authKey: 'auth-store', groups: ['files'] }
}

async function main () {
  const server = new Server()
  server.authCallback = async ({ publicKey }) => ({ publicKey, ...KEYS[publicKey] })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()

  const connect = (publicKey) => new Promise((resolve) => {
    const c = new Client()
    c.once('ready', () => resolve(c))
    c.connect({ port, publicKey, privateKey: KEYS[publicKey].privateKey, authKey: KEYS[publicKey].authKey })
  })
  const store = await connect('pub-store')
  const web = await connect('pub-web')

  const files = new Map([['a.txt', 'hello'], ['b.txt', 'world']])
  // One handler for files.list, files.read, files.stat, ...: the handle name says which.
  store.handle('files.*', (body, reply, msg) => {
    const op = msg.headers.handle.split('.')[1]
    if (op === 'list') return reply.emit('response', null, [...files.keys()])
    if (op === 'read') return reply.emit('response', null, files.get(body.name) ?? null)
    reply.emit('response', `unknown operation ${op}`)
  })
  // Everything under audit, at any depth, e.g. audit.login or audit.files.read.
  let audited = 0
  store.handle('audit.**', (body, msg) => { audited++; console.log(`[store] audit ${msg.headers.handle}`, JSON.stringify(body)) })

  console.log('[web] files.list ->', JSON.stringify(await web.requestAsync('store', 'files.list')))
  console.log('[web] files.read ->', JSON.stringify(await web.requestAsync('store', 'files.read', { name: 'b.txt' })))
  try {
    await web.requestAsync('store', 'files.delete', { name: 'a.txt' })
  } catch (err) {
    console.log('[web] files.delete failed:', err.message)
  }
  try {
    await web.requestAsync('store', 'nothing.here')
  } catch (err) {
    console.log('[web] nothing.here failed:', err.code)
  }
  web.message('store', 'audit.login', { user: 'ann' })
  web.message('store', 'audit.files.read', { name: 'b.txt' })
  while (audited < 2) await new Promise((resolve) => setTimeout(resolve, 5))

  await web.close()
  await store.close()
  await server.close()
  console.log('done')
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
