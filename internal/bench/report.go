package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// Machine is where the benchmark ran.
type Machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"numCPU"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Disk       string `json:"scratchFilesystem"`
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

func machine(dir string) Machine {
	return Machine{CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Disk: filesystem(dir), LoadBefore: loadAverage()}
}

// cpuModel is the "model name" of /proc/cpuinfo, where there is one.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage is the 1, 5 and 15 minute load averages: other processes compete for the same cores, and
// this says how much.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (r *Results) find(rows []APIRow, name string, clients int) (Latency, bool) {
	for _, row := range rows {
		if row.Name == name && row.Clients == clients {
			return row.Latency, true
		}
	}
	return Latency{}, false
}

func (r *Results) clients(rows []APIRow) []int {
	var cs []int
	for _, row := range rows {
		found := false
		for _, c := range cs {
			found = found || c == row.Clients
		}
		if !found {
			cs = append(cs, row.Clients)
		}
	}
	return cs
}

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// Markdown prints the results as markdown tables, each result with its ratio to its ceiling.
func (r *Results) Markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "- CPU: %s, %d logical CPUs (GOMAXPROCS %d); %s, %s\n", m.CPU, m.NumCPU, m.GOMAXPROCS, m.Go, m.OS)
	fmt.Fprintf(w, "- scratch filesystem: %s\n", m.Disk)
	fmt.Fprintf(w, "- load average before / after: %s / %s (other processes compete for the same cores)\n", m.LoadBefore, m.LoadAfter)
	if r.Tiny {
		fmt.Fprintf(w, "- **tiny run**: sizes and durations too small to mean anything\n")
	}
	fmt.Fprintf(w, "- took %.0f s\n\n", r.Took)

	if r.Forward != nil || r.RawInsert > 0 {
		fmt.Fprintf(w, "## Ceilings\n\n| ceiling | result |\n|---|---|\n")
		if f := r.Forward; f != nil {
			fmt.Fprintf(w, "| AES-128-GCM seal of %d B | %.2f µs CPU |\n", f.PacketSize, f.SealOnlyUs)
			fmt.Fprintf(w, "| AES-128-GCM seal + one loopback UDP send (forwarding ceiling) | %.2f µs CPU = %s packets per core-second |\n",
				f.SealSendUs, si(f.PerCoreSecond))
		}
		if r.RawInsert > 0 {
			fmt.Fprintf(w, "| raw SQLite inserts, %d rows per transaction, synchronous=FULL (ingest ceiling) | %s rows/s |\n", ingestBatchRows, si(r.RawInsert))
		}
		fmt.Fprintln(w)
	}

	if len(r.API) > 0 {
		sd := r.Seed
		fmt.Fprintf(w, "## API (SQLite; one session of %d participants, %d events, %d of them one participant's; seeded in %.1f s)\n\n",
			sd.Participants, sd.Events, sd.HeavyEvents, sd.Seconds)
		fmt.Fprintf(w, "| operation | clients | req/s | p50 ms | p99 ms | req/s ÷ bare | p99 ÷ bare p99 |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range r.clients(r.API) {
			bare, _ := r.find(r.API, rowBare, c)
			for _, row := range r.API {
				if row.Clients != c {
					continue
				}
				fmt.Fprintf(w, "| %s | %d | %s | %.3f | %.3f | %s | %s |\n", row.Name, c, si(row.PerSec), row.P50, row.P99,
					ratio(row.PerSec, bare.PerSec), ratio(row.P99, bare.P99))
			}
		}
		fmt.Fprintln(w)
	}
	if len(r.Store) > 0 {
		fmt.Fprintf(w, "## Store reads against raw SQLite\n\n| read | clients | reads/s | p50 ms | p99 ms | ÷ raw |\n|---|---:|---:|---:|---:|---:|\n")
		ceilingOf := map[string]string{rowStoreGet: rowRawPoint, rowStoreHead: rowRawHead, rowStoreTail: rowRawTail,
			rowStorePartsHead: rowRawPartsHead, rowStorePartsTail: rowRawPartsTail}
		for _, row := range r.Store {
			ceil := "–"
			if cn, ok := ceilingOf[row.Name]; ok {
				if c, ok := r.find(r.Store, cn, row.Clients); ok {
					ceil = ratio(row.PerSec, c.PerSec)
				}
			}
			fmt.Fprintf(w, "| %s | %d | %s | %.3f | %.3f | %s |\n", row.Name, row.Clients, si(row.PerSec), row.P50, row.P99, ceil)
		}
		fmt.Fprintln(w)
	}
	if pages := r.pageRatios(); len(pages) > 0 {
		fmt.Fprintf(w, "## The API's list pages against their raw pages\n\n")
		fmt.Fprintf(w, "API req/s ÷ the raw page's reads/s, both at the same number of clients, the raw page measured just before the API's (the API table's rows):\n\n")
		fmt.Fprintf(w, "| page | clients | API req/s | raw reads/s | API ÷ raw |\n|---|---:|---:|---:|---:|\n")
		for _, p := range pages {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", p.page, p.clients, si(p.api), si(p.raw), ratio(p.api, p.raw))
		}
		fmt.Fprintln(w)
	}
	if len(r.Ingest) > 0 {
		fmt.Fprintf(w, "## Durable event ingest (store.Update with one AppendEvent and its AppendNotification each, acknowledged after the commit)\n\n")
		fmt.Fprintf(w, "| writers | events/s | events per commit | p50 ms | p99 ms | ÷ raw %d-row transactions | raw event + notification, events/s | ÷ raw event + notification |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n", ingestBatchRows)
		for _, g := range r.Ingest {
			per := 0.0
			if g.Commits > 0 {
				per = float64(g.Events) / float64(g.Commits)
			}
			fmt.Fprintf(w, "| %d | %s | %.1f | %.3f | %.3f | %s | %s | %s |\n", g.Writers, si(g.PerSec), per, g.P50, g.P99, ratio(g.PerSec, r.RawInsert),
				si(g.RawPairs), ratio(g.PerSec, g.RawPairs))
		}
		fmt.Fprintln(w)
	}
	if len(r.Fwd) > 0 {
		fmt.Fprintf(w, "## Media forwarding (openstage loadtest against a server process)\n\n")
		fmt.Fprintf(w, "| scenario | forwarded pkt/s | server CPU µs/pkt | pkt per core-second | ÷ ceiling | delivered / expected | loss | jitter mean / worst ms | join p50 / p99 ms (subscribers) |\n")
		fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, f := range r.Fwd {
			rep := f.Report
			fwd, us, per, rat := "–", "–", "–", "–"
			if s := rep.Server; s != nil {
				fwd = si(s.ForwardedPerSecond)
				if s.CPUPerPacket > 0 {
					us, per = fmt.Sprintf("%.2f", s.CPUPerPacket*1e6), si(s.PacketsPerCoreSecond)
					if r.Forward != nil {
						rat = ratio(s.PacketsPerCoreSecond, r.Forward.PerCoreSecond)
					}
				}
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d / %d | %.3f%% | %.2f / %.2f | %.0f / %.0f |\n", f.Scenario.Name, fwd, us, per, rat,
				rep.Delivered, rep.Expected, 100*rep.Loss, rep.JitterMeanMs, rep.JitterMaxMs, rep.SubscriberJoin.P50, rep.SubscriberJoin.P99)
		}
		fmt.Fprintln(w)
	}
	r.targets(w)
	if len(r.Profiles) > 0 {
		fmt.Fprintf(w, "Profiles: %s\n", strings.Join(r.Profiles, ", "))
	}
}

