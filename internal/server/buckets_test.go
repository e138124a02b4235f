package server

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/recording/bucket/buckettest"
)

func (ts *testServer) apiClient(t *testing.T) *ivsrealtime.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return ivsrealtime.New(ivsrealtime.Options{BaseEndpoint: aws.String(ts.base), Region: "us-east-1", RetryMaxAttempts: 1,
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: ts.RootKey.AccessKeyID, SecretAccessKey: ts.RootKey.SecretAccessKey}, nil
		})})
}

func createStorage(ctx context.Context, c *ivsrealtime.Client, bucketName string) (*types.StorageConfiguration, error) {
	out, err := c.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
		S3: &types.S3StorageConfiguration{BucketName: aws.String(bucketName)}})
	if err != nil {
		return nil, err
	}
	return out.StorageConfiguration, nil
}

// TestBucketsInTheDataDir: by default a storage configuration's bucket is a directory of the data dir, made
// when the configuration is.
func TestBucketsInTheDataDir(t *testing.T) {
	ts := startServer(t, nil)
	sc, err := createStorage(t.Context(), ts.apiClient(t), "local-recordings")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(ts.cfg.DataDir, "recordings", "local-recordings")); err != nil || !fi.IsDir() {
		t.Fatalf("bucket directory for %s: %v", aws.ToString(sc.Arn), err)
	}
}

// TestBucketsOnAnS3Server: with --s3-endpoint, buckets are on that server (a real one: versitygw), and
// CreateStorageConfiguration refuses a bucket the server does not have.
func TestBucketsOnAnS3Server(t *testing.T) {
	gw := buckettest.StartS3(t)
	gw.MakeBucket(t, "vod")
	ts := startServer(t, func(c *config.Config) {
		c.S3Endpoint, c.S3PathStyle, c.S3Region = gw.URL, true, "us-east-1"
		c.S3AccessKeyID, c.S3SecretAccessKey = gw.AccessKey, gw.SecretKey
	})
	client := ts.apiClient(t)
	ctx := t.Context()
	_, err := createStorage(ctx, client, "not-there")
	var ve *types.ValidationException
	if !errors.As(err, &ve) || !strings.Contains(aws.ToString(ve.ExceptionMessage), "does not exist") {
		t.Fatalf("a bucket the S3 server lacks: %v", err)
	}
	sc, err := createStorage(ctx, client, "vod")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sc.S3.BucketName) != "vod" {
		t.Fatalf("%+v", sc)
	}
	// Nothing went to the data dir.
	if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "recordings", "vod")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a bucket directory in the data dir with --s3-endpoint: %v", err)
	}
	list, err := client.ListStorageConfigurations(ctx, &ivsrealtime.ListStorageConfigurationsInput{})
	if err != nil || len(list.StorageConfigurations) != 1 {
		t.Fatalf("list %+v %v", list, err)
	}
}
