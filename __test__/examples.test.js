'use strict'

// Every example runs to completion and prints what it is meant to show.
const path = require('node:path')
const { execFile } = require('node:child_process')

const ROOT = path.join(__dirname, '..')

function run (cmd, args, env) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 60000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr })
    })
  })
}

describe('examples', () => {
  test('demo.js: two clients exchange encrypted requests with progress updates and report throughput', async () => {
    const { code, stdout, stderr } = await run(process.execPath, ['examples/demo.js'])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toMatch(/\[api\]\s+progress 5\/10/)
    expect(stdout).toMatch(/\[api\]\s+progress 10\/10/)
    expect(stdout).toMatch(/\[api\]\s+response \{"total":55\}/)
    expect(stdout).toMatch(/ricochet\.message_norecipient/)
    expect(stdout).toMatch(/throughput: 20000 encrypted round trips in [\d.]+ s = \d+ req\/s/)
  }, 60000)

  test('wildcards.js: files.* and audit.** handles serve every matching handle', async () => {
    const { code, stdout } = await run(process.execPath, ['examples/wildcards.js'])
    expect(code).toBe(0)
    expect(stdout).toContain('[web] files.list -> ["a.txt","b.txt"]')
    expect(stdout).toContain('[web] files.read -> "world"')
    expect(stdout).toContain('[web] nothing.here failed: ricochet.message_nothandled')
    expect(stdout).toContain('[store] audit audit.files.read {"name":"b.txt"}')
    expect(stdout).toMatch(/done\n$/)
  }, 60000)

  test('DEBUG=ricochet:* traces connections, auth decisions and routing failures on stderr, from JS and from the Rust core', async () => {
    const { code, stderr } = await run(process.execPath, ['examples/demo.js'], { DEBUG: 'ricochet:*', DEBUG_COLORS: '0' })
    expect(code).toBe(0)
    expect(stderr).toMatch(/ricochet:server connected \w{32} from 127\.0\.0\.1/)
    expect(stderr).toMatch(/ricochet:server authenticated \w{32}/)
    expect(stderr).toMatch(/ricochet:client ready as worker/)
    expect(stderr).toMatch(/ricochet:server routing failed from \w{32}: ricochet\.message_norecipient/)
    // The same decisions traced by the Rust core itself.
    expect(stderr).toMatch(/ricochet:core connection \w{32} from 127\.0\.0\.1/)
    expect(stderr).toMatch(/ricochet:core auth ok \w{32} as channel worker/)
    expect(stderr).toMatch(/ricochet:core route failed from \w{32} \(api\) to "nobody": ricochet\.message_norecipient/)
    const quiet = await run(process.execPath, ['examples/wildcards.js'], { DEBUG: '' })
    expect(quiet.stderr).toBe('')
  }, 60000)

  test('typescript.ts: type-checks under --strict and runs', async () => {
    const tsc = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'examples/tsconfig.json'])
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.code).toBe(0)
    const { code, stdout } = await run(process.execPath, ['examples/.build/typescript.js'])
    expect(code).toBe(0)
    expect(stdout).toContain('[api] total 10')
    expect(stdout).toContain('[api] failed as expected: ricochet.message_norecipient')
  }, 60000)
})
