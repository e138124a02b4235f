package postgres

import (
	"context"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Storage configurations (migration 0003).

const (
	storageCols                     = `id, name, bucket_name, created_at`
	qGetStorageConfiguration        = `SELECT ` + storageCols + ` FROM storage_configurations WHERE id = $1`
	qLockStorageConfiguration       = qGetStorageConfiguration + ` FOR UPDATE`
	qListStorageConfigurationsFirst = `SELECT ` + storageCols + ` FROM storage_configurations ORDER BY created_at, id LIMIT $1`
	qListStorageConfigurationsAfter = `SELECT ` + storageCols + ` FROM storage_configurations
		WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3`
	qCountStorageConfigurations      = `SELECT COUNT(*) FROM storage_configurations`
	qStagesUsingStorageConfiguration = `SELECT id FROM stages WHERE recording_storage_configuration_id = $1 ORDER BY id LIMIT $2`
	qInsertStorageConfiguration      = `INSERT INTO storage_configurations (` + storageCols + `) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	qDeleteStorageConfiguration      = `DELETE FROM storage_configurations WHERE id = $1`
)

// lockStorageConfigurations is the advisory lock class of CountStorageConfigurations in a transaction (the
// quota check), as lockStages is CountStages'. Its value stays clear of the classes in tx.go.
const lockStorageConfigurations int32 = 0x6f730101

func scanStorageConfiguration(sc scanner) (ivs.StorageConfiguration, error) {
	var id, name, bucket string
	var created int64
	err := sc.Scan(&id, &name, &bucket, &created)
	return ivs.StorageConfiguration{ID: ivs.StorageConfigurationID(id), Name: name, BucketName: bucket, CreatedAt: fromNanos(created)}, err
}

func (r reads) GetStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) (ivs.StorageConfiguration, error) {
	return get(r.q.QueryRow(ctx, qGetStorageConfiguration, string(id)), scanStorageConfiguration, "storage configuration "+string(id))
}

func (r reads) ListStorageConfigurations(ctx context.Context, p store.Page) ([]ivs.StorageConfiguration, error) {
	if p.After == nil {
		return list(ctx, r, "storage configurations", pageCap(p), scanStorageConfiguration, qListStorageConfigurationsFirst, limit(p))
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "storage configurations", pageCap(p), scanStorageConfiguration, qListStorageConfigurationsAfter,
		t, p.After.ID, limit(p))
}

func (r reads) CountStorageConfigurations(ctx context.Context) (int, error) {
	return r.count(ctx, "storage configurations", qCountStorageConfigurations)
}

func (r reads) StagesUsingStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID, n int) ([]ivs.StageID, error) {
	if id == "" {
		return nil, nil // "" is how a stage that does not record names none
	}
	p := store.Page{Limit: n}
	return list(ctx, r, "stages using a storage configuration", pageCap(p), func(sc scanner) (ivs.StageID, error) {
		var s string
		err := sc.Scan(&s)
		return ivs.StageID(s), err
	}, qStagesUsingStorageConfiguration, string(id), limit(p))
}

// CountStorageConfigurations in a transaction waits for the others that counted to end (store.Tx).
func (t *tx) CountStorageConfigurations(ctx context.Context) (int, error) {
	if err := t.lock(ctx, lockStorageConfigurations, 0); err != nil {
		return 0, err
	}
	return t.reads.CountStorageConfigurations(ctx)
}

// LockStorageConfiguration takes the row lock a DELETE also takes: a stage that starts naming the
// configuration and a delete that checks no stage names it cannot overlap. Under READ COMMITTED, whichever
// comes second sees what the first committed (the row gone, or the stage naming it).
func (t *tx) LockStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) (ivs.StorageConfiguration, error) {
	return get(t.tx.QueryRow(ctx, qLockStorageConfiguration, string(id)), scanStorageConfiguration, "storage configuration "+string(id))
}

func (t *tx) InsertStorageConfiguration(ctx context.Context, c ivs.StorageConfiguration) error {
	created, err := nanos(c.CreatedAt)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qInsertStorageConfiguration, string(c.ID), c.Name, c.BucketName, created)
	if err != nil {
		return fmt.Errorf("postgres: insert storage configuration %s: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: insert storage configuration %s: %w", c.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) DeleteStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) error {
	n, err := t.exec(ctx, qDeleteStorageConfiguration, string(id))
	if err != nil {
		return fmt.Errorf("postgres: delete storage configuration %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: delete storage configuration %s: %w", id, store.ErrNotFound)
	}
	return nil
}
