package api

import (
	"errors"
	"log/slog"

	"github.com/openstage/openstage/internal/api/validate"
	"github.com/openstage/openstage/internal/awserr"
	"github.com/openstage/openstage/internal/sigv4"
	"github.com/openstage/openstage/internal/stage"
)

// domainErrors translates the domain's error kinds to AWS error types: the only place where that mapping
// lives, so a new domain sentinel needs only its kind. The message the caller reads is the domain error's
// text. KindForbidden and KindUnavailable come from participant connections, never from an API operation;
// a kind missing here is an InternalServerException.
var domainErrors = map[stage.Kind]awserr.Type{
	stage.KindNotFound: awserr.ResourceNotFound,
	stage.KindQuota:    awserr.ServiceQuotaExceeded,
	stage.KindInvalid:  awserr.Validation,
	stage.KindConflict: awserr.Conflict,
}

// toAWS turns any error a handler returns into the AWS error to send. Unknown errors are logged and become
// InternalServerException without their text (it may name internals).
func toAWS(err error, log *slog.Logger) *awserr.Error {
	var ae *awserr.Error
	if errors.As(err, &ae) {
		return ae
	}
	var ve *validate.Error
	if errors.As(err, &ve) {
		return &awserr.Error{Type: awserr.Validation, Message: ve.Error()}
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &awserr.Error{Type: awserr.Type(se.Code), Message: se.Message}
	}
	if errors.Is(err, errBadPageToken) {
		return &awserr.Error{Type: awserr.Validation, Message: err.Error()}
	}
	if typ, ok := domainErrors[stage.KindOf(err)]; ok {
		return &awserr.Error{Type: typ, Message: err.Error()}
	}
	log.Error("internal error", "err", err)
	return &awserr.Error{Type: awserr.InternalServer, Message: "internal server error"}
}
