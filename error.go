package groupgate

import (
	"errors"
	"fmt"
	"log/slog"
)

// ErrorCode classifies an Error. Each edge (Connect API, SCIM, browser pages)
// maps codes to its own vocabulary in one table; domain code never picks a
// transport status.
type ErrorCode string

const (
	NotFound           ErrorCode = "not_found"
	Invalid            ErrorCode = "invalid"
	Conflict           ErrorCode = "conflict"
	FailedPrecondition ErrorCode = "failed_precondition"
	Forbidden          ErrorCode = "forbidden"
	Unauthenticated    ErrorCode = "unauthenticated"
	Unavailable        ErrorCode = "unavailable"
	Internal           ErrorCode = "internal"

	// ResourceExhausted: a per-user quota is used up (for example the
	// number of live API tokens); the caller may retry once some is freed.
	ResourceExhausted ErrorCode = "resource_exhausted"
)

// Error is the one error type of groupgate. Message is safe to show to the
// caller; Err, the cause, is for logs only.
type Error struct {
	Code    ErrorCode
	Message string
	Err     error
}

// Errorf returns an *Error with a formatted, caller-safe message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error that keeps cause for errors.Is/As and logs.
func WrapError(code ErrorCode, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Code: NotFound}) match on the code alone.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// LogValue keeps the cause next to the code and message in structured logs.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("code", string(e.Code)), slog.String("message", e.Message)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// ErrorCodeOf returns the code of the first *Error in err's chain, Internal
// when there is none, and "" for a nil error.
func ErrorCodeOf(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessageOf returns the caller-safe message of err: the message of the
// first *Error in its chain, or a generic text that leaks nothing.
func ErrorMessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries code anywhere in its chain.
func IsCode(err error, code ErrorCode) bool {
	return ErrorCodeOf(err) == code
}
