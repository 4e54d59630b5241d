//! Loading the RFC 4475 fixtures, for the test targets that use them.

// Each test target uses part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rfc4475")
}

/// One fixture's bytes, by name (the file stem).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every fixture with its name, in name order.
pub fn named_fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(names.len(), 49, "the 49 RFC 4475 messages");
    names
        .into_iter()
        .map(|n| {
            let bytes = fixture(&n);
            (n, bytes)
        })
        .collect()
}

/// Every fixture's bytes, in name order.
pub fn fixtures() -> Vec<Vec<u8>> {
    named_fixtures().into_iter().map(|(_, b)| b).collect()
}
