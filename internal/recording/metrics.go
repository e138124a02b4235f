package recording

import "sync/atomic"

// Metrics counts what the recorders of a server do; internal/metrics reads it when scraped. A nil *Metrics
// counts nothing.
type Metrics struct {
	Active        atomic.Int64  // recordings started and not yet ended
	Started       atomic.Uint64 // recordings started
	Failed        atomic.Uint64 // recordings that ended FAILED
	BytesWritten  atomic.Uint64 // bytes of objects written (segments, playlists, events, thumbnails)
	StorageErrors atomic.Uint64 // object writes the bucket refused or that timed out
}

func (m *Metrics) started() {
	if m != nil {
		m.Active.Add(1)
		m.Started.Add(1)
	}
}

func (m *Metrics) ended(failed bool) {
	if m != nil {
		m.Active.Add(-1)
		if failed {
			m.Failed.Add(1)
		}
	}
}

func (m *Metrics) wrote(n int) {
	if m != nil {
		m.BytesWritten.Add(uint64(n))
	}
}

func (m *Metrics) storageError() {
	if m != nil {
		m.StorageErrors.Add(1)
	}
}
