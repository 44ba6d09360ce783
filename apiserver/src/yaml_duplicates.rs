//! Keys given twice in one mapping of a block-style YAML body, with their lines, as go-yaml
//! reports them under strict decoding (`line 12: key "paused" already set in map`).
//! serde_yaml keeps the last value silently, so the raw text is scanned. The scan is
//! deliberately conservative: it gives up (reports nothing) on flow collections, anchors
//! and multi-document streams rather than risk naming a key that is not repeated.

/// `line N: key "k" already set in map` for every repeated key, in document order.
pub fn duplicate_keys(body: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Open mappings: (indentation of their keys, keys seen).
    let mut stack: Vec<(usize, Vec<String>)> = Vec::new();
    // While inside a block scalar (`|`, `>`): lines indented deeper than this are text.
    let mut block_scalar_parent: Option<usize> = None;
    for (index, raw) in body.lines().enumerate() {
        let line_no = index + 1;
        let trimmed_end = raw.trim_end();
        let content = trimmed_end.trim_start();
        let mut indent = trimmed_end.len() - content.len();
        if let Some(parent) = block_scalar_parent {
            if content.is_empty() || indent > parent {
                continue;
            }
            block_scalar_parent = None;
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.starts_with("---") || content.starts_with("...") {
            if index == 0 && content == "---" {
                continue;
            }
            return Vec::new();
        }
        if raw.contains('\t') && raw.starts_with('\t') {
            return Vec::new();
        }
        // Sequence items: each `- ` starts a new mapping further in.
        let mut rest = content;
        let mut new_item = false;
        while let Some(after) = rest
            .strip_prefix("- ")
            .or_else(|| (rest == "-").then_some(""))
        {
            new_item = true;
            let consumed = rest.len() - after.len();
            let inner = after.trim_start();
            indent += consumed + (after.len() - inner.len());
            rest = inner;
        }
        if new_item {
            // Mappings at or below the item's own key column belong to earlier items.
            stack.retain(|(i, _)| *i < indent);
        }
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if rest.starts_with(['{', '[', '&', '*', '!', '?', '|', '>']) {
            return Vec::new();
        }
        let Some((key, value)) = split_key(rest) else {
            // A plain scalar or a continuation line: not a key.
            continue;
        };
        let value = value.trim_start();
        if value.starts_with(['&', '*', '!', '{', '[']) || key == "<<" {
            return Vec::new();
        }
        while stack.last().is_some_and(|(i, _)| *i > indent) {
            stack.pop();
        }
        match stack.last_mut() {
            Some((i, keys)) if *i == indent => {
                if keys.contains(&key) {
                    found.push(format!("line {line_no}: key {key:?} already set in map"));
                } else {
                    keys.push(key);
                }
            }
            _ => stack.push((indent, vec![key])),
        }
        let value = value.split(" #").next().unwrap_or("").trim_end();
        if value.starts_with('|') || value.starts_with('>') {
            block_scalar_parent = Some(indent);
        }
    }
    found
}

/// `key: value` → (key, value); quoted keys are unquoted. `None` when the line is not a
/// mapping entry.
fn split_key(text: &str) -> Option<(String, &str)> {
    if let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = text[1..].find(quote)? + 1;
        let key = text[1..end].to_string();
        let after = text[end + 1..].strip_prefix(':')?;
        return (after.is_empty() || after.starts_with(' ')).then_some((key, after));
    }
    let mut search = 0;
    while let Some(pos) = text[search..].find(':') {
        let at = search + pos;
        let after = &text[at + 1..];
        if after.is_empty() || after.starts_with(' ') {
            let key = text[..at].trim_end();
            if key.is_empty() || key.contains(" #") {
                return None;
            }
            return Some((key.to_string(), after));
        }
        search = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of upstream's field_validation_test (`invalidBodyYAML`).
    const UPSTREAM: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: test
  name: test
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never";

    #[test]
    fn finds_upstreams_lines() {
        assert_eq!(
            duplicate_keys(UPSTREAM),
            [
                "line 5: key \"name\" already set in map",
                "line 12: key \"unknownDupe\" already set in map",
                "line 14: key \"paused\" already set in map",
                "line 28: key \"imagePullPolicy\" already set in map",
            ]
        );
    }

    #[test]
    fn separate_items_block_scalars_and_nesting_are_not_duplicates() {
        let body = "data:
  script: |
    name: a
    name: b
  other: x
items:
- name: a
  value: 1
- name: b
  value: 2
-   name: c
    nested:
      name: d
    value: 3
spec:
  containers:
  - name: web
    ports:
    - name: http
    - name: https
  name: top
\"quoted\": 1
'q2': 2
url: http://example.com:80/x
";
        assert!(
            duplicate_keys(body).is_empty(),
            "{:?}",
            duplicate_keys(body)
        );
        assert_eq!(
            duplicate_keys("a: 1\n\"a\": 2\nb:\n  - x: 1\n    x: 2\n"),
            [
                "line 2: key \"a\" already set in map",
                "line 5: key \"x\" already set in map"
            ]
        );
        // Flow collections and anchors: no verdict.
        assert!(duplicate_keys("a: {b: 1, b: 2}\na: 1\n").is_empty());
        assert!(duplicate_keys("a: &x 1\na: 2\n").is_empty());
    }
}
