'use strict'

// The promise view of a request (Request#promise, behind requestAsync): it settles with the
// answer however late promise() is asked for and whatever the event listeners do.

const { Request } = require('../lib/request')

const client = () => ({ config: { timeouts: { latencyBuffer: 0 } }, _pending: new Map() })

test('a throwing success listener does not leave the promise of its request pending', async () => {
  const c = client()
  const req = new Request(c, 'id1', 'beta', 1000)
  const p = req.promise()
  req.on('success', () => { throw new Error('listener bug') })
  req._arm()
  expect(() => req._reply('response', { data: 42 })).toThrow('listener bug')
  await expect(p).resolves.toBe(42)
})

test('promise() asked for after the response settles with that response', async () => {
  const c = client()
  const ok = new Request(c, 'id1', 'beta', 1000)
  ok._reply('response', { data: 7 })
  await expect(ok.promise()).resolves.toBe(7)
  const failed = new Request(c, 'id2', 'beta', 1000)
  failed._reply('response', { error: 'nope' })
  await expect(failed.promise()).rejects.toMatchObject({ code: 'ricochet.request_failed', message: 'nope' })
})
