package stage

import (
	"context"
	"errors"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/recording/bucket"
	"github.com/openstage/openstage/internal/store"
)

// Storage configurations and the stages' autoParticipantRecordingConfiguration (docs/DESIGN.md §7).

// Buckets is what the domain asks of where recordings go (internal/recording/bucket implements it): that a
// storage configuration's bucket be usable. With the directory store it is made; on an S3 server it must
// exist (bucket.ErrNoSuchBucket).
type Buckets interface {
	Prepare(ctx context.Context, bucket string) error
}

// ErrStorageConfigurationNotFound: no storage configuration has this ARN.
var ErrStorageConfigurationNotFound = newError(KindNotFound, "storage configuration not found")

// StorageConfigurationView is a storage configuration with its ARN and tags, as the API shows it.
type StorageConfigurationView struct {
	ivs.StorageConfiguration
	ARN  string
	Tags map[string]string
}

// CreateStorageConfiguration records where a stage's recordings may go: the S3 bucket bucketName, which must
// be usable now (Buckets.Prepare). Several configurations may name one bucket, as on IVS.
func (s *Service) CreateStorageConfiguration(ctx context.Context, name, bucketName string, tags map[string]string) (StorageConfigurationView, error) {
	// The model's S3BucketName pattern admits names S3 refuses ("..", "-a-"); S3's own rules apply.
	if !bucket.ValidName(bucketName) {
		return StorageConfigurationView{}, fmt.Errorf("%w: s3.bucketName %q is not a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-', beginning and ending with a letter or digit, no \"..\", not an IP address)", ErrInvalid, bucketName)
	}
	if s.cfg.Buckets == nil {
		return StorageConfigurationView{}, fmt.Errorf("%w: this server has no storage for recordings", ErrInvalid)
	}
	if err := s.cfg.Buckets.Prepare(ctx, bucketName); err != nil {
		if errors.Is(err, bucket.ErrNoSuchBucket) {
			return StorageConfigurationView{}, fmt.Errorf("%w: s3.bucketName: bucket %s does not exist", ErrInvalid, bucketName)
		}
		if errors.Is(err, bucket.ErrAccessDenied) {
			return StorageConfigurationView{}, fmt.Errorf("%w: s3.bucketName: the S3 server refuses openstage's credentials for bucket %s", ErrInvalid, bucketName)
		}
		return StorageConfigurationView{}, fmt.Errorf("stage: bucket %s: %w", bucketName, err)
	}
	c := ivs.StorageConfiguration{ID: ivs.NewStorageConfigurationID(), Name: name, BucketName: bucketName, CreatedAt: s.now()}
	arn := s.cfg.Account.StorageConfigurationARN(c.ID)
	err := s.store.Update(ctx, func(tx store.Tx) error {
		n, err := tx.CountStorageConfigurations(ctx)
		if err != nil {
			return err
		}
		if n >= s.cfg.Quotas.StorageConfigurations {
			return fmt.Errorf("%w: the quota of %d storage configurations is reached", ErrQuotaExceeded, s.cfg.Quotas.StorageConfigurations)
		}
		if err := tx.InsertStorageConfiguration(ctx, c); err != nil {
			return err
		}
		if len(tags) > 0 {
			return tx.MergeTags(ctx, arn, tags)
		}
		return nil
	})
	if err != nil {
		return StorageConfigurationView{}, err
	}
	return StorageConfigurationView{StorageConfiguration: c, ARN: arn, Tags: nonNil(tags)}, nil
}

func (s *Service) storageConfigurationID(arn string) (ivs.StorageConfigurationID, error) {
	id, ok := s.cfg.Account.StorageConfigurationIDFromARN(arn)
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrStorageConfigurationNotFound, arn)
	}
	return id, nil
}

func (s *Service) GetStorageConfiguration(ctx context.Context, arn string) (StorageConfigurationView, error) {
	id, err := s.storageConfigurationID(arn)
	if err != nil {
		return StorageConfigurationView{}, err
	}
	c, err := s.store.GetStorageConfiguration(ctx, id)
	if err != nil {
		return StorageConfigurationView{}, notFound(err, ErrStorageConfigurationNotFound, arn)
	}
	tags, err := s.store.Tags(ctx, arn)
	if err != nil {
		return StorageConfigurationView{}, err
	}
	return StorageConfigurationView{StorageConfiguration: c, ARN: arn, Tags: tags}, nil
}

