// Ordered schema migrations. Never edit one that has shipped: append a new one.
export interface Migration {
  version: number
  name: string
  sql: string
  /**
   * Rebuilds a table others reference (SQLite's 12-step ALTER): foreign keys are switched off around it so
   * dropping the old table cascades nothing, and checked before the transaction commits.
   */
  rebuildsTables?: boolean
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
    version: 8,
    name: 'labels belong to features: retrained SAEs supersede, sets update in place, labelled features cannot be deleted',
    rebuildsTables: true,
    sql: `
      -- An SAE retrained or re-imported for the same checkpoint and layer no longer replaces the old row:
      -- the old one is kept (with its feature set and labels) and points to the SAE that superseded it.
      CREATE TABLE sae_v8 (
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
        superseded_by INTEGER REFERENCES sae_v8 (id),
        superseded_at TEXT
      );
      INSERT INTO sae_v8 (id, checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, fvu, explained_variance, cosine, l0,
        dead_fraction, backend, created_at)
        SELECT id, checkpoint_id, layer, path, preset, d, n, k, warm_started, tokens, steps, fvu, explained_variance, cosine, l0,
          dead_fraction, backend, created_at FROM sae;
      DROP TABLE sae;
      ALTER TABLE sae_v8 RENAME TO sae;
      CREATE UNIQUE INDEX sae_current ON sae (checkpoint_id, layer) WHERE superseded_at IS NULL;

      -- A set of an SAE is that SAE's features: recomputing statistics updates it in place.
      ALTER TABLE feature_set ADD COLUMN updated_at TEXT;
      CREATE INDEX feature_set_sae ON feature_set (sae_id);

      -- Where a label came from when it was carried over from a superseded SAE's feature (JSON), else NULL.
      ALTER TABLE label ADD COLUMN origin TEXT;
      ALTER TABLE label_event ADD COLUMN origin TEXT;

      -- The last line of defence: no code path may delete a feature someone labelled (or whose label history exists).
      CREATE TRIGGER feature_keeps_labels BEFORE DELETE ON feature
        WHEN EXISTS (SELECT 1 FROM label_event e WHERE e.set_id = old.set_id AND e.feature = old.feature)
          OR EXISTS (SELECT 1 FROM label l WHERE l.set_id = old.set_id AND l.feature = old.feature)
      BEGIN
        SELECT RAISE(ABORT, 'FeatureTrace keeps labelled features: this feature has labels or label history and cannot be deleted');
      END;
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
  },
  {
    version: 10,
    name: 'paths inside the project folder stored relative to it',
    // SQL cannot know the project folder: this marks the database, and Project.open converts it once
    // (store/legacy-paths.ts), then clears the mark.
    sql: `
      CREATE TABLE path_conversion_pending (id INTEGER PRIMARY KEY CHECK (id = 1));
      INSERT INTO path_conversion_pending (id) VALUES (1);
    `
  },
  {
    version: 11,
    name: 'the hook every SAE reads; checkpoints without weights (SAE-only projects)',
    rebuildsTables: true,
    sql: `
      -- The hook an SAE reads, in its source's naming (SAELens hook_name, sparsify hookpoint, Gemma Scope's by
      -- release); NULL for SAEs trained here (the residual stream of their layer).
      ALTER TABLE sae ADD COLUMN hook TEXT;

      -- A checkpoint can be known by its SAEs alone (trained elsewhere, weights not on disk): path and layers
      -- are NULL then. Registering the folder later fills them in. The guard stops the rebuild (and the
      -- migration) if an earlier migration gave checkpoint columns this copy does not know.
      CREATE TEMP TABLE checkpoint_columns_v11 (n INTEGER CHECK (n = 16));
      INSERT INTO checkpoint_columns_v11 SELECT count(*) FROM pragma_table_info('checkpoint');
      DROP TABLE checkpoint_columns_v11;
      CREATE TABLE checkpoint_v11 (
        id INTEGER PRIMARY KEY,
        step INTEGER NOT NULL UNIQUE CHECK (step >= 0),
        name TEXT NOT NULL,
        path TEXT UNIQUE,
        model_type TEXT NOT NULL,
        supported INTEGER NOT NULL CHECK (supported IN (0, 1)),
        d_model INTEGER NOT NULL CHECK (d_model > 0),
        layers INTEGER CHECK (layers > 0),
        heads INTEGER,
        vocab_size INTEGER,
        tokens_seen REAL,
        weights_bytes INTEGER,
        config_json TEXT NOT NULL,
        verify_status TEXT NOT NULL DEFAULT 'unverified'
          CHECK (verify_status IN ('unverified', 'ok', 'problems')),
        verify_report_json TEXT,
        registered_at TEXT NOT NULL,
        CHECK ((path IS NULL) = (layers IS NULL)),
        CHECK (path IS NOT NULL OR supported = 0)
      );
      INSERT INTO checkpoint_v11 (id, step, name, path, model_type, supported, d_model, layers, heads, vocab_size, tokens_seen,
        weights_bytes, config_json, verify_status, verify_report_json, registered_at)
        SELECT id, step, name, path, model_type, supported, d_model, layers, heads, vocab_size, tokens_seen,
          weights_bytes, config_json, verify_status, verify_report_json, registered_at FROM checkpoint;
      DROP TABLE checkpoint;
      ALTER TABLE checkpoint_v11 RENAME TO checkpoint;
    `
  },
  {
    version: 12,
    name: 'logit effects and activation correlations of features',
    sql: `
      -- Tokens a feature's decoder row promotes and suppresses through the model's head, and a histogram over the
      -- vocabulary (store/feature-blobs.ts encodeLogitEffects); NULL: none (see feature_set.logit_note).
      ALTER TABLE feature ADD COLUMN logit_effects BLOB;
      -- The latents whose activations correlate most with this one's: f32 (feature, Pearson r) pairs.
      ALTER TABLE feature ADD COLUMN correlations BLOB;
      -- How the set's logit effects were computed (tensors, scale), or why it has none.
      ALTER TABLE feature_set ADD COLUMN logit_note TEXT;
      -- The rows the statistics read, and whether they were only the held-out windows.
      ALTER TABLE feature_set ADD COLUMN stats_rows INTEGER;
      ALTER TABLE feature_set ADD COLUMN stats_held_out INTEGER CHECK (stats_held_out IN (0, 1));
      `
  },
  {
    version: 13,
    name: 'SAE evaluation by splicing: loss recovered, KL and FVU per SAE',
    sql: `
      -- The latest evaluation of each SAE (featuretrace evaluate, the evaluate-saes job); evaluating again replaces it.
      CREATE TABLE sae_evaluation (
        sae_id INTEGER PRIMARY KEY REFERENCES sae (id) ON DELETE CASCADE,
        ce_clean REAL NOT NULL,
        ce_spliced REAL NOT NULL,
        ce_zero REAL NOT NULL,
        loss_recovered REAL,
        kl REAL NOT NULL,
        fvu REAL NOT NULL,
        explained_variance REAL NOT NULL,
        l0 REAL NOT NULL,
        tokens INTEGER NOT NULL CHECK (tokens > 0),
        positions INTEGER NOT NULL CHECK (positions >= tokens),
        windows INTEGER NOT NULL CHECK (windows > 0),
        corpus TEXT NOT NULL,
        context INTEGER NOT NULL CHECK (context > 0),
        max_tokens INTEGER,
        seed INTEGER NOT NULL,
        backend TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `
  }
]

// The highest version, wherever parallel branches put their migrations in the list.
export const SCHEMA_VERSION = Math.max(...migrations.map((m) => m.version))
