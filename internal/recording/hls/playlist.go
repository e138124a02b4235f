package hls

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Version is the playlists' EXT-X-VERSION: 7, the lowest that allows EXT-X-MAP in a playlist that is not
// I-frames only (RFC 8216 §4.3.2.5, §7).
const Version = 7

// Entry is one media segment of a media playlist.
type Entry struct {
	URI      string
	Duration time.Duration
	// Map is the URI of the initialization segment it needs; an entry whose Map differs from the one
	// before it gets an EXT-X-MAP tag.
	Map string
	// Discontinuity marks a segment that does not continue the one before it (RFC 8216 §4.3.2.3): the
	// publisher came back within the reconnect window, with new encoder state and timestamps.
	Discontinuity bool
}

// MediaPlaylist is a rendition's playlist (RFC 8216 §4.3.3), growing while the recording lasts.
type MediaPlaylist struct {
	// Target is the recording's targetSegmentDurationSeconds. Segments are cut at keyframes, so one may
	// be longer; the EXT-X-TARGETDURATION written is then the longest rounded (§4.3.3.1 requires it).
	Target  time.Duration
	Entries []Entry
	// Ended adds EXT-X-ENDLIST and makes the playlist a VOD one (§4.3.3.4, §4.3.3.5): nothing will follow.
	Ended bool
}

// targetDuration is EXT-X-TARGETDURATION: at least every EXTINF rounded to the nearest integer.
func (p *MediaPlaylist) targetDuration() int {
	t := int(math.Ceil(p.Target.Seconds()))
	for _, e := range p.Entries {
		if d := int(math.Round(e.Duration.Seconds())); d > t {
			t = d
		}
	}
	return max(t, 1)
}

// Encode writes the playlist. A recording in progress is an EVENT playlist (segments are only appended:
// a player that opens it while it grows, or after a crash cut it short, sees every segment from the first);
// an ended one is VOD with EXT-X-ENDLIST.
func (p *MediaPlaylist) Encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", Version, p.targetDuration())
	if p.Ended {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	mapped := ""
	for _, e := range p.Entries {
		if e.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if e.Map != mapped {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", e.Map)
			mapped = e.Map
		}
		// Decimal-floating-point durations (version 3 and later, §4.3.2.1), in milliseconds.
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", e.Duration.Seconds(), e.URI)
	}
	if p.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// Duration is the sum of the segments' durations.
func (p *MediaPlaylist) Duration() time.Duration {
	var d time.Duration
	for _, e := range p.Entries {
		d += e.Duration
	}
	return d
}

// ParseMediaPlaylist reads back a playlist this package wrote (crash recovery finishes a playlist a killed
// process left growing). It knows this package's tags only; others are ignored.
func ParseMediaPlaylist(data []byte) (*MediaPlaylist, error) {
	p := &MediaPlaylist{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var next Entry
	pending := false
	mapped := ""
	first := true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != "#EXTM3U" {
				return nil, fmt.Errorf("hls: not a playlist (first line %q)", line)
			}
			first = false
			continue
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
			if err != nil {
				return nil, fmt.Errorf("hls: %q: %w", line, err)
			}
			p.Target = time.Duration(n) * time.Second
		case line == "#EXT-X-ENDLIST":
			p.Ended = true
		case line == "#EXT-X-DISCONTINUITY":
			next.Discontinuity = true
		case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
			u, err := strconv.Unquote(strings.TrimPrefix(line, "#EXT-X-MAP:URI="))
			if err != nil {
				return nil, fmt.Errorf("hls: %q: %w", line, err)
			}
			mapped = u
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("hls: %q: %w", line, err)
			}
			next.Duration = time.Duration(math.Round(f*1000)) * time.Millisecond
			pending = true
		case strings.HasPrefix(line, "#"):
		default:
			if !pending {
				return nil, fmt.Errorf("hls: segment %q without EXTINF", line)
			}
			next.URI, next.Map = line, mapped
			p.Entries = append(p.Entries, next)
			next, pending = Entry{}, false
		}
	}
	if first {
		return nil, fmt.Errorf("hls: empty playlist")
	}
	return p, sc.Err()
}

// Variant is the one rendition a multivariant playlist lists.
type Variant struct {
	URI           string
	Bandwidth     int // peak bits per second of a segment (§4.3.4.2)
	Codecs        string
	Width, Height int // 0 for audio only
}

// Multivariant returns the multivariant playlist (RFC 8216 §4.3.4) listing v.
func Multivariant(v Variant) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-INDEPENDENT-SEGMENTS\n", Version)
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=%q", max(v.Bandwidth, 1), v.Codecs)
	if v.Width > 0 && v.Height > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
	}
	fmt.Fprintf(&b, "\n%s\n", v.URI)
	return b.Bytes()
}
