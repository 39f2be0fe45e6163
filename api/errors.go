package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/vms-project/vms/queue"
)

// Error is the JSON body of every refused request: a stable machine code
// and a message that says what was wrong and how to fix it.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the API itself. Input problems found by queue keep their
// queue.InputError code (invalid_number, template_not_approved, ...).
const (
	CodeSignatureInvalid   = "signature_invalid"
	CodeTimestampSkew      = "timestamp_skew"
	CodeNonceReused        = "nonce_reused"
	CodeRateLimited        = "rate_limited"
	CodeBodyTooLarge       = "body_too_large"
	CodeInvalidRequest     = "invalid_request"
	CodeParamTooLong       = "param_too_long"
	CodeTemplateNotAllowed = "template_not_allowed"
	CodeDuplicateMessage   = "duplicate_message"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeNotCancelable      = "not_cancelable"
	CodeInvalidReason      = "invalid_reason"
	CodeCalleeOptedOut     = "callee_opted_out"
	// CodeInvalidCallbackURL: not http(s), with credentials, a host off the
	// app's callback_hosts, or an internal address (also queue's code).
	CodeInvalidCallbackURL = "invalid_callback_url"
	CodeInternal           = "internal"
)

// statusOf is the HTTP status of each error code. Codes not listed (input
// problems queue may add later) are 400.
var statusOf = map[string]int{
	CodeSignatureInvalid:    http.StatusUnauthorized,
	CodeTimestampSkew:       http.StatusUnauthorized,
	CodeNonceReused:         http.StatusUnauthorized,
	CodeRateLimited:         http.StatusTooManyRequests,
	CodeBodyTooLarge:        http.StatusRequestEntityTooLarge,
	CodeInvalidRequest:      http.StatusBadRequest,
	CodeParamTooLong:        http.StatusBadRequest,
	CodeTemplateNotAllowed:  http.StatusForbidden,
	CodeDuplicateMessage:    http.StatusConflict,
	CodeNotFound:            http.StatusNotFound,
	CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	CodeNotCancelable:       http.StatusConflict,
	CodeInvalidReason:       http.StatusBadRequest,
	CodeCalleeOptedOut:      http.StatusForbidden,
	CodeInvalidCallbackURL:  http.StatusBadRequest,
	CodeInternal:            http.StatusInternalServerError,
	"invalid_number":        http.StatusBadRequest,
	"invalid_code":          http.StatusBadRequest,
	"invalid_play_times":    http.StatusBadRequest,
	"invalid_message_id":    http.StatusBadRequest,
	"invalid_language":      http.StatusBadRequest,
	"invalid_params":        http.StatusBadRequest,
	"template_not_found":    http.StatusNotFound,
	"template_not_approved": http.StatusForbidden,
	"frequency_limited":     http.StatusTooManyRequests,
	"blocked":               http.StatusForbidden,
}

// HTTPStatus returns the HTTP status the API answers code with.
func HTTPStatus(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code, msg string) {
	writeJSON(w, HTTPStatus(code), Error{Code: code, Message: msg})
}

// writeErr answers err: an input error with its own code, anything else
// as internal (logged, not shown: it may name internals).
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ie *queue.InputError
	if errors.As(err, &ie) {
		writeError(w, ie.Code, ie.Msg)
		return
	}
	// The route pattern, not the path: paths may hold phone numbers.
	s.log.Error("api request failed", "route", r.Pattern, "err", err)
	writeError(w, CodeInternal, "internal error; it was logged, retry later")
}
