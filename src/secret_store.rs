//! The credential Secrets the XeroDatasets reference: reading them, and writing rotated
//! refresh tokens with optimistic concurrency.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::api::FIELD_MANAGER;
use crate::error::{ClientError, ErrorCategory, Service};
use crate::http::truncate;
use crate::secret::SecretString;

/// The values of a Secret, with the resourceVersion they were read at.
#[derive(Debug, Clone)]
pub struct SecretValues {
    namespace: String,
    name: String,
    resource_version: String,
    data: BTreeMap<String, SecretString>,
    /// Keys whose value is not UTF-8 text, which no credential is.
    not_text: BTreeSet<String>,
}

impl SecretValues {
    /// Values read from a Secret `namespace/name` at `resource_version`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        resource_version: impl Into<String>,
        data: BTreeMap<String, SecretString>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            resource_version: resource_version.into(),
            data,
            not_text: BTreeSet::new(),
        }
    }

    /// The Secret's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The Secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The resourceVersion the values were read at; a write must name it.
    pub fn resource_version(&self) -> &str {
        &self.resource_version
    }

    /// The value of `key`, or `SecretKeyMissing` naming the Secret and the key (never a value)
    /// when the key is absent, empty or not text.
    pub fn value(&self, key: &str) -> Result<&SecretString, ClientError> {
        let missing = |what: &str| {
            ClientError::new(
                Service::Kubernetes,
                ErrorCategory::SecretKeyMissing,
                format!("Secret {}/{} {what} key {key:?}", self.namespace, self.name),
            )
        };
        if self.not_text.contains(key) {
            return Err(missing("has no UTF-8 text under"));
        }
        match self.data.get(key) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(missing("has an empty value under")),
            None => Err(missing("has no")),
        }
    }
}

/// The shape a credential in a Secret must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A Microsoft Entra tenant: a GUID, or a domain such as `contoso.onmicrosoft.com`.
    EntraTenant,
    /// A GUID, such as an Entra application (client) id.
    Guid,
    /// Letters and digits, such as a Xero app's client id.
    Alphanumeric,
    /// A secret or token: printable ASCII without white space.
    Opaque,
}

/// The longest credential the operator accepts from a Secret.
const MAX_VALUE_BYTES: usize = 8 * 1024;

impl Shape {
    fn fits(self, value: &str) -> bool {
        let guid = |v: &str| {
            v.len() == 36
                && v.char_indices().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => c == '-',
                    _ => c.is_ascii_hexdigit(),
                })
        };
        let domain = |v: &str| {
            v.len() <= 253
                && v.contains('.')
                && v.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        value.len() <= MAX_VALUE_BYTES
            && match self {
                Shape::EntraTenant => guid(value) || domain(value),
                Shape::Guid => guid(value),
                Shape::Alphanumeric => value.bytes().all(|b| b.is_ascii_alphanumeric()),
                Shape::Opaque => value.bytes().all(|b| b.is_ascii_graphic()),
            }
    }

    fn expected(self) -> &'static str {
        match self {
            Shape::EntraTenant => {
                "a tenant id (a GUID) or a domain such as contoso.onmicrosoft.com"
            }
            Shape::Guid => "a GUID such as 00000000-0000-0000-0000-000000000000",
            Shape::Alphanumeric => "letters and digits only",
            Shape::Opaque => "printable characters without white space",
        }
    }
}

impl SecretValues {
    /// The value of `key` if it has `shape` (at most 8 KiB); `SecretValueInvalid` naming the
    /// Secret, the key and the shape expected (never the value) otherwise.
    pub fn shaped(&self, key: &str, shape: Shape) -> Result<&SecretString, ClientError> {
        let value = self.value(key)?;
        if shape.fits(value.expose()) {
            return Ok(value);
        }
        Err(ClientError::new(
            Service::Kubernetes,
            ErrorCategory::SecretValueInvalid,
            format!(
                "Secret {}/{} key {key:?} does not hold {} (at most 8 KiB)",
                self.namespace,
                self.name,
                shape.expected()
            ),
        ))
    }
}

/// A write of some keys of a Secret, accepted only if the Secret is still at
/// `resource_version`.
#[derive(Debug, Clone)]
pub struct SecretWrite<'a> {
    /// The resourceVersion the caller read; the API server refuses the write (409 Conflict)
    /// when the Secret has changed since.
    pub resource_version: &'a str,
    /// Keys to set; other keys stay as they are.
    pub data: Vec<(&'a str, &'a SecretString)>,
    /// Annotations to set (never secret values).
    pub annotations: Vec<(&'a str, String)>,
}

