// Package hls writes what an HLS player reads: fragmented-MP4 initialization and media segments (ISO/IEC
// 14496-12 movie fragments, as RFC 8216 §3.3 allows for HLS) carrying H.264 and Opus as published, and the
// playlists that list them (RFC 8216 §4). It serialises no box itself: the boxes are Eyevinn/mp4ff's.
package hls

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
)

// Timescales of the tracks: H.264's RTP clock (RFC 6184 §8.2.1) and Opus's, which is 48 kHz whatever the
// encoder's rate (RFC 7587 §4.1), so a sample's duration and time carry over from RTP unchanged.
const (
	VideoTimescale = 90000
	AudioTimescale = 48000
)

// Tracks are the tracks of a rendition: an H.264 video, an Opus audio, or both.
type Tracks struct {
	Video *H264 // nil: no video
	Audio *Opus // nil: no audio
}

// H264 is a video track's parameter sets (SPS and PPS NAL units, without start codes), which go into the
// sample entry's avcC (ISO/IEC 14496-15 §5.3.3). The samples repeat them before each IDR picture, as the
// publisher sent them (avc3).
type H264 struct {
	SPS, PPS [][]byte
}

// Opus is an audio track. WebRTC negotiates Opus as 2 channels at 48 kHz (RFC 7587 §7) whatever the encoder
// sends, and a decoder set up for 2 channels also decodes mono packets.
type Opus struct {
	Channels int // 0 = 2
}

// ErrNoTracks: a rendition needs a track.
var ErrNoTracks = errors.New("hls: no tracks")

// trackIDs returns the track ids of the init segment's tracks: video first, then audio.
func (t Tracks) trackIDs() (video, audio uint32) {
	next := uint32(1)
	if t.Video != nil {
		video, next = next, next+1
	}
	if t.Audio != nil {
		audio = next
	}
	return video, audio
}

// Init returns the initialization segment (the EXT-X-MAP of RFC 8216 §4.3.2.5): ftyp and a moov with one
// trak per track and the mvex that announces movie fragments.
func (t Tracks) Init() ([]byte, error) {
	if t.Video == nil && t.Audio == nil {
		return nil, ErrNoTracks
	}
	init := mp4.CreateEmptyInit()
	if v := t.Video; v != nil {
		if len(v.SPS) == 0 || len(v.PPS) == 0 {
			return nil, errors.New("hls: an H.264 track needs an SPS and a PPS")
		}
		init.AddEmptyTrack(VideoTimescale, "video", "und")
		trak := init.Moov.Traks[len(init.Moov.Traks)-1]
		// avc3 (ISO/IEC 14496-15 §5.4.2.1): parameter sets may also be in the samples. A WebRTC publisher
		// changes its resolution as its bandwidth estimate moves, sending new parameter sets with the next
		// IDR; a player that keeps the first initialization segment's (ffmpeg's HLS reader, for one) still
		// decodes the new pictures with the in-band ones. The recorder also starts a new initialization
		// segment after a discontinuity for them.
		if err := trak.SetAVCDescriptor("avc3", v.SPS, v.PPS, true); err != nil {
			return nil, fmt.Errorf("hls: H.264 sample entry: %w", err)
		}
	}
	if a := t.Audio; a != nil {
		init.AddEmptyTrack(AudioTimescale, "audio", "und")
		trak := init.Moov.Traks[len(init.Moov.Traks)-1]
		ch := a.channels()
		// "Encapsulation of Opus in ISO Base Media File Format" §4.3: an Opus sample entry with a dOps box;
		// its samplerate field is 48000 and the pre-skip unknown to an RTP receiver, so 0.
		dops := &mp4.DopsBox{Version: 0, OutputChannelCount: byte(ch), InputSampleRate: AudioTimescale}
		trak.Mdia.Minf.Stbl.Stsd.AddChild(mp4.CreateAudioSampleEntryBox("Opus", uint16(ch), 16, AudioTimescale, dops))
	}
	var b bytes.Buffer
	if err := init.Encode(&b); err != nil {
		return nil, fmt.Errorf("hls: encode init segment: %w", err)
	}
	return b.Bytes(), nil
}

