'use strict'

// Child of client-js-read.test.js: a client of alpha against an in-process raw server that
// writes frames after auth. Default: five frames, the handler throws on the first; with
// JS_READ_CHILD_FLOOD=N: N frames in one burst. Reports {seen, uncaught} over IPC and exits.
const net = require('node:net')
const { Client } = require('../..')
const { PARTIES } = require('./server')

const flood = Number(process.env.JS_READ_CHILD_FLOOD || 0)
const count = flood || 5
const uncaught = []
const seen = []
process.on('uncaughtException', (err) => uncaught.push(err.message))

const frame = (n) => JSON.stringify({
  headers: { to: 'alpha', from: 'beta', id: 'id' + n, type: 'message', handle: 'chat.x', groups: ['g1'] },
  body: { n }
}) + '\n'

const srv = net.createServer((s) => {
  s.on('error', () => {})
  s.once('data', async () => {
    s.write(JSON.stringify({ auth: true, channel: 'alpha', groups: ['g1'] }) + '\n')
    if (flood) {
      let all = ''
      for (let i = 0; i < count; i++) all += frame(i)
      s.write(all)
      return
    }
    // One frame at a time, so each is read while the client is idle.
    for (let i = 0; i < count; i++) {
      s.write(frame(i))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })
})

srv.listen(0, '127.0.0.1', () => {
  const c = new Client({ timeouts: { reconnect: 5000 } })
  c.handle('chat.x', (body) => {
    seen.push(body.n)
    if (!flood && body.n === 0) throw new Error('boom 0')
    if (seen.length === count) {
      // Let a pending uncaught exception surface first.
      setTimeout(async () => {
        process.send({ seen, uncaught, jsThreadReads: c._native.jsThreadReads() })
        await c.close()
        srv.close()
        process.disconnect()
      }, 50)
    }
  })
  const p = PARTIES.alpha
  c.connect({ host: '127.0.0.1', port: srv.address().port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey })
})
