package ctl_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tetherhq/tether/internal/awstest"
)

// storageDeployment is healthyDeployment's stacks with a data stack that
// has a database too, and the metrics S3 and RDS publish: the documents
// bucket holds docBytes, the database has freeBytes free. deployment.yaml
// keeps the default thresholds (1024 GiB of documents; 10% of 50 GiB free;
// 15 minutes of queue age; 1 dead letter).
func storageDeployment(t *testing.T, docBytes, freeBytes, oldestAge, deadLetters float64) (*awstest.Server, invocation, string) {
	t.Helper()
	srv := awstest.Start(t)
	v := newVendor(t)
	config := defaultDeployment(v).write(t)
	deployStacks(t, srv, "acme-docs", "network", "images", "cluster", "services")
	data := strings.Replace(stackTemplates["data"], `"Scratch":`, `"DatabaseB269D8BB":{"Type":"AWS::RDS::DBInstance","Properties":{"DBInstanceIdentifier":"acme-docs-db","DBInstanceClass":"db.t4g.micro","Engine":"postgres","AllocatedStorage":"50","MaxAllocatedStorage":200,"MasterUsername":"tether","MasterUserPassword":"not-a-secret-1"}},"Scratch":`, 1)
	_, err := cloudformation.NewFromConfig(srv.AWSConfig()).CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName: aws.String("acme-docs-data"), TemplateBody: aws.String(strings.ReplaceAll(data, "NAME", "acme-docs")),
	})
	if err != nil {
		t.Fatal(err)
	}
	runServices(t, srv, "acme-docs", 0)
	srv.CreateSecret(t, "tether/acme-docs/license", v.validLicense(t))
	jobs := stackResource(t, srv, "acme-docs-data", "JobsDF1CC2D4")
	dlq := stackResource(t, srv, "acme-docs-data", "JobsDeadLetter4FD84C94")
	putQueueMetric(t, srv, jobs[strings.LastIndex(jobs, "/")+1:], "ApproximateAgeOfOldestMessage", oldestAge)
	putQueueMetric(t, srv, dlq[strings.LastIndex(dlq, "/")+1:], "ApproximateNumberOfMessagesVisible", deadLetters)
	bucket := stackResource(t, srv, "acme-docs-data", "Documents7E5B2978")
	putMetric(t, srv, "AWS/S3", "BucketSizeBytes", docBytes, time.Now().Add(-20*time.Hour), "BucketName", bucket, "StorageType", "StandardStorage")
	// An older, larger value: status shows the newest.
	putMetric(t, srv, "AWS/S3", "BucketSizeBytes", docBytes*3, time.Now().Add(-44*time.Hour), "BucketName", bucket, "StorageType", "StandardStorage")
	putMetric(t, srv, "AWS/RDS", "FreeStorageSpace", freeBytes, time.Now().Add(-2*time.Minute), "DBInstanceIdentifier", "acme-docs-db")
	return srv, invocation{env: envOf(srv.Env())}, config
}

