package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/store"
)

// The crash test runs this test binary again as a child that writes until it is killed. TestMain routes the
// child to crashChild when crashChildEnv names the database file.
const crashChildEnv = "OPENSTAGE_SQLITE_CRASH_CHILD_DB"

// Fixed identifiers: the parent knows what the child writes.
const (
	crashStage   ivs.StageID   = "crashStage01"
	crashSession ivs.SessionID = "st-crashSession1"
)

func crashParticipant(n int) ivs.ParticipantID { return ivs.ParticipantID(fmt.Sprintf("p%011d", n%7)) }

// crashChild loops forever: every Update appends an event for one of seven participants and puts that
// participant, then prints "ack N" once Update has returned nil.
func crashChild() int {
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv(crashChildEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	if w, _ := strconv.Atoi(os.Getenv(crashWritersEnv)); w > 0 {
		return crashChildGroup(s, w)
	}
	out := bufio.NewWriter(os.Stdout)
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.InsertStage(ctx, ivs.Stage{ID: crashStage, Name: "crash", CreatedAt: time.Now()})
	})
	if err != nil && !errors.Is(err, store.ErrExists) { // exists: a later round on the same file
		fmt.Fprintln(os.Stderr, "insert stage:", err)
		return 2
	}
	for n := 1; ; n++ {
		err := s.Update(ctx, func(tx store.Tx) error {
			pid := crashParticipant(n)
			e := ivs.Event{StageID: crashStage, SessionID: crashSession, ParticipantID: pid, Name: ivs.EventJoined,
				Time: time.Now(), RemoteParticipantID: ivs.ParticipantID(strconv.Itoa(n))}
			if err := tx.AppendEvent(ctx, &e); err != nil {
				return err
			}
			return tx.PutParticipant(ctx, ivs.Participant{StageID: crashStage, SessionID: crashSession, ID: pid,
				UserID: strconv.Itoa(n), State: ivs.StateConnected, FirstJoinTime: time.Unix(1, 0),
				Attributes: map[string]string{"n": strconv.Itoa(n)}})
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "update:", err)
			return 2
		}
		fmt.Fprintf(out, "ack %d\n", n)
		out.Flush()
	}
}

// TestCrashLosesNothingAcknowledged kills a writing child with SIGKILL and checks, after reopening, that every
// write the child acknowledged is there and that the database is intact.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	before := 0            // events stored before this round: each round's acknowledgements count on top of them
	for round := range 3 { // the later rounds crash a database that has already been crashed and reopened
		acked := runCrashChild(t, path, 300+round*50)

		ctx := t.Context()
		s := openTest(t, path)
		var ok string
		if err := s.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
			t.Fatalf("integrity_check after a crash: %q, %v", ok, err)
		}
		// Every acknowledged event is stored, each participant's in order (the child numbers restart per round
		// but Seq continues), and at most the one unacknowledged write in flight beyond them.
		var total int
		for p := range 7 {
			pid := crashParticipant(p)
			var evs []ivs.Event
			var after *store.Cursor
			for {
				page, err := s.ListEvents(ctx, crashStage, crashSession, pid, store.Page{After: after, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, page...)
				if len(page) < 100 {
					break
				}
				after = &store.Cursor{Seq: page[len(page)-1].Seq}
			}
			for i, e := range evs {
				if e.Seq != int64(i+1) {
					t.Fatalf("participant %s: event %d has Seq %d", pid, i, e.Seq)
				}
			}
			total += len(evs)
			part, err := s.GetParticipant(ctx, crashStage, crashSession, pid)
			if err != nil {
				t.Fatalf("participant %s after a crash: %v", pid, err)
			}
			last, _ := strconv.Atoi(string(evs[len(evs)-1].RemoteParticipantID))
			if part.UserID != strconv.Itoa(last) || part.Attributes["n"] != part.UserID {
				t.Fatalf("participant %s holds write %s, its last event is write %d: a transaction was torn", pid, part.UserID, last)
			}
		}
		acked += before
		if total < acked || total > acked+1 {
			t.Fatalf("round %d: %d events stored, %d acknowledged: want %d or %d", round, total, acked, acked, acked+1)
		}
		t.Logf("round %d: %d acknowledged, %d stored", round, acked, total)
		before = total
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCrashChild starts the child on path, reads its acknowledgements until it has n, then kills it with
// SIGKILL while it keeps writing, and returns how many writes it acknowledged.
func runCrashChild(t *testing.T, path string, n int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		if acked, err = strconv.Atoi(v); err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		if acked == n {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	// Acknowledgements already written to the pipe when the child died count too.
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			if a, err := strconv.Atoi(v); err == nil {
				acked = a
			}
		}
	}
	err = cmd.Wait()
	if acked < n {
		t.Fatalf("the child stopped after %d acknowledgements: %v", acked, err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed by SIGKILL: %v", err)
	}
	return acked
}
