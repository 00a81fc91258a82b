//! Prometheus metrics: a small process-wide registry of atomic counters and fixed-bucket
//! histograms, rendered in the text exposition format 0.0.4. Hand-rolled because the needs are
//! few and a metrics stack would add weight to every request and to idle memory.
//!
//! The registry is global because one process is one server; the gauges that describe the
//! database (active sessions, pool usage) are read from the [`App`] at scrape time instead.
//! Served by [`serve`] on its own listener (`metrics_bind`) so it is never public.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::{App, AppState};

/// Request latency buckets in seconds: from a cached page to a slow database.
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// RS256 signing takes around a millisecond; the buckets resolve that range.
const SIGNING_BUCKETS: &[f64] = &[0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];

pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound plus the overflow (+Inf) bucket; not cumulative until rendered.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => b.to_string(),
                None => "+Inf".into(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// A metric with labels: one series per distinct label set, created on first use.
struct Family<K, V> {
    series: RwLock<BTreeMap<K, Arc<V>>>,
}

impl<K: Ord + Clone, V> Family<K, V> {
    fn new() -> Self {
        Family {
            series: RwLock::new(BTreeMap::new()),
        }
    }

    fn get(&self, key: &K, create: impl FnOnce() -> V) -> Arc<V> {
        if let Some(v) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return v.clone();
        }
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert_with(|| Arc::new(create()))
            .clone()
    }

    fn snapshot(&self) -> Vec<(K, Arc<V>)> {
        self.series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

pub struct Metrics {
    /// (route template, method, status)
    requests: Family<(String, &'static str, u16), AtomicU64>,
    /// (route template, method)
    request_latency: Family<(String, &'static str), Histogram>,
    /// (method, outcome)
    sign_ins: Family<(&'static str, &'static str), AtomicU64>,
    /// grant type
    tokens_issued: Family<&'static str, AtomicU64>,
    signing: Histogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    requests: Family::new(),
    request_latency: Family::new(),
    sign_ins: Family::new(),
    tokens_issued: Family::new(),
    signing: Histogram::new(SIGNING_BUCKETS),
});

pub fn global() -> &'static Metrics {
    &METRICS
}

/// Methods outside this list share one label value, so a client cannot grow the registry.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

impl Metrics {
    /// `route` is the matched route template (never the raw path, which may carry ids).
    pub fn request(
        &self,
        route: &str,
        method: &axum::http::Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.requests
            .get(&(route.to_owned(), method, status.as_u16()), || {
                AtomicU64::new(0)
            })
            .fetch_add(1, Ordering::Relaxed);
        self.request_latency
            .get(&(route.to_owned(), method), || {
                Histogram::new(REQUEST_BUCKETS)
            })
            .observe(elapsed);
    }

    /// `method` is `password` or `passkey`; `outcome` is `success`, `failure`,
    /// `rate_limited` or `disabled`.
    pub fn sign_in(&self, method: &'static str, outcome: &'static str) {
        self.sign_ins
            .get(&(method, outcome), || AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn token_issued(&self, grant_type: &'static str) {
        self.tokens_issued
            .get(&grant_type, || AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn signing(&self, elapsed: Duration) {
        self.signing.observe(elapsed);
    }

    fn render(&self, out: &mut String) {
        header(
            out,
            "tessera_http_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
        );
        for ((route, method, status), n) in self.requests.snapshot() {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {}",
                escape(&route),
                n.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "tessera_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request, by route template and method.",
        );
        for ((route, method), h) in self.request_latency.snapshot() {
            h.render(
                out,
                "tessera_http_request_duration_seconds",
                &format!("route=\"{}\",method=\"{method}\"", escape(&route)),
            );
        }
        header(
            out,
            "tessera_sign_ins_total",
            "counter",
            "Sign-in attempts, by method (password, passkey) and outcome.",
        );
        for ((method, outcome), n) in self.sign_ins.snapshot() {
            let _ = writeln!(
                out,
                "tessera_sign_ins_total{{method=\"{method}\",outcome=\"{outcome}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "tessera_tokens_issued_total",
            "counter",
            "Successful token responses, by grant type.",
        );
        for (grant, n) in self.tokens_issued.snapshot() {
            let _ = writeln!(
                out,
                "tessera_tokens_issued_total{{grant=\"{grant}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        header(
            out,
            "tessera_signing_duration_seconds",
            "histogram",
            "Time to compute one RS256 signature.",
        );
        self.signing
            .render(out, "tessera_signing_duration_seconds", "");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape backslash, double quote and newline (exposition format 0.0.4).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition: the process-wide counters plus gauges read now from the database.
pub async fn render(app: &App) -> String {
    let mut out = String::with_capacity(8 * 1024);
    global().render(&mut out);
    let pool = app.store.pool_status();
    header(
        &mut out,
        "tessera_db_pool_connections",
        "gauge",
        "Database pool connections: open (in use or idle), idle, and the configured maximum.",
    );
    for (state, n) in [
        ("open", pool.size),
        ("idle", pool.available),
        ("in_use", pool.size.saturating_sub(pool.available)),
        ("max", pool.max_size),
    ] {
        let _ = writeln!(out, "tessera_db_pool_connections{{state=\"{state}\"}} {n}");
    }
    header(
        &mut out,
        "tessera_db_pool_waiting",
        "gauge",
        "Requests waiting for a database connection.",
    );
    let _ = writeln!(out, "tessera_db_pool_waiting {}", pool.waiting);
    header(
        &mut out,
        "tessera_active_sessions",
        "gauge",
        "Browser sessions that are neither expired nor revoked (all replicas).",
    );
    match crate::store::sessions::count_live(&app.store, crate::store::now()).await {
        Ok(n) => {
            let _ = writeln!(out, "tessera_active_sessions {n}");
        }
        // Left out rather than reported as zero: a scrape during an outage must not look
        // like everyone signed out.
        Err(e) => tracing::warn!(error = %e, "metrics: counting sessions failed"),
    }
    header(
        &mut out,
        "tessera_up",
        "gauge",
        "1 while the database answers the metrics scrape.",
    );
    let up = app.store.ping().await.is_ok() as u8;
    let _ = writeln!(out, "tessera_up {up}");
    out
}

async fn metrics_page(State(app): State<AppState>) -> Response {
    let body = render(&app).await;
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The metrics listener's routes: only `/metrics`.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"b\"} 3.55\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
