//! Reading address books for `contact import`: CSV with a header row
//! (RFC 4180 quoting; columns name, number/phone/numbers — several numbers
//! separated by ';' — company, email, matched case-insensitively) and vCard
//! 3.0/4.0 (FN or N, every TEL, ORG, EMAIL; folded lines; any number of
//! cards). Each record becomes a row with a label ("row 4", "card 2") so
//! skipped ones can be reported; checking the values is the caller's.

use anyhow::{bail, Result};
use dialtone_store::NewContact;

/// One record of the file, before its values are checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    /// Where it is in the file, for messages: "row 4", "card 2".
    pub label: String,
    pub contact: NewContact,
}

/// Whether `text` is a vCard file (whatever its name says).
pub fn looks_like_vcard(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .get(..11)
        .is_some_and(|s| s.eq_ignore_ascii_case("BEGIN:VCARD"))
}

const NAME_COLUMNS: [&str; 3] = ["name", "full name", "fn"];
const NUMBER_COLUMNS: [&str; 6] = [
    "number",
    "numbers",
    "phone",
    "phones",
    "phone number",
    "tel",
];
const COMPANY_COLUMNS: [&str; 4] = ["company", "organization", "organisation", "org"];
const EMAIL_COLUMNS: [&str; 3] = ["email", "e-mail", "mail"];

