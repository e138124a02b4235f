package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// httpLoad is a closed-loop HTTP/1.1 load generator: clients keep-alive connections, each sending the
// next request as soon as the previous answer is read, like wrk. It is deliberately small: requests are
// prepared bytes (already signed), responses are read by Content-Length and thrown away, so that the
// generator costs as little as possible of the CPU it shares with the server.
type httpLoad struct {
	addr     string   // host:port
	requests [][]byte // raw requests, sent round-robin (each client starts at a different one)
	clients  int
	warmup   time.Duration
	duration time.Duration
}

// Latency is a throughput and latency measurement.
type Latency struct {
	Clients int     `json:"clients"`
	N       int     `json:"n"`
	PerSec  float64 `json:"perSecond"`
	P50     float64 `json:"p50Ms"`
	P99     float64 `json:"p99Ms"`
}

func (l httpLoad) run(ctx context.Context) (Latency, error) {
	type result struct {
		lat []time.Duration
		err error
	}
	results := make([]result, l.clients)
	var wg sync.WaitGroup
	start := time.Now()
	measureFrom := start.Add(l.warmup)
	end := measureFrom.Add(l.duration)
	for c := range l.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, err := l.client(ctx, c, measureFrom, end)
			results[c] = result{lat, err}
		}()
	}
	wg.Wait()
	var all []time.Duration
	for _, r := range results {
		if r.err != nil {
			return Latency{}, r.err
		}
		all = append(all, r.lat...)
	}
	return summarize(l.clients, all, l.duration), nil
}

func summarize(clients int, lat []time.Duration, d time.Duration) Latency {
	out := Latency{Clients: clients, N: len(lat)}
	if len(lat) == 0 {
		return out
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	out.PerSec = float64(len(lat)) / d.Seconds()
	out.P50, out.P99 = q(0.50), q(0.99)
	return out
}

// client runs one connection until end, recording the latencies of the requests started after measureFrom.
func (l httpLoad) client(ctx context.Context, c int, measureFrom, end time.Time) ([]time.Duration, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	lat := make([]time.Duration, 0, 4096)
	for i := c; ; i++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t0 := time.Now()
		if !t0.Before(end) {
			return lat, nil
		}
		if _, err := conn.Write(l.requests[i%len(l.requests)]); err != nil {
			return nil, err
		}
		if err := readResponse(r); err != nil {
			return nil, err
		}
		if !t0.Before(measureFrom) {
			lat = append(lat, time.Since(t0))
		}
	}
}

var errStatus = errors.New("bench: unexpected HTTP status")

// readResponse reads one HTTP/1.1 response, its body sized by Content-Length or chunked, and fails unless
// it is 200 OK: a benchmark that counts errors as answers measures nothing.
func readResponse(r *bufio.Reader) error {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return err
	}
	ok := bytes.HasPrefix(line, []byte("HTTP/1.1 200 "))
	status := string(bytes.TrimSpace(line))
	length, chunked := -1, false
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(h) <= 2 { // the blank line
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return err
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	var body bytes.Buffer
	switch {
	case chunked:
		for {
			sizeLine, err := r.ReadSlice('\n')
			if err != nil {
				return err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(sizeLine, []byte(";"), 2)[0])), 16, 64)
			if err != nil {
				return fmt.Errorf("bench: bad chunk size %q", sizeLine)
			}
			if size == 0 {
				for { // trailers, then the blank line
					t, err := r.ReadSlice('\n')
					if err != nil {
						return err
					}
					if len(t) <= 2 {
						break
					}
				}
				break
			}
			if ok {
				_, err = r.Discard(int(size))
			} else {
				_, err = io.CopyN(&body, r, size)
			}
			if err != nil {
				return err
			}
			if _, err := r.Discard(2); err != nil { // CRLF
				return err
			}
		}
	case length >= 0:
		if ok {
			_, err = r.Discard(length)
		} else {
			_, err = io.CopyN(&body, r, int64(length))
		}
		if err != nil {
			return err
		}
	default:
		return errors.New("bench: response without Content-Length or chunked body")
	}
	if !ok {
		return fmt.Errorf("%w: %s: %.512s", errStatus, status, body.String())
	}
	return nil
}
