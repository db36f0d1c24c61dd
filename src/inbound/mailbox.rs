//! Messages from mailboxes on disk, for `gazette inbound import PATH...`,
//! where returns land in a mailbox instead of reaching the SMTP listener.
//!
//! What a path is decides how it is read:
//!
//! - a regular file starting with `From ` is an mbox (mboxrd): split on
//!   `From ` lines that open the file or follow a blank line; the `From_`
//!   line and the blank line before it are dropped, and one `>` is taken
//!   off every `>From `, `>>From `, ... line. It is streamed: one message
//!   in memory at a time, so a mailbox of gigabytes costs one message;
//! - any other regular file is one message;
//! - a folder with a `cur/` or `new/` folder is a Maildir: the files of
//!   `new/`, then of `cur/`, each sorted by name (`tmp/` holds deliveries
//!   still being written and is not read; Maildir++ subfolders such as
//!   `.Junk/` are folders of their own: name them to read them);
//! - any other folder: its files (each a message or an mbox) and its
//!   Maildir subfolders, sorted by name, one level deep only: a folder of
//!   saved messages or of Maildirs reads as expected, and a path to the
//!   wrong place (`/`, a home folder) cannot walk a whole tree.
//!
//! Names starting with `.` inside folders are skipped (Maildir's rule;
//! also editor and desktop litter). A path named on the command line is
//! followed if it is a symbolic link: the admin chose it. A link found
//! inside a folder is not followed but reported: whoever can write to a
//! mail folder could otherwise plant a link to a file gazette would read,
//! and keep, as a message. Files are opened `O_NONBLOCK | O_NOFOLLOW` and
//! their type is checked on the descriptor, as `content::scan` does: a
//! named pipe or a device is reported, never read (a read could block
//! for ever).
//!
//! Every problem is an item of its own, naming the path (and the line, in
//! an mbox): one bad message or path never stops the others.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One message found under the paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where it was found: the file's path, or `MBOX:LINE` with the line
    /// of its `From_` line, so an admin can find it again.
    pub origin: String,
    /// The message as stored (an mbox's `>From ` quoting undone).
    pub raw: Vec<u8>,
}

/// A path or message that could not be read; the others still are.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("{}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{}: cannot list the folder: {source}", path.display())]
    List { path: PathBuf, source: io::Error },
    /// What the path is instead: "a named pipe (FIFO)", "a symbolic link", ...
    #[error("{}: is {kind}, not a message file, mbox or Maildir; not read", path.display())]
    NotReadable { path: PathBuf, kind: &'static str },
    #[error("{origin}: {source}")]
    Read { origin: String, source: io::Error },
    #[error("{origin}: the message is {size} bytes, over the limit of {max}; not read")]
    TooBig {
        origin: String,
        size: u64,
        max: usize,
    },
}

impl MailboxError {
    /// The path (or `MBOX:LINE`) the error is about.
    pub fn origin(&self) -> String {
        match self {
            MailboxError::Open { path, .. }
            | MailboxError::List { path, .. }
            | MailboxError::NotReadable { path, .. } => path.display().to_string(),
            MailboxError::Read { origin, .. } | MailboxError::TooBig { origin, .. } => {
                origin.clone()
            }
        }
    }
}

/// Every message under `paths`, in a stable order: the paths in the order
/// given, each read as the module documentation says. A message over
/// `max_bytes` is an error item naming it (never read whole); a path that
/// does not exist or cannot be read is an error item naming it; the rest
/// goes on. Lazy: nothing is opened before the first `next()`.
pub fn read(paths: &[PathBuf], max_bytes: usize) -> Messages {
    Messages {
        max: max_bytes,
        pending: paths.iter().cloned().map(Pending::Named).collect(),
        mbox: None,
    }
}

/// The iterator [`read`] returns.
pub struct Messages {
    max: usize,
    /// What is still to be looked at, in order; a folder is replaced by its
    /// entries when it is reached.
    pending: VecDeque<Pending>,
    /// The mbox being split, if any: its messages come before `pending`.
    mbox: Option<Mbox>,
}

enum Pending {
    /// A path the caller named: followed if a link; a file or any folder.
    Named(PathBuf),
    /// A file found in a folder: not followed if a link.
    File(PathBuf),
    /// A subfolder found to be a Maildir.
    Maildir(PathBuf),
    /// A problem found while listing a folder, reported in its place.
    Failed(MailboxError),
}

