// Package vmsclient is a Go client of the vms HTTP API that signs every
// request (package sign). Upstream Go code that does not share vms's Redis
// uses it; code that does may use queue.Client directly.
package vmsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vms-project/vms/api"
	"github.com/vms-project/vms/api/sign"
	"github.com/vms-project/vms/policy"
	"github.com/vms-project/vms/queue"
)

// Client calls one vms API as one app. It is safe for concurrent use.
type Client struct {
	base  string
	appID string
	key   []byte
	http  *http.Client
	// Now is the clock used for timestamps (tests set it).
	Now func() time.Time
}

// New returns a client of the API at baseURL (e.g. http://vms:8080) for app
// appID with its key. httpClient nil means a client with a 30 s timeout.
func New(baseURL, appID string, key []byte, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), appID: appID, key: key, http: httpClient, Now: time.Now}
}

// Error is an API error answer.
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("vms api: %d %s: %s", e.HTTPStatus, e.Code, e.Message)
}

// Do sends a signed request with body in (nil: none) and decodes a 2xx
// answer into out (nil: discarded). It returns the HTTP status; a non-2xx
// answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sign.Request(req, c.appID, c.key, body, c.Now())
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{HTTPStatus: resp.StatusCode}
		var body api.Error
		if json.Unmarshal(data, &body) == nil && body.Code != "" {
			e.Code, e.Message = body.Code, body.Message
		} else {
			e.Code, e.Message = "http_error", strings.TrimSpace(string(data))
		}
		return resp.StatusCode, e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("vms api: decode answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// SendCode places a verification code call. A message_id sent before with
// the same content returns the existing record (and status 200 not 201).
func (c *Client) SendCode(ctx context.Context, req api.CodeCall) (*queue.Record, error) {
	var rec queue.Record
	if _, err := c.Do(ctx, http.MethodPost, "/v1/calls/code", req, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// SendTTS places a template notification call.
func (c *Client) SendTTS(ctx context.Context, req api.TTSCall) (*queue.Record, error) {
	var rec queue.Record
	if _, err := c.Do(ctx, http.MethodPost, "/v1/calls/tts", req, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Get returns the record of one of the app's messages.
func (c *Client) Get(ctx context.Context, messageID string) (*queue.Record, error) {
	var rec queue.Record
	if _, err := c.Do(ctx, http.MethodGet, "/v1/calls/"+url.PathEscape(messageID), nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Cancel cancels a message that is still queued.
func (c *Client) Cancel(ctx context.Context, messageID string) (*queue.Record, error) {
	var rec queue.Record
	if _, err := c.Do(ctx, http.MethodPost, "/v1/calls/"+url.PathEscape(messageID)+"/cancel", nil, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// AddSuppression puts a number on the app's suppression list (a number
// already on it keeps its entry). The answer's number is masked.
func (c *Client) AddSuppression(ctx context.Context, number, reason string) (*policy.Suppression, error) {
	var s policy.Suppression
	if _, err := c.Do(ctx, http.MethodPost, "/v1/suppressions", api.SuppressionRequest{Number: number, Reason: reason}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// CheckSuppression reports whether the app's calls to number are refused,
// and the app's own entry for it.
func (c *Client) CheckSuppression(ctx context.Context, number string) (*api.SuppressionCheck, error) {
	var ck api.SuppressionCheck
	if _, err := c.Do(ctx, http.MethodGet, "/v1/suppressions/"+url.PathEscape(number), nil, &ck); err != nil {
		return nil, err
	}
	return &ck, nil
}

// RemoveSuppression takes a number off the app's list (404 not_found when
// it is not on it; 403 callee_opted_out when the callee put it there).
func (c *Client) RemoveSuppression(ctx context.Context, number string) (*api.SuppressionCheck, error) {
	var ck api.SuppressionCheck
	if _, err := c.Do(ctx, http.MethodDelete, "/v1/suppressions/"+url.PathEscape(number), nil, &ck); err != nil {
		return nil, err
	}
	return &ck, nil
}

// Suppressions lists the app's suppression list, newest first.
func (c *Client) Suppressions(ctx context.Context) ([]policy.Suppression, error) {
	var l api.SuppressionList
	if _, err := c.Do(ctx, http.MethodGet, "/v1/suppressions", nil, &l); err != nil {
		return nil, err
	}
	return l.Suppressions, nil
}
