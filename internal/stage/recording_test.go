package stage_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/clock"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/stage"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/teststore"
)

// The domain's side of recording (recording.go), with a fake media plane and a fake recorder: who is
// recorded when, the states stored, the reconnect window on the domain's clock, the UpdateStage conflict,
// and crash recovery.

type okBuckets struct{}

func (okBuckets) Prepare(context.Context, string) error { return nil }

// fakeRecorders records what the domain asks of the recorder.
type fakeRecorders struct {
	mu       sync.Mutex
	log      []string
	recs     []*fakeRecording
	finished []string
}

func (f *fakeRecorders) note(s string) { f.mu.Lock(); f.log = append(f.log, s); f.mu.Unlock() }

func (f *fakeRecorders) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fakeRecorders) Record(req stage.RecordingRequest) stage.Recording {
	r := &fakeRecording{f: f, req: req}
	f.mu.Lock()
	f.recs = append(f.recs, r)
	f.mu.Unlock()
	f.note("record " + req.Prefix)
	return r
}

func (f *fakeRecorders) Finish(_ context.Context, bucket, prefix, _ string) error {
	f.mu.Lock()
	f.finished = append(f.finished, bucket+"/"+prefix)
	f.mu.Unlock()
	return nil
}

type fakeRecording struct {
	f   *fakeRecorders
	req stage.RecordingRequest
}

func (r *fakeRecording) Attach(src stage.Tappable) {
	src.SetSink(r)
	r.f.note("attach")
}
func (r *fakeRecording) Detach(src stage.Tappable) {
	src.SetSink(nil)
	r.f.note("detach")
}
func (r *fakeRecording) Stop(context.Context) {
	r.f.note("stop")
	r.req.OnState(ivs.RecordingStopping)
	r.req.OnState(ivs.RecordingStopped)
}
func (r *fakeRecording) WriteRTP(bool, []byte) {}

// tapPlane is a media plane whose publishes can be tapped; a publish's media starts when the test says.
type tapPlane struct {
	mu    sync.Mutex
	conns []*tapConn
}

type tapConn struct {
	h    stage.MediaHooks
	mu   sync.Mutex
	sink stage.PacketSink
	once sync.Once
}

func (c *tapConn) Close()                       { c.once.Do(c.h.OnClosed) }
func (c *tapConn) AddICECandidate(string) error { return nil }
func (c *tapConn) RequestKeyframe()             {}
func (c *tapConn) SetSink(s stage.PacketSink)   { c.mu.Lock(); c.sink = s; c.mu.Unlock() }
func (c *tapConn) tapped() bool                 { c.mu.Lock(); defer c.mu.Unlock(); return c.sink != nil }

func (p *tapPlane) Publish(_ context.Context, _ ivs.StageID, _ ivs.ParticipantID, _ string, h stage.MediaHooks) (stage.MediaConn, string, error) {
	c := &tapConn{h: h}
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
	return c, "answer", nil
}

func (p *tapPlane) Subscribe(context.Context, stage.MediaConn, string, string, stage.MediaHooks) (stage.MediaConn, string, error) {
	return nil, "", errors.New("not in this test")
}

type recEnv struct {
	svc     *stage.Service
	st      store.Store
	clk     *clock.Fake
	rec     *fakeRecorders
	arn     string
	spec    *stage.RecordingSpec
	publish func() (*stage.MediaSession, *tapConn)
	get     func() ivs.Participant
}

