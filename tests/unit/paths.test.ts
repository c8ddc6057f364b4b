// The stored form of paths: relative (POSIX) inside the project folder, absolute outside, text and JSON
// with the folder's name made relative, a sibling folder with a longer name left alone.
import { describe, expect, it } from 'vitest'
import { mapRequestPaths, ProjectPaths, relativiseText } from '../../src/core/store/paths'

const p = new ProjectPaths('/data/proj')

describe('ProjectPaths', () => {
  it('stores paths inside the folder relative and outside ones absolute, and resolves both back', () => {
    expect(p.toStored('/data/proj/artifacts/saes/step0/layer2')).toBe('artifacts/saes/step0/layer2')
    expect(p.toStored('/data/proj')).toBe('.')
    expect(p.toStored('/data/proj2/x')).toBe('/data/proj2/x')
    expect(p.toStored('/data/ckpts/step0')).toBe('/data/ckpts/step0')
    expect(p.toStored('/data/proj/../ckpts')).toBe('/data/ckpts')
    expect(p.toStored('/data/proj/..x/y')).toBe('..x/y')
    expect(p.resolve('artifacts/saes/step0/layer2')).toBe('/data/proj/artifacts/saes/step0/layer2')
    expect(p.resolve('/data/ckpts/step0')).toBe('/data/ckpts/step0')
    expect(new ProjectPaths('/elsewhere/copy').resolve(p.toStored('/data/proj/artifacts/a'))).toBe('/elsewhere/copy/artifacts/a')
  })

  it('makes the folder relative in free text and JSON, not a sibling whose name starts the same', () => {
    expect(relativiseText('Missing /data/proj/artifacts/x and /data/proj2/y in /data/proj', '/data/proj')).toBe('Missing artifacts/x and /data/proj2/y in .')
    expect(relativiseText('/data/proj-old/a /data/proj.bak', '/data/proj')).toBe('/data/proj-old/a /data/proj.bak')
    expect(relativiseText('Cannot write in /data/proj.', '/data/proj')).toBe('Cannot write in ..')
    const json = p.storedJson({ corpus: '/data/proj/corpus.jsonl', note: 'from /data/proj', other: '/data/proj2/c', n: [1, 2] })
    expect(JSON.parse(json)).toEqual({ corpus: 'corpus.jsonl', note: 'from .', other: '/data/proj2/c', n: [1, 2] })
    expect(p.storedText(null)).toBeNull()
  })

  it('maps the file fields of job requests and geometry parameters', () => {
    const stored = mapRequestPaths({ kind: 'harvest', corpus: '/data/proj/c.jsonl', layer: 2 }, (x) => p.toStored(x))
    expect(stored).toEqual({ kind: 'harvest', corpus: 'c.jsonl', layer: 2 })
    const geo = mapRequestPaths({ crystals: { pairs: ['pairs/a.tsv', '/abs/b.tsv'], prefix: 'x' } }, (x) => p.resolve(x))
    expect(geo).toEqual({ crystals: { pairs: ['/data/proj/pairs/a.tsv', '/abs/b.tsv'], prefix: 'x' } })
    expect(mapRequestPaths(null, (x) => x)).toBeNull()
  })
})
