package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/openstage/openstage/internal/ivs"
)

func readOffer(t testing.TB, name string) string {
	t.Helper()
	return string(readFixture(t, name))
}

// edit applies string replacements to an offer.
func edit(offer string, oldNew ...string) string {
	return strings.NewReplacer(oldNew...).Replace(offer)
}

// sdpLines builds an offer from LF-separated lines, with CRLF line ends.
func sdpLines(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

func sessionHead() []string {
	return []string{"v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0"}
}

func TestCheckOffer(t *testing.T) {
	chromium := readOffer(t, "chromium_publish.sdp")
	obs := readOffer(t, "obs_whip.sdp")
	vp8 := readOffer(t, "vp8_only.sdp")
	audioOnly := readOffer(t, "audio_only.sdp")
	high := readOffer(t, "h264_high_only.sdp")

	// Variants of the fixtures.
	obsLF := strings.ReplaceAll(obs, "\r\n", "\n")
	noOpus := edit(chromium, "a=rtpmap:111 opus/48000/2", "a=rtpmap:111 ISAC/16000",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126", "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126")
	opus16k := edit(obs, "opus/48000/2", "opus/16000/1")
	mode2 := edit(obs, "packetization-mode=1", "packetization-mode=2")
	noFmtp := edit(obs, "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1\r\n", "")
	plainBaseline := edit(obs, "42e01f", "42001f")
	mainCB := edit(obs, "42e01f", "4d801f") // Main with constraint_set0: Constrained Baseline
	upper := edit(obs, "H264/90000", "h264/90000", "profile-level-id=42e01f", "PROFILE-LEVEL-ID=42E01F", "opus/", "OPUS/")
	badPLID := edit(obs, "42e01f", "42e0zz")
	videoOnly := obs[:strings.Index(obs, "m=audio")] + obs[strings.Index(obs, "m=video"):]
	videoDisabled := edit(obs, "m=video 9 ", "m=video 0 ")
	videoBundleOnly := edit(obs, "m=video 9 ", "m=video 0 ", "a=mid:1\r\n", "a=mid:1\r\na=bundle-only\r\n")
	twoVideos := obs + strings.Join([]string{
		"m=video 9 UDP/TLS/RTP/SAVPF 100", "c=IN IP4 0.0.0.0", "a=mid:2", "a=sendonly", "a=rtpmap:100 VP8/90000", ""}, "\r\n")
	dataOnly := sdpLines(append(sessionHead(), "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
		"a=mid:0", "a=sctp-port:5000")...)
	withData := obs + sdpLines("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=mid:2", "a=sctp-port:5000")
	// An m-line listing only a payload type that has no rtpmap, and one with a static type.
	staticAudio := edit(obs, "m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio 9 UDP/TLS/RTP/SAVPF 0 8 101",
		"a=rtpmap:111 opus/48000/2\r\n", "", "a=fmtp:111 ", "a=fmtp:101 ")
	// Only auxiliary formats next to the H.264 (RTX of nothing): nothing to send.
	rtxOnly := edit(obs, "a=rtpmap:96 H264/90000", "a=rtpmap:96 rtx/90000")

	tests := []struct {
		name   string
		policy Policy
		offer  string
		want   ivs.ErrorCode
		substr string // in the message
	}{
		{"chromium ivs", IVS, chromium, "", ""},
		{"chromium open", Open, chromium, "", ""},
		{"obs ivs", IVS, obs, "", ""},
		{"obs open", Open, obs, "", ""},
		{"obs LF line ends", IVS, obsLF, "", ""},
		{"vp8 only ivs", IVS, vp8, ivs.ErrInvalidVideoCodec, "video m-line (mid 1) offers VP8; policy ivs accepts H.264 (Baseline"},
		{"vp8 only open", Open, vp8, "", ""},
		{"audio only ivs", IVS, audioOnly, ivs.ErrInvalidVideoCodec, "offer has no video"},
		{"audio only open", Open, audioOnly, "", ""},
		{"h264 high ivs", IVS, high, ivs.ErrInvalidVideoCodec, "H.264 High (64001f) packetization-mode 1"},
		{"h264 high open", Open, high, "", ""},
		{"packetization-mode 2 ivs", IVS, mode2, ivs.ErrInvalidVideoCodec, "interleaved"},
		{"packetization-mode 2 open", Open, mode2, ivs.ErrInvalidVideoCodec, "interleaved"},
		{"no opus ivs", IVS, noOpus, ivs.ErrInvalidAudioCodec, "audio m-line (mid 0) offers ISAC, G722, PCMU, PCMA; policy ivs accepts opus"},
		{"no opus open", Open, noOpus, ivs.ErrInvalidAudioCodec, ""},
		{"opus at 16 kHz", IVS, opus16k, ivs.ErrInvalidAudioCodec, "RFC 7587"},
		{"h264 without fmtp is baseline", IVS, noFmtp, "", ""},
		{"h264 42001f", IVS, plainBaseline, "", ""},
		{"h264 4d801f", IVS, mainCB, "", ""},
		{"names in other case", IVS, upper, "", ""},
		{"bad profile-level-id", IVS, badPLID, ivs.ErrInvalidVideoCodec, "not six hex digits"},
		{"bad profile-level-id open", Open, badPLID, ivs.ErrInvalidVideoCodec, ""},
		{"video only ivs", IVS, videoOnly, ivs.ErrInvalidAudioCodec, "offer has no audio"},
		{"video only open", Open, videoOnly, "", ""},
		{"video disabled ivs", IVS, videoDisabled, ivs.ErrInvalidVideoCodec, "offer has no video"},
		{"video disabled open", Open, videoDisabled, "", ""},
		{"video bundle-only", IVS, videoBundleOnly, "", ""},
		{"second video m-line vp8", IVS, twoVideos, ivs.ErrInvalidVideoCodec, "mid 2"},
		{"second video m-line vp8 open", Open, twoVideos, "", ""},
		{"data channel only ivs", IVS, dataOnly, ivs.ErrInvalidVideoCodec, "no video"},
		{"data channel only open", Open, dataOnly, ivs.ErrInvalidVideoCodec, "neither audio nor video"},
		{"with data channel", IVS, withData, "", ""},
		{"static payload types", IVS, staticAudio, ivs.ErrInvalidAudioCodec, "PCMU, PCMA;"},
		{"rtx only", IVS, rtxOnly, ivs.ErrInvalidVideoCodec, "offers nothing"},
		{"empty", IVS, "", ivs.ErrInvalidVideoCodec, "malformed"},
		{"garbage", Open, "hello, I am not SDP", ivs.ErrInvalidVideoCodec, "malformed"},
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
			if !strings.HasPrefix(v.Error(), string(tc.want)+": ") {
				t.Errorf("Error() = %q", v.Error())
			}
			if malformed := errors.Is(v, ErrMalformedOffer); malformed != (tc.substr == "malformed") {
				t.Errorf("errors.Is(ErrMalformedOffer) = %v", malformed)
			}
		})
	}
}

