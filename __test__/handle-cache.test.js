'use strict'

// lib/handle-cache.js remembers which listeners of client.handles (EventEmitter2 with
// wildcards) a handle name reaches. It must behave exactly like EventEmitter2's own emit:
// same listeners, same `this` and `this.event`, same return value, whatever changes between
// (or during) emits.

const { EventEmitter2 } = require('eventemitter2')
const { HandleCache } = require('../lib/handle-cache')

const OPTS = { wildcard: true, delimiter: '.', newListener: false, maxListeners: 10 }

/** Two emitters set up alike: one used directly, one through the cache; calls are logged. */
function pair (setup) {
  const sides = [new EventEmitter2(OPTS), new EventEmitter2(OPTS)].map((em) => {
    const log = []
    setup(em, log)
    return { em, log }
  })
  const cache = new HandleCache()
  return {
    direct: sides[0],
    cached: sides[1],
    emit (name, ...args) {
      const a = sides[0].em.emit(name, ...args)
      const b = args.length === 3
        ? cache.emit(sides[1].em, name, args[0], args[1], args[2], true)
        : cache.emit(sides[1].em, name, args[0], args[1], undefined, false)
      return [a, b]
    },
    cache
  }
}

const listener = (log, tag) => function (...args) { log.push([tag, this.event, args.length, ...args]) }

test('the same listeners run, with the same this.event and arguments, for exact and wildcard names', () => {
  const p = pair((em, log) => {
    em.on('chat.msg', listener(log, 'exact'))
    em.on('chat.*', listener(log, 'star'))
    em.on('**', listener(log, 'all'))
    em.on('other.x', listener(log, 'other'))
  })
  const results = []
  for (const name of ['chat.msg', 'chat.other', 'other.x', 'nothing', 'chat.msg.deep', 'chat.msg']) {
    results.push(p.emit(name, { n: 1 }, 'frame'))
    results.push(p.emit(name, 'body', 'reply', 'frame'))
  }
  expect(results.map(([direct]) => direct)).toEqual(results.map(([, cached]) => cached))
  expect(p.cached.log).toEqual(p.direct.log)
  expect(p.cached.log.length).toBeGreaterThan(10)
})

test('listeners added, removed or flushed after a name was remembered are seen on the next emit', () => {
  const p = pair(() => {})
  const run = (fn) => { fn(p.direct.em, p.direct.log); fn(p.cached.em, p.cached.log) }
  const results = []
  results.push(p.emit('a.b', 1, 2))
  run((em, log) => em.on('a.b', listener(log, 'first')))
  results.push(p.emit('a.b', 1, 2))
  run((em, log) => em.on('a.*', listener(log, 'wild')))
  results.push(p.emit('a.b', 1, 2))
  run((em) => em.off('a.b', em.listeners('a.b')[0]))
  results.push(p.emit('a.b', 1, 2))
  run((em) => em.removeAllListeners())
  results.push(p.emit('a.b', 1, 2))
  expect(results).toEqual([[false, false], [true, true], [true, true], [true, true], [false, false]])
  expect(p.cached.log).toEqual(p.direct.log)
})

test('once and many listeners stop after their count, through the cache as directly', () => {
  const p = pair((em, log) => {
    em.once('x.y', listener(log, 'once'))
    em.many('x.*', 2, listener(log, 'twice'))
    em.on('x.y', listener(log, 'always'))
  })
  const results = []
  for (let i = 0; i < 4; i++) results.push(p.emit('x.y', i, null))
  expect(p.cached.log).toEqual(p.direct.log)
  expect(p.cached.log.filter((l) => l[0] === 'once')).toHaveLength(1)
  expect(p.cached.log.filter((l) => l[0] === 'twice')).toHaveLength(2)
  expect(results.every(([a, b]) => a === b)).toBe(true)
})

test('a listener that removes another during an emit changes the next emit only, as EventEmitter2 does', () => {
  const p = pair((em, log) => {
    const second = listener(log, 'second')
    em.on('e.f', function (...args) { log.push(['first']); this.off('e.f', second) })
    em.on('e.f', second)
  })
  p.emit('e.f', 1, 2)
  p.emit('e.f', 1, 2)
  expect(p.cached.log).toEqual(p.direct.log)
  expect(p.cached.log.map((l) => l[0])).toEqual(['first', 'second', 'first'])
})