func putMetric(t *testing.T, srv *awstest.Server, namespace, name string, value float64, at time.Time, dims ...string) {
	t.Helper()
	var ds []cwtypes.Dimension
	for i := 0; i+1 < len(dims); i += 2 {
		ds = append(ds, cwtypes.Dimension{Name: aws.String(dims[i]), Value: aws.String(dims[i+1])})
	}
	_, err := cloudwatch.NewFromConfig(srv.AWSConfig(), queryProtocol).PutMetricData(context.Background(), &cloudwatch.PutMetricDataInput{
		Namespace:  aws.String(namespace),
		MetricData: []cwtypes.MetricDatum{{MetricName: aws.String(name), Value: aws.Float64(value), Timestamp: aws.Time(at), Dimensions: ds}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

type storageJSON struct {
	Storage struct {
		DocumentsBucket   string `json:"documents_bucket"`
		DocumentsBytes    *int64 `json:"documents_bytes"`
		Database          string `json:"database"`
		AllocatedGiB      int32  `json:"allocated_gib"`
		MaxAllocatedGiB   int32  `json:"max_allocated_gib"`
		DatabaseFreeBytes *int64 `json:"database_free_bytes"`
		Error             string `json:"error"`
	} `json:"storage"`
	Warnings []string `json:"warnings"`
	Healthy  bool     `json:"healthy"`
}

// Storage growth: status shows the documents bucket's size and the
// database's storage, and warns at deployment.yaml's thresholds without
// failing (the alarms do that once they fire).
func TestStatusStorage(t *testing.T) {
	t.Parallel()
	t.Run("below the thresholds", func(t *testing.T) {
		t.Parallel()
		_, in, config := storageDeployment(t, 3*(1<<30), 30*(1<<30), 42, 0)
		out := in.run(testContext(t), "status", "--config", config, "--output", "json")
		if out.err != nil {
			t.Fatalf("status: %v\n%s", out.all(), out.err)
		}
		var s storageJSON
		if err := json.Unmarshal([]byte(out.stdout), &s); err != nil {
			t.Fatal(err)
		}
		st := s.Storage
		if st.DocumentsBytes == nil || *st.DocumentsBytes != 3*(1<<30) || st.Database != "acme-docs-db" || st.AllocatedGiB != 50 ||
			st.DatabaseFreeBytes == nil || *st.DatabaseFreeBytes != 30*(1<<30) || st.Error != "" || !strings.Contains(st.DocumentsBucket, "documents") {
			t.Errorf("storage: %+v", st)
		}
		if moto := st.MaxAllocatedGiB; moto != 200 && moto != 0 {
			t.Errorf("max allocated = %d", moto)
		}
		if len(s.Warnings) != 0 || !s.Healthy {
			t.Errorf("warnings below the thresholds: %v", s.Warnings)
		}
		text := in.run(testContext(t), "status", "--config", config)
		for _, want := range [][2]string{{"storage   documents", "3.0 GiB"}, {"database    acme-docs-db", "50 GiB allocated"}, {"acme-docs-db", "30.0 GiB free"}} {
			if !hasLine(text.stdout, want[0], want[1]) {
				t.Errorf("no line shows %q then %q:\n%s", want[0], want[1], text.stdout)
			}
		}
	})
	t.Run("at the thresholds", func(t *testing.T) {
		t.Parallel()
		_, in, config := storageDeployment(t, 1024*(1<<30), 5*(1<<30), 900, 1)
		out := in.run(testContext(t), "status", "--config", config, "--output", "json")
		if out.err != nil {
			t.Fatalf("warnings alone made status fail: %v\n%s", out.err, out.all())
		}
		var s storageJSON
		if err := json.Unmarshal([]byte(out.stdout), &s); err != nil {
			t.Fatal(err)
		}
		warnings := strings.Join(s.Warnings, "\n")
		for _, want := range []string{
			"the oldest job has waited 15m0s, at or past observability.thresholds.queue_age_minutes (15)",
			"1 jobs are in the dead-letter queue, at or past observability.thresholds.dead_letters (1)",
			"the database has 5.0 GiB free, at or below observability.thresholds.database_free_percent (10% of 50 GiB)",
			"the documents bucket holds 1024.0 GiB, at or past observability.thresholds.documents_gib (1024)",
		} {
			if !strings.Contains(warnings, want) {
				t.Errorf("no warning %q in:\n%s", want, warnings)
			}
		}
		if len(s.Warnings) != 4 {
			t.Errorf("want 4 warnings, got %d", len(s.Warnings))
		}
		text := in.run(testContext(t), "status", "--config", config)
		if !strings.Contains(text.stdout, "4 warnings:") || text.err != nil {
			t.Errorf("the text shows no warnings: %v\n%s", text.err, text.stdout)
		}
	})
}
