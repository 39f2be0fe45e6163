package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/vms-project/vms/templates"
)

// TemplateInfo is a template as the API shows it.
type TemplateInfo struct {
	ID           string `json:"id"`
	Text         string `json:"text"`
	Language     string `json:"language,omitempty"`
	Status       string `json:"status"`
	Placeholders int    `json:"placeholders"`
}

func info(t templates.Template) TemplateInfo {
	n, _ := templates.Placeholders(t.Text)
	return TemplateInfo{ID: t.ID, Text: t.Text, Language: t.Language, Status: string(t.Status), Placeholders: n}
}

// listTemplates answers the templates the app may send.
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request, _ []byte) {
	a := appFrom(r.Context())
	out := []TemplateInfo{}
	for _, ct := range s.cfg.Templates {
		if !a.MaySend(ct.ID) {
			continue
		}
		t, err := s.templates.Template(r.Context(), ct.ID)
		if err != nil {
			continue
		}
		out = append(out, info(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": out})
}

func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("template_id")
	if !appFrom(r.Context()).MaySend(id) {
		writeError(w, CodeNotFound, fmt.Sprintf("template %q not found among the app's templates", id))
		return
	}
	t, err := s.templates.Template(r.Context(), id)
	if errors.Is(err, templates.ErrNotFound) {
		writeError(w, CodeNotFound, fmt.Sprintf("template %q not found among the app's templates", id))
		return
	} else if err != nil {
		s.writeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info(t))
}
