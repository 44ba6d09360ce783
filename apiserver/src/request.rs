//! What a resource request addresses, parsed from its path and query string.

// ApiError carries a full Status (message, subject, causes); it is the crate-wide error type.

use std::sync::Arc;

use beemesh_translator::{ApiError, Registry, ResourceInfo};

/// A request for a resource collection, an object, or an object's subresource.
#[derive(Debug, Clone)]
pub struct ResourceTarget {
    pub resource: Arc<ResourceInfo>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// The query string as ordered pairs (repeated keys kept).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, _)| !k.is_empty())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter, read as upstream's `Convert_Slice_string_To_bool`: absent is
    /// false, `0` and `false` (any case) are false, anything else — even empty — is true.
    pub fn flag(&self, key: &str) -> bool {
        self.opt_flag(key).unwrap_or(false)
    }

    /// An optional boolean parameter (`*bool` upstream, e.g. `sendInitialEvents`).
    pub fn opt_flag(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
    }

    /// A non-negative integer parameter; garbage is a 400.
    pub fn uint(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value for {key}: {v:?} is not a non-negative integer"
                ))
            }),
        }
    }

    /// An integer parameter (an int64 upstream); garbage is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not an integer"))
            }),
        }
    }

    /// `dryRun`: absent, or `All` (the only value upstream accepts); anything else is
    /// upstream's 422 on the request's options kind (`CreateOptions`, `DeleteOptions` ...).
    pub fn dry_run(&self, options_kind: &str) -> Result<bool, ApiError> {
        let values = self.all("dryRun");
        validate_dry_run(&values, options_kind)?;
        Ok(!values.is_empty())
    }
}

/// Upstream's `ValidateDryRun`: every value must be `All`.
pub fn validate_dry_run(values: &[&str], options_kind: &str) -> Result<(), ApiError> {
    if values.iter().all(|v| *v == "All") {
        return Ok(());
    }
    let go_slice = format!(
        "[]string{{{}}}",
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Err(ApiError::invalid(
        "meta.k8s.io",
        options_kind,
        "",
        vec![beemesh_translator::Cause::new(
            "FieldValueNotSupported",
            "dryRun",
            format!("Unsupported value: {go_slice}: supported values: \"All\""),
        )],
    ))
}

/// Upstream's `IsValidPathSegmentName` check on a name taken from the URL: 400.
fn check_path_segment_name(name: &str) -> Result<(), ApiError> {
    let problems: Vec<&str> = match name {
        "." => vec!["may not be '.'"],
        ".." => vec!["may not be '..'"],
        _ => [("/", "may not contain '/'"), ("%", "may not contain '%'")]
            .into_iter()
            .filter(|(c, _)| name.contains(c))
            .map(|(_, why)| why)
            .collect(),
    };
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "Name parameter invalid: {name:?}: {}",
        problems.join(";")
    )))
}

fn not_found_path(path: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource (path {path})"),
        subject: Default::default(),
    }
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...` paths of resources.
/// `Ok(None)` means the path is a discovery path (no resource segment).
pub fn parse_resource_path(
    registry: &Registry,
    path: &str,
) -> Result<Option<ResourceTarget>, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    // A custom resource whose CRD this node has just seen established may not be
    // registered yet: let the registry catch up before answering 404.
    if !group.is_empty() {
        let plural = match rest {
            ["namespaces", _, plural, ..] => plural,
            [plural, ..] => plural,
            [] => "",
        };
        if registry.get(group, version, plural).is_none() {
            registry.refresh();
        }
    }
    let lookup = |plural: &str| {
        registry
            .get(group, version, plural)
            .ok_or_else(|| not_found_path(path))
    };
    let decode = |s: &str| -> Result<String, ApiError> {
        let decoded = percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request(format!("invalid path segment {s:?}")))?;
        Ok(decoded.into_owned())
    };
    let target = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if registry
                .get(group, version, plural)
                .is_some_and(|r| r.namespaced) =>
        {
            let resource = lookup(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(decode(name)?), None),
                [name, sub] => (Some(decode(name)?), Some(sub.to_string())),
                _ => return Err(not_found_path(path)),
            };
            ResourceTarget {
                resource,
                namespace: Some(decode(ns)?),
                name,
                subresource: sub,
            }
        }
        [plural, tail @ ..] => {
            let resource = lookup(plural)?;
            let (name, sub) = match tail {
                [] => (None, None),
                [name] => (Some(decode(name)?), None),
                [name, sub] => (Some(decode(name)?), Some(sub.to_string())),
                _ => return Err(not_found_path(path)),
            };
            if resource.namespaced && name.is_some() {
                // A namespaced object must be addressed under /namespaces/<ns>/.
                return Err(not_found_path(path));
            }
            ResourceTarget {
                resource,
                namespace: None,
                name,
                subresource: sub,
            }
        }
        [] => return Ok(None),
    };
    if let Some(sub) = &target.subresource
        && target.resource.subresource(sub).is_none()
    {
        return Err(not_found_path(path));
    }
    if let Some(name) = &target.name {
        if name.is_empty() {
            return Err(ApiError::bad_request("Name parameter required."));
        }
        check_path_segment_name(name)?;
    }
    // A namespace segment that decodes to more segments addresses nothing.
    if let Some(ns) = &target.namespace
        && (ns.is_empty() || ns.contains('/') || ns.contains('%') || ns == "." || ns == "..")
    {
        return Err(not_found_path(path));
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use beemesh_translator::{Registry, RegistryRefresh, ResourceInfo};

    use super::parse_resource_path;

    /// Registers `widgets.example.com/v1` when asked, as the CRD registrar does for a CRD
    /// its watch has not caught up with yet.
    struct LateRegistrar(Arc<Registry>);

    impl RegistryRefresh for LateRegistrar {
        fn refresh(&self) {
            self.0.insert(ResourceInfo {
                group: "example.com".into(),
                version: "v1".into(),
                kind: "Widget".into(),
                plural: "widgets".into(),
                singular: "widget".into(),
                namespaced: true,
                verbs: vec!["get".into(), "list".into(), "create".into()],
                list_kind: "WidgetList".into(),
                ..ResourceInfo::default()
            });
        }
    }

    #[test]
    fn an_unknown_resource_lets_the_registry_catch_up_before_404() {
        let registry = Arc::new(Registry::new());
        let path = "/apis/example.com/v1/namespaces/default/widgets/w1";
        assert!(parse_resource_path(&registry, path).is_err());

        let hook: Arc<dyn RegistryRefresh> = Arc::new(LateRegistrar(registry.clone()));
        registry.set_refresher(Arc::downgrade(&hook));
        let target = parse_resource_path(&registry, path)
            .expect("resolved after the refresh")
            .expect("a resource path");
        assert_eq!(target.resource.kind, "Widget");
        assert_eq!(target.name.as_deref(), Some("w1"));

        // The registry holds the hook weakly: once its owner is gone, a miss is a miss.
        drop(hook);
        assert!(!registry.refresh());
        assert!(parse_resource_path(&registry, "/apis/example.com/v1/gadgets").is_err());
    }
}
