use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::*;

const MAX: usize = 64 * 1024;

/// A short DSN-like message with `subject`, CRLF line ends.
fn message(subject: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@relay.example.net>\r\n\
         To: bounces+d1-aaaaaaaaaaaaaaaa@news.example.org\r\n\
         Subject: {subject}\r\n\
         \r\n\
         The mail system could not deliver it.\r\n"
    )
}

fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    path
}

/// Runs `read` on another thread and fails the test if it has not finished
/// within 20 s (a blocked open or read of a FIFO would hang it).
fn read_all(paths: &[PathBuf], max: usize) -> Vec<Result<Found, MailboxError>> {
    let paths = paths.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read(&paths, max).collect::<Vec<_>>());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the read did not finish: it blocked")
}

/// Each item as "ok ORIGIN" or "error TEXT".
fn summary(items: &[Result<Found, MailboxError>]) -> Vec<String> {
    items
        .iter()
        .map(|item| match item {
            Ok(found) => format!("ok {}", found.origin),
            Err(err) => format!("error {err}"),
        })
        .collect()
}

fn raws(items: Vec<Result<Found, MailboxError>>) -> Vec<Vec<u8>> {
    items.into_iter().map(|item| item.unwrap().raw).collect()
}

#[test]
fn a_file_is_one_message_as_stored() {
    let tmp = TempDir::new().unwrap();
    let text = message("Undelivered Mail Returned to Sender");
    let path = write(tmp.path(), "bounce.eml", &text);

    let items = read_all(std::slice::from_ref(&path), MAX);

    assert_eq!(
        summary(&items),
        [format!("ok {}", path.display())],
        "{items:?}"
    );
    assert_eq!(raws(items), [text.into_bytes()]);
}

#[test]
fn a_maildir_reads_new_then_cur_by_name_and_skips_tmp_and_dot_files() {
    let tmp = TempDir::new().unwrap();
    let md = tmp.path().join("Maildir");
    write(&md, "cur/1700000002.M2P9.relay:2,S", message("cur b"));
    write(&md, "cur/1700000001.M1P9.relay:2,S", message("cur a"));
    write(&md, "new/1700000004.M4P9.relay", message("new b"));
    write(&md, "new/1700000003.M3P9.relay", message("new a"));
    write(&md, "tmp/1700000005.M5P9.relay", message("being written"));
    write(&md, "cur/.hidden", message("not a message"));
    write(&md, "dovecot-uidlist", "3 V1 N5\n");
    fs::create_dir(md.join(".Junk")).unwrap();
    write(&md, ".Junk/cur/1700000006.M6P9.relay:2,", message("junk"));

    let items = read_all(std::slice::from_ref(&md), MAX);

    let names: Vec<String> = summary(&items)
        .iter()
        .map(|s| {
            s.strip_prefix(&format!("ok {}/", md.display()))
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "new/1700000003.M3P9.relay",
            "new/1700000004.M4P9.relay",
            "cur/1700000001.M1P9.relay:2,S",
            "cur/1700000002.M2P9.relay:2,S",
        ]
    );
    assert_eq!(raws(items)[2], message("cur a").into_bytes());
}

#[test]
fn a_plain_folder_reads_its_files_and_maildirs_one_level_deep() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("returns");
    write(&dir, "b.eml", message("b"));
    write(&dir, "a.eml", message("a"));
    write(&dir, "c-maildir/new/1", message("in a maildir"));
    write(
        &dir,
        "d-archive/old.eml",
        message("not read: one level only"),
    );
    write(&dir, "d-archive/deeper/new/1", message("not read either"));
    write(&dir, ".DS_Store", "litter");

    let items = read_all(std::slice::from_ref(&dir), MAX);

    let d = dir.display();
    assert_eq!(
        summary(&items),
        [
            format!("ok {d}/a.eml"),
            format!("ok {d}/b.eml"),
            format!("ok {d}/c-maildir/new/1"),
        ]
    );
}

