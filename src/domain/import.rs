//! A CSV of accounts to register for one tenant, read into typed
//! registrations or the problems of its rows, each with its line number:
//! a file is taken whole or not at all, so every row is judged before
//! anything is written. Also the one CSV writer (RFC 4180 quoting) the
//! lists and the export use: a customer's name is data, and a comma or a
//! quote in it must not move the columns.

use std::collections::HashMap;

use super::{AccountId, NewAccount, ParseError, TenantId};

/// The columns of an import, as its header names them (in any order;
/// `account_id`, `customer` and `support` are required).
pub const COLUMNS: [&str; 6] = ["account_id", "customer", "support", "email", "price_book", "kind"];
const REQUIRED: [&str; 3] = ["account_id", "customer", "support"];

/// The most data rows a file sent from a chat may hold (`/link-accounts`):
/// a larger file is refused whole, before any row is judged. The command
/// line takes any number.
pub const CHAT_MAX_ROWS: usize = 1000;

/// What is wrong with one row (or with the file's header, line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// A value its domain parser refused.
    Invalid(ParseError),
    /// The header lacks a required column, names an unknown one or one twice.
    Header { column: String },
    /// Not as many fields as the header has columns.
    Fields { expected: usize, found: usize },
    /// A quoted field that never closes.
    Unclosed,
    /// The file holds a header and no row.
    Empty,
    /// The same account appears earlier in the file.
    Duplicate { account: AccountId, first_line: usize },
    /// The tenant holds a claim on the account already.
    AlreadyRegistered { account: AccountId },
    /// Another tenant owns the account.
    LinkedElsewhere { account: AccountId },
    /// The account has as many open claims as allowed.
    TooManyClaims { account: AccountId, max: usize },
    /// A management account cannot be linked by invitation.
    ManagementAccount { account: AccountId },
}

/// A row's problem, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// 1-based line of the file where the row starts.
    pub line: usize,
    pub error: RowError,
}

/// The rows of an import: registrations (with their lines) and problems.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportRows {
    pub rows: Vec<(usize, NewAccount)>,
    pub problems: Vec<RowProblem>,
    /// The data rows the file holds, good or not (blank ones are none).
    pub records: usize,
}

/// Reads a CSV file's text: UTF-8 with or without a byte-order mark; the
/// delimiter (comma or semicolon) is the one the header line uses.
pub fn read(text: &str, tenant: &TenantId) -> ImportRows {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().unwrap_or_default();
    // A header of known names holds no quotes: the first delimiter found
    // is the file's.
    let delimiter = if header_line.contains(';') && !header_line.contains(',') { b';' } else { b',' };
    let mut out = ImportRows::default();
    let (records, unclosed) = records(text, delimiter);
    let mut records = records.into_iter();
    let Some((_, header)) = records.next() else {
        out.problems.push(RowProblem { line: 1, error: RowError::Empty });
        return out;
    };
    // Spreadsheets capitalise headers: names are matched in any case.
    let mut columns: HashMap<String, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) || columns.insert(name.clone(), i).is_some() {
            out.problems.push(RowProblem { line: 1, error: RowError::Header { column: name } });
        }
    }
    for name in REQUIRED.iter().filter(|n| !columns.contains_key(**n)) {
        out.problems.push(RowProblem { line: 1, error: RowError::Header { column: (*name).to_owned() } });
    }
    if !out.problems.is_empty() {
        return out;
    }
    let mut seen: HashMap<AccountId, usize> = HashMap::new();
    for (line, fields) in records {
        // A blank line (often the last), or a row of empty cells as
        // spreadsheets leave below the data, is no row.
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        out.records += 1;
        if fields.len() != header.len() {
            let error = RowError::Fields { expected: header.len(), found: fields.len() };
            out.problems.push(RowProblem { line, error });
            continue;
        }
        let get = |name: &str| columns.get(name).map(|i| fields[*i].as_str()).filter(|v| !v.trim().is_empty());
        match row(&get, tenant) {
            Ok(new) => match seen.get(&new.id) {
                Some(first) => out
                    .problems
                    .push(RowProblem { line, error: RowError::Duplicate { account: new.id, first_line: *first } }),
                None => {
                    seen.insert(new.id, line);
                    out.rows.push((line, new));
                }
            },
            Err(e) => out.problems.push(RowProblem { line, error: RowError::Invalid(e) }),
        }
    }
    if let Some(line) = unclosed {
        out.problems.push(RowProblem { line, error: RowError::Unclosed });
    }
    if out.rows.is_empty() && out.problems.is_empty() {
        out.problems.push(RowProblem { line: 1, error: RowError::Empty });
    }
    out
}

