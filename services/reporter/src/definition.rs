//! What makes a report definition valid, its schedule, and the ids derived
//! from it.
//!
//! - Names are DNS-1123 subdomains, as GlobalReport names are.
//! - A schedule is five cron fields (minute hour day-of-month month
//!   day-of-week) in UTC, parsed by `croner` with seconds and years
//!   refused; it may fire at most 12 times in an hour (as the product
//!   refused more). The minute field is the same for every hour, so the
//!   ticks of the first hour that fires are the most any hour has.
//! - Selectors are Calico selectors (`auditrail-calico-selector`).
//! - A report's id is a hash of its definition's name and its interval, so
//!   running the same interval again replaces the report instead of adding
//!   one.

use auditrail_proto::v1;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;

use crate::error::ReportError;

/// The most ticks a schedule may have in one hour.
pub const MAX_TICKS_PER_HOUR: usize = 12;

/// A parsed five-field schedule, in UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
}

fn to_chrono(t: Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.as_second(), 0)
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Timestamp::from_second(t.timestamp()).ok()
}

impl Schedule {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.split_whitespace().count() != 5 {
            return Err(format!(
                "{text:?} is not a five-field cron schedule (minute hour day-of-month month day-of-week)"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(text)
            .map_err(|e| format!("{text:?} is not a cron schedule: {e}"))?;
        Ok(Self { cron })
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let next = self.cron.find_next_occurrence(&to_chrono(t)?, false).ok()?;
        from_chrono(next)
    }

    /// The last tick at or before `t`.
    pub fn at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let prev = self
            .cron
            .find_previous_occurrence(&to_chrono(t)?, true)
            .ok()?;
        from_chrono(prev)
    }

    /// The most ticks in one clock hour.
    pub fn ticks_per_hour(&self) -> usize {
        let Ok(before_epoch) = Timestamp::from_second(-1) else {
            return 0;
        };
        let Some(first) = self.next_after(before_epoch) else {
            return 0;
        };
        let hour_start = first.as_second() - first.as_second().rem_euclid(3600);
        let hour_end = hour_start + 3600;
        // From the hour's start, so a tick at minute 0 counts.
        let Some(mut t) = Timestamp::from_second(hour_start - 1)
            .ok()
            .and_then(|t| self.next_after(t))
        else {
            return 0;
        };
        let mut count = 0;
        while t.as_second() < hour_end && count <= 60 {
            count += 1;
            match self.next_after(t) {
                Some(next) => t = next,
                None => break,
            }
        }
        count
    }
}

/// Whether `name` is a DNS-1123 subdomain.
fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(alnum)
                && label.ends_with(alnum)
                && label.chars().all(|c| alnum(c) || c == '-')
        })
}

fn check_selector(field: &str, selector: &str) -> Result<(), ReportError> {
    auditrail_calico_selector::parse(selector)
        .map(|_| ())
        .map_err(|e| ReportError::invalid(field, e))
}

fn check_match(field: &str, m: Option<&v1::NamesAndLabelsMatch>) -> Result<(), ReportError> {
    let Some(m) = m else { return Ok(()) };
    if m.names.iter().any(String::is_empty) {
        return Err(ReportError::invalid(
            format!("{field}.names"),
            "a name is empty",
        ));
    }
    check_selector(&format!("{field}.selector"), &m.selector)
}

/// Checks the writable fields of a definition (`field` prefixes the names
/// in errors: `definition`).
pub fn validate(def: &v1::ReportDefinition) -> Result<(), ReportError> {
    if !is_dns_subdomain(&def.name) {
        return Err(ReportError::invalid(
            "definition.name",
            format!(
                "{:?} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)",
                def.name
            ),
        ));
    }
    match v1::ReportType::try_from(def.report_type) {
        Ok(v1::ReportType::Unspecified) => {
            return Err(ReportError::invalid(
                "definition.report_type",
                "required: policy-audit, inventory or network-access",
            ));
        }
        Ok(_) => {}
        Err(_) => {
            return Err(ReportError::invalid(
                "definition.report_type",
                format!("unknown report type {}", def.report_type),
            ));
        }
    }
    if !def.schedule.is_empty() {
        let schedule = Schedule::parse(&def.schedule)
            .map_err(|e| ReportError::invalid("definition.schedule", e))?;
        let ticks = schedule.ticks_per_hour();
        if ticks > MAX_TICKS_PER_HOUR {
            return Err(ReportError::invalid(
                "definition.schedule",
                format!(
                    "{:?} fires {ticks} times in an hour; at most {MAX_TICKS_PER_HOUR} are allowed",
                    def.schedule
                ),
            ));
        }
    }
    if let Some(e) = &def.endpoints {
        check_selector("definition.endpoints.selector", &e.selector)?;
        check_match("definition.endpoints.namespaces", e.namespaces.as_ref())?;
        check_match(
            "definition.endpoints.service_accounts",
            e.service_accounts.as_ref(),
        )?;
    }
    Ok(())
}

