package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tetherhq/tether/internal/localbackup"
)

const backupUsage = `tetherctl backup / restore — the local runtime's database and documents

Usage:
  tetherctl backup --out DIR [--data-dir DIR] [--output text|json]
  tetherctl restore --from DIR [--data-dir DIR] [--keep-previous] [--yes] [--output text|json]

backup copies the local runtime's database (an online, consistent copy: the
stack may keep running) and exactly the stored documents that copy refers
to into a new directory, with manifest.json listing every file's size and
SHA-256. Keep the directory somewhere safe: it holds every document.

restore checks every file of the backup against its manifest, refuses while
the stack runs (stop tetherctl dev first), and replaces the data directory's
database and documents with the backup's. The current ones are kept aside
until the restored database checks out, then removed (--keep-previous keeps
them in DATA-DIR/.before-restore-*); on any failure they are put back.
Documents uploaded after the backup are gone after a restore. Without --yes,
restore shows what it will do and asks. Start the stack again with
'tetherctl dev --data-dir DIR': it migrates an older backup's schema first.

On AWS, backups are RDS snapshots and S3 versions: see
docs/runbooks/backup-restore.md.

Flags:
`

func backupCmd(ctx context.Context, cmd string, args []string, env Env) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./.tether-dev", "the local runtime's data `directory`")
	output := fs.String("output", "text", "`text` or json")
	var dir string
	var yes, keep bool
	if cmd == "backup" {
		fs.StringVar(&dir, "out", "", "the new `directory` to write the backup to (required; must not exist)")
	} else {
		fs.StringVar(&dir, "from", "", "the backup `directory` to restore (required)")
		fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
		fs.BoolVar(&keep, "keep-previous", false, "keep the replaced data in DATA-DIR/.before-restore-* instead of removing it")
	}
	positional, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.Stdout, backupUsage+flagHelp(fs))
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case len(positional) > 0:
		return fmt.Errorf("%w: tetherctl %s takes no arguments, got %q", errUsage, cmd, positional[0])
	case *output != "text" && *output != "json":
		return fmt.Errorf("%w: tetherctl %s: --output %q: want text or json", errUsage, cmd, *output)
	case dir == "" && cmd == "backup":
		return fmt.Errorf("%w: tetherctl backup: --out is required: a new directory for the backup", errUsage)
	case dir == "":
		return fmt.Errorf("%w: tetherctl restore: --from is required: the directory tetherctl backup wrote", errUsage)
	}
	data, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if cmd == "backup" {
		m, err := localbackup.Backup(ctx, data, dir, env.Now())
		if err != nil {
			return fmt.Errorf("tetherctl backup: %w", err)
		}
		if *output == "json" {
			return writeJSON(env.Stdout, map[string]any{"out": dir, "created_at": m.CreatedAt, "documents": m.Documents, "bytes": m.Bytes(), "files": len(m.Files)})
		}
		fmt.Fprintf(env.Stdout, "backed up %s to %s: the database and %d documents, %d bytes, checked by %s\n", data, dir, m.Documents, m.Bytes(), filepath.Join(dir, localbackup.ManifestFile))
		return nil
	}
	m, err := localbackup.Verify(ctx, dir)
	if err != nil {
		return fmt.Errorf("tetherctl restore: %w; nothing was changed", err)
	}
	if err := localbackup.NotRunning(data); err != nil {
		return fmt.Errorf("tetherctl restore: %w", err)
	}
	fmt.Fprintf(env.Stderr, "This will replace the database and documents in %s with the backup in %s, made %s: %d documents, %d bytes (every file checked against its manifest).\n",
		data, dir, m.CreatedAt.Local().Format(time.RFC3339), m.Documents, m.Bytes())
	fmt.Fprintln(env.Stderr, "Documents uploaded since the backup will be gone; the current data is kept aside until the restore succeeds.")
	if !yes {
		if err := proceed(env); err != nil {
			return fmt.Errorf("tetherctl restore: %w", err)
		}
	}
	res, err := localbackup.Restore(ctx, data, dir, localbackup.RestoreOptions{KeepPrevious: keep}, env.Now())
	if err != nil {
		return fmt.Errorf("tetherctl restore: %w", err)
	}
	if *output == "json" {
		return writeJSON(env.Stdout, map[string]any{"from": dir, "created_at": res.Manifest.CreatedAt, "documents": res.Manifest.Documents, "previous": res.Previous})
	}
	fmt.Fprintf(env.Stdout, "restored %d documents from %s into %s; start the stack with 'tetherctl dev --data-dir %s'\n", res.Manifest.Documents, dir, data, data)
	if res.Previous != "" {
		fmt.Fprintf(env.Stdout, "the replaced data is in %s; delete it when you no longer need it\n", res.Previous)
	}
	return nil
}
