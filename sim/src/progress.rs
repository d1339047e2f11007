//! A one-line progress bar on stderr for runs that take a while, like
//!
//! ```text
//! demo-junction  [#########-----------]  45%  6.3/14.0 s  eta 2 s
//! ```
//!
//! It is for a person at a terminal and nothing else: when stderr is not a terminal (CI logs,
//! redirected output) it draws nothing, and neither does it in the first 2 s of wall time, so
//! short runs print no bar at all. It redraws at most five times a second. Unlike the sans-IO
//! cores it reads the wall clock itself; it belongs to the drivers. It does not know what the
//! work is: the caller says how much is done, in seconds of virtual time.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// No bar before this much wall time has passed.
const SHOW_AFTER: Duration = Duration::from_secs(2);
/// Least time between two redraws.
const REDRAW_EVERY: Duration = Duration::from_millis(200);
/// A bar is not started for a run this close to its end: it would flash and vanish.
const MIN_REMAINING_S: f64 = 0.5;
/// Characters between the brackets.
const BAR_WIDTH: usize = 20;

/// A progress bar for one run; see the module documentation for when it shows.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: f64,
    start: Instant,
    last_draw: Option<Instant>,
    /// Whether stderr is a terminal; decided once, at creation.
    enabled: bool,
}

impl Progress {
    /// A bar for `label` (a scenario name, say) that is complete when `done` reaches `total`
    /// seconds of virtual time. The wall clock starts now.
    pub fn new(label: impl Into<String>, total: f64) -> Self {
        Self {
            label: label.into(),
            total,
            start: Instant::now(),
            last_draw: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Reports that `done` seconds of `total` are done, and redraws the line if it is due.
    pub fn update(&mut self, done: f64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
        {
            return;
        }
        let elapsed_s = now.duration_since(self.start).as_secs_f64();
        if !should_show(
            elapsed_s,
            fraction(done, self.total),
            self.last_draw.is_some(),
        ) {
            return;
        }
        self.last_draw = Some(now);
        let text = line(&self.label, done, self.total, elapsed_s);
        // `\r` back to the start of the line, `ESC [ K` clears what a longer line left there.
        // A failed write to stderr is not worth stopping a run for.
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{text}\x1b[K");
        let _ = err.flush();
    }

    /// Clears the line if a bar was drawn, leaving the cursor at its start for what follows.
    /// Dropping the bar does the same.
    pub fn finish(&mut self) {
        if self.last_draw.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `done / total` in `0..=1`; 1 when `total` is not a positive number (nothing to wait for).
fn fraction(done: f64, total: f64) -> f64 {
    if total > 0.0 && done.is_finite() {
        (done / total).clamp(0.0, 1.0)
    } else if total > 0.0 {
        0.0
    } else {
        1.0
    }
}

/// Whether to draw: only after [`SHOW_AFTER`], and a bar not yet shown is started only if the
/// run, projected from its pace so far, has at least [`MIN_REMAINING_S`] left.
fn should_show(elapsed_s: f64, fraction: f64, shown: bool) -> bool {
    if elapsed_s < SHOW_AFTER.as_secs_f64() {
        return false;
    }
    shown || remaining_s(elapsed_s, fraction).is_none_or(|r| r >= MIN_REMAINING_S)
}

/// Wall time left at the pace so far; `None` before any progress.
fn remaining_s(elapsed_s: f64, fraction: f64) -> Option<f64> {
    (fraction > 0.0).then(|| elapsed_s * (1.0 - fraction) / fraction)
}

/// The bar's text for `done` of `total` virtual seconds after `elapsed_s` of wall time, e.g.
/// `demo-junction  [#########-----------]  45%  6.3/14.0 s  eta 2 s`. The percentage rounds
/// down, so 100 % means finished.
fn line(label: &str, done: f64, total: f64, elapsed_s: f64) -> String {
    let f = fraction(done, total);
    let filled = ((f * BAR_WIDTH as f64).floor() as usize).min(BAR_WIDTH);
    let eta = match remaining_s(elapsed_s, f) {
        Some(r) => duration(r),
        None => "?".to_string(),
    };
    format!(
        "{label}  [{}{}]  {:>3}%  {done:.1}/{total:.1} s  eta {eta}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        (f * 100.0).floor() as u32,
    )
}

/// `7 s`, `2 min 05 s`, `1 h 02 min`: as precise as a person waiting needs.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_bar_percentage_progress_and_eta() {
        assert_eq!(
            line("demo-junction", 6.3, 14.0, 2.5),
            "demo-junction  [#########-----------]   45%  6.3/14.0 s  eta 3 s"
        );
        assert_eq!(
            line("x", 14.0, 14.0, 9.0),
            "x  [####################]  100%  14.0/14.0 s  eta 0 s"
        );
        assert_eq!(
            line("x", 0.0, 60.0, 3.0),
            "x  [--------------------]    0%  0.0/60.0 s  eta ?"
        );
        assert_eq!(
            line("x", 1.0, 600.0, 3.0),
            "x  [--------------------]    0%  1.0/600.0 s  eta 29 min 57 s"
        );
    }

    #[test]
    fn line_survives_nonsense_totals() {
        assert!(line("x", 5.0, 0.0, 3.0).contains("100%"));
        assert!(line("x", f64::NAN, 10.0, 3.0).contains("  0%"));
        assert!(line("x", 20.0, 10.0, 3.0).contains("100%"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(6.6), "7 s");
        assert_eq!(duration(125.0), "2 min 05 s");
        assert_eq!(duration(3720.0), "1 h 02 min");
        assert_eq!(duration(-1.0), "0 s");
    }

    #[test]
    fn shows_only_after_two_seconds_and_not_just_before_the_end() {
        assert!(!should_show(1.9, 0.1, false));
        assert!(should_show(2.1, 0.1, false));
        assert!(should_show(2.1, 0.0, false), "no progress yet: long run");
        // 2.1 s for 95 %: about 0.1 s left, not worth a bar.
        assert!(!should_show(2.1, 0.95, false));
        assert!(
            should_show(2.1, 0.95, true),
            "a bar already shown keeps going"
        );
    }
}
