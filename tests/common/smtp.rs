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
        let dir = tempfile::tempdir().expect("tempdir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
        let mut child = Command::new(super::python())
            .arg(script)
            .arg(dir.path())
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start smtp_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read ready line");
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("smtp_server.py did not start: {line:?}"));
        SmtpServer { child, port, dir }
    }

    pub fn received(&self) -> Vec<Received> {
        let log = std::fs::read_to_string(self.dir.path().join("log.jsonl")).unwrap_or_default();
        log.lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
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
