// Package apitest checks live HTTP exchanges against the checked-in OpenAPI
// documents (package apidoc), for the services' own tests: an answer whose
// status, content type or body the document does not describe fails the
// test that received it. It also lists the documents' operations, for the
// tests that compare them with the routes the services register.
//
// Validation is github.com/pb33f/libopenapi-validator, which handles
// OpenAPI 3.1 (JSON Schema 2020-12, const, type arrays). Only tests import
// this package, so no service binary links the validator.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vErrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"

	apidoc "github.com/tetherhq/tether/docs/api"
)

// Spec is one OpenAPI document, ready to check exchanges against.
type Spec struct {
	name string
	raw  []byte
	mu   sync.Mutex // the validator's caches are not documented as safe for concurrent use
	v    validator.Validator
	err  error
}

var (
	docsvc     = &Spec{name: "docs/api/docsvc.openapi.json", raw: apidoc.Docsvc}
	planeAdmin = &Spec{name: "docs/api/plane-admin.openapi.json", raw: apidoc.PlaneAdmin}
	builds     sync.Map // *Spec → *sync.Once
)

// Docsvc is the document service's document.
func Docsvc() *Spec { return docsvc.build() }

// PlaneAdmin is the plane's admin API document.
func PlaneAdmin() *Spec { return planeAdmin.build() }

func (s *Spec) build() *Spec {
	once, _ := builds.LoadOrStore(s, new(sync.Once))
	once.(*sync.Once).Do(func() {
		doc, err := libopenapi.NewDocument(s.raw)
		if err != nil {
			s.err = fmt.Errorf("%s: %w", s.name, err)
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			s.err = fmt.Errorf("%s: %v", s.name, errs)
			return
		}
		s.v = v
	})
	return s
}

// Name is the document's path in the repository.
func (s *Spec) Name() string { return s.name }

// ValidateDocument checks the document against the OpenAPI 3.1 schema.
func (s *Spec) ValidateDocument() error {
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, errs := s.v.ValidateDocument(); !ok {
		return fmt.Errorf("%s is not a valid OpenAPI document: %s", s.name, describe(errs))
	}
	return nil
}

// Check fails t unless the document describes res, the answer to req whose
// body was read into body. res.Body is left readable from the start.
func (s *Spec) Check(t testing.TB, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	if err := s.CheckErr(req, res, body); err != nil {
		t.Error(err)
	}
}

