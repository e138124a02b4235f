package hls

import (
	"strings"
	"testing"
	"time"
)

// A playlist written while recording, and after, reads back as written (crash recovery re-reads it).
func TestMediaPlaylistRoundTrip(t *testing.T) {
	p := &MediaPlaylist{Target: 6 * time.Second, Entries: []Entry{
		{URI: "1.mp4", Duration: 6 * time.Second, Map: "init-0.mp4"},
		{URI: "2.mp4", Duration: 7400 * time.Millisecond, Map: "init-0.mp4"},
		{URI: "3.mp4", Duration: 2 * time.Second, Map: "init-1.mp4", Discontinuity: true},
	}}
	live := string(p.Encode())
	for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:EVENT\n", "#EXT-X-TARGETDURATION:7\n", "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXTINF:2.000,\n3.mp4\n"} {
		if !strings.Contains(live, want) {
			t.Fatalf("playlist lacks %q:\n%s", want, live)
		}
	}
	if strings.Contains(live, "ENDLIST") || strings.Count(live, "EXT-X-MAP") != 2 {
		t.Fatalf("live playlist:\n%s", live)
	}
	back, err := ParseMediaPlaylist([]byte(live))
	if err != nil {
		t.Fatal(err)
	}
	back.Ended = true
	p.Ended = true
	if got, want := string(back.Encode()), string(p.Encode()); got != want {
		t.Fatalf("round trip:\n%s\nwant\n%s", got, want)
	}
	if !strings.HasSuffix(string(p.Encode()), "#EXT-X-ENDLIST\n") || !strings.Contains(string(p.Encode()), "#EXT-X-PLAYLIST-TYPE:VOD\n") {
		t.Fatalf("ended playlist:\n%s", p.Encode())
	}
	if _, err := ParseMediaPlaylist([]byte("#EXTM3U\n1.mp4\n")); err == nil {
		t.Fatal("a segment without EXTINF parsed")
	}
	if _, err := ParseMediaPlaylist(nil); err == nil {
		t.Fatal("an empty playlist parsed")
	}
}

func TestMultivariant(t *testing.T) {
	got := string(Multivariant(Variant{URI: "high/playlist.m3u8", Bandwidth: 180000, Codecs: "avc3.42C00D,opus", Width: 320, Height: 180}))
	want := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=180000,CODECS=\"avc3.42C00D,opus\",RESOLUTION=320x180\nhigh/playlist.m3u8\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func FuzzParseMediaPlaylist(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:6.000,\n1.mp4\n#EXT-X-ENDLIST\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseMediaPlaylist(b)
		if err != nil {
			return
		}
		// What parses re-encodes to a playlist that parses to the same segments.
		again, err := ParseMediaPlaylist(p.Encode())
		if err != nil || len(again.Entries) != len(p.Entries) {
			t.Fatalf("re-encoded playlist: %v, %d entries of %d", err, len(again.Entries), len(p.Entries))
		}
	})
}
