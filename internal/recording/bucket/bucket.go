// Package bucket is where recordings are written: the S3 buckets that storage configurations name
// (docs/DESIGN.md §7). A bucket is either a directory of the data dir (Dir, the default: recording needs no
// other process) or a bucket on an S3-compatible server (S3, with --s3-endpoint). Both implement Store, the
// few object operations a recorder needs, and pass one conformance test.
package bucket

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
)

var (
	// ErrNoSuchBucket: the bucket does not exist (S3), or its directory does not (Dir).
	ErrNoSuchBucket = errors.New("bucket: no such bucket")
	// ErrNotFound: no object has this key.
	ErrNotFound = errors.New("bucket: no such key")
	// ErrInvalidName: not a name S3 allows for a bucket (ValidName).
	ErrInvalidName = errors.New("bucket: invalid bucket name")
	// ErrAccessDenied: the server refuses openstage's credentials for the bucket.
	ErrAccessDenied = errors.New("bucket: access denied")
	// ErrInvalidKey: not a key this store can hold (ValidKey).
	ErrInvalidKey = errors.New("bucket: invalid object key")
)

// Object is one entry of a List.
type Object struct {
	Key  string
	Size int64
}

// Store is a set of buckets. Keys are S3 object keys ('/'-separated); see ValidKey for the ones accepted.
type Store interface {
	// Prepare readies a bucket for a storage configuration that names it: Dir makes its directory, S3 checks
	// that it exists (ErrNoSuchBucket), since openstage does not create buckets on a server it does not own.
	Prepare(ctx context.Context, bucket string) error
	// Exists reports whether the bucket exists.
	Exists(ctx context.Context, bucket string) (bool, error)
	// Put stores body under key, replacing any object there. A reader never sees a partial object: it sees
	// the previous one or the whole new one. contentType is kept where the store keeps one (S3).
	Put(ctx context.Context, bucket, key string, body io.Reader, contentType string) error
	// Get opens the object (ErrNotFound).
	Get(ctx context.Context, bucket, key string) (io.ReadCloser, error)
	// List returns the objects whose keys start with prefix, in key order (byte order, as S3 lists).
	List(ctx context.Context, bucket, prefix string) ([]Object, error)
	// Delete removes the object; a key with no object is not an error (as S3's DeleteObject).
	Delete(ctx context.Context, bucket, key string) error
	// Close releases what the store holds between calls (S3: its idle connections).
	Close() error
}

// ValidName reports whether name follows S3's bucket naming rules (general purpose buckets): 3 to 63
// characters of lowercase letters, digits, '.' and '-', beginning and ending with a letter or digit, no two
// '.' in a row, and not an IPv4 address. The model's S3BucketName pattern ([a-z0-9-.]+, 3..63) lets through
// names such as ".." that S3 refuses and that, as a directory name, would leave the recordings directory.
func ValidName(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") || net.ParseIP(name) != nil {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		if !alnum && c != '.' && c != '-' {
			return false
		}
		if !alnum && (i == 0 || i == len(name)-1) {
			return false
		}
	}
	return true
}

// ValidKey reports whether key can name an object in every Store: 1 to 1024 bytes (S3's limit), no NUL,
// and '/'-separated segments that are neither empty nor "." nor "..", so that a key is also a relative
// file path that stays inside its bucket's directory. The recorder's keys (<stageId>/<sessionId>/...) are.
func ValidKey(key string) bool {
	if key == "" || len(key) > 1024 || strings.IndexByte(key, 0) >= 0 {
		return false
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}
