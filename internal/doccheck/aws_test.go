package doccheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/tetherhq/tether/internal/awstest"
)

// The deployment the documents' aws commands are run against: placeholders
// are filled with these values, and world creates the resources they name.
const (
	deployName = "acme-docs"
	// worldRegion is the example deployment's region in the documents
	// (install.md's acme-docs), which some commands name outright.
	worldRegion = "eu-west-1"
	// releaseHex is the digest (hex) of the release the markers record.
	releaseHex   = "5d1c4be0f2a7b9e3c6d8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f"
	dbInstance   = "tether-acme-docs-1a2b3c4d"
	documentsBkt = "acme-docs-data-documents1a2b3c4d"
	exchangeBkt  = "acme-docs-data-exchange1a2b3c4d"
	jobsQueue    = "acme-docs-data-Jobs1a2b3c4d"
	documentID   = "doc_01JE5Z8Q3V7XK2M4N6P8R0S2T4"
	snapshotID   = "tether-acme-docs-pre-upgrade-20261201t100000z"
	// deletedID is a document deleted after its upload: its latest version
	// is a delete marker, as backup-restore.md's restore finds.
	deletedID = "doc_01JE5Z9A1B2C3D4E5F6G7H8J9K"
	// workerLogs is the worker's log group (the services stack's LogGroups
	// output names it; CloudFormation generates the name).
	workerLogs = "acme-docs-cluster-Logsworker1a2b3c4d"
	// domainName is the deployment's domain.name, whose certificate the
	// services stack requested from ACM.
	domainName = "docs.acme.example"
	dbSubnets  = "acme-docs-network-databasesubnets1a2b3c4d"
)

// placeholders fill what the documents write in angle brackets. A command
// with any other placeholder fails the test, which names it: add it here,
// with a resource world creates.
var placeholders = map[string]string{
	"<name>":        deployName,
	"<hex>":         releaseHex,
	"<account>":     awstest.Account,
	"<region>":      worldRegion,
	"<db-instance>": dbInstance,
	"<bucket>":      documentsBkt,
	"<document-id>": documentID,
	"<snapshot>":    snapshotID,
	"<queue>":       jobsQueue,
	"<domain>":      domainName,
	// The services stack's LogGroups output, second of three.
	"<worker log group>": workerLogs,
	"<log group>":        workerLogs,
	// The vault EFS's automatic backups go to.
	"<vault>": "aws/efs/automatic-backup-vault",
	// moto has no recovery points (motoGaps: backup), so this one is only
	// well formed, for the commands checked as far as the network.
	"<recovery point ARN>": "arn:aws:backup:" + worldRegion + ":" + awstest.Account + ":recovery-point:0b9e5d1c-4be0-4f2a-8b9e-3c6d8f0a1b2c",
	// world returns the identifiers AWS makes up: <certificate ARN>, <key
	// id>, <file system id>, <file system ARN> and <pool id>.
}

// motoGaps are AWS CLI services moto cannot answer for the CLI, each with
// the record that says so. A command of one is checked as far as the CLI
// goes without an answer: it must be well formed and get as far as the
// network (sent to an address where nothing listens).
var motoGaps = map[string]string{
	"cloudwatch":                              "docs/decisions/0007-aws-api-emulator.md: moto 5.2.5 answers the CLI's JSON 1.0 protocol for CloudWatch with HTTP 500",
	"sqs start-message-move-task":             "docs/decisions/0007-aws-api-emulator.md: moto 5.2.5 does not implement StartMessageMoveTask",
	"backup list-recovery-points-by-resource": "moto 5.2.5's AWS Backup has vaults and plans but no recovery points: ListRecoveryPointsByResource is not implemented",
	"backup delete-recovery-point":            "moto 5.2.5's AWS Backup has vaults and plans but no recovery points: DeleteRecoveryPoint is not implemented",
}

// motoGap is the gap a command meets, by its service and operation or by
// its service alone.
func motoGap(service, operation string) (string, bool) {
	if why, ok := motoGaps[service+" "+operation]; ok {
		return why, true
	}
	why, ok := motoGaps[service]
	return why, ok
}

