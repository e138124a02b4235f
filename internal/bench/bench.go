// Package bench is openstage's benchmark harness: it measures, in one run on one machine, the ceilings
// that machine allows (a bare net/http handler, AES-GCM plus a loopback UDP send, raw SQLite reads and
// batch inserts) and openstage's API, store and media forwarding, and reports each result as a ratio to
// its ceiling (docs/BENCHMARKS.md). `openstage bench` runs it; its tests run it at a tiny size so that it
// keeps working.
package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/sqlite"
)

// Options configure Run.
type Options struct {
	// Dir is where the scratch databases go (default os.TempDir()); it should be on the disk whose
	// fsyncs are to be measured.
	Dir string
	// Only names the parts to run: ceilings, api, ingest, forward (default all).
	Only []string
	// Tiny runs everything at a tiny size: for tests, it checks that the harness works.
	Tiny bool
	// ProfileDir, if set, receives CPU profiles: the API part's (this process), and the server's in each
	// forwarding scenario.
	ProfileDir string
	// Participants and Events size the API benchmark's session.
	Participants, Events int
	// Server starts the server process the forwarding part loads.
	Server Launcher
	// Log gets progress lines (nil: none).
	Log io.Writer
}

func (o Options) want(part string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, part) }

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "bench: "+format+"\n", args...)
	}
}

// timing is how long each kind of measurement runs.
type timing struct {
	warmup, api, raw, ingest, ceiling time.Duration
	clients                           []int
	writers                           []int
}

func (o Options) timing() timing {
	if o.Tiny {
		return timing{warmup: 20 * time.Millisecond, api: 100 * time.Millisecond, raw: 50 * time.Millisecond,
			ingest: 200 * time.Millisecond, ceiling: 50 * time.Millisecond, clients: []int{1, 4}, writers: []int{1, 8}}
	}
	return timing{warmup: 300 * time.Millisecond, api: 2 * time.Second, raw: time.Second, ingest: 3 * time.Second,
		ceiling: time.Second, clients: []int{1, 16, 64}, writers: []int{1, 16, 64, 256}}
}

// Results are everything Run measured.
type Results struct {
	Machine Machine `json:"machine"`
	Tiny    bool    `json:"tiny"`

	// Ceilings.
	Forward   *ForwardCeiling `json:"forwardCeiling,omitempty"`
	RawInsert float64         `json:"rawInsertRowsPerSecond,omitempty"`

	Seed   *SeedInfo    `json:"seed,omitempty"`
	API    []APIRow     `json:"api,omitempty"`
	Store  []APIRow     `json:"store,omitempty"`
	Ingest []IngestRow  `json:"ingest,omitempty"`
	Fwd    []ForwardRow `json:"forward,omitempty"`

	Profiles []string `json:"profiles,omitempty"`
	Took     float64  `json:"tookSeconds"`
}

// SeedInfo says what the API benchmark's session holds and how fast it was written.
type SeedInfo struct {
	Participants int     `json:"participants"`
	Events       int     `json:"events"`
	HeavyEvents  int     `json:"heavyParticipantEvents"`
	Seconds      float64 `json:"seconds"`
}

// Row names, shared by Run and the report.
const (
	rowBare          = "bare net/http handler (ceiling)"
	rowGet           = "GetParticipant"
	rowPartsHead     = "ListParticipants, first page (100)"
	rowPartsTail     = "ListParticipants, last page"
	rowEventsHead    = "ListParticipantEvents, page at event 1"
	rowEventsTail    = "ListParticipantEvents, page at the last event"
	rowRawPoint      = "raw SQLite point read of a participant (ceiling)"
	rowRawHead       = "raw SQLite keyset page at event 1 (ceiling)"
	rowRawTail       = "raw SQLite keyset page at the last event (ceiling)"
	rowStoreGet      = "store GetParticipant"
	rowStoreHead     = "store ListEvents page at event 1"
	rowStoreTail     = "store ListEvents page at the last event"
	partCeilings     = "ceilings"
	partAPI          = "api"
	partIngest       = "ingest"
	partForward      = "forward"
	ingestBatchRows  = 100
	ceilingPacketLen = 1200
)

