//! What the simulator keeps about the requests it serves rather than about any cloud: injected
//! faults, the request log and the per-principal rate limit windows.

use std::collections::{HashMap, VecDeque};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::clock::secs;
use crate::seed::RateLimit;

/// Requests kept in the log; older ones are dropped so a long demo cannot exhaust memory.
const REQUEST_LOG_CAPACITY: usize = 100_000;

/// Faults, the request log and rate limit windows.
#[derive(Debug)]
pub struct Traffic {
    faults: Vec<Fault>,
    requests: VecDeque<RequestRecord>,
    rate_windows: HashMap<String, (Timestamp, u32)>,
    next_fault_id: u64,
    next_request_seq: u64,
}

/// A fault injected through `POST /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Only requests with this method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths starting with this (all service paths when absent). Never `/_sim`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Answer with this status instead of serving the request.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many requests it affects; every matching one until `DELETE /_sim/faults` when absent.
    #[serde(default)]
    pub times: Option<u32>,
    /// Adds `Retry-After` to the faulted response.
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Waits this long (real time) before serving the request.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Serves the request, then waits this long (real time) before answering: the service
    /// acted and the caller has not heard yet (an answer slow or lost on the way back).
    #[serde(default)]
    pub answer_delay_ms: Option<u64>,
    /// Truncates the body so it is not valid JSON.
    #[serde(default)]
    pub malformed_body: bool,
}

/// A stored fault and how often it has fired.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub(crate) id: u64,
    #[serde(flatten)]
    pub(crate) spec: FaultSpec,
    pub(crate) fired: u32,
}

/// One served request, as `GET /_sim/requests` lists it. Holds no secrets.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub(crate) seq: u64,
    pub(crate) time: String,
    pub(crate) service: &'static str,
    pub(crate) method: String,
    pub(crate) path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    pub(crate) status: u16,
    pub(crate) principal: Option<String>,
    pub(crate) fault: bool,
}

/// A request the server answered, as it reports it for the log.
#[derive(Debug, Clone, Copy)]
pub struct ServedRequest<'a> {
    /// The service's name in the log.
    pub service: &'static str,
    /// HTTP method.
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string; logged with secret-looking values redacted.
    pub query: Option<&'a str>,
    /// Status code of the response.
    pub status: u16,
    /// The authenticated client id, when known.
    pub principal: Option<&'a str>,
    /// Whether a fault answered or altered it.
    pub fault: bool,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            faults: Vec::new(),
            requests: VecDeque::new(),
            rate_windows: HashMap::new(),
            next_fault_id: 1,
            next_request_seq: 1,
        }
    }
}

impl Traffic {
    /// Counts a request against the principal's rate limit; `Some(retry_after_seconds)` when
    /// it is over.
    pub fn rate_limited(
        &mut self,
        principal: &str,
        limit: Option<RateLimit>,
        now: Timestamp,
    ) -> Option<u64> {
        self.take(principal, limit?, now).err()
    }

    /// Counts one call against `limit` in the fixed window of `key`: the calls left in the
    /// window, or the seconds until it ends when none are left (the call is then not counted).
    pub fn take(&mut self, key: &str, limit: RateLimit, now: Timestamp) -> Result<u32, u64> {
        self.take_many(&[(key.to_owned(), limit)], 1, now)
            .map(|left| left[0])
            .map_err(|(_, wait)| wait)
    }

    /// Counts `calls` calls against every window in `windows` at once, or none when one has
    /// fewer left: the calls left in each window, or the index of the first window without room
    /// and the seconds until it ends. A window starts with the first call counted in it, so
    /// each key's windows reset at their own times (as Xero's per-tenant windows do).
    pub fn take_many(
        &mut self,
        windows: &[(String, RateLimit)],
        calls: u32,
        now: Timestamp,
    ) -> Result<Vec<u32>, (usize, u64)> {
        for (index, (key, limit)) in windows.iter().enumerate() {
            let length = secs(limit.window_seconds.max(1));
            let entry = self.rate_windows.entry(key.clone()).or_insert((now, 0));
            let window_end = entry.0.checked_add(length).unwrap_or(Timestamp::MAX);
            if now >= window_end {
                *entry = (now, 0);
            }
            if limit.requests.saturating_sub(entry.1) < calls {
                let left = entry
                    .0
                    .checked_add(length)
                    .unwrap_or(Timestamp::MAX)
                    .duration_since(now);
                let secs = left.as_secs() + i64::from(left.subsec_nanos() > 0);
                return Err((index, u64::try_from(secs.max(1)).unwrap_or(1)));
            }
        }
        Ok(windows
            .iter()
            .map(|(key, limit)| {
                let entry = self.rate_windows.entry(key.clone()).or_insert((now, 0));
                entry.1 += calls;
                limit.requests - entry.1
            })
            .collect())
    }

    /// The stored faults, oldest first.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// Adds a fault; returns it.
    pub fn add_fault(&mut self, spec: FaultSpec) -> Fault {
        let fault = Fault {
            id: self.next_fault_id,
            spec,
            fired: 0,
        };
        self.next_fault_id += 1;
        self.faults.push(fault.clone());
        fault
    }

    /// Removes every fault.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The first fault matching a request, counted as fired.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultSpec> {
        let fault = self.faults.iter_mut().find(|f| {
            f.spec.times.is_none_or(|t| f.fired < t)
                && f.spec
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && f.spec
                    .path_prefix
                    .as_deref()
                    .is_none_or(|p| path.starts_with(p))
        })?;
        fault.fired += 1;
        Some(fault.spec.clone())
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter()
    }

    /// How many requests the log holds.
    pub fn request_count(&self) -> usize {
        self.requests.len()
    }

    /// Empties the request log.
    pub fn clear_requests(&mut self) {
        self.requests.clear();
    }

    /// Appends a served request to the log.
    pub fn log(&mut self, served: ServedRequest<'_>, now: Timestamp) {
        let record = RequestRecord {
            seq: self.next_request_seq,
            time: format!("{now:.3}"),
            service: served.service,
            method: served.method.to_owned(),
            path: served.path.to_owned(),
            query: served.query.map(redact_query),
            status: served.status,
            principal: served.principal.map(str::to_owned),
            fault: served.fault,
        };
        self.next_request_seq += 1;
        if self.requests.len() >= REQUEST_LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
    }
}

/// Hides query values that could be secrets (codes, tokens, secrets, assertions).
fn redact_query(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let lower = key.to_ascii_lowercase();
        let secret = ["secret", "token", "assertion", "password", "verifier"]
            .iter()
            .any(|s| lower.contains(s))
            || lower == "code";
        out.append_pair(&key, if secret { "REDACTED" } else { &value });
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_looking_query_values() {
        let q = redact_query("client_id=a&code=xyz&client_secret=s&%24top=1");
        assert!(q.contains("client_id=a"));
        assert!(q.contains("code=REDACTED"));
        assert!(q.contains("client_secret=REDACTED"));
        assert!(q.contains("%24top=1"));
    }
}
