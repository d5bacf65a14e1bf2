'use strict'

// ricochetd, the native daemon, serving real Node clients over TCP: the same config and keys
// files as the ricochet-server bin (server-bin.test.js), answered by the Rust core alone.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Client } = require('..')
const { clearTimers, until, within, nextEvent } = require('./helpers/waiting')
const { assertBuilt, spawnDaemon, listeningPort } = require('./helpers/ricochetd')

const KEYS = {
  'pub-a': { privateKey: 'priv-a', channel: 'a', groups: ['g'], authKey: 'auth-a' },
  'pub-b': { privateKey: 'priv-b', channel: 'b', groups: ['g'] },
  'pub-o': { privateKey: 'priv-o', channel: 'o', groups: ['other'] }
}

describe('ricochetd', () => {
  let dir
  const procs = []
  const clients = []
  beforeAll(() => assertBuilt())
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ricochetd-')) })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
    for (const p of procs.splice(0)) {
      if (p.code === null && p.signal == null) p.child.kill('SIGKILL')
      await p.exit
    }
    clearTimers()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  /** Writes keys.json and ricochet.json (listening on port 0) into the test's directory. */
  function writeConfig (keys = KEYS, extra = {}) {
    fs.writeFileSync(path.join(dir, 'keys.json'), JSON.stringify(keys))
    const file = path.join(dir, 'ricochet.json')
    fs.writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, keys: 'keys.json', ...extra }))
    return file
  }

  function run (args) {
    const p = spawnDaemon(args)
    procs.push(p)
    return p
  }

  /** Starts ricochetd on a free port; resolves with {p, port}. */
  async function startDaemon (keys, extra) {
    const p = run(['--config', writeConfig(keys, extra)])
    return { p, port: await listeningPort(p) }
  }

  function connect (port, pub, authKey) {
    const c = new Client({ timeouts: { reconnect: 50, reconnectMax: 200 } })
    clients.push(c)
    c.on('error', () => {})
    c.connect({ port, publicKey: pub, privateKey: `priv-${pub.slice(4)}`, authKey })
    return c
  }

  /** Connects one client per [publicKey, authKey] and resolves with them once all are ready. */
  async function ready (port, ...logins) {
    const list = logins.map(([pub, authKey]) => connect(port, pub, authKey || ''))
    await within(Promise.all(list.map((c) => nextEvent(c, 'ready'))), 5000, 'clients ready')
    return list
  }

  test('--help prints usage and exits 0', async () => {
    const p = run(['--help'])
    expect(await p.exit).toBe(0)
    expect(p.out).toMatch(/Usage: ricochetd --config <file.json>/)
    expect(p.out).toMatch(/SIGHUP/)
  })

  test('two Node clients exchange an encrypted message and an encrypted request/response', async () => {
    const { p, port } = await startDaemon()
    expect(p.out).toMatch(new RegExp(`listening 127\\.0\\.0\\.1:${port} 3 keys`))
    const [a, b] = await ready(port, ['pub-a', 'auth-a'], ['pub-b'])
    // Log lines travel through a pipe: they may land after the clients' own events.
    await until(() => (p.out.match(/ ready \w{32}\n/g) || []).length === 2, 5000, 'two ready lines')
    expect(p.out.match(/ connect \w{32} 127\.0\.0\.1\n/g)).toHaveLength(2)

    const got = []
    b.handle('note', (body, msg) => got.push([body, msg.headers.encrypted, msg.headers.from]))
    b.handle('math.add', (body, reply) => reply.emit('response', null, { sum: body.x + body.y }))
    a.message('b', 'note', { text: 'hi', n: [1, 2] })
    await until(() => got.length === 1, 5000, 'the message')
    expect(got[0]).toEqual([{ text: 'hi', n: [1, 2] }, true, 'a'])
    await expect(a.requestAsync('b', 'math.add', { x: 2, y: 3 })).resolves.toEqual({ sum: 5 })
  })

  test('an insecure() message arrives as plaintext (encrypted: false)', async () => {
    const { port } = await startDaemon()
    const [a, b] = await ready(port, ['pub-a', 'auth-a'], ['pub-b'])
    const got = []
    b.handle('plain', (body, msg) => got.push([body, msg.headers.encrypted]))
    a.insecure().message('b', 'plain', { visible: true })
    await until(() => got.length === 1, 5000, 'the plaintext message')
    expect(got[0]).toEqual([{ visible: true }, false])
  })

  test('an unknown publicKey gets authFail ricochet.auth_failure, logged as auth-fail', async () => {
    const { p, port } = await startDaemon()
    const x = connect(port, 'pub-x', '')
    const [fail] = await within(nextEvent(x, 'authFail'), 5000, 'authFail')
    expect(fail.message).toMatchObject({ auth: false, code: 'ricochet.auth_failure' })
    await until(() => /auth-fail \w{32} ricochet\.auth_failure/.test(p.out), 5000, 'the auth-fail line')
  })

  test('a wrong authKey is refused: the keys file authKey is checked', async () => {
    const { port } = await startDaemon()
    const a = connect(port, 'pub-a', 'not-auth-a')
    const [fail] = await within(nextEvent(a, 'authFail'), 5000, 'authFail')
    expect(fail.message).toMatchObject({ auth: false, code: 'ricochet.auth_authkey' })
  })

  test('groups are enforced: a request to a client of another group fails with ricochet.message_group', async () => {
    const { p, port } = await startDaemon()
    const [a, o] = await ready(port, ['pub-a', 'auth-a'], ['pub-o'])
    const calls = []
    o.handle('x', (body, reply) => { calls.push(body); reply.emit('response', null, {}) })
    await expect(a.requestAsync('o', 'x', {})).rejects.toMatchObject({ code: 'ricochet.message_group' })
    expect(calls).toHaveLength(0)
    await until(() => /route-fail \w{32} ricochet\.message_group/.test(p.out), 5000, 'the route-fail line')
  })

  test('SIGHUP reloads the keys file: a new key logs in, connected clients stay, a bad file keeps the old keys', async () => {
    const { p, port } = await startDaemon()
    const [a, b] = await ready(port, ['pub-a', 'auth-a'], ['pub-b'])
    b.handle('echo', (body, reply) => reply.emit('response', null, body))

    fs.writeFileSync(path.join(dir, 'keys.json'), JSON.stringify({ ...KEYS, 'pub-c': { privateKey: 'priv-c', channel: 'c', groups: ['g'] } }))
    p.child.kill('SIGHUP')
    await until(() => /reload 4 keys from \S+keys\.json/.test(p.out), 5000, 'the reload line')
    const [c] = await ready(port, ['pub-c'])
    await expect(c.requestAsync('b', 'echo', { n: 1 })).resolves.toEqual({ n: 1 })
    await expect(a.requestAsync('b', 'echo', { n: 2 })).resolves.toEqual({ n: 2 })

    fs.writeFileSync(path.join(dir, 'keys.json'), '{"pub-d": {"channel": "d"}}')
    p.child.kill('SIGHUP')
    await until(() => /reload-failed .*entry "pub-d" needs privateKey.*keeping the previous keys/.test(p.out), 5000, 'the reload-failed line')
    // pub-o is only in the previous keys: it still logs in.
    await ready(port, ['pub-o'])
    expect(p.out).not.toMatch(/disconnect/)
    expect(p.code).toBe(null)
  })

  test('a bad config, keys file or option exits 2 with the reason on stderr', async () => {
    /** A config (and keys file unless `keys` is null) in its own directory. */
    const config = (name, keys, extra = {}) => {
      const d = path.join(dir, name)
      fs.mkdirSync(d)
      if (keys) fs.writeFileSync(path.join(d, 'keys.json'), JSON.stringify(keys))
      const file = path.join(d, 'ricochet.json')
      fs.writeFileSync(file, JSON.stringify({ listen: { port: 0 }, keys: 'keys.json', ...extra }))
      return ['--config', file]
    }
    const cases = [
      [[], /--config <file> is required/],
      [['--config', path.join(dir, 'nope.json')], /cannot read config .*nope\.json/],
      [config('no-keys', null), /cannot read keys file .*no-keys\/keys\.json/],
      [config('bad-entry', { 'pub-x': { channel: 'x' } }), /entry "pub-x" needs privateKey, channel and groups/],
      [config('zero', KEYS, { server: { maxConnections: 0 } }), /invalid "server" options: option "maxConnections" must be an integer >= 1, got 0/],
      [config('type', KEYS, { server: { timeouts: { auth: 'soon' } } }), /option "timeouts\.auth" must be a number, got string/],
      [config('typo', KEYS, { server: { maxConection: 5 } }), /unknown option "maxConection"/],
      [config('cipher', KEYS, { server: { encryption: 'rot13' } }), /unknown encryption "rot13"/],
      [config('port', KEYS, { listen: { port: 70000 } }), /"listen\.port" must be an integer 0-65535/]
    ]
    const runs = cases.map(([args]) => run(args))
    await within(Promise.all(runs.map((p) => p.exit)), 10000, 'every bad start exits')
    runs.forEach((p, i) => {
      expect({ i, code: p.code, out: p.out }).toEqual({ i, code: 2, out: '' })
      expect(p.err).toMatch(/^ricochetd: /)
      expect(p.err).toMatch(cases[i][1])
    })
  })

  test('SIGTERM disconnects every client and exits 0', async () => {
    const { p, port } = await startDaemon()
    const [a, b] = await ready(port, ['pub-a', 'auth-a'], ['pub-b'])
    const gone = Promise.all([nextEvent(a, 'disconnected', 5000), nextEvent(b, 'disconnected', 5000)])
    p.child.kill('SIGTERM')
    expect(await within(p.exit, 5000, 'exit after SIGTERM')).toBe(0)
    await gone
    expect(p.out).toMatch(/stop SIGTERM 2 clients/)
    expect(p.out.match(/ disconnect \w{32}/g)).toHaveLength(2)
    expect(p.out).toMatch(/stopped\n$/)
  })
})
