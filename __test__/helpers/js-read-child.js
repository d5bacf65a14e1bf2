'use strict'

// Child of client-js-read.test.js: a client of alpha against an in-process raw server that
// writes frames after auth. Default: five frames, the handler throws on the first; with
// JS_READ_CHILD_FLOOD=N: N frames in one burst. Reports {seen, uncaught} over IPC and exits.
const net = require('node:net')
const { Client } = require('../..')
const { PARTIES } = require('./server')

const flood = Number(process.env.JS_READ_CHILD_FLOOD || 0)
// JS_READ_CHILD_STALL=<port>: connect to that server instead, block the JS thread for 800 ms
// in the first handler call, and collect JS_READ_CHILD_COUNT frames (timeouts.idle from
// JS_READ_CHILD_IDLE).
const stallPort = Number(process.env.JS_READ_CHILD_STALL || 0)
const count = stallPort ? Number(process.env.JS_READ_CHILD_COUNT) : flood || 5
const events = []
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

function start (port) {
  const c = new Client({ timeouts: { reconnect: 5000, idle: Number(process.env.JS_READ_CHILD_IDLE || 0) } })
  for (const name of ['timeout', 'disconnected', 'receiveError']) c.on(name, () => events.push(name))
  c.handle('chat.x', (body) => {
    seen.push(body.n)
    if (stallPort && body.n === 0) {
      const until = Date.now() + 800
      while (Date.now() < until) {}
    }
    if (!flood && !stallPort && body.n === 0) throw new Error('boom 0')
    if (seen.length === count) {
      // Let a pending uncaught exception surface first.
      setTimeout(async () => {
        process.send({ seen, uncaught, events, jsThreadFrames: c._native.jsThreadFrames() })
        await c.close()
        if (!stallPort) srv.close()
        process.disconnect()
      }, 50)
    }
  })
  const p = PARTIES.alpha
  c.connect({ host: '127.0.0.1', port, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey })
}

if (stallPort) start(stallPort)
else srv.listen(0, '127.0.0.1', () => start(srv.address().port))
