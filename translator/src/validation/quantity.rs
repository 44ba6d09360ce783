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

/// How a quantity is written, which decides how it is printed back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// The largest quantity upstream keeps (larger ones are capped to it).
const MAX_QUANTITY: u128 = i64::MAX as u128;

/// The canonical text of a valid quantity, as upstream's `Quantity.String()` prints it
/// after `ParseQuantity`: `0.1` → `100m`, `1000m` → `1`, `1024Mi` → `1Gi`, `1.5Gi` →
/// `1536Mi`, `1e3` stays `1e3`; values finer than `1n` round up to it. `None` when the
/// text does not parse (the caller reports that).
pub fn canonical_quantity(input: &str) -> Option<String> {
    parse_quantity(input).ok()?;
    let s = input.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let (format, exponent10, exponent2) = match suffix {
        "" => (Format::DecimalSi, 0, 0),
        "n" => (Format::DecimalSi, -9, 0),
        "u" => (Format::DecimalSi, -6, 0),
        "m" => (Format::DecimalSi, -3, 0),
        "k" => (Format::DecimalSi, 3, 0),
        "M" => (Format::DecimalSi, 6, 0),
        "G" => (Format::DecimalSi, 9, 0),
        "T" => (Format::DecimalSi, 12, 0),
        "P" => (Format::DecimalSi, 15, 0),
        "E" => (Format::DecimalSi, 18, 0),
        "Ki" => (Format::BinarySi, 0, 10),
        "Mi" => (Format::BinarySi, 0, 20),
        "Gi" => (Format::BinarySi, 0, 30),
        "Ti" => (Format::BinarySi, 0, 40),
        "Pi" => (Format::BinarySi, 0, 50),
        "Ei" => (Format::BinarySi, 0, 60),
        exp => (Format::DecimalExponent, exp[1..].parse::<i32>().ok()?, 0),
    };
    // value = digits × 2^exponent2 × 10^scale, exactly.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: u128 = if digits.is_empty() {
        0
    } else if digits.len() > 38 {
        u128::MAX
    } else {
        digits.parse().ok()?
    };
    let scale = exponent10.checked_sub(i32::try_from(fraction.len()).ok()?)?;
    if mantissa == 0 {
        return Some("0".to_string());
    }
    mantissa = mantissa.saturating_mul(1u128 << exponent2);
    // To (n, s) with value = n × 10^s and s ≥ -9, rounding away from zero at 1n.
    let (mut n, mut s) = if scale >= -9 {
        (mantissa, scale)
    } else {
        let divisor = 10u128.checked_pow(u32::try_from(-9 - scale).ok()?);
        match divisor {
            Some(d) => (mantissa.div_ceil(d), -9),
            None => (1, -9),
        }
    };
    // Cap at upstream's maximum (2^63-1).
    let too_big = match u32::try_from(s) {
        Ok(pos) => 10u128
            .checked_pow(pos)
            .and_then(|p| n.checked_mul(p))
            .is_none_or(|v| v > MAX_QUANTITY),
        Err(_) => false,
    };
    if too_big {
        n = MAX_QUANTITY;
        s = 0;
    }
    let sign = if negative { "-" } else { "" };
    let mut format = format;
    if format == Format::BinarySi {
        // Integers of at least 1024 print in binary; anything else would round.
        let integer = if s >= 0 {
            10u128
                .checked_pow(s.unsigned_abs())
                .and_then(|p| n.checked_mul(p))
        } else {
            let p = 10u128.pow(s.unsigned_abs());
            (n % p == 0).then_some(n / p)
        };
        match integer {
            Some(mut v) if v >= 1024 => {
                let mut times = 0;
                while v % 1024 == 0 && times < 6 {
                    v /= 1024;
                    times += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][times];
                return Some(format!("{sign}{v}{suffix}"));
            }
            _ => format = Format::DecimalSi,
        }
    }
    while n % 10 == 0 {
        n /= 10;
        s += 1;
    }
    let rem = s.rem_euclid(3);
    n = n.saturating_mul(10u128.pow(rem.unsigned_abs()));
    s -= rem;
    let suffix = match (format, s) {
        (Format::DecimalExponent, 0) => String::new(),
        (Format::DecimalExponent, e) => format!("e{e}"),
        (_, -9) => "n".into(),
        (_, -6) => "u".into(),
        (_, -3) => "m".into(),
        (_, 0) => String::new(),
        (_, 3) => "k".into(),
        (_, 6) => "M".into(),
        (_, 9) => "G".into(),
        (_, 12) => "T".into(),
        (_, 15) => "P".into(),
        (_, 18) => "E".into(),
        (_, e) => format!("e{e}"),
    };
    Some(format!("{sign}{n}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_as_upstream_prints() {
        for (input, want) in [
            ("0.1", "100m"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("1", "1"),
            ("1.0", "1"),
            ("0", "0"),
            ("0m", "0"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1Gi", "1Gi"),
            ("2000Mi", "2000Mi"),
            ("0.5Gi", "512Mi"),
            ("512", "512"),
            ("1536", "1536"),
            ("1Ki", "1Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("1000e0", "1e3"),
            ("1.5e3", "1500"),
            ("1500", "1500"),
            ("12000", "12k"),
            ("1k", "1k"),
            ("0.000000001", "1n"),
            ("0.0000000001", "1n"),
            ("-0.1", "-100m"),
            ("+3k", "3k"),
            (".5", "500m"),
            ("1.", "1"),
            ("250m", "250m"),
            ("0.25", "250m"),
            ("64Mi", "64Mi"),
            ("10Gi", "10Gi"),
            ("100M", "100M"),
            ("1000M", "1G"),
            ("8", "8"),
            (" 5 ", "5"),
        ] {
            assert_eq!(canonical_quantity(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(canonical_quantity("abc"), None);
    }

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
