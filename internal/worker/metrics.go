package worker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherhq/tether/internal/analyze"
	"github.com/tetherhq/tether/internal/queue"
)

// Metrics are the worker's Prometheus series. Labels are outcomes, states
// and provider kinds: never document IDs.
type Metrics struct {
	jobs           *prometheus.CounterVec
	duration       prometheus.Histogram
	queueDepth     *prometheus.GaugeVec
	queueAge       prometheus.Gauge
	providerStatus *prometheus.GaugeVec
}

// NewMetrics registers the worker's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "docsvc_jobs_total", Help: "Jobs finished, by outcome.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "docsvc_job_duration_seconds", Help: "Time from receiving a job to its terminal state.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12),
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "docsvc_queue_messages", Help: "Job messages by state (visible, in_flight, dead_letter).",
		}, []string{"state"}),
		queueAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "docsvc_queue_oldest_age_seconds", Help: "Age of the oldest job message not dead-lettered.",
		}),
		providerStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "docsvc_ai_provider_status", Help: "1 for the AI provider's current status (ok, degraded, down), 0 for the others.",
		}, []string{"provider", "status"}),
	}
	reg.MustRegister(m.jobs, m.duration, m.queueDepth, m.queueAge, m.providerStatus)
	return m
}

func (m *Metrics) observe(outcome string, d time.Duration) {
	m.jobs.WithLabelValues(outcome).Inc()
	if outcome == "succeeded" || outcome == "failed" {
		m.duration.Observe(d.Seconds())
	}
}

func (m *Metrics) setQueue(s queue.Stats) {
	m.queueDepth.WithLabelValues("visible").Set(float64(s.Visible))
	m.queueDepth.WithLabelValues("in_flight").Set(float64(s.InFlight))
	m.queueDepth.WithLabelValues("dead_letter").Set(float64(s.DeadLetter))
	m.queueAge.Set(s.OldestAge.Seconds())
}

func (m *Metrics) setProvider(st analyze.ProviderState) {
	for _, s := range []string{"ok", "degraded", "down"} {
		v := 0.0
		if s == st.Status {
			v = 1
		}
		m.providerStatus.WithLabelValues(st.Provider, s).Set(v)
	}
}
