//! The values table of the chart README, generated from the `# --`
//! comments of `values.yaml` (every value must have one), and checked to be
//! current; and the README's list of checkov's skipped checks, checked to
//! name each check [`super::CHECKOV_SKIPPED`] leaves out.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};

use super::{CHART, CHECKOV_SKIPPED, Report};

const START: &str = "<!-- values-table:start (cargo xtask chart --bless-docs) -->";
const END: &str = "<!-- values-table:end -->";

/// One documented value.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    key: String,
    kind: &'static str,
    default: String,
    description: String,
}

/// The rows of `values.yaml`, in file order, or the values without a
/// `# --` comment (all of them, so that one run names every gap).
fn rows(values: &str) -> Result<Vec<Row>, Vec<String>> {
    let mut rows = Vec::new();
    let mut undocumented = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<String> = None;
    for line in values.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(text) = trimmed.strip_prefix("# --") {
            pending = Some(text.trim().to_owned());
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            undocumented.push(format!(
                "unexpected line (values.yaml uses one `key: value` per line): {line}"
            ));
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).chain([key]).collect();
        let path = path.join(".");
        let value = value.trim();
        if value.is_empty() {
            if pending.take().is_some() {
                undocumented.push(format!(
                    "{path}: a `# --` comment on a table; document its values"
                ));
            }
            stack.push((indent, key.to_owned()));
            continue;
        }
        let Some(description) = pending.take() else {
            undocumented.push(format!("{path}: no `# --` comment"));
            continue;
        };
        rows.push(Row {
            key: path,
            kind: kind(value),
            default: value.to_owned(),
            description,
        });
    }
    if undocumented.is_empty() {
        Ok(rows)
    } else {
        Err(undocumented)
    }
}

fn kind(value: &str) -> &'static str {
    if value.starts_with('{') {
        "object"
    } else if value.starts_with('[') {
        "list"
    } else if value == "true" || value == "false" {
        "bool"
    } else if value.parse::<i64>().is_ok() {
        "int"
    } else {
        "string"
    }
}

/// The Markdown table of the rows.
fn table(rows: &[Row]) -> String {
    let mut out = String::from("| Key | Type | Default | Description |\n|---|---|---|---|\n");
    for row in rows {
        let default = row.default.replace('|', "\\|");
        let _ = writeln!(
            out,
            "| `{}` | {} | `{}` | {} |",
            row.key,
            row.kind,
            default,
            row.description.replace('|', "\\|")
        );
    }
    out
}

/// Checks (or, with `bless`, rewrites) the README's values table, and that
/// the README lists every check skipped in checkov.
pub(super) fn check(root: &Path, bless: bool, report: &mut Report) -> anyhow::Result<()> {
    let chart = root.join(CHART);
    let values =
        std::fs::read_to_string(chart.join("values.yaml")).context("cannot read values.yaml")?;
    let readme_path = chart.join("README.md");
    let readme = std::fs::read_to_string(&readme_path).context("cannot read the chart README")?;
    let rows = match rows(&values) {
        Ok(rows) => rows,
        Err(gaps) => {
            for gap in gaps {
                report.fail(format!("values.yaml: {gap}"));
            }
            return Ok(());
        }
    };
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        bail!(
            "{}: no values table between {START} and {END}",
            readme_path.display()
        );
    };
    let current = &readme[start + START.len()..end];
    let generated = format!("\n{}", table(&rows));
    if bless {
        let updated = format!("{}{START}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(&readme_path, updated)?;
        eprintln!(
            "chart: rewrote the values table of {}",
            readme_path.display()
        );
    } else {
        report.check(current == generated, || {
            "charts/auditrail/README.md: the values table is not what values.yaml documents; \
             run `cargo xtask chart --bless-docs`"
                .to_owned()
        });
    }
    for (id, _) in CHECKOV_SKIPPED {
        report.check(readme.contains(id), || {
            format!("charts/auditrail/README.md does not list the skipped checkov check {id} and its reason")
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Row, rows, table};

    #[test]
    fn documented_values_become_rows_with_their_path() {
        let values = "# header\nglobal:\n  # -- The cluster.\n  cluster: prod\n  store:\n    # -- Kind.\n    type: embedded\n# -- On.\nenabled: true\n";
        let rows = rows(values).expect("documented");
        assert_eq!(
            rows,
            vec![
                Row {
                    key: "global.cluster".into(),
                    kind: "string",
                    default: "prod".into(),
                    description: "The cluster.".into()
                },
                Row {
                    key: "global.store.type".into(),
                    kind: "string",
                    default: "embedded".into(),
                    description: "Kind.".into()
                },
                Row {
                    key: "enabled".into(),
                    kind: "bool",
                    default: "true".into(),
                    description: "On.".into()
                },
            ]
        );
        assert!(table(&rows).contains("| `global.store.type` | string | `embedded` | Kind. |"));
    }

    #[test]
    fn an_undocumented_value_is_named() {
        let gaps = rows("a:\n  # -- Documented.\n  b: 1\n  c: 2\n").expect_err("c has no comment");
        assert_eq!(gaps, vec!["a.c: no `# --` comment".to_owned()]);
    }
}
