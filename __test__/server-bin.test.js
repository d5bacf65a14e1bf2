'use strict'

const { freePort } = require('./helpers/net')

// The ricochet-server bin, spawned as a user would run it.
const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { Client } = require('..')
const { clearTimers, until, within, nextEvent } = require('./helpers/waiting')

const BIN = path.join(__dirname, '..', 'bin', 'ricochet-server.js')


function start (args) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const entry = { child, out: '', err: '', code: null }
  child.stdout.on('data', (d) => { entry.out += d })
  child.stderr.on('data', (d) => { entry.err += d })
  entry.exit = new Promise((resolve) => child.on('exit', (code) => { entry.code = code; resolve(code) }))
  return entry
}

describe('ricochet-server bin', () => {
  let dir
  const procs = []
  const clients = []
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ricochet-bin-')) })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    for (const p of procs.splice(0)) {
      if (p.code === null) p.child.kill('SIGKILL')
      await p.exit
    }
    clearTimers()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  function writeConfig (port, keys, extra = {}) {
    fs.writeFileSync(path.join(dir, 'keys.json'), JSON.stringify(keys))
    const file = path.join(dir, 'ricochet.json')
    fs.writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port }, keys: 'keys.json', ...extra }))
    return file
  }

  const KEYS = {
    'pub-a': { privateKey: 'priv-a', channel: 'a', groups: ['g'], authKey: 'auth-a' },
    'pub-b': { privateKey: 'priv-b', channel: 'b', groups: ['g'] }
  }

  function connect (port, pub, authKey) {
    const c = new Client({ timeouts: { reconnect: 50, reconnectMax: 200 } })
    clients.push(c)
    c.connect({ port, publicKey: pub, privateKey: `priv-${pub.slice(4)}`, authKey })
    return c
  }

  test('--help prints usage and exits 0', async () => {
    const p = start(['--help'])
    procs.push(p)
    expect(await p.exit).toBe(0)
    expect(p.out).toMatch(/Usage: ricochet-server --config/)
    expect(p.out).toMatch(/SIGHUP/)
  })

  test('a missing --config or a bad keys file exits 2 with a clear message', async () => {
    const p = start([])
    procs.push(p)
    expect(await p.exit).toBe(2)
    expect(p.err).toMatch(/--config <file> is required/)
    const file = writeConfig(1, { 'pub-x': { channel: 'x' } })
    const q = start(['--config', file])
    procs.push(q)
    expect(await q.exit).toBe(2)
    expect(q.err).toMatch(/entry "pub-x" needs privateKey, channel and groups/)
  })

  test('serves clients from the keys file, reloads keys on SIGHUP without dropping clients, drains on SIGTERM', async () => {
    const port = await freePort()
    const file = writeConfig(port, KEYS)
    const p = start(['--config', file])
    procs.push(p)
    await until(() => /listening 127\.0\.0\.1:\d+ 2 keys/.test(p.out), 10000, 'listening line')

    const a = connect(port, 'pub-a', 'auth-a')
    const b = connect(port, 'pub-b', '')
    await within(Promise.all([nextEvent(a, 'ready'), nextEvent(b, 'ready')]), 5000, 'both ready')
    b.handle('echo', (body, reply) => reply.emit('response', null, body))
    await expect(a.requestAsync('b', 'echo', { n: 1 })).resolves.toEqual({ n: 1 })
    // The server logs from its own process; a round trip can beat that line to our pipe.
    await until(() => /ready \w{32}/.test(p.out), 5000, 'ready line')

    // A key added on disk logs in after SIGHUP; the connected clients stay.
    fs.writeFileSync(path.join(dir, 'keys.json'), JSON.stringify({ ...KEYS, 'pub-c': { privateKey: 'priv-c', channel: 'c', groups: ['g'] } }))
    p.child.kill('SIGHUP')
    await until(() => /reload 3 keys/.test(p.out), 5000, 'reload line')
    const c = connect(port, 'pub-c', '')
    await within(nextEvent(c, 'ready'), 5000, 'c ready')
    await expect(c.requestAsync('b', 'echo', { n: 2 })).resolves.toEqual({ n: 2 })
    expect(p.out).not.toMatch(/disconnect/)

    const closed = nextEvent(a, 'disconnected', 5000)
    p.child.kill('SIGTERM')
    expect(await p.exit).toBe(0)
    await closed
    expect(p.out).toMatch(/stop SIGTERM 3 clients/)
    expect(p.out).toMatch(/stopped/)
  }, 30000)

  test('an unknown key is refused and logged', async () => {
    const port = await freePort()
    const p = start(['--config', writeConfig(port, KEYS)])
    procs.push(p)
    await until(() => /listening/.test(p.out), 10000, 'listening line')
    const x = connect(port, 'pub-x', '')
    const [fail] = await within(nextEvent(x, 'authFail'), 5000, 'authFail')
    expect(fail.message).toMatchObject({ auth: false, code: 'ricochet.auth_failure' })
    await until(() => /auth-fail \w{32} ricochet\.auth_failure/.test(p.out), 5000, 'auth-fail line')
  })
})