// CheckErr is Check's judgement as an error.
func (s *Spec) CheckErr(req *http.Request, res *http.Response, body []byte) error {
	if s.err != nil {
		return s.err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	defer func() { res.Body = io.NopCloser(bytes.NewReader(body)) }()
	s.mu.Lock()
	ok, errs := s.v.ValidateHttpResponse(req, res)
	s.mu.Unlock()
	if ok || unrouted(errs) && slices.Contains([]int{401, 404, 405}, res.StatusCode) {
		// A path or method the document does not describe may only be
		// refused: 404 or 405 from the mux, 401 from a catch-all that
		// asks for a credential first.
		return nil
	}
	shown := body
	if len(shown) > 512 {
		shown = shown[:512]
	}
	return fmt.Errorf("%s %s answered %d (%s) %q, which %s does not describe: %s",
		req.Method, req.URL.Path, res.StatusCode, res.Header.Get("Content-Type"), shown, s.name, describe(errs))
}

// unrouted reports whether errs say only that the request's path, or its
// method on that path, is not in the document.
func unrouted(errs []*vErrors.ValidationError) bool {
	for _, e := range errs {
		if e.ValidationType != helpers.PathValidation {
			return false
		}
	}
	return len(errs) > 0
}

func describe(errs []*vErrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n\t")
		b.WriteString(e.Message)
		if e.Reason != "" {
			b.WriteString(": " + e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n\t\t%s at /%s", f.Reason, strings.Join(f.InstancePath, "/"))
		}
	}
	return b.String()
}

// raw is the part of a document the route tests read.
type raw struct {
	Paths    map[string]map[string]json.RawMessage `json:"paths"`
	CatchAll map[string]string                     `json:"x-tether-catch-all"`
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Patterns returns the document's operations as net/http ServeMux patterns
// ("GET /v1/documents/{id}"; the path "/" as "/{$}", which is how a mux
// matches it alone), followed by the catch-all patterns the document lists
// under x-tether-catch-all, which have no operation of their own.
func (s *Spec) Patterns() ([]string, error) {
	var r raw
	if err := json.Unmarshal(s.raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	var out []string
	for path, item := range r.Paths {
		muxPath := path
		if muxPath == "/" {
			muxPath = "/{$}"
		}
		for key := range item {
			if slices.Contains(methods, key) {
				out = append(out, strings.ToUpper(key)+" "+muxPath)
			}
		}
	}
	for p := range r.CatchAll {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// Recorder is a mux that only records the patterns registered on it, so a
// test can run a service's own route registration and list its routes.
type Recorder struct{ Patterns []string }

// Handle records pattern.
func (r *Recorder) Handle(pattern string, _ http.Handler) { r.Patterns = append(r.Patterns, pattern) }

// HandleFunc records pattern.
func (r *Recorder) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	r.Patterns = append(r.Patterns, pattern)
}

// InAdminScope reports whether a plane request path (or a route pattern's
// path) belongs to what plane-admin.openapi.json describes: the admin API,
// /healthz and /openapi.json. The plane's other routes are the agent API
// (docs/protocol.md) and the dashboard, for browsers.
func InAdminScope(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	return strings.HasPrefix(path, "/v1/admin/") || path == "/healthz" || path == "/openapi.json"
}

// CompareRoutes fails t for each registered pattern the document does not
// describe and each described one that is not registered. registered may
// repeat a pattern (a route on two listeners).
func (s *Spec) CompareRoutes(t testing.TB, registered []string) {
	t.Helper()
	described, err := s.Patterns()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range registered {
		if !slices.Contains(described, p) {
			t.Errorf("route %q is registered but %s does not describe it: add it there (paths, or x-tether-catch-all for a catch-all)", p, s.name)
		}
	}
	for _, p := range described {
		if !slices.Contains(registered, p) {
			t.Errorf("%s describes %q but no such route is registered: remove it from the document, or register it", s.name, p)
		}
	}
}

// CheckExamples validates every JSON example in the document (a media
// type's example and each of its examples) against the schema beside it,
// so that what integrators copy from the document is what the API sends.
func (s *Spec) CheckExamples() error {
	doc, err := libopenapi.NewDocument(s.raw)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	sv := schema_validation.NewSchemaValidator()
	var problems []string
	check := func(where string, content *orderedmap.Map[string, *v3.MediaType]) {
		for mt, m := range content.FromOldest() {
			if mt != "application/json" || m.Schema == nil {
				continue
			}
			nodes := map[string]*yaml.Node{"example": m.Example}
			for name, ex := range m.Examples.FromOldest() {
				nodes["examples/"+name] = ex.Value
			}
			for name, n := range nodes {
				if n == nil {
					continue
				}
				var v any
				if err := n.Decode(&v); err != nil {
					problems = append(problems, fmt.Sprintf("%s %s: %v", where, name, err))
					continue
				}
				if ok, errs := sv.ValidateSchemaObject(m.Schema.Schema(), v); !ok {
					problems = append(problems, fmt.Sprintf("%s %s:%s", where, name, describe(errs)))
				}
			}
		}
	}
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			where := strings.ToUpper(method) + " " + path
			if op.RequestBody != nil {
				check(where+" request", op.RequestBody.Content)
			}
			for code, res := range op.Responses.Codes.FromOldest() {
				check(where+" "+code, res.Content)
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: examples that do not match their schemas:\n%s", s.name, strings.Join(problems, "\n"))
	}
	return nil
}