// pageRatio is one list page of the API against its raw page at one concurrency.
type pageRatio struct {
	page     string
	clients  int
	api, raw float64
}

// apiPageCeilings pairs each API list page with its raw page (the API table holds both).
var apiPageCeilings = [][2]string{{rowPartsHead, rowRawPartsHead}, {rowPartsTail, rowRawPartsTail},
	{rowEventsHead, rowRawHead}, {rowEventsTail, rowRawTail}}

func (r *Results) pageRatios() []pageRatio {
	var out []pageRatio
	for _, c := range r.clients(r.API) {
		for _, p := range apiPageCeilings {
			a, ok1 := r.find(r.API, p[0], c)
			b, ok2 := r.find(r.API, p[1], c)
			if ok1 && ok2 {
				out = append(out, pageRatio{p[0], c, a.PerSec, b.PerSec})
			}
		}
	}
	return out
}

// targets compares the results with the targets.
func (r *Results) targets(w io.Writer) {
	type target struct{ what, got, met string }
	var ts []target
	for _, c := range r.clients(r.API) {
		bare, ok1 := r.find(r.API, rowBare, c)
		get, ok2 := r.find(r.API, rowGet, c)
		if ok1 && ok2 && bare.PerSec > 0 {
			// Issue 16's targets (the first round's were 0.5 and 2).
			ts = append(ts, target{fmt.Sprintf("GetParticipant ≥ 0.75 × bare req/s, %d clients", c), ratio(get.PerSec, bare.PerSec), yes(get.PerSec >= 0.75*bare.PerSec)})
			ts = append(ts, target{fmt.Sprintf("GetParticipant p99 ≤ 1.5 × bare p99, %d clients", c), ratio(get.P99, bare.P99), yes(get.P99 <= 1.5*bare.P99)})
		}
		for _, p := range r.pageRatios() {
			if p.clients == c && p.raw > 0 {
				ts = append(ts, target{fmt.Sprintf("%s ≥ 0.7 × its raw page, %d clients", p.page, c), ratio(p.api, p.raw), yes(p.api >= 0.7*p.raw)})
			}
		}
		head, ok1 := r.find(r.API, rowEventsHead, c)
		tail, ok2 := r.find(r.API, rowEventsTail, c)
		if ok1 && ok2 && head.P50 > 0 {
			ts = append(ts, target{fmt.Sprintf("events page at the last event ≤ 1.5 × page at event 1 (p50), %d clients", c), ratio(tail.P50, head.P50), yes(tail.P50 <= 1.5*head.P50)})
		}
	}
	best := 0.0
	for _, g := range r.Ingest {
		best = max(best, g.PerSec)
	}
	if len(r.Ingest) > 0 && r.RawInsert > 0 {
		// Issue 16's target: the best writer count against the raw 100-row transactions.
		q := best / r.RawInsert
		ts = append(ts, target{fmt.Sprintf("durable ingest ≥ 0.8 × raw %d-row transactions", ingestBatchRows), fmt.Sprintf("%.2f (%s/s)", q, si(best)), yes(q >= 0.8)})
	}
	if r.Forward != nil {
		for _, f := range r.Fwd {
			if s := f.Report.Server; s != nil && s.PacketsPerCoreSecond > 0 {
				q := s.PacketsPerCoreSecond / r.Forward.PerCoreSecond
				ts = append(ts, target{"forwarding ≥ 0.5 × ceiling per core, " + f.Scenario.Name, fmt.Sprintf("%.2f", q), yes(q >= 0.5)})
			}
			ts = append(ts, target{"no loss on loopback, " + f.Scenario.Name, fmt.Sprintf("%.3f%%", 100*f.Report.Loss), yes(f.Report.Loss == 0)})
		}
	}
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "## Targets\n\n| target | measured | met |\n|---|---:|---|\n")
	for _, t := range ts {
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.what, t.got, t.met)
	}
	fmt.Fprintln(w)
}

// si prints a number with a k/M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.2fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
