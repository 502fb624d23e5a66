//! Query strings of the JSON API, read strictly: every parameter is
//! known, a single-valued one appears once, numbers and switches parse,
//! and anything else is INVALID_ARGUMENT naming the parameter. The same
//! names as the command line's flags (`cluster`, `kind`, `verb`, `user`,
//! `code`, `from`, `to`, `selector`, …), repeated for several values
//! (`verb=create&verb=patch`), so that a page's URL, a link shared and a
//! curl command read alike.

use auditrail_proto::v1;

use crate::error::ApiError;

/// The parameters of one request, consumed as they are read.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The pairs of a raw query string (`None`: no query).
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self { pairs }
    }

    /// Every value of `name` (removed).
    pub fn all(&mut self, name: &str) -> Vec<String> {
        let mut values = Vec::new();
        self.pairs.retain(|(k, v)| {
            if k == name {
                values.push(v.clone());
                false
            } else {
                true
            }
        });
        values
    }

    /// The one value of `name`, if given; twice is an error.
    pub fn one(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.all(name);
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop()),
            n => Err(ApiError::invalid(format!(
                "parameter {name} is given {n} times; it takes one value"
            ))),
        }
    }

    /// The value of `name`, or "".
    pub fn text(&mut self, name: &str) -> Result<String, ApiError> {
        Ok(self.one(name)?.unwrap_or_default())
    }

    /// The value of `name` as a required, non-empty string.
    pub fn required(&mut self, name: &str) -> Result<String, ApiError> {
        match self.one(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::invalid(format!("parameter {name} is required"))),
        }
    }

    /// `true`/`false` (or absent: `default`).
    pub fn switch(&mut self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.one(name)?.as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ApiError::invalid(format!(
                "parameter {name} = {other:?}: give true or false"
            ))),
        }
    }

    /// A whole number (absent: `None`).
    pub fn number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, ApiError> {
        self.one(name)?
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid(format!(
                        "parameter {name} = {v:?}: not a whole number in range"
                    ))
                })
            })
            .transpose()
    }

    /// Refuses what was not read: an unknown parameter is a mistake (a
    /// misspelt filter must not widen the answer silently).
    pub fn finish(self) -> Result<(), ApiError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(ApiError::invalid(format!(
                "unknown parameter {k:?}; see the JSON API in the README for the parameters \
                 of each endpoint"
            ))),
        }
    }

    /// The common filter (the `Filter` message of query.proto).
    pub fn filter(&mut self) -> Result<v1::Filter, ApiError> {
        let r#type = match self.one("type")?.as_deref() {
            None | Some("" | "any") => v1::TypeFilter::Any,
            Some("kube") => v1::TypeFilter::Kube,
            Some("ee") => v1::TypeFilter::Ee,
            Some("access") => v1::TypeFilter::Access,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "parameter type = {other:?}: give any, kube, ee or access"
                )));
            }
        };
        let response_codes = self
            .all("code")
            .into_iter()
            .map(|c| {
                c.parse::<i32>().map_err(|_| {
                    ApiError::invalid(format!(
                        "parameter code = {c:?}: an HTTP status code, e.g. 403"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let object_ref = v1::ObjectRefFilter {
            name: self.text("name")?,
            namespace: self.text("namespace")?,
            resource: self.text("resource")?,
            api_group: self.text("apiGroup")?,
            api_version: self.text("apiVersion")?,
        };
        let object_refs = if object_ref == v1::ObjectRefFilter::default() {
            Vec::new()
        } else {
            vec![object_ref]
        };
        Ok(v1::Filter {
            r#type: r#type.into(),
            clusters: self.all("cluster"),
            from: self.text("from")?,
            to: self.text("to")?,
            kinds: self.all("kind"),
            object_refs,
            verbs: self.all("verb"),
            authors: self.all("user"),
            response_codes,
            stages: self.all("stage"),
            levels: self.all("level"),
            exclude_dry_run: self.switch("excludeDryRun", false)?,
            selector: self.text("selector")?,
            subresources: self.all("subresource"),
        })
    }

    /// `sort`: `newest` (default) or `oldest`.
    pub fn sort(&mut self) -> Result<v1::SortOrder, ApiError> {
        match self.one("sort")?.as_deref() {
            None | Some("" | "newest") => Ok(v1::SortOrder::NewestFirst),
            Some("oldest") => Ok(v1::SortOrder::OldestFirst),
            Some(other) => Err(ApiError::invalid(format!(
                "parameter sort = {other:?}: give newest or oldest"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_every_field_and_repeat_lists() {
        let mut p = Params::parse(Some(
            "cluster=a&cluster=b&type=ee&from=now-1h&kind=netpol&verb=create&verb=patch\
             &user=alice&code=201&namespace=prod&selector=verb%20%3D%20%22create%22\
             &excludeDryRun=true&subresource=",
        ));
        let f = p.filter().unwrap();
        p.finish().unwrap();
        assert_eq!(f.clusters, ["a", "b"]);
        assert_eq!(f.r#type, i32::from(v1::TypeFilter::Ee));
        assert_eq!(f.verbs, ["create", "patch"]);
        assert_eq!(f.response_codes, [201]);
        assert_eq!(f.object_refs[0].namespace, "prod");
        assert_eq!(f.selector, "verb = \"create\"");
        assert!(f.exclude_dry_run);
        assert_eq!(f.subresources, [""]);
    }

    #[test]
    fn mistakes_name_the_parameter() {
        let err = |q: &str| {
            let mut p = Params::parse(Some(q));
            p.filter()
                .and_then(|_| p.sort())
                .and_then(|_| p.finish())
                .unwrap_err()
                .message
        };
        assert!(err("code=abc").contains("parameter code = \"abc\""));
        assert!(err("type=pods").contains("parameter type = \"pods\""));
        assert!(err("from=a&from=b").contains("parameter from is given 2 times"));
        assert!(err("verbs=create").contains("unknown parameter \"verbs\""));
        assert!(err("sort=up").contains("parameter sort = \"up\""));
        assert!(err("excludeDryRun=yes").contains("give true or false"));
    }
}
