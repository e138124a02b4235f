package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3Config says where an S3-compatible server is and how to sign for it.
type S3Config struct {
	Endpoint string // the server's URL (AWS S3, MinIO, Ceph, R2, versitygw, ...)
	Region   string // the region requests are signed for; "" takes the AWS chain's, or us-east-1
	// PathStyle addresses buckets as <endpoint>/<bucket> rather than <bucket>.<endpoint host>; most servers
	// other than AWS S3 need it.
	PathStyle bool
	// AccessKeyID and SecretAccessKey, when set, sign every request; otherwise the standard AWS chain
	// (environment, shared config and credentials files, container and instance roles) provides credentials.
	AccessKeyID     string
	SecretAccessKey string
	// MultipartThreshold is the object size from which Put uploads in parts (0: transfermanager's default,
	// 16 MiB); PartSize is the size of each part (0: its default, 8 MiB; S3 needs at least 5 MiB).
	MultipartThreshold int64
	PartSize           int64
	HTTPClient         *http.Client // nil: the SDK's
}

// S3 keeps buckets on an S3-compatible server, written with aws-sdk-go-v2's S3 client and its transfer
// manager, which uploads large objects in parts (S3 makes an object visible only once its upload completes,
// so a reader never sees a partial one).
type S3 struct {
	client   *s3.Client
	transfer *transfermanager.Client
	http     interface{ CloseIdleConnections() }
}

var _ Store = (*S3)(nil)

// NewS3 makes the client. It sends nothing: a server that cannot be reached shows at the first call.
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	if c.Endpoint == "" {
		return nil, errors.New("bucket: S3 needs an endpoint URL")
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return nil, errors.New("bucket: an S3 access key id and secret access key go together")
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("bucket: S3 configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	hc := c.HTTPClient
	if hc == nil {
		// The SDK's own client, with what the configuration applied to its transport (AWS_CA_BUNDLE), but
		// one whose idle connections Close can release; like the SDK's, it follows no redirect.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
			tr = bc.GetTransport()
		}
		hc = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(c.Endpoint)
		o.UsePathStyle = c.PathStyle
		o.HTTPClient = hc
	})
	transfer := transfermanager.New(client, func(o *transfermanager.Options) {
		if c.MultipartThreshold > 0 {
			o.MultipartUploadThreshold = c.MultipartThreshold
		}
		if c.PartSize > 0 {
			o.PartSizeBytes = c.PartSize
		}
	})
	return &S3{client: client, transfer: transfer, http: hc}, nil
}

// Close drops the idle connections to the server.
func (s *S3) Close() error {
	s.http.CloseIdleConnections()
	return nil
}

// s3Error turns the server's "no such bucket" and "no such key" into this package's errors.
func s3Error(err error, what string) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%w: %s", ErrNoSuchBucket, what)
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %s", ErrNotFound, what)
		}
	}
	return fmt.Errorf("bucket: %s: %w", what, err)
}

func (s *S3) Prepare(ctx context.Context, bucket string) error {
	ok, err := s.Exists(ctx, bucket)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	}
	return nil
}

func (s *S3) Exists(ctx context.Context, bucket string) (bool, error) {
	if !ValidName(bucket) {
		return false, fmt.Errorf("%w: %q", ErrInvalidName, bucket)
	}
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return true, nil
	}
	// HEAD answers have no body, so a missing bucket is only a 404 (code "NotFound").
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return false, nil
		case http.StatusForbidden: // a bucket of someone else's, or a wrong key
			return false, fmt.Errorf("%w: head bucket %s: %v", ErrAccessDenied, bucket, err)
		}
	}
	return false, fmt.Errorf("bucket: head bucket %s: %w", bucket, err)
}

func (s *S3) Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	in := &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := s.transfer.UploadObject(ctx, in); err != nil {
		return s3Error(err, "put "+bucket+"/"+key)
	}
	return nil
}

func (s *S3) Get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s3Error(err, "get "+bucket+"/"+key)
	}
	return out.Body, nil
}

func (s *S3) List(ctx context.Context, bucket, prefix string) ([]Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}
	if prefix != "" {
		in.Prefix = aws.String(prefix)
	}
	out := []Object{}
	for pages := s3.NewListObjectsV2Paginator(s.client, in); pages.HasMorePages(); {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s3Error(err, "list "+bucket+"/"+prefix)
		}
		for _, o := range page.Contents {
			out = append(out, Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)})
		}
	}
	// S3 lists in key order already; a compatible server might not.
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (s *S3) Delete(ctx context.Context, bucket, key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return s3Error(err, "delete "+bucket+"/"+key)
	}
	return nil
}
