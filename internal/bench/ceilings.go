package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the driver the store uses
)

// bareServer is the API ceiling: a net/http handler that reads the request body and answers with fixed
// JSON and the headers the API sends, doing nothing else. Whatever the API does beyond it (SigV4,
// validation, the store, encoding) is what the ratio to it measures.
func bareServer(body []byte) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// ForwardCeiling is the cost of the work a forwarded packet cannot avoid: one AES-128-GCM seal of the
// packet (SRTP's AEAD_AES_128_GCM) and one UDP send on loopback to a socket that a reader drains, in CPU
// time of the sending thread.
type ForwardCeiling struct {
	PacketSize    int     `json:"packetSize"`
	SealOnlyUs    float64 `json:"sealMicros"`
	SealSendUs    float64 `json:"sealSendMicros"`
	PerCoreSecond float64 `json:"packetsPerCoreSecond"`
}

func forwardCeiling(d time.Duration, size int) (ForwardCeiling, error) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return ForwardCeiling{}, err
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return ForwardCeiling{}, err
	}
	defer tx.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a subscriber reading, as the SFU's subscribers do
		defer wg.Done()
		b := make([]byte, 2048)
		for {
			if _, _, err := rx.ReadFrom(b); err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	defer rx.Close()

	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		return ForwardCeiling{}, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return ForwardCeiling{}, err
	}
	dst := rx.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := make([]byte, size)
	out := make([]byte, 0, size+gcm.Overhead())
	nonce := make([]byte, gcm.NonceSize())
	loop := func(send bool) (float64, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		n := 0
		c0, t0 := threadCPU(), time.Now()
		for time.Since(t0) < d {
			for range 256 {
				nonce[n&7]++
				sealed := gcm.Seal(out[:0], nonce, pkt[12:], pkt[:12]) // the RTP header is the AAD
				if send {
					if _, err := tx.WriteToUDPAddrPort(sealed, dst); err != nil {
						return 0, err
					}
				}
				n++
			}
		}
		cpu := threadCPU() - c0
		if cpu <= 0 { // no per-thread clock on this platform: wall time, which can only overstate the cost
			cpu = time.Since(t0)
		}
		return float64(cpu) / float64(n) / 1e3, nil
	}
	c := ForwardCeiling{PacketSize: size}
	if c.SealOnlyUs, err = loop(false); err != nil {
		return c, err
	}
	if c.SealSendUs, err = loop(true); err != nil {
		return c, err
	}
	c.PerCoreSecond = 1e6 / c.SealSendUs
	return c, nil
}

// rawDB opens the database file read-only through the same driver as the store, with n connections.
func rawDB(path string, n int) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	q := url.Values{}
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", u.String()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// closedLoop runs op from clients goroutines for warmup+d and measures the calls made during d.
func closedLoop(ctx context.Context, clients int, warmup, d time.Duration, op func(ctx context.Context, worker, i int) error) (Latency, error) {
	var wg sync.WaitGroup
	lats := make([][]time.Duration, clients)
	var firstErr atomic.Pointer[error]
	start := time.Now()
	from, end := start.Add(warmup), start.Add(warmup+d)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				if err := op(ctx, w, i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if !t0.Before(from) {
					lats[w] = append(lats[w], time.Since(t0))
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return Latency{}, *e
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return summarize(clients, all, d), ctx.Err()
}

// rawEventsPage is the store ceiling: the keyset page of events as one prepared statement scanned into
// plain values, with nothing of the store around it.
const rawEventsPageSQL = `SELECT stage_id, session_id, participant_id, seq, name, time, remote_participant_id, error_code
	FROM events WHERE stage_id = ? AND session_id = ? AND participant_id = ? AND seq > ? ORDER BY seq LIMIT ?`

const rawParticipantSQL = `SELECT stage_id, session_id, id, user_id, state, first_join_time, attributes, published,
	isp_name, os_name, os_version, browser_name, browser_version, sdk_version, protocol
	FROM participants WHERE stage_id = ? AND session_id = ? AND id = ?`

func scanRawEvents(rows *sql.Rows) (int, error) {
	defer rows.Close()
	n := 0
	var stage, session, participant, name, remote, code string
	var seq, t int64
	for rows.Next() {
		if err := rows.Scan(&stage, &session, &participant, &seq, &name, &t, &remote, &code); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// openDurable opens a SQLite file as the store opens its own, for the raw ceilings: WAL, synchronous=FULL,
// immediate transactions, one connection.
func openDurable(path string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", u.String()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// rawInsertCeiling is the ingest ceiling: events inserted by plain prepared INSERTs, batch rows per
// transaction, synchronous=FULL in WAL mode (the store's durability), on a fresh database file.
func rawInsertCeiling(ctx context.Context, dir string, d time.Duration, batch int) (float64, error) {
	db, err := openDurable(filepath.Join(dir, "raw-insert.db"))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE events (
		stage_id TEXT NOT NULL, session_id TEXT NOT NULL, participant_id TEXT NOT NULL, seq INTEGER NOT NULL,
		name TEXT NOT NULL, time INTEGER NOT NULL, remote_participant_id TEXT NOT NULL DEFAULT '',
		error_code TEXT NOT NULL DEFAULT '', PRIMARY KEY (stage_id, session_id, participant_id, seq)) WITHOUT ROWID`); err != nil {
		return 0, err
	}
	stmt, err := db.PrepareContext(ctx, `INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	rows, seq := 0, 0
	start := time.Now()
	for time.Since(start) < d {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		st := tx.StmtContext(ctx, stmt)
		for range batch {
			seq++
			// As many participants as the store benchmark's writers, so the b-tree sees the same pattern.
			p := fmt.Sprintf("p%011d", seq%64)
			if _, err := st.ExecContext(ctx, "stage0000001", "st-0000000000001", p, seq, "JOINED", time.Now().UnixNano(), "", ""); err != nil {
				_ = tx.Rollback()
				return 0, err
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
		rows += batch
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}
