//! The parts of the Kubernetes CEL libraries that real CRDs use in `x-kubernetes-validations`
//! and that the `cel` crate lacks: `duration(string)` (Gateway API timeouts, Istio
//! intervals), `isIP`/`isCIDR` (Istio ServiceEntry addresses), `isURL`, and the strings
//! extension's `lowerAscii`/`upperAscii`.
//!
//! `duration` yields the length in nanoseconds as an `int`: rules compare durations
//! (`duration(a) > duration(b)`), which integers do exactly; `string(duration(..))` and
//! timestamp arithmetic stay unsupported. Whatever else a rule calls (`url(..)`,
//! `quantity(..)`, `ip(..)`) is still skipped by the evaluator.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use cel::extractors::This;
use cel::{Context, ExecutionError};

/// Adds the library to a rule's context.
pub fn install(ctx: &mut Context<'_, '_>) {
    // Names the standard library already declares are refused by `add_function`; none of
    // these is one of them, and a refusal only leaves the rule skipped as before.
    let _ = ctx.add_function("duration", duration);
    let _ = ctx.add_function("isIP", |s: Arc<String>| is_ip(&s));
    let _ = ctx.add_function("isCIDR", |s: Arc<String>| is_cidr(&s));
    let _ = ctx.add_function("isURL", |s: Arc<String>| is_url(&s));
    let _ = ctx.add_function("lowerAscii", |This(s): This<Arc<String>>| {
        Arc::new(s.to_ascii_lowercase())
    });
    let _ = ctx.add_function("upperAscii", |This(s): This<Arc<String>>| {
        Arc::new(s.to_ascii_uppercase())
    });
}

fn duration(s: Arc<String>) -> Result<i64, ExecutionError> {
    parse_go_duration(&s).ok_or_else(|| {
        ExecutionError::function_error("duration", format!("time: invalid duration \"{s}\""))
    })
}

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns us µs ms s m h,
/// a bare `0` allowed; nanoseconds, None when malformed or past the int64 range.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut exact: i128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: i128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        exact = exact.checked_add(whole.checked_mul(unit)?)?;
        if !frac.is_empty() {
            let f: f64 = format!("0.{frac}").parse().ok()?;
            total += f * unit as f64;
        }
    }
    let nanos = exact + total as i128;
    let nanos = if negative { -nanos } else { nanos };
    i64::try_from(nanos).ok()
}

/// The library's `isIP`: an IPv4 or IPv6 address, no zone, not IPv4-mapped IPv6.
fn is_ip(s: &str) -> bool {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => true,
        Ok(IpAddr::V6(v6)) => !is_v4_mapped(&v6),
        Err(_) => false,
    }
}

fn is_v4_mapped(v6: &Ipv6Addr) -> bool {
    v6.to_ipv4_mapped().is_some()
}

/// The library's `isCIDR`: `address/prefix` with the prefix within the family's bits
/// (host bits may be set, as `netip.ParsePrefix` allows).
fn is_cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    if bits.is_empty()
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return false;
    }
    let Ok(bits) = bits.parse::<u32>() else {
        return false;
    };
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(v6)) => !is_v4_mapped(&v6) && bits <= 128,
        Err(_) => false,
    }
}

/// The library's `isURL` (Go's `url.ParseRequestURI` succeeds): an absolute URI with a
/// scheme, or an absolute path; no spaces or control characters; a numeric port if any.
fn is_url(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return false;
    }
    let Some(after) = rest.strip_prefix("//") else {
        // `scheme:opaque` is fine; `scheme:` alone is too (Go accepts `mailto:`).
        return true;
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host.strip_prefix('[') {
        let Some((addr, port)) = v6.split_once(']') else {
            return false;
        };
        let addr = addr.split('%').next().unwrap_or("");
        return addr.parse::<Ipv6Addr>().is_ok()
            && (port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())));
    }
    match host.rsplit_once(':') {
        Some((_, port)) => port.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("1ms"), Some(1_000_000));
        assert_eq!(parse_go_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("-2m"), Some(-120_000_000_000));
        assert_eq!(parse_go_duration("10µs"), Some(10_000));
        for bad in ["", "1", "s", "1x", "1..2s", "1s2", "-"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses_and_urls() {
        assert!(is_ip("10.0.0.1") && is_ip("2001:db8::1"));
        assert!(!is_ip("10.0.0.01") && !is_ip("::ffff:1.2.3.4") && !is_ip("example.com"));
        assert!(is_cidr("192.192.192.192/24") && is_cidr("2001:db8::/32"));
        assert!(!is_cidr("10.0.0.0/33") && !is_cidr("10.0.0.0") && !is_cidr("10.0.0.0/024"));
        assert!(is_url("oci://private-registry:5000/openid:latest") && is_url("/path"));
        assert!(is_url("https://[::1]:8443/x") && is_url("file:///opt/filter.wasm"));
        assert!(!is_url("private-registry/x") && !is_url("http://host:port/") && !is_url("a b"));
    }
}
