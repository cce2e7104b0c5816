package agent

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/tetherhq/tether/internal/awstest"
)

func TestFileKeys(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// When the identity secret cannot be read or written, the error names the
// secret, says what failed (missing, refused by IAM, refused by KMS, marked
// for deletion) and the fix, instead of the SDK's raw error.
func TestIdentitySecretErrors(t *testing.T) {
	t.Parallel()
	const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:tether/prod/agent-identity-AbCdEf"
	const role = "arn:aws:sts::111122223333:assumed-role/tether-agent/task"
	denied := [2]string{"AccessDeniedException", "User: " + role + " is not authorized to perform: secretsmanager:GetSecretValue on resource: " + arn}
	// The AWS errors each case stands for, as the SDK returns them. The
	// classification is tested on them directly; the cases the emulator can
	// produce are also run end to end in TestIdentitySecretErrorsOnEmulator
	// (moto enforces no IAM or KMS policy, so refusals cannot come from it).
	for _, tc := range []struct {
		name, id, op string
		err          [2]string
		want         []string
	}{
		{"read denied by IAM", arn, "GetSecretValue", denied,
			[]string{arn, "access denied to secretsmanager:GetSecretValue", "allow the agent's task role secretsmanager:GetSecretValue"}},
		{"read denied by KMS", arn, "GetSecretValue", [2]string{"AccessDeniedException", "Access to KMS is not allowed"},
			[]string{arn, "KMS refused secretsmanager:GetSecretValue", "kms:Decrypt on the secret's KMS key"}},
		{"KMS cannot decrypt", arn, "GetSecretValue", [2]string{"DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."},
			[]string{arn, "KMS refused", "DecryptionFailure", "key is enabled"}},
		{"write denied by IAM", arn, "PutSecretValue", denied,
			[]string{arn, "access denied to secretsmanager:PutSecretValue", "secretsmanager:PutSecretValue on this secret"}},
		{"promotion denied by IAM", arn, "UpdateSecretVersionStage", denied,
			[]string{arn, "access denied to secretsmanager:UpdateSecretVersionStage", "secretsmanager:UpdateSecretVersionStage on this secret"}},
		{"KMS cannot encrypt", arn, "PutSecretValue", [2]string{"EncryptionFailure", "the KMS key is disabled"},
			[]string{arn, "KMS refused secretsmanager:PutSecretValue", "kms:GenerateDataKey"}},
		{"secret not found", arn, "PutSecretValue", [2]string{"ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
			[]string{arn, "not found", "TETHER_AGENT_IDENTITY_SECRET"}},
		{"named secret not found", "tether/prod/agent-identity", "GetSecretValue", [2]string{"ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
			[]string{"tether/prod/agent-identity", "not found", "create the secret"}},
		{"marked for deletion", arn, "GetSecretValue", [2]string{"InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion."},
			[]string{arn, "marked for deletion", "restore-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			apiErr := &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: tc.op,
				Err: &smithy.GenericAPIError{Code: tc.err[0], Message: tc.err[1]}}
			err := secretError(tc.id, tc.op, apiErr)
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

// The refusals the emulator can produce, end to end through the real SDK:
// a secret ARN that does not exist, and a secret marked for deletion.
func TestIdentitySecretErrorsOnEmulator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu := awstest.Start(t)
	client := secretsmanager.NewFromConfig(emu.AWSConfig())

	missing := "arn:aws:secretsmanager:" + awstest.Region + ":" + awstest.Account + ":secret:tether/prod/agent-identity-AbCdEf"
	_, _, err := loadOrCreateKey(ctx, secretKeys{client: client, id: missing})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "TETHER_AGENT_IDENTITY_SECRET") {
		t.Errorf("missing secret: %v", err)
	}

	deleted := emu.CreateSecret(t, "tether/prod/old-identity", "x")
	if _, err := client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(deleted), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}
	_, _, err = loadOrCreateKey(ctx, secretKeys{client: client, id: deleted})
	if err == nil || !strings.Contains(err.Error(), "restore-secret") || !strings.Contains(err.Error(), deleted) {
		t.Errorf("secret marked for deletion: %v", err)
	}
}
