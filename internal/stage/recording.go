package stage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/notify"
	"github.com/openstage/openstage/internal/store"
)

// Individual participant recording (docs/DESIGN.md §7): the domain decides who is recorded and for how
// long; the recorder (internal/recording, through Recorders) writes the files and reports its state, which
// the domain stores with the participant (recordingState, recordingS3BucketName, recordingS3Prefix).
//
// A participant's recording starts when its first publish on a recording stage has media and the domain
// has taken it as the participant's publish (StartPublish). The recorder is one more consumer of that
// publish's packets (Tappable). When the publish ends the recording waits the stage's
// recordingReconnectWindowSeconds: a publish of the same participant in the same session within it
// continues the recording (same prefix, a discontinuity in the playlist); otherwise the recording stops.

// PacketSink receives a copy of a publish's packets: the recorder. WriteRTP is called on the media plane's
// forwarding goroutine; it copies what it keeps and never blocks.
type PacketSink interface {
	WriteRTP(video bool, raw []byte)
}

// Tappable is what a publish's MediaConn may also offer: its packets for a sink, and keyframes on demand
// (a recording starts at one).
type Tappable interface {
	SetSink(PacketSink) // nil removes the sink
	RequestKeyframe()
}

// Recorders make recordings (internal/recording implements it; see NewRecorders).
type Recorders interface {
	// Record begins a recording: recording-started.json is written, and OnState reports the states that
	// follow (ACTIVE, STOPPING, STOPPED or FAILED), in order, from the recorder's goroutine.
	Record(RecordingRequest) Recording
	// Finish ends a recording a stopped process left unfinished: its playlist gets EXT-X-ENDLIST (it lists
	// only segments that were written, so it plays) and recording-failed.json says why.
	Finish(ctx context.Context, bucket, prefix, reason string) error
}

// RecordingRequest is one participant's recording.
type RecordingRequest struct {
	Bucket, Prefix string
	StageARN       string
	Session        ivs.SessionID
	Participant    ivs.ParticipantID
	Config         ivs.AutoRecording // with its defaults spelled out
	OnState        func(ivs.RecordingState)
}

// Recording is one participant's recording in progress.
type Recording interface {
	// Attach makes src's packets the recording's media; a second Attach continues after a discontinuity.
	Attach(src Tappable)
	// Detach ends src's part: it stops tapping it, and what it sent is written out.
	Detach(src Tappable)
	// Stop ends the recording and waits until its files are written (or ctx ends).
	Stop(ctx context.Context)
}

type recordingKey struct {
	stage       ivs.StageID
	session     ivs.SessionID
	participant ivs.ParticipantID
}

// liveRecording is a recording of this node. Guarded by Service.recMu.
type liveRecording struct {
	rec    Recording
	rs     ivs.ParticipantRecording
	src    Tappable      // the publish recorded now; nil between publishes
	window time.Duration // recordingReconnectWindowSeconds
	timer  clock.Timer   // the reconnect window running, nil otherwise
}

// ErrRecordingActive: the stage's recording configuration cannot change while one of its participants is
// being recorded (the model's UpdateStage: "cannot be updated while recording is active").
var ErrRecordingActive = newError(KindConflict, "a recording of this stage is active")

// recordPublish starts, or continues, the recording of m's participant, if m is the participant's publish,
// its media is there, and the stage records. It is called when either becomes true; the second call does it.
func (s *Service) recordPublish(m *MediaSession) {
	m.mu.Lock()
	tap, ok := m.conn.(Tappable)
	if !m.published || m.conn == nil || m.recorded || m.closed || !ok || s.cfg.Recorders == nil {
		m.mu.Unlock()
		return
	}
	m.recorded = true
	m.mu.Unlock()
	ctx, cancel := hookContext()
	defer cancel()
	pr := m.pr
	st, err := s.store.GetStage(ctx, pr.Stage)
	if err != nil || !st.Recording.Enabled() {
		return
	}
	cfg := st.Recording.WithDefaults()
	if cfg.MediaType == ivs.MediaNone {
		return
	}
	key := recordingKey{pr.Stage, pr.Session, pr.ID}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if lr := s.recs[key]; lr != nil {
		// The same participant publishing again: within the reconnect window, or displacing its own publish.
		if lr.timer != nil {
			lr.timer.Stop()
			lr.timer = nil
		}
		if lr.src != nil && lr.src != tap {
			// The displaced publish is still closing: its packets must not mix with the new one's.
			lr.rec.Detach(lr.src)
		}
		lr.src = tap
		lr.rec.Attach(tap)
		return
	}
	sc, err := s.store.GetStorageConfiguration(ctx, cfg.StorageConfigurationID)
	if err != nil {
		s.log.Error("stage: recording: storage configuration", "stage", pr.Stage, "participant", pr.ID, "err", err)
		return
	}
	// IVS's layout: <stageId>/<sessionId>/<participantId>/<recording start, epoch ms>.
	rs := ivs.ParticipantRecording{BucketName: sc.BucketName, State: ivs.RecordingStarting,
		Prefix: fmt.Sprintf("%s/%s/%s/%d", pr.Stage, pr.Session, pr.ID, s.now().UnixMilli())}
	if err := s.setRecording(ctx, key, rs); err != nil {
		s.log.Error("stage: recording: store the recording state", "stage", pr.Stage, "participant", pr.ID, "err", err)
		return
	}
	lr := &liveRecording{rs: rs, src: tap, window: time.Duration(cfg.ReconnectWindowSeconds) * time.Second}
	lr.rec = s.cfg.Recorders.Record(RecordingRequest{Bucket: rs.BucketName, Prefix: rs.Prefix,
		StageARN: s.cfg.Account.StageARN(pr.Stage), Session: pr.Session, Participant: pr.ID, Config: cfg,
		OnState: func(state ivs.RecordingState) { s.recordingState(key, lr, state) }})
	s.recs[key] = lr
	lr.rec.Attach(tap)
	s.log.Info("stage: recording", "stage", pr.Stage, "participant", pr.ID, "bucket", rs.BucketName, "prefix", rs.Prefix)
}

