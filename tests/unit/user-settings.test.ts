// Recent projects and the one reopened on the next start, in the user's settings file.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Project } from '../../src/core/project'
import { defaultSettingsFile, RECENT_LIMIT, UserSettings } from '../../src/core/user-settings'
import { tempDir } from '../helpers'

const t = tempDir('ft-settings-')
afterAll(() => t.cleanup())
const project = (name: string): string => {
  const dir = join(t.dir, name)
  Project.open(dir).close()
  return dir
}

describe('UserSettings', () => {
  it('starts empty, and reads a damaged file as a first start', () => {
    const s = new UserSettings(join(t.dir, 'a', 'settings.json'))
    expect(s.recent()).toEqual([])
    expect(s.lastProject()).toBeNull()
    mkdirSync(join(t.dir, 'b'))
    writeFileSync(join(t.dir, 'b', 'settings.json'), '{not json')
    expect(new UserSettings(join(t.dir, 'b', 'settings.json')).recent()).toEqual([])
  })

  it('lists projects most recent first, once each, and reopens the last', () => {
    const s = new UserSettings(join(t.dir, 'c', 'settings.json'))
    const [one, two] = [project('one'), project('two')]
    s.remember(one, 'one')
    s.remember(two, 'two')
    s.remember(one, 'one')
    expect(s.recent().map((r) => r.name)).toEqual(['one', 'two'])
    expect(s.recent().every((r) => r.exists)).toBe(true)
    expect(s.lastProject()).toBe(one)
  })

  it('keeps a moved project listed as missing until forgotten, and never reopens it', () => {
    const s = new UserSettings(join(t.dir, 'd', 'settings.json'))
    s.remember(join(t.dir, 'never-made'), 'ghost')
    expect(s.recent()).toMatchObject([{ name: 'ghost', exists: false }])
    expect(s.lastProject()).toBeNull()
    expect(s.forget(join(t.dir, 'never-made'))).toEqual([])
    expect(JSON.parse(readFileSync(s.file, 'utf8'))).toEqual({ lastProject: null, recent: [] })
  })

  it(`keeps at most ${RECENT_LIMIT}`, () => {
    const s = new UserSettings(join(t.dir, 'e', 'settings.json'))
    for (let i = 0; i < RECENT_LIMIT + 3; i++) s.remember(join(t.dir, `p${i}`), `p${i}`)
    expect(s.recent()).toHaveLength(RECENT_LIMIT)
    expect(s.recent()[0]!.name).toBe(`p${RECENT_LIMIT + 2}`)
  })

  it("reads the desktop app's earlier file, which held only the last project", () => {
    const dir = project('earlier')
    mkdirSync(join(t.dir, 'f'))
    writeFileSync(join(t.dir, 'f', 'settings.json'), JSON.stringify({ lastProject: dir }))
    expect(new UserSettings(join(t.dir, 'f', 'settings.json')).lastProject()).toBe(dir)
  })

  it('lives in FEATURETRACE_CONFIG_DIR, else the XDG config folder, in browser mode', () => {
    expect(defaultSettingsFile({ FEATURETRACE_CONFIG_DIR: '/c' })).toBe('/c/settings.json')
    expect(defaultSettingsFile({ XDG_CONFIG_HOME: '/x' })).toBe('/x/featuretrace/settings.json')
  })
})
