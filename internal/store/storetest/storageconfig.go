package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

func normStorageConfiguration(c ivs.StorageConfiguration) ivs.StorageConfiguration {
	c.CreatedAt = normTime(c.CreatedAt)
	return c
}

func newStorageConfiguration(created time.Time) ivs.StorageConfiguration {
	return ivs.StorageConfiguration{ID: ivs.NewStorageConfigurationID(), Name: "recordings", BucketName: "my-bucket.v1", CreatedAt: created}
}

// testStorageConfigurations: insert, read, count, delete, and the errors of each.
func testStorageConfigurations(t *testing.T, s store.Store) {
	ctx := t.Context()
	if n := must(s.CountStorageConfigurations(ctx)).get(t); n != 0 {
		t.Fatalf("CountStorageConfigurations on an empty store = %d", n)
	}
	c := newStorageConfiguration(at(1))
	update(t, s, func(tx store.Tx) error { return tx.InsertStorageConfiguration(ctx, c) })
	eq(t, "GetStorageConfiguration", normStorageConfiguration(must(s.GetStorageConfiguration(ctx, c.ID)).get(t)), c)

	err := s.Update(ctx, func(tx store.Tx) error {
		dup := c
		dup.Name, dup.BucketName = "other", "other-bucket"
		return tx.InsertStorageConfiguration(ctx, dup)
	})
	wantErr(t, "InsertStorageConfiguration of an existing id", err, store.ErrExists)
	eq(t, "after a failed duplicate insert", normStorageConfiguration(must(s.GetStorageConfiguration(ctx, c.ID)).get(t)), c)
	_, err = s.GetStorageConfiguration(ctx, ivs.NewStorageConfigurationID())
	wantErr(t, "GetStorageConfiguration of an unknown id", err, store.ErrNotFound)

	// An unnamed one keeps its empty name.
	unnamed := newStorageConfiguration(at(2))
	unnamed.Name = ""
	update(t, s, func(tx store.Tx) error { return tx.InsertStorageConfiguration(ctx, unnamed) })
	update(t, s, func(tx store.Tx) error {
		got, err := tx.LockStorageConfiguration(ctx, unnamed.ID)
		if err != nil {
			return err
		}
		eq(t, "LockStorageConfiguration", normStorageConfiguration(got), unnamed)
		_, err = tx.LockStorageConfiguration(ctx, ivs.NewStorageConfigurationID())
		wantErr(t, "LockStorageConfiguration of an unknown id", err, store.ErrNotFound)
		n, err := tx.CountStorageConfigurations(ctx)
		if err != nil {
			return err
		}
		if n != 2 {
			t.Errorf("CountStorageConfigurations in a transaction = %d, want 2", n)
		}
		return nil
	})
	eqList(t, "ListStorageConfigurations", must(s.ListStorageConfigurations(ctx, store.Page{Limit: 10})).get(t),
		[]ivs.StorageConfiguration{c, unnamed}, normStorageConfiguration)

	update(t, s, func(tx store.Tx) error { return tx.DeleteStorageConfiguration(ctx, c.ID) })
	_, err = s.GetStorageConfiguration(ctx, c.ID)
	wantErr(t, "GetStorageConfiguration after its delete", err, store.ErrNotFound)
	if n := must(s.CountStorageConfigurations(ctx)).get(t); n != 1 {
		t.Fatalf("CountStorageConfigurations after a delete = %d, want 1", n)
	}
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteStorageConfiguration(ctx, c.ID) })
	wantErr(t, "DeleteStorageConfiguration of an unknown id", err, store.ErrNotFound)
}

