package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherhq/tether/internal/deployconfig"
)

// The stacks deploy/cdk synthesizes (its snapshot templates) have what
// status and destroy read by name: the queues' logical IDs, the image
// parameters, the cluster, service and alarm names, and the retained
// resources destroy promises to keep.
func TestStacksHaveWhatStatusAndDestroyRead(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"acme-docs", "globex-prod"} {
		dc := &deployconfig.Config{Name: name}
		data := readTemplate(t, name+"-data")
		var jobs, dlq int
		for id, r := range data.Resources {
			if r.Type != "AWS::SQS::Queue" {
				continue
			}
			switch {
			case isCDKLogicalID(id, deadLetterQueueLogicalID):
				dlq++
			case isCDKLogicalID(id, jobsQueueLogicalID):
				jobs++
			}
		}
		if jobs != 1 || dlq != 1 {
			t.Errorf("%s-data: %d jobs and %d dead-letter queues by logical ID, want one each", name, jobs, dlq)
		}
		services := readTemplate(t, name+"-services")
		for _, p := range []string{"DocsvcImage", "AgentImage"} {
			if _, ok := services.Parameters[p]; !ok {
				t.Errorf("%s-services has no %s parameter", name, p)
			}
		}
		raw := func(stack string) string {
			b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "cdk", "testdata", stack+".template.json"))
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		if !strings.Contains(raw(name+"-cluster"), `"ClusterName": "`+ecsClusterName(dc)+`"`) {
			t.Errorf("%s-cluster does not name its cluster %s", name, ecsClusterName(dc))
		}
		svc := raw(name + "-services")
		for _, f := range serviceFamilies {
			if !strings.Contains(svc, `"ServiceName": "`+ecsServiceName(dc, f)+`"`) {
				t.Errorf("%s-services has no service %s", name, ecsServiceName(dc, f))
			}
		}
		if !strings.Contains(svc, `"AlarmName": "`+alarmPrefix(dc)) {
			t.Errorf("%s-services has no alarm named %s…", name, alarmPrefix(dc))
		}
		kept, err := retentionPolicies([]byte(raw(name + "-data")))
		if err != nil {
			t.Fatal(err)
		}
		types := map[string]bool{}
		for id := range kept {
			types[data.Resources[id].Type] = true
		}
		for _, want := range []string{"AWS::S3::Bucket", "AWS::KMS::Key", "AWS::RDS::DBInstance", "AWS::EFS::FileSystem", "AWS::SecretsManager::Secret"} {
			if !types[want] {
				t.Errorf("%s-data retains no %s, which destroy says it keeps", name, want)
			}
		}
		// Every adopt setting gets its value from a retained resource.
		plan := &destroyPlan{Account: "012345678901", Region: "eu-west-1"}
		for id, policy := range kept {
			plan.Retained = append(plan.Retained, retainedResource{LogicalID: id, Type: data.Resources[id].Type, PhysicalID: "id-of-" + id, Policy: policy})
		}
		for id, r := range readTemplate(t, name+"-images").Resources {
			if r.Type == "AWS::ECR::Repository" {
				plan.Retained = append(plan.Retained, retainedResource{LogicalID: id, Type: r.Type, PhysicalID: "repo"})
			}
		}
		hints := strings.Join(adoptHints(plan), "\n")
		for _, field := range []string{"adopt.keys.data: arn:aws:kms:eu-west-1:012345678901:key/id-of-DataKey", "adopt.keys.docsvc_secrets:", "adopt.keys.agent_secrets:",
			"adopt.documents_bucket: id-of-Documents", "adopt.database_snapshot:", "adopt.secrets.license:", "adopt.secrets.ai:",
			"adopt.secrets.agent_identity:", "adopt.repositories: true"} {
			if !strings.Contains(hints, field) {
				t.Errorf("%s: destroy's adopt hints lack %q:\n%s", name, field, hints)
			}
		}
	}
}