impl Iterator for Messages {
    type Item = Result<Found, MailboxError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(mbox) = &mut self.mbox {
                match mbox.next_message(self.max) {
                    Some(item) => return Some(item),
                    None => self.mbox = None,
                }
            }
            let item = match self.pending.pop_front()? {
                Pending::Named(path) => self.named(path),
                Pending::File(path) => self.file(path, false),
                Pending::Maildir(path) => {
                    self.expand(Ok(maildir_entries(&path)));
                    None
                }
                Pending::Failed(err) => Some(Err(err)),
            };
            if item.is_some() {
                return item;
            }
        }
    }
}

impl Messages {
    /// A path the caller named: a folder is listed (its entries go first
    /// in line), a file read.
    fn named(&mut self, path: PathBuf) -> Option<Result<Found, MailboxError>> {
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                let entries = if is_maildir(&path) {
                    Ok(maildir_entries(&path))
                } else {
                    folder_entries(&path)
                };
                self.expand(entries);
                None
            }
            // A file, or something the open will name (a FIFO, a device).
            Ok(_) => self.file(path, true),
            Err(source) => Some(Err(MailboxError::Open { path, source })),
        }
    }

    /// Puts a folder's entries (or the error listing it) at the front.
    fn expand(&mut self, entries: Result<Vec<Pending>, MailboxError>) {
        match entries {
            Ok(entries) => {
                for entry in entries.into_iter().rev() {
                    self.pending.push_front(entry);
                }
            }
            Err(err) => self.pending.push_front(Pending::Failed(err)),
        }
    }

    /// One file: a message, or an mbox whose first message is returned
    /// (the rest follow from `self.mbox`).
    fn file(&mut self, path: PathBuf, follow: bool) -> Option<Result<Found, MailboxError>> {
        let (file, len) = match open_regular(&path, follow) {
            Ok(opened) => opened,
            Err(err) => return Some(Err(err)),
        };
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let starts_mbox = match reader.fill_buf() {
            Ok(head) => head.starts_with(b"From "),
            Err(source) => return Some(Err(read_error(&path, source))),
        };
        if starts_mbox {
            self.mbox = Some(Mbox::new(path, reader));
            return None;
        }
        let origin = path.display().to_string();
        if len > self.max as u64 {
            return Some(Err(MailboxError::TooBig {
                origin,
                size: len,
                max: self.max,
            }));
        }
        // One byte more than allowed: a file that grew since the stat is
        // still caught, and never read beyond the limit.
        let mut raw = Vec::with_capacity(len as usize);
        if let Err(source) = reader
            .take((self.max as u64).saturating_add(1))
            .read_to_end(&mut raw)
        {
            return Some(Err(MailboxError::Read { origin, source }));
        }
        if raw.len() > self.max {
            return Some(Err(MailboxError::TooBig {
                origin,
                size: raw.len() as u64,
                max: self.max,
            }));
        }
        Some(Ok(Found { origin, raw }))
    }
}

fn read_error(path: &Path, source: io::Error) -> MailboxError {
    MailboxError::Read {
        origin: path.display().to_string(),
        source,
    }
}

/// Opens a regular file without blocking (a FIFO would block the open
/// and every read) and, unless `follow`, without following a link; the
/// type is checked on the descriptor, so nothing swapped in between a
/// look and the open is read. Returns the file and its size.
fn open_regular(path: &Path, follow: bool) -> Result<(File, u64), MailboxError> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | nofollow)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) && !follow {
                MailboxError::NotReadable {
                    path: path.to_path_buf(),
                    kind: "a symbolic link (links inside folders are not followed)",
                }
            } else {
                MailboxError::Open {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    let meta = file.metadata().map_err(|source| MailboxError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok((file, meta.len()));
    }
    Err(MailboxError::NotReadable {
        path: path.to_path_buf(),
        kind: crate::content::scan::not_a_file(kind),
    })
}

/// A folder with `cur/` or `new/` (as real folders, not links).
fn is_maildir(path: &Path) -> bool {
    ["cur", "new"].iter().any(|sub| {
        fs::symlink_metadata(path.join(sub))
            .map(|m| m.is_dir())
            .unwrap_or(false)
    })
}

/// The files of `new/`, then `cur/`, each by name. A missing one of the
/// two is fine (a fresh Maildir may lack either); one that cannot be read
/// is an error item in its place.
fn maildir_entries(path: &Path) -> Vec<Pending> {
    let mut entries = Vec::new();
    for sub in ["new", "cur"] {
        let dir = path.join(sub);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            _ => continue,
        }
        match sorted_entries(&dir) {
            Ok(list) => entries.extend(list.into_iter().filter_map(|(p, kind)| {
                // Only files (and what the open will name: pipes, links);
                // a folder inside cur/ or new/ is no message.
                (!kind.is_dir()).then_some(Pending::File(p))
            })),
            Err(err) => entries.push(Pending::Failed(err)),
        }
    }
    entries
}

