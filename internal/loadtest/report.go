package loadtest

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is what a load test measured. Rates are per second of the measured window.
type Report struct {
	Endpoint                string  `json:"endpoint"`
	Stages                  int     `json:"stages"`
	Publishers              int     `json:"publishers"`
	SubscribersPerPublisher int     `json:"subscribersPerPublisher"`
	Duration                float64 `json:"durationSeconds"`
	Measured                float64 `json:"measuredSeconds"`
	PacketRate              int     `json:"packetRate,omitempty"` // synthetic video packets/s per publisher
	PacketSize              int     `json:"packetSize,omitempty"`

	// Join times in milliseconds: a publisher from its WHIP POST to the media connection being up, a
	// subscriber from its POST to its first RTP packet.
	PublisherJoin  Percentiles `json:"publisherJoinMs"`
	SubscriberJoin Percentiles `json:"subscriberJoinMs"`
	// SubscriberJoinRate is the subscribers' joins per second: how many there are over the time from the
	// first one's token request to the last one's first RTP packet, --join-concurrency at a time.
	SubscriberJoinRate float64 `json:"subscriberJoinsPerSecond"`

	// Expected is what the publishers sent in the window times their subscribers; Delivered what the
	// subscribers received. SeqLost is the loss the subscribers' sequence numbers show (RFC 3550 A.3),
	// which also sees what was lost in the warmup.
	Expected  int64   `json:"expectedPackets"`
	Delivered int64   `json:"deliveredPackets"`
	Loss      float64 `json:"loss"` // 1 - Delivered/Expected, at least 0
	SeqLost   int64   `json:"seqLostPackets"`
	// Interarrival jitter (RFC 3550 A.8) in milliseconds, per stream: the mean and the worst.
	JitterMeanMs float64 `json:"jitterMeanMs"`
	JitterMaxMs  float64 `json:"jitterMaxMs"`

	// Server figures from its /metrics; absent when it could not be read.
	Server *ServerFigures `json:"server,omitempty"`
	// Memory is the server's memory per subscription at rest; absent without subscribers or /metrics.
	Memory *MemoryFigures `json:"serverMemory,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// Percentiles of a set of durations, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// ServerFigures are the server's counters over the window.
type ServerFigures struct {
	ForwardedPackets   float64 `json:"forwardedPackets"`
	ForwardedPerSecond float64 `json:"forwardedPerSecond"`
	ForwardedBitrate   float64 `json:"forwardedBitsPerSecond"`
	ReceivedPerSecond  float64 `json:"receivedPerSecond"`
	CPUSeconds         float64 `json:"cpuSeconds"`
	Cores              float64 `json:"cores"` // CPU seconds per second
	// CPUPerPacket is CPU seconds per forwarded packet: Δprocess_cpu_seconds_total /
	// Δopenstage_forwarded_packets_total. PacketsPerCoreSecond is its inverse.
	CPUPerPacket         float64 `json:"cpuSecondsPerForwardedPacket"`
	PacketsPerCoreSecond float64 `json:"forwardedPacketsPerCoreSecond"`
}

// MemoryFigures are the server's memory before the subscribers joined (the publishers alone) and while
// they all receive, from its /metrics, and the difference divided by the subscriptions: what one
// subscription costs the server at rest. The peers run in the load test's process, so theirs is not
// counted. The figures while receiving are the medians of the window's scrapes (one a second), which
// evens out where in its GC cycle each scrape found the heap.
type MemoryFigures struct {
	Subscriptions int `json:"subscriptions"`
	// Bytes: process_resident_memory_bytes, go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes.
	RSSBefore   float64 `json:"rssBeforeBytes"`
	RSSAfter    float64 `json:"rssAfterBytes"`
	HeapBefore  float64 `json:"heapInuseBeforeBytes"`
	HeapAfter   float64 `json:"heapInuseAfterBytes"`
	StackBefore float64 `json:"stackInuseBeforeBytes"`
	StackAfter  float64 `json:"stackInuseAfterBytes"`
	// go_goroutines.
	GoroutinesBefore float64 `json:"goroutinesBefore"`
	GoroutinesAfter  float64 `json:"goroutinesAfter"`

	RSSPerSubscription        float64 `json:"rssBytesPerSubscription"`
	HeapPerSubscription       float64 `json:"heapInuseBytesPerSubscription"`
	StackPerSubscription      float64 `json:"stackInuseBytesPerSubscription"`
	GoroutinesPerSubscription float64 `json:"goroutinesPerSubscription"`
}

func (r *Report) memory(before Scrape, window []Scrape, subscriptions int) {
	f := &MemoryFigures{Subscriptions: subscriptions,
		RSSBefore: before.Values[mRSS], RSSAfter: median(window, mRSS),
		HeapBefore: before.Values[mHeapInuse], HeapAfter: median(window, mHeapInuse),
		StackBefore: before.Values[mStackInuse], StackAfter: median(window, mStackInuse),
		GoroutinesBefore: before.Values[mGoroutines], GoroutinesAfter: median(window, mGoroutines)}
	k := float64(subscriptions)
	f.RSSPerSubscription = (f.RSSAfter - f.RSSBefore) / k
	f.HeapPerSubscription = (f.HeapAfter - f.HeapBefore) / k
	f.StackPerSubscription = (f.StackAfter - f.StackBefore) / k
	f.GoroutinesPerSubscription = (f.GoroutinesAfter - f.GoroutinesBefore) / k
	r.Memory = f
}

// median is the median of one metric over scrapes (the lower middle of an even count).
func median(ss []Scrape, name string) float64 {
	vs := make([]float64, 0, len(ss))
	for _, s := range ss {
		vs = append(vs, s.Values[name])
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

func (r *Report) media(c0, c1 counts) {
	var jitterSum float64
	streams := 0
	for i := range c1.sent {
		sent := c1.sent[i] - c0.sent[i]
		for j, s := range c1.recv[i] {
			r.Expected += sent
			r.Delivered += s.Packets - c0.recv[i][j].Packets
			r.SeqLost += s.Lost
			jitterSum += s.Jitter
			streams++
			r.JitterMaxMs = max(r.JitterMaxMs, s.Jitter*1e3)
		}
	}
	if streams > 0 {
		r.JitterMeanMs = jitterSum / float64(streams) * 1e3
	}
	if r.Expected > 0 {
		r.Loss = max(0, 1-float64(r.Delivered)/float64(r.Expected))
	}
}

func (r *Report) server(m0, m1 Scrape) {
	secs := m1.At.Sub(m0.At).Seconds()
	f := &ServerFigures{
		ForwardedPackets: delta(m0, m1, mForwardedPackets),
		CPUSeconds:       delta(m0, m1, mCPU),
	}
	if secs > 0 {
		f.ForwardedPerSecond = f.ForwardedPackets / secs
		f.ForwardedBitrate = 8 * delta(m0, m1, mForwardedBytes) / secs
		f.ReceivedPerSecond = delta(m0, m1, mReceivedPackets) / secs
		f.Cores = f.CPUSeconds / secs
	}
	if f.ForwardedPackets > 0 && f.CPUSeconds > 0 {
		f.CPUPerPacket = f.CPUSeconds / f.ForwardedPackets
		f.PacketsPerCoreSecond = 1 / f.CPUPerPacket
	}
	r.Server = f
}

// WriteText prints the report for a human.
func (r *Report) WriteText(w io.Writer) {
	media := "camera-like fixture (H.264 320x180 15 fps + Opus)"
	if r.PacketRate > 0 {
		media = fmt.Sprintf("synthetic H.264 %d pkt/s × %d B + Opus", r.PacketRate, r.PacketSize)
	}
	fmt.Fprintf(w, "openstage load test against %s\n", r.Endpoint)
	fmt.Fprintf(w, "  %d publishers × %d subscribers each, on %d stage(s); %s; measured %.1f s\n",
		r.Publishers, r.SubscribersPerPublisher, r.Stages, media, r.Measured)
	fmt.Fprintf(w, "join (ms)          n     p50     p90     p99     max\n")
	for _, j := range []struct {
		name string
		p    Percentiles
	}{{"publishers", r.PublisherJoin}, {"subscribers", r.SubscriberJoin}} {
		fmt.Fprintf(w, "  %-12s %5d %7.1f %7.1f %7.1f %7.1f\n", j.name, j.p.N, j.p.P50, j.p.P90, j.p.P99, j.p.Max)
	}
	if r.SubscriberJoinRate > 0 {
		fmt.Fprintf(w, "  subscriber joins   %.1f/s\n", r.SubscriberJoinRate)
	}
	fmt.Fprintf(w, "media\n")
	fmt.Fprintf(w, "  delivered/expected  %d / %d packets, loss %.4f%% (by sequence numbers: %d lost)\n",
		r.Delivered, r.Expected, 100*r.Loss, r.SeqLost)
	fmt.Fprintf(w, "  jitter              mean %.2f ms, worst stream %.2f ms\n", r.JitterMeanMs, r.JitterMaxMs)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server (from its /metrics)\n")
		fmt.Fprintf(w, "  forwarded           %.0f packets, %s pkt/s, %sbit/s (received %s pkt/s)\n",
			s.ForwardedPackets, si(s.ForwardedPerSecond), si(s.ForwardedBitrate), si(s.ReceivedPerSecond))
		fmt.Fprintf(w, "  CPU                 %.2f s, %.2f cores\n", s.CPUSeconds, s.Cores)
		if s.CPUPerPacket > 0 {
			fmt.Fprintf(w, "  CPU per packet      %.2f µs per forwarded packet = %s forwarded packets per core-second\n",
				s.CPUPerPacket*1e6, si(s.PacketsPerCoreSecond))
		}
	}
	if m := r.Memory; m != nil {
		const mb, kb = 1 << 20, 1 << 10
		fmt.Fprintf(w, "  server memory per subscription  %.0f KB RSS (%.1f → %.1f MB for %d subscriptions); Go heap in use %.0f KB, stacks %.0f KB; %.1f goroutines (%.0f → %.0f)\n",
			m.RSSPerSubscription/kb, m.RSSBefore/mb, m.RSSAfter/mb, m.Subscriptions, m.HeapPerSubscription/kb, m.StackPerSubscription/kb,
			m.GoroutinesPerSubscription, m.GoroutinesBefore, m.GoroutinesAfter)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "warnings\n  %s\n", strings.Join(r.Warnings, "\n  "))
	}
}
