package api

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/queue"
)

// The suppression endpoints mirror `vms suppress add|remove|list` for the
// calling app's own list. The global list (all apps) stays operator-only:
// an app never sees its entries, only whether one applies to a number.
//
// The lists are keyed by a keyed hash of the number (package policy), so
// vms cannot list the numbers back: entries and answers carry the masked
// number (e.g. +86*******8000). An app that needs the full numbers keeps
// its own copy.

// MaxReasonLen is the longest suppression reason accepted (characters).
const MaxReasonLen = 200

// Suppression sources written by the API, and the one it may not undo.
const (
	SourceAPI    = "api"    // added by the app through the API
	sourceOptOut = "optout" // the callee pressed the opt-out key (policy.Engine.Suppress)
)

// SuppressionRequest is the body of POST /v1/suppressions.
type SuppressionRequest struct {
	Number string `json:"number"`
	Reason string `json:"reason"`
}

// SuppressionCheck answers GET and DELETE /v1/suppressions/{number}.
type SuppressionCheck struct {
	// Number is masked.
	Number string `json:"number"`
	// Suppressed: calls from this app to the number are refused (blocked),
	// by the app's list or the global one.
	Suppressed bool `json:"suppressed"`
	// Global: the operator's global list has the number (its entry is not
	// shown; ask the operator).
	Global bool `json:"global"`
	// Suppression is the entry on the app's own list, if any.
	Suppression *policy.Suppression `json:"suppression,omitempty"`
}

// SuppressionList answers GET /v1/suppressions.
type SuppressionList struct {
	Suppressions []policy.Suppression `json:"suppressions"`
}

// by is who an app's change is audited as (the same actor the policy
// engine records for the app's sends).
func by(a *app) string { return "app:" + a.ID }

func checkReason(reason string) error {
	n := utf8.RuneCountInString(reason)
	switch {
	case strings.TrimSpace(reason) == "":
		return &queue.InputError{Code: CodeInvalidReason, Msg: "reason: say why the number is suppressed (e.g. \"customer asked by email, ticket 4411\")"}
	case n > MaxReasonLen:
		return &queue.InputError{Code: CodeInvalidReason, Msg: fmt.Sprintf("reason is %d characters long: at most %d are allowed", n, MaxReasonLen)}
	case strings.ContainsFunc(reason, unicode.IsControl):
		return &queue.InputError{Code: CodeInvalidReason, Msg: "reason: use one line of text without control characters"}
	}
	return nil
}

// addSuppression puts a number on the app's list. A number already on it
// keeps its entry (200 with it): re-adding never rewrites who suppressed
// it, so an app cannot turn a callee's opt-out into an entry it may remove.
func (s *Server) addSuppression(w http.ResponseWriter, r *http.Request, body []byte) {
	var req SuppressionRequest
	if !decode(w, body, &req) {
		return
	}
	if _, err := queue.NormalizeNumber(req.Number); err != nil {
		s.writeErr(w, r, err)
		return
	}
	if err := checkReason(req.Reason); err != nil {
		s.writeErr(w, r, err)
		return
	}
	a := appFrom(r.Context())
	old, err := s.policy.SuppressionIn(r.Context(), a.ID, req.Number)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	if old != nil {
		writeJSON(w, http.StatusOK, old)
		return
	}
	sup, err := s.policy.AddSuppression(r.Context(), a.ID, req.Number, req.Reason, SourceAPI, by(a))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, sup)
}

// check answers whether number is suppressed for the app.
func (s *Server) check(r *http.Request, number string) (SuppressionCheck, error) {
	a := appFrom(r.Context())
	norm, err := queue.NormalizeNumber(number)
	if err != nil {
		return SuppressionCheck{}, err
	}
	own, err := s.policy.SuppressionIn(r.Context(), a.ID, norm)
	if err != nil {
		return SuppressionCheck{}, err
	}
	global, err := s.policy.SuppressionIn(r.Context(), policy.GlobalScope, norm)
	if err != nil {
		return SuppressionCheck{}, err
	}
	return SuppressionCheck{Number: queue.MaskNumber(norm), Suppressed: own != nil || global != nil,
		Global: global != nil, Suppression: own}, nil
}

func (s *Server) getSuppression(w http.ResponseWriter, r *http.Request, _ []byte) {
	c, err := s.check(r, r.PathValue("number"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// removeSuppression takes a number off the app's list, unless the callee
// put it there by pressing the opt-out key: only the operator may undo that.
func (s *Server) removeSuppression(w http.ResponseWriter, r *http.Request, _ []byte) {
	a := appFrom(r.Context())
	number := r.PathValue("number")
	c, err := s.check(r, number)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	switch {
	case c.Suppression == nil:
		writeError(w, CodeNotFound, fmt.Sprintf("%s is not on app %s's suppression list", c.Number, a.ID))
		return
	case c.Suppression.Source == sourceOptOut:
		writeError(w, CodeCalleeOptedOut, fmt.Sprintf("%s opted out by pressing the opt-out key during a call: an app cannot undo that; "+
			"the operator can, with vms suppress remove --app %s, once the callee asks to be called again", c.Number, a.ID))
		return
	}
	if _, err := s.policy.RemoveSuppression(r.Context(), a.ID, number, by(a)); err != nil {
		s.writeErr(w, r, err)
		return
	}
	c.Suppression, c.Suppressed = nil, c.Global
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request, _ []byte) {
	list, err := s.policy.Suppressions(r.Context(), appFrom(r.Context()).ID)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SuppressionList{Suppressions: list})
}
