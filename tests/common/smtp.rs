//! A real SMTP server for the tests: tests/support/smtp_server.py (aiosmtpd)
//! with optional faults. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// One accepted message, from the server's log.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub rcpt: Vec<String>,
    /// The envelope sender (MAIL FROM).
    #[serde(default)]
    pub mail_from: String,
    /// The MAIL FROM parameters, e.g. `SMTPUTF8`.
    #[serde(default)]
    pub mail_options: Vec<String>,
    pub message_id: Option<String>,
    pub size: usize,
}

impl SmtpServer {
    /// Start with extra arguments (faults), e.g. `["--bounce-rcpt", "dead"]`.
    pub fn start(args: &[&str]) -> SmtpServer {
        SmtpServer::start_on(0, args)
    }

    pub fn start_on(port: u16, args: &[&str]) -> SmtpServer {
        let port_arg = port.to_string();
        let mut all = vec!["--port", port_arg.as_str()];
        all.extend_from_slice(args);
        let (child, port, dir) = start_script("smtp_server.py", &all);
        SmtpServer { child, port, dir }
    }

    pub fn received(&self) -> Vec<Received> {
        let log = std::fs::read_to_string(self.dir.path().join("log.jsonl")).unwrap_or_default();
        log.lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }

    /// How many of `address`'s messages `--drop-data-every` dropped (which
    /// ones it hits depends on timing): each cost the client an attempt.
    pub fn dropped_for(&self, address: &str) -> usize {
        let log =
            std::fs::read_to_string(self.dir.path().join("dropped.jsonl")).unwrap_or_default();
        log.lines()
            .map(|l| serde_json::from_str::<Vec<String>>(l).expect("dropped line"))
            .filter(|rcpt| rcpt.iter().any(|r| r == address))
            .count()
    }

    /// How many messages each envelope recipient got.
    pub fn per_recipient(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for m in self.received() {
            for r in m.rcpt {
                *counts.entry(r).or_default() += 1;
            }
        }
        counts
    }

    pub fn messages_dir(&self) -> PathBuf {
        self.dir.path().join("msg")
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// postfix's smtp-sink, keeping every message (`-d`): fast, for the big
/// sends. Killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let sink = super::tool("smtp-sink", "postfix");
        let dir = tempfile::tempdir().expect("tempdir");
        // smtp-sink drops privileges to nobody when run as root.
        let _ = Command::new("chown").arg("nobody").arg(dir.path()).status();
        let port = free_port();
        let mut child = Command::new(sink)
            .args(["-u", "nobody", "-c", "-d"])
            .arg(format!("{}/%M.", dir.path().display()))
            .arg(format!("127.0.0.1:{port}"))
            .arg("1000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return SmtpSink { child, port, dir };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("smtp-sink did not start on port {port}");
    }

    /// How many messages each envelope recipient got.
    pub fn per_recipient(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for entry in std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .flatten()
        {
            let Ok(text) = std::fs::read(entry.path()) else {
                continue;
            };
            let head = String::from_utf8_lossy(&text[..text.len().min(2048)]).into_owned();
            for line in head.lines().take_while(|l| !l.is_empty()) {
                if let Some(r) = line
                    .strip_prefix("X-Rcpt-Args: <")
                    .and_then(|r| r.split('>').next())
                {
                    *counts.entry(r.to_string()).or_default() += 1;
                }
            }
        }
        counts
    }

    pub fn files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .flatten()
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// tests/support/hostile_smtp.py: a server that misbehaves at one stage
/// (`--trickle S` or `--flood N`, `--stage ehlo|data`). Killed when dropped.
pub struct HostileSmtp {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl HostileSmtp {
    pub fn start(args: &[&str]) -> HostileSmtp {
        let (child, port, dir) = start_script("hostile_smtp.py", args);
        HostileSmtp { child, port, dir }
    }

    /// The server's events so far ("connect", "misbehaving", ...).
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("events.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for HostileSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The end of a `[mail]` section that mails over SMTP to 127.0.0.1:`port`
/// with `security` (`none`, `starttls`, `tls`); `[mail.smtp]` keys may follow.
pub fn via(port: u16, security: &str) -> String {
    format!(
        "transport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"{security}\"\n"
    )
}

/// A private CA and a certificate for 127.0.0.1 signed by it, made with openssl.
pub fn test_ca(dir: &std::path::Path) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(super::tool("openssl", "openssl"))
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=gazette test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let p = |f: &str| dir.join(f).display().to_string();
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

/// Starts `tests/support/SCRIPT DIR ARGS...` and waits for its `ready PORT`
/// line: both test servers announce themselves this way once they listen.
fn start_script(script: &str, args: &[&str]) -> (Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = format!("{}/tests/support/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(super::python())
        .arg(&path)
        .arg(dir.path())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read ready line");
    let port = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{script} did not start: {line:?}"));
    (child, port, dir)
}
