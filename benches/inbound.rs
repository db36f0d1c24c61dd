//! The driver of `bench/inbound.sh`: one return of a mixed kind for every
//! delivery of the bench site's issue, handed over SMTP to `gazette serve`'s
//! listener and then, the same bytes, to postfix's smtp-sink (the physical
//! limit: an SMTP server that does nothing with what it gets). Prints
//! messages/s side by side, and checks that every subscriber and every
//! kind ended where it must.
//!
//! Environment (set by the script): `INBOUND_DB` (the site's gazette.db,
//! whose issue was mailed with `mail.bounce_address` = `INBOUND_BOUNCE`),
//! `INBOUND_FROM` (mail.from's address), `GZ_PORT`, `GZ_PID`, `SINK_PORT`,
//! `CONNS` (parallel SMTP sessions, default 8), `RESULT` (a file for the
//! figures, shell syntax).

#[allow(dead_code)] // the tests use the rest
#[path = "../tests/common/returns.rs"]
mod returns;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gazette::config::BounceAddress;
use gazette::mail::verp::{Tag, Verp, VerpKey};
use gazette::store::Store;
use returns::{Original, Session};

/// One return: where it goes, its bytes, and what it must do.
struct Return {
    rcpt: String,
    bytes: Vec<u8>,
    subscriber: String,
    expect_status: &'static str,
    expect_kind: &'static str,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (run bench/inbound.sh)"))
}

