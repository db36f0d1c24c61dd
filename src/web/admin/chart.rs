//! The dashboard's growth chart: active subscribers at the end of each of
//! the last 12 months, as an inline SVG drawn on the server.
//!
//! Server-side, so the dashboard needs no JavaScript and the console's CSP
//! (no inline script, `img-src 'self' data:`) holds; inline `<svg>` with
//! presentation attributes is markup, not style. It is one series, so no
//! meaning rests on colour; the numbers are in the SVG's `<title>`/`<desc>`
//! for screen readers and in a visible table beside it on the page (the
//! template's job), and each bar carries its value as text.
//!
//! A pure function of the points: all arithmetic is on integers (no NaN,
//! no infinity, whatever the counts), and every text goes through the
//! escaper.

use std::fmt::Write;

use crate::content::text::push_escaped;
use crate::store::MonthGrowth;

/// The drawing's coordinate system (the CSS scales it to the page; on a
/// phone it keeps a minimum width and scrolls in its wrapper, so the
/// labels stay readable).
const WIDTH: u64 = 480;
const HEIGHT: u64 = 240;
/// Room for the y-axis labels on the left and the month labels below.
const LEFT: u64 = 64;
const RIGHT: u64 = 12;
const TOP: u64 = 24;
const BOTTOM: u64 = 44;
/// Ticks on the y axis above zero.
const TICKS: u64 = 4;

/// The ids the SVG's `aria-labelledby` points at: unique on the dashboard.
pub const TITLE_ID: &str = "growth-chart-title";
pub const DESC_ID: &str = "growth-chart-desc";

/// The SVG for `months` (oldest first, as [`crate::store::Store::growth`]
/// gives them). An empty slice draws empty axes.
pub fn growth_svg(months: &[MonthGrowth]) -> String {
    let max = months.iter().map(|m| m.active).max().unwrap_or(0);
    let step = tick_step(max);
    let top = step.saturating_mul(TICKS);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_h;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{TITLE_ID} {DESC_ID}" font-family="sans-serif" font-size="13">"#
    );
    out.push_str(&format!(r#"<title id="{TITLE_ID}">"#));
    push_escaped(&mut out, "Active subscribers at the end of each month");
    out.push_str(&format!(r#"</title><desc id="{DESC_ID}">"#));
    push_escaped(&mut out, &describe(months));
    out.push_str("</desc>");

    // Grid lines and y labels: 0, step, ..., top.
    for i in 0..=TICKS {
        let value = step.saturating_mul(i);
        let y = base - plot_h * i / TICKS;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y}" x2="{}" y2="{y}" stroke="#c8c8c8" stroke-width="1"/>"##,
            WIDTH - RIGHT
        );
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#333">"##,
            LEFT - 6,
            y + 4
        );
        push_escaped(&mut out, &compact(value));
        out.push_str("</text>");
    }

    let n = months.len().max(1) as u64;
    let slot = plot_w / n;
    let bar = (slot * 3 / 5).max(1);
    for (i, m) in months.iter().enumerate() {
        let i = i as u64;
        // Integer scaling; u128 so that a count near u64::MAX cannot overflow.
        let h = ((m.active as u128 * plot_h as u128) / top.max(1) as u128) as u64;
        let h = h.min(plot_h);
        let x = LEFT + slot * i + (slot - bar) / 2;
        let _ = write!(
            out,
            r##"<rect x="{x}" y="{}" width="{bar}" height="{h}" fill="#2b5797"><title>"##,
            base - h
        );
        push_escaped(
            &mut out,
            &format!("{}: {} active", m.month, thousands(m.active)),
        );
        out.push_str("</title></rect>");
        // The value above the bar, the month (and the year at January and
        // at the first bar) below the axis.
        let mid = x + bar / 2;
        let _ = write!(
            out,
            r##"<text x="{mid}" y="{}" text-anchor="middle" fill="#222" font-size="11">"##,
            base - h - 4
        );
        push_escaped(&mut out, &compact(m.active));
        out.push_str("</text>");
        let (year, month) = m.month.split_once('-').unwrap_or((&m.month, ""));
        let _ = write!(
            out,
            r##"<text x="{mid}" y="{}" text-anchor="middle" fill="#333">"##,
            base + 16
        );
        push_escaped(&mut out, month_name(month).unwrap_or(month));
        out.push_str("</text>");
        if i == 0 || month == "01" {
            let _ = write!(
                out,
                r##"<text x="{mid}" y="{}" text-anchor="middle" fill="#333">"##,
                base + 32
            );
            push_escaped(&mut out, year);
            out.push_str("</text>");
        }
    }
    // The axes, drawn last so the bars do not cover them.
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#333" stroke-width="1"/><line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#333" stroke-width="1"/>"##,
        WIDTH - RIGHT
    );
    out.push_str("</svg>");
    out
}

/// The numbers in words, for `<desc>`: a screen reader gets what a
/// sighted reader gets from the bars.
fn describe(months: &[MonthGrowth]) -> String {
    if months.is_empty() {
        return "No data.".into();
    }
    let parts: Vec<String> = months
        .iter()
        .map(|m| format!("{}: {}", m.month, thousands(m.active)))
        .collect();
    format!(
        "Active subscribers per month, oldest first. {}.",
        parts.join("; ")
    )
}

/// A step for the y axis: 1, 2, 2.5 or 5 times a power of ten, the
/// smallest such that [`TICKS`] steps reach at least `max` (1 for an empty
/// list): round labels, and a million fills the plot.
fn tick_step(max: u64) -> u64 {
    let need = max.div_ceil(TICKS).max(1);
    let mut power: u64 = 1;
    loop {
        let quarter = (power >= 10).then(|| power / 2 * 5);
        for step in [
            Some(power),
            Some(power.saturating_mul(2)),
            quarter,
            Some(power.saturating_mul(5)),
        ]
        .into_iter()
        .flatten()
        {
            if step >= need {
                return step;
            }
        }
        if power > u64::MAX / 10 {
            return need;
        }
        power *= 10;
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A short label: `950`, `12k`, `1.5k`, `1M`, `2.5M`.
fn compact(n: u64) -> String {
    let short = |n: u64, unit: u64, suffix: &str| {
        let whole = n / unit;
        let tenth = (n % unit) * 10 / unit;
        if tenth == 0 || whole >= 100 {
            format!("{whole}{suffix}")
        } else {
            format!("{whole}.{tenth}{suffix}")
        }
    };
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => short(n, 1_000, "k"),
        1_000_000..1_000_000_000 => short(n, 1_000_000, "M"),
        _ => short(n, 1_000_000_000, "G"),
    }
}

/// `03` → `Mar`.
fn month_name(mm: &str) -> Option<&'static str> {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let i: usize = mm.parse().ok()?;
    NAMES.get(i.checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests;
