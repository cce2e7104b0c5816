// Command tether-tuf-client is the client-under-test CLI of the TUF
// conformance suite (github.com/theupdateframework/tuf-conformance,
// CLIENT-CLI.md), built on the same go-tuf setup the agent uses
// (updater.NewTUF), so the suite can check the agent's updater against the
// specification. It is a test tool, kept out of the tether-agent binary;
// docs/releases.md says how to run the suite with it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/updater"
)

const usage = "usage: tether-tuf-client --metadata-dir DIR [flags] init ROOT | refresh | download"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command:
//
//	--metadata-dir DIR init TRUSTED_ROOT
//	--metadata-dir DIR --metadata-url URL refresh
//	--metadata-dir DIR --metadata-url URL --target-name PATH \
//	    --target-base-url URL --target-dir DIR download
//
// Flags may come before or after the command. It returns the exit code:
// 0 on success (and for -h/--help, which prints to stdout), 1 on any
// failure (as the suite expects).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tuf-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metadataDir := fs.String("metadata-dir", "", "directory of trusted metadata")
	metadataURL := fs.String("metadata-url", "", "base URL of the repository's metadata")
	var targetNames targetList
	fs.Var(&targetNames, "target-name", "TUF target path to download (repeat it for several, downloaded in order)")
	targetBaseURL := fs.String("target-base-url", "", "base URL of the repository's targets")
	targetDir := fs.String("target-dir", "", "directory to store downloaded targets")
	fs.Usage = func() {} // printed below: help to stdout, mistakes to stderr

	// The suite puts flags after the command; flag stops at the first
	// argument, so parse again after each positional one.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			w, code := stderr, 1
			if errors.Is(err, flag.ErrHelp) {
				w, code = stdout, 0
			}
			fmt.Fprintln(w, usage)
			fs.SetOutput(w)
			fs.PrintDefaults()
			return code
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "tuf-client:", err)
		return 1
	}
	if len(positional) == 0 {
		return fail(errors.New(usage))
	}
	if *metadataDir == "" {
		return fail(errors.New("--metadata-dir is required"))
	}
	switch cmd := positional[0]; cmd {
	case "init":
		if len(positional) != 2 {
			return fail(errors.New("usage: init TRUSTED_ROOT"))
		}
		root, err := os.ReadFile(positional[1])
		if err != nil {
			return fail(err)
		}
		if err := updater.Init(*metadataDir, root); err != nil {
			return fail(err)
		}
		fmt.Fprintln(stdout, "tuf-client: initialized", *metadataDir)
		return 0
	case "refresh", "download":
		if len(positional) != 1 {
			return fail(fmt.Errorf("%s takes no arguments", cmd))
		}
		if *metadataURL == "" {
			return fail(errors.New("--metadata-url is required"))
		}
		if cmd == "download" && (len(targetNames) == 0 || *targetBaseURL == "" || *targetDir == "") {
			return fail(errors.New("download needs --target-name, --target-base-url and --target-dir"))
		}
		// Targets are only written with explicit paths below; go-tuf still
		// wants a directory, and the metadata directory must hold nothing
		// but the top-level metadata files, so point it at the target dir
		// (or the metadata dir, which go-tuf then leaves untouched).
		cacheDir := *targetDir
		if cacheDir == "" {
			cacheDir = *metadataDir
		}
		up, err := updater.NewTUF(updater.TUFOptions{
			MetadataDir: *metadataDir, TargetsDir: cacheDir,
			MetadataURL: *metadataURL, TargetsURL: *targetBaseURL,
			Fetcher: &updater.HTTPFetcher{Ctx: ctx, Client: &http.Client{Timeout: time.Minute}},
			Now:     referenceTime(ctx),
		})
		if err != nil {
			return fail(err)
		}
		if err := up.Refresh(); err != nil {
			return fail(err)
		}
		if cmd == "refresh" {
			fmt.Fprintln(stdout, "tuf-client: refreshed", *metadataDir)
			return 0
		}
		if err := os.MkdirAll(*targetDir, 0o755); err != nil {
			return fail(err)
		}
		for _, name := range targetNames {
			info, err := up.GetTargetInfo(name)
			if err != nil {
				return fail(err)
			}
			dst := filepath.Join(*targetDir, url.PathEscape(name))
			if p, _, err := up.FindCachedTarget(info, dst); err == nil && p != "" {
				fmt.Fprintln(stdout, "tuf-client: already have", dst)
				continue
			}
			if _, _, err := up.DownloadTarget(info, dst, *targetBaseURL); err != nil {
				return fail(err)
			}
			fmt.Fprintln(stdout, "tuf-client: downloaded", dst)
		}
		return 0
	default:
		return fail(fmt.Errorf("unknown command %q", cmd))
	}
}

// targetList is a repeatable --target-name.
type targetList []string

func (l *targetList) String() string { return strings.Join(*l, ",") }

func (l *targetList) Set(v string) error {
	if v == "" {
		return errors.New("empty target name")
	}
	*l = append(*l, v)
	return nil
}

// referenceTime is the time metadata expiry is judged against. The
// conformance suite moves time with libfaketime, which Go programs ignore
// (they read the clock without libc), so this test client asks the system's
// date(1) the way the suite's go-tuf reference client does, and falls back
// to the Go clock when date is missing or says something else. Only this
// client does: the agent keeps its injected clock.
func referenceTime(ctx context.Context) time.Time {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "date", "-u", "+%s").Output()
	if err != nil {
		return time.Now()
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Now()
	}
	return time.Unix(secs, 0)
}
