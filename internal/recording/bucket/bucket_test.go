package bucket

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"

	"github.com/openstage/openstage/internal/recording/bucket/buckettest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"abc": true, "my-bucket.v1": true, "0day": true, strings63('a'): true,
		"ab": false, strings63('a') + "a": false, "..": false, "...": false, "a..b": false, ".abc": false,
		"abc.": false, "-abc": false, "abc-": false, "ABC": false, "a_b": false, "192.168.0.1": false, "a/b": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func strings63(c byte) string { return string(bytes.Repeat([]byte{c}, 63)) }

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{
		"a": true, "st/se/p/1700000000000/media/hls/high/1.mp4": true, ".hidden": true, "a/..b": true,
		"": false, "/a": false, "a/": false, "a//b": false, "./a": false, "a/./b": false, "../a": false, "a/..": false,
		"a\x00b": false, string(bytes.Repeat([]byte{'k'}, 1025)): false,
	} {
		if got := ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestDir(t *testing.T) {
	root := t.TempDir()
	d, err := NewDir(filepath.Join(root, "recordings"))
	if err != nil {
		t.Fatal(err)
	}
	// Prepare makes the bucket's directory: recording to the data dir needs nothing set up.
	conformance(t, d, func(name string) {
		if err := d.Prepare(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(root, "recordings", name)); err != nil || !fi.IsDir() {
			t.Fatalf("Prepare(%s) made no directory: %v", name, err)
		}
	})
	// Nothing was made beside the recordings directory: the refused "../escape" made nothing.
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 1 || entries[0].Name() != "recordings" {
		t.Fatalf("the root holds %v (%v)", entries, err)
	}
	// Nothing is left in the temporary directory, and only buckets beside it.
	if left, _ := os.ReadDir(filepath.Join(root, "recordings", tmpDir)); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// TestS3 runs the same conformance test against a real S3 server process: versitygw, whose posix backend
// serves a directory (scripts/ci-deps-s3.sh installs it).
func TestS3(t *testing.T) {
	gw := buckettest.StartS3(t)
	httpClient := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(httpClient.CloseIdleConnections)
	s, err := NewS3(t.Context(), S3Config{
		Endpoint: gw.URL, Region: "us-east-1", PathStyle: true, AccessKeyID: gw.AccessKey, SecretAccessKey: gw.SecretKey,
		// Parts of S3's minimum size, so that the large object of the conformance test is a multipart upload.
		MultipartThreshold: 5 << 20, PartSize: 5 << 20, HTTPClient: httpClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	// openstage does not create buckets on an S3 server: Prepare refuses one that does not exist.
	if err := s.Prepare(t.Context(), "not-made-yet"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("Prepare of a bucket the server lacks: %v, want ErrNoSuchBucket", err)
	}
	conformance(t, s, func(name string) {
		gw.MakeBucket(t, name)
		if err := s.Prepare(t.Context(), name); err != nil {
			t.Fatalf("Prepare of an existing bucket: %v", err)
		}
	})
	// S3 keeps the content type (a directory cannot).
	if err := s.Put(t.Context(), "typed", "media/hls/multivariant.m3u8", bytes.NewReader([]byte("#EXTM3U\n")), "application/vnd.apple.mpegurl"); err != nil {
		t.Fatal(err)
	}
	head, err := s.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("typed"), Key: aws.String("media/hls/multivariant.m3u8")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(head.ContentType); got != "application/vnd.apple.mpegurl" {
		t.Fatalf("content type %q", got)
	}

	// The large object of the conformance test went up in parts: a multipart upload's ETag is
	// "<md5 of the parts' md5s>-<number of parts>".
	big, err := s.client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("rec-bucket.one"),
		Key: aws.String("stAbc/st-1234567890123/pAbc/1700000000000/media/hls/high/3.mp4")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(big.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
		t.Fatalf("the 12 MiB object's ETag %s is not that of a 3-part upload", etag)
	}

	// Wrong credentials are an error, not a missing bucket.
	bad, err := NewS3(t.Context(), S3Config{Endpoint: gw.URL, Region: "us-east-1", PathStyle: true,
		AccessKeyID: gw.AccessKey, SecretAccessKey: "wrong", HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := bad.Exists(t.Context(), "typed"); !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("Exists with a wrong secret = %v, %v; want ErrAccessDenied", ok, err)
	}
}

// conformance is what a recorder relies on, for any Store. create makes a bucket that the Store then uses.
func conformance(t *testing.T, s Store, create func(name string)) {
	ctx := t.Context()
	const b = "rec-bucket.one"
	if ok, err := s.Exists(ctx, b); err != nil || ok {
		t.Fatalf("Exists before the bucket was made = %v, %v", ok, err)
	}
	if err := s.Put(ctx, b, "k", bytes.NewReader([]byte("x")), "text/plain"); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("Put to a missing bucket: %v", err)
	}
	if _, err := s.List(ctx, b, ""); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("List of a missing bucket: %v", err)
	}
	if _, err := s.Exists(ctx, ".."); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Exists(\"..\"): %v, want ErrInvalidName", err)
	}
	if err := s.Prepare(ctx, "../escape"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("Prepare(\"../escape\"): %v, want ErrInvalidName", err)
	}
	create(b)
	create("typed")
	if ok, err := s.Exists(ctx, b); err != nil || !ok {
		t.Fatalf("Exists after the bucket was made = %v, %v", ok, err)
	}

	put := func(key string, body []byte, ct string) {
		t.Helper()
		if err := s.Put(ctx, b, key, bytes.NewReader(body), ct); err != nil {
			t.Fatalf("Put %s: %v", key, err)
		}
	}
	get := func(key string) ([]byte, error) {
		t.Helper()
		r, err := s.Get(ctx, b, key)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	prefix := "stAbc/st-1234567890123/pAbc/1700000000000/"
	keys := []string{
		prefix + "events/recording-started.json",
		prefix + "media/hls/high/1.mp4",
		prefix + "media/hls/high/10.mp4",
		prefix + "media/hls/high/2.mp4",
		prefix + "media/hls/high/playlist.m3u8",
		prefix + "media/hls/multivariant.m3u8",
		"stAbc/st-1234567890123/pAbc/1700000000000.txt", // sorts before the directory of the same name
	}
	for i, k := range keys {
		put(k, []byte(fmt.Sprintf("object %d", i)), "application/octet-stream")
	}
	for i, k := range keys {
		got, err := get(k)
		if err != nil || string(got) != fmt.Sprintf("object %d", i) {
			t.Fatalf("Get %s = %q, %v", k, got, err)
		}
	}
	put(keys[0], []byte(`{"recording_status":"RECORDING_STARTED"}`), "application/json") // replaces
	if got, err := get(keys[0]); err != nil || string(got) != `{"recording_status":"RECORDING_STARTED"}` {
		t.Fatalf("Get after a replacing Put = %q, %v", got, err)
	}
	put(prefix+"empty", nil, "")
	if got, err := get(prefix + "empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get of an empty object = %q, %v", got, err)
	}
	if _, err := get(prefix + "missing.mp4"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := get(prefix + "media"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a key that is only a prefix of others: %v, want ErrNotFound", err)
	}
	for _, k := range []string{"", "/abs", "a//b", "../up", "a/../../up"} {
		if err := s.Put(ctx, b, k, bytes.NewReader(nil), ""); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Put %q: %v, want ErrInvalidKey", k, err)
		}
	}

	list := func(p string) []string {
		t.Helper()
		objs, err := s.List(ctx, b, p)
		if err != nil {
			t.Fatalf("List %q: %v", p, err)
		}
		out := []string{}
		for _, o := range objs {
			out = append(out, o.Key)
		}
		return out
	}
	all := slices.Sorted(slices.Values(append(slices.Clone(keys), prefix+"empty")))
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"stAbc/", all},
		{"stAbc/st-1234567890123/pAbc/1700000000000", all},
		{prefix, all[1:]},
		{prefix + "media/hls/high/1", []string{prefix + "media/hls/high/1.mp4", prefix + "media/hls/high/10.mp4"}},
		{prefix + "media/hls/", []string{prefix + "media/hls/high/1.mp4", prefix + "media/hls/high/10.mp4",
			prefix + "media/hls/high/2.mp4", prefix + "media/hls/high/playlist.m3u8", prefix + "media/hls/multivariant.m3u8"}},
		{prefix + "events/recording-started.json", []string{prefix + "events/recording-started.json"}},
		{"nothing/", []string{}},
		{prefix + "media/hls/high/1.mp4/", []string{}},
	} {
		if got := list(tc.prefix); !slices.Equal(got, tc.want) {
			t.Fatalf("List %q:\n got  %q\n want %q", tc.prefix, got, tc.want)
		}
	}
	objs, err := s.List(ctx, b, prefix+"media/hls/high/2")
	if err != nil || len(objs) != 1 || objs[0].Size != int64(len("object 3")) {
		t.Fatalf("List sizes: %+v, %v", objs, err)
	}

	for _, k := range keys[1:4] {
		if err := s.Delete(ctx, b, k); err != nil {
			t.Fatalf("Delete %s: %v", k, err)
		}
	}
	if err := s.Delete(ctx, b, keys[1]); err != nil {
		t.Fatalf("Delete of a key already deleted: %v", err)
	}
	if _, err := get(keys[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if got, want := list(prefix+"media/"), []string{prefix + "media/hls/high/playlist.m3u8", prefix + "media/hls/multivariant.m3u8"}; !slices.Equal(got, want) {
		t.Fatalf("List after deletes: %q, want %q", got, want)
	}

	// A large object (a long segment at a high bitrate) comes back whole; on S3 it is uploaded in parts.
	big := make([]byte, 12<<20+12345)
	for i := range big {
		big[i] = byte(i*7 + i>>13)
	}
	put(prefix+"media/hls/high/3.mp4", big, "video/mp4")
	got, err := get(prefix + "media/hls/high/3.mp4")
	if err != nil || sha256.Sum256(got) != sha256.Sum256(big) {
		t.Fatalf("Get of a %d-byte object: %d bytes, %v", len(big), len(got), err)
	}

	// A reader never sees part of an object while it is being replaced.
	a, z := bytes.Repeat([]byte{'a'}, 1<<20), bytes.Repeat([]byte{'z'}, 1<<20)
	key := prefix + "media/latest_thumbnail/high/thumb.jpg"
	put(key, a, "image/jpeg")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := a
			if i%2 == 1 {
				body = z
			}
			if err := s.Put(ctx, b, key, bytes.NewReader(body), "image/jpeg"); err != nil {
				t.Errorf("Put while reading: %v", err)
				return
			}
		}
	})
	deadline := time.Now().Add(2 * time.Second)
	reads := 0
	for ; reads < 20 || time.Now().Before(deadline) && reads < 200; reads++ {
		got, err := get(key)
		if err != nil {
			t.Errorf("Get while writing: %v", err)
			break
		}
		if !bytes.Equal(got, a) && !bytes.Equal(got, z) {
			t.Errorf("read %d: a partial or mixed object of %d bytes", reads, len(got))
			break
		}
	}
	close(stop)
	wg.Wait()

	// A cancelled Put stores nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, b, prefix+"cancelled", bytes.NewReader([]byte("x")), ""); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if _, err := get(prefix + "cancelled"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after a cancelled Put: %v", err)
	}
}
