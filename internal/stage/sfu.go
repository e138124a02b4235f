package stage

import (
	"context"
	"errors"
	"fmt"

	"github.com/openstage/openstage/internal/ivs"
	"github.com/openstage/openstage/internal/media"
)

// SFUPlane is the media plane of the pion SFU (internal/media), as the domain drives it.
func SFUPlane(sfu *media.SFU) MediaPlane { return sfuPlane{sfu} }

type sfuPlane struct{ sfu *media.SFU }

var (
	_ MediaPlane = sfuPlane{}
	_ MediaConn  = (*media.Publisher)(nil)
	_ MediaConn  = (*media.Subscriber)(nil)

	_ PlaybackControl = sfuSubscriber{}
	_ LayerControl    = sfuSubscriber{}
	_ Tappable        = sfuPublisher{}
)

// sfuPublisher is a publish of the SFU, which a recorder may tap.
type sfuPublisher struct{ *media.Publisher }

func (p sfuPublisher) SetSink(s PacketSink) {
	if s == nil {
		p.SetTap(nil)
		return
	}
	p.SetTap(sinkTap{s})
}

// sinkTap is a PacketSink as the SFU's tap.
type sinkTap struct{ s PacketSink }

func (t sinkTap) TapRTP(video bool, raw []byte) { t.s.WriteRTP(video, raw) }

// sfuSubscriber is a subscription of the SFU, with its layers in the domain's terms.
type sfuSubscriber struct{ *media.Subscriber }

func (s sfuSubscriber) Layers() []Layer {
	var out []Layer
	for _, l := range s.Subscriber.Layers() {
		out = append(out, Layer{EncodingID: l.RID, Bitrate: l.Bitrate, Width: l.Width, Height: l.Height,
			FramesPerSecond: l.FramesPerSecond, Selected: l.Selected})
	}
	return out
}

func (p sfuPlane) Publish(ctx context.Context, stage ivs.StageID, id ivs.ParticipantID, offer string, h MediaHooks) (MediaConn, string, error) {
	pub, answer, err := p.sfu.Publish(ctx, stage, id, offer, media.PublishHooks{OnMedia: h.OnConnected, OnViolation: h.OnViolation, OnClosed: h.OnClosed})
	if err != nil {
		return nil, "", mediaError(err)
	}
	return sfuPublisher{pub}, answer, nil
}

func (p sfuPlane) Subscribe(ctx context.Context, publisher MediaConn, offer, layerPref string, h MediaHooks) (MediaConn, string, error) {
	var pub *media.Publisher
	switch p := publisher.(type) {
	case sfuPublisher:
		pub = p.Publisher
	case *media.Publisher:
		pub = p
	default:
		return nil, "", ErrPublisherNotFound
	}
	sub, answer, err := p.sfu.Subscribe(ctx, pub, offer, layerPref, media.SubscribeHooks{OnConnected: h.OnConnected, OnClosed: h.OnClosed})
	if err != nil {
		return nil, "", mediaError(err)
	}
	return sfuSubscriber{sub}, answer, nil
}

// mediaError gives the SFU's errors their domain kinds.
func mediaError(err error) error {
	switch {
	case errors.Is(err, media.ErrBadOffer):
		return fmt.Errorf("%w: %v", ErrBadOffer, err)
	case errors.Is(err, media.ErrPublisherNotFound):
		return ErrPublisherNotFound
	case errors.Is(err, media.ErrClosed):
		return ErrShutdown
	}
	return err
}
