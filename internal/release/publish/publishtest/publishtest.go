// Package publishtest gives tests of the release clients (the air-gap
// import, the TUF conformance client) a vendor's release repository: keys
// and channels made with internal/release/publish, served over HTTP the way
// the plane serves them, with a way to serve other bytes instead of a file
// and a record of what was asked for.
package publishtest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherhq/tether/internal/release"
	"github.com/tetherhq/tether/internal/release/publish"
)

// Repo is one vendor's keys and repository. Its server answers
// GET /tuf/{channel}/{metadata|targets}/{name...}, as the plane's
// /v1/tuf/ endpoints do.
type Repo struct {
	KeysDir, RepoDir string
	URL              string // the server's base URL
	Now              time.Time

	t         testing.TB
	mu        sync.Mutex
	overrides map[string][]byte
	requests  []string
}

// New makes keys (publish's default key options) and an empty repository,
// and starts the server until the test ends.
func New(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{
		KeysDir:   filepath.Join(t.TempDir(), "keys"),
		RepoDir:   t.TempDir(),
		Now:       time.Now().UTC().Truncate(time.Second),
		t:         t,
		overrides: map[string][]byte{},
	}
	if _, err := publish.InitKeys(r.KeysDir, publish.KeyOptions{}, r.Now); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tuf/{channel}/{area}/{name...}", func(w http.ResponseWriter, req *http.Request) {
		channel, area, name := req.PathValue("channel"), req.PathValue("area"), req.PathValue("name")
		key := channel + "/" + area + "/" + name
		r.mu.Lock()
		r.requests = append(r.requests, key)
		data, ok := r.overrides[key]
		r.mu.Unlock()
		if !ok {
			p, err := publish.RepoFile(r.RepoDir, channel, area, name)
			if err != nil {
				http.NotFound(w, req)
				return
			}
			if data, err = os.ReadFile(p); err != nil {
				http.NotFound(w, req)
				return
			}
		}
		_, _ = w.Write(data)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Publish publishes version on channel with one artifact, tether-agent,
// whose bytes are ArtifactBytes(version), and one image, api, pinned by
// digest.
func (r *Repo) Publish(channel, version, minFrom string) release.Manifest {
	r.t.Helper()
	art := filepath.Join(r.t.TempDir(), "tether-agent")
	if err := os.WriteFile(art, ArtifactBytes(version), 0o644); err != nil {
		r.t.Fatal(err)
	}
	m, err := publish.Publish(context.Background(), r.RepoDir, r.KeysDir, publish.PublishOptions{
		Version: version, Channel: channel, MinFrom: minFrom,
		Artifacts: map[string]string{"tether-agent": art},
		Images:    map[string]string{"api": "registry.example/tether/api@sha256:" + strings.Repeat("ab", 32)},
		SchemaMin: 1, SchemaMax: 2,
	}, r.Now)
	if err != nil {
		r.t.Fatalf("publish %s %s: %v", channel, version, err)
	}
	return m
}

// ArtifactBytes is the content of the artifact Publish ships with version.
func ArtifactBytes(version string) []byte { return []byte("tether-agent " + version + "\n") }

// RootJSON is the trusted root an agent is installed with.
func (r *Repo) RootJSON() []byte {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.KeysDir, "root.json"))
	if err != nil {
		r.t.Fatal(err)
	}
	return data
}

// Export is publish.Export of channel: an air-gap bundle.
func (r *Repo) Export(channel string) []byte {
	r.t.Helper()
	var buf bytes.Buffer
	if err := publish.Export(r.RepoDir, channel, &buf); err != nil {
		r.t.Fatal(err)
	}
	return buf.Bytes()
}

// File is one file of the repository as the server would send it, or nil.
func (r *Repo) File(channel, area, name string) []byte {
	p, err := publish.RepoFile(r.RepoDir, channel, area, name)
	if err != nil {
		return nil
	}
	data, _ := os.ReadFile(p)
	return data
}

// ServeInstead makes the server answer key ("stable/metadata/timestamp.json")
// with data.
func (r *Repo) ServeInstead(key string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overrides[key] = data
}

// Requests returns the keys the server was asked for, in order.
func (r *Repo) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// Versions lists the manifests' versions, in order.
func Versions(ms []release.Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Version)
	}
	return out
}
