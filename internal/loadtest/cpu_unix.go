//go:build unix

package loadtest

import (
	"syscall"
	"time"
)

// processCPU is the CPU time of this process, all threads: the load generator's own cost, which shares
// the machine with the server when both run on it.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
