package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openstage/openstage/internal/ivs"
)

// mSection is an m-line of the given kind with an H.264 or Opus codec (or SCTP for application), as a
// publisher would send it; port 0 makes it disabled.
func mSection(kind, mid string, port int, direction string) string {
	var lines []string
	switch kind {
	case "audio":
		lines = []string{fmt.Sprintf("m=audio %d UDP/TLS/RTP/SAVPF 111", port), "c=IN IP4 0.0.0.0", "a=mid:" + mid, "a=" + direction,
			"a=rtpmap:111 opus/48000/2"}
	case "video":
		lines = []string{fmt.Sprintf("m=video %d UDP/TLS/RTP/SAVPF 96", port), "c=IN IP4 0.0.0.0", "a=mid:" + mid, "a=" + direction,
			"a=rtpmap:96 H264/90000", "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1"}
	case "application":
		lines = []string{fmt.Sprintf("m=application %d UDP/DTLS/SCTP webrtc-datachannel", port), "c=IN IP4 0.0.0.0", "a=mid:" + mid,
			"a=sctp-port:5000"}
	}
	if mid == "" {
		lines = append(lines[:2], lines[3:]...)
	}
	return sdpLines(lines...)
}

// offerOf builds an offer of sections, each "audio", "video", "application", or one of those with "0" after
// it for a disabled one ("video0"), with mids 0, 1, 2...
func offerOf(direction string, kinds ...string) string {
	var b strings.Builder
	b.WriteString(sdpLines(sessionHead()...))
	for i, k := range kinds {
		port := 9
		if kind, ok := strings.CutSuffix(k, "0"); ok {
			k, port = kind, 0
		}
		b.WriteString(mSection(k, fmt.Sprint(i), port, direction))
	}
	return b.String()
}

// withSections appends sections to an offer: n of kind with mids from first on, on port.
func withSections(offer, kind string, first, n, port int) string {
	var b strings.Builder
	b.WriteString(offer)
	for i := range n {
		b.WriteString(mSection(kind, fmt.Sprint(first+i), port, "sendonly"))
	}
	return b.String()
}

// simulcast gives the OBS offer's video three RID layers (RFC 8853), as Chrome offers simulcast: one m-line.
func simulcast(obs string) string {
	return edit(obs,
		"a=ssrc:3302 cname:obs\r\n", "",
		"a=ssrc:3302 msid:obs obs-video\r\n", "",
		"a=rtcp-fb:96 nack\r\n", "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\na=rtcp-fb:96 nack\r\n",
		"a=rtcp-mux\r\na=rtpmap:96", "a=rtcp-mux\r\na=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\na=rtpmap:96")
}

