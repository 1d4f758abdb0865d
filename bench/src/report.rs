//! The figures of a run, printed as a table with the target beside each and written as JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::json;

use crate::error::{Context as _, Result};

/// A target a figure is held to.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum Target {
    AtMost(f64),
    LessThan(f64),
    AtLeast(f64),
    Exactly(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::LessThan(t) => value < t,
            Target::AtLeast(t) => value >= t,
            Target::Exactly(t) => value == t,
        }
    }

    fn text(self, unit: &str) -> String {
        let (op, t) = match self {
            Target::AtMost(t) => ("≤", t),
            Target::LessThan(t) => ("<", t),
            Target::AtLeast(t) => ("≥", t),
            Target::Exactly(t) => ("=", t),
        };
        format!("{op} {} {unit}", number(t)).trim_end().to_owned()
    }
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    pub scenario: String,
    pub name: String,
    /// `None` when it could not be measured (the note says why).
    pub value: Option<f64>,
    pub unit: String,
    pub target: Option<Target>,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub pass: Option<bool>,
    pub note: String,
}

/// Every figure of the run, in the order measured.
#[derive(Debug, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
}

impl Report {
    /// Records a figure without a target.
    pub fn info(&mut self, scenario: &str, name: &str, value: f64, unit: &str, note: &str) {
        self.push(scenario, name, Some(value), unit, None, note);
    }

    /// Records a figure held to `target`; a missing value misses the target.
    pub fn check(
        &mut self,
        scenario: &str,
        name: &str,
        value: Option<f64>,
        unit: &str,
        target: Target,
        note: &str,
    ) {
        self.push(scenario, name, value, unit, Some(target), note);
    }

    fn push(
        &mut self,
        scenario: &str,
        name: &str,
        value: Option<f64>,
        unit: &str,
        target: Option<Target>,
        note: &str,
    ) {
        let pass = target.map(|t| value.is_some_and(|v| t.met(v)));
        let figure = Figure {
            scenario: scenario.to_owned(),
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            target,
            pass,
            note: note.to_owned(),
        };
        println!("  {}", row(&figure));
        self.figures.push(figure);
    }

    /// Records a scenario that could not run.
    pub fn scenario_failed(&mut self, scenario: &str, error: &str) {
        self.push(scenario, "scenario did not complete", None, "", None, error);
    }

    /// The table of every figure.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let widths = [
            self.figures
                .iter()
                .map(|f| f.scenario.chars().count())
                .max()
                .unwrap_or(8),
            self.figures
                .iter()
                .map(|f| f.name.chars().count())
                .max()
                .unwrap_or(6),
        ];
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>14}  {:<16}  {:<6}  note",
            "scenario",
            "figure",
            "value",
            "target",
            "result",
            w0 = widths[0],
            w1 = widths[1]
        );
        for f in &self.figures {
            let _ = writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:>14}  {:<16}  {:<6}  {}",
                f.scenario,
                f.name,
                value_text(f),
                f.target.map(|t| t.text(&f.unit)).unwrap_or_default(),
                pass_text(f.pass),
                f.note,
                w0 = widths[0],
                w1 = widths[1]
            );
        }
        out
    }

    /// Writes `summary.json` (figures, the environment and whether every target was met).
    pub fn write_json(&self, path: &Path, environment: serde_json::Value) -> Result<()> {
        let all_met = self.figures.iter().all(|f| f.pass != Some(false));
        let summary = json!({
            "environment": environment,
            "allTargetsMet": all_met,
            "figures": self.figures,
        });
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).context(format!("create {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&summary).context("serialise the summary")?;
        std::fs::write(path, text).context(format!("write {}", path.display()))
    }

    /// Whether any figure missed its target.
    pub fn missed(&self) -> usize {
        self.figures
            .iter()
            .filter(|f| f.pass == Some(false))
            .count()
    }
}

fn row(f: &Figure) -> String {
    format!(
        "{} / {}: {} (target {}) {} {}",
        f.scenario,
        f.name,
        value_text(f),
        f.target
            .map(|t| t.text(&f.unit))
            .unwrap_or_else(|| "none".into()),
        pass_text(f.pass),
        f.note
    )
}

fn value_text(f: &Figure) -> String {
    match f.value {
        Some(v) => format!("{} {}", number(v), f.unit).trim_end().to_owned(),
        None => "n/a".to_owned(),
    }
}

fn pass_text(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "",
    }
}

/// A number with as many decimals as its size deserves.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || (a - a.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_meets_or_misses_its_target() {
        let mut report = Report::default();
        report.check("s", "fast", Some(1.0), "s", Target::AtMost(2.0), "");
        report.check("s", "slow", Some(3.0), "s", Target::AtMost(2.0), "");
        report.check("s", "lost", None, "s", Target::AtLeast(1.0), "not measured");
        report.info("s", "count", 5.0, "calls", "");
        let pass: Vec<Option<bool>> = report.figures.iter().map(|f| f.pass).collect();
        assert_eq!(pass, [Some(true), Some(false), Some(false), None]);
        assert_eq!(report.missed(), 2);
        let table = report.table();
        assert!(table.contains("≤ 2 s"), "{table}");
        assert!(table.contains("FAIL"), "{table}");
    }

    #[test]
    fn numbers_keep_sensible_precision() {
        assert_eq!(number(12345.6), "12346");
        assert_eq!(number(42.0), "42");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(0.456), "0.46");
        assert_eq!(number(0.0123), "0.012");
    }
}
