// Type-checked by `tsc --strict --noEmit` in `npm test`: the public typings accept real usage.
import { Server, Client, errorCodes, RicochetError, ErrorCode, AuthData, Frame } from '..'

const server = new Server({ timeouts: { auth: 1000 } })
server.authCallback = async (data: AuthData) => ({ channel: String(data.publicKey), privateKey: 'k', groups: ['g1'] })
server.on('clientReady', ({ id }) => id.toUpperCase())
server.on('messageError', (e) => { const c: ErrorCode = e.code; return c })
server.listen(0, '127.0.0.1', () => server.address()?.port)

const client = new Client()
client.connect({ port: 1, publicKey: 'p', privateKey: 'k' })
client.on('ready', ({ channel, groups }) => [channel, groups])
client.handle<{ a: number }>('math.*', (body, reply) => reply.emit('response', null, body.a))
client.handle<string>('chat.*', (body, msg: Frame<string>) => body.length + msg.headers.from.length)
const req = client.timeout(100).request<{ total: number }>('worker', 'math.sum', { a: 1 })
req.on('success', (data) => data.total.toFixed())
req.on('timeout', ({ local }) => local)
client.requestAsync<number>('w', 'h', {}, { timeout: 5 }).then((n) => n.toFixed(), (e: RicochetError) => e.code)
const text: string = errorCodes.message_timeout
export { text }

// Wrong payload types must not compile (tsc fails on an unused @ts-expect-error).
// @ts-expect-error clientReady carries {id: string}
server.on('clientReady', (p: { id: number }) => p)
// @ts-expect-error ready carries {channel, groups}, not a string
client.on('ready', (p: string) => p)
// @ts-expect-error disconnected carries a boolean
client.on('disconnected', (hadError: string) => hadError)
// @ts-expect-error not an event of Client
client.on('clientReady', () => {})
// @ts-expect-error codes are a closed union
const bad: ErrorCode = 'ricochet.nope'
// @ts-expect-error groups must be true or a list
server.authCallback = async () => ({ channel: 'c', privateKey: 'k', groups: 'g1' })
export { bad }