/// The records of a CSV file with a header row. Err when the header lacks
/// a name or a number column (saying which, and what it has).
pub fn parse_csv(text: &str) -> Result<Vec<Record>> {
    let mut records = csv_records(text.trim_start_matches('\u{feff}'))?.into_iter();
    let Some(header) = records.next() else {
        bail!("the file is empty: expected a header row (name, number, company, email)");
    };
    let header: Vec<String> = header.iter().map(|h| h.trim().to_lowercase()).collect();
    let find = |names: &[&str]| -> Vec<usize> {
        (0..header.len())
            .filter(|i| names.contains(&header[*i].as_str()))
            .collect()
    };
    let (name_cols, number_cols) = (find(&NAME_COLUMNS), find(&NUMBER_COLUMNS));
    let (company_cols, email_cols) = (find(&COMPANY_COLUMNS), find(&EMAIL_COLUMNS));
    let found = header.join(", ");
    let Some(&name_col) = name_cols.first() else {
        bail!("the CSV header has no name column (found: {found})");
    };
    if number_cols.is_empty() {
        bail!("the CSV header has no number column (call it number, phone or numbers; found: {found})");
    }
    let mut out = Vec::new();
    for (index, fields) in records.enumerate() {
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let field = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or_default();
        let optional = |cols: &[usize]| {
            cols.iter()
                .map(|i| field(*i))
                .find(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let numbers = number_cols
            .iter()
            .flat_map(|i| field(*i).split(';'))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        out.push(Record {
            // The header is row 1, as a spreadsheet shows it.
            label: format!("row {}", index + 2),
            contact: NewContact {
                name: field(name_col).to_owned(),
                numbers,
                company: optional(&company_cols),
                email: optional(&email_cols),
            },
        });
    }
    Ok(out)
}

/// RFC 4180 records: fields separated by ',', optionally in double quotes
/// (a doubled quote inside is one quote; commas and line breaks are kept).
fn csv_records(text: &str) -> Result<Vec<Vec<String>>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.trim().is_empty() => {
                field.clear();
                in_quotes = true;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                line += 1;
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        bail!("a quoted field is not closed (it starts before line {line})");
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// The cards of a vCard file (3.0 or 4.0; 2.1 without quoted-printable).
pub fn parse_vcard(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut card: Option<NewContact> = None;
    let mut structured_name = None;
    let mut count = 0;
    for line in unfold(text.trim_start_matches('\u{feff}')) {
        let Some((property, value)) = line.split_once(':') else {
            continue;
        };
        // "item1.TEL;TYPE=cell" -> "TEL"
        let name = property.split(';').next().unwrap_or_default();
        let name = name
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match name.as_str() {
            "BEGIN" if value.trim().eq_ignore_ascii_case("VCARD") => {
                card = Some(NewContact::default());
                structured_name = None;
            }
            "END" if value.trim().eq_ignore_ascii_case("VCARD") => {
                if let Some(mut c) = card.take() {
                    count += 1;
                    if c.name.is_empty() {
                        c.name = structured_name.take().unwrap_or_default();
                    }
                    out.push(Record {
                        label: format!("card {count}"),
                        contact: c,
                    });
                }
            }
            _ => {
                let Some(c) = card.as_mut() else { continue };
                let value = value.trim();
                match name.as_str() {
                    "FN" => c.name = unescape(value),
                    "N" => structured_name = Some(name_from_n(value)),
                    "TEL" if !value.is_empty() => c.numbers.push(unescape(value)),
                    "ORG" if c.company.is_none() => {
                        let org = unescape(first_component(value));
                        c.company = Some(org).filter(|o| !o.is_empty());
                    }
                    "EMAIL" if c.email.is_none() && !value.is_empty() => {
                        c.email = Some(unescape(value));
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// Logical lines: a line starting with a space or tab continues the previous one.
fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ => lines.push(raw.to_owned()),
        }
    }
    lines
}

/// "Family;Given;Middle;Prefix;Suffix" -> "Given Middle Family".
fn name_from_n(value: &str) -> String {
    let parts: Vec<String> = split_components(value)
        .iter()
        .map(|p| unescape(p))
        .collect();
    let get = |i: usize| parts.get(i).map(String::as_str).unwrap_or_default();
    [get(3), get(1), get(2), get(0), get(4)]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_component(value: &str) -> &str {
    split_components(value).first().copied().unwrap_or_default()
}

/// Splits on ';' not escaped with a backslash.
fn split_components(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            ';' if !escaped => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    parts.push(&value[start..]);
    parts
}

/// vCard text escapes: \n, \, \; \\.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn contact(
        name: &str,
        numbers: &[&str],
        company: Option<&str>,
        email: Option<&str>,
    ) -> NewContact {
        NewContact {
            name: name.into(),
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
            company: company.map(Into::into),
            email: email.map(Into::into),
        }
    }

    #[test]
    fn csv_with_quotes_and_several_numbers() {
        let text = "\u{feff}Name,Phone,Company,EMAIL\r\n\
                    \"Doe, Jane\",\"(555) 010-0123; +44 20 7946 0958\",\"Acme \"\"Labs\"\"\",jane@example.com\r\n\
                    \r\n\
                    Bob,555 010 0199,,\n\
                    ,555 010 0100,Nobody Inc,\n\
                    \"Multi\nLine\",1,,";
        let records = parse_csv(text).unwrap();
        let labels: Vec<&str> = records.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["row 2", "row 4", "row 5", "row 6"]);
        assert_eq!(
            records[0].contact,
            contact(
                "Doe, Jane",
                &["(555) 010-0123", "+44 20 7946 0958"],
                Some("Acme \"Labs\""),
                Some("jane@example.com")
            )
        );
        assert_eq!(
            records[1].contact,
            contact("Bob", &["555 010 0199"], None, None)
        );
        assert_eq!(records[2].contact.name, "");
        assert_eq!(records[3].contact.name, "Multi\nLine");
    }

    #[test]
    fn csv_header_must_name_name_and_number() {
        let err = parse_csv("full_name,phone\nA,1\n").unwrap_err().to_string();
        assert!(
            err.contains("no name column") && err.contains("full_name"),
            "{err}"
        );
        let err = parse_csv("name,mobile\nA,1\n").unwrap_err().to_string();
        assert!(
            err.contains("no number column") && err.contains("mobile"),
            "{err}"
        );
        assert!(parse_csv("").is_err());
        assert!(parse_csv("name,number\n\"open,1\n").is_err());
        assert_eq!(parse_csv("numbers,NAME\n").unwrap(), []);
    }

    #[test]
    fn vcards_3_and_4() {
        let text = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;Dr.;\r\nFN:Jane Doe\r\n\
                    ORG:Acme\\, Inc.;Research\r\nTEL;TYPE=WORK,VOICE:(555) 010-0123\r\n\
                    item1.TEL;TYPE=cell:+44 20 7946\r\n  0958\r\nEMAIL;TYPE=INTERNET:jane@example.com\r\n\
                    END:VCARD\r\n\
                    BEGIN:VCARD\nVERSION:4.0\nN:Smith;John;;;\nTEL;VALUE=uri;TYPE=\"voice,home\":tel:+1-555-010-0199\nEND:VCARD\n\
                    BEGIN:VCARD\nVERSION:4.0\nFN:No Number\nEND:VCARD\n";
        let records = parse_vcard(text);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].label, "card 1");
        assert_eq!(
            records[0].contact,
            contact(
                "Jane Doe",
                &["(555) 010-0123", "+44 20 7946 0958"],
                Some("Acme, Inc."),
                Some("jane@example.com")
            )
        );
        assert_eq!(
            records[1].contact,
            contact("John Smith", &["tel:+1-555-010-0199"], None, None)
        );
        assert!(records[2].contact.numbers.is_empty());
        assert!(looks_like_vcard("\n BEGIN:vcard\n"));
        assert!(!looks_like_vcard("name,number\n"));
    }
}
