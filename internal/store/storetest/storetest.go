// Package storetest is the conformance suite every store.Store implementation passes: what the API and the
// stage domain rely on, stated as tests. An implementation's own test calls Run with a function that opens a
// fresh, empty store.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// Run runs the suite. open must return a fresh, empty store on every call; the caller registers its cleanup
// (t.Cleanup) and closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Stages", testStages},
		{"Sessions", testSessions},
		{"Participants", testParticipants},
		{"Events", testEvents},
		{"PublicKeys", testPublicKeys},
		{"Tags", testTags},
		{"Revocations", testRevocations},
		{"TimePrecision", testTimePrecision},
		{"OrderStages", testOrderStages},
		{"OrderPublicKeys", testOrderPublicKeys},
		{"OrderSessions", testOrderSessions},
		{"OrderParticipants", testOrderParticipants},
		{"ParticipantFilters", testParticipantFilters},
		{"OrderEvents", testOrderEvents},
		{"EmptyLists", testEmptyLists},
		{"TxErrorRollsBack", testTxErrorRollsBack},
		{"TxPanicRollsBack", testTxPanicRollsBack},
		{"TxIsolation", testTxIsolation},
		{"TxCanceledContext", testTxCanceledContext},
		{"ConcurrentLockStage", one(testConcurrentLockStage)},
		{"ConcurrentPutParticipant", one(testConcurrentPutParticipant)},
		{"ConcurrentAppendEvent", one(testConcurrentAppendEvent)},
		{"ConcurrentQuotaChecks", one(testConcurrentQuotaChecks)},
		{"Secrets", testSecrets},
		{"ConcurrentSecret", one(testConcurrentSecret)},
		{"ArbitraryStrings", testArbitraryStrings},
		{"DeepPages", testDeepPages},
		{"ActiveAndConnected", testActiveAndConnected},
		{"DeleteStageCascade", testDeleteStageCascade},
		{"DeleteEndedBefore", testDeleteEndedBefore},
		{"DeleteEndedBeforeMany", testDeleteEndedBeforeMany},
		{"EventHistories", testEventHistories},
		{"StorageConfigurations", testStorageConfigurations},
		{"OrderStorageConfigurations", testOrderStorageConfigurations},
		{"StageRecording", testStageRecording},
		{"ParticipantRecording", testParticipantRecording},
		{"ConcurrentStorageConfigurations", one(testConcurrentStorageConfigurations)},
		{"Notifications", testNotifications},
		{"NotificationRetention", testNotificationRetention},
		{"Deliveries", testDeliveries},
		{"ConcurrentNotifications", one(testConcurrentNotifications)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each test has a store of its own; a networked one waits more than it computes
			tc.fn(t, open(t))
		})
	}
}

// RunShared runs what several nodes on one database rely on. open must return two handles on one fresh,
// empty database (two Opens of the same file, schema or DSN), as two openstage processes would have; the
// caller closes them. Writes through either are seen by both, and the concurrency guarantees hold across
// them: the workers of each test alternate between the two handles.
func RunShared(t *testing.T, open func(t *testing.T) (store.Store, store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ss []store.Store)
	}{
		{"SeeEachOther", testSharedSeeEachOther},
		{"ConcurrentLockStage", testConcurrentLockStage},
		{"ConcurrentPutParticipant", testConcurrentPutParticipant},
		{"ConcurrentAppendEvent", testConcurrentAppendEvent},
		{"ConcurrentQuotaChecks", testConcurrentQuotaChecks},
		{"ConcurrentSecret", testConcurrentSecret},
		{"DeleteEndedBeforeTogether", testSharedDeleteEndedBefore},
		{"ConcurrentStorageConfigurations", testConcurrentStorageConfigurations},
		{"ConcurrentNotifications", testConcurrentNotifications},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tc.fn(t, []store.Store{a, b})
		})
	}
}

// one runs a test written for several handles on a single one.
func one(fn func(t *testing.T, ss []store.Store)) func(t *testing.T, s store.Store) {
	return func(t *testing.T, s store.Store) { fn(t, []store.Store{s}) }
}

// base is the suite's "now": a fixed instant well inside what every store can hold.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

func update(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// res carries a (value, error) pair so that a call's results can be checked in one expression:
// must(s.CountStages(ctx)).get(t).
type res[T any] struct {
	v   T
	err error
}

func must[T any](v T, err error) res[T] { return res[T]{v, err} }

func (r res[T]) get(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// norm makes values comparable with reflect.DeepEqual: times in UTC without a monotonic reading, and nil
// attribute maps as empty maps (a store may return either for "no attributes").
func normTime(t time.Time) time.Time { return t.UTC().Round(0) }

func normStage(s ivs.Stage) ivs.Stage { s.CreatedAt = normTime(s.CreatedAt); return s }

func normSession(s ivs.Session) ivs.Session {
	s.StartTime, s.EndTime = normTime(s.StartTime), normTime(s.EndTime)
	return s
}

func normParticipant(p ivs.Participant) ivs.Participant {
	p.FirstJoinTime = normTime(p.FirstJoinTime)
	if p.Attributes == nil {
		p.Attributes = map[string]string{}
	}
	return p
}

func normEvent(e ivs.Event) ivs.Event { e.Time = normTime(e.Time); return e }

func normKey(k ivs.PublicKey) ivs.PublicKey { k.CreatedAt = normTime(k.CreatedAt); return k }

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func eqList[T any](t *testing.T, what string, got, want []T, norm func(T) T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if g, w := norm(got[i]), norm(want[i]); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: row %d:\n got  %+v\n want %+v", what, i, g, w)
		}
	}
}

func newStage(created time.Time) ivs.Stage {
	return ivs.Stage{ID: ivs.NewStageID(), Name: "stage", CreatedAt: created}
}

func insertStage(t *testing.T, s store.Store, st ivs.Stage) ivs.Stage {
	t.Helper()
	update(t, s, func(tx store.Tx) error { return tx.InsertStage(t.Context(), st) })
	return st
}

func newParticipant(stage ivs.StageID, session ivs.SessionID, joined time.Time) ivs.Participant {
	return ivs.Participant{
		StageID:       stage,
		SessionID:     session,
		ID:            ivs.NewParticipantID(),
		UserID:        "user",
		State:         ivs.StateConnected,
		FirstJoinTime: joined,
		Attributes:    map[string]string{"k": "v"},
		Client:        ivs.ClientInfo{Protocol: ivs.ProtocolUnknown},
	}
}

// ---- CRUD ----

func testStages(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n := must(s.CountStages(ctx)).get(t); n != 0 {
		t.Fatalf("CountStages on an empty store = %d", n)
	}
	st := ivs.Stage{ID: ivs.NewStageID(), Name: "first stage", CreatedAt: at(1)}
	insertStage(t, s, st)
	eq(t, "GetStage", normStage(must(s.GetStage(ctx, st.ID)).get(t)), st)

	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertStage(ctx, ivs.Stage{ID: st.ID, Name: "dup", CreatedAt: at(2)})
	})
	wantErr(t, "InsertStage of an existing id", err, store.ErrExists)
	eq(t, "stage after a failed duplicate insert", normStage(must(s.GetStage(ctx, st.ID)).get(t)), st)

	_, err = s.GetStage(ctx, ivs.NewStageID())
	wantErr(t, "GetStage of an unknown id", err, store.ErrNotFound)

	// UpdateStage changes the name and the active session; the creation time is the stage's place in
	// ListStages and does not move.
	upd := st
	upd.Name, upd.ActiveSessionID, upd.CreatedAt = "renamed", ivs.NewSessionID(), at(99)
	update(t, s, func(tx store.Tx) error { return tx.UpdateStage(ctx, upd) })
	want := st
	want.Name, want.ActiveSessionID = upd.Name, upd.ActiveSessionID
	eq(t, "GetStage after UpdateStage", normStage(must(s.GetStage(ctx, st.ID)).get(t)), want)
	want.ActiveSessionID = ""
	update(t, s, func(tx store.Tx) error { return tx.UpdateStage(ctx, want) })
	eq(t, "GetStage after clearing the active session", normStage(must(s.GetStage(ctx, st.ID)).get(t)), want)

	err = s.Update(ctx, func(tx store.Tx) error { return tx.UpdateStage(ctx, newStage(at(3))) })
	wantErr(t, "UpdateStage of an unknown id", err, store.ErrNotFound)

	// LockStage reads the stage inside the transaction.
	update(t, s, func(tx store.Tx) error {
		got, err := tx.LockStage(ctx, st.ID)
		if err != nil {
			return err
		}
		eq(t, "LockStage", normStage(got), want)
		_, err = tx.LockStage(ctx, ivs.NewStageID())
		wantErr(t, "LockStage of an unknown id", err, store.ErrNotFound)
		return nil
	})

	for i := range 4 {
		insertStage(t, s, newStage(at(10+i)))
	}
	if n := must(s.CountStages(ctx)).get(t); n != 5 {
		t.Fatalf("CountStages = %d, want 5", n)
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteStage(ctx, st.ID) })
	_, err = s.GetStage(ctx, st.ID)
	wantErr(t, "GetStage after DeleteStage", err, store.ErrNotFound)
	if n := must(s.CountStages(ctx)).get(t); n != 4 {
		t.Fatalf("CountStages after a delete = %d, want 4", n)
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteStage(ctx, st.ID) })
	wantErr(t, "DeleteStage of an unknown id", err, store.ErrNotFound)
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	other := insertStage(t, s, newStage(at(0)))
	ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(5)}
	update(t, s, func(tx store.Tx) error { return tx.InsertSession(ctx, ss) })
	got := must(s.GetSession(ctx, st.ID, ss.ID)).get(t)
	eq(t, "GetSession", normSession(got), ss)
	if !got.Active() || !got.EndTime.IsZero() {
		t.Fatalf("a session stored without an end time reads back with EndTime %v", got.EndTime)
	}

	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertSession(ctx, ivs.Session{StageID: st.ID, ID: ss.ID, StartTime: at(6)})
	})
	wantErr(t, "InsertSession of an existing id", err, store.ErrExists)

	// A session belongs to its stage: the same id under another stage is another row.
	_, err = s.GetSession(ctx, other.ID, ss.ID)
	wantErr(t, "GetSession under another stage", err, store.ErrNotFound)
	_, err = s.GetSession(ctx, st.ID, ivs.NewSessionID())
	wantErr(t, "GetSession of an unknown id", err, store.ErrNotFound)

	ended := ss
	ended.EndTime = at(50)
	update(t, s, func(tx store.Tx) error { return tx.UpdateSession(ctx, ended) })
	got = must(s.GetSession(ctx, st.ID, ss.ID)).get(t)
	eq(t, "GetSession after UpdateSession", normSession(got), ended)
	if got.Active() {
		t.Fatal("an ended session reads back as active")
	}

	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.UpdateSession(ctx, ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(1), EndTime: at(2)})
	})
	wantErr(t, "UpdateSession of an unknown id", err, store.ErrNotFound)
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.UpdateSession(ctx, ivs.Session{StageID: other.ID, ID: ss.ID, StartTime: at(1), EndTime: at(2)})
	})
	wantErr(t, "UpdateSession under another stage", err, store.ErrNotFound)
}

