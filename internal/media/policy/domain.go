package policy

import "github.com/openstage/openstage/internal/ivs"

// The stage domain vets offers through these two methods (stage.OfferPolicy) before it negotiates media.

// VetPublish is VetOffer: a publish offer's refusal code and message, or "" when it passes.
func (p Policy) VetPublish(offer string) (ivs.ErrorCode, string) { return p.VetOffer(offer) }

// VetSubscribe vets a subscribe offer against the offer of the publisher it receives.
func (p Policy) VetSubscribe(offer, publisherOffer string) (ivs.ErrorCode, string) {
	return p.VetSubscribeOffer(offer, CountMediaSections(publisherOffer))
}
