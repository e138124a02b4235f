package bench

import (
	"bytes"
	"strings"
	"testing"
)

// TestTinyRun runs every part of the harness at a tiny size, so that it cannot rot: the numbers mean
// nothing, the code paths are the ones a full run takes (the forwarding part with an in-process server).
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var log bytes.Buffer
	res, err := Run(t.Context(), Options{Tiny: true, Dir: t.TempDir(), Server: InProcess(), Log: &log, ProfileDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var out bytes.Buffer
	res.Markdown(&out)
	md := out.String()
	for _, want := range []string{"## Ceilings", rowBare, rowGet, rowEventsTail, rowRawTail, rowStoreTail,
		rowRawPartsTail, rowStorePartsTail, "## The API's list pages against their raw pages", "## Durable event ingest",
		"## Media forwarding", "## Targets"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if len(res.API) != 2*10 || len(res.Store) != 2*10 || len(res.Ingest) != 2 || len(res.Fwd) != 1 {
		t.Errorf("rows: api %d, store %d, ingest %d, forward %d", len(res.API), len(res.Store), len(res.Ingest), len(res.Fwd))
	}
	if r := res.Fwd[0].Report; r.Delivered == 0 || r.Server == nil || r.Server.ForwardedPackets == 0 {
		t.Errorf("no media measured: %+v", r)
	}
	t.Log("\n" + md)
}