// Run runs the benchmarks and returns the results.
func Run(ctx context.Context, o Options) (*Results, error) {
	start := time.Now()
	if o.Participants <= 0 {
		o.Participants = 10_000
	}
	if o.Events <= 0 {
		o.Events = 1_000_000
	}
	if o.Tiny {
		o.Participants, o.Events = min(o.Participants, 30), min(o.Events, 450)
	}
	for _, p := range o.Only {
		if !slices.Contains([]string{partCeilings, partAPI, partIngest, partForward}, p) {
			return nil, fmt.Errorf("bench: unknown part %q (want ceilings, api, ingest, forward)", p)
		}
	}
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := scratchDir(o.Dir)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tm := o.timing()
	res := &Results{Tiny: o.Tiny, Machine: machine(dir)}

	if o.want(partCeilings) {
		o.logf("ceilings: AES-GCM seal + loopback UDP send")
		fc, err := forwardCeiling(tm.ceiling, ceilingPacketLen)
		if err != nil {
			return nil, fmt.Errorf("bench: forwarding ceiling: %w", err)
		}
		res.Forward = &fc
		o.logf("ceilings: raw SQLite inserts, %d rows per transaction", ingestBatchRows)
		if res.RawInsert, err = rawInsertCeiling(ctx, dir, 2*tm.ceiling, ingestBatchRows); err != nil {
			return nil, fmt.Errorf("bench: insert ceiling: %w", err)
		}
	}
	if o.want(partAPI) {
		if err := apiPart(ctx, o, tm, dir, res); err != nil {
			return nil, err
		}
	}
	if o.want(partIngest) {
		for _, w := range tm.writers {
			o.logf("ingest: %d concurrent writers", w)
			row, err := ingest(ctx, dir, w, tm.ingest)
			if err != nil {
				return nil, fmt.Errorf("bench: ingest: %w", err)
			}
			res.Ingest = append(res.Ingest, row)
		}
	}
	if o.want(partForward) {
		if o.Server == nil {
			return nil, errors.New("bench: no server launcher for the forwarding part")
		}
		if res.Fwd, err = forward(ctx, o, dir); err != nil {
			return nil, err
		}
		if o.ProfileDir != "" {
			for i := range res.Fwd {
				// Only a server process writes one (not the in-process server of the tests).
				if p := filepath.Join(o.ProfileDir, fmt.Sprintf("forward-%d.pprof", i+1)); fileExists(p) {
					res.Profiles = append(res.Profiles, p)
				}
			}
		}
	}
	res.Machine.LoadAfter = loadAverage()
	res.Took = time.Since(start).Seconds()
	return res, nil
}

// apiPart seeds the session, starts the real server in this process and a bare handler beside it, and
// measures both at each concurrency, one after the other so that both see the same machine.
func apiPart(ctx context.Context, o Options, tm timing, dir string, res *Results) error {
	dataDir := filepath.Join(dir, "api")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	dbPath := filepath.Join(dataDir, "openstage.db")
	o.logf("api: seeding %d participants and %d events", o.Participants, o.Events)
	sd, err := seed(ctx, dbPath, o.Participants, o.Events)
	if err != nil {
		return fmt.Errorf("bench: seed: %w", err)
	}
	res.Seed = &SeedInfo{Participants: o.Participants, Events: sd.events, HeavyEvents: o.Events, Seconds: sd.took.Seconds()}
	o.logf("api: seeded in %.1f s", sd.took.Seconds())

	addr, stop, err := apiServer(ctx, dataDir)
	if err != nil {
		return fmt.Errorf("bench: api server: %w", err)
	}
	defer stop()
	o.logf("api: walking the pages to the last ones")
	q, err := prepareQueries(ctx, addr, sd)
	if err != nil {
		return fmt.Errorf("bench: prepare queries: %w", err)
	}
	bareAddr, stopBare, err := bareServer(q.bareBody)
	if err != nil {
		return err
	}
	defer stopBare()

	if o.ProfileDir != "" {
		path := filepath.Join(o.ProfileDir, "api.pprof")
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		res.Profiles = append(res.Profiles, path)
	}
	// Each list page's raw ceiling is measured right before the API page, at the same concurrency, so that
	// the ratio of the two sees the same machine (apiPages).
	raw, err := openRawPages(ctx, dbPath, slices.Max(tm.clients), sd, q)
	if err != nil {
		return err
	}
	defer raw.close()
	for _, c := range tm.clients {
		for _, m := range []struct {
			name string
			addr string
			reqs [][]byte
			raw  func(ctx context.Context, w, i int) error // measured in the closed loop instead of reqs
		}{
			{rowBare, bareAddr, q.getParticipant, nil},
			{rowGet, addr, q.getParticipant, nil},
			{rowRawPartsHead, "", nil, raw.partsHead},
			{rowPartsHead, addr, [][]byte{q.participantsHead}, nil},
			{rowRawPartsTail, "", nil, raw.partsTail},
			{rowPartsTail, addr, [][]byte{q.participantsTail}, nil},
			{rowRawHead, "", nil, raw.eventsHead},
			{rowEventsHead, addr, [][]byte{q.eventsHead}, nil},
			{rowRawTail, "", nil, raw.eventsTail},
			{rowEventsTail, addr, [][]byte{q.eventsTail}, nil},
		} {
			o.logf("api: %s, %d clients", m.name, c)
			var l Latency
			if m.raw != nil {
				l, err = closedLoop(ctx, c, tm.warmup, tm.raw, m.raw)
			} else {
				l, err = httpLoad{addr: m.addr, requests: m.reqs, clients: c, warmup: tm.warmup, duration: tm.api}.run(ctx)
			}
			if err != nil {
				return fmt.Errorf("bench: %s: %w", m.name, err)
			}
			res.API = append(res.API, APIRow{Name: m.name, Latency: l})
		}
	}
	if err := storePart(ctx, o, tm, dbPath, sd, q.eventsTailFirst, raw, res); err != nil {
		return err
	}
	return nil
}

