//! The chart's README (`charts/xero-operator/README.md`) is generated from `values.yaml`: every
//! value with its type, default and the `# --` comment above it. This test generates it and
//! fails when the committed file differs; `make chart-readme` (this test with
//! `XERO_WRITE_CHART_README=1`) writes it.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_yaml::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/xero-operator");

/// The `# --` comments of values.yaml, by dotted key path.
fn descriptions(values: &str) -> HashMap<String, String> {
    let mut found = HashMap::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<String> = None;
    for line in values.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(text) = trimmed.strip_prefix("# --") {
            pending = Some(text.trim().to_string());
        } else if let Some(text) = trimmed.strip_prefix('#') {
            if let Some(description) = pending.as_mut() {
                description.push(' ');
                description.push_str(text.trim());
            }
        } else if trimmed.is_empty() {
            pending = None;
        } else if let Some((key, _)) = trimmed.split_once(':')
            && !trimmed.starts_with('-')
            && !key.contains(' ')
        {
            while path.last().is_some_and(|(depth, _)| *depth >= indent) {
                path.pop();
            }
            path.push((indent, key.to_string()));
            if let Some(description) = pending.take() {
                let dotted: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
                found.insert(dotted.join("."), description);
            }
        } else {
            // A list item or a continuation: it belongs to the key above.
            pending = None;
        }
    }
    found
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "string",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) | Value::Tagged(_) => "object",
    }
}

fn default_text(value: &Value) -> String {
    let json = serde_json::to_string(value).expect("values.yaml converts to JSON");
    format!("`{}`", json.replace('|', "\\|"))
}

fn described_below(prefix: &str, described: &HashMap<String, String>) -> bool {
    described
        .keys()
        .any(|key| key.starts_with(prefix) && key[prefix.len()..].starts_with('.'))
}

/// One table row per value: a map is opened when a key inside it has a description or when it
/// has none itself; lists, scalars and described maps without described keys are one row.
fn rows(prefix: &str, value: &Value, described: &HashMap<String, String>, out: &mut String) {
    let description = described.get(prefix).map(String::as_str).unwrap_or("");
    let open = match value {
        Value::Mapping(map) => {
            !map.is_empty() && (described_below(prefix, described) || description.is_empty())
        }
        _ => false,
    };
    if !open {
        let _ = writeln!(
            out,
            "| `{prefix}` | {} | {} | {} |",
            type_name(value),
            default_text(value),
            description.replace('|', "\\|")
        );
        return;
    }
    if !description.is_empty() {
        let _ = writeln!(out, "| `{prefix}` | object | | {description} |");
    }
    if let Value::Mapping(map) = value {
        for (key, child) in map {
            let key = key.as_str().expect("values.yaml keys are strings");
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            rows(&path, child, described, out);
        }
    }
}

fn generate() -> String {
    let values_text = std::fs::read_to_string(format!("{CHART}/values.yaml")).unwrap();
    let chart: Value =
        serde_yaml::from_str(&std::fs::read_to_string(format!("{CHART}/Chart.yaml")).unwrap())
            .unwrap();
    let values: Value = serde_yaml::from_str(&values_text).unwrap();
    let described = descriptions(&values_text);
    let field = |name: &str| chart[name].as_str().unwrap_or_default().to_string();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- Generated from values.yaml by tests/chart_readme.rs (make chart-readme); edit values.yaml, not this file. -->"
    );
    let _ = writeln!(out, "# xero-operator chart\n");
    let _ = writeln!(out, "{}.\n", field("description"));
    let _ = writeln!(
        out,
        "Version {} (the operator {}), for Kubernetes {}. What the operator does, how to set up \
         Power BI and Xero, and troubleshooting: {}.\n",
        field("version"),
        field("appVersion"),
        field("kubeVersion"),
        field("home")
    );
    let _ = writeln!(out, "## Install\n");
    let _ = writeln!(
        out,
        "```sh\nhelm install xero-operator oci://ghcr.io/xero-operator/charts/xero-operator \\\n  \
         --version {} --namespace xero-operator --create-namespace \\\n  \
         --set 'rbac.secretNamespaces={{finance}}'\n```\n",
        field("version")
    );
    let _ = writeln!(
        out,
        "`values.schema.json` checks every value: a misspelt key fails `helm install` instead of \
         being ignored.\n"
    );
    let _ = writeln!(out, "## Values\n");
    let _ = writeln!(out, "| Key | Type | Default | Description |");
    let _ = writeln!(out, "|-----|------|---------|-------------|");
    rows("", &values, &described, &mut out);
    out
}

#[test]
fn the_chart_readme_is_generated_from_values_yaml() {
    let generated = generate();
    let path = format!("{CHART}/README.md");
    if std::env::var_os("XERO_WRITE_CHART_README").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is not what values.yaml gives; run `make chart-readme`"
    );
}

#[test]
fn every_value_is_in_the_chart_readme_and_every_described_one_with_its_words() {
    let values_text = std::fs::read_to_string(format!("{CHART}/values.yaml")).unwrap();
    let generated = generate();
    let described = descriptions(&values_text);
    assert!(described.len() > 40, "{described:?}");
    for (key, description) in &described {
        let row = generated
            .lines()
            .find(|line| line.starts_with(&format!("| `{key}` |")))
            .unwrap_or_else(|| panic!("no row for {key}"));
        assert!(row.contains(&description.replace('|', "\\|")), "{row}");
    }
    // Leaves without a comment have rows too.
    for key in [
        "image.pullPolicy",
        "resources.limits.memory",
        "metrics.service.type",
    ] {
        assert!(generated.contains(&format!("| `{key}` |")), "{key} missing");
    }
}

#[test]
fn comments_attach_to_the_key_below_them_at_any_depth() {
    let text = "# header, not a value's\n\n# -- Top.\n# Second line.\ntop: 1\nmap:\n  # -- Inner.\n  inner: \"\"\n  list:\n    - a: 1\n  # -- After a list.\n  after: true\nplain: x\n";
    let found = descriptions(text);
    assert_eq!(
        found.get("top").map(String::as_str),
        Some("Top. Second line.")
    );
    assert_eq!(found.get("map.inner").map(String::as_str), Some("Inner."));
    assert_eq!(
        found.get("map.after").map(String::as_str),
        Some("After a list.")
    );
    assert_eq!(found.len(), 3, "{found:?}");
}
