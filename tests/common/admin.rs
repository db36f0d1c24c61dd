//! The admin console from a test: an account made with the real CLI, and a
//! signed-in client that carries the session cookie and the CSRF token the
//! pages give it (ureq keeps no cookies itself).
#![allow(dead_code)]

use std::io::Write;
use std::process::Stdio;

use super::Site;
use super::serve::{Server, StatusCode, agent};

pub use ureq::http::HeaderMap;

/// A password every test account uses (the rule: 12 characters or more).
pub const PASSWORD: &str = "correct horse battery";
pub const ADMIN: &str = "editor@example.org";

impl Site {
    /// `gazette admins add EMAIL` with the password on stdin.
    pub fn add_admin(&self, email: &str, password: &str) -> std::process::Output {
        let mut child = self
            .command(&["admins", "add", email])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gazette admins add");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write the password");
        child.wait_with_output().expect("gazette admins add")
    }
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
}

/// A browser-like client of one server: a session cookie once signed in.
pub struct AdminClient<'a> {
    pub server: &'a Server,
    agent: ureq::Agent,
    /// `gazette_admin=TOKEN`, once signed in.
    pub cookie: Option<String>,
    /// The session's CSRF token, read from a console page.
    pub csrf: String,
}

impl<'a> AdminClient<'a> {
    /// A client with no session.
    pub fn anonymous(server: &'a Server) -> AdminClient<'a> {
        AdminClient {
            server,
            agent: agent(),
            cookie: None,
            csrf: String::new(),
        }
    }

    /// Sign in through the form; panics unless it works.
    pub fn sign_in(server: &'a Server, email: &str, password: &str) -> AdminClient<'a> {
        let mut c = AdminClient::anonymous(server);
        let a = c.post_plain("/admin/login", &[("email", email), ("password", password)]);
        assert_eq!(a.status, StatusCode::SEE_OTHER, "sign-in: {}", a.body);
        let cookie = a
            .headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_string();
        c.cookie = Some(cookie);
        let page = c.get("/admin/");
        assert_eq!(page.status, StatusCode::OK, "dashboard: {}", page.body);
        c.csrf = csrf_of(&page.body).expect("a CSRF token on the dashboard");
        c
    }

    pub fn get(&self, path: &str) -> Answer {
        let mut req = self.agent.get(&self.server.url(path));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let mut r = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Answer {
            status: r.status(),
            headers: r.headers().clone(),
            body,
        }
    }

    /// POST a form with the session's CSRF token added.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_plain(path, &all)
    }

    /// POST a form exactly as given (no token added), with extra headers.
    pub fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.agent.post(&self.server.url(path));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut r = req
            .send_form(fields.iter().copied())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let body = r.body_mut().read_to_string().unwrap_or_default();
        Answer {
            status: r.status(),
            headers: r.headers().clone(),
            body,
        }
    }

    pub fn post_plain(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.post_with(path, fields, &[])
    }

    /// POST multipart/form-data: the CSRF token, `fields`, and one file
    /// field `file` holding `bytes`.
    pub fn post_file(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        bytes: &[u8],
    ) -> Answer {
        let boundary = "gazette-test-boundary-7d1f0c";
        let mut body = Vec::new();
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        for (k, v) in all {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = self.agent.post(&self.server.url(path)).header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        );
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let mut r = req
            .send(&body[..])
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let text = r.body_mut().read_to_string().unwrap_or_default();
        Answer {
            status: r.status(),
            headers: r.headers().clone(),
            body: text,
        }
    }
}

/// The value of the first `name="csrf"` input of a page.
pub fn csrf_of(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let rest = &page[at..];
    Some(rest[..rest.find('"')?].to_string())
}
