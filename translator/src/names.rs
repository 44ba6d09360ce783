//! Server-generated names (`metadata.generateName`).

/// Upstream's alphabet: no vowels (no accidental words) and no look-alike characters.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `prefix` + five random characters, as the upstream name generator does; the prefix is
/// cut so the result stays within 63 characters.
pub fn generate(prefix: &str) -> String {
    let max_prefix = 63 - 5;
    let prefix = if prefix.len() > max_prefix {
        let mut end = max_prefix;
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        &prefix[..end]
    } else {
        prefix
    };
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_names_keep_prefix_and_length() {
        let n = super::generate("web-");
        assert!(n.starts_with("web-"));
        assert_eq!(n.len(), 9);
        assert_eq!(super::generate(&"x".repeat(80)).len(), 63);
    }
}
