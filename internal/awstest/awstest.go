// Package awstest is an in-process HTTP endpoint that answers a few AWS
// control-plane APIs the way AWS does, so tests can drive the real
// aws-sdk-go-v2 clients (pointed at it with BaseEndpoint) without an AWS
// account.
//
// It is deliberately small: it stores what a test puts into it and answers
// the read calls the product makes. Each operation is one entry in the ops
// table below, keyed by the X-Amz-Target header of the AWS JSON 1.1 protocol,
// so adding another JSON-protocol call (ECS DescribeServices, say) is one
// function and one table row. Query-protocol services (STS, CloudFormation)
// would dispatch on the form's Action value into the same kind of table.
//
// It is not an imitation of S3 or SQS data-plane semantics; those tests use
// a real S3/SQS-compatible server.
package awstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Region and Account are what the server claims to be; ARNs it makes use them.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

// Request is one call the server received, for tests to assert on.
type Request struct {
	Target string // e.g. "secretsmanager.GetSecretValue"
	Body   []byte // the JSON request body as sent
}

// Server is the endpoint. Create it with New; it closes itself when the test
// ends.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	secrets  map[string]*secret // by name
	params   map[string]*param  // by full name ("/a/b")
	requests []Request
}

type secret struct {
	name, arn, value string
	// hasValue is false for a secret created without one (as a stack makes
	// a secret for the agent to fill): AWS then answers GetSecretValue
	// with ResourceNotFoundException.
	hasValue bool
}

type param struct {
	name, typ, value string
	version          int64
}

// op handles one X-Amz-Target. It returns the response body to encode as
// JSON, or an *apiError.
type op func(s *Server, body []byte) (any, error)

// ops is the table of everything the server answers.
var ops = map[string]op{
	"secretsmanager.GetSecretValue": (*Server).getSecretValue,
	"AmazonSSM.GetParameter":        (*Server).getParameter,
	"AmazonSSM.GetParametersByPath": (*Server).getParametersByPath,
	"AmazonSSM.GetParameters":       (*Server).getParameters,
	"secretsmanager.DescribeSecret": (*Server).describeSecret,
	"secretsmanager.CreateSecret":   (*Server).createSecret,
	"secretsmanager.PutSecretValue": (*Server).putSecretValue,
}

// apiError is an AWS JSON-protocol error: HTTP status plus the __type the
// SDK maps to a typed error (e.g. *types.ResourceNotFoundException).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// New starts a server for the duration of t.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{secrets: map[string]*secret{}, params: map[string]*param{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the endpoint's base URL.
func (s *Server) URL() string { return s.srv.URL }

// AWSConfig returns an SDK config aimed at this server: static credentials,
// region us-east-1, and BaseEndpoint set so every service client built from
// it calls here instead of AWS.
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAWSTEST", "awstest-secret", ""),
		BaseEndpoint: aws.String(s.srv.URL),
		HTTPClient:   s.srv.Client(),
		// A test that hits an error should see it at once, not after retries.
		RetryMaxAttempts: 1,
	}
}

// PutSecret stores a string secret. nameOrARN is either a plain name
// ("tether/prod/ai") or a full Secrets Manager ARN; GetSecretValue then
// answers to both the name and the ARN.
func (s *Server) PutSecret(nameOrARN, value string) {
	name, arn := secretNames(nameOrARN)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = &secret{name: name, arn: arn, value: value, hasValue: true}
}

// CreateEmptySecret makes a secret with no value yet, the state a
// deployment stack leaves a secret in for the product to fill at first
// start (with PutSecretValue).
func (s *Server) CreateEmptySecret(nameOrARN string) {
	name, arn := secretNames(nameOrARN)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = &secret{name: name, arn: arn}
}

// Secret returns a secret's current value, for tests to check what the
// code under test stored.
func (s *Server) Secret(nameOrARN string) (value string, ok bool) {
	sec, err := s.findSecret(nameOrARN)
	if err != nil || !sec.hasValue {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return sec.value, true
}

// secretNames splits a name or ARN into both forms.
func secretNames(nameOrARN string) (name, arn string) {
	name = nameOrARN
	if strings.HasPrefix(nameOrARN, "arn:") {
		arn = nameOrARN
		// arn:aws:secretsmanager:region:account:secret:NAME-XXXXXX
		if i := strings.Index(arn, ":secret:"); i >= 0 {
			name = arn[i+len(":secret:"):]
			if j := strings.LastIndexByte(name, '-'); j > 0 && len(name)-j-1 == 6 {
				name = name[:j]
			}
		}
	} else {
		// AWS appends six random characters to a secret's name in its ARN.
		arn = fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", Region, Account, name)
	}
	return name, arn
}

// PutParameter stores a String parameter.
func (s *Server) PutParameter(name, value string) { s.putParameter(name, "String", value) }

// PutSecureParameter stores a SecureString parameter, returned in clear only
// to callers that ask WithDecryption.
func (s *Server) PutSecureParameter(name, value string) { s.putParameter(name, "SecureString", value) }

func (s *Server) putParameter(name, typ, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	version := int64(1)
	if old, ok := s.params[name]; ok {
		version = old.version + 1
	}
	s.params[name] = &param{name: name, typ: typ, value: value, version: version}
}

// Requests returns every call received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", "cannot read body"})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Target: target, Body: body})
	s.mu.Unlock()

	// Every real AWS call is signed; a request without a SigV4 header means
	// the client was not configured the way production code would be.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not signed"})
		return
	}
	handle, ok := ops[target]
	if r.Method != http.MethodPost || !ok {
		writeError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", "awstest does not implement " + target})
		return
	}
	out, err := handle(s, body)
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok {
			ae = &apiError{http.StatusInternalServerError, "InternalFailure", err.Error()}
		}
		writeError(w, ae)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "awstest-request")
	_ = json.NewEncoder(w).Encode(out)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "awstest-request")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.message})
}

