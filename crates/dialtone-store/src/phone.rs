//! Phone-number normalisation to E.164 ("+15550100123"): what contacts are
//! stored and looked up by, so that "(555) 010-0123" typed into an address
//! book and "+15550100123" arriving as a caller ID find each other. Pure
//! functions over a small table of regions (ISO 3166 code → country code,
//! national trunk prefix, international prefixes, lengths of the national
//! significant number); used by the store, the CLI and the switch's
//! `lookup_contact` tool.

/// What the normaliser knows about one region.
#[derive(Debug, Clone, Copy)]
struct Region {
    /// ISO 3166-1 alpha-2, upper case.
    iso: &'static str,
    /// The country calling code, without '+'.
    country_code: &'static str,
    /// Dialled before a national number inside the country, dropped in E.164
    /// ("0" in most of Europe; "1" in NANP). None: numbers keep their leading
    /// digits (Italy keeps its 0, Spain and Mexico have none).
    trunk_prefix: Option<&'static str>,
    /// Dialled before an international number, longest first.
    international_prefixes: &'static [&'static str],
    /// Shortest and longest national significant number (after the trunk prefix).
    nsn_len: (usize, usize),
}

/// North American Numbering Plan: country code 1, trunk prefix 1, 011 out.
const NANP_INTL: &[&str] = &["011", "00"];
const INTL_00: &[&str] = &["00"];

const REGIONS: &[Region] = &[
    region("US", "1", Some("1"), NANP_INTL, (10, 10)),
    region("CA", "1", Some("1"), NANP_INTL, (10, 10)),
    region("GB", "44", Some("0"), INTL_00, (7, 10)),
    region("DE", "49", Some("0"), INTL_00, (6, 13)),
    region("FR", "33", Some("0"), INTL_00, (9, 9)),
    region("ES", "34", None, INTL_00, (9, 9)),
    region("IT", "39", None, INTL_00, (6, 11)),
    region("NL", "31", Some("0"), INTL_00, (9, 9)),
    region("BE", "32", Some("0"), INTL_00, (8, 9)),
    region("CH", "41", Some("0"), INTL_00, (9, 9)),
    region("AT", "43", Some("0"), INTL_00, (6, 13)),
    region("SE", "46", Some("0"), INTL_00, (7, 13)),
    region("IE", "353", Some("0"), INTL_00, (7, 10)),
    region("AU", "61", Some("0"), &["0011", "00"], (6, 10)),
    region("NZ", "64", Some("0"), INTL_00, (8, 10)),
    region("IN", "91", Some("0"), INTL_00, (10, 10)),
    region("JP", "81", Some("0"), &["010", "00"], (9, 10)),
    region("BR", "55", Some("0"), INTL_00, (10, 11)),
    region("MX", "52", None, INTL_00, (10, 10)),
];

const fn region(
    iso: &'static str,
    country_code: &'static str,
    trunk_prefix: Option<&'static str>,
    international_prefixes: &'static [&'static str],
    nsn_len: (usize, usize),
) -> Region {
    Region {
        iso,
        country_code,
        trunk_prefix,
        international_prefixes,
        nsn_len,
    }
}

/// E.164 allows at most 15 digits after the '+'.
const E164_MAX_DIGITS: usize = 15;
/// Fewer digits than this (country code included) is an extension or a
/// short code, not a phone number.
const E164_MIN_DIGITS: usize = 7;

/// The ISO codes of the regions [`normalize`] knows, in table order.
pub fn regions() -> impl Iterator<Item = &'static str> {
    REGIONS.iter().map(|r| r.iso)
}

/// Whether [`normalize`] knows the region (ISO code, any case).
pub fn is_known_region(code: &str) -> bool {
    find_region(code).is_some()
}

fn find_region(code: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.iso.eq_ignore_ascii_case(code))
}

/// The number in E.164 form ("+15550100123"), or None when it cannot be one.
///
/// Spaces, dashes, dots, slashes and parentheses are dropped, as is a leading
/// `tel:`/`sip:` scheme (the user part up to '@' or ';' is kept) and a "(0)"
/// written after the country code ("+44 (0)20 …"). A leading '+' keeps the
/// country code; the region's international prefix ("00"; "011" in NANP
/// regions, where "00" is accepted too) is read as '+'; any other number is
/// national: the region's trunk prefix ("0"; "1" before ten NANP digits) is
/// dropped and its country code put in front. The national part must have a
/// length the region allows; the result has 7 to 15 digits. Anything else
/// (letters, '*', '#', an extension like "1001", an unknown `default_region`
/// for a national number) gives None.
pub fn normalize(input: &str, default_region: &str) -> Option<String> {
    let digits = clean(input)?;
    if let Some(international) = digits.strip_prefix('+') {
        return international_number(international);
    }
    let region = find_region(default_region)?;
    if let Some(rest) = region
        .international_prefixes
        .iter()
        .find_map(|p| digits.strip_prefix(p))
    {
        return international_number(rest);
    }
    let nsn = national_significant(&digits, region)?;
    e164(region.country_code, nsn)
}

