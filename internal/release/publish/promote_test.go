package publish_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
	"github.com/tetherhq/tether/internal/release/publish/publishtest"
	"github.com/tetherhq/tether/internal/updater"
)

// agentView is what an agent following channel sees of r, through the
// agent's own TUF client.
func agentView(t *testing.T, r *publishtest.Repo, channel string) []release.Manifest {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	if err := updater.Init(dir, r.RootJSON()); err != nil {
		t.Fatal(err)
	}
	c, err := updater.New(updater.Config{MetadataDir: dir,
		RemoteMetadataURL: r.URL + "/tuf/" + channel + "/metadata", RemoteTargetsURL: r.URL + "/tuf/" + channel + "/targets",
		Now: func() time.Time { return r.Now.Add(time.Minute) }, Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Releases(context.Background())
	if err != nil {
		t.Fatalf("releases on %s: %v", channel, err)
	}
	return ms
}

// download fetches a target of channel with go-tuf, which checks its
// length and hash against the channel's signed targets.
func download(t *testing.T, r *publishtest.Repo, channel, target string) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tuf")
	if err := updater.Init(dir, r.RootJSON()); err != nil {
		t.Fatal(err)
	}
	up, err := updater.NewTUF(updater.TUFOptions{MetadataDir: dir, TargetsDir: t.TempDir(),
		MetadataURL: r.URL + "/tuf/" + channel + "/metadata", TargetsURL: r.URL + "/tuf/" + channel + "/targets",
		Fetcher: &updater.HTTPFetcher{Ctx: context.Background(), Client: &http.Client{Timeout: time.Minute}}, Now: r.Now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Refresh(); err != nil {
		t.Fatal(err)
	}
	info, err := up.GetTargetInfo(target)
	if err != nil {
		t.Fatalf("%s on %s: %v", target, channel, err)
	}
	_, data, err := up.DownloadTarget(info, "", "")
	if err != nil {
		t.Fatalf("download %s from %s: %v", target, channel, err)
	}
	return data
}

func TestPromote(t *testing.T) {
	r := publishtest.New(t)
	beta := r.Publish("beta", "1.5.0", "1.0.0")
	r.Publish("stable", "1.4.0", "1.0.0")
	promote := func(o publish.PromoteOptions) (release.Manifest, error) {
		return publish.Promote(context.Background(), r.RepoDir, r.KeysDir, o, r.Now)
	}

	m, err := promote(publish.PromoteOptions{Version: "1.5.0", From: "beta", To: "stable"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Channel != "stable" || !maps.Equal(m.Artifacts, beta.Artifacts) || m.MinFrom != beta.MinFrom || m.Schema != beta.Schema {
		t.Fatalf("promoted manifest %+v, from %+v", m, beta)
	}
	stable := agentView(t, r, "stable")
	if got := publishtest.Versions(stable); !slices.Equal(got, []string{"1.5.0", "1.4.0"}) {
		t.Fatalf("an agent on stable sees %v", got)
	}
	if stable[0].Channel != "stable" || !maps.Equal(stable[0].Artifacts, beta.Artifacts) || stable[0].Images["api"] != beta.Images["api"] {
		t.Fatalf("an agent on stable sees %+v", stable[0])
	}
	if got := download(t, r, "stable", beta.Artifacts["tether-agent"].Target); !bytes.Equal(got, publishtest.ArtifactBytes("1.5.0")) {
		t.Fatalf("artifact on stable is %q", got)
	}
	if got := publishtest.Versions(agentView(t, r, "beta")); !slices.Equal(got, []string{"1.5.0"}) {
		t.Fatalf("beta changed: %v", got)
	}

	// A new channel is created by its first promotion.
	if _, err := promote(publish.PromoteOptions{Version: "1.5.0", From: "beta", To: "lts"}); err != nil {
		t.Fatal(err)
	}
	if got := publishtest.Versions(agentView(t, r, "lts")); !slices.Equal(got, []string{"1.5.0"}) {
		t.Fatalf("lts: %v", got)
	}

	r.Publish("beta", "1.3.0", "1.0.0")
	r.Publish("beta", "1.6.0", "1.0.0")
	if err := publish.Revoke(context.Background(), r.RepoDir, r.KeysDir, "beta", "1.6.0", r.Now); err != nil {
		t.Fatal(err)
	}
	r.Publish("beta", "1.7.0", "1.0.0")
	if _, err := promote(publish.PromoteOptions{Version: "1.7.0", From: "beta", To: "lts"}); err != nil {
		t.Fatal(err)
	}
	if err := publish.Revoke(context.Background(), r.RepoDir, r.KeysDir, "lts", "1.7.0", r.Now); err != nil {
		t.Fatal(err)
	}

	before := r.File("stable", "metadata", "timestamp.json")
	beforeLTS := r.File("lts", "metadata", "timestamp.json")
	for _, tt := range []struct {
		name string
		o    publish.PromoteOptions
		want error
	}{
		{"already there", publish.PromoteOptions{Version: "1.5.0", From: "beta", To: "stable"}, publish.ErrExists},
		{"older than the newest", publish.PromoteOptions{Version: "1.3.0", From: "beta", To: "stable"}, publish.ErrOlder},
		{"revoked on the source", publish.PromoteOptions{Version: "1.6.0", From: "beta", To: "stable"}, publish.ErrRevoked},
		{"revoked on the target", publish.PromoteOptions{Version: "1.7.0", From: "beta", To: "lts"}, publish.ErrRevoked},
		{"not on the source", publish.PromoteOptions{Version: "1.4.0", From: "beta", To: "lts"}, publish.ErrNotFound},
		{"no such source channel", publish.PromoteOptions{Version: "1.5.0", From: "edge", To: "stable"}, publish.ErrNotFound},
		{"same channel", publish.PromoteOptions{Version: "1.5.0", From: "beta", To: "beta"}, release.ErrInvalid},
		{"bad version", publish.PromoteOptions{Version: "v1.5", From: "beta", To: "stable"}, release.ErrInvalid},
		{"bad channel", publish.PromoteOptions{Version: "1.5.0", From: "beta", To: "../stable"}, release.ErrInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := promote(tt.o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if !bytes.Equal(r.File("stable", "metadata", "timestamp.json"), before) || !bytes.Equal(r.File("lts", "metadata", "timestamp.json"), beforeLTS) {
		t.Fatal("a refused promotion signed new metadata")
	}

	// An older version goes when asked for explicitly.
	if _, err := promote(publish.PromoteOptions{Version: "1.3.0", From: "beta", To: "stable", AllowOlder: true}); err != nil {
		t.Fatal(err)
	}
	if got := publishtest.Versions(agentView(t, r, "stable")); !slices.Equal(got, []string{"1.5.0", "1.4.0", "1.3.0"}) {
		t.Fatalf("stable after --allow-older: %v", got)
	}
}