func testParticipants(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.NewSessionID()
	p := ivs.Participant{
		StageID:       st.ID,
		SessionID:     sess,
		ID:            ivs.NewParticipantID(),
		UserID:        "alice@example.com",
		State:         ivs.StateConnected,
		FirstJoinTime: at(3),
		Attributes:    map[string]string{"displayName": "Alice", "emoji": "🎤", "quote": `"x"`},
		Published:     false,
		Client: ivs.ClientInfo{
			ISPName: "Example ISP", OSName: "Linux", OSVersion: "6.1", BrowserName: "Chrome",
			BrowserVersion: "126.0", SDKVersion: "1.20.0", Protocol: ivs.ProtocolWHIP,
		},
	}
	update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, p) })
	eq(t, "GetParticipant", normParticipant(must(s.GetParticipant(ctx, st.ID, sess, p.ID)).get(t)), normParticipant(p))

	// PutParticipant replaces the whole record.
	p2 := p
	p2.State, p2.Published, p2.Attributes, p2.UserID = ivs.StateDisconnected, true, nil, ""
	p2.Client = ivs.ClientInfo{Protocol: ivs.ProtocolUnknown}
	update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, p2) })
	eq(t, "GetParticipant after a replacing PutParticipant", normParticipant(must(s.GetParticipant(ctx, st.ID, sess, p.ID)).get(t)), normParticipant(p2))
	if n := len(must(s.ListParticipants(ctx, st.ID, sess, store.ParticipantFilter{}, store.Page{Limit: 100})).get(t)); n != 1 {
		t.Fatalf("two PutParticipant of one participant left %d records", n)
	}

	// The same participant id in another session is another record.
	p3 := p
	p3.SessionID = ivs.NewSessionID()
	update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, p3) })
	eq(t, "participant in the first session", normParticipant(must(s.GetParticipant(ctx, st.ID, sess, p.ID)).get(t)), normParticipant(p2))
	eq(t, "participant in the second session", normParticipant(must(s.GetParticipant(ctx, st.ID, p3.SessionID, p.ID)).get(t)), normParticipant(p3))

	_, err := s.GetParticipant(ctx, st.ID, sess, ivs.NewParticipantID())
	wantErr(t, "GetParticipant of an unknown id", err, store.ErrNotFound)
	_, err = s.GetParticipant(ctx, st.ID, ivs.NewSessionID(), p.ID)
	wantErr(t, "GetParticipant in an unknown session", err, store.ErrNotFound)
	_, err = s.GetParticipant(ctx, ivs.NewStageID(), sess, p.ID)
	wantErr(t, "GetParticipant on another stage", err, store.ErrNotFound)

	// A self-signed token's jti is used as the participant id as is.
	jti := ivs.Participant{StageID: st.ID, SessionID: sess, ID: "a-jti_with.odd~chars/é", State: ivs.StateConnected, FirstJoinTime: at(4)}
	update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, jti) })
	eq(t, "participant with an unusual id", normParticipant(must(s.GetParticipant(ctx, st.ID, sess, jti.ID)).get(t)), normParticipant(jti))
}

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.NewSessionID()
	a, b := ivs.NewParticipantID(), ivs.NewParticipantID()
	mk := func(p ivs.ParticipantID, name ivs.EventName, sec int) ivs.Event {
		return ivs.Event{StageID: st.ID, SessionID: sess, ParticipantID: p, Name: name, Time: at(sec)}
	}
	evs := []ivs.Event{
		mk(a, ivs.EventJoined, 1),
		mk(b, ivs.EventJoined, 2),
		mk(a, ivs.EventPublishStarted, 3),
		mk(b, ivs.EventSubscribeStarted, 3),
		mk(b, ivs.EventSubscribeError, 4),
		mk(a, ivs.EventLeft, 5),
	}
	evs[3].RemoteParticipantID = a
	evs[4].RemoteParticipantID = a
	evs[4].ErrorCode = ivs.ErrPublisherNotFound
	wantSeq := []int64{1, 1, 2, 2, 3, 3}
	update(t, s, func(tx store.Tx) error {
		for i := range evs {
			evs[i].Seq = 1000 // AppendEvent assigns Seq whatever the caller put there
			if err := tx.AppendEvent(ctx, &evs[i]); err != nil {
				return err
			}
			if evs[i].Seq != wantSeq[i] {
				t.Errorf("event %d: AppendEvent set Seq %d, want %d", i, evs[i].Seq, wantSeq[i])
			}
		}
		// Inside the transaction its own events are visible.
		got, err := tx.ListEvents(ctx, st.ID, sess, a, store.Page{Limit: 10})
		if err != nil {
			return err
		}
		if len(got) != 3 {
			t.Errorf("ListEvents inside the appending transaction: %d events, want 3", len(got))
		}
		return nil
	})
	eqList(t, "ListEvents a", must(s.ListEvents(ctx, st.ID, sess, a, store.Page{Limit: 10})).get(t), []ivs.Event{evs[0], evs[2], evs[5]}, normEvent)
	eqList(t, "ListEvents b", must(s.ListEvents(ctx, st.ID, sess, b, store.Page{Limit: 10})).get(t), []ivs.Event{evs[1], evs[3], evs[4]}, normEvent)

	// Seq continues across transactions, and is per (stage, session, participant).
	e := mk(a, ivs.EventJoined, 6)
	update(t, s, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) })
	if e.Seq != 4 {
		t.Fatalf("AppendEvent in a later transaction: Seq %d, want 4", e.Seq)
	}
	other := mk(a, ivs.EventJoined, 7)
	other.SessionID = ivs.NewSessionID()
	update(t, s, func(tx store.Tx) error { return tx.AppendEvent(ctx, &other) })
	if other.Seq != 1 {
		t.Fatalf("first event of the participant in another session: Seq %d, want 1", other.Seq)
	}
	if got := must(s.ListEvents(ctx, st.ID, other.SessionID, a, store.Page{Limit: 10})).get(t); len(got) != 1 {
		t.Fatalf("events in the other session: %d, want 1", len(got))
	}

	// An event's time does not order it: Seq does (an earlier timestamp appended later still comes later).
	late := mk(b, ivs.EventLeft, 0)
	update(t, s, func(tx store.Tx) error { return tx.AppendEvent(ctx, &late) })
	got := must(s.ListEvents(ctx, st.ID, sess, b, store.Page{Limit: 10})).get(t)
	if len(got) != 4 || got[3].Seq != 4 || got[3].Name != ivs.EventLeft {
		t.Fatalf("ListEvents does not follow Seq: %+v", got)
	}
}

func testPublicKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n := must(s.CountPublicKeys(ctx)).get(t); n != 0 {
		t.Fatalf("CountPublicKeys on an empty store = %d", n)
	}
	k := ivs.PublicKey{
		ID:          ivs.NewPublicKeyID(),
		Name:        "key one",
		Material:    "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n-----END PUBLIC KEY-----\n",
		Fingerprint: "98:0f:7e:2b:1c",
		CreatedAt:   at(1),
	}
	update(t, s, func(tx store.Tx) error { return tx.InsertPublicKey(ctx, k) })
	eq(t, "GetPublicKey", normKey(must(s.GetPublicKey(ctx, k.ID)).get(t)), k)
	err := s.Update(ctx, func(tx store.Tx) error {
		dup := k
		dup.Name = "other"
		return tx.InsertPublicKey(ctx, dup)
	})
	wantErr(t, "InsertPublicKey of an existing id", err, store.ErrExists)
	_, err = s.GetPublicKey(ctx, ivs.NewPublicKeyID())
	wantErr(t, "GetPublicKey of an unknown id", err, store.ErrNotFound)

	k2 := k
	k2.ID, k2.CreatedAt = ivs.NewPublicKeyID(), at(2)
	update(t, s, func(tx store.Tx) error { return tx.InsertPublicKey(ctx, k2) })
	if n := must(s.CountPublicKeys(ctx)).get(t); n != 2 {
		t.Fatalf("CountPublicKeys = %d, want 2", n)
	}
	update(t, s, func(tx store.Tx) error { return tx.DeletePublicKey(ctx, k.ID) })
	_, err = s.GetPublicKey(ctx, k.ID)
	wantErr(t, "GetPublicKey after DeletePublicKey", err, store.ErrNotFound)
	if n := must(s.CountPublicKeys(ctx)).get(t); n != 1 {
		t.Fatalf("CountPublicKeys after a delete = %d, want 1", n)
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeletePublicKey(ctx, k.ID) })
	wantErr(t, "DeletePublicKey of an unknown id", err, store.ErrNotFound)
}

func testTags(t *testing.T, s store.Store) {
	ctx := t.Context()
	arn := "arn:aws:ivs:us-east-1:000000000000:stage/" + string(ivs.NewStageID())
	other := "arn:aws:ivs:us-east-1:000000000000:public-key/" + string(ivs.NewPublicKeyID())
	tags := func(arn string) map[string]string {
		t.Helper()
		m := must(s.Tags(ctx, arn)).get(t)
		if m == nil {
			t.Fatalf("Tags(%s) returned a nil map", arn)
		}
		return m
	}
	eq(t, "Tags of an unknown ARN", tags(arn), map[string]string{})

	update(t, s, func(tx store.Tx) error {
		if err := tx.MergeTags(ctx, arn, map[string]string{"env": "dev", "team": "media", "empty": ""}); err != nil {
			return err
		}
		return tx.MergeTags(ctx, other, map[string]string{"env": "prod"})
	})
	eq(t, "Tags after MergeTags", tags(arn), map[string]string{"env": "dev", "team": "media", "empty": ""})

	update(t, s, func(tx store.Tx) error {
		return tx.MergeTags(ctx, arn, map[string]string{"env": "staging", "owner": "Ünïcode ✓"})
	})
	eq(t, "Tags after a second MergeTags", tags(arn), map[string]string{"env": "staging", "team": "media", "empty": "", "owner": "Ünïcode ✓"})

	update(t, s, func(tx store.Tx) error { return tx.RemoveTags(ctx, arn, []string{"team", "missing", "empty"}) })
	eq(t, "Tags after RemoveTags", tags(arn), map[string]string{"env": "staging", "owner": "Ünïcode ✓"})
	update(t, s, func(tx store.Tx) error { return tx.RemoveTags(ctx, arn, nil) })
	update(t, s, func(tx store.Tx) error { return tx.MergeTags(ctx, arn, nil) })
	eq(t, "Tags after empty RemoveTags and MergeTags", tags(arn), map[string]string{"env": "staging", "owner": "Ünïcode ✓"})

	// Reads in the transaction see its tag writes.
	update(t, s, func(tx store.Tx) error {
		if err := tx.MergeTags(ctx, arn, map[string]string{"tx": "1"}); err != nil {
			return err
		}
		m, err := tx.Tags(ctx, arn)
		if err != nil {
			return err
		}
		if m["tx"] != "1" {
			t.Errorf("Tags inside the transaction: %v", m)
		}
		return nil
	})

	update(t, s, func(tx store.Tx) error { return tx.DeleteTags(ctx, arn) })
	eq(t, "Tags after DeleteTags", tags(arn), map[string]string{})
	eq(t, "Tags of another ARN after DeleteTags", tags(other), map[string]string{"env": "prod"})
	update(t, s, func(tx store.Tx) error { return tx.DeleteTags(ctx, arn) }) // deleting nothing is fine
}

func testRevocations(t *testing.T, s store.Store) {
	ctx := t.Context()
	st, other := ivs.NewStageID(), ivs.NewStageID()
	p := ivs.NewParticipantID()
	if must(s.Revoked(ctx, st, p)).get(t) {
		t.Fatal("Revoked before Revoke")
	}
	update(t, s, func(tx store.Tx) error { return tx.Revoke(ctx, st, p) })
	update(t, s, func(tx store.Tx) error { return tx.Revoke(ctx, st, p) }) // twice is fine
	if !must(s.Revoked(ctx, st, p)).get(t) {
		t.Fatal("not Revoked after Revoke")
	}
	if must(s.Revoked(ctx, other, p)).get(t) {
		t.Fatal("a revocation leaked to another stage")
	}
	if must(s.Revoked(ctx, st, ivs.NewParticipantID())).get(t) {
		t.Fatal("a revocation leaked to another participant")
	}
}

// testTimePrecision: every stored time comes back to the nanosecond, in UTC, and the zero time stays zero.
func testTimePrecision(t *testing.T, s store.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC-06:30", -(6*3600 + 1800))
	tm := func(ns int) time.Time { return time.Date(2024, 2, 29, 23, 59, 59, ns, zone) }
	st := ivs.Stage{ID: ivs.NewStageID(), Name: "t", CreatedAt: tm(123456789)}
	ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: tm(1), EndTime: tm(999999999)}
	active := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: tm(2)}
	p := ivs.Participant{StageID: st.ID, SessionID: ss.ID, ID: ivs.NewParticipantID(), State: ivs.StateConnected, FirstJoinTime: tm(3)}
	e := ivs.Event{StageID: st.ID, SessionID: ss.ID, ParticipantID: p.ID, Name: ivs.EventJoined, Time: tm(4)}
	k := ivs.PublicKey{ID: ivs.NewPublicKeyID(), Name: "k", Material: "m", Fingerprint: "f", CreatedAt: tm(5)}
	// Also a far date with a monotonic clock reading attached.
	now := time.Now()
	far := ivs.Stage{ID: ivs.NewStageID(), Name: "far", CreatedAt: now}
	update(t, s, func(tx store.Tx) error {
		return errors.Join(tx.InsertStage(ctx, st), tx.InsertSession(ctx, ss), tx.InsertSession(ctx, active),
			tx.PutParticipant(ctx, p), tx.AppendEvent(ctx, &e), tx.InsertPublicKey(ctx, k), tx.InsertStage(ctx, far))
	})
	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) {
			t.Errorf("%s: got %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if got.Location() != time.UTC {
			t.Errorf("%s: location %v, want UTC", what, got.Location())
		}
	}
	check("Stage.CreatedAt", must(s.GetStage(ctx, st.ID)).get(t).CreatedAt, st.CreatedAt)
	check("Stage.CreatedAt (time.Now)", must(s.GetStage(ctx, far.ID)).get(t).CreatedAt, now)
	gs := must(s.GetSession(ctx, st.ID, ss.ID)).get(t)
	check("Session.StartTime", gs.StartTime, ss.StartTime)
	check("Session.EndTime", gs.EndTime, ss.EndTime)
	if ga := must(s.GetSession(ctx, st.ID, active.ID)).get(t); !ga.EndTime.IsZero() {
		t.Errorf("zero Session.EndTime read back as %v", ga.EndTime)
	}
	check("Participant.FirstJoinTime", must(s.GetParticipant(ctx, st.ID, ss.ID, p.ID)).get(t).FirstJoinTime, p.FirstJoinTime)
	check("Event.Time", must(s.ListEvents(ctx, st.ID, ss.ID, p.ID, store.Page{Limit: 1})).get(t)[0].Time, e.Time)
	check("PublicKey.CreatedAt", must(s.GetPublicKey(ctx, k.ID)).get(t).CreatedAt, k.CreatedAt)
	check("ListStages CreatedAt", must(s.ListStages(ctx, store.Page{Limit: 1})).get(t)[0].CreatedAt, st.CreatedAt)

	// Cursors carry nanoseconds too: rows one nanosecond apart are told apart.
	a := ivs.Stage{ID: "zzzzzzzzzzz1", Name: "a", CreatedAt: base.Add(1)}
	b := ivs.Stage{ID: "AAAAAAAAAAA1", Name: "b", CreatedAt: base.Add(2)}
	update(t, s, func(tx store.Tx) error { return errors.Join(tx.InsertStage(ctx, a), tx.InsertStage(ctx, b)) })
	got := must(s.ListStages(ctx, store.Page{After: &store.Cursor{Time: a.CreatedAt, ID: string(a.ID)}, Limit: 1})).get(t)
	if len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("ListStages after a cursor 1ns before the next row: %+v, want %s", got, b.ID)
	}
}