/// The stable id of the report of definition `name` over [start, end).
pub fn report_id(name: &str, start: Timestamp, end: Timestamp) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("auditrail 2026 report id v1");
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(&start.as_nanosecond().to_le_bytes());
    hasher.update(&end.as_nanosecond().to_le_bytes());
    hasher.finalize().to_hex()[..32].to_owned()
}

/// A new etag for a definition written at `now`.
pub fn etag(def: &v1::ReportDefinition, now: Timestamp) -> String {
    use prost::Message as _;
    let mut copy = def.clone();
    copy.etag.clear();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&copy.encode_to_vec());
    hasher.update(&now.as_nanosecond().to_le_bytes());
    hasher.finalize().to_hex()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    /// The cron crate's own (laxer) parser accepts them too.
    fn plain_cron(text: &str) -> Option<Cron> {
        Cron::from_str(text).ok()
    }

    fn def(name: &str, schedule: &str) -> v1::ReportDefinition {
        v1::ReportDefinition {
            name: name.to_owned(),
            report_type: v1::ReportType::Inventory as i32,
            schedule: schedule.to_owned(),
            ..Default::default()
        }
    }

    fn field_of(err: ReportError) -> String {
        match err {
            ReportError::Invalid { field, .. } => field,
            other => panic!("not INVALID_ARGUMENT: {other}"),
        }
    }

    #[test]
    fn ticks_per_hour_counts_the_minute_field() {
        for (text, ticks) in [
            ("0 0 * * *", 1),
            ("*/5 * * * *", 12),
            ("*/4 * * * *", 15),
            ("* * * * *", 60),
            ("0,30 9-17 * * MON-FRI", 2),
            ("0 0 1 1 *", 1),
        ] {
            let s = Schedule::parse(text).unwrap();
            assert_eq!(s.ticks_per_hour(), ticks, "{text}");
            assert!(plain_cron(text).is_some(), "{text}");
        }
    }

    #[test]
    fn schedules_need_five_fields() {
        for text in [
            "",
            "* * * *",
            "0 * * * * *",
            "0 0 * * * 2026",
            "61 * * * *",
            "x y z a b",
        ] {
            assert!(Schedule::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn ticks_are_found_in_utc() {
        let s = Schedule::parse("0 0 * * *").unwrap();
        let t: Timestamp = "2026-05-01T10:00:00Z".parse().unwrap();
        assert_eq!(
            s.next_after(t).unwrap(),
            "2026-05-02T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(
            s.at_or_before(t).unwrap(),
            "2026-05-01T00:00:00Z".parse::<Timestamp>().unwrap()
        );
        let midnight: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
        assert_eq!(s.at_or_before(midnight).unwrap(), midnight);
    }

    #[test]
    fn invalid_definitions_name_the_field() {
        assert!(validate(&def("daily-inventory", "0 0 * * *")).is_ok());
        assert!(validate(&def("a.b-1", "")).is_ok());
        for bad in ["", "Daily", "-a", "a-", "a..b", "a_b", &"a".repeat(254)] {
            assert_eq!(
                field_of(validate(&def(bad, "")).unwrap_err()),
                "definition.name",
                "{bad:?}"
            );
        }
        let err = validate(&def("x", "* * * * *")).unwrap_err();
        assert!(err.to_string().contains("fires 60 times"), "{err}");
        assert_eq!(field_of(err), "definition.schedule");
        assert_eq!(
            field_of(validate(&def("x", "0 0 * *")).unwrap_err()),
            "definition.schedule"
        );
        let mut d = def("x", "");
        d.report_type = 0;
        assert_eq!(
            field_of(validate(&d).unwrap_err()),
            "definition.report_type"
        );
        d.report_type = 42;
        assert_eq!(
            field_of(validate(&d).unwrap_err()),
            "definition.report_type"
        );
        let mut d = def("x", "");
        d.endpoints = Some(v1::EndpointsSelection {
            selector: "app == ".into(),
            ..Default::default()
        });
        assert_eq!(
            field_of(validate(&d).unwrap_err()),
            "definition.endpoints.selector"
        );
        d.endpoints = Some(v1::EndpointsSelection {
            namespaces: Some(v1::NamesAndLabelsMatch {
                names: vec![],
                selector: "team in {".into(),
            }),
            ..Default::default()
        });
        assert_eq!(
            field_of(validate(&d).unwrap_err()),
            "definition.endpoints.namespaces.selector"
        );
    }

    #[test]
    fn report_ids_are_stable_per_definition_and_interval() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let a = report_id("d", t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"));
        assert_eq!(
            a,
            report_id("d", t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"))
        );
        assert_ne!(
            a,
            report_id("e", t("2026-01-01T00:00:00Z"), t("2026-01-02T00:00:00Z"))
        );
        assert_ne!(
            a,
            report_id("d", t("2026-01-01T00:00:00Z"), t("2026-01-03T00:00:00Z"))
        );
        assert_eq!(a.len(), 32);
    }
}
