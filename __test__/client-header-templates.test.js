'use strict'

// Frames whose headers repeat reach JS as a body against headers parsed once per shape
// (src/client/templates.rs, lib/templates.js). Whatever path a frame takes, the handler must
// see exactly what JSON.parse of the received line gives: same keys, same order, same values,
// and objects of its own.

const { until, useCleanups } = require('./helpers/waiting')
const { fakeServer, readyAlpha } = require('./helpers/fake-server')

const onCleanup = useCleanups()

async function collect (lines, { expect: want = lines.length } = {}) {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const seen = []
  const c = await readyAlpha(srv.port, {}, (c) => c.handle('**', (body, msg) => seen.push(msg)))
  onCleanup(() => c.close())
  await srv.write(lines.map((l) => l + '\n').join(''))
  await until(() => seen.length >= want, 5000, `${want} frames`)
  return { seen, c, srv }
}

const base = (id, extra = {}) => ({ to: 'alpha', from: 'beta', id, type: 'message', handle: 'chat.x', groups: ['g1'], ...extra })

test('repeated headers arrive exactly as JSON.parse of each line, in key order', async () => {
  const lines = []
  for (let i = 0; i < 40; i++) lines.push(JSON.stringify({ headers: base('id' + i), body: { n: i } }))
  const { seen, c } = await collect(lines)
  expect(seen.map((m) => JSON.stringify(m))).toEqual(lines)
  // The first frame of a shape arrives whole; every later one is rebuilt from its template.
  expect(c._templates.rebuilt).toBe(39)
})

test('odd header shapes repeat correctly: escapes, numeric and __proto__ keys, nulls, numbers, unicode', async () => {
  const shapes = [
    '{"headers":{"to":"alpha","id":"A%","from":"beta","type":"message","handle":"chat.x","groups":["g1"],"k\\"q":"v\\u00e9\\n","1":2,"n":null,"x":1e3},"body":[1,2]}',
    '{"headers":{"__proto__":{"polluted":1},"to":"alpha","from":"beta","id":"B%","type":"message","handle":"chat.x","groups":["g1"]},"body":{"a":1}}',
    '{"headers":{"id":"C%","__proto__":"p","to":"alpha","from":"beta","type":"message","handle":"chat.ü","groups":["g1",1,true,null]},"body":"s"}',
    '{"headers":{"id":7,"to":"alpha","from":"beta","type":"message","handle":"chat.x","groups":["g1"]},"body":0}',
    '{"headers":{"id":"D%","to":"alpha","from":"beta","type":"message","handle":"chat.x","groups":["g1"],"deep":[["x"]]},"body":1}'
  ]
  const lines = []
  for (let i = 0; i < 4; i++) for (const s of shapes) lines.push(s.replace('%', String(i)))
  const { seen, c } = await collect(lines)
  expect(seen.map((m) => JSON.stringify(m))).toEqual(lines.map((l) => JSON.stringify(JSON.parse(l))))
  // Shapes 0, 2 and 3 are rebuilt after their first frame; nested values (1, 4) never are.
  expect(c._templates.rebuilt).toBe(9)
  for (let i = 0; i < lines.length; i++) expect(seen[i]).toEqual(JSON.parse(lines[i]))
  // A header called __proto__ is an own property, as with JSON.parse, not the prototype.
  expect(Object.getPrototypeOf(seen[1].headers)).toBe(Object.prototype)
  expect(seen[6].headers.polluted).toBeUndefined()
})

test('every frame gets arrays of its own: a handler changing its headers does not change the next frame', async () => {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const seen = []
  const c = await readyAlpha(srv.port, {}, (c) => c.handle('chat.x', (body, msg) => {
    seen.push(JSON.stringify(msg.headers))
    msg.headers.groups.push('mutated')
    msg.headers.to = 'changed'
  }))
  onCleanup(() => c.close())
  const lines = []
  for (let i = 0; i < 10; i++) lines.push(JSON.stringify({ headers: base('i' + i), body: i }))
  await srv.write(lines.map((l) => l + '\n').join(''))
  await until(() => seen.length >= 10, 5000, '10 frames')
  expect(seen).toEqual(lines.map((l) => JSON.stringify(JSON.parse(l).headers)))
  expect(c._templates.rebuilt).toBe(9)
})

test('frames with other top-level keys or headers that change every time still arrive whole', async () => {
  const lines = []
  for (let i = 0; i < 10; i++) {
    lines.push(JSON.stringify({ headers: base('x' + i), body: i, extra: { i } }))
    lines.push(JSON.stringify({ body: i, headers: base('y' + i) }))
    lines.push(JSON.stringify({ headers: base('z' + i, { ts: 1000 + i }), body: i }))
  }
  const { seen, c } = await collect(lines)
  expect(seen.map((m) => JSON.stringify(m))).toEqual(lines)
  expect(c._templates.rebuilt).toBe(0)
})

test('after a reconnect, headers of the new connection are not confused with the old one', async () => {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const seen = []
  const c = await readyAlpha(srv.port, { timeouts: { reconnect: 50 } }, (c) => c.handle('**', (body, msg) => seen.push(JSON.stringify(msg))))
  onCleanup(() => c.close())
  const first = []
  for (let i = 0; i < 5; i++) first.push(JSON.stringify({ headers: base('a' + i, { handle: 'chat.a' }), body: i }))
  await srv.write(first.map((l) => l + '\n').join(''))
  await until(() => seen.length >= 5, 5000, 'the first frames')
  const ready = new Promise((resolve) => c.once('ready', resolve))
  srv.dropAll()
  await ready
  const second = []
  for (let i = 0; i < 5; i++) second.push(JSON.stringify({ headers: base('b' + i, { handle: 'chat.b', from: 'gamma' }), body: -i }))
  await srv.write(second.map((l) => l + '\n').join(''))
  await until(() => seen.length >= 10, 5000, 'the second frames')
  expect(seen).toEqual([...first, ...second])
  // Both connections used slot 0 for their own shape.
  expect(c._templates.rebuilt).toBe(8)
})

test('encrypted frames with repeating headers arrive decrypted, as whole frames would', async () => {
  const { encrypt } = require('./helpers/wire')
  const { PARTIES } = require('./helpers/server')
  const key = PARTIES.alpha.privateKey
  const lines = []
  const want = []
  for (let i = 0; i < 6; i++) {
    const id = 'E' + i
    const body = { secret: i }
    lines.push(JSON.stringify({ headers: base(id, { encrypted: true }), body: encrypt(key, JSON.stringify(body), id) }))
    want.push(JSON.stringify({ headers: base(id, { encrypted: true }), body }))
  }
  const { seen, c } = await collect(lines)
  expect(seen.map((m) => JSON.stringify(m))).toEqual(want)
  expect(c._templates.rebuilt).toBe(5)
})
