'use strict'

// `npm pack` gives a tarball that installs into an empty project and works from CommonJS and
// ESM, the way a user would consume it.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFile } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function run (cmd, args, cwd) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr })
    })
  })
}

describe('packaging', () => {
  let dir
  afterAll(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }) })

  test('the packed tarball installs into an empty project and works with require and import', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ricochet-pack-'))
    const pack = await run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT)
    expect(pack.code).toBe(0)
    const [info] = JSON.parse(pack.stdout)
    const files = info.files.map((f) => f.path)
    expect(files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'binding.js', 'lib/client.js', 'lib/server.js']))
    expect(files.some((f) => f.endsWith('.node'))).toBe(true)
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('__test__/'))).toBe(false)

    const app = path.join(dir, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    const install = await run(NPM, ['install', '--no-audit', '--no-fund', path.join(dir, info.filename)], app)
    expect(install.stderr).not.toMatch(/ERR!/)
    expect(install.code).toBe(0)

    fs.writeFileSync(path.join(app, 'cjs.js'), `
      const { Server, Client, errorCodes, RicochetError } = require('ricochet')
      const server = new Server()
      server.authCallback = async () => ({ channel: 'a', privateKey: 'k', groups: true })
      server.listen(0, '127.0.0.1', () => {
        const c = new Client()
        c.once('ready', async ({ channel }) => {
          console.log('ready', channel, typeof Client, errorCodes.message_timeout, new RicochetError('client_auth') instanceof Error)
          await c.close(); await server.close()
        })
        c.connect({ port: server.address().port, publicKey: 'p', privateKey: 'k' })
      })`)
    const cjs = await run(process.execPath, ['cjs.js'], app)
    expect(cjs.stderr).toBe('')
    expect(cjs.stdout.trim()).toBe('ready a function Request timed out. true')

    fs.writeFileSync(path.join(app, 'esm.mjs'), `
      import { Server, Client } from 'ricochet'
      import ricochet from 'ricochet'
      console.log(typeof Server, typeof Client, ricochet.Server === Server)`)
    const esm = await run(process.execPath, ['esm.mjs'], app)
    expect(esm.stderr).toBe('')
    expect(esm.stdout.trim()).toBe('function function true')
  }, 180000)
})