// recordingState stores a state the recorder reports; a final one forgets the recording.
func (s *Service) recordingState(key recordingKey, lr *liveRecording, state ivs.RecordingState) {
	s.recMu.Lock()
	prev := lr.rs.State
	lr.rs.State = state
	rs := lr.rs
	if state == ivs.RecordingStopped || state == ivs.RecordingFailed {
		if s.recs[key] == lr {
			delete(s.recs, key)
		}
		if lr.timer != nil {
			lr.timer.Stop()
			lr.timer = nil
		}
	}
	s.recMu.Unlock()
	ctx, cancel := hookContext()
	defer cancel()
	if err := s.setRecordingNotified(ctx, key, prev, rs); errors.Is(err, store.ErrNotFound) {
		// DeleteStage or the retention job deleted the participant: its recording stays in the bucket.
		s.log.Info("stage: recording of a deleted participant", "stage", key.stage, "participant", key.participant, "state", state)
	} else if err != nil {
		s.log.Error("stage: recording: store the recording state", "stage", key.stage, "participant", key.participant,
			"state", state, "err", err)
	}
}

// setRecordingNotified stores the state as setRecording does and, in the same transaction, the notification
// of the change when IVS announces it (notify.RecordingKind), for the webhooks and the event stream.
func (s *Service) setRecordingNotified(ctx context.Context, key recordingKey, prev ivs.RecordingState, rs ivs.ParticipantRecording) error {
	kind, announce := notify.RecordingKind(prev, rs.State)
	return s.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.SetParticipantRecording(ctx, key.stage, key.session, key.participant, rs); err != nil {
			return err
		}
		if !announce {
			return nil
		}
		return tx.AppendNotification(ctx, notify.FromRecording(kind, key.stage, key.session, key.participant, rs, s.now()))
	})
}

func (s *Service) setRecording(ctx context.Context, key recordingKey, rs ivs.ParticipantRecording) error {
	return s.store.Update(ctx, func(tx store.Tx) error {
		return tx.SetParticipantRecording(ctx, key.stage, key.session, key.participant, rs)
	})
}

// unrecordPublish is m's publish ending: its part of the recording is written out, and the recording
// stops, at once or when the reconnect window passes without another publish.
func (s *Service) unrecordPublish(m *MediaSession) {
	m.mu.Lock()
	recorded := m.recorded
	tap, _ := m.conn.(Tappable)
	m.mu.Unlock()
	if !recorded || tap == nil {
		return
	}
	key := recordingKey{m.pr.Stage, m.pr.Session, m.pr.ID}
	s.recMu.Lock()
	lr := s.recs[key]
	if lr == nil || lr.src != tap {
		s.recMu.Unlock()
		return // a newer publish of the participant is recorded now
	}
	lr.src = nil
	lr.rec.Detach(tap)
	if lr.window > 0 && !s.isClosed() {
		lr.timer = s.clock.AfterFunc(lr.window, func() { s.stopRecording(key, lr) })
		s.recMu.Unlock()
		return
	}
	stop := s.stopRecordingLocked(key, lr)
	s.recMu.Unlock()
	stop()
}

// stopRecording ends a recording whose reconnect window passed, unless a publish came back meanwhile.
func (s *Service) stopRecording(key recordingKey, lr *liveRecording) {
	s.recMu.Lock()
	if s.recs[key] != lr || lr.src != nil {
		s.recMu.Unlock()
		return
	}
	stop := s.stopRecordingLocked(key, lr)
	s.recMu.Unlock()
	stop()
}

