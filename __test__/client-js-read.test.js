'use strict'

// The client reads its socket on the JS thread when that thread is idle (libuv watcher) and on
// a tokio thread otherwise. Whichever thread reads, frames must arrive whole, once, in order,
// and a throwing handler must stay an uncaught exception. Some cases also run with the JS-thread
// reader switched off (RICOCHET_JS_READ=0, read once per process, so in a child process).

const path = require('node:path')
const { fork } = require('node:child_process')
const { until, delay, useCleanups } = require('./helpers/waiting')
const { fakeServer, readyAlpha } = require('./helpers/fake-server')

const CHILD = path.join(__dirname, 'helpers', 'js-read-child.js')

const onCleanup = useCleanups()

const frame = (n) => JSON.stringify({
  headers: { to: 'alpha', from: 'beta', id: 'id' + n, type: 'message', handle: 'chat.x', groups: ['g1'] },
  body: { n, pad: 'y'.repeat(n % 300) }
})

function runChild (env) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    let stderr = ''
    let result = null
    child.stderr.on('data', (d) => { stderr += d })
    child.on('message', (m) => { result = m })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (result) resolve(result)
      else reject(new Error(`child exited ${code} without a result: ${stderr}`))
    })
  })
}

test('frames streamed in odd-sized pieces, with pauses, arrive whole, once and in order', async () => {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const seen = []
  const c = await readyAlpha(srv.port, {}, (c) => c.handle('chat.x', (body) => seen.push(body.n)))
  onCleanup(() => c.close())

  const N = 4000
  let text = ''
  for (let i = 0; i < N; i++) text += frame(i) + '\n'
  // Deterministic piece sizes from 1 byte to ~40 KiB; some pieces are written after the
  // client has gone idle, some back to back, so both readers get their turn.
  let seed = 7
  let at = 0
  let piece = 0
  while (at < text.length) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    const size = piece % 5 === 0 ? 1 + (seed % 7) : 1 + (seed % 40000)
    await srv.write(text.slice(at, at + size))
    at += size
    if (piece++ % 3 === 0) await delay(1)
  }
  await until(() => seen.length >= N, 10000, 'every frame')
  await delay(50)
  expect(seen.length).toBe(N)
  expect(seen.every((n, i) => n === i)).toBe(true)
  // The JS thread did take part (on Linux and macOS, where libuv is there to watch with).
  if (process.platform !== 'win32') expect(c._native.jsThreadFrames()).toBeGreaterThan(0)
})

test.each([
  ['on', {}],
  ['off', { RICOCHET_JS_READ: '0' }]
])('with the JS-thread reader %s, a throwing handler is an uncaught exception and later frames still arrive in order', async (_, env) => {
  const result = await runChild(env)
  expect(result.uncaught).toEqual(['boom 0'])
  expect(result.seen).toEqual([0, 1, 2, 3, 4])
  if (env.RICOCHET_JS_READ === '0') expect(result.jsThreadFrames).toBe(0)
  else if (process.platform !== 'win32') expect(result.jsThreadFrames).toBeGreaterThan(0)
})

test('with the JS-thread reader off, a flood of frames still arrives whole and in order', async () => {
  const result = await runChild({ RICOCHET_JS_READ: '0', JS_READ_CHILD_FLOOD: '2000' })
  expect(result.seen.length).toBe(2000)
  expect(result.seen.every((n, i) => n === i)).toBe(true)
  expect(result.jsThreadFrames).toBe(0)
})

/** Streams N frames, one every 25 ms, to a child client whose first handler call blocks its
 * JS thread for 800 ms; resolves with the child's report. */
async function stalledChild (N, env) {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const child = runChild({ JS_READ_CHILD_STALL: String(srv.port), JS_READ_CHILD_COUNT: String(N), ...env })
  await until(() => srv.connected(), 5000, 'the child to connect')
  await delay(200)
  for (let i = 0; i < N; i++) {
    await srv.write(frame(i) + '\n')
    await delay(25)
  }
  return child
}

test('a JS thread stalled in a handler past the idle timeout does not make the client time out', async () => {
  const N = 60
  const result = await stalledChild(N, { JS_READ_CHILD_IDLE: '500' })
  expect(result.events).toEqual([])
  expect(result.seen).toEqual(Array.from({ length: N }, (_, i) => i))
})

test('while the JS thread is stalled in a handler, the tokio reader keeps reading the socket', async () => {
  const N = 60
  const result = await stalledChild(N, {})
  expect(result.seen).toEqual(Array.from({ length: N }, (_, i) => i))
  // About 32 frames arrive during the 800 ms stall; the JS thread could route none of them.
  if (process.platform !== 'win32') expect(result.jsThreadFrames).toBeLessThanOrEqual(N - 10)
})

test('a worker thread whose client is being watched can be terminated while connected', async () => {
  const { Worker } = require('node:worker_threads')
  const srv = await fakeServer()
  onCleanup(srv.close)
  const root = path.join(__dirname, '..')
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { Client } = require(${JSON.stringify(root)})
    const { PARTIES } = require(${JSON.stringify(path.join(__dirname, 'helpers', 'server'))})
    const c = new Client()
    let n = 0
    c.handle('chat.x', () => { parentPort.postMessage({ n: ++n, jsThreadFrames: c._native.jsThreadFrames() }) })
    const p = PARTIES.alpha
    c.connect({ host: '127.0.0.1', port: workerData, publicKey: p.publicKey, privateKey: p.privateKey, authKey: p.authKey })
  `
  const worker = new Worker(code, { eval: true, workerData: srv.port })
  onCleanup(() => worker.terminate())
  let last = { n: 0, jsThreadFrames: 0 }
  worker.on('message', (m) => { last = m })
  worker.on('error', () => {})
  await until(() => srv.connected(), 5000, 'the worker to connect')
  // Frames one by one until the worker's JS thread has read some itself (its watcher is live).
  for (let i = 0; i < 200 && !(last.jsThreadFrames > 0); i++) {
    await srv.write(frame(i) + '\n')
    await delay(10)
  }
  if (process.platform !== 'win32') expect(last.jsThreadFrames).toBeGreaterThan(0)
  // Frames keep coming while the worker goes away: its watcher is closed by the env cleanup
  // hook, not left in a loop that is being closed (which aborts the process).
  const writing = setInterval(() => { srv.write(frame(9) + '\n') }, 2)
  onCleanup(() => clearInterval(writing))
  await delay(20)
  expect(await worker.terminate()).toBe(1)
})

test('once a handler calls close(), no later frame of the stream reaches a handler', async () => {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const seen = []
  let closing = null
  const c = await readyAlpha(srv.port, {}, (c) => c.handle('chat.x', (body) => {
    seen.push(body.n)
    if (body.n === 5) closing = c.close()
  }))
  onCleanup(() => c.close())
  let text = ''
  for (let i = 0; i < 200; i++) text += frame(i) + '\n'
  await srv.write(text)
  await until(() => closing !== null, 5000, 'the handler to close the client')
  await closing
  expect(seen).toEqual([0, 1, 2, 3, 4, 5])
})

test('a ready event queued before close() does not bring a closing client back to ready', async () => {
  const srv = await fakeServer()
  onCleanup(srv.close)
  const c = await readyAlpha(srv.port)
  const readies = []
  c.on('ready', () => readies.push(1))
  const closed = c.close()
  // What a batch holding [connected, ready, ...] delivers after a close() made by an earlier
  // listener of the same batch.
  c._event('ready', { channel: 'alpha', groups: ['g1'] })
  expect(readies).toEqual([])
  expect(c.ready).toBe(false)
  await closed
})
