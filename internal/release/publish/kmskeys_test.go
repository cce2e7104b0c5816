package publish

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tetherhq/tether/internal/awstest"
	"github.com/tetherhq/tether/internal/release"
)

// kmsServer points the SDK's standard environment at moto and returns a
// client for setting keys up.
func kmsServer(t *testing.T) (*awstest.Server, *kms.Client) {
	t.Helper()
	srv := awstest.Start(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return srv, kms.NewFromConfig(srv.AWSConfig())
}

func createKMSKey(t *testing.T, client *kms.Client, spec kmstypes.KeySpec) string {
	t.Helper()
	out, err := client.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	return *out.KeyMetadata.Arn
}

func TestOnlineKeysMoveToKMS(t *testing.T) {
	srv, client := kmsServer(t)
	ctx := context.Background()
	b := setup(t)
	b.publish(t, "stable", "1.0.0", t0)

	keys := map[string]string{
		metadata.SNAPSHOT:  createKMSKey(t, client, kmstypes.KeySpecEccNistP256),
		metadata.TIMESTAMP: createKMSKey(t, client, kmstypes.KeySpecEccNistP256),
	}
	v, err := UseKMS(ctx, b.keysDir, keys, t0)
	if err != nil || v != 2 {
		t.Fatalf("UseKMS = %d, %v; want root version 2", v, err)
	}
	for role := range keys {
		if _, err := os.Stat(filepath.Join(b.keysDir, role+".key")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s.key still in the keys directory after moving to KMS", role)
		}
	}

	b.publish(t, "stable", "1.1.0", t0.Add(time.Hour))
	r := b.verifiedRepo(t, "stable") // against the keys directory's new root
	root, _ := metadata.Root().FromFile(filepath.Join(b.keysDir, "root.json"))
	for role, sigs := range map[string][]metadata.Signature{metadata.SNAPSHOT: r.snapshot.Signatures, metadata.TIMESTAMP: r.timestamp.Signatures} {
		k := root.Signed.Keys[sigs[0].KeyID]
		if k == nil || k.Type != metadata.KeyTypeECDSA_SHA2_P256 || root.Signed.Roles[role].KeyIDs[0] != sigs[0].KeyID {
			t.Fatalf("%s signed by %s, want the ECDSA key root gives the role", role, sigs[0].KeyID)
		}
	}
	// The channel serves the root chain an agent follows from 1.root.json.
	prev, err := metadata.Root().FromFile(filepath.Join(b.repoDir, "stable", "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := metadata.Root().FromFile(filepath.Join(b.repoDir, "stable", "metadata", "2.root.json"))
	if err != nil {
		t.Fatalf("root version 2 not served: %v", err)
	}
	if err := prev.VerifyDelegate(metadata.ROOT, next); err != nil {
		t.Fatalf("root 2 does not verify against root 1: %v", err)
	}
	var sent struct{ KeyId, SigningAlgorithm, MessageType string }
	signs := 0
	for _, req := range srv.Requests() {
		if req.Target == "TrentService.Sign" {
			signs++
			if err := json.Unmarshal(req.Body, &sent); err != nil || sent.SigningAlgorithm != "ECDSA_SHA_256" || sent.MessageType != "RAW" {
				t.Fatalf("Sign request %s: %v", req.Body, err)
			}
		}
	}
	if signs < 2 {
		t.Fatalf("%d KMS Sign calls; want the snapshot and timestamp signed in KMS", signs)
	}
	// A refresh signs with KMS too, and the result still verifies.
	if err := Refresh(ctx, b.repoDir, b.keysDir, t0.Add(20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	b.verifiedRepo(t, "stable")
}

func TestUseKMSRefusals(t *testing.T) {
	_, client := kmsServer(t)
	ctx := context.Background()
	b := setup(t)
	good := createKMSKey(t, client, kmstypes.KeySpecEccNistP256)
	rootBefore, _ := os.ReadFile(filepath.Join(b.keysDir, "root.json"))
	tests := []struct {
		name, role, key, want string
	}{
		{"targets stays offline", metadata.TARGETS, good, "root and targets stay offline"},
		{"root stays offline", metadata.ROOT, good, "root and targets stay offline"},
		{"not a key reference", metadata.TIMESTAMP, "my key", "want a key ID, key ARN"},
		{"an RSA key", metadata.TIMESTAMP, createKMSKey(t, client, kmstypes.KeySpecRsa2048), "ECC_NIST_P256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := UseKMS(ctx, b.keysDir, map[string]string{tt.role: tt.key}, t0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("UseKMS = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	// Without the offline root keys the new root cannot be signed, and
	// nothing changes.
	for i := 1; i <= 3; i++ {
		os.Remove(filepath.Join(b.keysDir, rootKeyFile(i)))
	}
	if _, err := UseKMS(ctx, b.keysDir, map[string]string{metadata.TIMESTAMP: good}, t0); err == nil || !strings.Contains(err.Error(), "offline root") {
		t.Fatalf("UseKMS without root keys = %v, want the threshold error", err)
	}
	if after, _ := os.ReadFile(filepath.Join(b.keysDir, "root.json")); string(after) != string(rootBefore) {
		t.Fatal("root.json changed by a refused UseKMS")
	}
	if _, err := os.Stat(filepath.Join(b.keysDir, "timestamp.kms")); err == nil {
		t.Fatal("timestamp.kms written by a refused UseKMS")
	}
}

// moto's GetPublicKey fills in only the deprecated CustomerMasterKeySpec,
// not KeySpec, and a key whose usage or algorithms contradict its spec
// cannot be made there, so those decisions are checked on the SDK's output
// type.
func TestCheckKMSKeyDecision(t *testing.T) {
	ok := &kms.GetPublicKeyOutput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify,
		SigningAlgorithms: []kmstypes.SigningAlgorithmSpec{kmstypes.SigningAlgorithmSpecEcdsaSha256}}
	if err := checkKMSKey("k", ok); err != nil {
		t.Fatal(err)
	}
	deprecatedOnly := &kms.GetPublicKeyOutput{CustomerMasterKeySpec: kmstypes.CustomerMasterKeySpecEccNistP256,
		KeyUsage: ok.KeyUsage, SigningAlgorithms: ok.SigningAlgorithms}
	if err := checkKMSKey("k", deprecatedOnly); err != nil {
		t.Fatalf("only CustomerMasterKeySpec set: %v", err)
	}
	encrypt := *ok
	encrypt.KeyUsage = kmstypes.KeyUsageTypeEncryptDecrypt
	noAlg := *ok
	noAlg.SigningAlgorithms = nil
	for _, bad := range []*kms.GetPublicKeyOutput{&encrypt, &noAlg} {
		if err := checkKMSKey("k", bad); !errors.Is(err, release.ErrInvalid) {
			t.Fatalf("checkKMSKey(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}

func FuzzParseKMSKeyID(f *testing.F) {
	for _, s := range []string{"alias/tether-timestamp", "arn:aws:kms:eu-west-1:123456789012:key/0b7c2a44-1c2d-4f3e-9a8b-123456789abc",
		"0b7c2a44-1c2d-4f3e-9a8b-123456789abc", "", "alias/../x", "arn:aws:kms:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseKMSKeyID(s)
		if err != nil {
			if !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if strings.ContainsAny(id, " \n\t\x00") || id == "" {
			t.Fatalf("accepted %q", id)
		}
	})
}

// A replica's keys directory holds no targets key: it re-signs snapshot
// and timestamp, and refuses, naming the fix, to publish or to re-sign
// targets.
func TestRefreshWithoutTheTargetsKey(t *testing.T) {
	b := setup(t)
	b.publish(t, "stable", "1.0.0", t0)
	if err := os.Remove(filepath.Join(b.keysDir, targetsKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := Refresh(context.Background(), b.repoDir, b.keysDir, t0.Add(20*time.Hour)); err != nil {
		t.Fatalf("timestamp refresh without targets.key: %v", err)
	}
	b.verifiedRepo(t, "stable")
	err := Refresh(context.Background(), b.repoDir, b.keysDir, t0.Add(60*24*time.Hour))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "release machine") {
		t.Fatalf("targets refresh without targets.key = %v; want the release-machine error", err)
	}
}
