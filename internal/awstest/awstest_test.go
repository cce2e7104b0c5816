package awstest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/tetherhq/tether/internal/awstest"
)

func TestGetSecretValue(t *testing.T) {
	ctx := context.Background()
	srv := awstest.New(t)
	srv.PutSecret("tether/dev/ai", `{"api_key":"k1"}`)
	const fullARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tether/dev/db-Xy12Zq"
	srv.PutSecret(fullARN, "postgres://u:p@db/x")
	client := secretsmanager.NewFromConfig(srv.AWSConfig())

	tests := []struct {
		id, want string
		notFound bool
	}{
		{id: "tether/dev/ai", want: `{"api_key":"k1"}`},
		{id: fullARN, want: "postgres://u:p@db/x"},
		{id: "tether/dev/db", want: "postgres://u:p@db/x"},
		{id: "tether/dev/missing", notFound: true},
		{id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AAAAAA", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(tt.id)})
			if tt.notFound {
				var nf *smtypes.ResourceNotFoundException
				if !errors.As(err, &nf) {
					t.Fatalf("err = %v, want ResourceNotFoundException", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.SecretString); got != tt.want {
				t.Fatalf("SecretString = %q, want %q", got, tt.want)
			}
			if !strings.HasPrefix(aws.ToString(out.ARN), "arn:aws:secretsmanager:us-east-1:") {
				t.Fatalf("ARN = %q", aws.ToString(out.ARN))
			}
		})
	}

	// The ARN the server reports for a name answers too, as in AWS.
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("tether/dev/ai")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: out.ARN}); err != nil {
		t.Fatalf("by reported ARN: %v", err)
	}

	reqs := srv.Requests()
	if len(reqs) != len(tests)+2 {
		t.Fatalf("%d requests logged, want %d", len(reqs), len(tests)+2)
	}
	if reqs[0].Target != "secretsmanager.GetSecretValue" || !strings.Contains(string(reqs[0].Body), `"SecretId":"tether/dev/ai"`) {
		t.Fatalf("first request = %s %s", reqs[0].Target, reqs[0].Body)
	}
}

func TestGetParameter(t *testing.T) {
	ctx := context.Background()
	srv := awstest.New(t)
	srv.PutParameter("/tether/dev/config/public_url", "https://docs.example.com")
	srv.PutSecureParameter("/tether/dev/config/token", "s3cr3t")
	client := ssm.NewFromConfig(srv.AWSConfig())

	tests := []struct {
		name, want string
		decrypt    bool
		notFound   bool
	}{
		{name: "/tether/dev/config/public_url", want: "https://docs.example.com"},
		{name: "/tether/dev/config/token", decrypt: true, want: "s3cr3t"},
		{name: "/tether/dev/config/missing", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(tt.name), WithDecryption: aws.Bool(tt.decrypt)})
			if tt.notFound {
				var nf *ssmtypes.ParameterNotFound
				if !errors.As(err, &nf) {
					t.Fatalf("err = %v, want ParameterNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(out.Parameter.Value); got != tt.want {
				t.Fatalf("Value = %q, want %q", got, tt.want)
			}
		})
	}

	// Without decryption a SecureString does not come back in clear.
	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/tether/dev/config/token")})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(out.Parameter.Value); v == "s3cr3t" || out.Parameter.Type != ssmtypes.ParameterTypeSecureString {
		t.Fatalf("undecrypted SecureString = %q type %q", v, out.Parameter.Type)
	}
}

func TestGetParametersByPath(t *testing.T) {
	ctx := context.Background()
	srv := awstest.New(t)
	// 13 direct children force a second page (AWS pages at 10).
	for i := range 13 {
		srv.PutParameter(fmt.Sprintf("/tether/dev/config/k%02d", i), fmt.Sprint(i))
	}
	srv.PutParameter("/tether/dev/config/nested/deep", "x")
	srv.PutParameter("/tether/other/config/k", "y")
	client := ssm.NewFromConfig(srv.AWSConfig())

	tests := []struct {
		path      string
		recursive bool
		want      int
	}{
		{"/tether/dev/config", false, 13},
		{"/tether/dev/config/", true, 14},
		{"/tether", true, 15},
		{"/nothing", true, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.path, tt.recursive), func(t *testing.T) {
			p := ssm.NewGetParametersByPathPaginator(client, &ssm.GetParametersByPathInput{
				Path: aws.String(tt.path), Recursive: aws.Bool(tt.recursive), WithDecryption: aws.Bool(true),
			})
			var got []string
			pages := 0
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, prm := range out.Parameters {
					got = append(got, aws.ToString(prm.Name))
				}
			}
			if len(got) != tt.want {
				t.Fatalf("got %d parameters %v, want %d", len(got), got, tt.want)
			}
			if tt.want > 10 && pages < 2 {
				t.Fatalf("%d parameters came in %d page(s), want paging", len(got), pages)
			}
		})
	}

	_, err := client.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("relative")})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationException" {
		t.Fatalf("relative path: err = %v, want ValidationException", err)
	}
}

func TestRejectsUnknownAndUnsigned(t *testing.T) {
	srv := awstest.New(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL(), strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unsigned request: status %d, want 400", resp.StatusCode)
	}

	// An operation outside the table fails loudly rather than answering blank.
	client := secretsmanager.NewFromConfig(srv.AWSConfig())
	_, err = client.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnknownOperationException" {
		t.Fatalf("ListSecrets: err = %v, want UnknownOperationException", err)
	}
}

func TestCreateAndPutSecretValue(t *testing.T) {
	ctx := context.Background()
	srv := awstest.New(t)
	client := secretsmanager.NewFromConfig(srv.AWSConfig())

	// A stack-made secret without a value reads as not found until filled.
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tether/dev/agent-Ab12Cd"
	srv.CreateEmptySecret(arn)
	_, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	var nf *smtypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("get empty secret: %v, want ResourceNotFoundException", err)
	}
	if _, err := client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String("v1")}); err != nil {
		t.Fatalf("put: %v", err)
	}
	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("tether/dev/agent")})
	if err != nil || aws.ToString(out.SecretString) != "v1" {
		t.Fatalf("get after put: %v", err)
	}

	// PutSecretValue needs an existing secret; CreateSecret refuses a second one.
	_, err = client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("nope"), SecretString: aws.String("x")})
	if !errors.As(err, &nf) {
		t.Fatalf("put missing: %v, want ResourceNotFoundException", err)
	}
	if _, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tether/dev/new"), SecretString: aws.String("v2")}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if v, ok := srv.Secret("tether/dev/new"); !ok || v != "v2" {
		t.Fatalf("Secret after create = %q, %v", v, ok)
	}
	_, err = client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tether/dev/new"), SecretString: aws.String("v3")})
	var exists *smtypes.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("create twice: %v, want ResourceExistsException", err)
	}
}
