//! The one error type every layer below HTTP returns. Each variant knows the Kubernetes
//! `Status` it becomes, so the edge renders errors without guessing from strings.

use serde_json::{Value, json};

/// One `details.causes[]` entry of a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueDuplicate`,
    /// `FieldManagerConflict`, `FieldValueForbidden`, `FieldValueTooLong` ...
    pub reason: String,
    pub message: String,
    /// Dotted path like `metadata.name` or `spec.containers[0].image`.
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause::new("FieldValueInvalid", field, message)
    }
    pub fn required(field: impl Into<String>) -> Self {
        Cause::new("FieldValueRequired", field, "Required value")
    }
}

/// What the object in an error was (`details.{group,kind,name}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub group: String,
    /// Kubernetes puts the resource (plural) here for most errors, e.g. `configmaps`.
    pub kind: String,
    pub name: String,
}

impl Subject {
    /// Boxed: errors travel in `Result`s everywhere, so `ApiError` stays small.
    pub fn boxed(group: &str, kind: &str, name: &str) -> Box<Self> {
        Box::new(Subject::new(group, kind, name))
    }

    pub fn new(group: &str, kind: &str, name: &str) -> Self {
        Subject {
            group: group.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }
}

/// A request failed in a way the client must be told about.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Forbidden {
        message: String,
        subject: Box<Subject>,
    },
    #[error("{message}")]
    NotFound {
        message: String,
        subject: Box<Subject>,
    },
    #[error("{message}")]
    MethodNotAllowed { message: String },
    #[error("{message}")]
    NotAcceptable { message: String },
    #[error("{message}")]
    AlreadyExists {
        message: String,
        subject: Box<Subject>,
    },
    #[error("{message}")]
    Conflict {
        message: String,
        subject: Box<Subject>,
        causes: Vec<Cause>,
    },
    #[error("{message}")]
    Gone { message: String },
    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    Invalid {
        message: String,
        subject: Box<Subject>,
        causes: Vec<Cause>,
    },
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{message}")]
    Internal { message: String },
    #[error("{message}")]
    ServiceUnavailable { message: String },
    #[error("{message}")]
    Timeout { message: String },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal {
            message: message.into(),
        }
    }
    pub fn gone(message: impl Into<String>) -> Self {
        ApiError::Gone {
            message: message.into(),
        }
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::NotAcceptable {
            message: message.into(),
        }
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        ApiError::UnsupportedMediaType {
            message: message.into(),
        }
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::MethodNotAllowed {
            message: message.into(),
        }
    }
    /// `<resource>.<group> "<name>" not found`, upstream's wording.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError::NotFound {
            message: format!("{} \"{}\" not found", qualified(group, resource), name),
            subject: Subject::boxed(group, resource, name),
        }
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError::AlreadyExists {
            message: format!("{} \"{}\" already exists", qualified(group, resource), name),
            subject: Subject::boxed(group, resource, name),
        }
    }
    /// The optimistic-concurrency failure clients retry on.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                qualified(group, resource),
                name,
                why
            ),
            subject: Subject::boxed(group, resource, name),
            causes: Vec::new(),
        }
    }
    /// 422 with one cause per bad field; `kind` is the Kind (e.g. `ConfigMap`).
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        ApiError::Invalid {
            message: format!(
                "{} \"{}\" is invalid: {}",
                qualified(group, kind),
                name,
                joined
            ),
            subject: Subject::boxed(group, kind, name),
            causes,
        }
    }
    pub fn forbidden(group: &str, resource: &str, name: &str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            message: message.into(),
            subject: Subject::boxed(group, resource, name),
        }
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest { .. } => 400,
            ApiError::Unauthorized { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::NotAcceptable { .. } => 406,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Gone { .. } => 410,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType { .. } => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Internal { .. } => 500,
            ApiError::ServiceUnavailable { .. } => 503,
            ApiError::Timeout { .. } => 504,
        }
    }

    /// The `reason` field of the Status (a `metav1.StatusReason`).
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::NotFound { .. } => "NotFound",
            ApiError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ApiError::NotAcceptable { .. } => "NotAcceptable",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Gone { .. } => "Expired",
            ApiError::PayloadTooLarge { .. } => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Internal { .. } => "InternalError",
            ApiError::ServiceUnavailable { .. } => "ServiceUnavailable",
            ApiError::Timeout { .. } => "Timeout",
        }
    }

    /// The full `v1.Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let mut details = serde_json::Map::new();
        let (subject, causes) = match self {
            ApiError::Forbidden { subject, .. }
            | ApiError::NotFound { subject, .. }
            | ApiError::AlreadyExists { subject, .. } => (Some(subject), None),
            ApiError::Conflict {
                subject, causes, ..
            }
            | ApiError::Invalid {
                subject, causes, ..
            } => (Some(subject), Some(causes)),
            ApiError::TooManyRequests { retry_after, .. } => {
                details.insert("retryAfterSeconds".into(), json!(retry_after));
                (None, None)
            }
            _ => (None, None),
        };
        if let Some(s) = subject {
            if !s.name.is_empty() {
                details.insert("name".into(), json!(s.name));
            }
            if !s.group.is_empty() {
                details.insert("group".into(), json!(s.group));
            }
            if !s.kind.is_empty() {
                details.insert("kind".into(), json!(s.kind));
            }
        }
        if let Some(causes) = causes
            && !causes.is_empty()
        {
            details.insert(
                "causes".into(),
                Value::Array(
                    causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect(),
                ),
            );
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_has_upstream_shape() {
        let s = ApiError::not_found("apps", "deployments", "web").status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"]["kind"], "deployments");
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "",
            "ConfigMap",
            "Bad_Name",
            vec![Cause::invalid(
                "metadata.name",
                "Invalid value: \"Bad_Name\"",
            )],
        );
        let s = e.status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
        assert!(
            s["message"]
                .as_str()
                .unwrap()
                .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name")
        );
    }
}