// storePart measures the store's reads against the same statements run raw.
func storePart(ctx context.Context, o Options, tm timing, dbPath string, sd seeded, tailAfter int64, raw *rawPages, res *Results) error {
	st, err := sqlite.Open(ctx, dbPath, sqlite.WithReaders(slices.Max(tm.clients)))
	if err != nil {
		return err
	}
	defer st.Close()
	for _, c := range tm.clients {
		db, err := rawDB(dbPath, c)
		if err != nil {
			return err
		}
		page, err := db.PrepareContext(ctx, rawEventsPageSQL)
		if err != nil {
			db.Close()
			return err
		}
		point, err := db.PrepareContext(ctx, rawParticipantSQL)
		if err != nil {
			db.Close()
			return err
		}
		pick := func(w, i int) ivs.ParticipantID { return sd.participants[(w*7919+i*104729)%len(sd.participants)] }
		for _, m := range []struct {
			name string
			op   func(ctx context.Context, w, i int) error
		}{
			{rowRawPoint, func(ctx context.Context, w, i int) error {
				return scanRawParticipant(point.QueryRowContext(ctx, string(sd.stage), string(sd.session), string(pick(w, i))))
			}},
			{rowStoreGet, func(ctx context.Context, w, i int) error {
				_, err := st.GetParticipant(ctx, sd.stage, sd.session, pick(w, i))
				return err
			}},
			{rowRawHead, func(ctx context.Context, _, _ int) error { return rawPage(ctx, page, sd, 0) }},
			{rowRawTail, func(ctx context.Context, _, _ int) error { return rawPage(ctx, page, sd, tailAfter) }},
			{rowStoreHead, func(ctx context.Context, _, _ int) error { return storePage(ctx, st, sd, 0) }},
			{rowStoreTail, func(ctx context.Context, _, _ int) error { return storePage(ctx, st, sd, tailAfter) }},
			{rowRawPartsHead, raw.partsHead},
			{rowRawPartsTail, raw.partsTail},
			{rowStorePartsHead, func(ctx context.Context, _, _ int) error {
				return storeParticipantsPage(ctx, st, sd, raw.partsAfter(0))
			}},
			{rowStorePartsTail, func(ctx context.Context, _, _ int) error {
				return storeParticipantsPage(ctx, st, sd, raw.partsAfter(1))
			}},
		} {
			o.logf("store: %s, %d clients", m.name, c)
			l, err := closedLoop(ctx, c, tm.warmup, tm.raw, m.op)
			if err != nil {
				db.Close()
				return fmt.Errorf("bench: %s: %w", m.name, err)
			}
			res.Store = append(res.Store, APIRow{Name: m.name, Latency: l})
		}
		page.Close()
		point.Close()
		db.Close()
	}
	return nil
}

// pageRows is what the API asks the store for: a page of 100 and one more row to know whether to hand out
// a nextToken. The raw ceiling reads as many.
const pageRows = 101

func rawPage(ctx context.Context, stmt *sql.Stmt, sd seeded, after int64) error {
	rows, err := stmt.QueryContext(ctx, string(sd.stage), string(sd.session), string(sd.heavy), after, pageRows)
	if err != nil {
		return err
	}
	n, err := scanRawEvents(rows)
	if err == nil && n == 0 {
		err = errors.New("bench: empty page")
	}
	return err
}

// scanRawParticipant reads every column of a participant row into plain values, as the store does.
func scanRawParticipant(row *sql.Row) error {
	var stage, session, id, user, state, attrs, isp, osName, osVersion, browser, browserVersion, sdk, protocol string
	var joined, published int64
	return row.Scan(&stage, &session, &id, &user, &state, &joined, &attrs, &published, &isp, &osName, &osVersion,
		&browser, &browserVersion, &sdk, &protocol)
}

func storePage(ctx context.Context, st *sqlite.Store, sd seeded, after int64) error {
	evs, err := st.ListEvents(ctx, sd.stage, sd.session, sd.heavy, store.Page{After: &store.Cursor{Seq: after}, Limit: pageRows})
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		return errors.New("bench: empty page")
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
