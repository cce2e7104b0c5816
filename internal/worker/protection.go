package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Protector tells the platform whether this worker may be stopped by a
// scale-in: a task in the middle of a job should not be, or the job is
// redone from the start.
type Protector interface {
	Protect(ctx context.Context, on bool) error
}

// ECSProtector sets Amazon ECS task scale-in protection through the ECS
// agent's endpoint, which ECS names in the task's ECS_AGENT_URI variable.
// Protection expires by itself after Expiry, so a worker that dies cannot
// leave its task protected for ever; a busy worker renews it.
type ECSProtector struct {
	AgentURI string
	Client   *http.Client
	Expiry   time.Duration
}

// Protect turns protection on or off.
func (p *ECSProtector) Protect(ctx context.Context, on bool) error {
	body, _ := json.Marshal(struct {
		ProtectionEnabled bool `json:"ProtectionEnabled"`
		ExpiresInMinutes  int  `json:"ExpiresInMinutes,omitempty"`
	}{on, max(int(p.Expiry/time.Minute), 1)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, p.AgentURI+"/task-protection/v1/state", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("worker: task protection: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("worker: task protection: the ECS agent answered %d", res.StatusCode)
	}
	return nil
}
