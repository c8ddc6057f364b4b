// A project is a folder: project.sqlite plus artifacts/. Paths inside it are stored relative to it, so the
// folder can be moved or copied (store/paths.ts).
import { DynamicsRepository } from './store/dynamics'
import { GeometryRepository } from './store/geometry'
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import type { ProjectInfo } from '../shared/api'
import { UserError } from '../shared/api'
import { VERSION } from './version'
import { ActivationStoreRepository } from './store/activations'
import { SaeRepository } from './store/saes'
import { SaeEvaluationRepository } from './store/evaluations'
import { FeatureRepository } from './store/features'
import { LabelRepository } from './store/labels'
import { TaxonomyRepository } from './store/taxonomy'
import { CheckpointRepository } from './store/checkpoints'
import { openDatabase, type Db } from './store/database'
import { JobRepository } from './store/jobs'
import { SCHEMA_VERSION } from './store/migrations'
import { ProjectPaths } from './store/paths'
import { convertLegacyPaths } from './store/legacy-paths'
import { missingInputs } from './relocate'

export const DB_FILE = 'project.sqlite'
export const ARTIFACTS_DIR = 'artifacts'
/** A file that opens its folder in FeatureTrace when double-clicked (the desktop package associates .ftproj). */
export const MARKER_FILE = 'project.ftproj'

export class Project {
  /** Converts paths between their stored form and absolute ones under this folder. */
  readonly paths: ProjectPaths
  readonly checkpoints: CheckpointRepository
  readonly jobs: JobRepository
  readonly activations: ActivationStoreRepository
  readonly saes: SaeRepository
  readonly evaluations: SaeEvaluationRepository
  readonly features: FeatureRepository
  readonly labels: LabelRepository
  readonly taxonomy: TaxonomyRepository
  readonly dynamics: DynamicsRepository
  readonly geometry: GeometryRepository

  private constructor(
    readonly path: string,
    readonly db: Db
  ) {
    this.paths = new ProjectPaths(path)
    this.checkpoints = new CheckpointRepository(db, this.paths)
    this.jobs = new JobRepository(db, this.paths)
    this.activations = new ActivationStoreRepository(db, this.paths)
    this.saes = new SaeRepository(db, this.paths)
    this.evaluations = new SaeEvaluationRepository(db, this.paths)
    this.taxonomy = new TaxonomyRepository(db)
    this.labels = new LabelRepository(db, this.taxonomy)
    this.features = new FeatureRepository(db, this.labels)
    this.dynamics = new DynamicsRepository(db)
    this.geometry = new GeometryRepository(db, this.paths)
  }

  /** Opens the project in `dir`, creating it when the folder is missing or empty. */
  static open(dir: string): Project {
    const path = resolve(dir)
    const dbFile = join(path, DB_FILE)
    if (existsSync(path)) {
      if (!statSync(path).isDirectory()) throw new UserError(`${path} is a file; a project is a folder.`)
      if (!existsSync(dbFile) && readdirSync(path).length > 0) {
        throw new UserError(
          `${path} is not empty and holds no ${DB_FILE}, so it is not a FeatureTrace project. ` +
            'Choose an empty or new folder to create a project, or the folder of an existing one.'
        )
      }
    } else {
      try {
        mkdirSync(path, { recursive: true })
      } catch (err) {
        throw new UserError(`Cannot create the project folder ${path}: ${(err as Error).message}`)
      }
    }
    const db = openDatabase(dbFile)
    const project = new Project(path, db)
    try {
      mkdirSync(join(path, ARTIFACTS_DIR), { recursive: true })
      db.prepare('INSERT OR IGNORE INTO project (id, name, created_at, created_by_version) VALUES (1, ?, ?, ?)').run(
        basename(path),
        new Date().toISOString(),
        VERSION
      )
      convertPendingPaths(db, path)
    } catch (err) {
      db.close()
      throw err
    }
    writeMarker(path)
    return project
  }

  get artifactsDir(): string {
    return join(this.path, ARTIFACTS_DIR)
  }

  info(): ProjectInfo {
    const row = this.db.prepare('SELECT name, created_at FROM project WHERE id = 1').get() as {
      name: string
      created_at: string
    }
    return {
      path: this.path,
      name: row.name,
      createdAt: row.created_at,
      schemaVersion: SCHEMA_VERSION,
      checkpointCount: this.checkpoints.count(),
      missing: missingInputs(this)
    }
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

/** Puts the double-clickable marker in a project folder that lacks one; a folder we may not write to goes without. */
function writeMarker(path: string): void {
  const file = join(path, MARKER_FILE)
  if (existsSync(file)) return
  const marker = {
    featuretrace: 'project',
    note: 'Open this file with FeatureTrace to open the project in this folder. The project is the folder (project.sqlite and artifacts/); this file holds nothing else.'
  }
  try {
    writeFileSync(file, `${JSON.stringify(marker, null, 2)}\n`, { flag: 'wx' })
  } catch {
    // Read-only media or a marker written meanwhile: the project opens all the same.
  }
}

/** Once per database (migration 10 marks it): absolute paths of the project's own files become relative. */
function convertPendingPaths(db: Db, path: string): void {
  if (!db.prepare('SELECT 1 FROM path_conversion_pending').get()) return
  try {
    db.transaction(() => {
      convertLegacyPaths(db, path)
      db.prepare('DELETE FROM path_conversion_pending').run()
    })()
  } catch (err) {
    throw new UserError(
      `Storing the paths in ${join(path, DB_FILE)} relative to its folder failed (${(err as Error).message}); its paths were left as they were. ` +
        'Keep a copy of the file and report this with it.'
    )
  }
}
