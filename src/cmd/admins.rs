//! `gazette admins add EMAIL | list | remove EMAIL`: who may sign in to the
//! console at `/admin/`.
//!
//! The password never comes from the command line (it would sit in the
//! shell's history and in every `ps` listing): on a terminal it is asked
//! twice without echo, otherwise the first line of stdin is the password
//! (`printf '%s\n' "$PW" | gazette admins add ...`, for scripts).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use gazette::admins::{AdminEmail, NewPassword};
use gazette::config::Config;
use gazette::store::{AdminAdded, AuditEntry};

pub fn add(config: &Config, email: &str, json: bool) -> Result<ExitCode> {
    let email = AdminEmail::parse(email)?;
    let password = read_password()?;
    let hash = password.hash()?;
    super::with_store(config, async |store| {
        let added = store
            .add_admin(email.as_str(), &email.key(), &hash, Utc::now())
            .await?;
        let action = match added {
            AdminAdded::Added => "admin.add",
            AdminAdded::PasswordReplaced => "admin.password",
        };
        store
            .audit(&AuditEntry {
                admin: "cli",
                action,
                target: Some(format!("admin {email}")),
                detail: None,
                client: None,
            })
            .await?;
        if json {
            println!(
                "{}",
                serde_json::json!({ "email": email.as_str(), "added": added == AdminAdded::Added })
            );
        } else {
            match added {
                AdminAdded::Added => println!(
                    "added admin {email}; sign in at {}admin/",
                    config.publication.base_url
                ),
                AdminAdded::PasswordReplaced => {
                    println!("{email} was an admin already: new password set, their sessions ended")
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn list(config: &Config, json: bool) -> Result<ExitCode> {
    super::with_store(config, async |store| {
        let admins = store.list_admins().await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&admins)?);
        } else if admins.is_empty() {
            println!(
                "no admins: the console at /admin/ is off (add one with `gazette admins add EMAIL`)"
            );
        } else {
            for a in &admins {
                println!(
                    "{}\tadded {}\tlast sign-in {}",
                    a.email,
                    a.created_at,
                    a.last_login_at.as_deref().unwrap_or("never")
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn remove(config: &Config, email: &str, json: bool) -> Result<ExitCode> {
    let email = AdminEmail::parse(email)?;
    super::with_store(config, async |store| {
        let removed = store.remove_admin(&email.key()).await?;
        if removed {
            store
                .audit(&AuditEntry {
                    admin: "cli",
                    action: "admin.remove",
                    target: Some(format!("admin {email}")),
                    detail: None,
                    client: None,
                })
                .await?;
        }
        if json {
            println!(
                "{}",
                serde_json::json!({ "email": email.as_str(), "removed": removed })
            );
        } else if removed {
            println!("removed admin {email}; their sessions ended");
        } else {
            eprintln!("{email} is not an admin");
        }
        Ok(if removed {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}

/// The new password: asked twice on a terminal, else stdin's first line.
fn read_password() -> Result<NewPassword> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        if line.is_empty() {
            bail!("no password on stdin (give it as the first line)");
        }
        return Ok(NewPassword::parse(&line)?);
    }
    let first = prompt("Password (at least 12 characters): ")?;
    let password = NewPassword::parse(&first)?;
    let again = prompt("The same again: ")?;
    if again != first {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(password)
}

/// One line from the terminal with echo off (restored whatever happens).
fn prompt(text: &str) -> Result<String> {
    eprint!("{text}");
    std::io::stderr().flush().ok();
    let fd = libc::STDIN_FILENO;
    // SAFETY: tcgetattr fills the struct it is given; a zeroed termios is a
    // valid value to pass in.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 is open (is_terminal said so); `old` is a valid pointer.
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        bail!("cannot read the terminal's settings to hide the password");
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above; `quiet` is a copy of what the terminal gave.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        bail!("cannot turn the terminal's echo off to hide the password");
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restoring the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