#[test]
fn an_mbox_is_split_on_from_lines_after_blank_lines_and_unquoted() {
    let tmp = TempDir::new().unwrap();
    // Written as an mboxrd writer does: a From_ line, the message with
    // every /^>*From / line given one more '>', a blank line.
    let mbox = "From MAILER-DAEMON Wed Dec  2 16:12:39 2026\n\
                Subject: one\n\
                \n\
                >From the start of a line.\n\
                >>From quoted once already.\n\
                From inside a paragraph, not after a blank line.\n\
                \n\
                From MAILER-DAEMON Wed Dec  2 16:13:00 2026\n\
                Subject: two\n\
                \n\
                Two paragraphs.\n\
                \n\
                \n\
                The second, after two blank lines.\n\
                \n\
                From MAILER-DAEMON Wed Dec  2 16:14:00 2026\n\
                Subject: three (no blank line at the end)\n\
                \n\
                Last.";
    let path = write(tmp.path(), "bounces.mbox", mbox);

    let items = read_all(std::slice::from_ref(&path), MAX);

    let p = path.display();
    assert_eq!(
        summary(&items),
        [
            format!("ok {p}:1"),
            format!("ok {p}:8"),
            format!("ok {p}:16")
        ]
    );
    let raws = raws(items);
    assert_eq!(
        String::from_utf8_lossy(&raws[0]),
        "Subject: one\n\
         \n\
         From the start of a line.\n\
         >From quoted once already.\n\
         From inside a paragraph, not after a blank line.\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&raws[1]),
        "Subject: two\n\nTwo paragraphs.\n\n\nThe second, after two blank lines.\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&raws[2]),
        "Subject: three (no blank line at the end)\n\nLast."
    );
}

#[test]
fn a_crlf_mbox_keeps_its_line_ends() {
    let tmp = TempDir::new().unwrap();
    let one = message("one");
    let mbox = format!(
        "From MAILER-DAEMON Wed Dec  2 16:12:39 2026\r\n{one}\r\n\
         From MAILER-DAEMON Wed Dec  2 16:13:00 2026\r\n\
         Subject: two\r\n\r\n>From here on, quoted.\r\n\r\n"
    );
    let path = write(tmp.path(), "crlf.mbox", mbox);

    let items = read_all(std::slice::from_ref(&path), MAX);

    let p = path.display();
    assert_eq!(summary(&items), [format!("ok {p}:1"), format!("ok {p}:8")]);
    assert_eq!(
        raws(items),
        [
            one.into_bytes(),
            b"Subject: two\r\n\r\nFrom here on, quoted.\r\n".to_vec()
        ]
    );
}

#[test]
fn a_missing_path_is_an_error_item_and_the_rest_is_read() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("no-such-folder");
    let good = write(tmp.path(), "good.eml", message("good"));

    let items = read_all(&[missing.clone(), good.clone()], MAX);

    let said = summary(&items);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].starts_with(&format!("error {}: ", missing.display()))
            && said[0].contains("No such file"),
        "{said:?}"
    );
    assert_eq!(said[1], format!("ok {}", good.display()));
    let err = items[0].as_ref().unwrap_err();
    assert_eq!(err.origin(), missing.display().to_string());
}

#[test]
fn an_oversized_message_is_an_error_item_naming_it() {
    let tmp = TempDir::new().unwrap();
    let max = 1000;
    let big = write(tmp.path(), "a-big.eml", "x".repeat(max + 1));
    let fits = write(tmp.path(), "b-fits.eml", "y".repeat(max));
    let huge_line = "z".repeat(10 * max);
    let mbox = write(
        tmp.path(),
        "c.mbox",
        format!(
            "From a Wed Dec  2 16:12:39 2026\nSubject: small\n\nok\n\n\
             From b Wed Dec  2 16:12:39 2026\nSubject: big\n\n{huge_line}\nend\n\n\
             From c Wed Dec  2 16:12:39 2026\nSubject: after\n\nstill read\n"
        ),
    );

    let items = read_all(&[tmp.path().to_path_buf()], max);

    let said = summary(&items);
    let m = mbox.display();
    assert_eq!(
        said,
        [
            format!(
                "error {}: the message is 1001 bytes, over the limit of 1000; not read",
                big.display()
            ),
            format!("ok {}", fits.display()),
            format!("ok {m}:1"),
            format!(
                "error {m}:6: the message is {} bytes, over the limit of 1000; not read",
                "Subject: big\n\n\nend\n".len() + huge_line.len()
            ),
            format!("ok {m}:12"),
        ]
    );
    assert_eq!(
        items[4].as_ref().unwrap().raw,
        b"Subject: after\n\nstill read\n"
    );
}