/// The input without separators and scheme: an optional '+' and digits only.
fn clean(input: &str) -> Option<String> {
    let mut s = input.trim().trim_start_matches('<').trim_end_matches('>');
    for scheme in ["tel:", "sips:", "sip:"] {
        if s.len() >= scheme.len()
            && s.is_char_boundary(scheme.len())
            && s[..scheme.len()].eq_ignore_ascii_case(scheme)
        {
            s = &s[scheme.len()..];
            s = s.split(['@', ';']).next().unwrap_or(s);
            break;
        }
    }
    let international = s.starts_with('+') || s.starts_with("00");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        // "+49 (0)30 …": the trunk prefix some people write in brackets.
        if international && !out.is_empty() && rest.starts_with("(0)") {
            rest = &rest[3..];
            continue;
        }
        match c {
            '+' if out.is_empty() => out.push('+'),
            '0'..='9' => out.push(c),
            ' ' | '\t' | '\u{a0}' | '-' | '.' | '/' | '(' | ')' => {}
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    (out.len() > usize::from(out.starts_with('+'))).then_some(out)
}

/// Digits after '+' (or an international prefix): country code and number.
fn international_number(digits: &str) -> Option<String> {
    if digits.starts_with('0') || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // When the country is one we know, hold its number to that country's lengths.
    if let Some(known) = REGIONS.iter().find(|r| digits.starts_with(r.country_code)) {
        let nsn = &digits[known.country_code.len()..];
        let (min, max) = known.nsn_len;
        if !(min..=max).contains(&nsn.len()) {
            return None;
        }
    }
    let total = digits.len();
    (E164_MIN_DIGITS..=E164_MAX_DIGITS)
        .contains(&total)
        .then(|| format!("+{digits}"))
}

/// The national significant number of a national `digits` in `region`:
/// without the trunk prefix when it has one, else as given.
fn national_significant<'a>(digits: &'a str, region: &Region) -> Option<&'a str> {
    let (min, max) = region.nsn_len;
    let fits = |s: &str| (min..=max).contains(&s.len());
    if let Some(stripped) = region.trunk_prefix.and_then(|p| digits.strip_prefix(p)) {
        if fits(stripped) {
            return Some(stripped);
        }
    }
    fits(digits).then_some(digits)
}

fn e164(country_code: &str, nsn: &str) -> Option<String> {
    let total = country_code.len() + nsn.len();
    (E164_MIN_DIGITS..=E164_MAX_DIGITS)
        .contains(&total)
        .then(|| format!("+{country_code}{nsn}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(input: &str, region: &str) -> Option<String> {
        normalize(input, region)
    }

    fn is(input: &str, region: &str, want: &str) {
        assert_eq!(
            n(input, region).as_deref(),
            Some(want),
            "{input:?} in {region}"
        );
    }

    #[test]
    fn north_american_forms() {
        for input in [
            "(555) 010-0123",
            "555.010.0123",
            "555-010-0123",
            "5550100123",
            "1-555-010-0123",
            "1 (555) 010-0123",
            "+1 555 010 0123",
            "+15550100123",
            "tel:+1-555-010-0123",
            "sip:+15550100123@carrier.example;user=phone",
            "<sip:5550100123@pbx.example>",
        ] {
            is(input, "US", "+15550100123");
        }
        is("(555) 010-0123", "CA", "+15550100123");
        is("(555) 010-0123", "us", "+15550100123");
    }

    #[test]
    fn international_prefixes() {
        is("011 44 20 7946 0958", "US", "+442079460958");
        is("00 44 20 7946 0958", "US", "+442079460958");
        is("0049 30 123456", "DE", "+4930123456");
        is("0011 44 20 7946 0958", "AU", "+442079460958");
        is("010 1 555 010 0123", "JP", "+15550100123");
        // 011 is not international outside NANP: 0114 is Sheffield.
        is("0114 496 0000", "GB", "+441144960000");
        is("+44 (0)20 7946 0958", "US", "+442079460958");
        is("+49 (0)30 123456", "DE", "+4930123456");
    }

    #[test]
    fn national_numbers_with_trunk_prefix() {
        is("020 7946 0958", "GB", "+442079460958");
        is("030 123456", "DE", "+4930123456");
        is("030/123456", "DE", "+4930123456");
        is("01 23 45 67 89", "FR", "+33123456789");
        is("020 123 4567", "NL", "+31201234567");
        is("02 9876 5432", "AU", "+61298765432");
        is("090-1234-5678", "JP", "+819012345678");
        is("01 234 5678", "IE", "+35312345678");
    }

    #[test]
    fn national_numbers_without_trunk_prefix() {
        // Italy keeps the leading 0 in E.164.
        is("06 1234 5678", "IT", "+390612345678");
        is("+39 06 1234 5678", "US", "+390612345678");
        is("912 345 678", "ES", "+34912345678");
        is("55 1234 5678", "MX", "+525512345678");
    }

    #[test]
    fn not_phone_numbers() {
        for input in [
            "",
            "   ",
            "+",
            "1001",
            "+1001",
            "abc",
            "555-CALL-NOW",
            "12345",
            "*97",
            "1001#",
            "+0123456789",
            "++15550100123",
            "5550100",        // seven NANP digits: no area code
            "+1 555 010 012", // nine digits after +1
            "1234567890123456789",
            "+12345678901234567",
            "sip:alice@example.com",
        ] {
            assert_eq!(n(input, "US"), None, "{input:?}");
        }
        // A national number in a region the table does not know.
        assert_eq!(n("020 7946 0958", "XX"), None);
        // An international one does not need the region.
        is("+442079460958", "XX", "+442079460958");
        // A country we do not know: only the E.164 length rule applies.
        is("+2125 2212 3456", "US", "+212522123456");
    }

    #[test]
    fn regions_are_known() {
        for code in [
            "US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "SE", "IE", "AU",
            "NZ", "IN", "JP", "BR", "MX",
        ] {
            assert!(is_known_region(code), "{code}");
        }
        assert!(is_known_region("gb"));
        assert!(!is_known_region("XX"));
        assert_eq!(regions().count(), REGIONS.len());
    }
}
