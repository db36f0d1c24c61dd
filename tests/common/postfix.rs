//! A private Postfix instance per test, as the relay users put in front of
//! gazette: Debian's real `postfix`, its own config and queue folders in a
//! temporary folder, smtpd on a free loopback port. It relays everything to
//! a test SMTP server (`relayhost`), which can refuse or defer recipients,
//! so Postfix writes its own DSNs; those go to the envelope sender, and the
//! `transport_maps` line below sends every bounce address of the
//! publication to `bounce_port` (a catcher, or gazette's inbound listener).
//!
//! The setup users copy (Postfix in front of gazette on the same host,
//! gazette's `inbound.listen = "127.0.0.1:2526"`):
//!
//! ```text
//! # /etc/postfix/main.cf
//! recipient_delimiter = +
//! # only if the publication's domain is not a mydestination of this host:
//! relay_domains = news.example.org
//! transport_maps = hash:/etc/postfix/transport
//!
//! # /etc/postfix/transport, then `postmap /etc/postfix/transport`
//! bounces@news.example.org  smtp:[127.0.0.1]:2526
//! ```
//!
//! With `recipient_delimiter = +`, Postfix looks `bounces+TAG@news.example.org`
//! up as itself, then as `bounces@news.example.org` (transport(5)), so the
//! one line routes the plain bounce address and every VERP address of it,
//! and the message keeps its full `RCPT TO` (the TAG) on the way.
//! The tests use `texthash:` (the same file format, read at start, no
//! `postmap` needed).
//!
//! For `gazette inbound import`, the returns are delivered into a mailbox
//! instead ([`Bounces::Maildir`], [`Bounces::Mbox`]); the setup is then
//!
//! ```text
//! # /etc/postfix/main.cf
//! recipient_delimiter = +
//! virtual_mailbox_domains = news.example.org
//! virtual_mailbox_base = /var/mail/vhosts
//! virtual_mailbox_maps = hash:/etc/postfix/vmailbox
//! virtual_uid_maps = static:5000
//! virtual_gid_maps = static:5000
//!
//! # /etc/postfix/vmailbox (a trailing / makes a Maildir, else an mbox)
//! bounces@news.example.org  news.example.org/bounces/
//! ```
//!
//! and Postfix's virtual(8) agent writes `X-Original-To` and `Delivered-To`
//! with the full `bounces+TAG@news.example.org` address.
//!
//! Several instances can run at once: nothing is shared but the binaries
//! (own ports, config, queue and data folders, log file). Postfix runs as
//! root here (as in CI); a failure prints the instance's mail log.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::smtp::free_port;

/// The publication's bounce address, which the instance routes as
/// [`Setup::bounces`] says.
pub const BOUNCE_ADDRESS: &str = "bounces@news.example.org";

/// Where the bounce address and its `+TAG` forms go.
#[derive(Debug, Clone, Copy)]
pub enum Bounces {
    /// Over SMTP to 127.0.0.1:port (`transport_maps`).
    Port(u16),
    /// Into the Maildir [`Postfix::mailbox`] (virtual(8)).
    Maildir,
    /// Into the mbox file [`Postfix::mailbox`] (virtual(8)).
    Mbox,
}

pub struct Postfix {
    pub dir: tempfile::TempDir,
    /// Where Postfix's smtpd listens on 127.0.0.1.
    pub smtpd_port: u16,
}

/// Knobs of [`Postfix::start_with`]; the defaults are the fast test
/// setup of [`Postfix::start`].
#[derive(Debug, Clone)]
pub struct Setup {
    /// Where everything not for the bounce address goes (`relayhost`).
    pub relay_port: u16,
    pub bounces: Bounces,
    /// `maximal_queue_lifetime`: a deferred message fails after this
    /// (its DSN says `Action: failed` with the 4.x.x status).
    pub queue_lifetime: &'static str,
}

impl Postfix {
    /// A running instance relaying to 127.0.0.1:`relay_port`, the bounce
    /// address forwarded to 127.0.0.1:`bounce_port`; deferred messages
    /// expire after an hour.
    pub fn start(relay_port: u16, bounce_port: u16) -> Postfix {
        Postfix::start_with(Setup {
            relay_port,
            bounces: Bounces::Port(bounce_port),
            queue_lifetime: "1h",
        })
    }

