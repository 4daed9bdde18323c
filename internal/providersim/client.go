package providersim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// AdminClient switches a sim's fault over its admin API, from another
// process (`varde provider fault`, a resilience test).
type AdminClient struct {
	// URL is the admin listener's base URL; Token its bearer token.
	URL   string
	Token string
	// HTTP defaults to a client with a 10 s timeout. Whichever, no
	// redirect is followed: the token goes only to URL.
	HTTP *http.Client
}

// Fault reads the sim's current fault (GET /fault).
func (c *AdminClient) Fault(ctx context.Context) (Fault, error) {
	return c.do(ctx, http.MethodGet, nil)
}

// SetFault switches the sim's fault (POST /fault) and returns the fault
// now in force.
func (c *AdminClient) SetFault(ctx context.Context, f Fault) (Fault, error) {
	body, err := json.Marshal(f)
	if err != nil {
		return Fault{}, err
	}
	return c.do(ctx, http.MethodPost, body)
}

func (c *AdminClient) do(ctx context.Context, method string, body []byte) (Fault, error) {
	hc := http.Client{Timeout: 10 * time.Second}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	// A redirect would take the token, and a 307 the POST, wherever it
	// points: net/http sends the Authorization header on to the same
	// host name at any port or scheme.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+PathFault, bytes.NewReader(body))
	if err != nil {
		return Fault{}, fmt.Errorf("admin request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Fault{}, fmt.Errorf("admin request: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return Fault{}, fmt.Errorf("admin response: %w", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return Fault{}, fmt.Errorf("admin API: status %d: redirects are not followed; give the admin URL the sim printed", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(raw, &e)
		return Fault{}, fmt.Errorf("admin API: status %d: %s %s", resp.StatusCode, printable(e.Error), printable(e.Description))
	}
	var f Fault
	if err := json.Unmarshal(raw, &f); err != nil {
		return Fault{}, fmt.Errorf("admin response: %w", err)
	}
	return f, nil
}

// Ready describes a started sim to other processes: `varde provider-sim
// --ready-file` writes it once both listeners are up.
type Ready struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Level      string `json:"level"`
	Issuer     string `json:"issuer"`
	Addr       string `json:"addr"`
	AdminURL   string `json:"admin_url"`
	AdminToken string `json:"admin_token"`
	PID        int    `json:"pid"`
}

// Ready returns the sim's Ready description (PID is left to the caller).
func (s *Sim) Ready() Ready {
	return Ready{
		ID: s.cfg.ID, Name: s.cfg.Name, Level: s.cfg.Level.String(), Issuer: s.issuer, Addr: s.addr,
		AdminURL: s.adminURL, AdminToken: s.cfg.AdminToken,
	}
}

// Client returns an AdminClient for the sim the description names.
func (r Ready) Client() *AdminClient { return &AdminClient{URL: r.AdminURL, Token: r.AdminToken} }

// WriteReadyFile writes r as JSON to path, readable by the owner only,
// through a temporary file and a rename so a reader never sees half of
// it.
func WriteReadyFile(path string, r Ready) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// ReadReadyFile reads a file WriteReadyFile wrote.
func ReadReadyFile(path string) (Ready, error) {
	var r Ready
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("ready file: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("ready file %s: %w", path, err)
	}
	if r.Issuer == "" || r.AdminURL == "" {
		return r, fmt.Errorf("ready file %s: issuer or admin URL missing", path)
	}
	return r, nil
}

// printable is s without control characters, which an answer could use
// to rewrite the terminal the error is shown in.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