fn row<'a>(get: &impl Fn(&str) -> Option<&'a str>, tenant: &TenantId) -> Result<NewAccount, ParseError> {
    Ok(NewAccount {
        id: get("account_id").unwrap_or_default().parse()?,
        tenant: tenant.clone(),
        customer: get("customer").unwrap_or_default().parse()?,
        support_tier: get("support").unwrap_or_default().parse()?,
        root_email: get("email").map(str::parse).transpose()?,
        price_book: get("price_book").map(str::parse).transpose()?,
        kind: get("kind").map(str::parse).transpose()?.unwrap_or_default(),
    })
}

/// The records of RFC 4180 text, each with the line it starts on, and the
/// line of a quoted field left open at the end, if one is.
fn records(text: &str, delimiter: u8) -> (Vec<(usize, Vec<String>)>, Option<usize>) {
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start, mut quoted_since) = (1, 1, None::<usize>);
    let mut chars = text.chars().peekable();
    let delimiter = char::from(delimiter);
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted_since.is_some() {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted_since = None,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted_since = Some(line),
            c if c == delimiter => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
                any = false;
            }
            _ => field.push(c),
        }
    }
    if any {
        fields.push(field);
        records.push((start, fields));
    }
    (records, quoted_since)
}

/// One CSV field as RFC 4180 writes it: quoted when it holds a comma, a
/// quote, a line break or a leading or trailing space; a quote doubled.
/// A leading `=`, `+`, `-` or `@` is written after a `'`, so a
/// spreadsheet shows the value rather than running it as a formula.
pub fn csv_field(value: &str) -> String {
    let value = match value.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if value.contains([',', '"', '\n', '\r', ';']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// A CSV line of `fields`, with its line end.
pub fn csv_line<S: AsRef<str>>(fields: impl IntoIterator<Item = S>) -> String {
    let mut line = fields.into_iter().map(|f| csv_field(f.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

impl RowError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Header { .. } => "header",
            Self::Fields { .. } => "fields",
            Self::Unclosed => "unclosed",
            Self::Empty => "empty",
            Self::Duplicate { .. } => "duplicate",
            Self::AlreadyRegistered { .. } => "already_registered",
            Self::LinkedElsewhere { .. } => "linked_elsewhere",
            Self::TooManyClaims { .. } => "too_many_claims",
            Self::ManagementAccount { .. } => "management_account",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        "900000000000000001".parse().unwrap()
    }

    #[test]
    fn reads_comma_and_semicolon_with_or_without_bom() {
        let comma = "account_id,customer,support,email,price_book,kind\n111111111111,\"Acme, Inc\",business,,,\n";
        let semi = "\u{feff}account_id;customer;support\r\n111111111111;Acme, Inc;business\r\n";
        for text in [comma, semi] {
            let read = read(text, &tenant());
            assert!(read.problems.is_empty(), "{:?}", read.problems);
            assert_eq!(read.rows.len(), 1);
            assert_eq!(read.records, 1);
            assert_eq!(read.rows[0].0, 2);
            assert_eq!(read.rows[0].1.customer.as_str(), "Acme, Inc");
        }
    }

    #[test]
    fn names_the_line_of_each_problem() {
        let text = "account_id,customer,support\n111111111111,A,business\n12,B,business\n111111111111,C,basic\n\
                    222222222222,D\n333333333333,\"E\nF\",basic\n444444444444,G,gold\n";
        let read = read(text, &tenant());
        let lines: Vec<(usize, &str)> = read.problems.iter().map(|p| (p.line, p.error.code())).collect();
        assert_eq!(lines, [(3, "invalid"), (4, "duplicate"), (5, "fields"), (6, "invalid"), (8, "invalid")]);
        assert_eq!(read.records, 6, "every data row counts, good or not");
    }

    #[test]
    fn refuses_a_bad_header_and_an_empty_file() {
        assert_eq!(read("account_id,name,support\n", &tenant()).problems[0].error.code(), "header");
        assert_eq!(read("account_id,customer,support\n", &tenant()).problems[0].error.code(), "empty");
        assert_eq!(read("", &tenant()).problems[0].error.code(), "empty");
        assert_eq!(read("account_id,customer,support\n,,\n , ,\n", &tenant()).problems[0].error.code(), "empty");
    }

    #[test]
    fn headers_match_in_any_case_and_empty_rows_are_skipped() {
        let read = read("Account_ID,Customer,SUPPORT\n111111111111,A,basic\n,,\n\n", &tenant());
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        assert_eq!(read.rows.len(), 1);
    }

    #[test]
    fn quotes_what_would_move_columns() {
        assert_eq!(csv_line(["a", "b,c", "say \"hi\"", "=1+1"]), "a,\"b,c\",\"say \"\"hi\"\"\",'=1+1\r\n");
    }
}
