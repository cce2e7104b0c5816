package ctl

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// The release steps read outside input from AWS: the stacks' outputs and
// parameters, ECR's token and digests, the build's source location. Each
// reader refuses what it cannot use with an error, and never panics.

func FuzzMigratePlanFrom(f *testing.F) {
	d := "sha256:" + strings.Repeat("ab", 32)
	f.Add(d, d, "subnet-1,subnet-2", "tether-acme-docs", "migrate")
	f.Add(d, "", ",, ,", "", "")
	f.Add(d, "sha256:"+strings.Repeat("cd", 32), "subnet-1", "c", "m")
	f.Fuzz(func(t *testing.T, digest, param, subnets, cluster, container string) {
		st := stackInfo{Name: "acme-docs-cluster", Parameters: map[string]string{"MigrateImageDigest": param}, Outputs: map[string]string{
			"ClusterName": cluster, "MigrateTaskDefinitionArn": "arn:td", "MigrateSecurityGroupId": "sg-1",
			"MigrateSubnets": subnets, "MigrateLogGroupName": "/lg", "MigrateContainerName": container,
		}}
		p, err := migratePlanFrom(st, digest)
		if err != nil {
			if !strings.Contains(err.Error(), "acme-docs-cluster") || !strings.Contains(err.Error(), "tetherctl deploy") {
				t.Fatalf("error names neither the stack nor the fix: %v", err)
			}
			return
		}
		if param != digest || p.cluster != cluster || cluster == "" || container == "" || p.container != container || len(p.subnets) == 0 {
			t.Fatalf("accepted %q %q %q: %+v", param, subnets, cluster, p)
		}
		for _, s := range p.subnets {
			if s == "" || strings.TrimSpace(s) != s || strings.Contains(s, ",") {
				t.Fatalf("subnet %q from %q", s, subnets)
			}
		}
	})
}

func FuzzParseS3Location(f *testing.F) {
	for _, s := range []string{"s3://acme-docs-build-sources/source/bundle.zip", "s3://b/k", "s3://bucket/", "https://x/y", "s3://--endpoint-url/k", "s3://ab/k\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		bucket, key, err := parseS3Location(loc)
		if err != nil {
			if bucket != "" || key != "" || !strings.Contains(err.Error(), "s3://BUCKET/KEY") {
				t.Fatalf("%q: %q %q %v", loc, bucket, key, err)
			}
			return
		}
		if "s3://"+bucket+"/"+key != loc || strings.HasPrefix(bucket, "-") || strings.HasPrefix(key, "-") || key == "" || strings.ContainsAny(key, "\n\r\x00") {
			t.Fatalf("%q split as %q %q", loc, bucket, key)
		}
	})
}

func FuzzParseECRToken(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte("AWS:password")))
	f.Add("not base64")
	f.Add(base64.StdEncoding.EncodeToString([]byte("nocolon")))
	f.Add(base64.StdEncoding.EncodeToString([]byte(":")))
	f.Fuzz(func(t *testing.T, token string) {
		user, pass, err := parseECRToken(token)
		if err != nil {
			if err.Error() != "the token ECR returned is not base64 of user:password" {
				t.Fatalf("the error says more than the fixed text (it must never quote the token): %v", err)
			}
			return
		}
		raw, _ := base64.StdEncoding.DecodeString(token)
		if user == "" || pass == "" || user+":"+pass != string(raw) {
			t.Fatalf("%q: %q %q", token, user, pass)
		}
	})
}

func FuzzBuiltDigest(f *testing.F) {
	d := "sha256:" + strings.Repeat("ab", 32)
	f.Add(d, "", d, "")
	f.Add(d, d, "", "")
	f.Add("sha256:zz", "", d, "x")
	f.Fuzz(func(t *testing.T, first, want, second, third string) {
		var details []ecrtypes.ImageDetail
		for _, s := range []string{first, second, third} {
			if s != "" {
				details = append(details, ecrtypes.ImageDetail{ImageDigest: aws.String(s)})
			}
		}
		got, err := builtDigest("acme-docs/docsvc", "1.4.0", want, details)
		if err != nil {
			if got != "" || !strings.Contains(err.Error(), "acme-docs/docsvc") {
				t.Fatalf("%q, %v", got, err)
			}
			return
		}
		if len(details) != 1 || got != aws.ToString(details[0].ImageDigest) || checkDigest("d", got) != nil || (want != "" && got != want) {
			t.Fatalf("accepted %q from %+v (want %q)", got, details, want)
		}
	})
}
