package plane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/tetherhq/tether/internal/plane/planestore"
)

// AlertPayload is the JSON body posted to the alert webhook. Receivers should
// dedupe on ID: delivery is at-least-once (a crash between a 2xx and the
// plane recording it resends).
type AlertPayload struct {
	ID        string `json:"id"`
	InstallID string `json:"install_id"`
	Customer  string `json:"customer"`
	Kind      string `json:"kind"`  // stale | health | ledger | license
	Value     string `json:"value"` // "stale", the new health (degraded | down), for ledger: rewound | rewritten | missing, for license the threshold crossed ("30d")
	// LicenseID and LicenseExpires are set on license alerts.
	LicenseID      string     `json:"license_id,omitempty"`
	LicenseExpires *time.Time `json:"license_expires,omitempty"`
	Version        string     `json:"version"`
	Channel        string     `json:"channel"`
	LastSeen       time.Time  `json:"last_seen"`
	At             time.Time  `json:"at"`
	Text           string     `json:"text"` // one line for chat webhooks (Slack-compatible "text")
}

// Alerter delivers queued alerts to a webhook, retrying with exponential
// backoff; the queue lives in the store so transitions survive restarts.
type Alerter struct {
	Store       *planestore.Store
	WebhookURL  string
	Client      *http.Client
	Logger      *slog.Logger
	Now         func() time.Time
	BaseBackoff time.Duration // first retry delay; default 2s, doubling
	MaxBackoff  time.Duration // default 10m
	MaxAttempts int           // then the alert is marked failed; default 12
}

func (a *Alerter) defaults() {
	if a.BaseBackoff == 0 {
		a.BaseBackoff = 2 * time.Second
	}
	if a.MaxBackoff == 0 {
		a.MaxBackoff = 10 * time.Minute
	}
	if a.MaxAttempts == 0 {
		a.MaxAttempts = 12
	}
	if a.Client == nil {
		a.Client = &http.Client{Timeout: 10 * time.Second}
	}
}

// DeliverDue sends every alert whose attempt is due and returns how many were
// delivered. Without a webhook URL alerts are only logged and marked sent, so
// the queue does not grow forever on a plane nobody configured.
func (a *Alerter) DeliverDue(ctx context.Context) (int, error) {
	a.defaults()
	due, err := a.Store.ClaimDueAlerts(ctx, 50)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, al := range due {
		payload, err := a.payload(ctx, al)
		if err != nil {
			return sent, err
		}
		if a.WebhookURL == "" {
			a.Logger.Info("alert", "alert_id", al.ID, "install_id", al.InstallID, "kind", al.Kind, "value", al.Value)
			if err := a.Store.AlertSent(ctx, al.ID); err != nil {
				return sent, err
			}
			sent++
			continue
		}
		if err := a.post(ctx, payload); err != nil {
			attempts := al.Attempts + 1
			next := time.Time{}
			if attempts < a.MaxAttempts {
				next = a.Now().Add(a.backoff(attempts))
			}
			a.Logger.Warn("alert delivery failed", "alert_id", al.ID, "install_id", al.InstallID,
				"attempt", attempts, "gave_up", next.IsZero(), "err", err)
			if err := a.Store.AlertFailed(ctx, al.ID, next, err.Error()); err != nil {
				return sent, err
			}
			continue
		}
		if err := a.Store.AlertSent(ctx, al.ID); err != nil {
			return sent, err
		}
		a.Logger.Info("alert delivered", "alert_id", al.ID, "install_id", al.InstallID, "kind", al.Kind, "value", al.Value)
		sent++
	}
	return sent, nil
}

func (a *Alerter) backoff(attempts int) time.Duration {
	d := a.BaseBackoff
	for i := 1; i < attempts && d < a.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, a.MaxBackoff)
}

func (a *Alerter) payload(ctx context.Context, al planestore.Alert) (AlertPayload, error) {
	p := AlertPayload{ID: al.ID, InstallID: al.InstallID, Kind: al.Kind, Value: al.Value, At: al.CreatedAt}
	in, err := a.Store.Install(ctx, al.InstallID)
	if err != nil {
		return p, fmt.Errorf("plane: alert %s: %w", al.ID, err)
	}
	p.Customer, p.Version, p.Channel, p.LastSeen = in.Customer, in.Version, in.Channel, in.LastSeen
	switch al.Kind {
	case planestore.AlertStale:
		p.Text = fmt.Sprintf("Tether install %s (%s) is stale: no heartbeat since %s",
			in.ID, in.Customer, in.LastSeen.Format(time.RFC3339))
	case planestore.AlertLicense:
		exp := in.LicenseExpires
		p.LicenseID, p.LicenseExpires = in.LicenseID, &exp
		if left := exp.Sub(a.Now()); left > 0 {
			p.Text = fmt.Sprintf("Tether install %s (%s): license %s expires %s (%d days left)",
				in.ID, in.Customer, in.LicenseID, exp.Format("2006-01-02"), daysLeft(exp, a.Now()))
		} else {
			p.Text = fmt.Sprintf("Tether install %s (%s): license %s expired %s",
				in.ID, in.Customer, in.LicenseID, exp.Format("2006-01-02"))
		}
	case planestore.AlertLedger:
		p.Text = fmt.Sprintf("Tether install %s (%s) egress ledger %s: %s", in.ID, in.Customer, al.Value, in.LedgerProblem)
	default:
		p.Text = fmt.Sprintf("Tether install %s (%s) health is %s", in.ID, in.Customer, al.Value)
	}
	return p, nil
}

func (a *Alerter) post(ctx context.Context, p AlertPayload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Tether-Alert-Id", p.ID)
	resp, err := a.Client.Do(req)
	if err != nil {
		// url.Error repeats the URL, and webhook URLs (Slack's, say) are
		// secrets; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post webhook: HTTP %d", resp.StatusCode)
	}
	return nil
}
