package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/openstage/openstage/internal/ivs"
)

func TestByName(t *testing.T) {
	for _, name := range []string{"ivs", "IVS", " ivs "} {
		p, err := ByName(name)
		if err != nil || p.Name != "ivs" || !p.RequireVideo || !p.H264BaselineOnly {
			t.Errorf("%q: %+v %v", name, p, err)
		}
	}
	p, err := ByName("open")
	if err != nil || p.Name != "open" || p.RequireVideo || len(p.AllowedVideo) != 4 {
		t.Errorf("open: %+v %v", p, err)
	}
	// The copy's slices are its own.
	p.AllowedVideo[0] = "video/nonsense"
	if Open.AllowedVideo[0] != MimeH264 {
		t.Error("ByName returned the package's slice")
	}
	if _, err := ByName("webrtc"); err == nil || !strings.Contains(err.Error(), "ivs, open") {
		t.Errorf("unknown name: %v", err)
	}
	for _, name := range Names() {
		p, _ := ByName(name)
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	// docs/DESIGN.md §4.8: 720p, 8.5 Mbps, 24 h, no B-frames, for both policies.
	for _, p := range []Policy{IVS, Open} {
		if p.MaxWidth != 1280 || p.MaxHeight != 720 || p.MaxBitrate != 8_500_000 || p.MaxDuration != 24*time.Hour || p.AllowBFrames {
			t.Errorf("%s: %+v", p.Name, p)
		}
		if p.bitrateWindow() != DefaultBitrateWindow {
			t.Errorf("%s window %s", p.Name, p.bitrateWindow())
		}
	}
	if !IVS.RequireAudio || Open.RequireAudio || Open.H264BaselineOnly {
		t.Error("requirements")
	}
	// One audio and one video section under ivs, as IVS maps them; two of each under open.
	if IVS.MaxAudioSections != 1 || IVS.MaxVideoSections != 1 || Open.MaxAudioSections != 2 || Open.MaxVideoSections != 2 {
		t.Errorf("section limits: ivs %d+%d, open %d+%d", IVS.MaxAudioSections, IVS.MaxVideoSections, Open.MaxAudioSections, Open.MaxVideoSections)
	}
	p := IVS
	p.BitrateWindow = time.Second
	if p.bitrateWindow() != time.Second {
		t.Error("BitrateWindow ignored")
	}
}

func TestValidate(t *testing.T) {
	bad := []func(*Policy){
		func(p *Policy) { p.Name = "" },
		func(p *Policy) { p.MaxBitrate = -1 },
		func(p *Policy) { p.MaxWidth = 0 },
		func(p *Policy) { p.AllowedVideo = nil },
		func(p *Policy) { p.AllowedAudio = nil },
		func(p *Policy) { p.AllowedVideo = []string{"audio/opus"} },
		func(p *Policy) { p.AllowedAudio = []string{"opus"} },
		func(p *Policy) { p.MaxVideoSections = -1 },
		func(p *Policy) { p.MaxAudioSections = -1 },
	}
	for i, f := range bad {
		p, _ := ByName("ivs")
		f(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("#%d: %+v accepted", i, p)
		}
	}
	unlimited := Policy{Name: "unlimited"}
	if err := unlimited.Validate(); err != nil {
		t.Error(err)
	}
}

func TestCheckResolution(t *testing.T) {
	tests := []struct {
		w, h int
		ok   bool
	}{
		{1280, 720, true}, {720, 1280, true}, {640, 360, true}, {1280, 1280, false}, {1281, 720, false},
		{1280, 721, false}, {721, 1280, false}, {720, 1281, false}, {1920, 1080, false}, {1080, 1920, false},
		{960, 960, false}, {720, 720, true}, {1366, 768, false}, {0, 0, true},
	}
	for _, tc := range tests {
		v := CheckResolution(IVS, tc.w, tc.h)
		if (v == nil) != tc.ok {
			t.Errorf("%dx%d: %v", tc.w, tc.h, v)
		}
		if v != nil && (v.Code != ivs.ErrResolutionExceeded || !strings.Contains(v.Message, "1280x720")) {
			t.Errorf("%dx%d: %v", tc.w, tc.h, v)
		}
	}
	if CheckResolution(Policy{Name: "x"}, 8000, 8000) != nil {
		t.Error("no limit, yet a violation")
	}
	// A portrait-shaped limit reads the same way.
	portrait := Policy{Name: "portrait", MaxWidth: 720, MaxHeight: 1280}
	if CheckResolution(portrait, 1280, 720) != nil || CheckResolution(portrait, 1920, 1080) == nil {
		t.Error("portrait limit")
	}
}