var (
	noneRE        = regexp.MustCompile(`(?m)^(None|\[\]|\s*\|\|\s*)$`)
	placeholderRE = regexp.MustCompile(`<[A-Za-z][A-Za-z0-9 _.…-]*>`)
	// assignOnlyRE is a command that only sets variables: each a plain
	// value, a quoted one, or the output of an aws command.
	assignOnlyRE = regexp.MustCompile(`^` + assignment + `(\s+` + assignment + `)*$`)
	assignment   = `[A-Za-z_][A-Za-z0-9_]*=(\$\(aws\s.*\)|"[^"$]*"|'[^']*'|[^\s;|&$]*)`
	awsLineRE    = regexp.MustCompile(`^(?:(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=\$\()?aws\s+([a-z0-9-]+)\s+([a-z0-9-]*)`)
)

// awsBlock is a code block's aws commands, run together as one script so
// that a variable one sets is there for the next.
type awsBlock struct {
	where    string
	commands []string
	gaps     []string // the commands of a service in motoGaps
	// assignments are the block's variable assignments, which later blocks
	// of the document see as a reader's shell would.
	assignments []string
	// printsQuery is true when an aws command prints what its --query
	// selects, rather than keeping it in a variable.
	printsQuery bool
}

// shellWords are what a block may hold besides aws commands and still be
// run whole, as written: assignments and the shell's own control words.
var shellWords = map[string]bool{"export": true, "while": true, "for": true, "do": true, "done": true,
	"if": true, "then": true, "else": true, "fi": true, "read": true, "echo": true, "printf": true,
	"test": true, "[": true, "case": true, "esac": true, "}": true, "{": true}

func awsBlocks(d document) []awsBlock {
	blocks, _ := split(d.text)
	var out []awsBlock
	for _, b := range blocks {
		switch b.lang {
		case "", "sh", "bash", "shell", "console":
		default:
			continue
		}
		ab := awsBlock{where: fmt.Sprintf("%s:%d", d.path, b.line)}
		whole := true
		var aws []string
		for _, c := range commands(b) {
			text := strings.TrimPrefix(c.text, "export ")
			first := strings.Fields(c.text)[0]
			if assignOnlyRE.MatchString(text) {
				ab.assignments = append(ab.assignments, c.text)
			}
			m := awsLineRE.FindStringSubmatch(c.text + " ")
			if m != nil && strings.Contains(c.text, "--query") && !assignOnlyRE.MatchString(text) {
				ab.printsQuery = true
			}
			switch {
			case m == nil:
				// Anything else (another program, a variable set for one
				// command) is not run, and keeps the block from running whole.
				whole = whole && (shellWords[first] || assignOnlyRE.MatchString(text))
				if assignOnlyRE.MatchString(text) {
					aws = append(aws, c.text)
				}
			case func() bool { _, gap := motoGap(m[1], m[2]); return gap }():
				ab.gaps = append(ab.gaps, c.text)
				whole = false
			default:
				aws = append(aws, c.text)
			}
		}
		if !slices.ContainsFunc(aws, func(c string) bool { return awsLineRE.MatchString(c + " ") }) && len(ab.gaps) == 0 {
			if len(ab.assignments) > 0 {
				out = append(out, awsBlock{where: ab.where, assignments: ab.assignments})
			}
			continue
		}
		if whole {
			// As written, loops and all, prompts taken off.
			for _, l := range b.lines {
				ab.commands = append(ab.commands, strings.TrimPrefix(strings.TrimSpace(l), "$ "))
			}
		} else {
			ab.commands = aws
		}
		out = append(out, ab)
	}
	return out
}

// fill replaces the placeholders, the fixed ones and those world made, and
// names any it does not know.
func fill(command string, made map[string]string) (string, error) {
	for _, m := range []map[string]string{placeholders, made} {
		for k, v := range m {
			command = strings.ReplaceAll(command, k, v)
		}
	}
	if p := placeholderRE.FindString(command); p != "" {
		return "", fmt.Errorf("placeholder %s is not one the test knows: add it to placeholders, with a resource world creates", p)
	}
	if strings.Contains(command, "…") || strings.Contains(command, "...") {
		return "", fmt.Errorf("an elided value (…) cannot be run: write a placeholder such as <name> instead")
	}
	return command, nil
}