/// A plain folder: its files, and its subfolders that are Maildirs, by
/// name; other subfolders are not entered.
fn folder_entries(path: &Path) -> Result<Vec<Pending>, MailboxError> {
    Ok(sorted_entries(path)?
        .into_iter()
        .filter_map(|(p, kind)| {
            if kind.is_dir() {
                is_maildir(&p).then_some(Pending::Maildir(p))
            } else {
                Some(Pending::File(p))
            }
        })
        .collect())
}

/// A folder's entries not starting with `.`, sorted by name (bytes), with
/// their type as the folder says it (a link is a link, not its target).
fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, fs::FileType)>, MailboxError> {
    let list_error = |source| MailboxError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let kind = entry.file_type().map_err(list_error)?;
        entries.push((entry.path(), kind));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// An mbox being split, one message per call.
struct Mbox {
    path: PathBuf,
    reader: BufReader<File>,
    /// Lines read so far.
    line: u64,
    /// The line number of the `From_` line that opens the next message;
    /// `None` when the file is done.
    next_start: Option<u64>,
}

impl Mbox {
    /// `reader` is at the start of the file, which starts with `From `.
    fn new(path: PathBuf, reader: BufReader<File>) -> Mbox {
        Mbox {
            path,
            reader,
            line: 0,
            next_start: Some(1),
        }
    }

    /// The next message, up to the next `From_` line after a blank line or
    /// the end; a message over `max` is an error (its bytes are counted,
    /// not kept); a read error ends the file.
    fn next_message(&mut self, max: usize) -> Option<Result<Found, MailboxError>> {
        let start = self.next_start.take()?;
        let origin = format!("{}:{start}", self.path.display());
        let mut line = Vec::new();
        if start == 1 {
            // The file's own first line, the first message's From_ line.
            if let Err(source) = read_line(&mut self.reader, &mut line, max) {
                return Some(Err(MailboxError::Read { origin, source }));
            }
            self.line = 1;
        }
        let mut message = Message::new(max);
        // A blank line is held back until the next line shows whether it
        // is the separator before a From_ line (dropped) or content.
        let mut held_blank: Option<&'static [u8]> = None;
        loop {
            let len = match read_line(&mut self.reader, &mut line, max) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(source) => return Some(Err(MailboxError::Read { origin, source })),
            };
            self.line += 1;
            if held_blank.is_some() && line.starts_with(b"From ") {
                self.next_start = Some(self.line);
                break;
            }
            if let Some(blank) = held_blank.take() {
                message.push(blank, blank.len() as u64);
            }
            held_blank = match line.as_slice() {
                b"\n" => Some(b"\n"),
                b"\r\n" => Some(b"\r\n"),
                _ => None,
            };
            if held_blank.is_some() {
                continue;
            }
            // mboxrd: ">From ", ">>From ", ... lose one '>'.
            let quoted = line.first() == Some(&b'>') && {
                let rest = line.iter().position(|&b| b != b'>').map(|i| &line[i..]);
                rest.is_some_and(|r| r.starts_with(b"From "))
            };
            if quoted {
                message.push(&line[1..], len - 1);
            } else {
                message.push(&line, len);
            }
        }
        Some(message.finish(origin))
    }
}

/// One mbox message being gathered, or only measured once over the limit.
struct Message {
    bytes: Vec<u8>,
    size: u64,
    max: usize,
}

impl Message {
    fn new(max: usize) -> Message {
        Message {
            bytes: Vec::new(),
            size: 0,
            max,
        }
    }

    /// A line of `len` bytes, of which `kept` holds the first (all of
    /// them unless the line was longer than the limit).
    fn push(&mut self, kept: &[u8], len: u64) {
        self.size += len;
        if self.size > self.max as u64 {
            // Over the limit: free what was gathered, count the rest.
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(kept);
        }
    }

    fn finish(self, origin: String) -> Result<Found, MailboxError> {
        if self.size > self.max as u64 {
            return Err(MailboxError::TooBig {
                origin,
                size: self.size,
                max: self.max,
            });
        }
        Ok(Found {
            origin,
            raw: self.bytes,
        })
    }
}

