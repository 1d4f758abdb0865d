//! A checker for the Swagger 2.0 / OpenAPI 3 schema subset the official descriptions use:
//! `$ref`, `allOf`, `type`, `properties`, `required`, `items`, `enum`, and the `date-time` and
//! `uuid` formats.
//!
//! It is stricter than JSON Schema in one way that matters here: an object property the schema
//! does not declare is an error, so a misspelt field fails the test. Names match
//! case-insensitively (the swagger spells `IsRefreshable` where the live service sends
//! `isRefreshable`), and a top-level `@odata.context` is allowed, as the live service sends it.

use serde_json::{Map, Value};

pub struct Schemas {
    doc: Value,
}

impl Schemas {
    pub fn powerbi() -> Self {
        Self::parse(include_str!("../schemas/powerbi.json"))
    }

    pub fn xero() -> Self {
        Self::parse(include_str!("../schemas/xero-identity.json"))
    }

    fn parse(text: &str) -> Self {
        Self {
            doc: serde_json::from_str(text).expect("schema file is JSON"),
        }
    }

    /// The declared success status of an operation and its body schema (`None`: no body).
    pub fn success(&self, operation: &str) -> (u16, Option<Value>) {
        let responses = self.doc["operations"][operation]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("operation {operation} is not in the extracted schemas"));
        let (code, schema) = responses.iter().next().expect("a success response");
        (
            code.parse().unwrap(),
            (!schema.is_null()).then(|| schema.clone()),
        )
    }

    /// Response headers the operation declares for a status.
    pub fn headers(&self, operation: &str, status: u16) -> Vec<String> {
        self.doc["operations"][operation]["responseHeaders"][status.to_string()]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The request body schema of an operation.
    pub fn request(&self, operation: &str) -> Value {
        self.doc["operations"][operation]["requestBody"].clone()
    }

    /// Every way `instance` breaks `schema`; empty when it conforms.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, instance, "$", &mut errors);
        errors
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or_default();
                let target = &self.doc["definitions"][name];
                assert!(!target.is_null(), "unresolved $ref {reference}");
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// Declared properties and required names, through `$ref` and `allOf`.
    fn members(
        &self,
        schema: &Value,
        properties: &mut Map<String, Value>,
        required: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        if let Some(own) = schema.get("properties").and_then(Value::as_object) {
            properties.extend(own.clone());
        }
        if let Some(names) = schema.get("required").and_then(Value::as_array) {
            required.extend(names.iter().filter_map(|n| n.as_str().map(str::to_owned)));
        }
        for part in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.members(part, properties, required);
        }
    }

    fn check(&self, schema: &Value, instance: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let mut properties = Map::new();
        let mut required = Vec::new();
        self.members(schema, &mut properties, &mut required);
        let declared_type = schema.get("type").and_then(Value::as_str);
        let is_object_schema = declared_type == Some("object")
            || !properties.is_empty()
            || schema.get("allOf").is_some();
        let ty = declared_type.or(is_object_schema.then_some("object"));

        let type_ok = match ty {
            Some("object") => instance.is_object(),
            Some("array") => instance.is_array(),
            Some("string") => instance.is_string(),
            Some("integer") => instance.is_i64() || instance.is_u64(),
            Some("number") => instance.is_number(),
            Some("boolean") => instance.is_boolean(),
            _ => true,
        };
        if !type_ok {
            errors.push(format!(
                "{at}: expected {}, got {instance}",
                ty.unwrap_or("?")
            ));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(instance)
        {
            errors.push(format!("{at}: {instance} is not one of {allowed:?}"));
        }
        if let (Some(format), Some(text)) = (
            schema.get("format").and_then(Value::as_str),
            instance.as_str(),
        ) {
            let ok = match format {
                // Xero's connections carry no offset; Power BI's do. Both are the "date-time" the
                // descriptions declare, as the real services send them.
                "date-time" => {
                    text.parse::<jiff::Timestamp>().is_ok()
                        || text.parse::<jiff::civil::DateTime>().is_ok()
                }
                "uuid" => uuid::Uuid::parse_str(text).is_ok(),
                _ => true,
            };
            if !ok {
                errors.push(format!("{at}: {text:?} is not a {format}"));
            }
        }
        match instance {
            Value::Object(fields) => {
                for name in &required {
                    if !fields.contains_key(name) {
                        errors.push(format!("{at}: required property {name:?} is missing"));
                    }
                }
                for (name, value) in fields {
                    let declared = properties
                        .get(name)
                        .or_else(|| {
                            properties
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v)
                        })
                        .or_else(|| {
                            (name == "@odata.context")
                                .then(|| properties.get("odata.context"))
                                .flatten()
                        });
                    match declared {
                        Some(property) => {
                            self.check(property, value, &format!("{at}.{name}"), errors)
                        }
                        None if name == "@odata.context" && at == "$" && !value.is_string() => {
                            errors.push(format!("{at}.{name}: expected a string"));
                        }
                        None if name == "@odata.context" && at == "$" => {}
                        None if is_object_schema => {
                            errors.push(format!("{at}: undeclared property {name:?}"))
                        }
                        None => {}
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }
}
