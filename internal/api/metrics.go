package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherhq/tether/internal/document"
	"github.com/tetherhq/tether/internal/sqldb"
)

// storeCollector reads document totals and the schema version from the
// database at scrape time, so every api replica reports the same figures and
// none keeps its own counts. These are the figures the agent turns into
// coarse heartbeat buckets.
type storeCollector struct {
	store   *document.Store
	db      *sqldb.DB
	version string

	documents, bytes, pages, schema, build *prometheus.Desc
}

func newStoreCollector(store *document.Store, db *sqldb.DB, version string) *storeCollector {
	return &storeCollector{
		store: store, db: db, version: version,
		documents: prometheus.NewDesc("docsvc_documents", "Documents by status.", []string{"status"}, nil),
		bytes:     prometheus.NewDesc("docsvc_stored_bytes", "Bytes of all stored documents.", nil, nil),
		pages:     prometheus.NewDesc("docsvc_result_pages", "Pages of all stored results.", nil, nil),
		schema:    prometheus.NewDesc("docsvc_schema_version", "Applied database schema version.", nil, nil),
		build:     prometheus.NewDesc("docsvc_build_info", "Always 1; the version label names the release.", []string{"version"}, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.documents
	ch <- c.bytes
	ch <- c.pages
	ch <- c.schema
	ch <- c.build
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, 1, c.version)
	if counts, err := c.store.Counts(ctx); err == nil {
		for _, st := range []document.Status{document.Queued, document.Processing, document.Succeeded, document.Failed} {
			ch <- prometheus.MustNewConstMetric(c.documents, prometheus.GaugeValue, float64(counts[st]), string(st))
		}
	}
	if _, b, err := c.store.Totals(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(b))
	}
	if p, err := c.store.Pages(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.pages, prometheus.GaugeValue, float64(p))
	}
	if cur, _, err := c.db.SchemaVersion(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.schema, prometheus.GaugeValue, float64(cur))
	}
}