// Every aws command a document shows in a code block runs, with its
// placeholders filled in, against the AWS API emulator holding a
// deployment's resources, and succeeds. The AWS CLI is the pinned one in
// tools/venv. Each document gets a fresh emulator, and its blocks run in
// the order written, as a reader would run them.
func TestShownAWSCommandsRun(t *testing.T) {
	t.Parallel()
	venv, err := filepath.Abs(filepath.Join(root, "tools", "venv", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(venv, "aws")); err != nil {
		t.Fatalf("the AWS CLI is not in tools/venv (run scripts/test-deps.sh): %v", err)
	}
	files := readerFiles(t)
	total := 0
	for _, d := range documents(t) {
		blocks := awsBlocks(d)
		runnable := 0
		for _, b := range blocks {
			runnable += len(b.commands) + len(b.gaps)
		}
		if runnable == 0 {
			continue
		}
		// Documents run in parallel (as many at once as -parallel allows),
		// each on an emulator of its own, reset and reused by the next.
		t.Run(d.path, func(t *testing.T) {
			t.Parallel()
			srv := awstest.Start(t)
			made := world(t, srv)
			var env []string
			for _, kv := range srv.Env() {
				// The AWS CLI takes an empty AWS_PROFILE as a profile's name.
				if !strings.HasSuffix(kv, "=") {
					env = append(env, kv)
				}
			}
			// Documents may write the deployment's name, region and account
			// as shell variables, set in the reader's shell.
			env = append(env, "NAME="+deployName, "REGION="+worldRegion, "ACCOUNT="+awstest.Account,
				"AWS_REGION="+worldRegion, "AWS_DEFAULT_REGION="+worldRegion)
			env = append(env, "PATH="+venv+string(os.PathListSeparator)+os.Getenv("PATH"),
				"HOME="+t.TempDir(), "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=")
			// The commands run in a directory of their own, with the files a
			// reader has beside them.
			dir := t.TempDir()
			for name, b := range files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// What earlier blocks set, the reader's shell still has.
			var carried []string
			for _, b := range blocks {
				var script []string
				for _, c := range b.commands {
					filled, err := fill(c, made)
					if err != nil {
						t.Errorf("%s: %q: %v", b.where, c, err)
						continue
					}
					script = append(script, filled)
				}
				before := slices.Clone(carried)
				for _, a := range b.assignments {
					if filled, err := fill(a, made); err == nil {
						carried = append(carried, filled)
					}
				}
				if len(script) == len(b.commands) && len(script) > 0 {
					out, err := runScript(t.Context(), dir, env, append(before, script...))
					switch {
					case err != nil:
						t.Errorf("%s: the aws commands fail against the emulator: %v\n%s\n%s", b.where, err, strings.Join(script, "\n"), out)
					case noneRE.MatchString(out), b.printsQuery && strings.TrimSpace(out) == "":
						// A --query that matched nothing prints None: the
						// command runs, but does not find what the document
						// says it finds.
						t.Errorf("%s: a query found nothing (None, [] or no output) against the emulator's deployment:\n%s\n%s", b.where, strings.Join(script, "\n"), out)
					}
				}
				for _, c := range b.gaps {
					filled, err := fill(c, made)
					if err != nil {
						t.Errorf("%s: %q: %v", b.where, c, err)
						continue
					}
					// Nothing listens on port 9 (discard) of loopback.
					gapEnv := append(env, "AWS_ENDPOINT_URL=http://127.0.0.1:9")
					out, err := runScript(t.Context(), "", gapEnv, append(slices.Clone(before), filled))
					if err == nil || !strings.Contains(out, "Could not connect to the endpoint URL") {
						m := awsLineRE.FindStringSubmatch(c + " ")
						why, _ := motoGap(m[1], m[2])
						t.Errorf("%s: %q (not run against moto: %s) does not get as far as the network: %v\n%s",
							b.where, c, why, err, out)
					}
				}
			}
		})
		total += len(blocks)
	}
	if total == 0 {
		t.Fatal("no document shows an aws command in a code block: the parser missed them")
	}
}

// readerFiles are the files a reader has when the documents' commands name
// them: the renewed certificate for the deployment's domain that
// certificate-renewal.md imports (cert.pem, key.pem, chain.pem; self-signed,
// so it is its own chain).
func readerFiles(t *testing.T) map[string][]byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: domainName},
		DNSNames: []string{domainName}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return map[string][]byte{"cert.pem": certPEM, "chain.pem": certPEM, "key.pem": keyPEM}
}

