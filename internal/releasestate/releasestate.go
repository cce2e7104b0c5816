// Package releasestate is an install's record of its upgrades, rollbacks and
// staged releases, newest first, in the one format every writer shares:
// tetherctl and tether-upgrade on AWS (SSM parameter
// /tether/<name>/state/releases) and the local runtime's supervisor
// (<data>/state/releases.json). The agent only reads it (Read), for the
// heartbeat's release and last attempt (Report), which carry only versions,
// enumerations, a time and a fixed reason code, never the record's free-text
// reason.
package releasestate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	jsonv2 "github.com/go-json-experiment/json"

	"github.com/tetherhq/tether/internal/wire"
)

// LocalFile is the record's path under the agent's data directory on the
// local runtime.
const LocalFile = "state/releases.json"

// Max is how many outcomes the record keeps (an SSM Standard parameter
// holds 4 KB).
const Max = 8

// Outcome is one upgrade, rollback or staging as recorded.
type Outcome struct {
	Action       string    `json:"action"` // one of wire.UpgradeActions
	From         string    `json:"from"`   // version, "" when unknown
	To           string    `json:"to"`
	FromDocsvc   string    `json:"from_docsvc_digest"`
	FromAgent    string    `json:"from_agent_digest"`
	DocsvcDigest string    `json:"docsvc_digest"`
	AgentDigest  string    `json:"agent_digest"`
	Outcome      string    `json:"outcome"`        // one of wire.UpgradeOutcomes
	Code         string    `json:"code,omitempty"` // one of wire.UpgradeReasons; empty on success
	Reason       string    `json:"reason,omitempty"`
	By           string    `json:"by,omitempty"` // tetherctl | tether-upgrade | supervisor (agent: before tether-upgrade)
	At           time.Time `json:"at"`
}

var digestRE = regexp.MustCompile(`^(sha256:[0-9a-f]{64})?$`)

// RecordRE is the one shape of the record's SSM parameter name; the
// submatch is the deployment's name.
var RecordRE = regexp.MustCompile(`^/tether/([a-z][a-z0-9-]{0,31})/state/releases$`)

// Read reads the record from the SSM parameter name through c or, when
// name is "", from the file path. A record that does not exist is empty.
func Read(ctx context.Context, c *ssm.Client, name, path string) ([]Outcome, error) {
	if name == "" {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return Parse(path, data)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := c.GetParameter(cctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the release record %s: %w", name, err)
	}
	return Parse("SSM parameter "+name, []byte(aws.ToString(out.Parameter.Value)))
}

// Parse reads a record strictly; name (the parameter or file) is in every
// error, with what to do.
func Parse(name string, data []byte) ([]Outcome, error) {
	var h []Outcome
	if err := jsonv2.Unmarshal(data, &h, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%s is not a release record (%v): delete it and the next upgrade starts a new one", name, err)
	}
	if len(h) > Max {
		return nil, fmt.Errorf("%s holds %d outcomes, more than the %d kept: it was edited by hand; delete it", name, len(h), Max)
	}
	for i, o := range h {
		switch {
		case !slices.Contains(wire.UpgradeActions, o.Action) || !slices.Contains(wire.UpgradeOutcomes, o.Outcome):
			return nil, fmt.Errorf("%s, outcome %d: action %q, outcome %q is not one that is written: delete it", name, i, o.Action, o.Outcome)
		case o.Code != "" && !slices.Contains(wire.UpgradeReasons, o.Code):
			return nil, fmt.Errorf("%s, outcome %d: code %q is not one of %v: delete it", name, i, o.Code, wire.UpgradeReasons)
		case o.At.Year() < 2000 || o.At.Year() > 9999:
			return nil, fmt.Errorf("%s, outcome %d: time %s is not between the years 2000 and 9999: delete it", name, i, o.At.Format(time.RFC3339))
		}
		for _, d := range []string{o.DocsvcDigest, o.AgentDigest, o.FromDocsvc, o.FromAgent} {
			if !digestRE.MatchString(d) {
				return nil, fmt.Errorf("%s, outcome %d: %q is not an image digest (sha256: and 64 lower-case hex digits): delete it", name, i, d)
			}
		}
	}
	return h, nil
}

// Prepend puts o first, keeping the newest Max.
func Prepend(h []Outcome, o Outcome) []Outcome {
	h = append([]Outcome{o}, h...)
	return h[:min(len(h), Max)]
}

// Report is what the heartbeat carries of a record: the release the newest
// finished attempt left running ("" when unknown or not a wire version) and
// the newest attempt, whose reason is the record's code only ("unknown" when
// a failed attempt has none).
func Report(h []Outcome) (release string, last wire.UpgradeAttempt) {
	for _, o := range h {
		if o.Outcome == "staged" {
			continue
		}
		release = o.From
		if o.Outcome == "succeeded" {
			release = o.To
		}
		break
	}
	if !wire.ValidSemver(release) {
		release = ""
	}
	if len(h) == 0 {
		return release, last
	}
	o := h[0]
	last = wire.UpgradeAttempt{Action: o.Action, Outcome: o.Outcome, At: o.At.UTC().Truncate(time.Second)}
	if wire.ValidSemver(o.To) {
		last.Version = o.To
	}
	if o.Outcome == "failed" || o.Outcome == "rolled-back" {
		last.Reason = o.Code
		if last.Reason == "" {
			last.Reason = "unknown"
		}
	}
	return release, last
}
