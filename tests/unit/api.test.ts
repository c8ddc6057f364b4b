import { describe, expect, it } from 'vitest'
import { dispatch, createHandlers, Workspace } from '../../src/core/services'
import { apiCalls } from '../../src/shared/api'

const ws = new Workspace('cli', () => {
  throw new Error('no workers in unit tests')
})
const handlers = createHandlers(ws)

describe('dispatch validates every call before it runs', () => {
  it('rejects unknown calls and prototype keys', async () => {
    for (const name of ['nope', '__proto__', 'constructor', 42, null]) {
      const r = await dispatch(handlers, name, {})
      expect(r).toMatchObject({ ok: false, error: { code: 'bad-request' } })
    }
  })

  it('rejects payloads of the wrong shape, naming the field', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['checkpoints.get', { id: 'one' }, /id/],
      ['checkpoints.get', { id: -1 }, /id/],
      ['checkpoints.get', { id: 1, extra: true }, /extra|Unrecognized/i],
      ['project.open', { path: '' }, /path/],
      ['project.open', 'path', /payload|expected object/i],
      ['jobs.start', { kind: 'rm-rf' }, /kind/],
      ['checkpoints.register', { folder: '/x', tokensPerStep: 0 }, /tokensPerStep/],
      ['app.info', { anything: 1 }, /anything|Unrecognized/i]
    ]
    for (const [name, payload, message] of cases) {
      const r = await dispatch(handlers, name, payload)
      expect(r.ok, `${name} ${JSON.stringify(payload)}`).toBe(false)
      if (!r.ok) {
        expect(r.error.code).toBe('bad-request')
        expect(r.error.message).toMatch(message)
      }
    }
  })

  it('answers with a user error, not a crash, when no project is open', async () => {
    const r = await dispatch(handlers, 'checkpoints.list', undefined)
    expect(r).toEqual({ ok: false, error: { code: 'no-project', message: expect.stringMatching(/No project is open/) } })
  })

  it('has a handler for every call of the contract', () => {
    expect(Object.keys(handlers).sort()).toEqual(Object.keys(apiCalls).sort())
  })
})
