package stage

import "errors"

// Kind is the category of a domain error. Each transport maps kinds to its wire in one table (AWS error
// types in the API, HTTP statuses and IVS codes in WHIP, JOIN_ERROR codes on the events socket), so a new
// sentinel cannot be forgotten by one of them: it only has to say its kind.
type Kind int

const (
	KindInternal    Kind = iota // not a domain refusal: a store failure, a bug
	KindNotFound                // the thing named does not exist
	KindForbidden               // the caller's token or participant may not do this
	KindQuota                   // a quota is reached
	KindInvalid                 // the request itself is wrong (a field, an offer)
	KindConflict                // the request conflicts with the current state
	KindUnavailable             // the service cannot take it now (shutting down); retry elsewhere or later
)

// kindError is a sentinel with a kind. Wrap it with %w to add detail; KindOf still finds the kind.
type kindError struct {
	kind Kind
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Kind() Kind    { return e.kind }

func newError(k Kind, msg string) error { return &kindError{kind: k, msg: msg} }

// KindOf returns the kind of the first error in err's chain that has one; KindInternal otherwise.
func KindOf(err error) Kind {
	var k interface{ Kind() Kind }
	if errors.As(err, &k) {
		return k.Kind()
	}
	return KindInternal
}

// Domain errors. Transports translate them by kind at their edge; their text is what callers read.
var (
	ErrStageNotFound       = newError(KindNotFound, "stage not found")
	ErrSessionNotFound     = newError(KindNotFound, "stage session not found")
	ErrParticipantNotFound = newError(KindNotFound, "participant not found")
	ErrPublicKeyNotFound   = newError(KindNotFound, "public key not found")
	ErrResourceNotFound    = newError(KindNotFound, "resource not found")
	ErrQuotaExceeded       = newError(KindQuota, "service quota exceeded")
	ErrInvalid             = newError(KindInvalid, "invalid request")
	ErrConflict            = newError(KindConflict, "conflict")

	// Lifecycle refusals, for the media plane and the events socket.
	ErrRevoked                  = newError(KindForbidden, "participant was disconnected and cannot join again")
	ErrNotJoined                = newError(KindConflict, "participant has not joined")
	ErrInsufficientCapabilities = newError(KindForbidden, "token lacks the capability")
	ErrPublisherNotFound        = newError(KindNotFound, "publisher not found")
	// ErrDisplaced: a newer connection of the same kind with the same token took this one's place while it
	// was being set up (docs/DESIGN.md §3: the token used elsewhere wins).
	ErrDisplaced = newError(KindConflict, "a newer connection with the same participant token replaced this one")
	// ErrShutdown: the service is stopping and takes no new connections.
	ErrShutdown = newError(KindUnavailable, "the server is shutting down")
	// ErrNoMedia: this server has no media plane (a domain built without one, as in API-only tests).
	ErrNoMedia = newError(KindUnavailable, "no media plane on this server")
)

// OfferError is an SDP offer the media policy refuses, with the IVS error code recorded in the
// participant's PUBLISH_ERROR or SUBSCRIBE_ERROR event.
type OfferError struct {
	Code    string // ivs.ErrorCode; a string here keeps transports from importing ivs for it
	Message string
}

func (e *OfferError) Error() string { return e.Code + ": " + e.Message }
func (e *OfferError) Kind() Kind    { return KindInvalid }

// NewKindError makes an error of kind k with message msg: for a transport that carries a domain error from
// another node (internal/cluster), so that the kind survives the hop and the API answers as the owner did.
func NewKindError(k Kind, msg string) error { return newError(k, msg) }
