package publish

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tetherhq/tether/internal/release"
)

// Export writes one channel's current repository as a gzip'd tar for
// air-gapped customers: every root version (so an agent can walk a root
// rotation), timestamp.json, the snapshot and targets versions it names, and
// every target those name, under the same metadata/ and targets/ paths the
// plane serves. tetherctl's airgap.ImportBundle verifies it with go-tuf
// exactly as if it had been fetched online, so the bundle needs no signature
// of its own. Entries are sorted and carry a fixed modification time, so
// exporting the same state twice gives the same bytes.
//
// The bundle is valid until its timestamp expires (a day by default); for a
// hand-off that takes longer use ExportValidFor.
func Export(repoDir, channel string, w io.Writer) error {
	r, err := loadRepo(repoDir, channel)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	md := filepath.Join(r.dir, metadataDir)
	files := []string{
		"metadata/timestamp.json",
		"metadata/" + strconv.FormatInt(r.snapshot.Signed.Version, 10) + ".snapshot.json",
		"metadata/" + strconv.FormatInt(r.targets.Signed.Version, 10) + ".targets.json",
	}
	entries, err := os.ReadDir(md)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, e := range entries {
		if v, ok := strings.CutSuffix(e.Name(), ".root.json"); ok {
			if _, err := strconv.ParseUint(v, 10, 64); err == nil && e.Type().IsRegular() {
				files = append(files, "metadata/"+e.Name())
			}
		}
	}
	for p, tf := range r.targets.Signed.Targets {
		sha, err := targetSHA256(tf)
		if err != nil {
			return fmt.Errorf("export: target: %w", err)
		}
		d, base := path.Split(p)
		files = append(files, "targets/"+d+sha+"."+base)
	}
	sort.Strings(files)

	mtime := time.Unix(0, 0)
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, name := range files {
		if err := addFile(tw, filepath.Join(r.dir, filepath.FromSlash(name)), name, mtime); err != nil {
			return fmt.Errorf("export %s: %w", channel, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func addFile(tw *tar.Writer, src, name string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: st.Size(), ModTime: mtime, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// MaxExportValidity bounds ExportValidFor: an air-gapped install must still
// refuse metadata frozen long ago, and the root itself expires.
const MaxExportValidity = 90 * 24 * time.Hour

// ExportValidFor exports a channel whose snapshot and timestamp are first
// re-signed to stay valid for validFor, for an air-gapped customer who
// imports the file days after it was made (Export's bundle is valid only
// until the online timestamp expires, a day by default). Right after
// writing the bundle it re-signs the channel again with the usual
// lifetimes, so agents online move on to newer, short-lived metadata and
// refuse the long-lived version as a rollback; only the exported copy
// carries the long expiry. It holds the channel's lock throughout.
func ExportValidFor(ctx context.Context, repoDir, keysDir, channel string, validFor time.Duration, w io.Writer, now time.Time) error {
	if validFor <= 0 || validFor > MaxExportValidity {
		return fmt.Errorf("export: validity %s is not between 0 and %s: %w", validFor, MaxExportValidity, release.ErrInvalid)
	}
	k, err := loadOnlineKeys(keysDir)
	if err != nil {
		return fmt.Errorf("export: keys: %w", err)
	}
	dir, err := channelDir(repoDir, channel)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	unlock, err := lockChannel(dir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer unlock()
	r, err := loadRepo(repoDir, channel)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	long := *k
	long.policy.TimestampExpiry = duration(validFor)
	long.policy.SnapshotExpiry = max(long.policy.SnapshotExpiry, duration(validFor))
	long.policy.TargetsExpiry = max(long.policy.TargetsExpiry, duration(validFor))
	bumpTargets := r.targets.Signed.Expires.Before(now.Add(validFor))
	if err := r.commit(&long, now, bumpTargets, true); err != nil {
		return fmt.Errorf("export: sign for %s: %w", validFor, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := Export(repoDir, channel, w); err != nil {
		return err
	}
	if r, err = loadRepo(repoDir, channel); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := r.commit(k, now, false, true); err != nil {
		return fmt.Errorf("export: re-sign the online channel: %w", err)
	}
	return nil
}
