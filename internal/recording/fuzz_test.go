package recording_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/openstage/openstage/internal/recording"
	"github.com/openstage/openstage/internal/recording/bucket"
)

// FuzzRecorderPackets: whatever a publisher sends (the packets reach the recorder as they came from the
// network, after SRTP), the recorder neither panics nor hangs, and ends.
func FuzzRecorderPackets(f *testing.F) {
	vp := rtp.NewPacketizer(1200, 102, 1, &codecs.H264Payloader{}, rtp.NewFixedSequencer(1), 90000)
	au := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0, 0, 0, 1, 0x68, 0xcb, 0x83, 0xcb, 0x20, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00}
	var seeds [][]byte
	for _, p := range vp.Packetize(au, 6000) {
		b, _ := p.Marshal()
		seeds = append(seeds, b)
	}
	f.Add(true, seeds[0], seeds[len(seeds)-1], []byte{0x80, 0xe0, 0, 3, 0, 0, 0x17, 0x70, 0, 0, 0, 1, 0x7c, 0x85, 1, 2})
	f.Add(false, []byte{0x80, 0xef, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0xfc, 0xff}, []byte{}, []byte{0x80})
	store := memStore{}
	f.Fuzz(func(t *testing.T, video bool, a, b, c []byte) {
		r := recording.Start(recording.Config{Store: store, Bucket: "b-1", Prefix: "s/x/p/1", Video: true, Target: 2 * time.Second})
		r.Attach(&source{})
		for _, p := range [][]byte{a, b, c, a, c} {
			r.WriteRTP(video, p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Stop(ctx)
		select {
		case <-r.Done():
		default:
			t.Fatal("the recorder did not end")
		}
	})
}

// memStore is a bucket that keeps nothing: the fuzz target exercises the recorder, not the disk.
type memStore struct{}

func (memStore) Prepare(context.Context, string) error        { return nil }
func (memStore) Exists(context.Context, string) (bool, error) { return true, nil }
func (memStore) Put(_ context.Context, _, _ string, body io.Reader, _ string) error {
	_, err := io.Copy(io.Discard, body)
	return err
}
func (memStore) Get(context.Context, string, string) (io.ReadCloser, error) {
	return nil, bucket.ErrNotFound
}
func (memStore) List(context.Context, string, string) ([]bucket.Object, error) {
	return nil, nil
}
func (memStore) Delete(context.Context, string, string) error { return nil }
func (memStore) Close() error                                 { return nil }
