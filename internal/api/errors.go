package api

import (
	"errors"
	"log/slog"

	"github.com/openstage/openstage/internal/api/validate"
	"github.com/openstage/openstage/internal/awserr"
	"github.com/openstage/openstage/internal/sigv4"
	"github.com/openstage/openstage/internal/stage"
)

// domainErrors translates the domain's sentinel errors to AWS error types: the only place where that
// mapping lives. The message the caller reads is the domain error's text.
var domainErrors = []struct {
	err error
	typ awserr.Type
}{
	{stage.ErrStageNotFound, awserr.ResourceNotFound},
	{stage.ErrSessionNotFound, awserr.ResourceNotFound},
	{stage.ErrParticipantNotFound, awserr.ResourceNotFound},
	{stage.ErrPublicKeyNotFound, awserr.ResourceNotFound},
	{stage.ErrResourceNotFound, awserr.ResourceNotFound},
	{stage.ErrQuotaExceeded, awserr.ServiceQuotaExceeded},
	{stage.ErrInvalid, awserr.Validation},
	{stage.ErrConflict, awserr.Conflict},
	{errBadPageToken, awserr.Validation},
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
	for _, m := range domainErrors {
		if errors.Is(err, m.err) {
			return &awserr.Error{Type: m.typ, Message: err.Error()}
		}
	}
	log.Error("internal error", "err", err)
	return &awserr.Error{Type: awserr.InternalServer, Message: "internal server error"}
}
