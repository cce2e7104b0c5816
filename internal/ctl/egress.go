package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/exchange"
	"github.com/tetherhq/tether/internal/exchange/operator"
	"github.com/tetherhq/tether/internal/ledger"
	"github.com/tetherhq/tether/internal/ledger/ledgerread"
	"github.com/tetherhq/tether/internal/wire"
)

// agentDir finds the agent's state: the data dir of `tetherctl dev` (whose
// agent keeps its state in <dir>/agent), or an agent's own data dir.
func agentDir(dataDir string) string {
	if st, err := os.Stat(filepath.Join(dataDir, "agent")); err == nil && st.IsDir() {
		return filepath.Join(dataDir, "agent")
	}
	return dataDir
}

const egressUsage = `tetherctl egress — see and check everything the agent ever sent to the vendor

Usage:
  tetherctl egress show   [--data-dir DIR | --config deployment.yaml] [--since 24h|2026-11-01T00:00:00Z] [--output text|json]
  tetherctl egress verify [--data-dir DIR | --config deployment.yaml] [--expect-head COUNT:SHA256]
  tetherctl egress repair [--data-dir DIR]

Every payload the agent sends is appended, before it is sent, to a hash-chained,
append-only ledger in the agent's data dir (egress.ledger). 'show' prints the
entries exactly as they left; 'verify' re-computes the chain and exits non-zero
if any entry was edited, removed, reordered or inserted. 'repair' is for one
case only: a crash or a full disk in the middle of an append leaves an
incomplete last line, and the agent refuses to start until it is cut off.
That entry was never sent (the agent sends only after the append finished),
so repair removes just those bytes, then verify checks the rest.

With --config, show and verify read the copy of the ledger that AWS
deployment's exchange task keeps in its exchange bucket (appended every
minute) with your AWS credentials, and check it exactly as the original. repair works
only on the agent's own data dir.

The chain and the head file cannot show that entries were cut off the end
by someone who rewrote both. Each heartbeat therefore carries the ledger's
head (its entry count and last hash) to the vendor's plane, which keeps the
highest it saw and shows it on the install's page as COUNT:SHA256. Give that
to verify with --expect-head: verify then also fails unless the ledger has
at least COUNT entries and entry COUNT has that hash.

Flags:
`

func egressCmd(ctx context.Context, args []string, env Env) error {
	stdout := env.Stdout
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fs, _, _, _ := egressFlags("egress")
		fmt.Fprint(stdout, egressUsage+flagHelp(fs))
		if len(args) == 0 {
			return fmt.Errorf("%w: tetherctl egress: want show, verify or repair", errUsage)
		}
		return nil
	}
	sub := args[0]
	if sub != "show" && sub != "verify" && sub != "repair" {
		return fmt.Errorf("%w: tetherctl egress: unknown subcommand %q (want show, verify or repair)", errUsage, sub)
	}
	fs, tg, since, output := egressFlags("egress " + sub)
	expect := fs.String("expect-head", "", "verify: fail unless the ledger reaches this head, `COUNT:SHA256` as the vendor's plane shows it for this install")
	positional, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, egressUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return fmt.Errorf("%w: tetherctl egress %s takes no arguments, got %q", errUsage, sub, positional[0])
	}
	if err := tg.resolve(fs, "egress "+sub); err != nil {
		return err
	}
	var want *ledgerread.Head
	if *expect != "" {
		if sub != "verify" {
			return fmt.Errorf("%w: tetherctl egress %s: --expect-head is for verify", errUsage, sub)
		}
		h, err := parseExpectHead(*expect)
		if err != nil {
			return err
		}
		want = &h
	}
	path := filepath.Join(agentDir(tg.dataDir), "egress.ledger")
	where := path
	if tg.remote {
		if sub == "repair" {
			return fmt.Errorf("%w: tetherctl egress repair works on the agent's own data dir (--data-dir), not on the exchange bucket's copy; the agent itself says when its ledger needs it", errUsage)
		}
		ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
		ex, err := openExchange(ctx, env, tg.df, "egress "+sub)
		if err != nil {
			return err
		}
		defer ex.close()
		where = "s3://" + ex.client.Bucket() + "/" + exchange.LedgerPrefix
		if path, err = operator.FetchLedger(ctx, ex.client, ex.dir); err != nil {
			if errors.Is(err, exchange.ErrNotFound) {
				return fmt.Errorf("tetherctl egress %s: no ledger in %s yet: the exchange task copies it every minute (are the agent and the exchange service running? the exchange task's log says why a copy failed)", sub, where)
			}
			return exchangeError("egress "+sub, err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("tetherctl egress: no ledger at %s (is --data-dir the agent's data dir?)", path)
	}
	switch sub {
	case "verify":
		if want == nil {
			n, err := ledgerread.Verify(path)
			if err != nil {
				return fmt.Errorf("tetherctl egress verify: %s: %w", where, err)
			}
			fmt.Fprintf(stdout, "ledger intact: %d entries, hash chain verified (%s)\n", n, where)
			return nil
		}
		n, err := ledgerread.VerifyHead(path, *want)
		if err != nil {
			return fmt.Errorf("tetherctl egress verify: %s: %w", where, err)
		}
		fmt.Fprintf(stdout, "ledger intact: %d entries, hash chain verified, reaches the expected head %d (%s)\n", n, want.Count, where)
		return nil
	case "repair":
		removed, err := ledgerread.RepairTornTail(path)
		if err != nil {
			return fmt.Errorf("tetherctl egress repair: %w", err)
		}
		if removed == 0 {
			fmt.Fprintln(stdout, "the ledger's last line is complete; nothing to repair")
		} else {
			fmt.Fprintf(stdout, "removed an incomplete last line (%d bytes) that was never sent\n", removed)
		}
		n, err := ledgerread.Verify(path)
		if err != nil {
			return fmt.Errorf("tetherctl egress repair: the rest of the ledger does not verify: %w", err)
		}
		fmt.Fprintf(stdout, "ledger intact: %d entries\n", n)
		return nil
	default:
		from, err := parseSince(*since, env.Now())
		if err != nil {
			return err
		}
		entries, err := ledgerread.Read(path, from)
		if err != nil {
			return fmt.Errorf("tetherctl egress show: %s: %w", where, err)
		}
		return writeEntries(stdout, entries, *output)
	}
}

func egressFlags(name string) (fs *flag.FlagSet, tg *target, since, output *string) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	tg = new(target)
	tg.register(fs, false)
	since = fs.String("since", "", "show: only entries after this: a duration back from now (24h) or an RFC 3339 time")
	output = fs.String("output", "text", "show: `text` or json")
	return fs, tg, since, output
}

