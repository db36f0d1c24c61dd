//! The bridge from `mail` to the send loop: one prepared digest per issue,
//! one message per claimed row.

use std::collections::HashMap;

use super::send::{Composed, Composer};
use crate::mail::{Digest, Recipient};
use crate::store::Claimed;

/// Digests of the issues being sent, by slug. An issue that could not be
/// prepared carries the reason, and its rows fail with it.
#[derive(Default)]
pub struct DigestComposer {
    digests: HashMap<String, Result<Digest, String>>,
}

impl DigestComposer {
    pub fn insert(&mut self, slug: &str, digest: Result<Digest, String>) {
        self.digests.insert(slug.to_string(), digest);
    }
}

impl Composer for DigestComposer {
    fn compose(&self, row: &Claimed) -> Result<Composed, String> {
        let digest = match self.digests.get(&row.issue_slug) {
            Some(Ok(d)) => d,
            Some(Err(why)) => return Err(why.clone()),
            None => return Err(format!("issue {} was not prepared", row.issue_slug)),
        };
        let recipient = Recipient {
            email: &row.email,
            name: row.name.as_ref(),
            token: &row.token,
        };
        let out = digest
            .message_as(&recipient, row.format)
            .map_err(|e| e.to_string())?;
        Ok(Composed {
            message_id: out.message_id,
            envelope_from: out.envelope_from,
            bytes: out.bytes,
        })
    }
}
