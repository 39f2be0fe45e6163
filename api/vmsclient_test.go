package api_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/api/vmsclient"
	"github.com/vms-project/vms/queue"
)

func TestGoClientSigns(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c := vmsclient.New(e.srv.URL, "shop", []byte(shopKey), nil)
	rec, err := c.SendTTS(ctx, api.TTSCall{To: "+8613800138000", TemplateID: "delivery", Params: []string{"Ann", "A1", "9 and 11"}, MessageID: "go-1"})
	if err != nil || rec.ID != "go-1" || rec.Status != queue.StatusQueued {
		t.Fatalf("send: %+v %v", rec, err)
	}
	if got, err := c.Get(ctx, "go-1"); err != nil || got.TemplateID != "delivery" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if got, err := c.Cancel(ctx, "go-1"); err != nil || got.Status != queue.StatusCanceled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	_, err = vmsclient.New(e.srv.URL, "shop", []byte(bankKey), nil).Get(ctx, "go-1")
	var apiErr *vmsclient.Error
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != 401 || apiErr.Code != api.CodeSignatureInvalid {
		t.Fatalf("wrong key: %v", err)
	}

	// Suppressions: the number (with its +) travels in the signed path.
	if s, err := c.AddSuppression(ctx, "+8613800138000", "asked us"); err != nil || s.Number != queue.MaskNumber("+8613800138000") {
		t.Fatalf("add suppression: %+v %v", s, err)
	}
	if ck, err := c.CheckSuppression(ctx, "+8613800138000"); err != nil || !ck.Suppressed {
		t.Fatalf("check: %+v %v", ck, err)
	}
	if l, err := c.Suppressions(ctx); err != nil || len(l) != 1 {
		t.Fatalf("list: %+v %v", l, err)
	}
	if ck, err := c.RemoveSuppression(ctx, "+8613800138000"); err != nil || ck.Suppressed {
		t.Fatalf("remove: %+v %v", ck, err)
	}
	if _, err := c.RemoveSuppression(ctx, "+8613800138000"); !errors.As(err, &apiErr) || apiErr.Code != api.CodeNotFound {
		t.Fatalf("remove again: %v, want not_found", err)
	}
}
