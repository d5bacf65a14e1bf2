'use strict'

// A server plus raw TCP peers for one test file: start it, log parties in, find connection ids,
// and close everything in afterEach with `close()`.
const { RawClient } = require('./wire')
const { startServer, waitForEvent } = require('./server')

function rawSession () {
  const s = { ctx: null, raws: [] }

  s.start = async (opts = {}) => {
    s.ctx = await startServer(opts)
    return s.ctx
  }

  s.connect = async () => {
    const c = await RawClient.connect(s.ctx.port, '127.0.0.1')
    s.raws.push(c)
    return c
  }

  /** A raw client authenticated as `party` (an entry of PARTIES or a custom party). */
  s.join = async (party, authOpts) => {
    const c = await s.connect()
    const reply = await c.auth(party, authOpts)
    expect(reply.auth).toBe(true)
    return c
  }

  /** The server's connection id of the client on `channel`. */
  s.connId = (channel) => {
    const hit = s.ctx.server.getClients().find((c) => c.channel === channel)
    if (!hit) throw new Error(`no client on channel ${channel}`)
    return hit.id
  }

  /**
   * Everything `c` sent before this call has been processed once this resolves: a
   * self-addressed frame is answered with `message_self` (D24), and a connection's frames are
   * handled in order. The next frame `c` receives must be that answer.
   */
  s.barrier = async (c, channel) => {
    const f = c.message(channel, 'barrier', {}, { encrypted: false })
    const reply = await c.next()
    expect(reply.headers.id).toBe(f.headers.id)
    expect(reply.body.code).toBe('ricochet.message_self')
    // Server events travel in order, so every event caused by earlier frames is in by now.
    await waitForEvent(s.ctx.events, 'messageError', (p) => p.code === 'ricochet.message_self' &&
      p.raw.message.headers.id === f.headers.id)
  }

  s.close = async () => {
    await Promise.all(s.raws.splice(0).map((c) => c.close()))
    if (s.ctx) await s.ctx.close()
    s.ctx = null
  }

  return s
}

module.exports = { rawSession }
