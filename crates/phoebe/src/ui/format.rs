//! Small formatting helpers for pages: relative times, counts, sparklines, URL pieces.

use chrono::{DateTime, Utc};

/// "just now", "5 minutes ago", "3 days ago": how long before `now_ms` the time `ms` was.
pub fn ago(ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - ms).max(0) / 1000;
    let (n, unit) = match secs {
        0..=44 => return "just now".into(),
        45..=3599 => ((secs + 30) / 60, "minute"),
        3600..=86_399 => ((secs + 1800) / 3600, "hour"),
        86_400..=2_591_999 => ((secs + 43_200) / 86_400, "day"),
        2_592_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    let n = n.max(1);
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The exact time, for tooltips and `<time datetime>`: `2026-11-26 02:15:07 UTC`.
pub fn exact(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// `1234` → `1.2k`, `2500000` → `2.5M`: counts in narrow columns.
pub fn count(n: i64) -> String {
    match n {
        i64::MIN..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1000.0),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

/// Percent-encodes a query parameter value.
pub fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An inline SVG bar chart of a series (one bar per bucket), scaled to its largest bucket.
/// Only numbers go into the markup, so it is safe to embed unescaped.
pub fn sparkline(series: &[(i64, i64)], width: u32, height: u32) -> String {
    let max = series.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let n = series.len().max(1) as f64;
    let bar = width as f64 / n;
    let mut svg = format!(
        r#"<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-hidden="true">"#
    );
    for (i, (_, v)) in series.iter().enumerate() {
        if *v == 0 {
            continue;
        }
        let h = ((*v as f64 / max) * (height as f64 - 1.0)).max(1.5);
        svg.push_str(&format!(
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
            i as f64 * bar,
            height as f64 - h,
            (bar - 0.6).max(0.6),
            h
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = 1_000_000_000_000;
        assert_eq!(ago(now - 10_000, now), "just now");
        assert_eq!(ago(now - 60_000, now), "1 minute ago");
        assert_eq!(ago(now - 5 * 3_600_000, now), "5 hours ago");
        assert_eq!(ago(now - 3 * 86_400_000, now), "3 days ago");
        assert_eq!(ago(now + 5_000, now), "just now");
    }

    #[test]
    fn counts_are_abbreviated_past_four_digits() {
        assert_eq!(count(9_999), "9999");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(count(2_500_000), "2.5M");
    }

    #[test]
    fn sparklines_scale_to_the_largest_bucket() {
        let svg = sparkline(&[(0, 0), (1, 5), (2, 10)], 30, 20);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains(r#"height="19.0""#), "{svg}");
    }
}