// ---- order and keyset pagination ----

// walk reads a whole list in pages of size n and fails on a page longer than asked, or on a list that does not
// end.
func walk[T any](t *testing.T, n int, total int, fetch func(p store.Page) ([]T, error), cursor func(T) store.Cursor) []T {
	t.Helper()
	var all []T
	p := store.Page{Limit: n}
	for range total + 3 {
		page, err := fetch(p)
		if err != nil {
			t.Fatalf("page %d of size %d: %v", len(all)/n, n, err)
		}
		if len(page) > n {
			t.Fatalf("asked for %d rows, got %d", n, len(page))
		}
		all = append(all, page...)
		if len(page) < n {
			return all
		}
		c := cursor(page[len(page)-1])
		p.After = &c
	}
	t.Fatalf("the list did not end after %d pages of %d (%d rows read)", total+3, n, len(all))
	return nil
}

// checkList walks a list in pages of 1, 7 and 100 and compares it with want, then asks for pages after cursors
// that sit on rows, between rows, before all and after all, and compares them with what the sort order implies.
// asc is false for newest-first lists.
func checkList[T any](t *testing.T, want []T, key func(T) (time.Time, string), asc bool, norm func(T) T,
	fetch func(p store.Page) ([]T, error)) {
	t.Helper()
	cursor := func(v T) store.Cursor {
		tm, id := key(v)
		return store.Cursor{Time: tm, ID: id}
	}
	for _, n := range []int{1, 7, 100} {
		got := walk(t, n, len(want), fetch, cursor)
		eqList(t, fmt.Sprintf("list read in pages of %d", n), got, want, norm)
	}
	// after reports whether row (tm, id) comes after cursor c in the list's order.
	after := func(tm time.Time, id string, c store.Cursor) bool {
		o := cmp.Or(tm.Compare(c.Time), cmp.Compare(id, c.ID))
		if asc {
			return o > 0
		}
		return o < 0
	}
	var cursors []store.Cursor
	for i := 0; i < len(want); i += 13 {
		tm, id := key(want[i])
		cursors = append(cursors,
			store.Cursor{Time: tm, ID: id},              // on a row
			store.Cursor{Time: tm, ID: id + "-"},        // between this row and the next with the same time
			store.Cursor{Time: tm, ID: ""},              // before every row of that time
			store.Cursor{Time: tm, ID: "~"},             // after every row of that time
			store.Cursor{Time: tm.Add(time.Nanosecond)}, // between two times
			store.Cursor{Time: tm.Add(-time.Nanosecond), ID: "~"},
		)
	}
	first, _ := key(want[0])
	last, _ := key(want[len(want)-1])
	cursors = append(cursors,
		store.Cursor{Time: first.Add(-time.Hour)},
		store.Cursor{Time: last.Add(time.Hour)},
		store.Cursor{Time: first.Add(-time.Hour), ID: "~"},
		store.Cursor{Time: last.Add(time.Hour), ID: "~"},
	)
	for _, c := range cursors {
		var exp []T
		for _, v := range want {
			if tm, id := key(v); after(tm, id, c) {
				exp = append(exp, v)
			}
		}
		if len(exp) > 10 {
			exp = exp[:10]
		}
		got, err := fetch(store.Page{After: &c, Limit: 10})
		if err != nil {
			t.Fatalf("page after %+v: %v", c, err)
		}
		eqList(t, fmt.Sprintf("page after cursor %s/%q", c.Time.Format(time.RFC3339Nano), c.ID), got, exp, norm)
	}
}

// tiedTimes returns n times with many ties: groups of up to 5 rows share a time, and the groups are inserted
// out of order.
func tiedTimes(n int) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		g := (i * 7919) % n / 5 // scatter the insertion order
		out[i] = at(g).Add(time.Duration(g%3) * time.Nanosecond)
	}
	return out
}

const listRows = 263