func TestOfferSectionLimits(t *testing.T) {
	obs := readOffer(t, "obs_whip.sdp")
	chromium := readOffer(t, "chromium_publish.sdp")
	// The IVS web SDK publishing audio only: its video section stays, sendrecv, with no track (no msid, no
	// ssrc).
	sdkAudioOnly := edit(chromium,
		"a=msid:8a3f3f7e-3c1b-4c52-9d0e-2b8f1a9e6c11 5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f\r\n", "",
		"a=ssrc-group:FID 2541098696 3205474843\r\n", "",
		"a=ssrc:2541098696 cname:Vn0dXo2Q9s3cR7kA\r\n", "",
		"a=ssrc:3205474843 cname:Vn0dXo2Q9s3cR7kA\r\n", "")
	if sdkAudioOnly == chromium || strings.Count(sdkAudioOnly, "a=ssrc") != 2 {
		t.Fatal("the audio-only edit of the Chromium fixture did not apply")
	}
	rids := simulcast(obs)
	if strings.Count(rids, "a=rid:") != 3 || strings.Contains(rids, "a=ssrc:3302") {
		t.Fatal("the simulcast edit of the OBS fixture did not apply")
	}
	videos500 := withSections(obs, "video", 2, 498, 9)
	disabled500 := withSections(obs, "video", 2, 498, 0)
	lf500 := strings.ReplaceAll(videos500, "\r\n", "\n")
	cr500 := strings.ReplaceAll(videos500, "\r\n", "\n\r\r") // pion takes any run of CR and LF as line ends
	unlimited := Policy{Name: "custom", AllowedVideo: []string{MimeH264}, AllowedAudio: []string{MimeOpus}}
	longMid := strings.Repeat("x", 200)

	tests := []struct {
		name   string
		policy Policy
		offer  string
		want   ivs.ErrorCode
		substr string // in the message
	}{
		// The cap on m-lines, disabled ones included.
		{"500 m-lines ivs", IVS, videos500, ivs.ErrInvalidVideoCodec,
			"the offer has 500 m-lines; openstage reads at most 16, and policy ivs accepts at most one audio and one video section"},
		{"500 m-lines open", Open, videos500, ivs.ErrInvalidVideoCodec,
			"the offer has 500 m-lines; openstage reads at most 16, and policy open accepts at most two audio and two video sections"},
		{"500 m-lines without a limit of the policy", unlimited, videos500, ivs.ErrInvalidVideoCodec, "the offer has 500 m-lines; openstage reads at most 16"},
		{"500 disabled m-lines", IVS, disabled500, ivs.ErrInvalidVideoCodec, "500 m-lines"},
		{"500 m-lines LF", IVS, lf500, ivs.ErrInvalidVideoCodec, "500 m-lines"},
		{"500 m-lines CR runs", Open, cr500, ivs.ErrInvalidVideoCodec, "500 m-lines"},
		{"17 m-lines", IVS, withSections(obs, "video", 2, 15, 0), ivs.ErrInvalidVideoCodec, "17 m-lines"},
		{"16 m-lines, 14 disabled", IVS, withSections(obs, "video", 2, 14, 0), "", ""},
		{"16 m-lines of the unlimited policy", unlimited, withSections(obs, "video", 2, 14, 9), "", ""},

		// ivs: one audio, one video.
		{"ivs obs", IVS, obs, "", ""},
		{"ivs sdk", IVS, chromium, "", ""},
		{"ivs sdk audio only", IVS, sdkAudioOnly, "", ""},
		{"ivs simulcast three rids", IVS, rids, "", ""},
		{"ivs two video", IVS, withSections(obs, "video", 2, 1, 9), ivs.ErrInvalidVideoCodec,
			"the offer has 2 video sections (mid 1, mid 2); policy ivs accepts at most one audio and one video section (the simulcast layers"},
		{"ivs two video, sendrecv", IVS, offerOf("sendrecv", "audio", "video", "video"), ivs.ErrInvalidVideoCodec, "2 video sections (mid 1, mid 2)"},
		{"ivs two simulcast video", IVS, simulcast(withSections(obs, "video", 2, 1, 9)), ivs.ErrInvalidVideoCodec, "2 video sections"},
		{"ivs two audio", IVS, withSections(obs, "audio", 2, 1, 9), ivs.ErrInvalidAudioCodec,
			"the offer has 2 audio sections (mid 0, mid 2); policy ivs accepts at most one audio and one video section"},
		{"ivs video judged before audio", IVS, offerOf("sendonly", "audio", "audio", "video", "video"), ivs.ErrInvalidVideoCodec, "2 video sections"},
		{"ivs second video disabled", IVS, withSections(obs, "video", 2, 1, 0), "", ""},
		{"ivs second audio disabled", IVS, withSections(obs, "audio", 2, 1, 0), "", ""},
		{"ivs sections without mid", IVS, offerOf("sendonly", "audio") + mSection("video", "", 9, "sendonly") + mSection("video", "", 9, "sendonly"),
			ivs.ErrInvalidVideoCodec, "(no mid, no mid)"},
		{"ivs long mid", IVS, withSections(obs, "video", 2, 0, 9) + mSection("video", longMid, 9, "sendonly"), ivs.ErrInvalidVideoCodec,
			"(mid 1, mid " + longMid[:maxMidText] + "...)"},
		{"ivs data channel", IVS, offerOf("sendonly", "audio", "video", "application"), "", ""},
		{"ivs two data channels", IVS, offerOf("sendonly", "audio", "video", "application", "application"), ivs.ErrInvalidVideoCodec,
			"the offer has 2 application (data channel) sections (mid 2, mid 3); openstage accepts at most one"},
		{"ivs second data channel disabled", IVS, offerOf("sendonly", "audio", "video", "application", "application0"), "", ""},
		// The codec rules still apply to an offer within the limits.
		{"ivs vp8 only", IVS, readOffer(t, "vp8_only.sdp"), ivs.ErrInvalidVideoCodec, "offers VP8"},

		// open: two audio, two video.
		{"open two video", Open, withSections(obs, "video", 2, 1, 9), "", ""},
		{"open two audio two video", Open, offerOf("sendonly", "audio", "video", "audio", "video"), "", ""},
		{"open two audio two video and a data channel", Open, offerOf("sendonly", "audio", "video", "audio", "video", "application"), "", ""},
		{"open three video", Open, offerOf("sendonly", "audio", "video", "video", "video"), ivs.ErrInvalidVideoCodec,
			"the offer has 3 video sections (mid 1, mid 2, mid 3); policy open accepts at most two audio and two video sections"},
		{"open three audio", Open, offerOf("sendonly", "audio", "audio", "audio"), ivs.ErrInvalidAudioCodec, "3 audio sections (mid 0, mid 1, mid 2)"},
		{"open three video, one disabled", Open, offerOf("sendonly", "audio", "video", "video0", "video"), "", ""},
		{"open audio only", Open, readOffer(t, "audio_only.sdp"), "", ""},
		{"open two data channels", Open, offerOf("sendonly", "video", "application", "application"), ivs.ErrInvalidVideoCodec, "2 application"},

		// A policy without section limits of its own.
		{"unlimited five video", unlimited, offerOf("sendonly", "audio", "video", "video", "video", "video", "video"), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckOffer(tc.policy, tc.offer)
			code, msg := tc.policy.VetOffer(tc.offer)
			if tc.want == "" {
				if v != nil || code != "" || msg != "" {
					t.Fatalf("violation %v", v)
				}
				return
			}
			if v == nil {
				t.Fatalf("no violation, want %s", tc.want)
			}
			if v.Code != tc.want || code != tc.want || msg != v.Message {
				t.Errorf("got %v, want %s", v, tc.want)
			}
			if !strings.Contains(v.Message, tc.substr) {
				t.Errorf("message %q does not contain %q", v.Message, tc.substr)
			}
			if errors.Is(v, ErrMalformedOffer) {
				t.Error("a well-formed offer reported as malformed")
			}
			if tooMany := errors.Is(v, ErrTooManySections); tooMany != strings.Contains(tc.substr, "m-lines") {
				t.Errorf("errors.Is(ErrTooManySections) = %v", tooMany)
			}
		})
	}
}