// stopRecordingLocked forgets the recording; the function it returns, called after s.recMu is released
// (the recorder reports its last states through it), stops the recording in a goroutine the Service owns
// (Shutdown waits), or at once after Shutdown. s.recMu must be held. Lock order: s.recMu before s.mu.
func (s *Service) stopRecordingLocked(key recordingKey, lr *liveRecording) func() {
	delete(s.recs, key)
	if lr.timer != nil {
		lr.timer.Stop()
		lr.timer = nil
	}
	return func() {
		s.spawn(func() {
			ctx, cancel := context.WithTimeout(context.Background(), recordingStopTimeout)
			defer cancel()
			lr.rec.Stop(ctx)
		})
	}
}

// recordingStopTimeout bounds the writing of a recording's last files.
const recordingStopTimeout = time.Minute

// stopRecordings stops every recording of this node (shutdown), reconnect windows included: each ends
// STOPPED with a VOD-complete playlist.
func (s *Service) stopRecordings() {
	s.recMu.Lock()
	var stops []func()
	for key, lr := range s.recs {
		if lr.src != nil {
			lr.rec.Detach(lr.src)
			lr.src = nil
		}
		stops = append(stops, s.stopRecordingLocked(key, lr))
	}
	s.recMu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

func (s *Service) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// recordingActiveOn reports whether a participant of the stage is being recorded: by this node (its
// recordings in progress, including those in their reconnect window), or by any node according to the
// store (the stage's active session). tx is the UpdateStage's transaction.
func (s *Service) recordingActiveOn(ctx context.Context, tx store.Tx, st ivs.Stage) (bool, error) {
	s.recMu.Lock()
	for key := range s.recs {
		if key.stage == st.ID {
			s.recMu.Unlock()
			return true, nil
		}
	}
	s.recMu.Unlock()
	if st.ActiveSessionID == "" {
		return false, nil
	}
	for _, state := range []ivs.RecordingState{ivs.RecordingStarting, ivs.RecordingActive, ivs.RecordingStopping} {
		ps, err := tx.ListParticipants(ctx, st.ID, st.ActiveSessionID, store.ParticipantFilter{RecordingState: state}, store.Page{Limit: 1})
		if err != nil {
			return false, err
		}
		if len(ps) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// finishRecording makes the files of a recording a stopped process left complete (Recorders.Finish).
// Finishing twice is harmless: the playlist already ends.
func (s *Service) finishRecording(rs ivs.ParticipantRecording) {
	if s.cfg.Recorders == nil || rs.BucketName == "" || rs.Prefix == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordingStopTimeout)
	defer cancel()
	if err := s.cfg.Recorders.Finish(ctx, rs.BucketName, rs.Prefix, "openstage stopped while recording: the playlist lists the segments written before it stopped"); err != nil {
		s.log.Warn("stage: recovery: finish a recording's files", "bucket", rs.BucketName, "prefix", rs.Prefix, "err", err)
	}
}

// recoverRecordings ends the recordings a stopped process left unfinished (STARTING, ACTIVE or STOPPING in
// the store): their playlists are made VOD-complete and they become FAILED, with recording-failed.json
// saying why (SPEC §7: the recordingState is not left ACTIVE after a restart).
func (s *Service) recoverRecordings(ctx context.Context) (int, error) {
	return s.endOrphanRecordings(ctx, "")
}

// endOrphanRecordings ends, as recoverRecordings does, the unfinished recordings of the stage (of every stage
// when stage is "") that no recorder of this process holds: their recorder was in a process that is gone (this
// one before a crash, or a dead node whose stage this node takes over, placement.go). A recording of this
// process in its reconnect window is left alone. Each becomes FAILED, announced as IVS's "Recording End
// Failure" (or "Recording Start Failure" before its first segment).
func (s *Service) endOrphanRecordings(ctx context.Context, stage ivs.StageID) (int, error) {
	ps, err := s.store.UnfinishedRecordings(ctx)
	if err != nil {
		return 0, err
	}
	ended := 0
	for _, p := range ps {
		key := recordingKey{p.StageID, p.SessionID, p.ID}
		s.recMu.Lock()
		_, mine := s.recs[key]
		s.recMu.Unlock()
		if mine || (stage != "" && p.StageID != stage) {
			continue
		}
		rs := p.Recording
		prev := rs.State
		s.finishRecording(rs)
		rs.State = ivs.RecordingFailed
		if err := s.setRecordingNotified(ctx, key, prev, rs); err != nil {
			return ended, fmt.Errorf("stage: end the recording of %s: %w", p.ID, err)
		}
		ended++
	}
	return ended, nil
}
