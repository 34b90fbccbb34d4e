//! A permissive `local@domain` e-mail address check (reference §7.2, like 1.0's).
//!
//! It is not RFC 5322: no quoted local parts, comments or address literals. It accepts what
//! people actually type and rejects anything that could smuggle a second address or a header
//! into a message. It is also no looser than the mail library's own check, so an address we
//! accept is never refused later when the mail is built.

/// The longest address, in bytes (the SMTP path limit of RFC 5321 minus the angle brackets).
pub const MAX_EMAIL_LENGTH: usize = 254;
/// The longest local part, in bytes (RFC 5321).
pub const MAX_LOCAL_LENGTH: usize = 64;
/// The longest domain, in bytes (RFC 1035).
pub const MAX_DOMAIN_LENGTH: usize = 255;
/// The longest domain label, in bytes (RFC 1035).
pub const MAX_LABEL_LENGTH: usize = 63;

/// Whether `s` is an acceptable e-mail address.
///
/// Rules: exactly one `@`; no whitespace, control characters or `<>()[],;:"\`; a non-empty
/// local part of at most 64 bytes without leading, trailing or doubled dots; a domain of
/// dot-separated labels (ASCII letters, digits, inner hyphens; 1–63 bytes each) of at most
/// 255 bytes; at most 254 bytes in all.
pub fn is_valid_email(s: &str) -> bool {
    if s.len() > MAX_EMAIL_LENGTH {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    is_valid_local(local) && is_valid_domain(domain)
}

fn is_valid_local(local: &str) -> bool {
    const FORBIDDEN: &str = "<>()[],;:\"\\@";
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LENGTH
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !FORBIDDEN.contains(c))
        // The mail library takes an unquoted local part as a dot-atom.
        && local.split('.').all(|atom| !atom.is_empty())
}

fn is_valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= MAX_DOMAIN_LENGTH
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LENGTH
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "john@example.com",
            "John.Smith+tag@mail.example.co.uk",
            "a@b",
            "root@localhost",
            "x_y-z!#$%&'*/=?^`{|}~@ex-ample.org",
            "zażółć@example.pl",
            "1@123.45",
        ] {
            assert!(is_valid_email(ok), "{ok:?}");
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "@",
            "john",
            "john@",
            "@example.com",
            "a@b@c",
            "john smith@example.com",
            "john@exa mple.com",
            " john@example.com",
            "john@example.com\n",
            "john@example.com\r\nBcc: x@y",
            "jo\thn@example.com",
            "jo\u{7f}@example.com",
            "<john@example.com>",
            "John <john@example.com>",
            "a,b@example.com",
            "a;b@example.com",
            "a:b@example.com",
            "\"a\"@example.com",
            "a\\b@example.com",
            "a(b)@example.com",
            "a[b]@example.com",
            "john@[127.0.0.1]",
            ".john@example.com",
            "john.@example.com",
            "jo..hn@example.com",
            "john@.example.com",
            "john@example.com.",
            "john@example..com",
            "john@-example.com",
            "john@example-.com",
            "john@exam_ple.com",
            "john@zażółć.pl",
            "john@example.com\u{a0}",
        ] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn length_limits() {
        let label = "a".repeat(63);
        assert!(is_valid_email(&format!("{}@x", "l".repeat(64))));
        assert!(!is_valid_email(&format!("{}@x", "l".repeat(65))));
        assert!(is_valid_email(&format!("x@{label}")));
        assert!(!is_valid_email(&format!("x@{label}a")));
        // 4 labels of 63 + 3 dots = 255 bytes of domain, but that breaks the 254 total.
        let domain = [label.as_str(); 4].join(".");
        assert_eq!(domain.len(), 255);
        assert!(!is_valid_email(&format!("x@{domain}")));
        let domain = format!("{}.{}", [label.as_str(); 3].join("."), "a".repeat(59));
        assert_eq!(format!("x@{domain}").len(), 253);
        assert!(is_valid_email(&format!("x@{domain}")));
        assert!(is_valid_email(&format!("xy@{domain}")));
        assert!(!is_valid_email(&format!("xyz@{domain}")));
        // The local limit is in bytes: 32 two-byte letters fit, 33 don't.
        assert!(is_valid_email(&format!("{}@x", "ż".repeat(32))));
        assert!(!is_valid_email(&format!("{}@x", "ż".repeat(33))));
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = is_valid_email(&s);
        }

        #[test]
        fn accepted_addresses_are_header_safe(s in "[a-z.@<>, \r\n\"-]{0,12}") {
            if is_valid_email(&s) {
                prop_assert!(s.matches('@').count() == 1);
                prop_assert!(!s.contains(['<', '>', ',', ' ', '\r', '\n', '"']));
            }
        }
    }
}