func TestCheckSubscribeOffer(t *testing.T) {
	unlimited := Policy{Name: "custom"}
	tests := []struct {
		name      string
		policy    Policy
		offer     string
		publisher int // the publisher's sections
		want      ivs.ErrorCode
		substr    string
	}{
		// What aiortc and the IVS SDKs offer, whatever the publisher sends.
		{"audio and video for audio and video", IVS, offerOf("recvonly", "audio", "video"), 2, "", ""},
		{"audio and video for an audio-only publisher", Open, offerOf("recvonly", "audio", "video"), 1, "", ""},
		{"audio and video, publisher unknown", IVS, offerOf("recvonly", "audio", "video"), 0, "", ""},
		{"video only", IVS, offerOf("recvonly", "video"), 2, "", ""},
		{"two video for one", IVS, offerOf("recvonly", "video", "video"), 1, "", ""},
		{"a data channel too", IVS, offerOf("recvonly", "audio", "video", "application"), 2, "", ""},
		{"disabled sections do not count", IVS, offerOf("recvonly", "audio", "video", "video0", "audio0"), 2, "", ""},

		{"three for two", IVS, offerOf("recvonly", "audio", "video", "video"), 2, ivs.ErrInvalidVideoCodec,
			"the subscribe offer has 3 audio and video sections (mid 0, mid 1, mid 2); the publisher sends 2, and a subscriber may offer at most 2"},
		{"three, publisher unknown, ivs", IVS, offerOf("recvonly", "audio", "video", "audio"), 0, ivs.ErrInvalidVideoCodec,
			"policy ivs lets a publisher send at most 2, and a subscriber may offer at most 2"},
		{"four for four", Open, offerOf("recvonly", "audio", "video", "audio", "video"), 4, "", ""},
		{"four, publisher unknown, open", Open, offerOf("recvonly", "audio", "video", "audio", "video"), 0, "", ""},
		{"five, publisher unknown, open", Open, offerOf("recvonly", "audio", "video", "audio", "video", "video"), 0, ivs.ErrInvalidVideoCodec,
			"policy open lets a publisher send at most 4"},
		{"five for three", Open, offerOf("recvonly", "audio", "video", "audio", "video", "video"), 3, ivs.ErrInvalidVideoCodec,
			"the publisher sends 3, and a subscriber may offer at most 3"},
		{"ten, no policy limits", unlimited, offerOf("recvonly", "audio", "video", "audio", "video", "audio", "video", "audio", "video", "audio", "video"), 0, "", ""},
		{"ten for two, no policy limits", unlimited, offerOf("recvonly", "audio", "video", "audio", "video", "audio", "video", "audio", "video", "audio", "video"), 2,
			ivs.ErrInvalidVideoCodec, "the publisher sends 2"},
		{"two data channels", IVS, offerOf("recvonly", "audio", "video", "application", "application"), 2, ivs.ErrInvalidVideoCodec,
			"2 application (data channel) sections"},
		{"500 m-lines", IVS, withSections(offerOf("recvonly", "audio", "video"), "video", 2, 498, 0), 2, ivs.ErrInvalidVideoCodec,
			"the subscribe offer has 500 m-lines; openstage reads at most 16"},
		{"500 m-lines, no policy limits", unlimited, withSections(offerOf("recvonly", "audio", "video"), "audio", 2, 498, 9), 0,
			ivs.ErrInvalidVideoCodec, "500 m-lines"},
		{"not SDP", IVS, "hello", 2, ivs.ErrInvalidVideoCodec, "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := CheckSubscribeOffer(tc.policy, tc.offer, tc.publisher)
			code, msg := tc.policy.VetSubscribeOffer(tc.offer, tc.publisher)
			if tc.want == "" {
				if v != nil || code != "" || msg != "" {
					t.Fatalf("violation %v", v)
				}
				return
			}
			if v == nil {
				t.Fatalf("no violation, want %s", tc.want)
			}
			if v.Code != tc.want || code != tc.want || msg != v.Message {
				t.Errorf("got %v, want %s", v, tc.want)
			}
			if !strings.Contains(v.Message, tc.substr) {
				t.Errorf("message %q does not contain %q", v.Message, tc.substr)
			}
			if malformed := errors.Is(v, ErrMalformedOffer); malformed != (tc.substr == "malformed") {
				t.Errorf("errors.Is(ErrMalformedOffer) = %v", malformed)
			}
			if tooMany := errors.Is(v, ErrTooManySections); tooMany != strings.Contains(tc.substr, "m-lines") {
				t.Errorf("errors.Is(ErrTooManySections) = %v", tooMany)
			}
		})
	}
}