func newRecEnv(t *testing.T) recEnv {
	t.Helper()
	ctx := context.Background()
	st := teststore.Open(t)
	clk := clock.NewFake(t0)
	rec := &fakeRecorders{}
	svc := stage.New(stage.Config{Account: ivs.Account{Region: "us-east-1", ID: "000000000000"},
		WHIPURL: "http://127.0.0.1/whip", EventsURL: "ws://127.0.0.1/events", SessionEndGrace: grace,
		Buckets: okBuckets{}, Recorders: rec}, st, clk, testSigner, nil)
	t.Cleanup(func() { _ = svc.Shutdown(ctx) })
	plane := &tapPlane{}
	svc.SetMedia(plane, nil)
	sc, err := svc.CreateStorageConfiguration(ctx, "rec", "bucket-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := &stage.RecordingSpec{StorageConfigurationARN: sc.ARN, Config: ivs.AutoRecording{ReconnectWindowSeconds: 5}}
	v, _, err := svc.CreateStageWith(ctx, "recorded", nil, nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := svc.CreateParticipantToken(ctx, v.ARN, stage.TokenSpec{UserID: "u", Capabilities: []stage.Capability{stage.CapPublish}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := svc.Authenticate(ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	publish := func() (*stage.MediaSession, *tapConn) {
		t.Helper()
		m, _, err := svc.Publish(ctx, stage.MediaRequest{Claims: claims, Offer: "offer"})
		if err != nil {
			t.Fatal(err)
		}
		plane.mu.Lock()
		c := plane.conns[len(plane.conns)-1]
		plane.mu.Unlock()
		c.h.OnConnected() // media flows
		return m, c
	}
	get := func() ivs.Participant {
		t.Helper()
		sid, pid := mustSession(t, svc, v.ARN), ivs.ParticipantID(claims.ParticipantID)
		p, err := svc.GetParticipant(ctx, v.ARN, sid, pid)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return recEnv{svc: svc, st: st, clk: clk, rec: rec, arn: v.ARN, spec: spec, publish: publish, get: get}
}

func TestRecordingLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newRecEnv(t)
	svc, st, clk, rec, spec, publish, get := e.svc, e.st, e.clk, e.rec, e.spec, e.publish, e.get
	v := struct{ ARN string }{e.arn}

	_, c1 := publish()
	p := get()
	if p.Recording.State != ivs.RecordingStarting || p.Recording.BucketName != "bucket-1" ||
		p.Recording.Prefix == "" || !c1.tapped() {
		t.Fatalf("after the publish: %+v, tapped %v", p.Recording, c1.tapped())
	}
	prefix := p.Recording.Prefix
	rec.recs[0].req.OnState(ivs.RecordingActive)
	if got := get().Recording.State; got != ivs.RecordingActive {
		t.Fatalf("state %s, want ACTIVE", got)
	}
	// The configuration cannot change while recording; the same configuration again is no change.
	if _, err := svc.UpdateStageWith(ctx, v.ARN, nil, &stage.RecordingSpec{}); !errors.Is(err, stage.ErrRecordingActive) {
		t.Fatalf("UpdateStage while recording: %v", err)
	}
	if _, err := svc.UpdateStageWith(ctx, v.ARN, nil, spec); err != nil {
		t.Fatalf("UpdateStage with the same configuration: %v", err)
	}

	// The publish ends; another within the window continues the same recording.
	c1.Close()
	if c1.tapped() {
		t.Fatal("an ended publish is still tapped")
	}
	clk.Advance(4 * time.Second)
	_, c2 := publish()
	if !c2.tapped() || get().Recording.Prefix != prefix {
		t.Fatalf("the second publish: tapped %v, %+v", c2.tapped(), get().Recording)
	}
	c2.Close()
	clk.Advance(4 * time.Second)
	if slices.Contains(rec.calls(), "stop") {
		t.Fatalf("stopped inside the window: %q", rec.calls())
	}
	clk.Advance(2 * time.Second)
	waitFor(t, func() bool { return get().Recording.State == ivs.RecordingStopped })
	if want := []string{"record " + prefix, "attach", "detach", "attach", "detach", "stop"}; !slices.Equal(rec.calls(), want) {
		t.Fatalf("recorder calls %q, want %q", rec.calls(), want)
	}
	// The start and the end were announced, once each, as IVS's EventBridge names them (the webhooks and the
	// event stream read them from the notification log).
	var announced []string
	notes, err := st.ListNotifications(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		if strings.HasPrefix(n.Kind, "RECORDING_") {
			var d map[string]string
			_ = json.Unmarshal(n.Detail, &d)
			if d["recording_s3_bucket_name"] != "bucket-1" || d["recording_s3_key_prefix"] != prefix || d["participant_id"] != string(get().ID) {
				t.Fatalf("recording notification %s: %s", n.Kind, n.Detail)
			}
			announced = append(announced, n.Kind+" "+d["event_name"])
		}
	}
	if want := []string{"RECORDING_STARTED Recording Start", "RECORDING_ENDED Recording End"}; !slices.Equal(announced, want) {
		t.Fatalf("recording notifications %q, want %q", announced, want)
	}
	ps, err := svc.ListParticipants(ctx, v.ARN, get().SessionID, stage.ParticipantQuery{RecordingState: "STOPPED"}, store.Page{Limit: 10})
	if err != nil || len(ps) != 1 {
		t.Fatalf("filterByRecordingState STOPPED: %v %v", ps, err)
	}
	if _, err := svc.UpdateStageWith(ctx, v.ARN, nil, &stage.RecordingSpec{}); err != nil {
		t.Fatalf("UpdateStage after the recording: %v", err)
	}

	// A recording a crash left ACTIVE: recovery finishes its files and makes it FAILED.
	sid := get().SessionID
	err = st.Update(ctx, func(tx store.Tx) error {
		return tx.SetParticipantRecording(ctx, get().StageID, sid, get().ID, ivs.ParticipantRecording{BucketName: "bucket-1", Prefix: prefix, State: ivs.RecordingActive})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get().Recording; got.State != ivs.RecordingFailed || got.Prefix != prefix {
		t.Fatalf("after recovery: %+v", got)
	}
	if !slices.Equal(rec.finished, []string{"bucket-1/" + prefix}) {
		t.Fatalf("finished %q", rec.finished)
	}
}

func mustSession(t *testing.T, svc *stage.Service, arn string) ivs.SessionID {
	t.Helper()
	ss, err := svc.ListSessions(context.Background(), arn, store.Page{Limit: 1})
	if err != nil || len(ss) == 0 {
		t.Fatalf("sessions: %v %v", ss, err)
	}
	return ss[0].ID
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5 s")
}

// TestRecordingDisplacedPublish: a new publish with the same token takes the recording over from the one it
// displaces, whose packets stop going to it at once.
func TestRecordingDisplacedPublish(t *testing.T) {
	e := newRecEnv(t)
	_, c1 := e.publish()
	_, c2 := e.publish()
	if c1.tapped() || !c2.tapped() {
		t.Fatalf("after the displacement: old tapped %v, new tapped %v", c1.tapped(), c2.tapped())
	}
	waitFor(t, func() bool { return slices.Contains(e.rec.calls(), "detach") })
	c1.Close()
	if want := []string{"record " + e.get().Recording.Prefix, "attach", "detach", "attach"}; !slices.Equal(e.rec.calls(), want) {
		t.Fatalf("recorder calls %q, want %q", e.rec.calls(), want)
	}
	if !c2.tapped() {
		t.Fatal("the displaced publish's end untapped the new one")
	}
}

// TestAdoptEndsAGoneRecordersRecording: a node taking a stage over (Adopt) ends the recordings the store shows
// unfinished that no recorder of its own holds — a dead node's, whose session may already have ended while the
// recording waited in its reconnect window — finishing their files and announcing the failure; the recording
// its own recorder holds on another stage is not touched.
func TestAdoptEndsAGoneRecordersRecording(t *testing.T) {
	ctx := context.Background()
	e := newRecEnv(t)
	_, _ = e.publish() // this process's own recording, on e's stage
	own := e.get()
	e.rec.recs[0].req.OnState(ivs.RecordingActive)

	// Another stage, whose participant a gone process was recording: its session ended, its recording ACTIVE.
	v, _, err := e.svc.CreateStageWith(ctx, "taken-over", nil, nil, e.spec)
	if err != nil {
		t.Fatal(err)
	}
	other := ivs.StageID(ivs.LastSegment(v.ARN))
	sid, pid := ivs.NewSessionID(), ivs.ParticipantID("gonepublisher")
	rs := ivs.ParticipantRecording{BucketName: "bucket-1", Prefix: string(other) + "/" + string(sid) + "/gonepublisher/1", State: ivs.RecordingActive}
	err = e.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertSession(ctx, ivs.Session{StageID: other, ID: sid, StartTime: t0, EndTime: t0.Add(time.Minute)}); err != nil {
			return err
		}
		if err := tx.PutParticipant(ctx, ivs.Participant{StageID: other, SessionID: sid, ID: pid, State: ivs.StateDisconnected, FirstJoinTime: t0}); err != nil {
			return err
		}
		return tx.SetParticipantRecording(ctx, other, sid, pid, rs)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Adopt(ctx, other); err != nil {
		t.Fatal(err)
	}
	p, err := e.st.GetParticipant(ctx, other, sid, pid)
	if err != nil || p.Recording.State != ivs.RecordingFailed || p.Recording.Prefix != rs.Prefix {
		t.Fatalf("the gone recorder's recording after Adopt: %+v %v", p.Recording, err)
	}
	if !slices.Contains(e.rec.finished, "bucket-1/"+rs.Prefix) {
		t.Fatalf("its files were not finished: %q", e.rec.finished)
	}
	notes, err := e.st.ListNotifications(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, n := range notes {
		if n.Kind == "RECORDING_END_FAILED" && n.StageID == other {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d RECORDING_END_FAILED notifications for the taken-over stage, want 1", failed)
	}
	if got := e.get().Recording; got.State != ivs.RecordingActive || got.Prefix != own.Recording.Prefix {
		t.Fatalf("this process's own recording after adopting another stage: %+v", got)
	}
}