func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "malformed request body"}
	}
	return nil
}

// epoch is the fixed creation time the server reports, as AWS's epoch-seconds
// JSON number.
var epoch = float64(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix())

func (s *Server) findSecret(id string) (*secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.secrets[id]; ok {
		return sec, nil
	}
	for _, sec := range s.secrets {
		if sec.arn == id {
			return sec, nil
		}
	}
	return nil, &apiError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
}

func (s *Server) getSecretValue(body []byte) (any, error) {
	var in struct{ SecretId string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.findSecret(in.SecretId)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sec.hasValue {
		return nil, &apiError{http.StatusBadRequest, "ResourceNotFoundException",
			"Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"}
	}
	return map[string]any{
		"ARN":           sec.arn,
		"Name":          sec.name,
		"SecretString":  sec.value,
		"VersionId":     "awstest-version-1",
		"VersionStages": []string{"AWSCURRENT"},
		"CreatedDate":   epoch,
	}, nil
}

func (s *Server) describeSecret(body []byte) (any, error) {
	var in struct{ SecretId string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.findSecret(in.SecretId)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "CreatedDate": epoch}, nil
}

func (s *Server) createSecret(body []byte) (any, error) {
	var in struct{ Name, SecretString string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Name == "" || strings.HasPrefix(in.Name, "arn:") {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "Name must be a secret name"}
	}
	if _, err := s.findSecret(in.Name); err == nil {
		return nil, &apiError{http.StatusBadRequest, "ResourceExistsException",
			"The operation failed because the secret " + in.Name + " already exists."}
	}
	name, arn := secretNames(in.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets[name] = &secret{name: name, arn: arn, value: in.SecretString, hasValue: in.SecretString != ""}
	return map[string]any{"ARN": arn, "Name": name, "VersionId": "awstest-version-1"}, nil
}

func (s *Server) putSecretValue(body []byte) (any, error) {
	var in struct{ SecretId, SecretString string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	sec, err := s.findSecret(in.SecretId)
	if err != nil {
		return nil, err
	}
	if in.SecretString == "" {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "SecretString must not be empty"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sec.value, sec.hasValue = in.SecretString, true
	return map[string]any{"ARN": sec.arn, "Name": sec.name, "VersionId": "awstest-version-2",
		"VersionStages": []string{"AWSCURRENT"}}, nil
}

func (s *Server) paramJSON(p *param, decrypt bool) map[string]any {
	value := p.value
	if p.typ == "SecureString" && !decrypt {
		// AWS returns the KMS ciphertext; any opaque stand-in serves a test.
		value = "AQICAHawstestciphertext=="
	}
	return map[string]any{
		"Name":             p.name,
		"Type":             p.typ,
		"Value":            value,
		"Version":          p.version,
		"DataType":         "text",
		"LastModifiedDate": epoch,
		"ARN":              fmt.Sprintf("arn:aws:ssm:%s:%s:parameter/%s", Region, Account, strings.TrimPrefix(p.name, "/")),
	}
}

func (s *Server) getParameter(body []byte) (any, error) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[in.Name]
	if !ok {
		return nil, &apiError{http.StatusBadRequest, "ParameterNotFound", ""}
	}
	return map[string]any{"Parameter": s.paramJSON(p, in.WithDecryption)}, nil
}

func (s *Server) getParameters(body []byte) (any, error) {
	var in struct {
		Names          []string
		WithDecryption bool
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found, invalid := []any{}, []string{}
	for _, n := range in.Names {
		if p, ok := s.params[n]; ok {
			found = append(found, s.paramJSON(p, in.WithDecryption))
		} else {
			invalid = append(invalid, n)
		}
	}
	return map[string]any{"Parameters": found, "InvalidParameters": invalid}, nil
}

func (s *Server) getParametersByPath(body []byte) (any, error) {
	var in struct {
		Path           string
		Recursive      bool
		WithDecryption bool
		MaxResults     int
		NextToken      string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.Path, "/") {
		return nil, &apiError{http.StatusBadRequest, "ValidationException", "path must begin with /"}
	}
	prefix := strings.TrimSuffix(in.Path, "/") + "/"
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.params {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok || rest == "" || (!in.Recursive && strings.Contains(rest, "/")) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)

	// Paging is real so the SDK's paginator is exercised: the token is the
	// index of the next name, and MaxResults defaults to AWS's 10.
	limit := in.MaxResults
	if limit <= 0 || limit > 10 {
		limit = 10
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 || n > len(names) {
			return nil, &apiError{http.StatusBadRequest, "InvalidNextToken", "The specified token isn't valid."}
		}
		start = n
	}
	end := min(start+limit, len(names))
	out := map[string]any{}
	list := []any{}
	for _, n := range names[start:end] {
		list = append(list, s.paramJSON(s.params[n], in.WithDecryption))
	}
	out["Parameters"] = list
	if end < len(names) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, nil
}