func runScript(ctx context.Context, dir string, env, script []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The AWS CLI (v1) sends some services' calls in us-east-1 to a fixed
	// host (rds.amazonaws.com) unless --endpoint-url is given, whatever
	// AWS_ENDPOINT_URL says; so the endpoint is given on every call.
	prelude := "set -euo pipefail\n" + `aws() { command aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }` + "\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+strings.Join(script, "\n"))
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// world creates, in the emulator, what a deployment named acme-docs has
// that the documents' commands address: its data and services stacks (a
// database, the documents and exchange buckets, the data key and its
// alias, the jobs queue and its dead-letter queue; the ECS cluster; the
// image parameters), the markers tetherctl writes and docsvc's queue
// settings under /tether/<name>/config/docsvc/, the secrets,
// a document with two versions and a snapshot of the database; and its VPC
// with two of its endpoints. It returns the identifiers the emulator made
// up, by their placeholders.
func world(t *testing.T, srv *awstest.Server) (made map[string]string) {
	t.Helper()
	made = map[string]string{}
	ctx := t.Context()
	cfg := srv.AWSConfig()
	cfg.Region = worldRegion
	cfg.RetryMaxAttempts = 1
	ssmc, sm := ssm.NewFromConfig(cfg), secretsmanager.NewFromConfig(cfg)
	put := func(name, value string) {
		if _, err := ssmc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value),
			Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatalf("world: %v", err)
		}
	}
	for _, p := range []string{"/tether/" + deployName + "/migrated/sha256-" + releaseHex, "/tether/" + deployName + "/verified/agent/sha256-" + releaseHex} {
		put(p, "sha256:"+releaseHex)
	}
	put("/tether/"+deployName+"/state/releases",
		`[{"version":"1.4.0","outcome":"succeeded","docsvc":"sha256:`+releaseHex+`","agent":"sha256:`+releaseHex+`"}]`)
	for _, name := range []string{"license", "ai", "agent-identity"} {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("tether/" + deployName + "/" + name)}); err != nil {
			t.Fatalf("world: %v", err)
		}
	}

	cfn := cloudformation.NewFromConfig(cfg)
	createStack(t, cfn, deployName+"-network", map[string]any{
		"Resources": map[string]any{
			"Vpc": map[string]any{"Type": "AWS::EC2::VPC", "Properties": map[string]any{
				"CidrBlock": "10.40.0.0/16", "EnableDnsHostnames": true, "EnableDnsSupport": true,
				"Tags": []any{map[string]any{"Key": "Name", "Value": deployName + "-network/Vpc"}, map[string]any{"Key": "tether:deployment", "Value": deployName}}}},
			"Isolated": map[string]any{"Type": "AWS::EC2::Subnet", "Properties": map[string]any{
				"VpcId": map[string]any{"Ref": "Vpc"}, "CidrBlock": "10.40.8.0/24", "AvailabilityZone": worldRegion + "a"}},
			"Isolated2": map[string]any{"Type": "AWS::EC2::Subnet", "Properties": map[string]any{
				"VpcId": map[string]any{"Ref": "Vpc"}, "CidrBlock": "10.40.9.0/24", "AvailabilityZone": worldRegion + "b"}},
			"IsolatedRoutes": map[string]any{"Type": "AWS::EC2::RouteTable", "Properties": map[string]any{"VpcId": map[string]any{"Ref": "Vpc"}}},
			"S3": map[string]any{"Type": "AWS::EC2::VPCEndpoint", "Properties": map[string]any{
				"VpcId": map[string]any{"Ref": "Vpc"}, "ServiceName": "com.amazonaws." + worldRegion + ".s3", "VpcEndpointType": "Gateway",
				"RouteTableIds": []any{map[string]any{"Ref": "IsolatedRoutes"}}}},
			"Sqs": map[string]any{"Type": "AWS::EC2::VPCEndpoint", "Properties": map[string]any{
				"VpcId": map[string]any{"Ref": "Vpc"}, "ServiceName": "com.amazonaws." + worldRegion + ".sqs", "VpcEndpointType": "Interface",
				"PrivateDnsEnabled": true, "SubnetIds": []any{map[string]any{"Ref": "Isolated"}}, "RouteTableIds": []any{}}},
		},
		"Outputs": map[string]any{"IsolatedSubnets": map[string]any{"Value": map[string]any{
			"Fn::Join": []any{",", []any{map[string]any{"Ref": "Isolated"}, map[string]any{"Ref": "Isolated2"}}}}}},
	}, nil)
	// moto resolves an instance's DBSubnetGroupName only to a subnet group
	// of its own stack, so the data stack takes the network's subnets.
	network, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(deployName + "-network")})
	if err != nil || len(network.Stacks) != 1 || len(network.Stacks[0].Outputs) != 1 {
		t.Fatalf("world: the network stack's subnets: %v", err)
	}
	subnets := aws.ToString(network.Stacks[0].Outputs[0].OutputValue)
	createStack(t, cfn, deployName+"-data", map[string]any{
		"Parameters": map[string]any{"Subnets": map[string]any{"Type": "CommaDelimitedList"}},
		"Resources": map[string]any{
			"DatabaseSubnets": map[string]any{"Type": "AWS::RDS::DBSubnetGroup", "Properties": map[string]any{
				"DBSubnetGroupName": dbSubnets, "DBSubnetGroupDescription": "Tether " + deployName + ": the database's isolated subnets",
				"SubnetIds": map[string]any{"Ref": "Subnets"}}},
			"DataKey": map[string]any{"Type": "AWS::KMS::Key", "Properties": map[string]any{
				"EnableKeyRotation": true, "Description": "Tether " + deployName + ": documents, job messages and database storage",
				// moto fails CreateStack (HTTP 500) on a key without a policy.
				"KeyPolicy": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Allow",
					"Principal": map[string]any{"AWS": "arn:aws:iam::" + awstest.Account + ":root"}, "Action": "kms:*", "Resource": "*"}}}}},
			"DataKeyAlias": map[string]any{"Type": "AWS::KMS::Alias", "Properties": map[string]any{"AliasName": "alias/tether/" + deployName + "/data", "TargetKeyId": map[string]any{"Ref": "DataKey"}}},
			"Documents": map[string]any{"Type": "AWS::S3::Bucket", "Properties": map[string]any{
				"BucketName": documentsBkt, "VersioningConfiguration": map[string]any{"Status": "Enabled"}}},
			"Exchange": map[string]any{"Type": "AWS::S3::Bucket", "Properties": map[string]any{
				"BucketName": exchangeBkt, "VersioningConfiguration": map[string]any{"Status": "Enabled"}}},
			"AgentState": map[string]any{"Type": "AWS::EFS::FileSystem", "Properties": map[string]any{
				"Encrypted": true, "BackupPolicy": map[string]any{"Status": "ENABLED"}}},
			"JobsDeadLetter": map[string]any{"Type": "AWS::SQS::Queue", "Properties": map[string]any{
				"QueueName": jobsQueue + "-dead-letter", "MessageRetentionPeriod": 1209600}},
			"Jobs": map[string]any{"Type": "AWS::SQS::Queue", "Properties": map[string]any{
				"QueueName": jobsQueue, "VisibilityTimeout": 60,
				"RedrivePolicy": map[string]any{"deadLetterTargetArn": map[string]any{"Fn::GetAtt": []any{"JobsDeadLetter", "Arn"}}, "maxReceiveCount": 5}}},
			"Database": map[string]any{"Type": "AWS::RDS::DBInstance", "Properties": map[string]any{
				"DBInstanceIdentifier": dbInstance, "Engine": "postgres", "EngineVersion": "17.9",
				"DBInstanceClass": "db.t4g.medium", "AllocatedStorage": "50", "DBSubnetGroupName": map[string]any{"Ref": "DatabaseSubnets"}, "MasterUsername": "tether",
				"MasterUserPassword": "not-a-secret-moto-only", "BackupRetentionPeriod": 14, "StorageEncrypted": true}},
		},
		"Outputs": map[string]any{"ExchangeBucketName": map[string]any{"Value": map[string]any{"Ref": "Exchange"}}},
	}, map[string]string{"Subnets": subnets})
	marker := func(kind string) string {
		return "/tether/" + deployName + "/" + kind + "/sha256-" + releaseHex
	}
	data, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(deployName + "-data")})
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	for _, r := range data.StackResources {
		id := aws.ToString(r.PhysicalResourceId)
		switch aws.ToString(r.LogicalResourceId) {
		case "AgentState":
			made["<file system id>"] = id
			made["<file system ARN>"] = "arn:aws:elasticfilesystem:" + worldRegion + ":" + awstest.Account + ":file-system/" + id
		case "DataKey":
			made["<key id>"] = id
		}
	}
	createStack(t, cfn, deployName+"-images", map[string]any{
		"Resources": map[string]any{
			"Docsvc": map[string]any{"Type": "AWS::ECR::Repository", "Properties": map[string]any{"RepositoryName": deployName + "/docsvc"}},
			"Agent":  map[string]any{"Type": "AWS::ECR::Repository", "Properties": map[string]any{"RepositoryName": deployName + "/agent"}},
		},
	}, nil)
	createStack(t, cfn, deployName+"-cluster", map[string]any{
		"Resources": map[string]any{"Cluster": map[string]any{"Type": "AWS::ECS::Cluster", "Properties": map[string]any{"ClusterName": "tether-" + deployName}}},
	}, nil)
	createStack(t, cfn, deployName+"-services", map[string]any{
		"Parameters": map[string]any{
			"DocsvcImage": map[string]any{"Type": "AWS::SSM::Parameter::Value<String>", "Default": marker("migrated")},
			"AgentImage":  map[string]any{"Type": "AWS::SSM::Parameter::Value<String>", "Default": marker("verified/agent")},
		},
		"Resources": map[string]any{
			"Release": map[string]any{"Type": "AWS::SSM::Parameter", "Properties": map[string]any{
				"Name": "/tether/" + deployName + "/services/release", "Type": "String",
				"Value": map[string]any{"Fn::Join": []any{" ", []any{map[string]any{"Ref": "DocsvcImage"}, map[string]any{"Ref": "AgentImage"}}}}}},
		},
	}, map[string]string{"DocsvcImage": marker("migrated"), "AgentImage": marker("verified/agent")})

	// The docsvc configuration the cluster stack writes, as far as the
	// documents' commands read it.
	sqsc := sqs.NewFromConfig(cfg)
	for variable, queue := range map[string]string{"DOCSVC_QUEUE_URL": jobsQueue, "DOCSVC_DLQ_URL": jobsQueue + "-dead-letter"} {
		q, err := sqsc.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(queue)})
		if err != nil {
			t.Fatalf("world: %v", err)
		}
		put("/tether/"+deployName+"/config/docsvc/"+variable, aws.ToString(q.QueueUrl))
	}

	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	// moto 5.2.5 creates AWS::S3::Bucket without its VersioningConfiguration
	// (the stack's buckets would keep one version, "null"), so versioning is
	// turned on as the data stack's template says.
	for _, b := range []string{documentsBkt, exchangeBkt} {
		if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatalf("world: %v", err)
		}
	}
	for _, body := range []string{"first version", "second version"} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(documentsBkt),
			Key: aws.String("documents/" + documentID), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("world: %v", err)
		}
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(documentsBkt),
		Key: aws.String("documents/" + deletedID), Body: strings.NewReader("deleted later")}); err != nil {
		t.Fatalf("world: %v", err)
	}
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(documentsBkt),
		Key: aws.String("documents/" + deletedID)}); err != nil {
		t.Fatalf("world: %v", err)
	}
	if _, err := cloudwatchlogs.NewFromConfig(cfg).CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{
		LogGroupName: aws.String(workerLogs)}); err != nil {
		t.Fatalf("world: %v", err)
	}
	// The certificate the services stack requested for domain.name.
	cert, err := acm.NewFromConfig(cfg).RequestCertificate(ctx, &acm.RequestCertificateInput{
		DomainName: aws.String(domainName), ValidationMethod: acmtypes.ValidationMethodDns})
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	made["<certificate ARN>"] = aws.ToString(cert.CertificateArn)
	// The user pool of auth.provider cognito (moto has no CloudFormation
	// resource for it).
	pool, err := cognitoidentityprovider.NewFromConfig(cfg).CreateUserPool(ctx, &cognitoidentityprovider.CreateUserPoolInput{
		PoolName: aws.String("tether-" + deployName)})
	if err != nil {
		t.Fatalf("world: %v", err)
	}
	made["<pool id>"] = aws.ToString(pool.UserPool.Id)
	if _, err := rds.NewFromConfig(cfg).CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{
		DBInstanceIdentifier: aws.String(dbInstance), DBSnapshotIdentifier: aws.String(snapshotID)}); err != nil {
		t.Fatalf("world: %v", err)
	}
	return made
}