    pub fn start_with(setup: Setup) -> Postfix {
        let postfix = super::tool("postfix", "postfix");
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the Postfix tests start Postfix, which needs root (CI runs as root)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // Postfix's daemons run as the `postfix` user and need to reach
        // their folders below this one.
        set_mode(dir.path(), 0o755);
        let root = dir.path();
        for sub in ["etc", "queue", "data", "mail"] {
            std::fs::create_dir(root.join(sub)).expect("mkdir");
        }
        // The master's lock and the caches live in data_directory, which
        // must belong to mail_owner; virtual(8) delivers as `nobody`.
        chown(&root.join("data"), "postfix:postfix");
        chown(&root.join("mail"), "nobody:nogroup");
        let smtpd_port = free_port();
        let etc = root.join("etc");
        std::fs::write(etc.join("main.cf"), main_cf(root, &setup)).expect("write main.cf");
        std::fs::write(etc.join("master.cf"), master_cf(smtpd_port)).expect("write master.cf");
        let (map, line) = match setup.bounces {
            Bounces::Port(port) => ("transport", format!("smtp:[127.0.0.1]:{port}")),
            Bounces::Maildir => ("vmailbox", "bounces/".to_string()),
            Bounces::Mbox => ("vmailbox", "bounces.mbox".to_string()),
        };
        std::fs::write(etc.join(map), format!("{BOUNCE_ADDRESS}  {line}\n")).expect("write map");
        std::fs::write(root.join("maillog"), "").expect("create maillog");
        let instance = Postfix { dir, smtpd_port };
        // `postfix start` says why it failed only in the log (or on a
        // terminal): the log is shown with the failure.
        let out = Command::new(postfix)
            .arg("-c")
            .arg(&etc)
            .arg("start")
            .output()
            .expect("run postfix start");
        assert!(
            out.status.success(),
            "postfix start failed ({}):\n{}{}\n--- maillog\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            instance.log()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", smtpd_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postfix smtpd does not listen on {smtpd_port}:\n{}",
                instance.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        instance
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// The Maildir or mbox file the bounce address is delivered to (with
    /// [`Bounces::Maildir`] or [`Bounces::Mbox`]).
    pub fn mailbox(&self, bounces: Bounces) -> PathBuf {
        let mail = self.dir.path().join("mail");
        match bounces {
            Bounces::Port(_) | Bounces::Maildir => mail.join("bounces"),
            Bounces::Mbox => mail.join("bounces.mbox"),
        }
    }

    /// `postfix flush`: every deferred message is tried now. On a loaded
    /// machine qmgr has been seen to leave a deferred message alone for a
    /// minute after "skipped, still being delivered", whatever the 1 s
    /// backoff says; waits call this so they measure Postfix's decisions,
    /// not its scheduling.
    pub fn flush(&self) {
        let _ = Command::new(super::tool("postfix", "postfix"))
            .arg("-c")
            .arg(self.config_dir())
            .arg("flush")
            .output();
    }

    /// The instance's mail log so far (`maillog_file`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Hands one message to Postfix's smtpd: `MAIL FROM:<from>`, one
    /// `RCPT TO` per recipient, `message` (CRLF lines, dot-stuffed here).
    /// Panics with the dialogue and the log unless every reply is a success.
    pub fn submit(&self, from: &str, to: &[&str], message: &str) {
        let mut talk = Smtp::connect(self.smtpd_port);
        let outcome = (|| {
            talk.expect(2)?;
            talk.send("EHLO client.example.com", 2)?;
            talk.send(&format!("MAIL FROM:<{from}>"), 2)?;
            for rcpt in to {
                talk.send(&format!("RCPT TO:<{rcpt}>"), 2)?;
            }
            talk.send("DATA", 3)?;
            let mut data = String::new();
            for line in message.split_inclusive("\r\n") {
                if line.starts_with('.') {
                    data.push('.');
                }
                data.push_str(line);
            }
            if !data.ends_with("\r\n") {
                data.push_str("\r\n");
            }
            data.push('.');
            talk.send(&data, 2)?;
            talk.send("QUIT", 2)
        })();
        if let Err(err) = outcome {
            panic!(
                "submitting to postfix: {err}\n--- dialogue\n{}\n--- maillog\n{}",
                talk.transcript,
                self.log()
            );
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let pid_file = self.dir.path().join("queue/pid/master.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|p| p.trim().parse::<libc::pid_t>().ok());
        let _ = Command::new(super::tool("postfix", "postfix"))
            .arg("-c")
            .arg(self.config_dir())
            .arg("stop")
            .output();
        // `postfix stop` only signals the master: wait for it to go, so no
        // daemon writes into the folder while it is removed.
        if let Some(pid) = pid {
            let deadline = Instant::now() + Duration::from_secs(10);
            // SAFETY: kill with signal 0 only asks whether the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// main.cf: only what differs from Postfix's built-in defaults, each with
/// the reason.
fn main_cf(root: &Path, s: &Setup) -> String {
    let bounces = match s.bounces {
        // The line users copy (see the module documentation).
        Bounces::Port(_) => format!(
            "# Returns from outside for the publication's domain are accepted too.
relay_domains = news.example.org
transport_maps = texthash:{root}/etc/transport
",
            root = root.display()
        ),
        Bounces::Maildir | Bounces::Mbox => {
            use std::os::unix::fs::MetadataExt;
            let nobody = std::fs::metadata(root.join("mail")).expect("mail folder");
            format!(
                "virtual_mailbox_domains = news.example.org
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
",
                root = root.display(),
                uid = nobody.uid(),
                gid = nobody.gid()
            )
        }
    };
    let root = root.display();
    format!(
        "\
# Written by tests/common/postfix.rs for one test.
compatibility_level = 3.6
config_directory = {root}/etc
queue_directory = {root}/queue
data_directory = {root}/data
# The log in the test's folder, shown when something fails.
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
syslog_name = postfix-gazette-test
myhostname = relay.example.net
mydomain = example.net
myorigin = $myhostname
# No local(8) delivery: everything is relayed (or, for the bounce
# address with Bounces::Maildir or Mbox, delivered by virtual(8)).
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{relay}
# bounces+TAG@ is bounces@ with an extension, for every lookup.
recipient_delimiter = +
{bounces}smtp_tls_security_level = none
smtpd_tls_security_level = none
# Fast queue: retries every second, the delay warning (an `Action:
# delayed` DSN) at the first deferral after a second.
# smtpd logs each command of a loopback client (a test can tell BDAT
# from DATA).
debug_peer_list = 127.0.0.1
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 1s
delay_warning_time = 1s
maximal_queue_lifetime = {lifetime}
bounce_queue_lifetime = {lifetime}
biff = no
",
        relay = s.relay_port,
        lifetime = s.queue_lifetime,
    )
}

/// master.cf: smtpd on the test's port; no service chrooted (the queue is
/// in a temporary folder, not a prepared chroot); `postlog` for
/// `maillog_file`.
fn master_cf(smtpd_port: u16) -> String {
    format!(
        "\
# service type private unpriv chroot wakeup maxproc command
127.0.0.1:{smtpd_port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
virtual   unix  - n n - - virtual
postlog   unix-dgram n - n - 1 postlogd
"
    )
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn chown(path: &Path, owner: &str) {
    let out = Command::new("chown")
        .arg(owner)
        .arg(path)
        .output()
        .expect("run chown");
    assert!(
        out.status.success(),
        "chown {owner} {} (the tests run Postfix as root): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A minimal SMTP client for handing test messages to Postfix.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    transcript: String,
}

impl Smtp {
    fn connect(port: u16) -> Smtp {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to postfix smtpd");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        Smtp {
            reader: BufReader::new(stream.try_clone().expect("clone stream")),
            writer: stream,
            transcript: String::new(),
        }
    }

    /// Sends a command (or the DATA text) and reads the reply, which must
    /// start with `class` (2 or 3).
    fn send(&mut self, line: &str, class: u8) -> Result<(), String> {
        let shown = if line.len() > 200 { "(message)" } else { line };
        self.transcript.push_str(&format!("C: {shown}\n"));
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        self.expect(class)
    }

    /// Reads one reply (all its lines); it must start with `class`.
    fn expect(&mut self, class: u8) -> Result<(), String> {
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.transcript.push_str(&format!("S: {line}"));
            let bytes = line.as_bytes();
            if bytes.len() < 4 || bytes[3] == b'-' {
                if bytes.len() < 4 {
                    return Err(format!("bad reply {line:?}"));
                }
                continue;
            }
            return if bytes[0] == b'0' + class {
                Ok(())
            } else {
                Err(format!("unexpected reply {line:?}"))
            };
        }
    }
}
