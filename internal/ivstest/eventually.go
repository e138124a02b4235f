package ivstest

import (
	"context"
	"testing"
	"time"
)

// Poll calls f until it returns nil or total has passed, waiting step between calls, and returns f's last
// error (nil once f succeeds). f is called at least once, and once more at the deadline. Use it where a wait
// that runs out is not a failure; Eventually is the usual form.
func Poll(total, step time.Duration, f func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		time.Sleep(min(step, left))
	}
}

// Eventually calls f every step until it returns nil, and fails the test with f's last error when that
// takes longer than total (nats-server's checkFor). f says what it is still waiting for in its error; it
// runs on the test's goroutine, so it may call t.Fatal itself for failures that waiting will not mend.
func Eventually(t testing.TB, total, step time.Duration, f func() error) {
	t.Helper()
	if err := Poll(total, step, f); err != nil {
		t.Fatalf("not within %v: %v", total, err)
	}
}

// Until is how long ctx has left, for an Eventually bound by a test's context: its deadline, or def when
// it has none.
func Until(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return def
}
