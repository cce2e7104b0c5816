package ctl

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// Storage growth in tetherctl status (docs/runbooks/storage-growth.md): the
// documents bucket's size and the database's free storage, from the
// metrics S3 and RDS publish to CloudWatch, and the database's allocated
// size from RDS. Reading them needs no access to a document.

// storageMetricWindow is how far back status looks: S3 publishes a
// bucket's size once a day, RDS its free storage every minute.
const (
	bucketMetricWindow   = 3 * 24 * time.Hour
	databaseMetricWindow = 15 * time.Minute
)

// documentsLogicalID is the data stack's documents bucket construct
// (deploy/cdk/stacks/data.go).
const documentsLogicalID = "Documents"

type storageState struct {
	// DocumentsBucket and its size; nil when S3 published none in the
	// last bucketMetricWindow (a new bucket has none for a day).
	DocumentsBucket string `json:"documents_bucket,omitempty"`
	DocumentsBytes  *int64 `json:"documents_bytes,omitempty"`
	// Database is the RDS instance; its allocated and maximum storage
	// (storage autoscaling's ceiling) in GiB, and its free storage.
	Database          string `json:"database,omitempty"`
	AllocatedGiB      int32  `json:"allocated_gib,omitempty"`
	MaxAllocatedGiB   int32  `json:"max_allocated_gib,omitempty"`
	DatabaseFreeBytes *int64 `json:"database_free_bytes,omitempty"`
	Error             string `json:"error,omitempty"`
}

// readStorage finds the data stack's documents bucket and database and
// reads their sizes. Nil when the data stack is not deployed.
func readStorage(ctx context.Context, a *awsSession, dc *deployconfig.Config, timeout time.Duration, now time.Time) *storageState {
	st := &storageState{DocumentsBucket: dc.Adopt.DocumentsBucket}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := a.CloudFormation().DescribeStackResources(cctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(dc.Name + "-data")})
	if isStackMissing(err) {
		return nil
	}
	if err != nil {
		st.Error = "CloudFormation DescribeStackResources: " + describeAWSError(err)
		return st
	}
	for _, r := range out.StackResources {
		switch aws.ToString(r.ResourceType) {
		case "AWS::S3::Bucket":
			if isCDKLogicalID(aws.ToString(r.LogicalResourceId), documentsLogicalID) {
				st.DocumentsBucket = aws.ToString(r.PhysicalResourceId)
			}
		case "AWS::RDS::DBInstance":
			st.Database = aws.ToString(r.PhysicalResourceId)
		}
	}
	var errs []string
	if st.Database != "" {
		db, err := describeDatabase(cctx, a.RDS(), st.Database)
		switch {
		case err != nil:
			errs = append(errs, "RDS DescribeDBInstances: "+describeAWSError(err))
		case db != nil:
			st.AllocatedGiB = aws.ToInt32(db.AllocatedStorage)
			st.MaxAllocatedGiB = aws.ToInt32(db.MaxAllocatedStorage)
		}
	}
	queries := map[string]cwtypes.MetricStat{}
	if st.DocumentsBucket != "" {
		queries["documents"] = cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/S3"), MetricName: aws.String("BucketSizeBytes"), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("BucketName"), Value: aws.String(st.DocumentsBucket)},
				{Name: aws.String("StorageType"), Value: aws.String("StandardStorage")}}},
			Period: aws.Int32(86400), Stat: aws.String("Maximum"),
		}
	}
	if st.Database != "" {
		queries["dbfree"] = cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/RDS"), MetricName: aws.String("FreeStorageSpace"), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("DBInstanceIdentifier"), Value: aws.String(st.Database)}}},
			Period: aws.Int32(60), Stat: aws.String("Minimum"),
		}
	}
	// The two windows differ, so one request each.
	for id, q := range queries {
		window := databaseMetricWindow
		if id == "documents" {
			window = bucketMetricWindow
		}
		vals, err := latestMetrics(cctx, a.cloudWatchClient(), []cwtypes.MetricDataQuery{{Id: aws.String(id), MetricStat: &q}}, now.Add(-window), now)
		if err != nil {
			errs = append(errs, "CloudWatch GetMetricData: "+describeAWSError(err))
			continue
		}
		if v, ok := vals[id]; ok {
			n := int64(v)
			if id == "documents" {
				st.DocumentsBytes = &n
			} else {
				st.DatabaseFreeBytes = &n
			}
		}
	}
	if len(errs) > 0 {
		st.Error = errs[0]
	}
	return st
}