/// What the credential code needs from Secrets: read, and write with a resourceVersion
/// precondition. [`SecretStore`] implements it on the Kubernetes API; tests wrap it to inject
/// failures.
pub trait SecretAccess: Send + Sync {
    /// Reads the Secret `namespace/name`: `SecretNotFound` when it does not exist.
    fn read(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<SecretValues, ClientError>> + Send;

    /// Writes keys of the Secret `namespace/name` if it is still at the given
    /// resourceVersion: `Conflict` when it changed, `SecretNotFound` when it is gone. Returns
    /// the new resourceVersion.
    fn write(
        &self,
        namespace: &str,
        name: &str,
        write: SecretWrite<'_>,
    ) -> impl Future<Output = Result<String, ClientError>> + Send;
}

/// The namespaces whose Secrets the operator may read and write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretScope {
    /// Every namespace: the operator watches some namespaces and has a Role in each, or was
    /// given cluster-wide Secret access (`*`).
    #[default]
    Everywhere,
    /// Only these, whose Secrets the operator was granted (none when empty).
    Namespaces(BTreeSet<String>),
}

impl SecretScope {
    /// The scope of the `--secret-namespaces` values: `*` for every namespace, else the names
    /// given (none when there are none).
    pub fn from_flag(values: &[String]) -> Self {
        let names: BTreeSet<String> = values
            .iter()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
            .collect();
        if names.contains("*") {
            Self::Everywhere
        } else {
            Self::Namespaces(names)
        }
    }

    /// Whether Secrets in `namespace` may be read.
    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            Self::Everywhere => true,
            Self::Namespaces(names) => names.contains(namespace),
        }
    }
}

/// Secrets on the Kubernetes API.
#[derive(Clone)]
pub struct SecretStore {
    client: kube::Client,
    scope: std::sync::Arc<SecretScope>,
}

impl SecretStore {
    /// A store using `client` (which needs get and patch on Secrets) in every namespace.
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            scope: std::sync::Arc::new(SecretScope::Everywhere),
        }
    }

    /// The same store, refusing Secrets outside `scope` without asking the API server.
    pub fn limited_to(self, scope: SecretScope) -> Self {
        Self {
            scope: std::sync::Arc::new(scope),
            ..self
        }
    }

    /// The namespaces whose Secrets it may read.
    pub fn scope(&self) -> &SecretScope {
        &self.scope
    }

    fn check_scope(&self, action: &str, namespace: &str, name: &str) -> Result<(), ClientError> {
        if self.scope.allows(namespace) {
            return Ok(());
        }
        Err(ClientError::new(
            Service::Kubernetes,
            ErrorCategory::SecretForbidden,
            format!(
                "the operator may not {action} Secret {namespace}/{name}: namespace {namespace} has not opted in to Secret access (the chart's rbac.secretNamespaces, the operator's --secret-namespaces)"
            ),
        ))
    }
}

impl SecretAccess for SecretStore {
    async fn read(&self, namespace: &str, name: &str) -> Result<SecretValues, ClientError> {
        self.check_scope("read", namespace, name)?;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|error| kube_error("read", namespace, name, &error))?
            .ok_or_else(|| not_found(namespace, name))?;
        let mut data = BTreeMap::new();
        let mut not_text = BTreeSet::new();
        for (key, ByteString(bytes)) in secret.data.unwrap_or_default() {
            match String::from_utf8(bytes) {
                // No credential starts or ends with white space, but a file made with `echo`
                // or an editor ends with a newline, and `kubectl create secret --from-file`
                // keeps it.
                Ok(text) => {
                    data.insert(key, SecretString::new(text.trim()));
                }
                Err(_) => {
                    not_text.insert(key);
                }
            }
        }
        Ok(SecretValues {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            resource_version: secret.metadata.resource_version.unwrap_or_default(),
            data,
            not_text,
        })
    }

    async fn write(
        &self,
        namespace: &str,
        name: &str,
        write: SecretWrite<'_>,
    ) -> Result<String, ClientError> {
        self.check_scope("write", namespace, name)?;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        // An encoding failure must fail the write: a null in a merge patch would delete the key.
        let data = write
            .data
            .iter()
            .map(|(key, value)| {
                serde_json::to_value(ByteString(value.expose().as_bytes().to_vec()))
                    .map(|encoded| ((*key).to_owned(), encoded))
            })
            .collect::<Result<Map<String, Value>, _>>()
            .map_err(|_| {
                ClientError::new(
                    Service::Kubernetes,
                    ErrorCategory::SecretAccessFailed,
                    format!("cannot encode the values to write to Secret {namespace}/{name}"),
                )
            })?;
        let annotations: Map<String, Value> = write
            .annotations
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::String(value.clone())))
            .collect();
        // A merge patch naming the resourceVersion is refused with 409 Conflict when the Secret
        // changed since it was read: the optimistic-concurrency precondition.
        let patch = Patch::Merge(json!({
            "metadata": {"resourceVersion": write.resource_version, "annotations": annotations},
            "data": data,
        }));
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let written = api
            .patch(name, &params, &patch)
            .await
            .map_err(|error| kube_error("write", namespace, name, &error))?;
        Ok(written.metadata.resource_version.unwrap_or_default())
    }
}

