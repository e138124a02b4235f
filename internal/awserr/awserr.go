// Package awserr is the one table of the errors openstage answers on the AWS API: each error type with its
// HTTP status, and how it is written on the wire (restJson1: x-amzn-ErrorType header plus a JSON body). Every
// handler answers through it, so no handler invents a status code.
package awserr

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Type is an AWS error type, the value of x-amzn-ErrorType.
type Type string

// The model's error shapes (ivs-realtime-2020-07-14.json) and the AWS common authentication errors.
const (
	Validation           Type = "ValidationException"
	AccessDenied         Type = "AccessDeniedException"
	ResourceNotFound     Type = "ResourceNotFoundException"
	Conflict             Type = "ConflictException"
	ServiceQuotaExceeded Type = "ServiceQuotaExceededException"
	InternalServer       Type = "InternalServerException"
	PendingVerification  Type = "PendingVerification"

	MissingAuthenticationToken Type = "MissingAuthenticationTokenException"
	UnrecognizedClient         Type = "UnrecognizedClientException"
	InvalidSignature           Type = "InvalidSignatureException"
	IncompleteSignature        Type = "IncompleteSignatureException"
	UnknownOperation           Type = "UnknownOperationException"
)

// status is the table: the model's httpStatusCode for its shapes, 403 for the authentication errors.
var status = map[Type]int{
	Validation:                 http.StatusBadRequest,
	AccessDenied:               http.StatusForbidden,
	ResourceNotFound:           http.StatusNotFound,
	Conflict:                   http.StatusConflict,
	ServiceQuotaExceeded:       http.StatusPaymentRequired, // 402, as the model says
	InternalServer:             http.StatusInternalServerError,
	PendingVerification:        http.StatusForbidden,
	MissingAuthenticationToken: http.StatusForbidden,
	UnrecognizedClient:         http.StatusForbidden,
	InvalidSignature:           http.StatusForbidden,
	IncompleteSignature:        http.StatusForbidden,
	UnknownOperation:           http.StatusNotFound,
}

// Status returns the HTTP status of t (500 for a type missing from the table).
func (t Type) Status() int {
	if s, ok := status[t]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an API error: a type and the message the caller reads.
type Error struct {
	Type    Type
	Message string
}

func (e *Error) Error() string { return string(e.Type) + ": " + e.Message }

// New makes an Error with a formatted message.
func New(t Type, format string, args ...any) *Error {
	return &Error{Type: t, Message: fmt.Sprintf(format, args...)}
}

// Write sends e as restJson1 expects. Both SDKs pick the type from x-amzn-ErrorType; the Go SDK fills its
// typed errors from exceptionMessage, JS v3 reads message, so the body carries both (docs/DESIGN.md §2.2).
func Write(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", string(e.Type))
	body, _ := json.Marshal(struct {
		ExceptionMessage string `json:"exceptionMessage"`
		Message          string `json:"message"`
	}{e.Message, e.Message})
	w.WriteHeader(e.Type.Status())
	_, _ = w.Write(body)
}