// latestMetrics runs GetMetricData and returns each query's newest value;
// a query with no data in the window is absent.
func latestMetrics(ctx context.Context, cw *cloudwatch.Client, queries []cwtypes.MetricDataQuery, start, end time.Time) (map[string]float64, error) {
	out := map[string]float64{}
	newest := map[string]time.Time{}
	p := cloudwatch.NewGetMetricDataPaginator(cw, &cloudwatch.GetMetricDataInput{
		MetricDataQueries: queries, StartTime: aws.Time(start), EndTime: aws.Time(end),
		ScanBy: cwtypes.ScanByTimestampDescending,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.MetricDataResults {
			id := aws.ToString(r.Id)
			for k, v := range r.Values {
				// Asked newest first; checked, as an emulator may not sort.
				var ts time.Time
				if k < len(r.Timestamps) {
					ts = r.Timestamps[k]
				}
				if _, seen := out[id]; !seen || ts.After(newest[id]) {
					out[id], newest[id] = v, ts
				}
			}
		}
	}
	return out, nil
}

const gib = 1 << 30

// storageWarnings compares what status read with deployment.yaml's
// observability.thresholds, the values the services stack's alarms fire
// at. A warning does not make the deployment unhealthy: the alarm, once it
// fires, does.
func storageWarnings(r *statusReport, th deployconfig.Thresholds, initialGiB int) []string {
	var w []string
	for _, q := range r.Queues {
		switch {
		case q.Role == "jobs" && q.OldestAgeSeconds != nil && *q.OldestAgeSeconds >= float64(th.QueueAgeMinutes*60):
			w = append(w, fmt.Sprintf("the oldest job has waited %s, at or past observability.thresholds.queue_age_minutes (%d): see docs/runbooks/scaling.md",
				time.Duration(*q.OldestAgeSeconds*float64(time.Second)).Round(time.Second), th.QueueAgeMinutes))
		case q.Role == "dead-letter" && q.Visible != nil && *q.Visible >= int64(th.DeadLetters):
			w = append(w, fmt.Sprintf("%d jobs are in the dead-letter queue, at or past observability.thresholds.dead_letters (%d): see docs/runbooks/storage-growth.md",
				*q.Visible, th.DeadLetters))
		}
	}
	s := r.Storage
	if s == nil {
		return w
	}
	if s.DatabaseFreeBytes != nil {
		limit := float64(initialGiB) * gib * float64(th.DatabaseFreePercent) / 100
		if float64(*s.DatabaseFreeBytes) <= limit {
			w = append(w, fmt.Sprintf("the database has %s free, at or below observability.thresholds.database_free_percent (%d%% of %d GiB): see docs/runbooks/storage-growth.md",
				gibText(*s.DatabaseFreeBytes), th.DatabaseFreePercent, initialGiB))
		}
	}
	if s.DocumentsBytes != nil && *s.DocumentsBytes >= int64(th.DocumentsGiB)*gib {
		w = append(w, fmt.Sprintf("the documents bucket holds %s, at or past observability.thresholds.documents_gib (%d): see docs/runbooks/storage-growth.md",
			gibText(*s.DocumentsBytes), th.DocumentsGiB))
	}
	return w
}

func gibText(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/gib) }

// storageLines are the status text's storage rows.
func storageLines(s *storageState, window time.Duration) []string {
	if s == nil {
		return []string{"not deployed"}
	}
	var lines []string
	if s.Error != "" {
		lines = append(lines, s.Error)
	}
	switch {
	case s.DocumentsBucket == "":
		lines = append(lines, "documents   the data stack has no documents bucket")
	case s.DocumentsBytes == nil:
		lines = append(lines, fmt.Sprintf("documents   %s: size unknown (S3 published none in the last %s; it does once a day)", s.DocumentsBucket, window))
	default:
		lines = append(lines, fmt.Sprintf("documents   %s: %s", s.DocumentsBucket, gibText(*s.DocumentsBytes)))
	}
	if s.Database != "" {
		line := fmt.Sprintf("database    %s: %d GiB allocated", s.Database, s.AllocatedGiB)
		if s.MaxAllocatedGiB > 0 {
			line += fmt.Sprintf(" (grows to %d GiB)", s.MaxAllocatedGiB)
		}
		if s.DatabaseFreeBytes != nil {
			line += ", " + gibText(*s.DatabaseFreeBytes) + " free"
		} else {
			line += ", free storage unknown (no RDS metric in the last " + databaseMetricWindow.String() + ")"
		}
		lines = append(lines, line)
	}
	return lines
}