// ListStorageConfigurations pages storage configurations by creation, oldest first.
func (s *Service) ListStorageConfigurations(ctx context.Context, p store.Page) ([]StorageConfigurationView, error) {
	cs, err := s.store.ListStorageConfigurations(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]StorageConfigurationView, 0, len(cs))
	for _, c := range cs {
		arn := s.cfg.Account.StorageConfigurationARN(c.ID)
		tags, err := s.store.Tags(ctx, arn)
		if err != nil {
			return nil, err
		}
		out = append(out, StorageConfigurationView{StorageConfiguration: c, ARN: arn, Tags: tags})
	}
	return out, nil
}

// DeleteStorageConfiguration deletes a storage configuration that no stage names: IVS's user guide says
// one "can delete a storage configuration that is no longer associated with any stages", and the model's
// DeleteStorageConfiguration answers ConflictException for one in use. The bucket and the recordings in it
// stay: they are the user's.
func (s *Service) DeleteStorageConfiguration(ctx context.Context, arn string) error {
	id, err := s.storageConfigurationID(arn)
	if err != nil {
		return err
	}
	return s.store.Update(ctx, func(tx store.Tx) error {
		// The lock makes a stage that is starting to name it (useStorageConfiguration) wait, or this wait.
		if _, err := tx.LockStorageConfiguration(ctx, id); err != nil {
			return notFound(err, ErrStorageConfigurationNotFound, arn)
		}
		using, err := tx.StagesUsingStorageConfiguration(ctx, id, 1)
		if err != nil {
			return err
		}
		if len(using) > 0 {
			return fmt.Errorf("%w: storage configuration %s is used by stage %s: change the stage's autoParticipantRecordingConfiguration first",
				ErrConflict, arn, s.cfg.Account.StageARN(using[0]))
		}
		if err := tx.DeleteStorageConfiguration(ctx, id); err != nil {
			return err
		}
		return tx.DeleteTags(ctx, arn)
	})
}

// RecordingSpec is an autoParticipantRecordingConfiguration as a request gives it.
type RecordingSpec struct {
	// StorageConfigurationARN is the storage configuration to record to; "" turns recording off and, as
	// the model says, resets every other member to its default.
	StorageConfigurationARN string
	// Config holds the other members (its StorageConfigurationID is ignored); zero fields take the defaults.
	Config ivs.AutoRecording
}

// useStorageConfiguration turns a RecordingSpec into the configuration a stage keeps, checking in tx that
// the storage configuration exists and holding it against a concurrent delete until tx ends.
func (s *Service) useStorageConfiguration(ctx context.Context, tx store.Tx, r RecordingSpec) (ivs.AutoRecording, error) {
	if r.StorageConfigurationARN == "" {
		return ivs.AutoRecording{}, nil
	}
	// CreateStage's model errors have no ResourceNotFoundException: a storage configuration that does not
	// exist is an invalid value of autoParticipantRecordingConfiguration (ValidationException), and so it is
	// for UpdateStage too, whose ResourceNotFoundException is the stage's.
	unknown := fmt.Errorf("%w: autoParticipantRecordingConfiguration.storageConfigurationArn: storage configuration %s does not exist",
		ErrInvalid, r.StorageConfigurationARN)
	id, ok := s.cfg.Account.StorageConfigurationIDFromARN(r.StorageConfigurationARN)
	if !ok {
		return ivs.AutoRecording{}, unknown
	}
	if _, err := tx.LockStorageConfiguration(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ivs.AutoRecording{}, unknown
		}
		return ivs.AutoRecording{}, err
	}
	rec := r.Config
	rec.StorageConfigurationID = id
	return rec, nil
}

// StorageConfigurationARN is the ARN of the storage configuration a stage records to ("" when it does not).
func (s *Service) StorageConfigurationARN(r ivs.AutoRecording) string {
	if !r.Enabled() {
		return ""
	}
	return s.cfg.Account.StorageConfigurationARN(r.StorageConfigurationID)
}
