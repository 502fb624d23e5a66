//! Kubernetes `LabelSelector`s (`matchLabels`, `matchExpressions`), which
//! Kubernetes NetworkPolicies use for pods and namespaces. Evaluated on the
//! same [`Labels`] as Calico selectors.

use std::collections::BTreeMap;

use auditrail_calico_selector::Labels;
use serde_json::Value;

/// The operator of one `matchExpressions` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

/// A parsed `LabelSelector`; the empty one selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    match_labels: BTreeMap<String, String>,
    requirements: Vec<Requirement>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl LabelSelector {
    /// Reads a `LabelSelector`; absent or `null` is the empty selector.
    /// The error says what is wrong, for the policy's warning.
    pub fn from_value(value: Option<&Value>) -> Result<Self, String> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let mut selector = Self::default();
        if let Some(labels) = value.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("matchLabels.{k} is not a string"))?;
                selector.match_labels.insert(k.clone(), v.to_owned());
            }
        }
        let exprs = value.get("matchExpressions").and_then(Value::as_array);
        for (i, expr) in exprs.into_iter().flatten().enumerate() {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("matchExpressions[{i}] has no key"))?;
            let operator = match expr.get("operator").and_then(Value::as_str) {
                Some("In") => Operator::In,
                Some("NotIn") => Operator::NotIn,
                Some("Exists") => Operator::Exists,
                Some("DoesNotExist") => Operator::DoesNotExist,
                other => {
                    let found = other
                        .map_or_else(|| "no operator".to_owned(), |o| format!("operator {o:?}"));
                    return Err(format!(
                        "matchExpressions[{i}] has {found}; expected In, NotIn, Exists or DoesNotExist"
                    ));
                }
            };
            selector.requirements.push(Requirement {
                key: key.to_owned(),
                operator,
                values: strings(expr.get("values")),
            });
        }
        Ok(selector)
    }

    /// Whether it selects everything (`{}`).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.requirements.is_empty()
    }

    /// Whether it selects an object with these labels.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
            && self.requirements.iter().all(|r| {
                let value = labels.label(&r.key);
                let listed = value.is_some_and(|v| r.values.iter().any(|x| x == v));
                match r.operator {
                    Operator::In => listed,
                    Operator::NotIn => !listed,
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn match_labels_and_expressions() {
        let web = labels(&[("app", "web"), ("env", "prod")]);
        let db = labels(&[("app", "db")]);
        let cases = [
            (json!(null), true, true),
            (json!({}), true, true),
            (json!({"matchLabels": {"app": "web"}}), true, false),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "Exists"}]}),
                true,
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}),
                false,
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "x"]}]}),
                false,
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                false,
                true,
            ),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}),
                false,
                false,
            ),
        ];
        for (selector, on_web, on_db) in cases {
            let s = LabelSelector::from_value(Some(&selector)).expect("valid");
            assert_eq!(s.matches(&web), on_web, "{selector}");
            assert_eq!(s.matches(&db), on_db, "{selector}");
        }
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]});
        assert_eq!(
            LabelSelector::from_value(Some(&bad)).err().as_deref(),
            Some(
                "matchExpressions[0] has operator \"Gt\"; expected In, NotIn, Exists or DoesNotExist"
            )
        );
    }
}
