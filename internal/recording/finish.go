package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/openstage/openstage/internal/recording/bucket"
	"github.com/openstage/openstage/internal/recording/hls"
)

// Finish ends a recording that a stopped process left unfinished (crash recovery): its playlist, which
// lists only segments that were written in full (a segment is written before the playlist that lists it),
// gets EXT-X-ENDLIST so that players read it as the complete recording it now is, and
// recording-failed.json says why the recording ended. A recording with no playlist yet gets only the
// event.
func Finish(ctx context.Context, store bucket.Store, bucketName, prefix, reason string) error {
	put := func(name string, body []byte, contentType string) error {
		return store.Put(ctx, bucketName, Key(prefix, name), bytes.NewReader(body), contentType)
	}
	var segments int
	var dur time.Duration
	rc, err := store.Get(ctx, bucketName, Key(prefix, keyPlaylist))
	switch {
	case errors.Is(err, bucket.ErrNotFound):
	case err != nil:
		return fmt.Errorf("recording: finish %s: %w", prefix, err)
	default:
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("recording: finish %s: %w", prefix, err)
		}
		p, err := hls.ParseMediaPlaylist(data)
		if err != nil {
			return fmt.Errorf("recording: finish %s: %w", prefix, err)
		}
		segments, dur = len(p.Entries), p.Duration()
		if !p.Ended {
			p.Ended = true
			if err := put(keyPlaylist, p.Encode(), "application/vnd.apple.mpegurl"); err != nil {
				return fmt.Errorf("recording: finish %s: %w", prefix, err)
			}
		}
	}
	e := event{Version: "v1", Event: "recording_failed", Time: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), Reason: reason}
	if segments > 0 {
		e.Media = &eventMedia{HLS: eventHLS{Path: "media/hls", Playlist: "multivariant.m3u8", Rendition: "high",
			DurationMs: dur.Milliseconds(), Segments: segments}}
	}
	// The started event names the stage, session and participant; the failed one repeats them.
	if rc, err := store.Get(ctx, bucketName, Key(prefix, keyStarted)); err == nil {
		var started event
		if json.NewDecoder(rc).Decode(&started) == nil {
			e.StageARN, e.SessionID, e.ParticipantID = started.StageARN, started.SessionID, started.ParticipantID
			if e.Media != nil && started.Media != nil {
				e.Media.HLS.MediaTypes, e.Media.HLS.TargetSegmentSecs = started.Media.HLS.MediaTypes, started.Media.HLS.TargetSegmentSecs
			}
		}
		rc.Close()
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := put(keyFailed, b, "application/json"); err != nil {
		return fmt.Errorf("recording: finish %s: %w", prefix, err)
	}
	return nil
}
