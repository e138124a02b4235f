package server

import (
	"context"
	"path/filepath"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/recording/bucket"
)

// recordingsDir is where buckets are directories, under the data dir, when no --s3-endpoint is set.
const recordingsDir = "recordings"

// openBuckets returns where storage configurations' buckets are (docs/DESIGN.md §7): on the S3-compatible
// server --s3-endpoint names, or by default directories <data-dir>/recordings/<bucketName>, so that
// recording needs no other process.
func openBuckets(ctx context.Context, cfg *config.Config) (bucket.Store, error) {
	if cfg.S3Endpoint == "" {
		return bucket.NewDir(filepath.Join(cfg.DataDir, recordingsDir))
	}
	return bucket.NewS3(ctx, bucket.S3Config{Endpoint: cfg.S3Endpoint, Region: cfg.S3Region, PathStyle: cfg.S3PathStyle,
		AccessKeyID: cfg.S3AccessKeyID, SecretAccessKey: cfg.S3SecretAccessKey})
}