#[test]
fn pipes_and_links_inside_folders_are_refused_not_read() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("returns");
    write(&dir, "a.eml", message("a"));
    let fifo = dir.join("b-pipe");
    let c_path =
        std::ffi::CString::new(fifo.clone().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
    let secret = write(tmp.path(), "secret.txt", "SECRET");
    std::os::unix::fs::symlink(&secret, dir.join("c-link")).unwrap();
    // Named on the command line, a link is followed (the admin chose it).
    let named_link = tmp.path().join("named-link.eml");
    std::os::unix::fs::symlink(dir.join("a.eml"), &named_link).unwrap();

    let items = read_all(&[dir.clone(), fifo.clone(), named_link.clone()], MAX);

    let said = summary(&items);
    let d = dir.display();
    assert_eq!(
        said,
        [
            format!("ok {d}/a.eml"),
            format!(
                "error {d}/b-pipe: is a named pipe (FIFO), not a message file, mbox or Maildir; not read"
            ),
            format!(
                "error {d}/c-link: is a symbolic link (links inside folders are not followed), not a message file, mbox or Maildir; not read"
            ),
            format!(
                "error {d}/b-pipe: is a named pipe (FIFO), not a message file, mbox or Maildir; not read"
            ),
            format!("ok {}", named_link.display()),
        ]
    );
}

#[test]
fn nothing_is_opened_before_the_first_item_is_asked_for() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("later.eml");
    let mut items = read(std::slice::from_ref(&path), MAX);
    // Written after `read` was called: still found.
    fs::write(&path, message("later")).unwrap();
    assert_eq!(
        items.next().unwrap().unwrap().raw,
        message("later").as_bytes()
    );
    assert!(items.next().is_none());
}

#[test]
fn an_empty_path_list_yields_nothing() {
    assert!(read(&[], MAX).next().is_none());
}

#[test]
fn header_recipients_come_in_order_delivered_to_then_original_then_to() {
    let raw = b"Return-Path: <>\r\n\
        To: \"Doe, Jane\" <bounces+d2-bbbbbbbbbbbbbbbb@news.example.org>,\r\n\
        \tsecond@example.net (a comment, with a comma)\r\n\
        Delivered-To: bounces+d1-aaaaaaaaaaaaaaaa@news.example.org\r\n\
        X-Original-To: <bounces@news.example.org>\r\n\
        delivered-to: list@example.com\r\n\
        Subject: Undelivered Mail Returned to Sender\r\n\
        \r\n\
        To: body@example.org\r\n";

    assert_eq!(
        header_recipients(raw),
        [
            "bounces+d1-aaaaaaaaaaaaaaaa@news.example.org",
            "list@example.com",
            "bounces@news.example.org",
            "bounces+d2-bbbbbbbbbbbbbbbb@news.example.org",
            "second@example.net",
        ]
    );
}

#[test]
fn header_recipients_read_lf_folding_groups_and_routes() {
    let raw = b"From MAILER-DAEMON Wed Dec  2 16:12:39 2026\n\
        To: Returns team: one@example.org,\n   Two <two@example.org>;,\n \
        undisclosed-recipients:;, <@relay.example.net:three@example.org>\n\
        To: \"quoted local\"@example.org, not-an-address, =?utf-8?q?J=C3=B6rg?= <four@example.org>\n\
        Subject: x\n\
        \n";

    assert_eq!(
        header_recipients(raw),
        [
            "one@example.org",
            "two@example.org",
            "three@example.org",
            "\"quoted local\"@example.org",
            "four@example.org",
        ]
    );
}

#[test]
fn header_recipients_of_garbage_is_empty_not_a_panic() {
    for raw in [
        &b""[..],
        b"\r\n\r\n",
        b"To:",
        b"To: <",
        b"To: \"unterminated",
        b"To: (((",
        b"To: a@b\\",
        b":\n\t\xff\xfe@\n",
        b"\x00\x01\x02",
    ] {
        let got = header_recipients(raw);
        assert!(got.iter().all(|a| a.contains('@')), "{raw:?}: {got:?}");
    }
    assert_eq!(header_recipients(b"To: a@b\\"), ["a@b\\"]);
}
