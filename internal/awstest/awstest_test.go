package awstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tetherhq/tether/internal/awstest"
)

func TestServesTheRealSDK(t *testing.T) {
	ctx := context.Background()
	srv := awstest.Start(t)
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want a loopback URL", srv.Endpoint())
	}
	id, err := sts.NewFromConfig(srv.AWSConfig()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if aws.ToString(id.Account) != awstest.Account {
		t.Fatalf("account = %q, want %q", aws.ToString(id.Account), awstest.Account)
	}
	arn := srv.CreateSecret(t, "tether/test/license", "v1")
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:"+awstest.Region+":"+awstest.Account+":secret:tether/test/license-") {
		t.Fatalf("ARN = %q", arn)
	}
	if _, err := secretsmanager.NewFromConfig(srv.AWSConfig()).GetSecretValue(ctx,
		&secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	// Only the code under test's calls are recorded, not the helpers' set-up.
	var targets []string
	for _, r := range srv.Requests() {
		targets = append(targets, r.Target)
	}
	if got := strings.Join(targets, ","); got != "GetCallerIdentity,secretsmanager.GetSecretValue" {
		t.Fatalf("recorded %s", got)
	}
	if v, ok := srv.SecretValue(t, arn); !ok || v != "v1" {
		t.Fatalf("SecretValue = %q, %v", v, ok)
	}
	empty := srv.CreateSecret(t, "tether/test/agent-identity", "")
	if _, ok := srv.SecretValue(t, empty); ok {
		t.Fatal("a secret created without a value reads as having one")
	}
}

// A server goes back to the pool empty: the next test cannot see what the
// last one left.
func TestEachTestStartsEmpty(t *testing.T) {
	for i := 0; i < 2; i++ {
		t.Run("lease", func(t *testing.T) {
			srv := awstest.Start(t)
			if _, ok := srv.SecretValue(t, "left-behind"); ok {
				t.Fatal("a secret from an earlier test is still there")
			}
			srv.CreateSecret(t, "left-behind", "x")
			srv.PutParameter(t, "/left/behind", "x", true)
		})
	}
}

func TestParallelTestsHoldTheirOwn(t *testing.T) {
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := awstest.Start(t)
			srv.CreateSecret(t, "shared-name", name)
			if v, _ := srv.SecretValue(t, "shared-name"); v != name {
				t.Fatalf("read %q, want %q: two tests share a server", v, name)
			}
		})
	}
}