func createStack(t *testing.T, cfn *cloudformation.Client, name string, template map[string]any, params map[string]string) {
	t.Helper()
	body, err := json.Marshal(template)
	if err != nil {
		t.Fatal(err)
	}
	in := &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(string(body)),
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam}}
	for k, v := range params {
		in.Parameters = append(in.Parameters, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	if _, err := cfn.CreateStack(t.Context(), in); err != nil {
		t.Fatalf("world: create stack %s: %v", name, err)
	}
	out, err := cfn.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil || len(out.Stacks) != 1 || out.Stacks[0].StackStatus != cfntypes.StackStatusCreateComplete {
		t.Fatalf("world: stack %s not created: %v %+v", name, err, out)
	}
}

// inlineAWSRE finds an aws command quoted in prose: a code span starting
// with aws and a service.
var (
	inlineAWSRE = regexp.MustCompile(`^aws [a-z0-9-]+( |$)`)
	fileArgRE   = regexp.MustCompile(`file://(\S+)`)
	// localPathRE is a local path argument (aws s3 sync ./repo …), which
	// the CLI looks for before it sends anything.
	localPathRE = regexp.MustCompile(`(?:^|\s)\./([^\s'"]+)`)
	// shellVarRE is a variable of the reader's shell ($DB, "$B"), set by a
	// block the prose refers to.
	shellVarRE = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
)

// Every aws command quoted in prose (a code span, often a fragment such as
// `aws kms list-keys` or an operation named without its arguments) names a
// service, an operation and options the pinned AWS CLI knows, with values
// of the right kind. These are not run: they are checked as far as the CLI
// goes before it sends anything, against an address where nothing listens.
func TestInlineAWSCommandsParse(t *testing.T) {
	t.Parallel()
	venv, err := filepath.Abs(filepath.Join(root, "tools", "venv", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range documents(t) {
		_, prose := split(d.text)
		for _, s := range spans(prose) {
			if !inlineAWSRE.MatchString(s.text) || strings.HasPrefix(s.text, "aws configure") {
				continue // configure asks questions and calls nothing
			}
			if _, ok := seen[s.text]; !ok {
				seen[s.text] = fmt.Sprintf("%s:%d", d.path, s.line)
			}
		}
	}
	if len(seen) < 5 {
		t.Fatalf("found only %d aws commands in prose: the parser missed them", len(seen))
	}
	env := []string{"PATH=" + venv + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=" + worldRegion,
		"AWS_MAX_ATTEMPTS=1", "AWS_PAGER=", "AWS_ENDPOINT_URL=http://127.0.0.1:9"}
	// Values are not checked, only their kind: any placeholder (or shell
	// variable) will do, and a count is a number.
	values := strings.NewReplacer("…", "x", " N ", " 2 ")
	type result struct {
		text, out string
	}
	sem := make(chan struct{}, 2)
	results := make(chan result)
	for text := range seen {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := placeholderRE.ReplaceAllString(values.Replace(text+" "), "placeholder")
			cmd = shellVarRE.ReplaceAllString(cmd, "placeholder")
			// The CLI reads a file:// value before it sends anything.
			dir := t.TempDir()
			for _, m := range fileArgRE.FindAllStringSubmatch(cmd, -1) {
				if err := os.WriteFile(filepath.Join(dir, filepath.Base(m[1])), []byte("{}"), 0o600); err != nil {
					t.Error(err)
				}
			}
			for _, m := range localPathRE.FindAllStringSubmatch(cmd, -1) {
				if !filepath.IsLocal(m[1]) {
					t.Errorf("%s: `%s`: %s leaves the directory it is run from", seen[text], text, m[1])
					continue
				}
				if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(m[1])), 0o700); err != nil {
					t.Error(err)
				}
			}
			out, _ := runScript(t.Context(), dir, env, []string{cmd})
			results <- result{text, out}
		}()
	}
	for range seen {
		r := <-results
		if !strings.Contains(r.out, "Could not connect to the endpoint URL") &&
			!strings.Contains(r.out, "the following arguments are required") {
			t.Errorf("%s: `%s` is not an aws command the CLI accepts:\n%s", seen[r.text], r.text, r.out)
		}
	}
}
