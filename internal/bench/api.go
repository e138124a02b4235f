package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openstage/openstage/internal/config"
	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/server"
	"github.com/openstage/openstage/internal/store"
	"github.com/openstage/openstage/internal/store/sqlite"
)

const benchAccount = "000000000000"

// seeded is the session the API benchmark reads.
type seeded struct {
	stage        ivs.StageID
	session      ivs.SessionID
	heavy        ivs.ParticipantID   // the participant with the long event history
	participants []ivs.ParticipantID // every participant, in join order
	joined       []time.Time         // their first join times
	events       int                 // events in the database
	took         time.Duration
}

// seed writes one ended stage session of participants participants into the store at path: each has
// JOINED and LEFT, and the first one has an event history of events events (subscriptions starting and
// stopping). It goes through the store's own transactions, in large batches: that is how the server
// writes, minus the API and one transaction per event.
func seed(ctx context.Context, path string, participants, events int) (seeded, error) {
	start := time.Now()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return seeded{}, err
	}
	defer st.Close()
	s := seeded{stage: ivs.NewStageID(), session: ivs.NewSessionID()}
	t0 := time.Now().Add(-time.Hour).UTC()
	err = st.Update(ctx, func(tx store.Tx) error {
		if err := tx.InsertStage(ctx, ivs.Stage{ID: s.stage, Name: "bench", CreatedAt: t0}); err != nil {
			return err
		}
		return tx.InsertSession(ctx, ivs.Session{StageID: s.stage, ID: s.session, StartTime: t0, EndTime: t0.Add(59 * time.Minute)})
	})
	if err != nil {
		return s, err
	}
	s.participants = make([]ivs.ParticipantID, participants)
	for i := range s.participants {
		s.participants[i] = ivs.NewParticipantID()
	}
	s.heavy = s.participants[0]
	const batch = 50_000
	joined := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }
	s.joined = make([]time.Time, participants)
	for i := range s.joined {
		s.joined[i] = joined(i)
	}
	// Participants with their JOINED and LEFT, batch/2 per transaction.
	for lo := 0; lo < participants; lo += batch / 2 {
		hi := min(lo+batch/2, participants)
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := lo; i < hi; i++ {
				p := ivs.Participant{StageID: s.stage, SessionID: s.session, ID: s.participants[i], UserID: fmt.Sprintf("user-%d", i),
					State: ivs.StateDisconnected, FirstJoinTime: joined(i), Attributes: map[string]string{"role": "viewer"},
					Client: ivs.ClientInfo{OSName: "Linux", BrowserName: "Chrome", BrowserVersion: "156.0", SDKVersion: "1.41.0", Protocol: ivs.ProtocolWHIP}}
				if err := tx.PutParticipant(ctx, p); err != nil {
					return err
				}
				for _, name := range []ivs.EventName{ivs.EventJoined, ivs.EventLeft} {
					e := ivs.Event{StageID: s.stage, SessionID: s.session, ParticipantID: p.ID, Name: name, Time: joined(i)}
					if err := tx.AppendEvent(ctx, &e); err != nil {
						return err
					}
					s.events++
				}
			}
			return nil
		})
		if err != nil {
			return s, err
		}
	}
	// The heavy participant's history: SUBSCRIBE_STARTED / SUBSCRIBE_STOPPED pairs on other participants.
	remaining := max(events-2, 0) // its JOINED and LEFT are already there
	for done := 0; done < remaining; done += batch {
		n := min(batch, remaining-done)
		err := st.Update(ctx, func(tx store.Tx) error {
			for i := range n {
				k := done + i
				name := ivs.EventSubscribeStarted
				if k%2 == 1 {
					name = ivs.EventSubscribeStopped
				}
				e := ivs.Event{StageID: s.stage, SessionID: s.session, ParticipantID: s.heavy, Name: name,
					Time: t0.Add(time.Duration(k) * time.Microsecond), RemoteParticipantID: s.participants[1+(k/2)%max(participants-1, 1)]}
				if err := tx.AppendEvent(ctx, &e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return s, err
		}
		s.events += n
	}
	s.took = time.Since(start)
	return s, nil
}

// apiServer runs the real server (server.New: SQLite store, SigV4, validation, metrics) in this process on
// the seeded data dir.
func apiServer(ctx context.Context, dataDir string) (addr string, stop func(), err error) {
	cfg := &config.Config{Listen: "127.0.0.1:0", RTCUDPPort: 0, DataDir: dataDir, Region: benchRegion, AccountID: benchAccount,
		AccessKeyID: benchKeyID, SecretAccessKey: benchSecret, SessionEndGrace: 10 * time.Second, Retention: 30 * 24 * time.Hour,
		MediaPolicy: "ivs", LogLevel: "warn", LogFormat: "text",
		MaxStages: 1000, MaxPublicKeys: 3, MaxPublishersPerStage: 12, MaxSubscribersPerStage: 10000}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv, err := server.New(sctx, cfg, log)
	if err != nil {
		cancel()
		return "", nil, err
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx, io.Discard, func(a net.Addr) { ready <- a }) }()
	select {
	case a := <-ready:
		return a.String(), func() { cancel(); <-done }, nil
	case err := <-done:
		cancel()
		return "", nil, err
	}
}

// signer makes SigV4-signed API requests as raw HTTP/1.1 bytes. The load generator replays them: a
// signature stays valid for the server's 15 minutes of allowed skew, and signing is the client's cost,
// not the server's.
type signer struct {
	host string
	s    *v4.Signer
}

func newSigner(host string) *signer { return &signer{host: host, s: v4.NewSigner()} }

func (s *signer) request(op string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+s.host+"/"+op, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "openstage-bench")
	sum := sha256.Sum256(b)
	creds := aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret}
	if err := s.s.SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ivs", benchRegion, time.Now()); err != nil {
		return nil, err
	}
	var raw bytes.Buffer
	if err := req.Write(&raw); err != nil {
		return nil, err
	}
	return raw.Bytes(), nil
}

