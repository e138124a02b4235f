package stage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/recording"
	"github.com/openstage/openstage/internal/recording/bucket"
)

// NewRecorders is the recorder of internal/recording, as the domain drives it: recordings go to the buckets
// of store, thumbnails are made with ffmpeg ("" when the server has none: stages that ask for thumbnails
// record without them, and say so).
func NewRecorders(store bucket.Store, ffmpeg string, m *recording.Metrics, log *slog.Logger) Recorders {
	if log == nil {
		log = slog.Default()
	}
	return &recorders{store: store, ffmpeg: ffmpeg, metrics: m, log: log}
}

type recorders struct {
	store   bucket.Store
	ffmpeg  string
	metrics *recording.Metrics
	log     *slog.Logger
}

func (r *recorders) Record(req RecordingRequest) Recording {
	c := req.Config
	th := recording.Thumbnails{}
	if c.ThumbnailMode == ivs.ThumbnailsInterval {
		th = recording.Thumbnails{Interval: time.Duration(c.ThumbnailInterval) * time.Second,
			Sequential: c.ThumbnailSequential, Latest: c.ThumbnailLatest}
	}
	rec := recording.Start(recording.Config{
		Store: r.store, Bucket: req.Bucket, Prefix: req.Prefix,
		StageARN: req.StageARN, SessionID: string(req.Session), ParticipantID: string(req.Participant),
		Video:  c.MediaType != ivs.MediaAudioOnly,
		Target: time.Duration(c.TargetSegmentSeconds) * time.Second, Thumbnails: th, FFmpeg: r.ffmpeg,
		OnState: func(s recording.State) {
			if req.OnState != nil {
				req.OnState(ivs.RecordingState(s))
			}
		},
		Log:     r.log.With("stage", req.StageARN, "participant", req.Participant),
		Metrics: r.metrics,
	})
	return &sfuRecording{rec: rec}
}

func (r *recorders) Finish(ctx context.Context, bucketName, prefix, reason string) error {
	return recording.Finish(ctx, r.store, bucketName, prefix, reason)
}

// sfuRecording connects a recorder to the publishes it records.
type sfuRecording struct {
	rec *recording.Recorder
	mu  sync.Mutex
}

// sinkOf adapts the recorder to a Tappable's sink.
type recorderSink struct{ rec *recording.Recorder }

func (s recorderSink) WriteRTP(video bool, raw []byte) { s.rec.WriteRTP(video, raw) }

func (r *sfuRecording) Attach(src Tappable) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rec.Attach(src) // first: packets tapped from here on belong to src's run
	src.SetSink(recorderSink{r.rec})
}

func (r *sfuRecording) Detach(src Tappable) {
	r.mu.Lock()
	defer r.mu.Unlock()
	src.SetSink(nil)
	r.rec.Detach()
}

func (r *sfuRecording) Stop(ctx context.Context) { r.rec.Stop(ctx) }
