//! `Status` objects (`{"kind":"Status","apiVersion":"v1",...}`) in the shapes kube-apiserver
//! answers with: the messages and reasons are apimachinery's (`k8s.io/apimachinery/pkg/api/errors`,
//! `.../apis/meta/internalversion/validation`).

use serde_json::{json, Value};

/// A failure `Status` with `code`, `reason` and `message`, and `details` when given.
pub fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status["code"] = json!(code);
    status
}

/// The HTTP status code of a `Status` (500 when it has none).
pub fn code_of(status: &Value) -> u16 {
    status["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500)
}

/// 404 for a path no API serves.
pub fn path_not_found() -> Value {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// 404 for a node that does not exist.
pub fn node_not_found(name: &str) -> Value {
    failure(
        404,
        "NotFound",
        &format!("nodes \"{name}\" not found"),
        Some(json!({"name": name, "kind": "nodes"})),
    )
}

/// 405 for a verb the resource does not serve.
pub fn method_not_allowed() -> Value {
    failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

/// 403 as RBAC words it; `name` for a single node, `None` for the collection.
pub fn forbidden(user: &str, verb: &str, name: Option<&str>) -> Value {
    let subject = match name {
        Some(n) => format!("nodes \"{n}\""),
        None => "nodes".to_string(),
    };
    let message = format!(
        "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"nodes\" in API group \"\" at the cluster scope"
    );
    let details = match name {
        Some(n) => json!({"name": n, "kind": "nodes"}),
        None => json!({"kind": "nodes"}),
    };
    failure(403, "Forbidden", &message, Some(details))
}

/// 500 as a storage or handler failure is reported.
pub fn internal_error(cause: &str) -> Value {
    failure(
        500,
        "InternalError",
        &format!("Internal error occurred: {cause}"),
        Some(json!({"causes": [{"message": cause}]})),
    )
}

/// 429 from API priority and fairness.
pub fn too_many_requests() -> Value {
    failure(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        Some(json!({"retryAfterSeconds": 1})),
    )
}

/// 401 for a request without credentials when anonymous requests are refused.
pub fn unauthorized() -> Value {
    failure(401, "Unauthorized", "Unauthorized", None)
}

/// 400 with `message`.
pub fn bad_request(message: &str) -> Value {
    failure(400, "BadRequest", message, None)
}

/// 406: no media type of `Accept` is served.
pub fn not_acceptable() -> Value {
    failure(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        None,
    )
}

/// 410 `Expired` with `message` (too old resource version, expired continue token).
pub fn expired(message: &str) -> Value {
    failure(410, "Expired", message, None)
}

/// The message of a watch from a compacted resourceVersion, as the watch cache words it.
pub fn too_old_message(requested: u64, oldest: u64) -> String {
    format!("too old resource version: {requested} ({oldest})")
}

/// 504 for a resourceVersion the server has not reached within its wait.
pub fn too_large_resource_version(requested: u64, current: u64) -> Value {
    failure(
        504,
        "Timeout",
        &format!("Too large resource version: {requested}, current: {current}"),
        Some(json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        })),
    )
}

/// One field error of a validation (`field.Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// `field.Forbidden(path, detail)`.
    Forbidden { field: String, detail: String },
    /// `field.NotSupported(path, value, supported)`.
    NotSupported {
        field: String,
        value: String,
        supported: Vec<String>,
    },
}

impl FieldError {
    pub fn forbidden(field: &str, detail: &str) -> Self {
        FieldError::Forbidden {
            field: field.into(),
            detail: detail.into(),
        }
    }

    fn field(&self) -> &str {
        match self {
            FieldError::Forbidden { field, .. } | FieldError::NotSupported { field, .. } => field,
        }
    }

    /// The message without the field (a cause's `message`).
    fn body(&self) -> String {
        match self {
            FieldError::Forbidden { detail, .. } => format!("Forbidden: {detail}"),
            FieldError::NotSupported {
                value, supported, ..
            } => {
                let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
                format!(
                    "Unsupported value: \"{value}\": supported values: {}",
                    list.join(", ")
                )
            }
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            FieldError::Forbidden { .. } => "FieldValueForbidden",
            FieldError::NotSupported { .. } => "FieldValueNotSupported",
        }
    }
}

/// 422 `Invalid` for `ListOptions.meta.k8s.io`, as `errors.NewInvalid` builds it.
pub fn invalid_list_options(errors: &[FieldError]) -> Value {
    let messages: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field(), e.body()))
        .collect();
    let joined = match messages.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field()}))
        .collect();
    failure(
        422,
        "Invalid",
        &format!("ListOptions.meta.k8s.io \"\" is invalid: {joined}"),
        Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes})),
    )
}
