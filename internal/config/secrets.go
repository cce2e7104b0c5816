package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretResolver fetches a secret's string value by reference (a Secrets
// Manager ARN, without any "#field" suffix).
type SecretResolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// ErrNoAWS is returned when a value is a Secrets Manager ARN but the process
// was started without AWS configuration to resolve it.
var ErrNoAWS = errors.New("config: no AWS region or credentials configured to read Secrets Manager")

// NoAWSResolver is the resolver for processes without AWS (tetherctl dev,
// single-host installs): every ARN fails with ErrNoAWS.
func NoAWSResolver() SecretResolver { return noAWS{} }

type noAWS struct{}

func (noAWS) Resolve(context.Context, string) (string, error) { return "", ErrNoAWS }

// NewSecretsManagerResolver resolves ARNs with GetSecretValue, using the
// caller's client so region, credentials and endpoint come from one place.
func NewSecretsManagerResolver(client *secretsmanager.Client) StagedResolver {
	return smResolver{client: client}
}

// StagedResolver also reads a secret's other version stages (AWSPENDING
// during a rotation).
type StagedResolver interface {
	SecretResolver
	ResolveStage(ctx context.Context, ref, stage string) (string, error)
}

type smResolver struct{ client *secretsmanager.Client }

func (r smResolver) Resolve(ctx context.Context, ref string) (string, error) {
	return r.ResolveStage(ctx, ref, "")
}

// ResolveStage reads the version with the given stage; "" is AWSCURRENT.
func (r smResolver) ResolveStage(ctx context.Context, ref, stage string) (string, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(ref)}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := r.client.GetSecretValue(ctx, in)
	if err != nil {
		return "", fmt.Errorf("config: get secret value: %w", err)
	}
	if out.SecretString == nil {
		return "", errors.New("config: secret has no string value (binary secrets are not supported)")
	}
	return *out.SecretString, nil
}

// maxSecretFile bounds a *_FILE read: secrets are short, and a path pointing
// at something large is a mistake.
const maxSecretFile = 64 << 10

// secret reads a secret variable from NAME or NAME_FILE, resolving a Secrets
// Manager ARN in NAME. Problems never include the value.
func (l *loader) secret(name string) string {
	fileVar := name + "_FILE"
	val := l.getenv(name)
	file := strings.TrimSpace(l.getenv(fileVar))
	switch {
	case val != "" && file != "":
		l.fail(name, "both "+name+" and "+fileVar+" are set", "set only one of them")
		return ""
	case file != "":
		v, problem := readSecretFile(file)
		if problem != "" {
			l.fail(fileVar, problem, "point it at a readable file holding only the value")
			return ""
		}
		l.sources[name] = SourceFile
		return v
	case isSecretsManagerARN(val):
		v, problem := l.resolve(val)
		if problem != "" {
			l.fail(name, problem, "check the ARN, and that AWS_REGION and the task role allow secretsmanager:GetSecretValue on it; or set the value directly or via "+fileVar)
			return ""
		}
		l.sources[name] = SourceSecretsManager
		return v
	case val != "":
		l.sources[name] = SourceEnv
		return val
	}
	return ""
}

func isSecretsManagerARN(v string) bool {
	return strings.HasPrefix(v, "arn:") && strings.Contains(v, ":secretsmanager:") && strings.Contains(v, ":secret:")
}

// readSecretFile returns the file's contents without the trailing newline
// editors and `echo` add, or a problem naming the path (never the contents).
func readSecretFile(path string) (string, string) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Sprintf("cannot read %q: %v", path, pathCause(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Sprintf("cannot read %q: %v", path, pathCause(err))
	}
	if len(b) > maxSecretFile {
		return "", fmt.Sprintf("%q is larger than %d KiB", path, maxSecretFile>>10)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", fmt.Sprintf("%q is empty", path)
	}
	return v, ""
}

// pathCause drops the *fs.PathError wrapper, whose text repeats the path.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolve fetches ref ("arn...[#field]"); see resolveRef.
func (l *loader) resolve(ref string) (string, string) { return resolveRef(l.ctx, l.resolver, ref) }

// resolveRef fetches ref ("arn...[#field]"), or returns a problem that never
// quotes the secret. A field selects one string (or number) from a JSON
// secret, as ECS's own secret injection does.
func resolveRef(ctx context.Context, r SecretResolver, ref string) (string, string) {
	arn, field, hasField := strings.Cut(ref, "#")
	v, err := r.Resolve(ctx, arn)
	if err != nil {
		return "", fmt.Sprintf("cannot read Secrets Manager secret %s: %v", arn, err)
	}
	if !hasField {
		if v == "" {
			return "", "Secrets Manager secret " + arn + " is empty"
		}
		return v, ""
	}
	var obj map[string]json.RawMessage
	// The JSON error is not reported: its text can quote the secret's bytes.
	if json.Unmarshal([]byte(v), &obj) != nil {
		return "", "Secrets Manager secret " + arn + " is not a JSON object, so #" + field + " cannot select a field"
	}
	raw, ok := obj[field]
	if !ok {
		return "", fmt.Sprintf("Secrets Manager secret %s has no field %q", arn, field)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", fmt.Sprintf("field %q of Secrets Manager secret %s is not a string or number", field, arn)
		}
		s = n.String()
	}
	if s == "" {
		return "", fmt.Sprintf("field %q of Secrets Manager secret %s is empty", field, arn)
	}
	return s, ""
}

// DatabasePasswordFunc returns what the database layer calls for the
// password of each new PostgreSQL connection, or nil when
// DOCSVC_DATABASE_PASSWORD is not set. It answers with the password read at
// start until PostgreSQL refuses it; then it reads the source again: the file,
// or the secret's AWSCURRENT version and, if that is still the refused one,
// its AWSPENDING version, which is what the server already has in the middle
// of a Secrets Manager rotation.
func (c *Config) DatabasePasswordFunc(r SecretResolver) func(ctx context.Context, refused string) (string, error) {
	if c.DatabasePassword == "" {
		return nil
	}
	fixed, ref, source := c.DatabasePassword, c.databasePasswordRef, c.sources["DOCSVC_DATABASE_PASSWORD"]
	return func(ctx context.Context, refused string) (string, error) {
		if refused == "" {
			return fixed, nil
		}
		switch source {
		case SourceFile:
			v, problem := readSecretFile(ref)
			if problem != "" {
				return "", errors.New("DOCSVC_DATABASE_PASSWORD_FILE: " + problem)
			}
			return v, nil
		case SourceSecretsManager:
			v, problem := resolveRef(ctx, r, ref)
			if problem != "" {
				return "", errors.New("DOCSVC_DATABASE_PASSWORD: " + problem)
			}
			if sr, ok := r.(StagedResolver); ok && v == refused {
				// No pending version is the usual case outside a
				// rotation: keep the current one and let the caller wait.
				if pending, problem := resolveRef(ctx, pendingResolver{sr}, ref); problem == "" {
					return pending, nil
				}
			}
			return v, nil
		}
		return fixed, nil
	}
}

// pendingResolver reads the AWSPENDING version through resolveRef.
type pendingResolver struct{ r StagedResolver }

func (p pendingResolver) Resolve(ctx context.Context, ref string) (string, error) {
	return p.r.ResolveStage(ctx, ref, "AWSPENDING")
}
