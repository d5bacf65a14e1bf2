'use strict'

// The header JSON a Client writes is exactly what JSON.stringify gives (stock key order), for
// plain and awkward values alike.
const { headersJson } = require('../lib/headers')

describe('client header JSON', () => {
  const cases = [
    ['A'.repeat(32), 'beta', 'message', 'chat.hello', true, undefined],
    ['A'.repeat(32), 'beta', 'request', 'math.add', false, 5000],
    ['id', 'quote"d', 'message', 'back\\slash', true, undefined],
    ['id', 'new\nline', 'request', 'tab\there', true, 1.5],
    ['id', 'ünïcödé ✓', 'message', '\u2028sep\u2029', false, undefined],
    ['id', 123, 'message', null, true, undefined],
    ['id', { o: 1 }, 'request', ['a'], true, NaN]
  ]
  test.each(cases)('%#: matches JSON.stringify of the headers object', (id, to, type, handle, encrypted, timeout) => {
    const obj = { id, to, type, handle, encrypted }
    if (timeout !== undefined) obj.timeout = timeout
    expect(headersJson(id, to, type, handle, encrypted, timeout)).toBe(JSON.stringify(obj))
  })

  test('values JSON.stringify would drop fall back to stringifying the object', () => {
    expect(headersJson('id', undefined, 'message', 'h', true)).toBeUndefined()
    expect(headersJson('id', 'to', 'message', undefined, true)).toBeUndefined()
  })
})