/// Reads one line (with its `\n`, if any) into `buf`, keeping at most
/// `max + 1` bytes of it: a line longer than any allowed message is only
/// counted. Returns its full length, `None` at the end of the file.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<u64>> {
    buf.clear();
    let cap = max.saturating_add(1);
    let mut len: u64 = 0;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if chunk.is_empty() {
            return Ok((len > 0).then_some(len));
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = cap.saturating_sub(buf.len()).min(take);
        buf.extend_from_slice(&chunk[..room]);
        len += take as u64;
        reader.consume(take);
        if done {
            return Ok(Some(len));
        }
    }
}

/// The addresses a delivered copy was addressed to, from the headers, in
/// this order: every `Delivered-To`, every `X-Original-To`, then the `To`
/// addresses. Cheap: only the header block is looked at (up to the first
/// blank line), folded lines are unfolded, bare LF line ends are taken as
/// well as CRLF. Display names, comments and angle brackets are dropped;
/// only what contains an `@` is kept.
///
/// Why these three: the local delivery agents (Postfix's local and virtual,
/// Dovecot, procmail setups) record the envelope recipient in
/// `Delivered-To` / `X-Original-To`, which survives forwarding and alias
/// expansion; `To` is the last resort, written by the sender.
pub fn header_recipients(raw: &[u8]) -> Vec<String> {
    let mut delivered = Vec::new();
    let mut original = Vec::new();
    let mut to = Vec::new();
    for (name, value) in headers(raw) {
        let into = if name.eq_ignore_ascii_case(b"delivered-to") {
            &mut delivered
        } else if name.eq_ignore_ascii_case(b"x-original-to") {
            &mut original
        } else if name.eq_ignore_ascii_case(b"to") {
            &mut to
        } else {
            continue;
        };
        into.extend(addresses(&String::from_utf8_lossy(&value)));
    }
    delivered.extend(original);
    delivered.extend(to);
    delivered
}

/// The header fields (name, unfolded value) up to the first blank line.
/// A line that is neither a field nor a continuation (an mbox `From_`
/// line, garbage) is skipped.
fn headers(raw: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::new();
    let mut open = false;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            if open && let Some((_, value)) = fields.last_mut() {
                value.extend_from_slice(line);
            }
            continue;
        }
        open = false;
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
            continue;
        }
        fields.push((name, line[colon + 1..].to_vec()));
        open = true;
    }
    fields
}

/// The addresses of an RFC 5322 address list: `a@x, "Doe, J" <b@y>`,
/// groups (`team: a@x, b@y;`), comments, source routes (`<@r:c@z>`).
/// Lenient: whatever cannot be an address is left out.
fn addresses(value: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Per list item: the text outside comments and angle brackets (an
    // address written bare), and the inside of the last angle brackets.
    let mut bare = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut in_quote = false;
    let mut comment = 0u32;
    let mut escaped = false;
    let mut end_item = |bare: &mut String, angle: &mut Option<String>| {
        let address = match angle.take() {
            // `<@relay:user@host>`: the route goes.
            Some(inner) => match inner.strip_prefix('@').and_then(|r| r.split_once(':')) {
                Some((_, address)) => address.to_string(),
                None => inner,
            },
            None => std::mem::take(bare),
        };
        bare.clear();
        if address.contains('@') {
            found.push(address);
        }
    };
    for c in value.chars() {
        if escaped {
            escaped = false;
            if comment == 0 {
                push_to(&mut bare, &mut angle, in_angle, in_quote, c);
            }
            continue;
        }
        match c {
            '\\' if in_quote || comment > 0 => {
                escaped = true;
                if comment == 0 {
                    push_to(&mut bare, &mut angle, in_angle, in_quote, c);
                }
            }
            '"' if comment == 0 => {
                in_quote = !in_quote;
                push_to(&mut bare, &mut angle, in_angle, in_quote, c);
            }
            _ if in_quote => push_to(&mut bare, &mut angle, in_angle, in_quote, c),
            '(' => comment += 1,
            ')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '<' => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' => in_angle = false,
            _ if in_angle => push_to(&mut bare, &mut angle, in_angle, in_quote, c),
            ',' | ';' => end_item(&mut bare, &mut angle),
            // A group's name ends: what came before it is no address.
            ':' => {
                bare.clear();
                angle = None;
            }
            _ => push_to(&mut bare, &mut angle, in_angle, in_quote, c),
        }
    }
    end_item(&mut bare, &mut angle);
    found
}

/// One character of an address: whitespace outside quotes is folding,
/// not part of it.
fn push_to(bare: &mut String, angle: &mut Option<String>, in_angle: bool, in_quote: bool, c: char) {
    if c.is_whitespace() && !in_quote {
        return;
    }
    match (in_angle, angle) {
        (true, Some(inner)) => inner.push(c),
        _ => bare.push(c),
    }
}

#[cfg(test)]
mod tests;
