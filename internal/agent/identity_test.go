package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

func TestFileKeys(t *testing.T) {
	ctx := context.Background()
	ks := fileKeys{path: filepath.Join(t.TempDir(), "identity.key")}
	k, created, err := loadOrCreateKey(ctx, ks)
	if err != nil || !created {
		t.Fatalf("first start: %v created=%v", err, created)
	}
	k2, created, err := loadOrCreateKey(ctx, ks)
	if err != nil || created || !k.Equal(k2) {
		t.Fatalf("second start: %v created=%v same=%v", err, created, k.Equal(k2))
	}
	// A key file others can read is refused rather than used.
	if err := os.Chmod(ks.path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOrCreateKey(ctx, ks); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
}

func TestDecodeKey(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(nil)
	got, err := decodeKey(encodeKey(k) + "\n")
	if err != nil || !got.Equal(k) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "not base64!", "AAAA", encodeKey(k) + "AA"} {
		if _, err := decodeKey(bad); err == nil {
			t.Errorf("decodeKey(%q) accepted", bad)
		}
	}
}

// FuzzDecodeKey covers the identity key as read back from a file or a
// Secrets Manager secret, which an operator (or anyone with write access
// to the secret) controls.
func FuzzDecodeKey(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(nil)
	f.Add(encodeKey(k))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := decodeKey(s)
		if err == nil && len(key) != ed25519.PrivateKeySize {
			t.Fatalf("accepted a key of %d bytes", len(key))
		}
		if err != nil && len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error repeats the stored key text")
		}
	})
}

// fakeSecretsManager answers each Secrets Manager call (by its X-Amz-Target
// operation) with a fixed AWS error, or success.
func fakeSecretsManager(t *testing.T, errs map[string][2]string) *secretsmanager.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if e, ok := errs[op]; ok {
			w.Header().Set("X-Amzn-Errortype", e[0])
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"__type": e[0], "message": e[1]})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:x", "Name": "x"})
	}))
	t.Cleanup(srv.Close)
	return secretsmanager.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
}

// When the identity secret cannot be read or written, the error names the
// secret, says what failed (missing, refused by IAM, refused by KMS, marked
// for deletion) and the fix, instead of the SDK's raw error.
func TestIdentitySecretErrors(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:tether/prod/agent-identity-AbCdEf"
	const role = "arn:aws:sts::111122223333:assumed-role/tether-agent/task"
	denied := [2]string{"AccessDeniedException", "User: " + role + " is not authorized to perform: secretsmanager:GetSecretValue on resource: " + arn}
	for _, tc := range []struct {
		name string
		id   string
		errs map[string][2]string
		want []string
	}{
		{"read denied by IAM", arn, map[string][2]string{"GetSecretValue": denied},
			[]string{arn, "access denied to secretsmanager:GetSecretValue", "allow the agent's task role secretsmanager:GetSecretValue"}},
		{"read denied by KMS", arn, map[string][2]string{"GetSecretValue": {"AccessDeniedException", "Access to KMS is not allowed"}},
			[]string{arn, "KMS refused secretsmanager:GetSecretValue", "kms:Decrypt on the secret's KMS key"}},
		{"KMS cannot decrypt", arn, map[string][2]string{"GetSecretValue": {"DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."}},
			[]string{arn, "KMS refused", "DecryptionFailure", "key is enabled"}},
		{"write denied by IAM", arn, map[string][2]string{"PutSecretValue": denied},
			[]string{arn, "access denied to secretsmanager:PutSecretValue", "secretsmanager:PutSecretValue on this secret"}},
		{"KMS cannot encrypt", arn, map[string][2]string{"PutSecretValue": {"EncryptionFailure", "the KMS key is disabled"}},
			[]string{arn, "KMS refused secretsmanager:PutSecretValue", "kms:GenerateDataKey"}},
		{"secret not found", arn, map[string][2]string{"GetSecretValue": {"ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
			"PutSecretValue": {"ResourceNotFoundException", "Secrets Manager can't find the specified secret."}},
			[]string{arn, "not found", "TETHER_AGENT_IDENTITY_SECRET"}},
		{"named secret cannot be created", "tether/prod/agent-identity", map[string][2]string{"GetSecretValue": {"ResourceNotFoundException", "not found"},
			"PutSecretValue": {"ResourceNotFoundException", "not found"}, "CreateSecret": denied},
			[]string{"tether/prod/agent-identity", "access denied to secretsmanager:CreateSecret"}},
		{"marked for deletion", arn, map[string][2]string{"GetSecretValue": {"InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion."}},
			[]string{arn, "marked for deletion", "restore-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := loadOrCreateKey(context.Background(), secretKeys{client: fakeSecretsManager(t, tc.errs), id: tc.id})
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), role) {
				t.Errorf("error quotes the caller's role: %v", err)
			}
		})
	}
}
