//go:build unix

package recording_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/recording"
)

// BenchmarkRecordCamera measures the recorder's own CPU per recorded second of the camera-like fixture
// (H.264 320x180 15 fps and Opus, as the pion publishers send it): copying each packet off the
// forwarding goroutine, depacketizing, muxing fMP4 and writing segments and playlists to the directory
// store (each fsynced). One op is one second of media; cpu-ms/s is the process's CPU (user+system, every
// goroutine) per recorded second, so it includes the packetizing done by this benchmark's publisher.
func BenchmarkRecordCamera(b *testing.B) {
	store := newDir(b)
	r := recording.Start(recording.Config{Store: store, Bucket: "b-1", Prefix: "s/x/p/1", Video: true, Target: 2 * time.Second})
	r.Attach(&source{})
	start := cpuTime()
	b.ResetTimer()
	publish(b, r, time.Duration(b.N)*time.Second, true)
	r.Stop(context.Background())
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
