//! Phone-number normalisation through the public API: the documented
//! examples, per region, and what is not a phone number. (Edge cases are
//! unit-tested in `phone` itself.)

use dialtone_store::phone::{is_known_region, normalize, regions};

#[test]
fn documented_examples() {
    for (input, region, want) in [
        ("(555) 010-0123", "US", "+15550100123"),
        ("555.010.0123", "US", "+15550100123"),
        ("1-555-010-0123", "US", "+15550100123"),
        ("+1 555 010 0123", "US", "+15550100123"),
        ("011 44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0049 30 123456", "DE", "+4930123456"),
        ("030 123456", "DE", "+4930123456"),
        ("06 1234 5678", "IT", "+390612345678"),
        ("tel:+1-555-010-0123", "GB", "+15550100123"),
        (
            "sip:+442079460958@carrier.example;user=phone",
            "US",
            "+442079460958",
        ),
    ] {
        assert_eq!(
            normalize(input, region).as_deref(),
            Some(want),
            "{input:?} in {region}"
        );
    }
}

#[test]
fn junk_and_extensions_are_not_numbers() {
    for input in [
        "1001", "junk", "", "+", "555-0100", "12345", "+1234", "call me",
    ] {
        assert_eq!(normalize(input, "US"), None, "{input:?}");
    }
}

#[test]
fn every_listed_region_is_known() {
    let listed: Vec<&str> = regions().collect();
    for code in [
        "US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "SE", "IE", "AU", "NZ",
        "IN", "JP", "BR", "MX",
    ] {
        assert!(listed.contains(&code) && is_known_region(code), "{code}");
    }
}
