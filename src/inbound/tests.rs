use super::*;
use report::{Action, BounceRecipient, EnhancedStatus};

fn bounce(action: Action, status: &str, diagnostic: &str) -> BounceRecipient {
    let mut parts = status.split('.').map(|p| p.parse::<u16>().unwrap());
    BounceRecipient {
        recipient: Some("reader@example.net".into()),
        action,
        status: Some(EnhancedStatus {
            class: parts.next().unwrap() as u8,
            subject: parts.next().unwrap(),
            detail: parts.next().unwrap(),
        }),
        diagnostic: Some(diagnostic.into()),
    }
}

fn report(kind: ReportKind) -> Report {
    Report {
        kind,
        original_message_id: Some("<2026-05-03.9f8e7d6c5b4a3f2e@news.example.org>".into()),
        subject: None,
    }
}

#[test]
fn a_tag_names_the_delivery_and_the_worst_recipient_decides() {
    let r = report(ReportKind::Bounce(vec![
        bounce(Action::Delayed, "4.2.0", "450 try later"),
        bounce(Action::Failed, "5.1.1", "550 no such user"),
    ]));
    let d = decide(Address::Ours(Owned::Tagged(Tag::Delivery(42))), &r);
    assert_eq!(d.kind, InboundKind::Hard);
    assert_eq!(d.about, About::Delivery(42));
    assert_eq!(d.status.as_deref(), Some("5.1.1"));
    assert_eq!(d.diagnostic.as_deref(), Some("550 no such user"));

    let soft = report(ReportKind::Bounce(vec![bounce(
        Action::Delayed,
        "4.4.7",
        "timeout",
    )]));
    let d = decide(Address::Ours(Owned::Tagged(Tag::Signup(7))), &soft);
    assert_eq!((d.kind, d.about), (InboundKind::Soft, About::Subscriber(7)));

    let policy = report(ReportKind::Bounce(vec![bounce(
        Action::Failed,
        "5.7.1",
        "SPF fail",
    )]));
    let d = decide(Address::Ours(Owned::Tagged(Tag::Delivery(1))), &policy);
    assert_eq!(d.kind, InboundKind::Sender);
}

#[test]
fn the_plain_bounce_address_is_matched_by_the_quoted_message_id() {
    let mut r = report(ReportKind::Bounce(vec![bounce(
        Action::Failed,
        "5.1.1",
        "gone",
    )]));
    let d = decide(Address::Ours(Owned::Bounce), &r);
    assert_eq!(
        d.about,
        About::MessageId("<2026-05-03.9f8e7d6c5b4a3f2e@news.example.org>".into())
    );
    r.original_message_id = None;
    let d = decide(Address::Ours(Owned::Bounce), &r);
    assert_eq!(d.about, About::Nobody);
    assert_eq!(d.kind, InboundKind::Hard, "the store makes it unmatched");
}

#[test]
fn complaints_auto_replies_and_other_mail() {
    let abuse = report(ReportKind::Feedback {
        feedback_type: "abuse".into(),
    });
    let tagged = Address::Ours(Owned::Tagged(Tag::Delivery(3)));
    assert_eq!(decide(tagged, &abuse).kind, InboundKind::Complaint);
    let not_spam = report(ReportKind::Feedback {
        feedback_type: "not-spam".into(),
    });
    assert_eq!(decide(tagged, &not_spam).kind, InboundKind::Other);
    // Ignored, but still tied to the delivery its address names.
    assert_eq!(decide(tagged, &not_spam).about, About::Delivery(3));
    assert_eq!(
        decide(tagged, &report(ReportKind::AutoReply)).kind,
        InboundKind::AutoReply
    );
    assert_eq!(
        decide(tagged, &report(ReportKind::Other)).kind,
        InboundKind::Other
    );
    assert_eq!(
        decide(tagged, &report(ReportKind::Bounce(vec![]))).kind,
        InboundKind::Other
    );
    assert_eq!(decide(Address::Forged, &abuse).kind, InboundKind::Forged);
    assert_eq!(decide(Address::NotOurs, &abuse).kind, InboundKind::Other);
}

#[test]
fn a_mailto_unsubscribe_acts_only_with_a_token() {
    let token = Token::generate().unwrap();
    for subject in [
        format!("unsubscribe {token}"),
        format!("Re: UNSUBSCRIBE  {token} "),
    ] {
        let mut r = report(ReportKind::Other);
        r.subject = Some(subject.clone());
        let d = decide(Address::Ours(Owned::Unsubscribe), &r);
        assert_eq!(d.kind, InboundKind::Unsubscribe, "{subject}");
        assert_eq!(d.about, About::Token(token.clone()), "{subject}");
    }
    for subject in [
        None,
        Some("unsubscribe"),
        Some("unsubscribe me please"),
        Some("hello"),
    ] {
        let mut r = report(ReportKind::Other);
        r.subject = subject.map(str::to_string);
        let d = decide(Address::Ours(Owned::Unsubscribe), &r);
        assert_eq!(d.about, About::Nobody, "{subject:?}");
        assert!(d.note.unwrap().contains("no valid token"));
    }
}

#[test]
fn a_quoted_message_id_with_its_rows_tag_names_the_row() {
    let key = VerpKey::new([3; 32]);
    let tag = key.tag(Tag::Delivery(42));
    let mut r = report(ReportKind::Bounce(vec![bounce(
        Action::Failed,
        "5.1.1",
        "gone",
    )]));
    r.original_message_id = Some(format!("<2026-05-03.{tag}@news.example.org>"));
    let d = decide(Address::Ours(Owned::Bounce), &r).with_message_tag(&key);
    assert_eq!(d.about, About::Delivery(42));
    // Another database's key: left to the ledger's lookup of older ids,
    // which finds nothing of ours.
    let d = decide(Address::Ours(Owned::Bounce), &r).with_message_tag(&VerpKey::new([4; 32]));
    assert!(matches!(d.about, About::MessageId(_)));
    // A TAG address decides, whatever Message-ID the report quotes.
    let other = Address::Ours(Owned::Tagged(Tag::Delivery(7)));
    assert_eq!(
        decide(other, &r).with_message_tag(&key).about,
        About::Delivery(7)
    );
}