func TestParseOfferChromium(t *testing.T) {
	secs, err := ParseOffer(readOffer(t, "chromium_publish.sdp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 2 || secs[0].Kind != "audio" || secs[0].Mid != "0" || secs[1].Kind != "video" || secs[1].Mid != "1" {
		t.Fatalf("sections %+v", secs)
	}
	opus := secs[0].Codecs[0]
	if opus.PayloadType != 111 || opus.MimeType != "audio/opus" || opus.ClockRate != 48000 || opus.Channels != 2 {
		t.Errorf("opus %+v", opus)
	}
	// The SDK's fmtp starts with ';': the empty parameter is dropped, the rest read.
	want := map[string]string{"maxaveragebitrate": "64000", "minptime": "10", "sprop-stereo": "0", "stereo": "0", "useinbandfec": "1"}
	if len(opus.Fmtp) != len(want) {
		t.Errorf("opus fmtp %v", opus.Fmtp)
	}
	for k, v := range want {
		if opus.Fmtp[k] != v {
			t.Errorf("opus fmtp %s = %q, want %q", k, opus.Fmtp[k], v)
		}
	}
	if pcmu := secs[0].Codecs[3]; pcmu.PayloadType != 0 || pcmu.MimeType != "audio/PCMU" || pcmu.Channels != 0 {
		t.Errorf("PCMU %+v", pcmu)
	}
	video := secs[1].Codecs
	if len(video) != 23 || video[0].MimeType != "video/VP8" || video[0].Name() != "VP8" {
		t.Fatalf("%d video codecs, first %+v", len(video), video[0])
	}
	plid, mode, err := video[6].H264() // 109
	if err != nil || video[6].PayloadType != 109 || plid.String() != "42e01f" || mode != 1 {
		t.Errorf("109: %v %d %v", plid, mode, err)
	}
}

func TestPreferredVideo(t *testing.T) {
	chromium := readOffer(t, "chromium_publish.sdp")
	pts := func(cs []Codec) []uint8 {
		var out []uint8
		for _, c := range cs {
			out = append(out, c.PayloadType)
		}
		return out
	}
	tests := []struct {
		name  string
		p     Policy
		offer string
		want  []uint8
	}{
		// Constrained Baseline mode 1, then mode 0, then Baseline 1 and 0.
		{"ivs", IVS, chromium, []uint8{109, 114, 103, 107}},
		// The same H.264 first, then Main and High in offer order, then VP8, VP9, AV1 by the policy's order.
		{"open", Open, chromium, []uint8{109, 114, 103, 107, 116, 40, 118, 96, 98, 100, 45}},
		{"vp8 ivs", IVS, readOffer(t, "vp8_only.sdp"), nil},
		{"audio only", Open, readOffer(t, "audio_only.sdp"), nil},
	}
	for _, tc := range tests {
		got, err := PreferredVideo(tc.p, tc.offer)
		if err != nil {
			t.Fatal(err)
		}
		if g := pts(got); !equalPTs(g, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, g, tc.want)
		}
	}
	if _, err := PreferredVideo(IVS, "nope"); !errors.Is(err, ErrMalformedOffer) {
		t.Errorf("err = %v", err)
	}
}

