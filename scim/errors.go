package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/groupgate/groupgate"
)

// scimType values (RFC 7644 §3.12).
const (
	errInvalidFilter = "invalidFilter"
	errTooMany       = "tooMany"
	errUniqueness    = "uniqueness"
	errMutability    = "mutability"
	errInvalidSyntax = "invalidSyntax"
	errInvalidPath   = "invalidPath"
	errNoTarget      = "noTarget"
	errInvalidValue  = "invalidValue"
	errInvalidVers   = "invalidVers"
	errSensitive     = "sensitive"
)

// Error is a SCIM error response (RFC 7644 §3.12).
type Error struct {
	Status   int
	ScimType string
	Detail   string
	Err      error
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("scim %d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("scim %d: %s", e.Status, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

func badRequest(scimType, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON shape; status is a string, as RFC 7644 §3.12
// specifies and as Entra ID checks.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

func (e *Error) body() errorBody {
	return errorBody{Schemas: []string{URNError}, Status: strconv.Itoa(e.Status), ScimType: e.ScimType, Detail: e.Detail}
}

// toSCIMError maps any error to a SCIM error: the one code table of this
// edge.
func toSCIMError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body larger than %d bytes", mbe.Limit), Err: err}
	}
	msg := groupgate.ErrorMessageOf(err)
	switch groupgate.ErrorCodeOf(err) {
	case groupgate.NotFound:
		return &Error{Status: http.StatusNotFound, Detail: msg, Err: err}
	case groupgate.Invalid:
		return &Error{Status: http.StatusBadRequest, ScimType: errInvalidValue, Detail: msg, Err: err}
	case groupgate.Conflict:
		return &Error{Status: http.StatusConflict, ScimType: errUniqueness, Detail: msg, Err: err}
	case groupgate.FailedPrecondition:
		return &Error{Status: http.StatusBadRequest, ScimType: errInvalidValue, Detail: msg, Err: err}
	case groupgate.Forbidden:
		return &Error{Status: http.StatusForbidden, Detail: msg, Err: err}
	case groupgate.Unauthenticated:
		return &Error{Status: http.StatusUnauthorized, Detail: msg, Err: err}
	case groupgate.Unavailable:
		return &Error{Status: http.StatusServiceUnavailable, Detail: msg, Err: err}
	default:
		return &Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
	}
}
