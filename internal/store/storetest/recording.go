package storetest

import (
	"testing"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// testParticipantRecording: a participant's recording is set by SetParticipantRecording alone (PutParticipant
// neither sets nor resets it), reads back through every participant read, is filtered on by
// ListParticipants, and UnfinishedRecordings finds the ones a crash may have interrupted.
func testParticipantRecording(t *testing.T, s store.Store) {
	ctx := t.Context()
	st := insertStage(t, s, newStage(at(0)))
	sess := ivs.Session{StageID: st.ID, ID: ivs.NewSessionID(), StartTime: at(1)}
	update(t, s, func(tx store.Tx) error { return tx.InsertSession(ctx, sess) })
	var ps []ivs.Participant
	for i := range 4 {
		p := newParticipant(st.ID, sess.ID, at(10+i))
		p.Recording = ivs.ParticipantRecording{BucketName: "ignored", Prefix: "ignored", State: ivs.RecordingActive}
		update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, p) })
		p.Recording = ivs.ParticipantRecording{}
		ps = append(ps, p)
	}
	// A new participant is DISABLED whatever its struct says: the zero value.
	eq(t, "a new participant's recording", must(s.GetParticipant(ctx, st.ID, sess.ID, ps[0].ID)).get(t).Recording, ivs.ParticipantRecording{})

	rec := func(state ivs.RecordingState, i int) ivs.ParticipantRecording {
		return ivs.ParticipantRecording{BucketName: "my-bucket", Prefix: string(st.ID) + "/" + string(sess.ID) + "/" + string(ps[i].ID) + "/1700000000000", State: state}
	}
	states := []ivs.RecordingState{ivs.RecordingStarting, ivs.RecordingActive, ivs.RecordingStopped}
	update(t, s, func(tx store.Tx) error {
		for i, state := range states {
			if err := tx.SetParticipantRecording(ctx, st.ID, sess.ID, ps[i].ID, rec(state, i)); err != nil {
				return err
			}
			ps[i].Recording = rec(state, i)
		}
		return nil
	})
	err := s.Update(ctx, func(tx store.Tx) error {
		return tx.SetParticipantRecording(ctx, st.ID, sess.ID, ivs.NewParticipantID(), rec(ivs.RecordingActive, 0))
	})
	wantErr(t, "SetParticipantRecording of an unknown participant", err, store.ErrNotFound)

	for i, p := range ps {
		eq(t, "GetParticipant", normParticipant(must(s.GetParticipant(ctx, st.ID, sess.ID, p.ID)).get(t)), normParticipant(ps[i]))
	}
	// PutParticipant keeps the recording (the domain rewrites participants it holds in memory).
	again := ps[1]
	again.State, again.Recording = ivs.StateDisconnected, ivs.ParticipantRecording{}
	update(t, s, func(tx store.Tx) error { return tx.PutParticipant(ctx, again) })
	again.Recording = ps[1].Recording
	ps[1] = again
	eq(t, "GetParticipant after PutParticipant", normParticipant(must(s.GetParticipant(ctx, st.ID, sess.ID, again.ID)).get(t)), normParticipant(again))

	list := func(state ivs.RecordingState) []ivs.Participant {
		return must(s.ListParticipants(ctx, st.ID, sess.ID, store.ParticipantFilter{RecordingState: state}, store.Page{Limit: 10})).get(t)
	}
	eqList(t, "filterByRecordingState ACTIVE", list(ivs.RecordingActive), []ivs.Participant{ps[1]}, normParticipant)
	eqList(t, "filterByRecordingState STOPPED", list(ivs.RecordingStopped), []ivs.Participant{ps[2]}, normParticipant)
	eqList(t, "filterByRecordingState DISABLED", list(ivs.RecordingDisabled), []ivs.Participant{ps[3]}, normParticipant)
	eqList(t, "filterByRecordingState FAILED", list(ivs.RecordingFailed), nil, normParticipant)
	// Pages of a filtered list.
	first := must(s.ListParticipants(ctx, st.ID, sess.ID, store.ParticipantFilter{RecordingState: ivs.RecordingActive},
		store.Page{Limit: 1, After: &store.Cursor{Time: ps[0].FirstJoinTime, ID: string(ps[0].ID)}})).get(t)
	eqList(t, "filterByRecordingState after a cursor", first, []ivs.Participant{ps[1]}, normParticipant)
	for _, state := range []ivs.RecordingState{ivs.RecordingActive, ivs.RecordingStopped, ivs.RecordingDisabled, ivs.RecordingFailed} {
		got := must(s.ListParticipantSummaries(ctx, st.ID, sess.ID, store.ParticipantFilter{RecordingState: state}, store.Page{Limit: 10})).get(t)
		eqList(t, "summaries, filterByRecordingState "+string(state), got, summaries(list(state)), normSummary)
	}

	eqList(t, "UnfinishedRecordings", must(s.UnfinishedRecordings(ctx)).get(t), sortedByID(ps[:2]), normParticipant)
	update(t, s, func(tx store.Tx) error {
		return tx.SetParticipantRecording(ctx, st.ID, sess.ID, ps[0].ID, rec(ivs.RecordingFailed, 0))
	})
	eqList(t, "UnfinishedRecordings after one failed", must(s.UnfinishedRecordings(ctx)).get(t), []ivs.Participant{ps[1]}, normParticipant)
}

func sortedByID(ps []ivs.Participant) []ivs.Participant {
	out := append([]ivs.Participant(nil), ps...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].ID < out[i].ID {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
