//! The success-rate chart: attempts and failures per hour over the last 24 hours, drawn as
//! inline SVG on the server. Failures are hatched as well as red, each bar says its numbers
//! in a tooltip, and a table holds the same figures for screen readers and print.

use std::fmt::Write;

use leptos::prelude::*;

use crate::domain::HourBar;

const BAR: u32 = 24;
const GAP: u32 = 6;
const HEIGHT: u32 = 120;
const AXIS: u32 = 18;

/// The chart's SVG. Only numbers and times go in, so nothing needs escaping.
pub fn hourly_svg(bars: &[HourBar]) -> String {
    let most = bars.iter().map(|b| b.attempts).max().unwrap_or(0).max(1);
    let width = bars.len() as u32 * (BAR + GAP);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {}" width="100%" role="img" aria-labelledby="chart-title"><title id="chart-title">Attempts and failures per hour, last 24 hours</title><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="fail-bg"/><line x1="0" y1="0" x2="0" y2="6" class="fail-line" stroke-width="3"/></pattern></defs>"##,
        HEIGHT + AXIS
    );
    for (i, bar) in bars.iter().enumerate() {
        let x = i as u32 * (BAR + GAP);
        let total = (bar.attempts as f64 / most as f64 * HEIGHT as f64).round() as u32;
        let failed = (bar.failures as f64 / most as f64 * HEIGHT as f64).round() as u32;
        let rate = if bar.attempts > 0 {
            format!(", {:.1} % succeeded", (bar.attempts - bar.failures) as f64 * 100.0 / bar.attempts as f64)
        } else {
            String::new()
        };
        let _ = write!(
            svg,
            r#"<g><title>{}–{} UTC: {} attempts, {} failed{rate}</title><rect x="{x}" y="0" width="{BAR}" height="{HEIGHT}" class="slot"/>"#,
            bar.hour.format("%H:00"),
            (bar.hour + chrono::TimeDelta::hours(1)).format("%H:00"),
            bar.attempts,
            bar.failures,
        );
        if total > 0 {
            let _ = write!(svg, r#"<rect x="{x}" y="{}" width="{BAR}" height="{total}" class="ok"/>"#, HEIGHT - total);
        }
        if failed > 0 {
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{}" width="{BAR}" height="{failed}" fill="url(#hatch)" class="failed"/>"#,
                HEIGHT - failed
            );
        }
        svg.push_str("</g>");
        if i % 6 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{x}" y="{}" class="axis">{}</text>"#,
                HEIGHT + AXIS - 4,
                bar.hour.format("%H:00")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The chart with its legend and the same numbers as a table.
#[component]
pub fn HourlyChart(bars: Vec<HourBar>) -> impl IntoView {
    let total: i64 = bars.iter().map(|b| b.attempts).sum();
    let failed: i64 = bars.iter().map(|b| b.failures).sum();
    let rows = bars
        .iter()
        .filter(|b| b.attempts > 0)
        .map(|b| {
            view! {
                <tr>
                    <td data-label="Hour">{b.hour.format("%Y-%m-%d %H:00 UTC").to_string()}</td>
                    <td data-label="Attempts">{b.attempts}</td>
                    <td data-label="Failures">{b.failures}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card stack" aria-labelledby="chart-heading">
            <h2 id="chart-heading">"Last 24 hours"</h2>
            <p class="hint" data-testid="chart-summary">
                {format!("{total} attempts, {failed} failed (tests not counted). Bars are hours, oldest on the left.")}
            </p>
            <div class="chart" inner_html=hourly_svg(&bars)></div>
            <p class="legend">
                <span class="key ok"></span>
                " Succeeded "
                <span class="key failed"></span>
                " Failed (hatched)"
            </p>
            <details>
                <summary>"Show as a table"</summary>
                <table class="list">
                    <thead>
                        <tr>
                            <th scope="col">"Hour"</th>
                            <th scope="col">"Attempts"</th>
                            <th scope="col">"Failed"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn bars_are_scaled_to_the_busiest_hour_and_say_their_numbers() {
        let start = Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap();
        let bars: Vec<HourBar> = (0..24)
            .map(|i| HourBar {
                hour: start + chrono::TimeDelta::hours(i),
                attempts: if i == 23 {
                    40
                } else if i == 22 {
                    20
                } else {
                    0
                },
                failures: if i == 23 { 10 } else { 0 },
            })
            .collect();
        let svg = hourly_svg(&bars);
        assert!(svg.contains("23:00–00:00 UTC: 40 attempts, 10 failed, 75.0 % succeeded"), "{svg}");
        assert!(svg.contains(r#"height="120" class="ok""#), "the busiest hour fills the height");
        assert!(svg.contains(r#"height="60" class="ok""#), "half as busy, half as high");
        assert!(svg.contains(r#"height="30" fill="url(#hatch)""#), "failures hatched, to scale");
        assert!(svg.contains("00:00–01:00 UTC: 0 attempts, 0 failed</title>"));
    }
}
