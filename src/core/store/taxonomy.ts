// The project's label categories, in key order (1–9 pick them).
import { UserError } from '../../shared/api'
import type { Db } from './database'

export class TaxonomyRepository {
  constructor(private readonly db: Db) {}

  names(): string[] {
    return (this.db.prepare('SELECT name FROM taxonomy ORDER BY position').all() as { name: string }[]).map((r) => r.name)
  }

  set(names: string[]): string[] {
    if (new Set(names).size !== names.length || names.some((n) => !n.trim())) throw new UserError('Category names must be distinct and not empty.')
    if (names.length > 9) throw new UserError('At most 9 categories: keys 1–9 pick them.')
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM taxonomy').run()
      const ins = this.db.prepare('INSERT INTO taxonomy (position, name) VALUES (?, ?)')
      names.forEach((n, i) => ins.run(i + 1, n.trim()))
    })()
    return this.names()
  }
}
