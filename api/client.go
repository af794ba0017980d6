package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Client talks to a govmm's control API on its Unix socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client of the API at socket path.
func NewClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{path: path, http: &http.Client{Transport: tr}}
}

// APIError is an error the server answered with.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// do sends a request and decodes a JSON answer into out (nil: none).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("govmm's answer to %s %s does not decode: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns a successful response; an error
// answer becomes an *APIError.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://govmm"+Version+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching govmm's API at %s: %w (is govmm running with -api %s?)", c.path, errors.Unwrap(err), c.path)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e Error
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

// Info returns the guest's state.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var in Info
	return in, c.do(ctx, http.MethodGet, "/info", nil, &in)
}

// Pause pauses the guest.
func (c *Client) Pause(ctx context.Context) (Info, error) { return c.post(ctx, "/pause") }

// Resume resumes it.
func (c *Client) Resume(ctx context.Context) (Info, error) { return c.post(ctx, "/resume") }

// PowerButton presses its ACPI power button.
func (c *Client) PowerButton(ctx context.Context) (Info, error) { return c.post(ctx, "/power-button") }

// Stop ends the guest at once.
func (c *Client) Stop(ctx context.Context) (Info, error) { return c.post(ctx, "/stop") }

func (c *Client) post(ctx context.Context, path string) (Info, error) {
	var in Info
	return in, c.do(ctx, http.MethodPost, path, nil, &in)
}

// Snapshot takes a snapshot.
func (c *Client) Snapshot(ctx context.Context, req SnapshotRequest) (SnapshotResult, error) {
	var res SnapshotResult
	return res, c.do(ctx, http.MethodPost, "/snapshot", req, &res)
}

// Metrics returns the VMM's counters, as JSON.
func (c *Client) Metrics(ctx context.Context) (json.RawMessage, error) {
	var m json.RawMessage
	return m, c.do(ctx, http.MethodGet, "/metrics", nil, &m)
}

// Migrate migrates the guest, calling progress with each event, and
// returns the result once the destination runs it.
func (c *Client) Migrate(ctx context.Context, req MigrateRequest, progress func(MigrateProgress)) (MigrateResult, error) {
	resp, err := c.send(ctx, http.MethodPost, "/migrate", req)
	if err != nil {
		return MigrateResult{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev MigrateEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return MigrateResult{}, fmt.Errorf("govmm's migration progress does not decode: %w", err)
		}
		switch {
		case ev.Error != "":
			return MigrateResult{}, &APIError{Status: http.StatusOK, Message: ev.Error}
		case ev.Result != nil:
			return *ev.Result, nil
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return MigrateResult{}, fmt.Errorf("reading govmm's migration progress: %w", err)
	}
	return MigrateResult{}, errors.New("govmm closed the connection before the migration ended: see its log (govmm ctl info says whether the guest is still there)")
}