// parseExpectHead reads --expect-head: COUNT:SHA256, the ledger head the
// vendor's plane recorded (wire.LedgerHead).
func parseExpectHead(s string) (ledgerread.Head, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: tetherctl egress verify: --expect-head %q %s; copy COUNT:SHA256 exactly as the vendor's plane shows the install's ledger head (for example 42:%s)",
			errUsage, s, why, strings.Repeat("ab", 32))
	}
	countText, hash, ok := strings.Cut(s, ":")
	if !ok {
		return ledgerread.Head{}, bad("has no ':' between COUNT and SHA256")
	}
	// Digits only: ParseInt alone would take a sign.
	count, err := strconv.ParseInt(countText, 10, 64)
	if err != nil || countText == "" || strings.TrimLeft(countText, "0123456789") != "" {
		return ledgerread.Head{}, bad("has a COUNT that is not a whole number")
	}
	if rule := wire.CheckLedgerHead(count, hash); rule != "" {
		return ledgerread.Head{}, bad("is not a ledger head: " + rule)
	}
	return ledgerread.Head{Count: uint64(count), Hash: hash}, nil
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: tetherctl egress: --since %q is neither a duration (24h) nor an RFC 3339 time (2026-11-01T00:00:00Z)", errUsage, s)
}

func writeEntries(w io.Writer, entries []ledger.Entry, output string) error {
	if output == "json" {
		if entries == nil {
			entries = []ledger.Entry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if output != "text" {
		return fmt.Errorf("%w: tetherctl egress: --output %q: want text or json", errUsage, output)
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "nothing has left this install in that period")
		return nil
	}
	for _, e := range entries {
		b, _ := e.Bytes()
		fmt.Fprintf(w, "#%d  %s  %-13s %s  (%d bytes, sha256 %s)\n", e.Seq, e.Time.Local().Format(time.RFC3339), e.Kind, e.Destination, len(b), e.PayloadSHA256[:12])
		switch {
		case len(e.Payload) > 0:
			fmt.Fprintf(w, "    %s\n", strings.TrimSpace(string(e.Payload)))
		case e.PayloadBase64 != "":
			fmt.Fprintf(w, "    (binary payload, e.g. a diagnostics bundle; its exact bytes are in --output json)\n")
		}
	}
	return nil
}