fn main() {
    let db = env("INBOUND_DB");
    let bounce = BounceAddress::parse(&env("INBOUND_BOUNCE")).expect("bounce address");
    let from = env("INBOUND_FROM");
    let gz_port: u16 = env("GZ_PORT").parse().expect("GZ_PORT");
    let sink_port: u16 = env("SINK_PORT").parse().expect("SINK_PORT");
    let gz_pid = env("GZ_PID");
    let conns: usize = std::env::var("CONNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(8);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = rt
        .block_on(Store::open(std::path::Path::new(&db)))
        .expect("open the bench database");
    let key = rt.block_on(store.verp_key()).expect("verp key");
    let (local, domain) = from.split_once('@').expect("from address");
    let verp = Verp::new(
        bounce.clone(),
        Some(format!("{local}+unsubscribe@{domain}")),
        VerpKey::new(key),
    );
    let rows: Vec<(i64, String, String, String)> = rt
        .block_on(
            sqlx::query_as(
                "SELECT d.id, s.email, d.message_id, s.token FROM deliveries d
                 JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE d.status = 'sent' ORDER BY d.id",
            )
            .fetch_all(store.pool()),
        )
        .expect("deliveries");
    assert!(!rows.is_empty(), "the bench issue was not mailed");

    let returns: Vec<Return> = rows
        .iter()
        .enumerate()
        .map(|(i, (id, email, mid, token))| {
            let tag_addr = verp.envelope_sender(Tag::Delivery(*id));
            let o = Original {
                rcpt: email,
                verp: &tag_addr,
                message_id: mid,
            };
            let hard = "550 5.1.1 <x>: Recipient address rejected: User unknown in virtual mailbox table";
            let (rcpt, bytes, status, kind) = match i % 20 {
                0..8 => (
                    tag_addr.clone(),
                    returns::postfix_dsn(&tag_addr, &o, "failed", "5.1.1", hard),
                    "bounced",
                    "hard",
                ),
                8..12 => (
                    tag_addr.clone(),
                    returns::postfix_dsn(&tag_addr, &o, "delayed", "4.2.2", "452 4.2.2 Mailbox full"),
                    "active",
                    "soft",
                ),
                12..14 => (tag_addr.clone(), returns::arf(&tag_addr, &o), "unsubscribed", "complaint"),
                14..16 => {
                    let to = format!("{local}+unsubscribe@{domain}");
                    let mail = returns::unsubscribe_mail(&to, email, &format!("unsubscribe {token}"));
                    (to, mail, "unsubscribed", "unsubscribe")
                }
                16..18 => (
                    tag_addr.clone(),
                    returns::out_of_office(&tag_addr, email),
                    "active",
                    "auto_reply",
                ),
                18 => {
                    let to = bounce.to_string();
                    (
                        to.clone(),
                        returns::postfix_dsn(&to, &o, "failed", "5.1.1", hard),
                        "bounced",
                        "hard",
                    )
                }
                _ => (
                    tag_addr.clone(),
                    format!(
                        "From: <{email}>\r\nTo: <{tag_addr}>\r\nSubject: Re: The issue\r\nMessage-ID: <re.{id}@example.net>\r\n\r\nThanks for the issue, number {id}.\r\n"
                    ),
                    "active",
                    "other",
                ),
            };
            Return {
                rcpt,
                bytes: bytes.into_bytes(),
                subscriber: email.clone(),
                expect_status: status,
                expect_kind: kind,
            }
        })
        .collect();
    let n = returns.len();
    let bytes: usize = returns.iter().map(|r| r.bytes.len()).sum();
    let returns = Arc::new(returns);

    eprintln!("== smtp-sink: {n} returns, {conns} sessions");
    let (sink_time, sink_refused) = drive(sink_port, &returns, conns);
    assert_eq!(sink_refused, 0, "smtp-sink refused messages");
    eprintln!("== gazette serve's listener: {n} returns, {conns} sessions");
    let (gz_time, gz_refused) = drive(gz_port, &returns, conns);
    let rss_kb = std::fs::read_to_string(format!("/proc/{gz_pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);

    // Every subscriber and every kind where it must be.
    let statuses: BTreeMap<String, String> = rt
        .block_on(sqlx::query_as("SELECT email, status FROM subscribers").fetch_all(store.pool()))
        .expect("subscribers")
        .into_iter()
        .collect();
    let mut wrong = 0;
    for r in returns.iter() {
        if statuses.get(&r.subscriber).map(String::as_str) != Some(r.expect_status) {
            if wrong < 5 {
                eprintln!(
                    "wrong: {} is {:?}, expected {} ({})",
                    r.subscriber,
                    statuses.get(&r.subscriber),
                    r.expect_status,
                    r.expect_kind
                );
            }
            wrong += 1;
        }
    }
    let kinds: BTreeMap<String, i64> = rt
        .block_on(
            sqlx::query_as("SELECT kind, COUNT(*) FROM inbound GROUP BY kind")
                .fetch_all(store.pool()),
        )
        .expect("kinds")
        .into_iter()
        .collect();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for r in returns.iter() {
        *expected.entry(r.expect_kind.to_string()).or_default() += 1;
    }
    let kinds_ok = kinds == expected;
    rt.block_on(store.close());

    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    println!("{:44} {:>9} {:>8} {:>9}", "", "msgs/s", "/sink", "peak RSS");
    println!(
        "{:44} {:9.0}",
        format!("smtp-sink ({n} returns, {conns} sessions)"),
        rate(sink_time)
    );
    println!(
        "{:44} {:9.0} {:8.2} {:6.0} MB",
        format!("gazette serve, inbound listener"),
        rate(gz_time),
        rate(gz_time) / rate(sink_time),
        rss_kb as f64 / 1024.0
    );
    println!(
        "{n} returns ({:.1} MB), refused by gazette: {gz_refused}; subscribers in the wrong state: {wrong}; kinds {}: {kinds:?}",
        bytes as f64 / 1e6,
        if kinds_ok { "as expected" } else { "WRONG" },
    );
    if let Ok(path) = std::env::var("RESULT") {
        let _ = std::fs::write(
            path,
            format!(
                "n={n}\nsink_rate={:.0}\ngz_rate={:.0}\nrss_kb={rss_kb}\nwrong={wrong}\nkinds_ok={kinds_ok}\nrefused={gz_refused}\n",
                rate(sink_time),
                rate(gz_time)
            ),
        );
    }
    if wrong > 0 || !kinds_ok || gz_refused > 0 {
        std::process::exit(1);
    }
}

/// Hand every return over `conns` parallel sessions (each up to 100
/// messages, as an MTA reuses a connection); the wall time and how many
/// were not answered 250.
fn drive(port: u16, returns: &Arc<Vec<Return>>, conns: usize) -> (Duration, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (returns, next, refused) = (returns.clone(), next.clone(), refused.clone());
            std::thread::spawn(move || {
                loop {
                    if next.load(Ordering::Relaxed) >= returns.len() {
                        return;
                    }
                    let (mut s, greeting) = Session::connect(port);
                    assert!(greeting.starts_with("220"), "{greeting}");
                    assert!(s.command("EHLO bench.example.net").starts_with("250"));
                    for _ in 0..100 {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(r) = returns.get(i) else { break };
                        let ok = s.command("MAIL FROM:<>").starts_with("250")
                            && s.command(&format!("RCPT TO:<{}>", r.rcpt))
                                .starts_with("250")
                            && s.data(&r.bytes, 64 * 1024).starts_with("250");
                        if !ok {
                            refused.fetch_add(1, Ordering::Relaxed);
                            s.command("RSET");
                        }
                    }
                    s.command("QUIT");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("driver thread");
    }
    (started.elapsed(), refused.load(Ordering::Relaxed))
}
