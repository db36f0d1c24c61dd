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
