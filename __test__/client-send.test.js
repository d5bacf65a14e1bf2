'use strict'

// The bytes a client writes for message(), request() and their failures: header key order and
// JSON exactly as ricochet.js 0.3.x writes them (JSON.stringify of {id, to, type, handle,
// encrypted[, timeout]}), a fresh 32-character id per frame, the body encrypted with the id as
// pad. A raw TCP server plays the server side and keeps every line.

const { until, useCleanups } = require('./helpers/waiting')
const { fakeServer, readyAlpha } = require('./helpers/fake-server')
const { PARTIES } = require('./helpers/server')
const { decryptRaw, DELIM } = require('./helpers/wire')

const ALPHA = PARTIES.alpha
const ID = /^[A-Za-z0-9]{32}$/

const onCleanup = useCleanups()

/** A ready client of alpha and the frames (after the auth frame) its fake server received. */
async function capturingClient (config = {}, afterAuth = []) {
  const srv = await fakeServer({ afterAuth })
  onCleanup(srv.close)
  const c = await readyAlpha(srv.port, config)
  onCleanup(() => c.close())
  return { c, lines: srv.lines }
}

describe('frames a client writes', () => {
  test('message() headers are JSON.stringify({id, to, type, handle, encrypted}) with a fresh id, awkward names (lone surrogates too) escaped', async () => {
    const { c, lines } = await capturingClient()
    const names = [['beta', 'chat.hello'], ['be"ta\n', 'ch\u2028at\\'], ['ünï', 'ü'], ['be\ud800ta', 'ch\udfffx😀'], ['beta', 'chat.hello']]
    for (const [to, handle] of names) c.insecure().message(to, handle, { to })
    await until(() => lines.length === names.length, 3000, 'all frames')
    const ids = new Set()
    lines.forEach((line, i) => {
      const [to, handle] = names[i]
      const frame = JSON.parse(line)
      expect(frame.headers.id).toMatch(ID)
      ids.add(frame.headers.id)
      const expected = JSON.stringify({ id: frame.headers.id, to, type: 'message', handle, encrypted: false })
      expect(line).toBe(`{"headers":${expected},"body":${JSON.stringify({ to })}}`)
    })
    expect(ids.size).toBe(names.length)
  })

  test('an encrypted message() carries its body encrypted with its own id as the pad', async () => {
    const { c, lines } = await capturingClient()
    c.message('beta', 'chat.hello', { secret: 'x'.repeat(40) })
    await until(() => lines.length === 1, 3000, 'one frame')
    const frame = JSON.parse(lines[0])
    expect(Object.keys(frame.headers)).toEqual(['id', 'to', 'type', 'handle', 'encrypted'])
    expect(frame.headers.encrypted).toBe(true)
    expect(decryptRaw(ALPHA.privateKey, frame.body)).toBe(JSON.stringify({ secret: 'x'.repeat(40) }) + DELIM + frame.headers.id)
  })

  test('request() headers add the timeout and keep the id the request reports', async () => {
    const { c, lines } = await capturingClient()
    const req = c.insecure().timeout(1234).request('beta', 'job.run', [1])
    req.on('error', () => {})
    await until(() => lines.length === 1, 3000, 'one frame')
    const frame = JSON.parse(lines[0])
    expect(frame.headers.id).toBe(req.id)
    expect(lines[0]).toBe(`{"headers":${JSON.stringify({ id: req.id, to: 'beta', type: 'request', handle: 'job.run', encrypted: false, timeout: 1234 })},"body":[1]}`)
  })

  test('a message with a non-string channel is written with the headers JSON.stringify gives', async () => {
    const { c, lines } = await capturingClient()
    c.insecure().message(42, 'chat.x', 1)
    await until(() => lines.length === 1, 3000, 'one frame')
    const frame = JSON.parse(lines[0])
    expect(lines[0]).toBe(`{"headers":${JSON.stringify({ id: frame.headers.id, to: 42, type: 'message', handle: 'chat.x', encrypted: false })},"body":1}`)
  })

  test('a message too large to send gives sendError message_toolarge with its headers and an id', async () => {
    const { c } = await capturingClient({ maxMessageSize: 4096 })
    const errors = []
    c.on('sendError', (e) => errors.push(e))
    c.message('beta', 'chat.big', 'x'.repeat(5000))
    await until(() => errors.length === 1, 3000, 'sendError')
    expect(errors[0].code).toBe('ricochet.message_toolarge')
    expect(errors[0].message).toMatchObject({ to: 'beta', handle: 'chat.big', type: 'message', encrypted: true })
    expect(errors[0].message.id).toMatch(ID)
  })

  test('replies carry JSON.stringify({id, to, type, handle, encrypted, status}) headers, odd values and lone surrogates included', async () => {
    const request = (headers) => JSON.stringify({ headers: { to: 'alpha', type: 'request', groups: ['g1'], encrypted: false, ...headers }, body: { q: 1 } })
    const { c, lines } = await capturingClient({}, [
      request({ id: 'r1', from: 'beta', handle: 'job.run' }),
      request({ id: 'r2', from: 'be"ta\u2028', handle: 'job.ü' }),
      request({ id: 7, from: 5, handle: 'job.run' }),
      request({ id: 'r4', from: 'beta', handle: 'job.\ud800x' })
    ])
    c.handle('job.*', (body, reply) => reply.emit('response', null, { ok: body.q }))
    await until(() => lines.length === 4, 3000, 'four replies')
    const expected = [['r1', 'beta', 'job.run'], ['r2', 'be"ta\u2028', 'job.ü'], [7, 5, 'job.run'], ['r4', 'beta', 'job.\ud800x']]
    lines.forEach((line, i) => {
      const [id, to, handle] = expected[i]
      const headers = JSON.stringify({ id, to, type: 'reply', handle, encrypted: false, status: 'response' })
      expect(line).toBe(`{"headers":${headers},"body":{"error":null,"data":{"ok":1}}}`)
    })
  })
})

test('the native send function rejects a batch that is not a string with a TypeError and reports failed records', () => {
  const { NativeClient } = require('../binding')
  const native = new NativeClient()
  const send = native.sendFunction()
  // Native errors come from Node's realm, not jest's: compare names, not constructors.
  const thrown = (fn) => { try { fn() } catch (e) { return `${e.name}: ${e.message}` } return 'nothing' }
  expect(thrown(() => send(42))).toBe('TypeError: ricochet: send(batch) needs a string')
  expect(thrown(() => send())).toBe('TypeError: ricochet: send(batch) needs a string')
  // Its client is fixed: the property that keeps it alive cannot be replaced or removed.
  const owner = send._owner
  expect(thrown(() => { send._owner = null })).toMatch(/^TypeError/)
  expect(thrown(() => { delete send._owner })).toMatch(/^TypeError/)
  expect(send._owner).toBe(owner)
  // Not connected: every record fails, and takeFailed() says which.
  expect(send('p"a"\0"b"\0{}\x01p"a"\0"b"\0[]\x01')).toBe(-1)
  expect(native.takeFailed()).toEqual({
    buffered: 0,
    failed: [{ index: 0, code: 'ricochet.client_connection' }, { index: 1, code: 'ricochet.client_connection' }]
  })
  expect(native.takeFailed()).toBeNull()
})
