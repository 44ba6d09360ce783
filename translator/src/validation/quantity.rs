//! The syntax check of `resource.Quantity` (k8s.io/apimachinery/pkg/api/resource): what
//! `ParseQuantity` accepts, with its error messages.

/// The error upstream returns for a malformed quantity.
pub const ERR_FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// The error for a well-formed number with an unknown suffix (`1Qi`).
pub const ERR_SUFFIX: &str = "unable to parse quantity's suffix";

/// Checks a quantity string; `Err` carries upstream's message.
pub fn parse_quantity(input: &str) -> Result<(), &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Err(ERR_FORMAT_WRONG);
    }
    if s == "0" {
        return Ok(());
    }
    let bytes = s.as_bytes();
    let end = bytes.len();
    let mut pos = 0;
    if matches!(bytes[0], b'-' | b'+') {
        pos += 1;
    }
    // Numerator and optional fraction.
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end && bytes[pos] == b'.' {
        pos += 1;
        while pos < end && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < end && matches!(bytes[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(ERR_FORMAT_WRONG);
    }
    let suffix = &s[suffix_start..];
    match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti"
        | "Pi" | "Ei" => Ok(()),
        _ if suffix.len() > 1
            && (suffix.starts_with('e') || suffix.starts_with('E'))
            && suffix[1..].parse::<i64>().is_ok() =>
        {
            Ok(())
        }
        _ => Err(ERR_SUFFIX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_upstream_accepts() {
        for q in [
            "Mi", "0", "1", "100m", "1.5", "1.5Gi", "512Mi", "2e3", "1E-3", "-1", "+3k", ".5",
            "1.", "0.1m", "12Ei", " 5 ",
        ] {
            assert_eq!(parse_quantity(q), Ok(()), "{q}");
        }
    }

    #[test]
    fn rejects_with_upstream_messages() {
        for q in ["", "abc", "1.2.3", "1 Gi", "1Gi5x"] {
            assert_eq!(parse_quantity(q), Err(ERR_FORMAT_WRONG), "{q}");
        }
        for q in ["1Qi", "1iK", "1ee", "--1"] {
            assert!(parse_quantity(q).is_err(), "{q}");
        }
        assert_eq!(parse_quantity("1ki"), Err(ERR_SUFFIX));
    }
}
