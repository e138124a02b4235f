package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Dir keeps each bucket as a directory under its root (<data-dir>/recordings/<bucketName>), each object as a
// file at its key's path. Writes go to a temporary file first, synced and then renamed into place, so a
// reader (or a restart after a crash) sees either the old object or the whole new one, and an object Put
// returned for survives a crash. A directory keeps no content type: whoever serves the files derives it from
// the name (.m3u8, .mp4, .json, .jpg). A key cannot be both an object and the prefix of another's path
// ("a" and "a/b"), which S3 allows; the recorder's layout never does that.
type Dir struct {
	root string
}

var _ Store = (*Dir)(nil)

// tmpDir holds Put's temporary files, beside the buckets on the same file system (rename is atomic only
// within one). A bucket name cannot begin with '.', so it is never a bucket.
const tmpDir = ".tmp"

// NewDir returns the store of the buckets under root, creating root if needed.
func NewDir(root string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o750); err != nil {
		return nil, fmt.Errorf("bucket: %w", err)
	}
	return &Dir{root: root}, nil
}

// Root is the directory that holds the buckets.
func (d *Dir) Root() string { return d.root }

func (d *Dir) bucketDir(bucket string) (string, error) {
	if !ValidName(bucket) {
		return "", fmt.Errorf("%w: %q", ErrInvalidName, bucket)
	}
	return filepath.Join(d.root, bucket), nil
}

// existing returns the bucket's directory, or ErrNoSuchBucket.
func (d *Dir) existing(bucket string) (string, error) {
	dir, err := d.bucketDir(bucket)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return "", fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket)
	}
	if err != nil {
		return "", fmt.Errorf("bucket: %w", err)
	}
	return dir, nil
}

func (d *Dir) objectPath(bucket, key string) (string, error) {
	dir, err := d.existing(bucket)
	if err != nil {
		return "", err
	}
	if !ValidKey(key) {
		return "", fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return filepath.Join(dir, filepath.FromSlash(key)), nil
}

func (d *Dir) Prepare(_ context.Context, bucket string) error {
	dir, err := d.bucketDir(bucket)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("bucket: %w", err)
	}
	return nil
}

func (d *Dir) Exists(_ context.Context, bucket string) (bool, error) {
	_, err := d.existing(bucket)
	if errors.Is(err, ErrNoSuchBucket) {
		return false, nil
	}
	return err == nil, err
}

func (d *Dir) Put(ctx context.Context, bucket, key string, body io.Reader, _ string) error {
	p, err := d.objectPath(bucket, key)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(d.root, tmpDir), "put-*")
	if err != nil {
		return fmt.Errorf("bucket: put %s/%s: %w", bucket, key, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // nothing left behind on failure; after the rename there is nothing to remove
	_, err = io.Copy(f, readerWithContext{ctx, body})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(p), 0o750)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		err = syncDir(filepath.Dir(p)) // the rename itself survives a crash once its directory is synced
	}
	if err != nil {
		return fmt.Errorf("bucket: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readerWithContext stops a copy when ctx ends, as an S3 upload would.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (d *Dir) Get(_ context.Context, bucket, key string) (io.ReadCloser, error) {
	p, err := d.objectPath(bucket, key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || errors.Is(err, notDirErr) {
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket: get %s/%s: %w", bucket, key, err)
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	return f, nil
}

func (d *Dir) List(ctx context.Context, bucket, prefix string) ([]Object, error) {
	dir, err := d.existing(bucket)
	if err != nil {
		return nil, err
	}
	// Walk only the deepest directory that holds every key with this prefix.
	start := dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		sub := prefix[:i]
		if !ValidKey(sub) {
			return []Object{}, nil // no key has an empty, "." or ".." segment
		}
		start = filepath.Join(dir, filepath.FromSlash(sub))
	}
	out := []Object{}
	err = filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDirErr) {
				return nil // nothing under this prefix
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		out = append(out, Object{Key: key, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bucket: list %s/%s: %w", bucket, prefix, err)
	}
	// A directory walk visits "a/b" before "a.txt"; S3 lists by key bytes, where '.' comes before '/'.
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Close has nothing to release: every call opens and closes its own files.
func (d *Dir) Close() error { return nil }

func (d *Dir) Delete(_ context.Context, bucket, key string) error {
	p, err := d.objectPath(bucket, key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, notDirErr) {
		return fmt.Errorf("bucket: delete %s/%s: %w", bucket, key, err)
	}
	// Directories exist only to hold objects: remove the ones this delete emptied, up to the bucket's own.
	dir, _ := d.existing(bucket)
	for parent := path.Dir(key); parent != "."; parent = path.Dir(parent) {
		if os.Remove(filepath.Join(dir, filepath.FromSlash(parent))) != nil {
			break // not empty, or already gone
		}
	}
	return nil
}