test('with an onAny listener, EventEmitter2 itself emits', () => {
  const p = pair((em, log) => {
    em.onAny(function (name, ...args) { log.push(['any', name, ...args]) })
    em.on('k.l', listener(log, 'k'))
  })
  expect(p.emit('k.l', 'a', 'b')).toEqual([true, true])
  expect(p.emit('none', 'a', 'b')).toEqual([true, true])
  expect(p.cached.log).toEqual(p.direct.log)
})

test('a waitFor() started after a name was remembered gets the next emit', async () => {
  const em = new EventEmitter2(OPTS)
  const cache = new HandleCache()
  em.on('job.*', () => {})
  cache.emit(em, 'job.done', 1, 2, undefined, false)
  const waiting = em.waitFor('job.done', 1000)
  cache.emit(em, 'job.done', 'x', 'y', undefined, false)
  await expect(waiting).resolves.toEqual(['x', 'y'])
})

test('after onAny and offAny, and without wildcards, results are EventEmitter2\'s own', () => {
  const p = pair((em) => { const f = () => {}; em.onAny(f); em.offAny(f) })
  expect(p.emit('nobody.here', 1, 2)).toEqual([true, true])
  const flat = { ...OPTS, wildcard: false }
  const sides = [new EventEmitter2(flat), new EventEmitter2(flat)]
  const logs = sides.map((em) => {
    const log = []
    em.once('a', () => log.push('once'))
    em.on('a', () => log.push('on'))
    return log
  })
  const cache = new HandleCache()
  for (let i = 0; i < 2; i++) {
    expect(cache.emit(sides[1], 'a', 1, 2, undefined, false)).toBe(sides[0].emit('a', 1, 2))
  }
  expect(logs[1]).toEqual(logs[0])
})

test('two caches on one emitter both see a change, and a new delimiter is a change', () => {
  const em = new EventEmitter2(OPTS)
  const first = new HandleCache()
  const second = new HandleCache()
  expect(first.emit(em, 'p.q', 1, 2, undefined, false)).toBe(false)
  expect(second.emit(em, 'p.q', 1, 2, undefined, false)).toBe(false)
  em.on('p.q', () => {})
  expect(first.emit(em, 'p.q', 1, 2, undefined, false)).toBe(true)
  expect(second.emit(em, 'p.q', 1, 2, undefined, false)).toBe(true)
  em.on('r/*', () => {})
  expect(first.emit(em, 'r/s', 1, 2, undefined, false)).toBe(false)
  em.delimiter = '/'
  expect(first.emit(em, 'r/s', 1, 2, undefined, false)).toBe(em.emit('r/s', 1, 2))
})

test('long handle names are dispatched but not remembered', () => {
  const p = pair((em, log) => em.on('**', listener(log, 'all')))
  const long = 'x'.repeat(300)
  expect(p.emit(long, 1, 2)).toEqual([true, true])
  expect(p.cache._lists.size).toBe(0)
  expect(p.cached.log).toEqual(p.direct.log)
})

test('handle names from the wire are remembered up to a bound', () => {
  const p = pair((em) => em.on('**', () => {}))
  for (let i = 0; i < 1000; i++) p.emit('name' + i, 1, 2)
  expect(p.cache._lists.size).toBeLessThanOrEqual(256)
})

test('a client dispatches to handles changed between messages', async () => {
  const { fakeServer, readyAlpha } = require('./helpers/fake-server')
  const { until } = require('./helpers/waiting')
  const srv = await fakeServer()
  const seen = []
  const c = await readyAlpha(srv.port)
  try {
    const frame = (n, handle) => JSON.stringify({ headers: { to: 'alpha', from: 'beta', id: 'i' + n, type: 'message', handle, groups: ['g1'] }, body: { n } }) + '\n'
    c.handle('chat.a', (body) => seen.push(['a', body.n]))
    await srv.write(frame(1, 'chat.a'))
    await until(() => seen.length === 1, 5000, 'frame 1')
    c.handle('chat.*', (body) => seen.push(['star', body.n]))
    await srv.write(frame(2, 'chat.a'))
    await until(() => seen.length === 3, 5000, 'frame 2')
    c.flushHandles()
    c.handle('chat.b', (body) => seen.push(['b', body.n]))
    await srv.write(frame(3, 'chat.a') + frame(4, 'chat.b'))
    await until(() => seen.length === 4, 5000, 'frame 4')
    expect(seen).toEqual([['a', 1], ['a', 2], ['star', 2], ['b', 4]])
  } finally {
    await c.close()
    await srv.close()
  }
})
