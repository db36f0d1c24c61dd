//! What a feed format gives [`super::parallel`] to build it in pieces.
//!
//! A feed is cut into a [`Frame`] (everything but the entries) and its
//! entries, serialized chunk by chunk by the format's own serializer as
//! small documents whose entries are cut out ([`fragment`]) and spliced into
//! the frame. Each format (`rss.rs`, `atom.rs`, `json.rs`) implements
//! [`Format`]; `parallel.rs` builds any three of them without naming them,
//! so the formats do not depend on the builder and the builder does not
//! depend on the formats.

use std::fmt::Display;
use std::ops::Range;

use super::{Context, Entry, FeedError};

/// A feed format as the parallel builder sees it.
pub(crate) trait Format {
    /// The format's name in errors ("RSS", "Atom", "JSON").
    const NAME: &'static str;

    /// What one worker keeps from chunk to chunk (see [`Reused`]).
    type Scratch: Default;

    /// The feed without its entries, cut where they go.
    fn frame(ctx: &Context<'_>) -> Result<Frame, FeedError>;

    /// Serializes `entries` as a document of their own into `buf` (cleared
    /// first) and returns the byte range of the entries in it: exactly what
    /// the one-piece build writes for them (same indentation), for splicing
    /// into [`Format::frame`].
    fn write(
        ctx: &Context<'_>,
        entries: &[Entry<'_>],
        buf: &mut Vec<u8>,
        scratch: &mut Self::Scratch,
    ) -> Result<Range<usize>, FeedError>;

    /// A serializer's failure, or output not as expected.
    fn error(e: &dyn Display) -> FeedError {
        FeedError::Serialize {
            format: Self::NAME,
            message: e.to_string(),
        }
    }
}

/// A feed's output without its entries: entries go between `prefix` and
/// `suffix`, chunks joined by `separator`.
pub(crate) struct Frame {
    pub prefix: String,
    pub suffix: String,
    pub separator: &'static str,
}

impl Frame {
    /// Splits a serialized feed without entries at byte `at`.
    pub(crate) fn split(head: &str, at: usize, separator: &'static str) -> Option<Frame> {
        Some(Frame {
            prefix: head.get(..at)?.to_owned(),
            suffix: head.get(at..)?.to_owned(),
            separator,
        })
    }

    /// The frame of an XML feed: entries go before the last `end` (the
    /// root's closing tag), with nothing between chunks; `what` names the
    /// tag in the error when there is none.
    pub(crate) fn before_last<F: Format>(
        head: &str,
        end: &str,
        what: &str,
    ) -> Result<Frame, FeedError> {
        head.rfind(end)
            .and_then(|at| Frame::split(head, at, ""))
            .ok_or_else(|| F::error(&format!("unexpected serializer output: no end of {what}")))
    }
}

/// Entry structs kept from chunk to chunk: later chunks overwrite their
/// strings instead of allocating new ones (the scratch of the XML formats,
/// whose serializers take owned structs).
pub(crate) struct Reused<T>(Vec<T>);

impl<T> Default for Reused<T> {
    fn default() -> Self {
        Reused(Vec::new())
    }
}

impl<T: Default> Reused<T> {
    /// One struct per entry, each made that entry's by `fill`; give them
    /// back with [`Reused::keep`] once serialized.
    pub(crate) fn fill<'e, 'c: 'e>(
        &mut self,
        entries: &'e [Entry<'c>],
        mut fill: impl FnMut(&mut T, &'e Entry<'c>),
    ) -> Vec<T> {
        let mut structs = std::mem::take(&mut self.0);
        structs.resize_with(entries.len(), T::default);
        for (s, entry) in structs.iter_mut().zip(entries) {
            fill(s, entry);
        }
        structs
    }

    /// Keeps `structs` for the next chunk.
    pub(crate) fn keep(&mut self, structs: Vec<T>) {
        self.0 = structs;
    }
}

/// The byte range of `doc` from the first `start` to the last `end`, where
/// a serializer's output is cut into pieces.
pub(crate) fn fragment<F: Format>(
    doc: &[u8],
    start: &str,
    end: &str,
) -> Result<Range<usize>, FeedError> {
    let first = doc.windows(start.len()).position(|w| w == start.as_bytes());
    let last = doc.windows(end.len()).rposition(|w| w == end.as_bytes());
    match (first, last) {
        (Some(from), Some(to)) if from <= to => Ok(from..to),
        _ => Err(F::error(&format!(
            "unexpected serializer output: no {start:?} ... {end:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A format for the helpers' errors.
    struct Test;

    impl Format for Test {
        const NAME: &'static str = "Test";
        type Scratch = ();
        fn frame(_: &Context<'_>) -> Result<Frame, FeedError> {
            Err(Test::error(&"unused"))
        }
        fn write(
            _: &Context<'_>,
            _: &[Entry<'_>],
            _: &mut Vec<u8>,
            _: &mut (),
        ) -> Result<Range<usize>, FeedError> {
            Err(Test::error(&"unused"))
        }
    }

    #[test]
    fn an_xml_frame_splits_before_the_last_closing_tag() {
        let head = "<feed>\n  <title>&lt;/feed&gt;</title>\n</feed>\n";
        let frame = Frame::before_last::<Test>(head, "\n</feed>", "feed").unwrap();
        assert_eq!(frame.prefix, "<feed>\n  <title>&lt;/feed&gt;</title>");
        assert_eq!(frame.suffix, "\n</feed>\n");
        assert_eq!(frame.separator, "");
        let e = Frame::before_last::<Test>("<feed/>", "\n</feed>", "feed")
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "cannot serialize the Test feed: unexpected serializer output: no end of feed"
        );
    }

    #[test]
    fn a_fragment_runs_from_the_first_start_to_the_last_end() {
        let doc = b"<r>\n  <i>1</i>\n  <i>2</i>\n</r>";
        let range = fragment::<Test>(doc, "\n  <i>", "\n</r>").unwrap();
        assert_eq!(&doc[range], b"\n  <i>1</i>\n  <i>2</i>");
        let e = fragment::<Test>(b"<r/>", "\n  <i>", "\n</r>").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot serialize the Test feed: unexpected"),
            "{e}"
        );
    }
}
