package media

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every peer connection, UDP mux, forwarder
// and timer the SFU starts must be stopped by whoever owns it (its Close), and these tests close everything.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
