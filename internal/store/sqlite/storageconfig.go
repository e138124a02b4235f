package sqlite

import (
	"context"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Storage configurations (migration 0003).

func scanStorageConfiguration(sc scanner) (ivs.StorageConfiguration, error) {
	var id, name, bucket string
	var created int64
	err := sc.Scan(&id, &name, &bucket, &created)
	return ivs.StorageConfiguration{ID: ivs.StorageConfigurationID(id), Name: name, BucketName: bucket, CreatedAt: fromNanos(created)}, err
}

func (r reads) GetStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) (ivs.StorageConfiguration, error) {
	return get(r.queryRow(ctx, qGetStorageConfiguration, string(id)), scanStorageConfiguration, "storage configuration "+string(id))
}

func (r reads) ListStorageConfigurations(ctx context.Context, p store.Page) ([]ivs.StorageConfiguration, error) {
	if p.After == nil {
		return list(ctx, r, "storage configurations", limit(p), scanStorageConfiguration, qListStorageConfigurationsFirst)
	}
	t, err := nanos(p.After.Time)
	if err != nil {
		return nil, err
	}
	return list(ctx, r, "storage configurations", limit(p), scanStorageConfiguration, qListStorageConfigurationsAfter, t, p.After.ID)
}

func (r reads) CountStorageConfigurations(ctx context.Context) (int, error) {
	var n int
	if err := r.queryRow(ctx, qCountStorageConfigurations).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count storage configurations: %w", err)
	}
	return n, nil
}

func (r reads) StagesUsingStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID, n int) ([]ivs.StageID, error) {
	if id == "" {
		return nil, nil // "" is how a stage that does not record names none
	}
	if n <= 0 {
		n = -1
	}
	return list(ctx, r, "stages using a storage configuration", n, func(sc scanner) (ivs.StageID, error) {
		var s string
		err := sc.Scan(&s)
		return ivs.StageID(s), err
	}, qStagesUsingStorageConfiguration, string(id))
}

func (t *tx) LockStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) (ivs.StorageConfiguration, error) {
	// As LockStage: the write transaction already holds SQLite's write lock, so a read is enough.
	return t.GetStorageConfiguration(ctx, id)
}

func (t *tx) InsertStorageConfiguration(ctx context.Context, c ivs.StorageConfiguration) error {
	created, err := nanos(c.CreatedAt)
	if err != nil {
		return err
	}
	n, err := t.exec(ctx, qInsertStorageConfiguration, string(c.ID), c.Name, c.BucketName, created)
	if err != nil {
		return fmt.Errorf("sqlite: insert storage configuration %s: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: insert storage configuration %s: %w", c.ID, store.ErrExists)
	}
	return nil
}

func (t *tx) DeleteStorageConfiguration(ctx context.Context, id ivs.StorageConfigurationID) error {
	n, err := t.exec(ctx, qDeleteStorageConfiguration, string(id))
	if err != nil {
		return fmt.Errorf("sqlite: delete storage configuration %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete storage configuration %s: %w", id, store.ErrNotFound)
	}
	return nil
}
