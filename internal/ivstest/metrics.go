package ivstest

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Metric reads one series from the server's /metrics at base (0 when it is absent: a counter not yet
// incremented may not be exported).
func Metric(t testing.TB, base, name string) float64 {
	t.Helper()
	v, _ := Sample(t, base, name)
	return v
}

// Sample reads one series from the server's /metrics at base: name is the series as exposed, labels
// included (`openstage_cluster_forwarded_requests_total{route="whip"}`); ok is false when it is absent.
func Sample(t testing.TB, base, name string) (v float64, ok bool) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if s, found := strings.CutPrefix(line, name+" "); found {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f, true
		}
	}
	return 0, false
}
