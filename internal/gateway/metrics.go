package gateway

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds Latchkey's collectors on their own registry (no global state), served on
// metrics.listen. It implements auth.Recorder and proxy.Recorder.
type Metrics struct {
	reg         *prometheus.Registry
	authz       *prometheus.CounterVec
	authzTime   *prometheus.HistogramVec
	ceremonies  *prometheus.CounterVec
	upstream    *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	viewDeltas  prometheus.Counter
	viewLoads   *prometheus.CounterVec
	viewLoadDur prometheus.Histogram
	storeErrors *prometheus.CounterVec

	// bound caches the children of the authz series by label values, so that the hot path does
	// not hash its labels on every check: indexed by the positions in authzEndpoints and
	// authzResults (authzIndex: a few comparisons, cheaper than hashing two strings for a map).
	// It is filled at start for every known combination and never written afterwards, so reads
	// need no lock.
	bound [len(authzEndpoints)][len(authzResults)]authzChildren
}

type authzChildren struct {
	count prometheus.Counter
	time  prometheus.Observer
}

// authzEndpoints and authzResults are the label values the proxy reports.
var (
	authzEndpoints = [...]string{"forward", "request", "proxy"}
	authzResults   = [...]string{"allowed", "unauthenticated", "step_up", "forbidden", "bad_request", "untrusted", "unavailable"}
)

func NewMetrics(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		authz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_authz_requests_total",
			Help: "Authorization checks by endpoint (forward, request, proxy) and result (allowed, unauthenticated, step_up, forbidden, bad_request, untrusted, unavailable).",
		}, []string{"endpoint", "result"}),
		// The hot path decides in microseconds without touching the database, hence the small buckets.
		authzTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_authz_duration_seconds",
			Help:    "Time to decide an authorization check, by endpoint.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .1},
		}, []string{"endpoint"}),
		ceremonies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_ceremonies_total",
			Help: "WebAuthn ceremonies by kind (register, login) and result (ok, failed, refused).",
		}, []string{"kind", "result"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_proxy_upstream_duration_seconds",
			Help:    "Reverse-proxy mode: time until the upstream's response is written, by route (host).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_rate_limited_total",
			Help: "Requests refused by a rate limit or a capacity bound, by scope.",
		}, []string{"scope"}),
		viewDeltas: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_view_deltas_applied_total",
			Help: "Changes from the store's change log applied to the in-memory session view.",
		}),
		viewLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_view_full_loads_total",
			Help: "Full loads of the in-memory session view (at start, or when the change log was pruned past it), by result (ok, failed).",
		}, []string{"result"}),
		viewLoadDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latchkey_view_full_load_duration_seconds",
			Help:    "Duration of full loads of the in-memory session view.",
			Buckets: []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_store_errors_total",
			Help: "Failed store calls of the session view, the readiness probe and the sweep, by operation.",
		}, []string{"op"}),
	}
	// Label values known in advance start at zero, so that a dashboard or an alert such as
	// rate(...[5m]) > 0 sees a series from the first scrape rather than "no data" until the
	// first event (Prometheus' advice on missing series).
	m.bindAuthz()
	for _, k := range []string{"register", "login"} {
		for _, r := range []string{"ok", "failed", "refused"} {
			m.ceremonies.WithLabelValues(k, r)
		}
	}
	for _, s := range []string{"login", "register", "recover", "recover_email", "ceremonies", "token"} {
		m.rateLimited.WithLabelValues(s)
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "latchkey_build_info",
		Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	for _, r := range []string{"ok", "failed"} {
		m.viewLoads.WithLabelValues(r)
	}
	for _, op := range []string{"changes", "load", "fetch", "touch_sessions", "touch_tokens", "heartbeat", "sweep"} {
		m.storeErrors.WithLabelValues(op)
	}
	m.reg.MustRegister(m.authz, m.authzTime, m.ceremonies, m.upstream, m.rateLimited, buildInfo,
		m.viewDeltas, m.viewLoads, m.viewLoadDur, m.storeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchSessions exports the live session count from the in-memory view (no database query per
// scrape).
func (m *Metrics) watchSessions(src interface{ ActiveSessions() int }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latchkey_sessions_active",
		Help: "Sessions that are neither revoked nor expired, as this process sees them.",
	}, func() float64 { return float64(src.ActiveSessions()) }))
}

// watchView exports the age of the in-memory view: how long ago it last confirmed itself with
// the store (past storage.max_staleness, forward auth fails closed).
func (m *Metrics) watchView(src interface{ ViewAge() time.Duration }) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "latchkey_view_age_seconds",
		Help: "Seconds since the in-memory session view last confirmed itself with the store.",
	}, func() float64 { return src.ViewAge().Seconds() }))
}

// ViewDeltas counts changes applied to the view (session.Recorder).
func (m *Metrics) ViewDeltas(n int) {
	if n > 0 {
		m.viewDeltas.Add(float64(n))
	}
}

// ViewLoad records a full load of the view.
func (m *Metrics) ViewLoad(d time.Duration, ok bool) {
	result := "ok"
	if !ok {
		result = "failed"
	}
	m.viewLoads.WithLabelValues(result).Inc()
	m.viewLoadDur.Observe(d.Seconds())
}

// StoreError counts a failed store call by operation.
func (m *Metrics) StoreError(op string) { m.storeErrors.WithLabelValues(op).Inc() }

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// Authz records one authorization decision; d is 0 when nothing was decided (an untrusted peer).
func (m *Metrics) Authz(endpoint, result string, d time.Duration) {
	var c authzChildren
	if e, r, ok := authzIndex(endpoint, result); ok {
		c = m.bound[e][r]
	} else {
		c = authzChildren{m.authz.WithLabelValues(endpoint, result), m.authzTime.WithLabelValues(endpoint)}
	}
	c.count.Inc()
	if d > 0 {
		c.time.Observe(d.Seconds())
	}
}

// authzIndex is the position of a label pair in authzEndpoints and authzResults: a few string
// comparisons, most of them decided by the length.
func authzIndex(endpoint, result string) (e, r int, ok bool) {
	e, r = -1, -1
	for i, x := range authzEndpoints {
		if x == endpoint {
			e = i
			break
		}
	}
	for i, x := range authzResults {
		if x == result {
			r = i
			break
		}
	}
	return e, r, e >= 0 && r >= 0
}

func (m *Metrics) bindAuthz() {
	for i, e := range authzEndpoints {
		for j, r := range authzResults {
			m.bound[i][j] = authzChildren{m.authz.WithLabelValues(e, r), m.authzTime.WithLabelValues(e)}
		}
	}
}

// Upstream records one proxied request in reverse-proxy mode.
func (m *Metrics) Upstream(route string, _ int, d time.Duration) {
	m.upstream.WithLabelValues(route).Observe(d.Seconds())
}

// Ceremony records the end of a WebAuthn ceremony.
func (m *Metrics) Ceremony(kind, result string) { m.ceremonies.WithLabelValues(kind, result).Inc() }

// RateLimited records a request refused by a limiter.
func (m *Metrics) RateLimited(scope string) { m.rateLimited.WithLabelValues(scope).Inc() }