func (a *Opus) channels() int {
	if a.Channels <= 0 {
		return 2
	}
	return a.Channels
}

// Codecs is the CODECS attribute of the rendition's EXT-X-STREAM-INF (RFC 8216 §4.3.4.2, RFC 6381 §3.3):
// avc3.PPCCLL from the SPS, and "opus" (the Opus-in-ISOBMFF sample entry's codecs string).
func (t Tracks) Codecs() (string, error) {
	var cs []string
	if t.Video != nil {
		sps, err := avc.ParseSPSNALUnit(t.Video.SPS[0], false)
		if err != nil {
			return "", fmt.Errorf("hls: parse SPS: %w", err)
		}
		cs = append(cs, avc.CodecString("avc3", sps))
	}
	if t.Audio != nil {
		cs = append(cs, "opus")
	}
	out := ""
	for i, c := range cs {
		if i > 0 {
			out += ","
		}
		out += c
	}
	return out, nil
}

// Resolution is the video's size from its SPS (0, 0 without video).
func (t Tracks) Resolution() (width, height int, err error) {
	if t.Video == nil {
		return 0, 0, nil
	}
	sps, err := avc.ParseSPSNALUnit(t.Video.SPS[0], false)
	if err != nil {
		return 0, 0, fmt.Errorf("hls: parse SPS: %w", err)
	}
	return int(sps.Width), int(sps.Height), nil
}

// Sample is one access unit (video: AVC length-prefixed NAL units, ISO/IEC 14496-15 §5.3.2) or one Opus
// packet, with its duration in the track's timescale.
type Sample struct {
	Data     []byte
	Duration uint32
	Sync     bool // a video IDR picture; every audio sample is one
}

// Run is one track's samples in a segment, starting at decode time Start (the track's timescale, counted
// from the recording's start: the tfdt of ISO/IEC 14496-12 §8.8.12).
type Run struct {
	Start   uint64
	Samples []Sample
}

// Segment returns a media segment (RFC 8216 §3.3): styp and one movie fragment, sequence number seq, with a
// track fragment per track that has samples. The video's samples have no composition offsets: WebRTC's
// H.264 has no B-frames (IVS refuses them: B_FRAME_PRESENT), so decode order is presentation order.
func (t Tracks) Segment(seq uint32, video, audio Run) ([]byte, error) {
	vid, aid := t.trackIDs()
	var ids []uint32
	if vid != 0 && len(video.Samples) > 0 {
		ids = append(ids, vid)
	}
	if aid != 0 && len(audio.Samples) > 0 {
		ids = append(ids, aid)
	}
	if len(ids) == 0 {
		return nil, errors.New("hls: a segment needs samples")
	}
	frag, err := mp4.CreateMultiTrackFragment(seq, ids)
	if err != nil {
		return nil, fmt.Errorf("hls: fragment: %w", err)
	}
	add := func(id uint32, r Run) error {
		if id == 0 {
			return nil
		}
		at := r.Start
		for _, s := range r.Samples {
			flags := mp4.NonSyncSampleFlags
			if s.Sync {
				flags = mp4.SyncSampleFlags
			}
			fs := mp4.FullSample{Sample: mp4.Sample{Flags: flags, Dur: s.Duration, Size: uint32(len(s.Data))},
				DecodeTime: at, Data: s.Data}
			if err := frag.AddFullSampleToTrack(fs, id); err != nil {
				return fmt.Errorf("hls: add sample to track %d: %w", id, err)
			}
			at += uint64(s.Duration)
		}
		return nil
	}
	if err := add(vid, video); err != nil {
		return nil, err
	}
	if err := add(aid, audio); err != nil {
		return nil, err
	}
	seg := mp4.NewMediaSegment()
	seg.AddFragment(frag)
	var b bytes.Buffer
	b.Grow(int(seg.Size()))
	if err := seg.Encode(&b); err != nil {
		return nil, fmt.Errorf("hls: encode segment: %w", err)
	}
	return b.Bytes(), nil
}
