package recording_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/openstage/openstage/internal/recording"
	"github.com/openstage/openstage/internal/recording/bucket"
)

// refusing is a bucket that takes the first n objects and refuses the rest, or holds every Put until
// released (a slow bucket).
type refusing struct {
	bucket.Store
	mu      sync.Mutex
	n       int
	hold    chan struct{} // nil: no holding
	refused int
}

var errRefused = errors.New("test: the bucket refuses the write")

func (b *refusing) Put(ctx context.Context, name, key string, body io.Reader, ct string) error {
	if b.hold != nil {
		select {
		case <-b.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.mu.Lock()
	if b.n <= 0 {
		b.refused++
		b.mu.Unlock()
		return errRefused
	}
	b.n--
	b.mu.Unlock()
	return b.Store.Put(ctx, name, key, body, ct)
}

func newDir(t testing.TB) bucket.Store {
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Prepare(context.Background(), "b-1"); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStorageRefusedFails: a bucket that refuses a write makes the recording FAILED (SPEC §7 "storage
// refused"), counted as a storage error; packets after that are dropped at once.
func TestStorageRefusedFails(t *testing.T) {
	store := &refusing{Store: newDir(t), n: 3} // started.json, init, first segment; the playlist is refused
	st := &states{}
	m := &recording.Metrics{}
	r := recording.Start(recording.Config{Store: store, Bucket: "b-1", Prefix: "s/x/p/1", Video: true, Target: 2 * time.Second,
		OnState: st.add, Metrics: m})
	r.Attach(&source{})
	publish(t, r, 5*time.Second, true)
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a recording whose bucket refuses writes did not end")
	}
	r.Stop(context.Background())
	if got := st.get(); len(got) == 0 || got[len(got)-1] != recording.StateFailed {
		t.Fatalf("states %v, want FAILED last", got)
	}
	if m.StorageErrors.Load() == 0 || m.Failed.Load() != 1 || m.Active.Load() != 0 {
		t.Fatalf("metrics: errors %d failed %d active %d", m.StorageErrors.Load(), m.Failed.Load(), m.Active.Load())
	}
}

// TestSlowBucketNeverBlocksWriteRTP: with a bucket that takes no write, WriteRTP (the SFU's forwarding
// goroutine) still returns at once; the queue fills and the recording fails instead.
func TestSlowBucketNeverBlocksWriteRTP(t *testing.T) {
	hold := make(chan struct{})
	store := &refusing{Store: newDir(t), n: 1 << 20, hold: hold}
	st := &states{}
	r := recording.Start(recording.Config{Store: store, Bucket: "b-1", Prefix: "s/x/p/1", Video: true, OnState: st.add})
	r.Attach(&source{})
	p := rtp.NewPacketizer(1200, 111, 1, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000)
	pkt, err := p.Packetize([]byte{0xfc, 1, 2, 3}, 960)[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 * recording.QueueLength {
		r.WriteRTP(false, pkt)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("%d WriteRTP calls took %v with a stuck bucket", 3*recording.QueueLength, d)
	}
	close(hold)
	select {
	case <-r.Done():
	case <-time.After(40 * time.Second):
		t.Fatal("an overrun recording did not end")
	}
	got := st.get()
	if len(got) == 0 || got[len(got)-1] != recording.StateFailed {
		t.Fatalf("states %v, want FAILED", got)
	}
}
