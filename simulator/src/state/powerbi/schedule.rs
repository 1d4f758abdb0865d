//! Refresh schedules and the rules Update Refresh Schedule In Group enforces.

use serde_json::{Map, Value, json};

/// Day names as the service spells them.
pub const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The schedule of one dataset, as the service stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSchedule {
    /// Canonical day names.
    pub days: Vec<String>,
    /// `hh:mm` slots.
    pub times: Vec<String>,
    /// Whether scheduled refresh is on.
    pub enabled: bool,
    /// Windows time zone id.
    pub local_time_zone_id: String,
    /// `NoNotification` or `MailOnFailure`.
    pub notify_option: String,
}

/// What the PATCH rules depend on.
#[derive(Debug, Clone)]
pub struct ScheduleRules {
    /// Slots a day allowed by the capacity.
    pub max_slots: usize,
    /// The time picked when an enabled schedule has none.
    pub default_time: String,
    /// Reject a disabling request that carries any other field, even an unchanged one.
    pub strict_disable_request: bool,
    /// Reject a service principal's change that leaves `MailOnFailure` stored.
    pub refuse_stored_mail_on_failure: bool,
}

/// The live service's answer to a service principal that asks for, or leaves stored,
/// `MailOnFailure`.
const MAIL_ON_FAILURE_REFUSED: &str =
    "Invalid NotifyOption value 'MailOnFailure' for app only owner requests";

impl RefreshSchedule {
    /// The GET body (camelCase, as the live service sends it).
    pub fn to_json(&self) -> Value {
        json!({
            "days": self.days,
            "times": self.times,
            "enabled": self.enabled,
            "localTimeZoneId": self.local_time_zone_id,
            "notifyOption": self.notify_option,
        })
    }

    /// Applies a PATCH body (`{"value": {...}}`) and returns the new schedule, or why the
    /// service rejects it. Property names match case-insensitively, as the .NET service's do;
    /// unknown properties are ignored.
    pub fn patched(&self, body: &Value, rules: &ScheduleRules) -> Result<Self, String> {
        let value = body
            .as_object()
            .and_then(|o| field(o, "value"))
            .ok_or("The request body must be an object with a 'value' property.")?;
        let value = value
            .as_object()
            .ok_or("'value' must be a RefreshSchedule object.")?;

        let days = field(value, "days").map(parse_days).transpose()?;
        let times = field(value, "times")
            .map(|t| parse_times(t, rules.max_slots))
            .transpose()?;
        let enabled = match field(value, "enabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err("'enabled' must be a boolean.".into()),
        };
        let zone = match field(value, "localTimeZoneId") {
            None => None,
            Some(Value::String(z)) if !z.trim().is_empty() => Some(z.clone()),
            Some(_) => return Err("'localTimeZoneId' must be a time zone id.".into()),
        };
        let notify = match field(value, "notifyOption") {
            None => None,
            Some(Value::String(n)) if n.eq_ignore_ascii_case("NoNotification") => {
                Some("NoNotification".to_owned())
            }
            // Every caller here is a service principal, and those may only use NoNotification.
            Some(Value::String(n)) if n.eq_ignore_ascii_case("MailOnFailure") => {
                return Err(MAIL_ON_FAILURE_REFUSED.into());
            }
            Some(_) => return Err("'notifyOption' must be NoNotification or MailOnFailure.".into()),
        };

        if enabled == Some(false) {
            let others_present =
                days.is_some() || times.is_some() || zone.is_some() || notify.is_some();
            let others_change = days.as_ref().is_some_and(|d| *d != self.days)
                || times.as_ref().is_some_and(|t| *t != self.times)
                || zone.as_ref().is_some_and(|z| *z != self.local_time_zone_id)
                || notify.as_ref().is_some_and(|n| *n != self.notify_option);
            if others_change || (rules.strict_disable_request && others_present) {
                return Err(
                    "A request that disables the refresh schedule cannot change any other setting."
                        .into(),
                );
            }
        }

        let mut next = self.clone();
        if let Some(d) = days {
            next.days = d;
        }
        if let Some(t) = times {
            next.times = t;
        }
        if let Some(e) = enabled {
            next.enabled = e;
        }
        if let Some(z) = zone {
            next.local_time_zone_id = z;
        }
        if let Some(n) = notify {
            next.notify_option = n;
        }
        // A schedule a person configured usually stores MailOnFailure; any change by a service
        // principal that leaves it stored is refused, a disabling one included.
        if rules.refuse_stored_mail_on_failure && next.notify_option == "MailOnFailure" {
            return Err(MAIL_ON_FAILURE_REFUSED.into());
        }
        if next.enabled && next.days.is_empty() {
            return Err("At least one day must be specified for the refresh schedule.".into());
        }
        if next.enabled && next.times.is_empty() {
            next.times = vec![rules.default_time.clone()];
        }
        Ok(next)
    }
}

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Canonical day name for a case-insensitive spelling.
pub fn canonical_day(day: &str) -> Option<&'static str> {
    DAYS.iter().copied().find(|d| d.eq_ignore_ascii_case(day))
}

fn parse_days(value: &Value) -> Result<Vec<String>, String> {
    let items = value
        .as_array()
        .ok_or("'days' must be an array of day names.")?;
    if items.is_empty() {
        return Err("At least one day must be specified for the refresh schedule.".into());
    }
    let mut days: Vec<String> = Vec::new();
    for item in items {
        let day = item
            .as_str()
            .and_then(canonical_day)
            .ok_or_else(|| format!("'{}' is not a valid day.", display(item)))?;
        if !days.iter().any(|d| d == day) {
            days.push(day.to_owned());
        }
    }
    Ok(days)
}