func equalPTs(a, b []uint8) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseFmtp(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"", nil},
		{";maxaveragebitrate=64000;minptime=10", map[string]string{"maxaveragebitrate": "64000", "minptime": "10"}},
		{" ; ;Profile-Level-Id = 42E01F ; packetization-mode=1;", map[string]string{"profile-level-id": "42E01F", "packetization-mode": "1"}},
		{"111/111", map[string]string{"111/111": ""}},
		{"apt=96", map[string]string{"apt": "96"}},
	}
	for _, tc := range tests {
		got := parseFmtp(tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// FuzzCheckOffer feeds arbitrary text to the offer checks: CheckOffer, PreferredVideo, CheckSubscribeOffer
// and CountMediaSections. None may panic; every refusal has a code; and what ParseOffer reads and CheckOffer
// accepts stays within the bounds (MaxOfferSections m-lines, the policy's audio and video sections, one data
// channel, each payload type of an m-line read once).
func FuzzCheckOffer(f *testing.F) {
	for _, name := range []string{"chromium_publish.sdp", "obs_whip.sdp", "vp8_only.sdp", "audio_only.sdp", "h264_high_only.sdp"} {
		f.Add(readOffer(f, name))
	}
	obs := readOffer(f, "obs_whip.sdp")
	f.Add(simulcast(obs))
	f.Add(withSections(obs, "video", 2, 15, 0))
	f.Add(withSections(obs, "video", 2, 1, 9))
	f.Add(offerOf("recvonly", "audio", "video", "application", "application"))
	f.Add(offerOf("sendonly", "audio", "video", "audio", "video", "video0"))
	f.Add("m=video 9 X 96 96 96\nm=audio 0 X 0\r\r\nm=application 9 X y\n")
	f.Fuzz(func(t *testing.T, offer string) {
		secs, err := ParseOffer(offer)
		if err == nil {
			if len(secs) > MaxOfferSections {
				t.Fatalf("ParseOffer read %d sections", len(secs))
			}
			for _, sec := range secs {
				var seen [128]bool
				for _, c := range sec.Codecs {
					if c.PayloadType > 127 || seen[c.PayloadType] {
						t.Fatalf("payload type %d read twice or out of range", c.PayloadType)
					}
					seen[c.PayloadType] = true
				}
			}
		}
		if n := CountMediaSections(offer); n < 0 || n > MaxOfferSections || (err != nil && n != 0) {
			t.Fatalf("CountMediaSections = %d (parse error %v)", n, err)
		}
		for _, p := range []Policy{IVS, Open} {
			v := CheckOffer(p, offer)
			if v != nil && v.Code == "" {
				t.Fatal("violation without a code")
			}
			if v == nil {
				c := countSections(secs)
				if err != nil || len(c.audio) > p.MaxAudioSections || len(c.video) > p.MaxVideoSections || len(c.application) > 1 {
					t.Fatalf("%s accepted %d audio, %d video, %d application sections (parse error %v)", p.Name,
						len(c.audio), len(c.video), len(c.application), err)
				}
			}
			_, _ = PreferredVideo(p, offer)
			for _, pub := range []int{0, 1, 2, 4} {
				code, msg := p.VetSubscribeOffer(offer, pub)
				if (code == "") != (msg == "") {
					t.Fatalf("subscribe: code %q, message %q", code, msg)
				}
				bound := pub
				if bound <= 0 {
					bound = p.maxMediaSections()
				}
				if code == "" && (err != nil || CountMediaSections(offer) > max(bound, 2)) {
					t.Fatalf("subscribe offer for %d accepted (parse error %v)", pub, err)
				}
			}
		}
	})
}
