//! The report: one row per figure, printed as a Markdown table and written as JSON.

use std::{fmt::Write as _, path::Path};

/// One measured (or not measured) figure.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// The figure, as read by a person ("not measured" when it was not).
    pub figure: String,
    /// The same-run baseline it is compared with.
    pub baseline: String,
    /// figure ÷ baseline, when both are numbers.
    pub ratio: Option<f64>,
    /// The target from issue #13.
    pub target: String,
    /// Whether the target was met; `None` when there is none or it was not measured.
    pub met: Option<bool>,
}

impl Row {
    /// A row without a target.
    pub fn info(scenario: &str, figure: String, baseline: String, ratio: Option<f64>) -> Self {
        Self { scenario: scenario.into(), figure, baseline, ratio, target: String::new(), met: None }
    }

    /// A row with a target and whether it was met.
    pub fn target(
        scenario: &str,
        figure: String,
        baseline: String,
        ratio: Option<f64>,
        target: &str,
        met: bool,
    ) -> Self {
        Self { scenario: scenario.into(), figure, baseline, ratio, target: target.into(), met: Some(met) }
    }

    /// A scenario this harness does not measure yet: said so, never a made-up figure.
    pub fn not_measured(scenario: &str, target: &str, why: &str) -> Self {
        Self {
            scenario: scenario.into(),
            figure: format!("not measured ({why})"),
            baseline: String::new(),
            ratio: None,
            target: target.into(),
            met: None,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// The machine: CPU model and count, Postgres version.
    pub machine: String,
    /// `quick`, `full` or `tiny`.
    pub mode: String,
    /// The rows, in run order.
    pub rows: Vec<Row>,
}

impl Report {
    /// The Markdown table.
    pub fn table(&self) -> String {
        let mut out = format!("machine: {} ({} run)\n\n", self.machine, self.mode);
        out.push_str("| measured | figure | same-run baseline | ratio | target | met |\n|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let ratio = r.ratio.map(|x| format!("{x:.3}")).unwrap_or_default();
            let met = match r.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                r.scenario, r.figure, r.baseline, ratio, r.target, met
            );
        }
        out
    }

    /// Writes the JSON to `path`, creating its directory.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}
