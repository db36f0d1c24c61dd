//! `gazette serve` on a free port, driven over real HTTP.
//!
//! [`Site::serve`] starts the binary with the site's config, a free port and
//! a fresh admin token, and returns once `/healthz` answers and the start
//! cycle has finished. Pending work is driven deterministically with
//! [`Server::cycle`] (`POST /api/v1/cycle`) instead of waiting for the cron.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Site;

pub use ureq::http::{Response, StatusCode};
pub type Body = ureq::Body;

/// The environment variable the harness puts the admin token in.
pub const TOKEN_ENV: &str = "GZ_TEST_ADMIN_TOKEN";

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base: String,
    /// The admin token, `None` when started without one.
    pub token: Option<String>,
    pub log: PathBuf,
    agent: ureq::Agent,
}

/// An HTTP client that returns every status as a response (no error), does
/// not follow redirects and does not decompress: tests see the raw answer.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Start options.
pub struct Opts<'a> {
    pub token: bool,
    pub env: &'a [(&'a str, &'a str)],
    /// Wait for the start cycle to finish before returning.
    pub wait_first_cycle: bool,
    /// The host part of `http.listen` (the harness picks the port).
    pub host: &'a str,
    /// A command to run gazette under (e.g. `setpriv --reuid=...`).
    pub prefix: &'a [&'a str],
    /// Ready means `/healthz` answers 200; when false, any answer.
    pub healthy: bool,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            token: true,
            env: &[],
            wait_first_cycle: true,
            host: "127.0.0.1",
            prefix: &[],
            healthy: true,
        }
    }
}

impl Site {
    /// `gazette serve` with an admin token, ready (start cycle done).
    pub fn serve(&self) -> Server {
        self.serve_with(Opts::default())
    }

    pub fn serve_with(&self, opts: Opts<'_>) -> Server {
        let port = super::smtp::free_port();
        let token = opts.token.then(|| {
            let mut b = [0u8; 24];
            getrandom::fill(&mut b).expect("random");
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        });
        let log = self.path(&format!("serve-{port}.log"));
        let logf = std::fs::File::create(&log).expect("log file");
        let mut cmd = self.command(&["serve"]);
        cmd.env("GAZETTE_HTTP_LISTEN", format!("{}:{port}", opts.host))
            .env("GAZETTE_HTTP_ADMIN_TOKEN_ENV", TOKEN_ENV)
            .env_remove(TOKEN_ENV)
            .env("GAZETTE_LOG", "info,gazette=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf);
        if let Some(t) = &token {
            cmd.env(TOKEN_ENV, t);
        }
        for (k, v) in opts.env {
            cmd.env(k, v);
        }
        if let Some((program, args)) = opts.prefix.split_first() {
            let mut wrapped = Command::new(program);
            wrapped
                .args(args)
                .arg(cmd.get_program())
                .args(cmd.get_args());
            if let Some(dir) = cmd.get_current_dir() {
                wrapped.current_dir(dir);
            }
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            let logf = std::fs::File::options()
                .append(true)
                .open(&log)
                .expect("log file");
            wrapped
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(logf);
            cmd = wrapped;
        }
        let child = cmd.spawn().expect("spawn gazette serve");
        let mut server = Server {
            child: Some(child),
            port,
            base: format!("http://127.0.0.1:{port}"),
            token,
            log,
            agent: agent(),
        };
        server.wait_ready(opts.wait_first_cycle, opts.healthy);
        server
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, first_cycle: bool, healthy: bool) {
        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "gazette serve exited early ({status}):\n{}",
                    self.log_text()
                );
            }
            if let Ok(r) = self.agent.get(&self.url("/healthz")).call()
                && (!healthy || r.status() == StatusCode::OK)
                && (!first_cycle || self.metric("gazette_cycles_total").unwrap_or(0.0) >= 1.0)
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "gazette serve not ready after 60 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET, returning status, headers and body as text.
    pub fn get(&self, path: &str) -> (StatusCode, ureq::http::HeaderMap, String) {
        let mut r = self
            .agent
            .get(&self.url(path))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (r.status(), r.headers().clone(), body)
    }

    /// GET with the raw body bytes.
    pub fn get_bytes(&self, path: &str, headers: &[(&str, &str)]) -> Response<Vec<u8>> {
        let mut req = self.agent.get(&self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let (parts, mut body) = r.into_parts();
        let mut bytes = Vec::new();
        body.as_reader()
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("GET {path}: reading body: {e}"));
        Response::from_parts(parts, bytes)
    }

    /// POST a form (application/x-www-form-urlencoded).
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut r = self
            .agent
            .post(&self.url(path))
            .send_form(fields.iter().copied())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        (r.status(), body)
    }

    /// An admin API call with the server's token (or `token` when given).
    /// `body` is sent as JSON when it parses as JSON, else as text/csv.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let url = self.url(&format!("/api/v1{path}"));
        let auth = token
            .map(str::to_string)
            .or_else(|| self.token.clone())
            .map(|t| format!("Bearer {t}"));
        let build = |b: ureq::RequestBuilder<ureq::typestate::WithBody>| match &auth {
            Some(a) => b.header("Authorization", a),
            None => b,
        };
        let build_nb = |b: ureq::RequestBuilder<ureq::typestate::WithoutBody>| match &auth {
            Some(a) => b.header("Authorization", a),
            None => b,
        };
        let content_type = match body {
            Some(b) if serde_json::from_str::<serde_json::Value>(b).is_ok() => "application/json",
            _ => "text/csv",
        };
        let result = match (method, body) {
            ("GET", _) => build_nb(self.agent.get(&url)).call(),
            ("DELETE", _) => build_nb(self.agent.delete(&url)).call(),
            ("POST", Some(b)) => build(self.agent.post(&url))
                .header("Content-Type", content_type)
                .send(b),
            ("POST", None) => build(self.agent.post(&url)).send_empty(),
            ("PUT", Some(b)) => build(self.agent.put(&url))
                .header("Content-Type", content_type)
                .send(b),
            ("PATCH", Some(b)) => build(self.agent.patch(&url))
                .header("Content-Type", content_type)
                .send(b),
            (m, _) => panic!("api(): unsupported method {m}"),
        };
        let mut r = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (r.status(), text)
    }

    /// `POST /api/v1/cycle`: run a cycle now and wait for it. Panics unless
    /// it answers 200.
    pub fn cycle(&self) -> serde_json::Value {
        let (status, body) = self.api("POST", "/cycle", None, None);
        assert_eq!(
            status,
            StatusCode::OK,
            "POST /api/v1/cycle: {body}\n{}",
            self.log_text()
        );
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)
    }

    /// One sample from /metrics (the first line with exactly this name and
    /// labels, e.g. `gazette_subscribers{status="active"}`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let mut r = self.agent.get(&self.url("/metrics")).call().ok()?;
        let text = r.body_mut().read_to_string().ok()?;
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Send a signal (e.g. "TERM", "INT", "KILL") to the server.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// SIGTERM, then wait for the exit: (status, time from signal to exit).
    pub fn terminate(self) -> (ExitStatus, Duration, String) {
        self.stop_with("TERM")
    }

    /// Send `sig` (e.g. "TERM", "INT"), then wait for the exit: (status,
    /// time from signal to exit, log).
    pub fn stop_with(mut self, sig: &str) -> (ExitStatus, Duration, String) {
        self.signal(sig);
        let start = Instant::now();
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, start.elapsed(), self.log_text());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "gazette serve still running 30 s after SIG{sig}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
