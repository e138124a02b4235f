package sigv4

import "net/http"

// Code is an AWS common error type, as sent in the x-amzn-ErrorType header.
type Code string

// The authentication error types AWS services return. All of them are HTTP 403.
const (
	// MissingAuthenticationToken: the request carries neither an Authorization header nor presigned
	// query parameters.
	MissingAuthenticationToken Code = "MissingAuthenticationTokenException"
	// UnrecognizedClient: the access key id is unknown.
	UnrecognizedClient Code = "UnrecognizedClientException"
	// InvalidSignature: the signature does not match, the credential scope names another service,
	// region or date, the payload hash is wrong, or the request time is too far from the server's clock.
	InvalidSignature Code = "InvalidSignatureException"
	// IncompleteSignature: the Authorization header (or the presigned query) is malformed.
	IncompleteSignature Code = "IncompleteSignatureException"
)

// The messages AWS services use for these errors (worded as AWS words them, so that clients and people
// searching for them recognise them).
const (
	msgMissingToken     = "Missing Authentication Token"
	msgUnrecognized     = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Error is what Verify returns on failure. Code is the AWS common error type to put in
// x-amzn-ErrorType; every one of them is answered with HTTP 403 (see HTTPStatus). Message is safe to
// send to the client: it never holds a secret, a signature or a computed canonical request.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// HTTPStatus is the status code to answer with: 403 for every authentication failure.
func (e *Error) HTTPStatus() int { return http.StatusForbidden }

func newError(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

func incomplete(msg string) *Error { return newError(IncompleteSignature, msg) }

func invalid(msg string) *Error { return newError(InvalidSignature, msg) }
