// Ordered schema migrations. Never edit one that has shipped: append a new one.
export interface Migration {
  version: number
  name: string
  sql: string
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'project, checkpoint, job',
    sql: `
      CREATE TABLE project (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by_version TEXT NOT NULL
      );
      CREATE TABLE checkpoint (
        id INTEGER PRIMARY KEY,
        step INTEGER NOT NULL UNIQUE CHECK (step >= 0),
        name TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        model_type TEXT NOT NULL,
        supported INTEGER NOT NULL CHECK (supported IN (0, 1)),
        d_model INTEGER NOT NULL CHECK (d_model > 0),
        layers INTEGER NOT NULL CHECK (layers > 0),
        heads INTEGER,
        vocab_size INTEGER,
        tokens_seen REAL,
        weights_bytes INTEGER,
        config_json TEXT NOT NULL,
        verify_status TEXT NOT NULL DEFAULT 'unverified'
          CHECK (verify_status IN ('unverified', 'ok', 'problems')),
        verify_report_json TEXT,
        registered_at TEXT NOT NULL
      );
      CREATE TABLE job (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        params_json TEXT NOT NULL,
        state TEXT NOT NULL
          CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
        fraction REAL NOT NULL DEFAULT 0,
        rate REAL,
        rate_unit TEXT,
        eta_seconds REAL,
        message TEXT,
        error TEXT,
        result_json TEXT,
        host_pid INTEGER,
        heartbeat_at TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
      );
      CREATE INDEX job_state ON job (state);
    `
  },
  {
    version: 2,
    name: 'activation stores',
    sql: `
      CREATE TABLE activation_store (
        id INTEGER PRIMARY KEY,
        checkpoint_id INTEGER NOT NULL REFERENCES checkpoint (id) ON DELETE CASCADE,
        layer INTEGER NOT NULL CHECK (layer >= 0),
        path TEXT NOT NULL,
        rows INTEGER NOT NULL CHECK (rows >= 0),
        d INTEGER NOT NULL,
        dtype TEXT NOT NULL CHECK (dtype IN ('f16', 'f32')),
        context INTEGER NOT NULL,
        corpus TEXT NOT NULL,
        imported INTEGER NOT NULL DEFAULT 0 CHECK (imported IN (0, 1)),
        created_at TEXT NOT NULL,
        UNIQUE (checkpoint_id, layer)
      );
    `
  },
  {
    version: 3,
    name: 'SAEs and their training metrics',
    sql: `
      CREATE TABLE sae (
        id INTEGER PRIMARY KEY,
        checkpoint_id INTEGER NOT NULL REFERENCES checkpoint (id) ON DELETE CASCADE,
        layer INTEGER NOT NULL,
        path TEXT NOT NULL,
        preset TEXT NOT NULL,
        d INTEGER NOT NULL,
        n INTEGER NOT NULL,
        k INTEGER NOT NULL,
        warm_started INTEGER NOT NULL CHECK (warm_started IN (0, 1)),
        tokens INTEGER NOT NULL,
        steps INTEGER NOT NULL,
        fvu REAL,
        explained_variance REAL,
        cosine REAL,
        l0 REAL,
        dead_fraction REAL,
        backend TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (checkpoint_id, layer)
      );
      CREATE TABLE sae_metric (
        checkpoint_id INTEGER NOT NULL REFERENCES checkpoint (id) ON DELETE CASCADE,
        layer INTEGER NOT NULL,
        step INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        loss REAL NOT NULL,
        aux_loss REAL NOT NULL,
        l0 REAL NOT NULL,
        dead_fraction REAL NOT NULL,
        lr REAL NOT NULL,
        tokens_per_second REAL,
        PRIMARY KEY (checkpoint_id, layer, step)
      );
    `
  },
  {
    version: 4,
    name: 'feature sets, features, taxonomy, labels with history',
    sql: `
      CREATE TABLE feature_set (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL CHECK (source IN ('sae', 'import')),
        sae_id INTEGER REFERENCES sae (id) ON DELETE SET NULL,
        checkpoint_id INTEGER REFERENCES checkpoint (id) ON DELETE SET NULL,
        checkpoint_label TEXT,
        layer INTEGER,
        n_features INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      -- Token strings of a set, so examples store 4-byte indices instead of text.
      CREATE TABLE set_token (
        set_id INTEGER NOT NULL REFERENCES feature_set (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (set_id, idx)
      ) WITHOUT ROWID;
      CREATE TABLE feature (
        set_id INTEGER NOT NULL REFERENCES feature_set (id) ON DELETE CASCADE,
        feature INTEGER NOT NULL,
        density REAL,
        max_act REAL,
        mean_act REAL,
        dead INTEGER NOT NULL DEFAULT 0,
        lang_class TEXT,
        lang_counts TEXT,
        top_tokens TEXT NOT NULL DEFAULT '',
        histogram BLOB,
        neighbours BLOB,
        examples BLOB,
        PRIMARY KEY (set_id, feature)
      ) WITHOUT ROWID;
      CREATE INDEX feature_lang ON feature (set_id, lang_class);
      CREATE TABLE taxonomy (
        position INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
      );
      INSERT INTO taxonomy (position, name) VALUES
        (1, 'Token-level'), (2, 'Concept-level (synonymy)'), (3, 'Concept-level (semantic similarity)'), (4, 'Uninterpretable');
      CREATE TABLE label (
        set_id INTEGER NOT NULL,
        feature INTEGER NOT NULL,
        annotator TEXT NOT NULL,
        category TEXT,
        note TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (set_id, feature, annotator),
        FOREIGN KEY (set_id, feature) REFERENCES feature (set_id, feature) ON DELETE CASCADE
      ) WITHOUT ROWID;
      -- Every change, so nothing is lost and any change can be undone.
      CREATE TABLE label_event (
        id INTEGER PRIMARY KEY,
        set_id INTEGER NOT NULL,
        feature INTEGER NOT NULL,
        annotator TEXT NOT NULL,
        category_before TEXT,
        note_before TEXT,
        category_after TEXT,
        note_after TEXT,
        at TEXT NOT NULL,
        undoes INTEGER REFERENCES label_event (id),
        FOREIGN KEY (set_id, feature) REFERENCES feature (set_id, feature) ON DELETE CASCADE
      );
      CREATE INDEX label_event_annotator ON label_event (annotator, id);
    `
  },
  {
    version: 5,
    name: 'feature dynamics: drift and formation per feature, one run per layer',
    sql: `
      CREATE TABLE dynamics_run (
        layer INTEGER PRIMARY KEY,
        steps TEXT NOT NULL,
        n INTEGER NOT NULL,
        threshold REAL NOT NULL,
        warm_started INTEGER NOT NULL,
        match_method TEXT,
        job_id INTEGER REFERENCES job (id) ON DELETE SET NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE feature_dynamics (
        layer INTEGER NOT NULL REFERENCES dynamics_run (layer) ON DELETE CASCADE,
        feature INTEGER NOT NULL,
        total_drift REAL NOT NULL,
        min_cos_to_previous REAL NOT NULL,
        formation_step INTEGER,
        formation_raw INTEGER,
        formation_jaccard INTEGER,
        formation_weighted_jaccard INTEGER,
        m_final REAL,
        PRIMARY KEY (layer, feature)
      ) WITHOUT ROWID;
    `
  },
  {
    version: 7,
    name: 'geometry results',
    sql: `
      CREATE TABLE geometry_result (
        id INTEGER PRIMARY KEY,
        analysis TEXT NOT NULL CHECK (analysis IN ('galaxy', 'lobes', 'crystals')),
        checkpoint_id INTEGER NOT NULL REFERENCES checkpoint (id) ON DELETE CASCADE,
        sae_id INTEGER REFERENCES sae (id) ON DELETE SET NULL,
        layer INTEGER NOT NULL,
        params_json TEXT NOT NULL,
        summary_json TEXT NOT NULL,
        result_json TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX geometry_result_lookup ON geometry_result (analysis, layer, checkpoint_id);
    `
  },
  {
    version: 9,
    name: 'label writes: client request ids (a retry applies once) and whether each was made blind',
    sql: `
      -- 1: made without seeing other annotators' labels of the feature, 0: after seeing them, NULL: not recorded.
      ALTER TABLE label ADD COLUMN blind INTEGER CHECK (blind IN (0, 1));
      ALTER TABLE label_event ADD COLUMN blind INTEGER CHECK (blind IN (0, 1));
      -- The label's flag before the event, so an undo restores it.
      ALTER TABLE label_event ADD COLUMN blind_before INTEGER CHECK (blind_before IN (0, 1));
      ALTER TABLE label_event ADD COLUMN request_id TEXT;
      CREATE UNIQUE INDEX label_event_request ON label_event (request_id);
    `
  }
]

export const SCHEMA_VERSION = migrations[migrations.length - 1]!.version