func testOrderStages(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []ivs.Stage
	update(t, s, func(tx store.Tx) error {
		for _, tm := range tiedTimes(listRows) {
			st := ivs.Stage{ID: ivs.NewStageID(), Name: "s", CreatedAt: tm}
			want = append(want, st)
			if err := tx.InsertStage(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(s ivs.Stage) (time.Time, string) { return s.CreatedAt, string(s.ID) }
	sortBy(want, key, true)
	checkList(t, want, key, true, normStage, func(p store.Page) ([]ivs.Stage, error) { return s.ListStages(ctx, p) })
	if n := must(s.CountStages(ctx)).get(t); n != listRows {
		t.Fatalf("CountStages = %d, want %d", n, listRows)
	}
}

func testOrderPublicKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []ivs.PublicKey
	update(t, s, func(tx store.Tx) error {
		for _, tm := range tiedTimes(listRows) {
			k := ivs.PublicKey{ID: ivs.NewPublicKeyID(), Name: "k", Material: "pem", Fingerprint: "fp", CreatedAt: tm}
			want = append(want, k)
			if err := tx.InsertPublicKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(k ivs.PublicKey) (time.Time, string) { return k.CreatedAt, string(k.ID) }
	sortBy(want, key, true)
	checkList(t, want, key, true, normKey, func(p store.Page) ([]ivs.PublicKey, error) { return s.ListPublicKeys(ctx, p) })
	if n := must(s.CountPublicKeys(ctx)).get(t); n != listRows {
		t.Fatalf("CountPublicKeys = %d, want %d", n, listRows)
	}
}

func testOrderSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	other := insertStage(t, s, newStage(at(0)))
	var want []ivs.Session
	update(t, s, func(tx store.Tx) error {
		for i, tm := range tiedTimes(listRows) {
			ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: tm}
			if i%3 == 0 {
				ss.EndTime = tm.Add(time.Minute)
			}
			want = append(want, ss)
			// Sessions of another stage, at the same times, must not show.
			if err := errors.Join(tx.InsertSession(ctx, ss),
				tx.InsertSession(ctx, ivs.Session{StageID: other.ID, ID: ivs.NewSessionID(), StartTime: tm})); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(s ivs.Session) (time.Time, string) { return s.StartTime, string(s.ID) }
	sortBy(want, key, false)
	checkList(t, want, key, false, normSession, func(p store.Page) ([]ivs.Session, error) { return s.ListSessions(ctx, st.ID, p) })
}

func testOrderParticipants(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.NewSessionID()
	var want []ivs.Participant
	update(t, s, func(tx store.Tx) error {
		for i, tm := range tiedTimes(listRows) {
			p := newParticipant(st.ID, sess, tm)
			p.Published = i%2 == 0
			want = append(want, p)
			// Participants of another session of the stage, and of another stage with the same session id.
			o1 := newParticipant(st.ID, ivs.NewSessionID(), tm)
			o2 := newParticipant(ivs.NewStageID(), sess, tm)
			if err := errors.Join(tx.PutParticipant(ctx, p), tx.PutParticipant(ctx, o1), tx.PutParticipant(ctx, o2)); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(p ivs.Participant) (time.Time, string) { return p.FirstJoinTime, string(p.ID) }
	sortBy(want, key, true)
	checkList(t, want, key, true, normParticipant, func(p store.Page) ([]ivs.Participant, error) {
		return s.ListParticipants(ctx, st.ID, sess, store.ParticipantFilter{}, p)
	})
	checkList(t, summaries(want), summaryKey, true, normSummary, func(p store.Page) ([]store.ParticipantSummary, error) {
		return s.ListParticipantSummaries(ctx, st.ID, sess, store.ParticipantFilter{}, p)
	})
}

// summaries are ps as ListParticipantSummaries lists them.
func summaries(ps []ivs.Participant) []store.ParticipantSummary {
	out := make([]store.ParticipantSummary, len(ps))
	for i, p := range ps {
		out[i] = store.Summary(p)
	}
	return out
}

func summaryKey(p store.ParticipantSummary) (time.Time, string) { return p.FirstJoinTime, string(p.ID) }

func normSummary(p store.ParticipantSummary) store.ParticipantSummary {
	p.FirstJoinTime = normTime(p.FirstJoinTime)
	return p
}

func testParticipantFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.NewSessionID()
	users := []string{"alice", "Alice", "alice2", "bob", ""}
	var all []ivs.Participant
	update(t, s, func(tx store.Tx) error {
		for i, tm := range tiedTimes(listRows) {
			p := newParticipant(st.ID, sess, tm)
			p.UserID = users[i%len(users)]
			p.Published = i%3 == 0
			if i%4 == 0 {
				p.State = ivs.StateDisconnected
			}
			all = append(all, p)
			// Same user in another session: must not show.
			o := newParticipant(st.ID, ivs.NewSessionID(), tm)
			o.UserID = p.UserID
			if err := errors.Join(tx.PutParticipant(ctx, p), tx.PutParticipant(ctx, o)); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(p ivs.Participant) (time.Time, string) { return p.FirstJoinTime, string(p.ID) }
	sortBy(all, key, true)
	yes, no := true, false
	filters := map[string]store.ParticipantFilter{}
	for _, u := range users {
		filters["user "+u] = store.ParticipantFilter{UserID: &u}
	}
	nobody := "nobody"
	prefix := "ali"
	filters["user nobody"] = store.ParticipantFilter{UserID: &nobody}
	filters["user prefix"] = store.ParticipantFilter{UserID: &prefix}
	filters["published"] = store.ParticipantFilter{Published: &yes}
	filters["not published"] = store.ParticipantFilter{Published: &no}
	filters["connected"] = store.ParticipantFilter{State: ivs.StateConnected}
	filters["disconnected"] = store.ParticipantFilter{State: ivs.StateDisconnected}
	for _, name := range slices.Sorted(maps.Keys(filters)) {
		f := filters[name]
		t.Run(name, func(t *testing.T) {
			var want []ivs.Participant
			for _, p := range all {
				if (f.UserID == nil || p.UserID == *f.UserID) &&
					(f.Published == nil || p.Published == *f.Published) &&
					(f.State == "" || p.State == f.State) {
					want = append(want, p)
				}
			}
			fetch := func(p store.Page) ([]ivs.Participant, error) { return s.ListParticipants(ctx, st.ID, sess, f, p) }
			if len(want) == 0 {
				got, err := fetch(store.Page{Limit: 100})
				if err != nil || len(got) != 0 {
					t.Fatalf("got %d rows, err %v; want none", len(got), err)
				}
				return
			}
			checkList(t, want, key, true, normParticipant, fetch)
			checkList(t, summaries(want), summaryKey, true, normSummary, func(p store.Page) ([]store.ParticipantSummary, error) {
				return s.ListParticipantSummaries(ctx, st.ID, sess, f, p)
			})
		})
	}
}

func testOrderEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := ivs.NewStageID()
	sess := ivs.NewSessionID()
	ps := []ivs.ParticipantID{ivs.NewParticipantID(), ivs.NewParticipantID(), ivs.NewParticipantID()}
	want := map[ivs.ParticipantID][]ivs.Event{}
	names := []ivs.EventName{ivs.EventJoined, ivs.EventPublishStarted, ivs.EventSubscribeStarted, ivs.EventLeft}
	// Interleaved participants, several transactions, all events at the same instant for some.
	for batch := range 5 {
		update(t, s, func(tx store.Tx) error {
			for i := range 170 {
				p := ps[(i*7+batch)%len(ps)]
				e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: p, Name: names[i%len(names)], Time: at(batch)}
				if p == ps[0] {
					e.Time = at(i % 3) // times out of order: Seq, not Time, orders the list
				}
				if err := tx.AppendEvent(ctx, &e); err != nil {
					return err
				}
				want[p] = append(want[p], e)
			}
			return nil
		})
	}
	for pi, p := range ps {
		evs := want[p]
		if len(evs) < 250 {
			t.Fatalf("test setup: participant %d has only %d events", pi, len(evs))
		}
		for i, e := range evs {
			if e.Seq != int64(i+1) {
				t.Fatalf("participant %d event %d: Seq %d, want %d", pi, i, e.Seq, i+1)
			}
		}
		fetch := func(pg store.Page) ([]ivs.Event, error) { return s.ListEvents(ctx, st, sess, p, pg) }
		for _, n := range []int{1, 7, 100} {
			got := walk(t, n, len(evs), fetch, func(e ivs.Event) store.Cursor { return store.Cursor{Seq: e.Seq} })
			eqList(t, fmt.Sprintf("participant %d events in pages of %d", pi, n), got, evs, normEvent)
		}
		for _, after := range []int64{0, 1, 5, int64(len(evs)) - 3, int64(len(evs)), int64(len(evs)) + 10} {
			got := must(fetch(store.Page{After: &store.Cursor{Seq: after}, Limit: 10})).get(t)
			exp := evs[min(int(after), len(evs)):]
			exp = exp[:min(10, len(exp))]
			eqList(t, fmt.Sprintf("participant %d events after Seq %d", pi, after), got, exp, normEvent)
		}
	}
}

func testEmptyLists(t *testing.T, s store.Store) {
	ctx := t.Context()
	st, sess, p := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	pg := store.Page{Limit: 100}
	c := store.Page{After: &store.Cursor{Time: at(0), ID: "x", Seq: 3}, Limit: 100}
	for _, page := range []store.Page{pg, c} {
		if v := must(s.ListStages(ctx, page)).get(t); len(v) != 0 {
			t.Fatalf("ListStages on an empty store: %v", v)
		}
		if v := must(s.ListPublicKeys(ctx, page)).get(t); len(v) != 0 {
			t.Fatalf("ListPublicKeys on an empty store: %v", v)
		}
		if v := must(s.ListSessions(ctx, st, page)).get(t); len(v) != 0 {
			t.Fatalf("ListSessions of an unknown stage: %v", v)
		}
		if v := must(s.ListParticipants(ctx, st, sess, store.ParticipantFilter{}, page)).get(t); len(v) != 0 {
			t.Fatalf("ListParticipants of an unknown session: %v", v)
		}
		if v := must(s.ListEvents(ctx, st, sess, p, page)).get(t); len(v) != 0 {
			t.Fatalf("ListEvents of an unknown participant: %v", v)
		}
	}
	if v := must(s.ActiveSessions(ctx)).get(t); len(v) != 0 {
		t.Fatalf("ActiveSessions on an empty store: %v", v)
	}
	if v := must(s.ConnectedParticipants(ctx)).get(t); len(v) != 0 {
		t.Fatalf("ConnectedParticipants on an empty store: %v", v)
	}
	if n := must(s.DeleteEndedBefore(ctx, at(1000))).get(t); n != 0 {
		t.Fatalf("DeleteEndedBefore on an empty store: %d", n)
	}
}

func sortBy[T any](v []T, key func(T) (time.Time, string), asc bool) {
	slices.SortFunc(v, func(a, b T) int {
		ta, ia := key(a)
		tb, ib := key(b)
		o := cmp.Or(ta.Compare(tb), cmp.Compare(ia, ib))
		if !asc {
			o = -o
		}
		return o
	})
}

// ---- transactions ----

// writeAll writes one of everything in tx: what a rolled-back transaction must not leave behind.
func writeAll(ctx context.Context, tx store.Tx, st ivs.Stage) error {
	ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(1)}
	p := newParticipant(st.ID, ss.ID, at(1))
	e := ivs.Event{StageID: st.ID, SessionID: ss.ID, ParticipantID: p.ID, Name: ivs.EventJoined, Time: at(1)}
	k := ivs.PublicKey{ID: ivs.NewPublicKeyID(), Name: "k", Material: "m", Fingerprint: "f", CreatedAt: at(1)}
	return errors.Join(tx.InsertStage(ctx, st), tx.InsertSession(ctx, ss), tx.PutParticipant(ctx, p),
		tx.AppendEvent(ctx, &e), tx.InsertPublicKey(ctx, k), tx.MergeTags(ctx, "arn:"+string(st.ID), map[string]string{"a": "b"}),
		tx.Revoke(ctx, st.ID, p.ID))
}

// checkNothingFrom fails if anything writeAll wrote for st is stored.
func checkNothingFrom(t *testing.T, s store.Store, st ivs.Stage) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.GetStage(ctx, st.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the stage of a rolled-back transaction: err %v", err)
	}
	if v := must(s.ListSessions(ctx, st.ID, store.Page{Limit: 10})).get(t); len(v) != 0 {
		t.Fatalf("sessions of a rolled-back transaction: %v", v)
	}
	if v := must(s.ActiveSessions(ctx)).get(t); len(v) != 0 {
		t.Fatalf("sessions of a rolled-back transaction: %v", v)
	}
	if v := must(s.ConnectedParticipants(ctx)).get(t); len(v) != 0 {
		t.Fatalf("participants of a rolled-back transaction: %v", v)
	}
	if n := must(s.CountPublicKeys(ctx)).get(t); n != 0 {
		t.Fatalf("%d public keys after a rolled-back transaction", n)
	}
	if v := must(s.Tags(ctx, "arn:"+string(st.ID))).get(t); len(v) != 0 {
		t.Fatalf("tags of a rolled-back transaction: %v", v)
	}
}

func testTxErrorRollsBack(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStage(at(0))
	errBoom := errors.New("boom")
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := writeAll(ctx, tx, st); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	wantErr(t, "Update whose fn failed", err, errBoom)
	checkNothingFrom(t, s, st)
	if n := must(s.CountStages(ctx)).get(t); n != 0 {
		t.Fatalf("%d stages after a rolled-back transaction", n)
	}

	// A store error inside fn (here ErrExists) that fn returns rolls back the writes before it.
	kept := insertStage(t, s, newStage(at(0)))
	st2 := newStage(at(0))
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertStage(ctx, st2); err != nil {
			return err
		}
		return tx.InsertStage(ctx, kept)
	})
	wantErr(t, "Update with a duplicate insert", err, store.ErrExists)
	if _, err := s.GetStage(ctx, st2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a stage written before the failing insert survived: %v", err)
	}

	// The store stays usable.
	st3 := insertStage(t, s, newStage(at(0)))
	must(s.GetStage(ctx, st3.ID)).get(t)
}

func testTxPanicRollsBack(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStage(at(0))
	type boom struct{ n int }
	func() {
		defer func() {
			r := recover()
			if r != (boom{42}) {
				t.Fatalf("Update did not pass the panic on: recovered %v", r)
			}
		}()
		_ = s.Update(ctx, func(tx store.Tx) error {
			if err := writeAll(ctx, tx, st); err != nil {
				t.Errorf("writeAll: %v", err)
			}
			panic(boom{42})
		})
		t.Fatal("Update returned after fn panicked")
	}()
	checkNothingFrom(t, s, st)
	// The store stays usable: the panicking transaction released its lock.
	st2 := insertStage(t, s, newStage(at(0)))
	must(s.GetStage(ctx, st2.ID)).get(t)
}

func testTxIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := newStage(at(0))
	update(t, s, func(tx store.Tx) error {
		if err := tx.InsertStage(ctx, st); err != nil {
			return err
		}
		// The transaction sees its own write...
		if _, err := tx.GetStage(ctx, st.ID); err != nil {
			t.Errorf("GetStage inside the inserting transaction: %v", err)
		}
		if n, err := tx.CountStages(ctx); err != nil || n != 1 {
			t.Errorf("CountStages inside the inserting transaction: %d, %v", n, err)
		}
		// ...and the store outside it does not, until commit.
		if _, err := s.GetStage(ctx, st.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetStage outside an uncommitted transaction: err %v, want ErrNotFound", err)
		}
		return nil
	})
	must(s.GetStage(ctx, st.ID)).get(t)
}

func testTxCanceledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st := newStage(at(0))
	err := s.Update(ctx, func(tx store.Tx) error { return tx.InsertStage(ctx, st) })
	if err == nil {
		t.Fatal("Update with a canceled context succeeded")
	}
	if _, err := s.GetStage(t.Context(), st.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a stage written with a canceled context: %v", err)
	}
}

// ---- concurrency ----

const workers = 16

// Two writers racing to start a session for one stage: exactly one session.
func testConcurrentLockStage(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	s := ss[0]
	st := insertStage(t, s, newStage(at(0)))
	var wg sync.WaitGroup
	started := make([]ivs.SessionID, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			errs[w] = ss[w%len(ss)].Update(ctx, func(tx store.Tx) error {
				started[w] = ""
				cur, err := tx.LockStage(ctx, st.ID)
				if err != nil {
					return err
				}
				if cur.ActiveSessionID != "" {
					return nil
				}
				ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: time.Now()}
				if err := tx.InsertSession(ctx, ss); err != nil {
					return err
				}
				cur.ActiveSessionID = ss.ID
				if err := tx.UpdateStage(ctx, cur); err != nil {
					return err
				}
				started[w] = ss.ID
				return nil
			})
		})
	}
	wg.Wait()
	var winners []ivs.SessionID
	for w := range workers {
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if started[w] != "" {
			winners = append(winners, started[w])
		}
	}
	sessions := must(s.ListSessions(ctx, st.ID, store.Page{Limit: 100})).get(t)
	if len(sessions) != 1 || len(winners) != 1 {
		t.Fatalf("%d workers started a session, %d sessions stored; want exactly 1", len(winners), len(sessions))
	}
	if got := must(s.GetStage(ctx, st.ID)).get(t).ActiveSessionID; got != sessions[0].ID || got != winners[0] {
		t.Fatalf("ActiveSessionID %q, stored session %q, winner %q", got, sessions[0].ID, winners[0])
	}
}

// Concurrent joins of one participant: one record.
func testConcurrentPutParticipant(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	s := ss[0]
	st := insertStage(t, s, newStage(at(0)))
	p := newParticipant(st.ID, ivs.NewSessionID(), at(1))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			q := p
			q.UserID = fmt.Sprintf("writer-%d", w)
			errs[w] = ss[w%len(ss)].Update(ctx, func(tx store.Tx) error { return tx.PutParticipant(ctx, q) })
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	got := must(s.ListParticipants(ctx, st.ID, p.SessionID, store.ParticipantFilter{}, store.Page{Limit: 100})).get(t)
	if len(got) != 1 {
		t.Fatalf("%d concurrent PutParticipant of one participant left %d records", workers, len(got))
	}
	one := must(s.GetParticipant(ctx, st.ID, p.SessionID, p.ID)).get(t)
	want := p
	want.UserID = one.UserID
	eq(t, "participant after concurrent puts", normParticipant(one), normParticipant(want))
}

func testConcurrentAppendEvent(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	s := ss[0]
	st, sess, pid := ivs.NewStageID(), ivs.NewSessionID(), ivs.NewParticipantID()
	const perWorker = 12
	var wg sync.WaitGroup
	seqs := make([][]int64, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				e := ivs.Event{StageID: st, SessionID: sess, ParticipantID: pid, Name: ivs.EventSubscribeStarted,
					Time: time.Now(), RemoteParticipantID: ivs.ParticipantID(fmt.Sprintf("w%02d-%02d", w, i))}
				if err := ss[w%len(ss)].Update(ctx, func(tx store.Tx) error { return tx.AppendEvent(ctx, &e) }); err != nil {
					errs[w] = err
					return
				}
				seqs[w] = append(seqs[w], e.Seq)
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	const n = workers * perWorker
	got := walk(t, 100, n, func(p store.Page) ([]ivs.Event, error) { return s.ListEvents(ctx, st, sess, pid, p) },
		func(e ivs.Event) store.Cursor { return store.Cursor{Seq: e.Seq} })
	if len(got) != n {
		t.Fatalf("%d events stored, want %d", len(got), n)
	}
	bySeq := map[int64]ivs.ParticipantID{}
	for i, e := range got {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has Seq %d: want 1..%d without gaps or duplicates", i, e.Seq, n)
		}
		bySeq[e.Seq] = e.RemoteParticipantID
	}
	// Each worker's events keep their order, and the Seq AppendEvent reported is the stored one.
	for w := range workers {
		for i, seq := range seqs[w] {
			if want := ivs.ParticipantID(fmt.Sprintf("w%02d-%02d", w, i)); bySeq[seq] != want {
				t.Fatalf("worker %d event %d: AppendEvent reported Seq %d, which holds %q", w, i, seq, bySeq[seq])
			}
			if i > 0 && seq <= seqs[w][i-1] {
				t.Fatalf("worker %d: Seq %d after %d", w, seq, seqs[w][i-1])
			}
		}
	}
}

// ---- crash recovery reads, deletes ----

func testActiveAndConnected(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := insertStage(t, s, newStage(at(0)))
	b := insertStage(t, s, newStage(at(0)))
	var wantSessions []ivs.Session
	var wantParts []ivs.Participant
	update(t, s, func(tx store.Tx) error {
		for i, st := range []ivs.Stage{a, b, a} {
			active := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(10 + i)}
			ended := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(i), EndTime: at(5 + i)}
			wantSessions = append(wantSessions, active)
			if err := errors.Join(tx.InsertSession(ctx, active), tx.InsertSession(ctx, ended)); err != nil {
				return err
			}
			for j := range 3 {
				p := newParticipant(st.ID, active.ID, at(20+j))
				if j == 1 {
					p.State = ivs.StateDisconnected
				} else {
					wantParts = append(wantParts, p)
				}
				if err := tx.PutParticipant(ctx, p); err != nil {
					return err
				}
			}
			gone := newParticipant(st.ID, ended.ID, at(1))
			gone.State = ivs.StateDisconnected
			if err := tx.PutParticipant(ctx, gone); err != nil {
				return err
			}
		}
		return nil
	})
	sessKey := func(s ivs.Session) string { return string(s.StageID) + "/" + string(s.ID) }
	partKey := func(p ivs.Participant) string {
		return string(p.StageID) + "/" + string(p.SessionID) + "/" + string(p.ID)
	}
	gotSessions := must(s.ActiveSessions(ctx)).get(t)
	slices.SortFunc(gotSessions, func(x, y ivs.Session) int { return cmp.Compare(sessKey(x), sessKey(y)) })
	slices.SortFunc(wantSessions, func(x, y ivs.Session) int { return cmp.Compare(sessKey(x), sessKey(y)) })
	eqList(t, "ActiveSessions", gotSessions, wantSessions, normSession)
	gotParts := must(s.ConnectedParticipants(ctx)).get(t)
	slices.SortFunc(gotParts, func(x, y ivs.Participant) int { return cmp.Compare(partKey(x), partKey(y)) })
	slices.SortFunc(wantParts, func(x, y ivs.Participant) int { return cmp.Compare(partKey(x), partKey(y)) })
	eqList(t, "ConnectedParticipants", gotParts, wantParts, normParticipant)

	// Crash recovery: mark them disconnected and end the sessions; both lists empty out.
	update(t, s, func(tx store.Tx) error {
		for _, p := range gotParts {
			p.State = ivs.StateDisconnected
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
		}
		for _, ss := range gotSessions {
			ss.EndTime = at(100)
			if err := tx.UpdateSession(ctx, ss); err != nil {
				return err
			}
		}
		return nil
	})
	if v := must(s.ActiveSessions(ctx)).get(t); len(v) != 0 {
		t.Fatalf("ActiveSessions after ending them all: %v", v)
	}
	if v := must(s.ConnectedParticipants(ctx)).get(t); len(v) != 0 {
		t.Fatalf("ConnectedParticipants after disconnecting them all: %v", v)
	}
}