// call sends one signed request with net/http and decodes the JSON answer (setup, not measured).
func (s *signer) call(ctx context.Context, c *http.Client, op string, body, out any) error {
	raw, err := s.request(op, body)
	if err != nil {
		return err
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return err
	}
	req.RequestURI, req.URL.Scheme, req.URL.Host = "", "http", s.host
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: %s: HTTP %d: %s", op, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// APIRow is one API (or ceiling) measurement at one concurrency.
type APIRow struct {
	Name string `json:"name"`
	Latency
}

// apiQueries are the request bodies the API benchmark measures.
type apiQueries struct {
	getParticipant   [][]byte
	participantsHead []byte
	participantsTail []byte
	eventsHead       []byte
	eventsTail       []byte
	bareBody         []byte // the GetParticipant answer, served by the bare handler
	eventsTailFirst  int64  // the seq the last events page starts after
	// participantsTailAfter is the index of the participant the last ListParticipants page starts after
	// (-1: the last page is the first).
	participantsTailAfter int
}

// prepareQueries signs the measured requests and walks the pages to the tail of each list with the real
// API (the nextTokens are the server's own).
func prepareQueries(ctx context.Context, host string, s seeded) (apiQueries, error) {
	sg := newSigner(host)
	c := &http.Client{Timeout: 30 * time.Second}
	arn := ivs.Account{Region: benchRegion, ID: benchAccount}.StageARN(s.stage)
	var q apiQueries
	r := rand.New(rand.NewPCG(1, 2))
	for range 256 {
		p := s.participants[r.IntN(len(s.participants))]
		raw, err := sg.request("GetParticipant", map[string]string{"stageArn": arn, "sessionId": string(s.session), "participantId": string(p)})
		if err != nil {
			return q, err
		}
		q.getParticipant = append(q.getParticipant, raw)
	}
	var got json.RawMessage
	if err := sg.call(ctx, c, "GetParticipant", map[string]string{"stageArn": arn, "sessionId": string(s.session), "participantId": string(s.heavy)}, &got); err != nil {
		return q, err
	}
	q.bareBody = got

	page := func(extra map[string]any, next string) map[string]any {
		body := map[string]any{"stageArn": arn, "sessionId": string(s.session), "maxResults": 100}
		for k, v := range extra {
			body[k] = v
		}
		if next != "" {
			body["nextToken"] = next
		}
		return body
	}
	// ends walks op's pages and returns the signed requests of the first and of the last page, and how
	// many pages there are. The server fetches one row more than a page to decide on a nextToken, so the
	// page without one is the last with rows.
	ends := func(op string, extra map[string]any) (head, tail []byte, pages int, err error) {
		body := page(extra, "")
		if head, err = sg.request(op, body); err != nil {
			return nil, nil, 0, err
		}
		for {
			var out struct {
				NextToken string `json:"nextToken"`
			}
			if err := sg.call(ctx, c, op, body, &out); err != nil {
				return nil, nil, 0, err
			}
			pages++
			if out.NextToken == "" {
				break
			}
			body = page(extra, out.NextToken)
		}
		tail, err = sg.request(op, body)
		return head, tail, pages, err
	}
	var err error
	var pages int
	if q.participantsHead, q.participantsTail, pages, err = ends("ListParticipants", nil); err != nil {
		return q, err
	}
	q.participantsTailAfter = (pages-1)*100 - 1
	if q.eventsHead, q.eventsTail, pages, err = ends("ListParticipantEvents", map[string]any{"participantId": string(s.heavy)}); err != nil {
		return q, err
	}
	q.eventsTailFirst = int64(pages-1) * 100
	return q, nil
}

// The list pages' ceilings (docs/BENCHMARKS.md, "The lists and GetParticipant"): the rows the store reads
// for a page, as one prepared statement of the same SQL scanned into plain values, through the same driver
// and with nothing of the store around it. The statements are the store's own (internal/store/sqlite,
// queries.go): ListParticipants pages read the participant summary (store.ParticipantSummary) in the
// list's order, without LIMIT, and stop after the page's rows, as the store does.
const (
	rawParticipantsPageSQL = `SELECT id, user_id, state, first_join_time, published, recording_state FROM participants
		WHERE stage_id = ? AND session_id = ? ORDER BY first_join_time, id`
	rawParticipantsAfterSQL = `SELECT id, user_id, state, first_join_time, published, recording_state FROM participants
		WHERE stage_id = ? AND session_id = ? AND (first_join_time, id) > (?, ?) ORDER BY first_join_time, id`
)

// Rows of the participant pages' ceilings and of the store's reads of the same pages.
const (
	rowRawPartsHead   = "raw SQLite page of 100 participant summaries, first page (ceiling)"
	rowRawPartsTail   = "raw SQLite page of 100 participant summaries, last page (ceiling)"
	rowStorePartsHead = "store ListParticipants page, first page"
	rowStorePartsTail = "store ListParticipants page, last page"
)

// rawPages runs the list pages' ceilings on the seeded file.
type rawPages struct {
	db                   *sql.DB
	parts, after, events *sql.Stmt
	sd                   seeded
	q                    apiQueries
	eventsTailAfter      int64
}

func openRawPages(ctx context.Context, dbPath string, conns int, sd seeded, q apiQueries) (*rawPages, error) {
	db, err := rawDB(dbPath, conns)
	if err != nil {
		return nil, err
	}
	r := &rawPages{db: db, sd: sd, q: q, eventsTailAfter: q.eventsTailFirst}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{{&r.parts, rawParticipantsPageSQL}, {&r.after, rawParticipantsAfterSQL}, {&r.events, rawEventsPageSQL}} {
		if *p.stmt, err = db.PrepareContext(ctx, p.sql); err != nil {
			db.Close()
			return nil, err
		}
	}
	return r, nil
}

func (r *rawPages) close() {
	for _, s := range []*sql.Stmt{r.parts, r.after, r.events} {
		s.Close()
	}
	r.db.Close()
}

// partsAfter is the cursor of the first (0) or last (1) ListParticipants page, nil for none.
func (r *rawPages) partsAfter(page int) *store.Cursor {
	i := r.q.participantsTailAfter
	if page == 0 || i < 0 {
		return nil
	}
	return &store.Cursor{Time: r.sd.joined[i], ID: string(r.sd.participants[i])}
}

func (r *rawPages) partsHead(ctx context.Context, _, _ int) error {
	return r.participantsPage(ctx, r.partsAfter(0))
}
func (r *rawPages) partsTail(ctx context.Context, _, _ int) error {
	return r.participantsPage(ctx, r.partsAfter(1))
}
func (r *rawPages) eventsHead(ctx context.Context, _, _ int) error {
	return rawPage(ctx, r.events, r.sd, 0)
}
func (r *rawPages) eventsTail(ctx context.Context, _, _ int) error {
	return rawPage(ctx, r.events, r.sd, r.eventsTailAfter)
}

// participantsPage reads the page after c (from the start when nil): pageRows rows, or as many as there are.
func (r *rawPages) participantsPage(ctx context.Context, c *store.Cursor) error {
	var rows *sql.Rows
	var err error
	if c == nil {
		rows, err = r.parts.QueryContext(ctx, string(r.sd.stage), string(r.sd.session))
	} else {
		rows, err = r.after.QueryContext(ctx, string(r.sd.stage), string(r.sd.session), c.Time.UnixNano(), c.ID)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	var id, user, state, recState string
	var joined, published int64
	n := 0
	for n < pageRows && rows.Next() {
		if err := rows.Scan(&id, &user, &state, &joined, &published, &recState); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("bench: empty participants page")
	}
	return nil
}

// storeParticipantsPage reads the page after c as the API does.
func storeParticipantsPage(ctx context.Context, st *sqlite.Store, sd seeded, c *store.Cursor) error {
	ps, err := st.ListParticipantSummaries(ctx, sd.stage, sd.session, store.ParticipantFilter{}, store.Page{After: c, Limit: pageRows})
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return errors.New("bench: empty participants page")
	}
	return nil
}
