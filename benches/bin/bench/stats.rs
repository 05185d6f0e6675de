//! Latency percentiles and medians.

use std::time::Duration;

use crate::cli::result;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = (p * (sorted.len() - 1) as f64) as usize;
    sorted[i].as_nanos() as f64 / 1e3
}

pub fn report_latencies(prefix: &str, mut lat: Vec<Duration>, total: Duration) {
    let n = lat.len();
    lat.sort_unstable();
    result(&format!("{prefix}_p50_us"), pct(&lat, 0.50));
    result(&format!("{prefix}_p99_us"), pct(&lat, 0.99));
    result(
        &format!("{prefix}_calls_per_s"),
        n as f64 / total.as_secs_f64(),
    );
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}
