package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Scrape is one reading of the server's /metrics: each metric's value summed over its label sets.
type Scrape struct {
	At     time.Time
	Values map[string]float64
}

// The metrics the load test reads (docs/DESIGN.md §8).
const (
	mForwardedPackets = "openstage_forwarded_packets_total"
	mForwardedBytes   = "openstage_forwarded_bytes_total"
	mReceivedPackets  = "openstage_received_packets_total"
	mCPU              = "process_cpu_seconds_total"
	// The server's memory (gauges of the Prometheus process and Go collectors), read before the
	// subscribers join and while they receive.
	mRSS        = "process_resident_memory_bytes"
	mHeapInuse  = "go_memstats_heap_inuse_bytes"
	mStackInuse = "go_memstats_stack_inuse_bytes"
	mGoroutines = "go_goroutines"
)

var wanted = []string{mForwardedPackets, mForwardedBytes, mReceivedPackets, mCPU, mRSS, mHeapInuse, mStackInuse, mGoroutines}

// scrape reads url in the Prometheus text format, keeping only the metrics named in wanted.
func scrape(ctx context.Context, c *http.Client, url string) (Scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Scrape{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Scrape{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Scrape{}, fmt.Errorf("metrics: %s: HTTP %d", url, resp.StatusCode)
	}
	s, err := parseMetrics(resp.Body)
	s.At = time.Now()
	return s, err
}

// parseMetrics is the little of the text exposition format needed here: "name value" and
// "name{labels} value" lines, comments skipped, values of the same name summed.
func parseMetrics(r io.Reader) (Scrape, error) {
	s := Scrape{Values: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !isWanted(name) {
			continue
		}
		rest := line[len(name):]
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.Values[name] += v
	}
	return s, sc.Err()
}

func isWanted(name string) bool {
	for _, w := range wanted {
		if w == name {
			return true
		}
	}
	return false
}

// has reports whether the scrape found the metric.
func (s Scrape) has(name string) bool {
	_, ok := s.Values[name]
	return ok
}

// delta is b - a for one metric.
func delta(a, b Scrape, name string) float64 { return b.Values[name] - a.Values[name] }
