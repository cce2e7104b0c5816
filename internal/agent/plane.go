package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/reqsign"
)

// maxAnswer bounds what the agent reads of any plane answer; the largest
// (a list of 100 diagnostic requests) is well under it.
const maxAnswer = 1 << 20

// planeClient sends the agent's requests. Every request with a body is
// appended to the egress ledger before it leaves, and every request after
// activation is signed.
type planeClient struct {
	base   string
	http   *http.Client
	ledger *ledger.Ledger
	now    func() time.Time

	mu        sync.Mutex
	key       ed25519.PrivateKey
	installID string
}

func (c *planeClient) setIdentity(key ed25519.PrivateKey, installID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.key, c.installID = key, installID
}

// ledgerEntries is the ledger's entry count, for the status page and logs.
func (c *planeClient) ledgerEntries() uint64 {
	seq, _, _ := c.ledger.Head()
	return seq
}

// send makes one request to path on the plane, ledgered first (as kind)
// when it has a body or kind is set; signed is false only for activation.
func (c *planeClient) send(ctx context.Context, kind, method, path string, body []byte, signed bool) (int, []byte, error) {
	url := strings.TrimRight(c.base, "/") + path
	if len(body) > 0 || kind != "" {
		if _, err := c.ledger.Append(kind, method+" "+url, body, c.now()); err != nil {
			// Nothing leaves that the ledger does not hold.
			return 0, nil, &planeError{class: failLedger, err: fmt.Errorf("ledger before %s %s: %w", method, path, err)}
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
		if kind == ledger.KindDiagnostics {
			req.Header.Set("Content-Type", "application/zip")
		}
	}
	req.Header.Set("User-Agent", "tether-agent/"+Version)
	if signed {
		if err := c.sign(req, body); err != nil {
			return 0, nil, err
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, transportError(fmt.Errorf("%s %s: %w", method, path, err))
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, transportError(fmt.Errorf("%s %s: read answer: %w", method, path, err))
	}
	return resp.StatusCode, out, nil
}

// sign signs req; before activation reqsign refuses it (no key, no install ID).
func (c *planeClient) sign(req *http.Request, body []byte) error {
	c.mu.Lock()
	key, id := c.key, c.installID
	c.mu.Unlock()
	return reqsign.Sign(req, body, id, key, c.now())
}

// signTUF is updater.Config.Sign: each TUF download is recorded as a
// release-check (destination only; a GET has no payload) and signed.
func (c *planeClient) signTUF(req *http.Request) error {
	if _, err := c.ledger.Append(ledger.KindReleaseCheck, req.Method+" "+req.URL.String(), nil, c.now()); err != nil {
		return err
	}
	return c.sign(req, nil)
}