// testOrderStorageConfigurations: ListStorageConfigurations is keyset-paginated by (creation, id).
func testOrderStorageConfigurations(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []ivs.StorageConfiguration
	update(t, s, func(tx store.Tx) error {
		for _, tm := range tiedTimes(listRows) {
			c := newStorageConfiguration(tm)
			want = append(want, c)
			if err := tx.InsertStorageConfiguration(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	key := func(c ivs.StorageConfiguration) (time.Time, string) { return c.CreatedAt, string(c.ID) }
	sortBy(want, key, true)
	checkList(t, want, key, true, normStorageConfiguration, func(p store.Page) ([]ivs.StorageConfiguration, error) {
		return s.ListStorageConfigurations(ctx, p)
	})
}

// testStageRecording: a stage's recording configuration is written by InsertStage and UpdateStage, read back
// whole by every stage read, and StagesUsingStorageConfiguration finds the stages that name one.
func testStageRecording(t *testing.T, s store.Store) {
	ctx := t.Context()
	sc1, sc2 := ivs.NewStorageConfigurationID(), ivs.NewStorageConfigurationID()
	full := ivs.AutoRecording{
		StorageConfigurationID: sc1, MediaType: ivs.MediaAudioOnly, ThumbnailMode: ivs.ThumbnailsInterval,
		ThumbnailInterval: 86400, ThumbnailSequential: true, ThumbnailLatest: true, ReconnectWindowSeconds: 300,
		TargetSegmentSeconds: 2, SkipReplicas: true,
	}
	a := newStage(at(1))
	a.Recording = full
	b := newStage(at(2))
	b.Recording = ivs.AutoRecording{StorageConfigurationID: sc1} // the defaults
	plain := newStage(at(3))                                     // not recording
	for _, st := range []ivs.Stage{a, b, plain} {
		insertStage(t, s, st)
	}
	eq(t, "GetStage of a recording stage", normStage(must(s.GetStage(ctx, a.ID)).get(t)), a)
	eq(t, "GetStage of a stage with the default configuration", normStage(must(s.GetStage(ctx, b.ID)).get(t)), b)
	eq(t, "GetStage of a stage that does not record", normStage(must(s.GetStage(ctx, plain.ID)).get(t)), plain)
	eqList(t, "ListStages", must(s.ListStages(ctx, store.Page{Limit: 10})).get(t), []ivs.Stage{a, b, plain}, normStage)
	update(t, s, func(tx store.Tx) error {
		got, err := tx.LockStage(ctx, a.ID)
		eq(t, "LockStage", normStage(got), a)
		return err
	})

	using := func(id ivs.StorageConfigurationID, n int) []ivs.StageID {
		t.Helper()
		return must(s.StagesUsingStorageConfiguration(ctx, id, n)).get(t)
	}
	sorted := func(ids ...ivs.StageID) []ivs.StageID { slices.Sort(ids); return ids }
	eq(t, "stages using sc1", using(sc1, 0), sorted(a.ID, b.ID))
	if got := using(sc1, 1); len(got) != 1 || got[0] != sorted(a.ID, b.ID)[0] {
		t.Fatalf("stages using sc1, at most 1: %v", got)
	}
	if got := using(sc2, 0); len(got) != 0 {
		t.Fatalf("stages using an unused storage configuration: %v", got)
	}
	if got := using("", 0); len(got) != 0 {
		t.Fatalf("stages using the empty storage configuration id (the ones not recording): %v", got)
	}

	// UpdateStage replaces the configuration; the zero value turns recording off.
	a.Recording = ivs.AutoRecording{StorageConfigurationID: sc2, ThumbnailMode: ivs.ThumbnailsDisabled}
	b.Recording = ivs.AutoRecording{}
	update(t, s, func(tx store.Tx) error {
		if err := tx.UpdateStage(ctx, a); err != nil {
			return err
		}
		return tx.UpdateStage(ctx, b)
	})
	eq(t, "GetStage after a new configuration", normStage(must(s.GetStage(ctx, a.ID)).get(t)), a)
	eq(t, "GetStage after recording was turned off", normStage(must(s.GetStage(ctx, b.ID)).get(t)), b)
	eq(t, "stages using sc1 after the updates", len(using(sc1, 0)), 0)
	eq(t, "stages using sc2 after the updates", using(sc2, 0), []ivs.StageID{a.ID})
	update(t, s, func(tx store.Tx) error { return tx.DeleteStage(ctx, a.ID) })
	eq(t, "stages using sc2 after the stage's delete", len(using(sc2, 0)), 0)
}

// testConcurrentStorageConfigurations: the storage configuration quota holds against concurrent creators, and
// a stage that starts naming a configuration never survives that configuration's delete: whichever of
// the two transactions comes second sees the first (the pattern of the stage domain: the stage locks the
// configuration it names; the delete locks it too and then looks for stages naming it).
func testConcurrentStorageConfigurations(t *testing.T, ss []store.Store) {
	ctx := t.Context()
	const limit = 5
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			errs[w] = ss[w%len(ss)].Update(ctx, func(tx store.Tx) error {
				n, err := tx.CountStorageConfigurations(ctx)
				if err != nil || n >= limit {
					return err
				}
				time.Sleep(2 * time.Millisecond) // room for the others to count too, unless the store makes them wait
				return tx.InsertStorageConfiguration(ctx, newStorageConfiguration(at(w)))
			})
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
	}
	if n := must(ss[0].CountStorageConfigurations(ctx)).get(t); n != limit {
		t.Fatalf("%d workers checking a quota of %d storage configurations left %d", workers, limit, n)
	}

	errInUse := errors.New("in use")
	for round := range 10 {
		c := newStorageConfiguration(at(100 + round))
		update(t, ss[0], func(tx store.Tx) error { return tx.InsertStorageConfiguration(ctx, c) })
		st := newStage(at(100 + round))
		st.Recording = ivs.AutoRecording{StorageConfigurationID: c.ID}
		var refErr, delErr error
		var start sync.WaitGroup
		start.Add(1)
		wg.Go(func() {
			start.Wait()
			refErr = ss[0].Update(ctx, func(tx store.Tx) error {
				if _, err := tx.LockStorageConfiguration(ctx, c.ID); err != nil {
					return err
				}
				time.Sleep(time.Millisecond)
				return tx.InsertStage(ctx, st)
			})
		})
		wg.Go(func() {
			start.Wait()
			delErr = ss[len(ss)-1].Update(ctx, func(tx store.Tx) error {
				if _, err := tx.LockStorageConfiguration(ctx, c.ID); err != nil {
					return err
				}
				using, err := tx.StagesUsingStorageConfiguration(ctx, c.ID, 1)
				if err != nil {
					return err
				}
				if len(using) > 0 {
					return errInUse
				}
				time.Sleep(time.Millisecond)
				return tx.DeleteStorageConfiguration(ctx, c.ID)
			})
		})
		start.Done()
		wg.Wait()
		_, getErr := ss[0].GetStorageConfiguration(ctx, c.ID)
		_, stageErr := ss[0].GetStage(ctx, st.ID)
		switch {
		case refErr == nil && errors.Is(delErr, errInUse):
			if getErr != nil || stageErr != nil {
				t.Fatalf("round %d: the stage came first, yet the configuration (%v) or the stage (%v) is gone", round, getErr, stageErr)
			}
		case delErr == nil && errors.Is(refErr, store.ErrNotFound):
			if !errors.Is(getErr, store.ErrNotFound) || !errors.Is(stageErr, store.ErrNotFound) {
				t.Fatalf("round %d: the delete came first, yet the configuration (%v) or the stage (%v) is there", round, getErr, stageErr)
			}
		default:
			t.Fatalf("round %d: stage insert: %v; delete: %v (one must have seen the other)", round, refErr, delErr)
		}
	}
}
