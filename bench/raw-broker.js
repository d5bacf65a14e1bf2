'use strict'

// Raw baseline broker: newline-delimited JSON over plain TCP. Each connection first sends
// {"hello": name}; every later frame is routed to the connection named by its `to` field.
// Per input chunk: split on '\n' with a carried remainder, JSON.parse, and one batched write
// per destination; a destination that is full pauses the source until it drains.
const net = require('node:net')

const conns = new Map()
const stats = { routed: 0, dropped: 0, badJson: 0, paused: 0 }

const server = net.createServer((sock) => {
  sock.setNoDelay(true)
  sock.setEncoding('utf8')
  let rem = ''
  let name = null
  let waiting = false
  const out = new Map() // destination socket → batched text of this chunk

  sock.on('data', (chunk) => {
    const s = rem.length ? rem + chunk : chunk
    let start = 0
    let i
    while ((i = s.indexOf('\n', start)) !== -1) {
      const line = s.slice(start, i)
      start = i + 1
      let f
      try {
        f = JSON.parse(line)
      } catch (_) {
        stats.badJson++
        continue
      }
      if (name === null) {
        if (f && typeof f.hello === 'string') {
          name = f.hello
          conns.set(name, sock)
          sock.write('{"ok":true}\n')
        }
        continue
      }
      const dst = conns.get(f.to)
      if (!dst) {
        stats.dropped++
        continue
      }
      const prev = out.get(dst)
      out.set(dst, prev === undefined ? line + '\n' : prev + line + '\n')
      stats.routed++
    }
    rem = start === s.length ? '' : s.slice(start)
    for (const [dst, text] of out) {
      if (!dst.write(text) && !waiting) {
        waiting = true
        stats.paused++
        sock.pause()
        dst.once('drain', () => { waiting = false; sock.resume() })
      }
    }
    out.clear()
  })
  sock.on('error', () => {})
  sock.on('close', () => { if (name !== null && conns.get(name) === sock) conns.delete(name) })
})

server.listen(0, '127.0.0.1', () => {
  process.send({ type: 'listening', port: server.address().port })
})
process.on('message', (m) => {
  if (m && m.type === 'stats') process.send({ type: 'stats', stats })
})
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