// fill writes a session with participants and their events, and returns the participants.
func fill(ctx context.Context, tx store.Tx, ss ivs.Session, participants, events int) ([]ivs.Participant, error) {
	if err := tx.InsertSession(ctx, ss); err != nil {
		return nil, err
	}
	var ps []ivs.Participant
	for i := range participants {
		p := newParticipant(ss.StageID, ss.ID, ss.StartTime.Add(time.Duration(i)*time.Millisecond))
		if !ss.Active() {
			p.State = ivs.StateDisconnected
		}
		if err := tx.PutParticipant(ctx, p); err != nil {
			return nil, err
		}
		for range events {
			e := ivs.Event{StageID: ss.StageID, SessionID: ss.ID, ParticipantID: p.ID, Name: ivs.EventJoined, Time: ss.StartTime}
			if err := tx.AppendEvent(ctx, &e); err != nil {
				return nil, err
			}
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func countAll(t *testing.T, s store.Store, ss ivs.Session) (participants, events int) {
	t.Helper()
	ctx := t.Context()
	ps := walk(t, 100, 100000, func(p store.Page) ([]ivs.Participant, error) {
		return s.ListParticipants(ctx, ss.StageID, ss.ID, store.ParticipantFilter{}, p)
	}, func(p ivs.Participant) store.Cursor { return store.Cursor{Time: p.FirstJoinTime, ID: string(p.ID)} })
	for _, p := range ps {
		evs := walk(t, 100, 100000, func(pg store.Page) ([]ivs.Event, error) {
			return s.ListEvents(ctx, ss.StageID, ss.ID, p.ID, pg)
		}, func(e ivs.Event) store.Cursor { return store.Cursor{Seq: e.Seq} })
		events += len(evs)
	}
	return len(ps), events
}

func testDeleteStageCascade(t *testing.T, s store.Store) {
	ctx := t.Context()
	doomed := insertStage(t, s, newStage(at(0)))
	kept := insertStage(t, s, newStage(at(0)))
	arn := "arn:aws:ivs:us-east-1:000000000000:stage/" + string(doomed.ID)
	var doomedSessions, keptSessions []ivs.Session
	var doomedParts []ivs.Participant
	update(t, s, func(tx store.Tx) error {
		for i := range 2 {
			d := ivs.Session{StageID: doomed.ID, ID: ivs.NewSessionID(), StartTime: at(i)}
			k := ivs.Session{StageID: kept.ID, ID: ivs.NewSessionID(), StartTime: at(i)}
			if i == 0 {
				d.EndTime, k.EndTime = at(5), at(5)
			}
			ps, err := fill(ctx, tx, d, 3, 4)
			if err != nil {
				return err
			}
			doomedParts = append(doomedParts, ps...)
			if _, err := fill(ctx, tx, k, 3, 4); err != nil {
				return err
			}
			doomedSessions, keptSessions = append(doomedSessions, d), append(keptSessions, k)
		}
		return errors.Join(tx.Revoke(ctx, doomed.ID, doomedParts[0].ID), tx.Revoke(ctx, kept.ID, doomedParts[0].ID),
			tx.MergeTags(ctx, arn, map[string]string{"a": "b"}))
	})
	update(t, s, func(tx store.Tx) error { return tx.DeleteStage(ctx, doomed.ID) })

	if _, err := s.GetStage(ctx, doomed.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetStage after DeleteStage: %v", err)
	}
	if v := must(s.ListSessions(ctx, doomed.ID, store.Page{Limit: 100})).get(t); len(v) != 0 {
		t.Fatalf("sessions of a deleted stage: %v", v)
	}
	for _, ss := range doomedSessions {
		if _, err := s.GetSession(ctx, ss.StageID, ss.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetSession of a deleted stage's session: %v", err)
		}
		if p, e := countAll(t, s, ss); p != 0 {
			t.Fatalf("a deleted stage's session still has %d participants and %d events", p, e)
		}
	}
	for _, p := range doomedParts {
		if _, err := s.GetParticipant(ctx, p.StageID, p.SessionID, p.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetParticipant of a deleted stage's participant: %v", err)
		}
		if v := must(s.ListEvents(ctx, p.StageID, p.SessionID, p.ID, store.Page{Limit: 100})).get(t); len(v) != 0 {
			t.Fatalf("events of a deleted stage's participant: %d", len(v))
		}
	}
	if must(s.Revoked(ctx, doomed.ID, doomedParts[0].ID)).get(t) {
		t.Fatal("a revocation survived DeleteStage")
	}
	for _, ss := range must(s.ActiveSessions(ctx)).get(t) {
		if ss.StageID == doomed.ID {
			t.Fatalf("ActiveSessions lists a deleted stage's session %s", ss.ID)
		}
	}
	for _, p := range must(s.ConnectedParticipants(ctx)).get(t) {
		if p.StageID == doomed.ID {
			t.Fatalf("ConnectedParticipants lists a deleted stage's participant %s", p.ID)
		}
	}
	// Tags go with DeleteTags, not with DeleteStage.
	eq(t, "tags of a deleted stage before DeleteTags", must(s.Tags(ctx, arn)).get(t), map[string]string{"a": "b"})

	// The other stage is untouched.
	must(s.GetStage(ctx, kept.ID)).get(t)
	if !must(s.Revoked(ctx, kept.ID, doomedParts[0].ID)).get(t) {
		t.Fatal("DeleteStage removed another stage's revocation")
	}
	for _, ss := range keptSessions {
		must(s.GetSession(ctx, ss.StageID, ss.ID)).get(t)
		if p, e := countAll(t, s, ss); p != 3 || e != 12 {
			t.Fatalf("another stage's session lost rows: %d participants, %d events", p, e)
		}
	}
}

func testDeleteEndedBefore(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := insertStage(t, s, newStage(at(0)))
	b := insertStage(t, s, newStage(at(0)))
	cut := at(1000)
	type row struct {
		ss   ivs.Session
		gone bool
	}
	var rows []row
	update(t, s, func(tx store.Tx) error {
		for _, st := range []ivs.Stage{a, b} {
			for _, r := range []row{
				{ivs.Session{StartTime: at(1), EndTime: at(2)}, true},
				{ivs.Session{StartTime: at(10), EndTime: cut.Add(-time.Nanosecond)}, true},
				{ivs.Session{StartTime: at(20), EndTime: cut}, false}, // not before t
				{ivs.Session{StartTime: at(30), EndTime: cut.Add(time.Hour)}, false},
				{ivs.Session{StartTime: at(5)}, false}, // active, started long before t
			} {
				r.ss.StageID, r.ss.ID = st.ID, ivs.NewSessionID()
				if _, err := fill(ctx, tx, r.ss, 3, 5); err != nil {
					return err
				}
				rows = append(rows, r)
			}
		}
		return nil
	})
	n := must(s.DeleteEndedBefore(ctx, cut)).get(t)
	if n != 4 {
		t.Fatalf("DeleteEndedBefore deleted %d sessions, want 4", n)
	}
	for _, r := range rows {
		_, err := s.GetSession(ctx, r.ss.StageID, r.ss.ID)
		p, e := countAll(t, s, r.ss)
		if r.gone {
			if !errors.Is(err, store.ErrNotFound) || p != 0 || e != 0 {
				t.Fatalf("session ended %s: err %v, %d participants, %d events left", r.ss.EndTime, err, p, e)
			}
		} else if err != nil || p != 3 || e != 15 {
			t.Fatalf("session ended %s (active %v): err %v, %d participants, %d events; want kept whole",
				r.ss.EndTime, r.ss.Active(), err, p, e)
		}
	}
	// The stages themselves stay.
	must(s.GetStage(ctx, a.ID)).get(t)
	must(s.GetStage(ctx, b.ID)).get(t)
	if n := must(s.DeleteEndedBefore(ctx, cut)).get(t); n != 0 {
		t.Fatalf("a second DeleteEndedBefore deleted %d sessions", n)
	}
	if v := must(s.ActiveSessions(ctx)).get(t); len(v) != 2 {
		t.Fatalf("active sessions after DeleteEndedBefore: %d, want 2", len(v))
	}
	if n := must(s.DeleteEndedBefore(ctx, cut.Add(2*time.Hour))).get(t); n != 4 {
		t.Fatalf("DeleteEndedBefore a later time deleted %d sessions, want 4", n)
	}
	if v := must(s.ActiveSessions(ctx)).get(t); len(v) != 2 {
		t.Fatalf("active sessions after deleting every ended one: %d, want 2", len(v))
	}
}

// testDeleteEndedBeforeMany deletes more rows than an implementation is likely to delete in one batch.
func testDeleteEndedBeforeMany(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	var ended []ivs.Session
	active := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(0)}
	update(t, s, func(tx store.Tx) error {
		for i := range 150 {
			ss := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(i), EndTime: at(i + 1)}
			parts, evs := 2, 3
			if i == 7 {
				parts, evs = 30, 150 // one big session: 4500 events
			}
			if _, err := fill(ctx, tx, ss, parts, evs); err != nil {
				return err
			}
			ended = append(ended, ss)
		}
		_, err := fill(ctx, tx, active, 5, 5)
		return err
	})
	if n := must(s.DeleteEndedBefore(ctx, at(10000))).get(t); n != len(ended) {
		t.Fatalf("DeleteEndedBefore deleted %d sessions, want %d", n, len(ended))
	}
	if v := must(s.ListSessions(ctx, st.ID, store.Page{Limit: 100})).get(t); len(v) != 1 || v[0].ID != active.ID {
		t.Fatalf("sessions left: %v, want only the active one", v)
	}
	if p, e := countAll(t, s, ended[7]); p != 0 || e != 0 {
		t.Fatalf("the big session left %d participants, %d events", p, e)
	}
	if p, e := countAll(t, s, active); p != 5 || e != 25 {
		t.Fatalf("the active session has %d participants, %d events; want 5, 25", p, e)
	}
}

// ---- what clients choose, and depth ----

// testArbitraryStrings: strings a client chooses are stored as given, NUL and invalid UTF-8 included
// (a self-signed token's jti is the participant id as is; user ids, tags and key material come from requests),
// and they order byte by byte.
func testArbitraryStrings(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.NewSessionID()
	odd := "nul\x00 bad\xff\xfe utf8 ✓ 'quote\" \\ %_"
	ids := []ivs.ParticipantID{"a", "a\x00", "a\x00b", "a\xff", "aé", "b", "\x00", "\xff\xff", ivs.ParticipantID(odd)}
	var want []ivs.Participant
	update(t, s, func(tx store.Tx) error {
		for i, id := range ids {
			p := ivs.Participant{StageID: st.ID, SessionID: sess, ID: id, UserID: odd + fmt.Sprint(i%2), State: ivs.StateConnected,
				// Attributes are kept as JSON, which has no invalid UTF-8 (both stores would turn it into U+FFFD).
				FirstJoinTime: at(1), Attributes: map[string]string{"k\x00": "v\x00", "✓ 'q\" \\": "ok"},
				Client: ivs.ClientInfo{ISPName: odd, OSName: "\x00", OSVersion: "\xff", BrowserName: odd, BrowserVersion: "1\x00",
					SDKVersion: odd, Protocol: ivs.ProtocolWHIP}}
			want = append(want, p)
			e := ivs.Event{StageID: st.ID, SessionID: sess, ParticipantID: id, Name: ivs.EventSubscribeStarted, Time: at(2), RemoteParticipantID: ids[(i+1)%len(ids)]}
			if err := errors.Join(tx.PutParticipant(ctx, p), tx.AppendEvent(ctx, &e), tx.Revoke(ctx, st.ID, id)); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(p ivs.Participant) (time.Time, string) { return p.FirstJoinTime, string(p.ID) }
	sortBy(want, key, true)
	checkList(t, want, key, true, normParticipant, func(p store.Page) ([]ivs.Participant, error) {
		return s.ListParticipants(ctx, st.ID, sess, store.ParticipantFilter{}, p)
	})
	user := odd + "1"
	if got := must(s.ListParticipants(ctx, st.ID, sess, store.ParticipantFilter{UserID: &user}, store.Page{Limit: 100})).get(t); len(got) != len(ids)/2 {
		t.Fatalf("filter by a user id with NUL and invalid UTF-8: %d participants, want %d", len(got), len(ids)/2)
	}
	for i, id := range ids {
		eq(t, fmt.Sprintf("participant %q", id), normParticipant(must(s.GetParticipant(ctx, st.ID, sess, id)).get(t)), normParticipant(want[slices.IndexFunc(want, func(p ivs.Participant) bool { return p.ID == id })]))
		evs := must(s.ListEvents(ctx, st.ID, sess, id, store.Page{Limit: 10})).get(t)
		if len(evs) != 1 || evs[0].ParticipantID != id || evs[0].RemoteParticipantID != ids[(i+1)%len(ids)] {
			t.Fatalf("events of participant %q: %+v", id, evs)
		}
		if !must(s.Revoked(ctx, st.ID, id)).get(t) {
			t.Fatalf("participant %q not revoked", id)
		}
	}
	if must(s.Revoked(ctx, st.ID, "a\x00c")).get(t) {
		t.Fatal("Revoked matched a different id")
	}

	arn := "arn:aws:ivs:us-east-1:000000000000:stage/" + string(st.ID)
	tags := map[string]string{odd: odd, "k\x00": "", "\xff": "\x00"}
	update(t, s, func(tx store.Tx) error { return tx.MergeTags(ctx, arn, tags) })
	eq(t, "tags with NUL and invalid UTF-8", must(s.Tags(ctx, arn)).get(t), tags)
	update(t, s, func(tx store.Tx) error { return tx.RemoveTags(ctx, arn, []string{"k\x00", "\xfe"}) })
	delete(tags, "k\x00")
	eq(t, "tags after RemoveTags of odd keys", must(s.Tags(ctx, arn)).get(t), tags)

	k := ivs.PublicKey{ID: ivs.NewPublicKeyID(), Name: "k", Material: "\x00\xff" + odd + "\r\n-----BEGIN PUBLIC KEY-----\n", Fingerprint: "f", CreatedAt: at(1)}
	update(t, s, func(tx store.Tx) error { return tx.InsertPublicKey(ctx, k) })
	eq(t, "public key with odd material", normKey(must(s.GetPublicKey(ctx, k.ID)).get(t)), k)
}

// testDeepPages: keyset pages stay right thousands of rows deep, read from the start and from cursors
// near the end.
func testDeepPages(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess, pid := ivs.NewSessionID(), ivs.NewParticipantID()
	const nEvents, nParts = 2000, 800
	var parts []ivs.Participant
	update(t, s, func(tx store.Tx) error {
		for i := range nEvents {
			e := ivs.Event{StageID: st.ID, SessionID: sess, ParticipantID: pid, Name: ivs.EventSubscribeStarted, Time: at(i / 7),
				RemoteParticipantID: ivs.ParticipantID(fmt.Sprint(i))}
			if err := tx.AppendEvent(ctx, &e); err != nil {
				return err
			}
		}
		for _, tm := range tiedTimes(nParts) {
			p := newParticipant(st.ID, sess, tm)
			parts = append(parts, p)
			if err := tx.PutParticipant(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	evs := walk(t, 100, nEvents, func(p store.Page) ([]ivs.Event, error) { return s.ListEvents(ctx, st.ID, sess, pid, p) },
		func(e ivs.Event) store.Cursor { return store.Cursor{Seq: e.Seq} })
	if len(evs) != nEvents {
		t.Fatalf("%d events read in pages of 100, want %d", len(evs), nEvents)
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.RemoteParticipantID != ivs.ParticipantID(fmt.Sprint(i)) {
			t.Fatalf("event %d: Seq %d, remote %q", i, e.Seq, e.RemoteParticipantID)
		}
	}
	for _, after := range []int64{nEvents - 150, nEvents - 100, nEvents - 1} {
		got := must(s.ListEvents(ctx, st.ID, sess, pid, store.Page{After: &store.Cursor{Seq: after}, Limit: 100})).get(t)
		if want := min(100, nEvents-int(after)); len(got) != want || got[0].Seq != after+1 {
			t.Fatalf("page after Seq %d: %d events from Seq %d, want %d from %d", after, len(got), got[0].Seq, want, after+1)
		}
	}
	key := func(p ivs.Participant) (time.Time, string) { return p.FirstJoinTime, string(p.ID) }
	sortBy(parts, key, true)
	got := walk(t, 50, nParts, func(p store.Page) ([]ivs.Participant, error) {
		return s.ListParticipants(ctx, st.ID, sess, store.ParticipantFilter{}, p)
	}, func(p ivs.Participant) store.Cursor { tm, id := key(p); return store.Cursor{Time: tm, ID: id} })
	eqList(t, "participants read in pages of 50", got, parts, normParticipant)
	last := parts[nParts-31]
	tail := must(s.ListParticipants(ctx, st.ID, sess, store.ParticipantFilter{},
		store.Page{After: &store.Cursor{Time: last.FirstJoinTime, ID: string(last.ID)}, Limit: 100})).get(t)
	eqList(t, "the last page of participants", tail, parts[nParts-30:], normParticipant)
}
