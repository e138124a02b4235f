package ivstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	if err := Poll(time.Second, time.Millisecond, func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	}); err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	start := time.Now()
	err := Poll(30*time.Millisecond, 5*time.Millisecond, func() error { calls++; return fmt.Errorf("call %d", calls) })
	took := time.Since(start)
	if err == nil || err.Error() != fmt.Sprintf("call %d", calls) {
		t.Fatalf("err %v, want the last call's (%d)", err, calls)
	}
	if took < 30*time.Millisecond || took > 2*time.Second || calls < 2 {
		t.Fatalf("gave up after %v and %d calls", took, calls)
	}

	// A step longer than what is left is cut short: f runs once more at the deadline, not a step later.
	calls = 0
	start = time.Now()
	_ = Poll(20*time.Millisecond, time.Hour, func() error { calls++; return errors.New("no") })
	if took := time.Since(start); calls != 2 || took > 2*time.Second {
		t.Fatalf("%d calls in %v, want 2, soon", calls, took)
	}
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestEventually(t *testing.T) {
	tb := &fatalTB{TB: t}
	Eventually(tb, time.Second, time.Millisecond, func() error { return nil })
	if tb.msg != "" {
		t.Fatalf("failed at once: %s", tb.msg)
	}
	Eventually(tb, 10*time.Millisecond, time.Millisecond, func() error { return errors.New("3 of 5 packets") })
	if tb.msg != "not within 10ms: 3 of 5 packets" {
		t.Fatalf("message %q", tb.msg)
	}
}

func TestUntil(t *testing.T) {
	if d := Until(context.Background(), time.Minute); d != time.Minute {
		t.Fatalf("no deadline: %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if d := Until(ctx, time.Minute); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("an hour's deadline: %v", d)
	}
}