func TestCountMediaSections(t *testing.T) {
	obs := readOffer(t, "obs_whip.sdp")
	tests := []struct {
		name  string
		offer string
		want  int
	}{
		{"obs", obs, 2},
		{"chromium", readOffer(t, "chromium_publish.sdp"), 2},
		{"audio only", readOffer(t, "audio_only.sdp"), 1},
		{"simulcast", simulcast(obs), 2},
		{"data channel", offerOf("sendonly", "audio", "video", "application"), 2},
		{"disabled", offerOf("sendonly", "audio", "video", "video0"), 2},
		{"four", offerOf("sendonly", "audio", "video", "audio", "video"), 4},
		{"too many", withSections(obs, "video", 2, 498, 9), 0},
		{"not SDP", "hello", 0},
	}
	for _, tc := range tests {
		if got := CountMediaSections(tc.offer); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestCountMLines(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"m=audio", 1},
		{"v=0\r\nm=audio 9\r\nm=video 9\r\n", 2},
		{"v=0\nm=audio 9\nm=video 9\n", 2},
		{"v=0\n\r\rm=audio 9\r\rm=video\n", 2},
		{"v=0\r\na=fmtp:96 m=1;xm=2\r\ns=m=\r\n", 0},
		{"m=m=m=\nm=", 2},
		{"v=0\nm", 0},
		{"\nm=", 1},
	}
	for _, tc := range tests {
		if got := countMLines(tc.in); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestHostileOffersAreCheap: an offer of too many m-lines is refused from a line scan, without being parsed
// (a parse allocates for every line), and a payload type listed thousands of times is read once.
func TestHostileOffersAreCheap(t *testing.T) {
	huge := withSections(readOffer(t, "obs_whip.sdp"), "video", 2, 2000, 9)
	if len(huge) < 150<<10 {
		t.Fatalf("the offer is only %d bytes", len(huge))
	}
	allocs := testing.AllocsPerRun(10, func() {
		if v := CheckOffer(IVS, huge); v == nil || !errors.Is(v, ErrTooManySections) {
			t.Fatalf("violation %v", v)
		}
		if v := CheckSubscribeOffer(Open, huge, 2); v == nil || !errors.Is(v, ErrTooManySections) {
			t.Fatalf("violation %v", v)
		}
	})
	// Refusing costs about 30 allocations, a few more when the runtime allocates during the run (seen once in
	// CI under the race detector: 31); parsing 2002 m-lines would cost thousands.
	if allocs > 100 {
		t.Errorf("refusing 2002 m-lines took %v allocations: was the offer parsed?", allocs)
	}

	// 20000 payload type entries of one payload type, and a 40 KB fmtp for it.
	repeated := sdpLines(append(sessionHead(),
		"m=video 9 UDP/TLS/RTP/SAVPF"+strings.Repeat(" 96", 20000), "c=IN IP4 0.0.0.0", "a=mid:0", "a=rtpmap:96 H264/90000",
		"a=fmtp:96 profile-level-id=42e01f;"+strings.Repeat("x=1;", 10000),
		"m=audio 9 UDP/TLS/RTP/SAVPF"+strings.Repeat(" 111 0", 5000), "c=IN IP4 0.0.0.0", "a=mid:1", "a=rtpmap:111 opus/48000/2")...)
	secs, err := ParseOffer(repeated)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 2 || len(secs[0].Codecs) != 1 || len(secs[1].Codecs) != 2 {
		t.Fatalf("sections %d, codecs %d and %d", len(secs), len(secs[0].Codecs), len(secs[1].Codecs))
	}
	if v := CheckOffer(IVS, repeated); v != nil {
		t.Fatal(v)
	}
}

func BenchmarkCheckOfferHostile(b *testing.B) {
	obs := readOffer(b, "obs_whip.sdp")
	offers := map[string]string{
		"obs":             obs,
		"2000 m-lines":    withSections(obs, "video", 2, 2000, 9),
		"repeated format": edit(obs, "m=video 9 UDP/TLS/RTP/SAVPF 96", "m=video 9 UDP/TLS/RTP/SAVPF"+strings.Repeat(" 96", 40000)),
	}
	for name, offer := range offers {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(offer)))
			for b.Loop() {
				CheckOffer(IVS, offer)
			}
		})
	}
}
