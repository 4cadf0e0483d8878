package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds Latchkey's collectors on their own registry (no global state). It implements the
// Recorder interfaces of auth and proxy.
type metrics struct {
	reg         *prometheus.Registry
	authz       *prometheus.CounterVec
	authzTime   *prometheus.HistogramVec
	ceremonies  *prometheus.CounterVec
	upstream    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		authz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_authz_requests_total",
			Help: "Authorization checks by endpoint (forward, request, proxy) and result.",
		}, []string{"endpoint", "result"}),
		authzTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_authz_duration_seconds",
			Help:    "Time to decide an authorization check.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .1},
		}, []string{"endpoint"}),
		ceremonies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_ceremonies_total",
			Help: "WebAuthn ceremonies by kind (register, login) and result (ok, failed, refused).",
		}, []string{"kind", "result"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_proxy_upstream_duration_seconds",
			Help:    "Time from receiving a proxied request to the upstream's response, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_rate_limited_total",
			Help: "Requests refused by a rate limit, by scope.",
		}, []string{"scope"}),
	}
	m.reg.MustRegister(m.authz, m.authzTime, m.ceremonies, m.upstream, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchSessions exports the live session count from the in-memory view.
func (m *metrics) watchSessions(src interface{ ActiveSessions() int }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latchkey_sessions_active",
		Help: "Sessions that are neither revoked nor expired, as this process sees them.",
	}, func() float64 { return float64(src.ActiveSessions()) }))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *metrics) Authz(endpoint, result string, d time.Duration) {
	m.authz.WithLabelValues(endpoint, result).Inc()
	if d > 0 {
		m.authzTime.WithLabelValues(endpoint).Observe(d.Seconds())
	}
}

func (m *metrics) Upstream(route string, _ int, d time.Duration) {
	m.upstream.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) Ceremony(kind, result string) { m.ceremonies.WithLabelValues(kind, result).Inc() }

func (m *metrics) RateLimited(scope string) { m.rateLimited.WithLabelValues(scope).Inc() }