fn parse_times(value: &Value, max_slots: usize) -> Result<Vec<String>, String> {
    let items = value
        .as_array()
        .ok_or("'times' must be an array of hh:mm strings.")?;
    let mut times: Vec<String> = Vec::new();
    for item in items {
        let time = item.as_str().filter(|t| valid_time(t)).ok_or_else(|| {
            format!(
                "'{}' is not a valid time: use hh:mm with minutes 00 or 30.",
                display(item)
            )
        })?;
        if times.iter().any(|t| t == time) {
            return Err(format!("The time '{time}' is specified more than once."));
        }
        times.push(time.to_owned());
    }
    if times.len() > max_slots {
        return Err(format!(
            "The refresh schedule has {} time slots; this capacity allows at most {max_slots} a day.",
            times.len()
        ));
    }
    Ok(times)
}

/// `hh:mm` with hh 00-23 and mm 00 or 30.
pub fn valid_time(time: &str) -> bool {
    let Some((hh, mm)) = time.split_once(':') else {
        return false;
    };
    hh.len() == 2
        && hh.bytes().all(|b| b.is_ascii_digit())
        && hh.parse::<u8>().is_ok_and(|h| h < 24)
        && (mm == "00" || mm == "30")
}

fn display(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ScheduleRules {
        ScheduleRules {
            max_slots: 8,
            default_time: "00:00".into(),
            strict_disable_request: true,
            refuse_stored_mail_on_failure: true,
        }
    }

    fn current() -> RefreshSchedule {
        RefreshSchedule {
            days: vec!["Monday".into()],
            times: vec!["06:00".into()],
            enabled: true,
            local_time_zone_id: "UTC".into(),
            notify_option: "NoNotification".into(),
        }
    }

    #[test]
    fn accepts_the_swagger_examples() {
        let s = current();
        for body in [
            json!({"value": {"notifyOption": "NoNotification"}}),
            json!({"value": {"days": ["Sunday", "Friday", "Saturday"], "times": ["07:00", "11:30", "16:00", "23:30"], "localTimeZoneId": "UTC"}}),
            json!({"value": {"times": ["08:00", "16:00"]}}),
            json!({"value": {"enabled": false}}),
        ] {
            s.patched(&body, &rules()).unwrap();
        }
    }

    #[test]
    fn rejects_what_the_docs_forbid() {
        let s = current();
        for body in [
            json!({"days": ["Monday"]}),
            json!({"value": {"times": ["06:15"]}}),
            json!({"value": {"times": ["24:00"]}}),
            json!({"value": {"times": ["6:00"]}}),
            json!({"value": {"times": ["06:00", "06:00"]}}),
            json!({"value": {"days": []}}),
            json!({"value": {"days": ["Funday"]}}),
            json!({"value": {"enabled": false, "times": ["07:00"]}}),
            json!({"value": {"enabled": "yes"}}),
            json!({"value": {"notifyOption": "MailOnFailure"}}),
            json!({"value": {"times": ["00:00","01:00","02:00","03:00","04:00","05:00","06:00","07:00","08:00"]}}),
        ] {
            assert!(
                s.patched(&body, &rules()).is_err(),
                "{body} should be rejected"
            );
        }
    }

    #[test]
    fn a_stored_mail_on_failure_must_go_first_in_its_own_change() {
        let mailing = RefreshSchedule {
            notify_option: "MailOnFailure".into(),
            ..current()
        };
        // Neither a change that leaves it stored nor a disable alone passes...
        for body in [
            json!({"value": {"times": ["07:00"]}}),
            json!({"value": {"enabled": false}}),
        ] {
            assert_eq!(
                mailing.patched(&body, &rules()).unwrap_err(),
                MAIL_ON_FAILURE_REFUSED,
                "{body}"
            );
        }
        // ...but with NoNotification a change passes, and then the disable does.
        let set = json!({"value": {"times": ["07:00"], "notifyOption": "NoNotification"}});
        assert_eq!(mailing.patched(&set, &rules()).unwrap().times, ["07:00"]);
        let quiet = mailing
            .patched(
                &json!({"value": {"notifyOption": "NoNotification"}}),
                &rules(),
            )
            .unwrap();
        assert!(
            !quiet
                .patched(&json!({"value": {"enabled": false}}), &rules())
                .unwrap()
                .enabled
        );
        // Switched off, the stored value is tolerated.
        let tolerant = ScheduleRules {
            refuse_stored_mail_on_failure: false,
            ..rules()
        };
        assert!(
            mailing
                .patched(&json!({"value": {"times": ["07:00"]}}), &tolerant)
                .is_ok()
        );
    }

    #[test]
    fn lenient_disable_allows_unchanged_fields() {
        let lenient = ScheduleRules {
            strict_disable_request: false,
            ..rules()
        };
        let body = json!({"value": {"enabled": false, "days": ["Monday"]}});
        assert!(!current().patched(&body, &lenient).unwrap().enabled);
        assert!(current().patched(&body, &rules()).is_err());
    }

    #[test]
    fn enabling_without_times_picks_a_default_and_needs_a_day() {
        let empty = RefreshSchedule {
            days: vec![],
            times: vec![],
            enabled: false,
            ..current()
        };
        assert!(
            empty
                .patched(&json!({"value": {"enabled": true}}), &rules())
                .is_err()
        );
        let s = empty
            .patched(
                &json!({"value": {"enabled": true, "days": ["monday"]}}),
                &rules(),
            )
            .unwrap();
        assert_eq!(s.days, vec!["Monday"]);
        assert_eq!(s.times, vec!["00:00"]);
        let s = current()
            .patched(
                &json!({"Value": {"NotifyOption": "NoNotification"}}),
                &rules(),
            )
            .unwrap();
        assert_eq!(s, current());
    }
}