fn not_found(namespace: &str, name: &str) -> ClientError {
    ClientError::new(
        Service::Kubernetes,
        ErrorCategory::SecretNotFound,
        format!("Secret {namespace}/{name} not found"),
    )
}

/// Maps a Kubernetes API error. The API server's messages name objects and fields, not Secret
/// values; the patch body itself is never quoted.
fn kube_error(action: &str, namespace: &str, name: &str, error: &kube::Error) -> ClientError {
    match error {
        kube::Error::Api(status) if status.is_not_found() => not_found(namespace, name),
        kube::Error::Api(status) if status.code == 409 => ClientError::new(
            Service::Kubernetes,
            ErrorCategory::Conflict,
            format!("Secret {namespace}/{name} changed since it was read"),
        )
        .with_http_status(409),
        kube::Error::Api(status) if status.code == 403 => ClientError::new(
            Service::Kubernetes,
            ErrorCategory::SecretForbidden,
            format!(
                "the API server does not let the operator {action} Secret {namespace}/{name} (403 Forbidden): its RBAC does not cover namespace {namespace}; add it to the chart's rbac.secretNamespaces"
            ),
        )
        .with_http_status(403),
        kube::Error::Api(status) => ClientError::new(
            Service::Kubernetes,
            ErrorCategory::SecretAccessFailed,
            format!(
                "cannot {action} Secret {namespace}/{name}: {} {}: {}",
                status.code,
                status.reason,
                truncate(&status.message, 300)
            ),
        )
        .with_http_status(status.code),
        other => ClientError::new(
            Service::Kubernetes,
            ErrorCategory::SecretAccessFailed,
            format!(
                "cannot {action} Secret {namespace}/{name}: {}",
                truncate(&other.to_string(), 300)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_keys_name_secret_and_key() {
        let mut data = BTreeMap::new();
        data.insert("clientId".to_owned(), SecretString::new("id-value"));
        data.insert("refreshToken".to_owned(), SecretString::new(""));
        let values = SecretValues::new("finance", "xero-app", "7", data);
        assert_eq!(values.value("clientId").unwrap().expose(), "id-value");
        for key in ["clientSecret", "refreshToken"] {
            let error = values.value(key).unwrap_err();
            assert_eq!(error.category(), ErrorCategory::SecretKeyMissing);
            assert!(
                error.message().contains("finance/xero-app"),
                "{}",
                error.message()
            );
            assert!(error.message().contains(key));
            assert!(!error.message().contains("id-value"));
        }
    }

    #[test]
    fn secret_namespaces_opt_in_one_by_one_or_all_with_a_star() {
        let flag = |values: &[&str]| {
            SecretScope::from_flag(&values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>())
        };
        let none = flag(&[]);
        assert!(!none.allows("finance"));
        assert!(!flag(&[" ", ""]).allows(""));
        let some = flag(&["finance", " sales "]);
        assert!(some.allows("finance") && some.allows("sales"));
        assert!(!some.allows("kube-system"));
        assert_eq!(flag(&["finance", "*"]), SecretScope::Everywhere);
        assert!(SecretScope::Everywhere.allows("kube-system"));
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> SecretValues {
        SecretValues::new(
            "finance",
            "creds",
            "1",
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), SecretString::new(*v)))
                .collect(),
        )
    }

    #[test]
    fn credentials_of_the_wrong_shape_are_named_without_their_value() {
        let secret = values(&[
            ("tenant", "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a60"),
            ("domain", "contoso.onmicrosoft.com"),
            ("pasted", "7d0b1a8e-0c57-4d8e-9b3a-5f2c9d1e4a6"),
            ("xero", "0A1B2C3D4E5F60718293A4B5C6D7E8F9"),
            ("token", "abc.DEF_ghi-jkl~"),
            ("spaced", "two words"),
        ]);
        assert!(secret.shaped("tenant", Shape::EntraTenant).is_ok());
        assert!(secret.shaped("domain", Shape::EntraTenant).is_ok());
        assert!(secret.shaped("tenant", Shape::Guid).is_ok());
        assert!(secret.shaped("xero", Shape::Alphanumeric).is_ok());
        assert!(secret.shaped("token", Shape::Opaque).is_ok());
        for (key, shape) in [
            ("pasted", Shape::Guid),
            ("pasted", Shape::EntraTenant),
            ("domain", Shape::Guid),
            ("token", Shape::Alphanumeric),
            ("spaced", Shape::Opaque),
        ] {
            let error = secret.shaped(key, shape).expect_err(key);
            assert_eq!(error.category(), ErrorCategory::SecretValueInvalid);
            assert!(error.message().contains(&format!("{key:?}")), "{error}");
            assert!(!error.message().contains("7d0b1a8e"), "no value: {error}");
            assert!(!error.message().contains("words"), "no value: {error}");
        }
        let huge = "x".repeat(MAX_VALUE_BYTES + 1);
        let secret = values(&[("huge", &huge)]);
        assert!(secret.shaped("huge", Shape::Opaque).is_err());
    }
}
