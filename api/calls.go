package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/vms-project/vms/internal/netguard"
	"github.com/vms-project/vms/queue"
	"github.com/vms-project/vms/templates"
)

// CodeCall is the body of POST /v1/calls/code.
type CodeCall struct {
	To             string `json:"to"`
	Code           string `json:"code"`
	PlayTimes      int    `json:"play_times,omitempty"`
	Language       string `json:"language,omitempty"`
	MessageID      string `json:"message_id,omitempty"`
	SessionContext string `json:"session_context,omitempty"`
	CallbackURL    string `json:"callback_url,omitempty"`
}

// TTSCall is the body of POST /v1/calls/tts.
type TTSCall struct {
	To             string   `json:"to"`
	TemplateID     string   `json:"template_id"`
	Params         []string `json:"params"`
	PlayTimes      int      `json:"play_times,omitempty"`
	MessageID      string   `json:"message_id,omitempty"`
	SessionContext string   `json:"session_context,omitempty"`
	CallbackURL    string   `json:"callback_url,omitempty"`
}

// decode reads one JSON object, refusing unknown fields and trailing data.
func decode(w http.ResponseWriter, body []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		writeError(w, CodeInvalidRequest, "request body: "+err.Error()+" (send one JSON object with the documented fields only; see /openapi.json)")
		return false
	}
	return true
}

// checkCallbackURL refuses a callback_url that is not http(s), carries
// credentials, names a host off the app's callback_hosts, or (without
// api.callbacks.allow_private_hosts) an internal address. Host names are
// checked again, resolved, when the callback connects.
func (s *Server) checkCallbackURL(w http.ResponseWriter, a *app, raw string) bool {
	if raw == "" {
		return true
	}
	if err := netguard.CheckURL(raw, s.cfg.API.Callbacks.AllowPrivateHosts, a.CallbackHosts); err != nil {
		writeError(w, CodeInvalidCallbackURL, "callback_url: "+err.Error())
		return false
	}
	return true
}

func (s *Server) sendCode(w http.ResponseWriter, r *http.Request, body []byte) {
	var req CodeCall
	if !decode(w, body, &req) {
		return
	}
	a := appFrom(r.Context())
	if !s.checkCallbackURL(w, a, req.CallbackURL) {
		return
	}
	rec, err := s.q.SendCode(r.Context(), queue.CodeRequest{ID: req.MessageID, To: req.To, Code: req.Code,
		PlayTimes: req.PlayTimes, Language: req.Language, AppID: a.ID,
		SessionContext: req.SessionContext, CallbackURL: req.CallbackURL})
	s.answerSend(w, r, rec, err, func(m queue.Message) bool {
		lang := req.Language
		if lang == "" {
			lang = s.cfg.Code.Language
		}
		return m.Kind == queue.KindCode && m.Code == req.Code && m.Language == lang
	}, req.To, req.PlayTimes)
}

func (s *Server) sendTTS(w http.ResponseWriter, r *http.Request, body []byte) {
	var req TTSCall
	if !decode(w, body, &req) {
		return
	}
	a := appFrom(r.Context())
	if !s.checkCallbackURL(w, a, req.CallbackURL) {
		return
	}
	if !a.MaySend(req.TemplateID) {
		writeError(w, CodeTemplateNotAllowed, fmt.Sprintf("app %s may not send template %q: add it to the app's templates in the config", a.ID, req.TemplateID))
		return
	}
	for i, p := range req.Params {
		if n := utf8.RuneCountInString(p); n > templates.MaxParamLen {
			writeError(w, CodeParamTooLong, fmt.Sprintf("params[%d] is %d characters long: at most %d are allowed", i, n, templates.MaxParamLen))
			return
		}
	}
	rec, err := s.q.SendTTS(r.Context(), queue.TTSRequest{ID: req.MessageID, To: req.To, TemplateID: req.TemplateID,
		Params: req.Params, PlayTimes: req.PlayTimes, AppID: a.ID,
		SessionContext: req.SessionContext, CallbackURL: req.CallbackURL})
	s.answerSend(w, r, rec, err, func(m queue.Message) bool {
		return m.Kind == queue.KindTTS && m.TemplateID == req.TemplateID && slices.Equal(m.Params, req.Params)
	}, req.To, req.PlayTimes)
}

// answerSend answers a send: 201 with the new record; for a message ID sent
// before, 200 with the existing record when it is the same request of the
// same app (an idempotent retry), else 409 duplicate_message.
func (s *Server) answerSend(w http.ResponseWriter, r *http.Request, rec *queue.Record, err error,
	same func(queue.Message) bool, to string, playTimes int) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, rec)
	case errors.Is(err, queue.ErrDuplicate):
		a := appFrom(r.Context())
		norm, _ := queue.NormalizeNumber(to)
		if playTimes == 0 {
			playTimes = queue.DefaultPlayTimes
		}
		if rec == nil || rec.AppID != a.ID || !same(rec.Message) || rec.To != norm || rec.PlayTimes != playTimes {
			writeError(w, CodeDuplicateMessage, "message_id is already used by a different message: use a new message_id for a new call")
			return
		}
		writeJSON(w, http.StatusOK, rec)
	default:
		s.writeErr(w, r, err)
	}
}

// ownRecord loads a message of the requesting app; another app's message is
// answered exactly like an unknown one.
func (s *Server) ownRecord(w http.ResponseWriter, r *http.Request) (*queue.Record, bool) {
	id := r.PathValue("message_id")
	// Message IDs are scoped per app: another app's ID is another key.
	rec, err := s.q.Get(r.Context(), queue.Key(appFrom(r.Context()).ID, id))
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		s.writeErr(w, r, err)
		return nil, false
	}
	if err != nil || rec.AppID != appFrom(r.Context()).ID {
		writeError(w, CodeNotFound, fmt.Sprintf("message %q not found (unknown, another app's, or expired after redis.retention)", id))
		return nil, false
	}
	return rec, true
}

func (s *Server) getCall(w http.ResponseWriter, r *http.Request, _ []byte) {
	if rec, ok := s.ownRecord(w, r); ok {
		writeJSON(w, http.StatusOK, rec)
	}
}

func (s *Server) cancelCall(w http.ResponseWriter, r *http.Request, _ []byte) {
	rec, ok := s.ownRecord(w, r)
	if !ok {
		return
	}
	rec, err := s.q.Cancel(r.Context(), rec.Key())
	switch {
	case errors.Is(err, queue.ErrNotCancelable):
		writeError(w, CodeNotCancelable, fmt.Sprintf("message %s is %s: only queued messages can be canceled", rec.ID, rec.Status))
	case err != nil:
		s.writeErr(w, r, err)
	default:
		writeJSON(w, http.StatusOK, rec)
	}
}
