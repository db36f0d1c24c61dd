//! Building big feeds on all cores.
//!
//! Each feed is cut into a frame (everything but the entries) and the entries,
//! in chunks of [`CHUNK`]. Every chunk is serialized by the feed's own
//! serializer (the `rss` / `atom_syndication` crates, serde for JSON) as a
//! small document of its own, and its entries are cut out of that document
//! and appended, in order, to the feed's output. The result is byte-identical
//! to the one-piece serialization (the tests check this for many chunk
//! sizes). Chunk buffers are recycled, so memory stays at about the size of
//! the outputs.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Context, Entry, FeedError, FeedSet, atom, json, rss};

/// Entries per unit of work; feeds with at most this many entries are built
/// on the calling thread, in one piece.
pub(crate) const CHUNK: usize = 64;

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
}

#[derive(Clone, Copy)]
enum Kind {
    Rss,
    Atom,
    Json,
}

const KINDS: [Kind; 3] = [Kind::Atom, Kind::Rss, Kind::Json];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rss => "RSS",
            Kind::Atom => "Atom",
            Kind::Json => "JSON",
        }
    }

    fn write(
        self,
        ctx: &Context<'_>,
        entries: &[Entry<'_>],
        buf: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Result<Range<usize>, FeedError> {
        match self {
            Kind::Rss => rss::write_items(ctx, entries, buf, &mut scratch.rss),
            Kind::Atom => atom::write_entries(ctx, entries, buf, &mut scratch.atom),
            Kind::Json => json::write_items(ctx, entries, buf),
        }
    }
}

/// A worker's structs, reused from chunk to chunk.
#[derive(Default)]
struct Scratch {
    rss: rss::Scratch,
    atom: atom::Scratch,
}

/// One feed's output, appended to chunk by chunk in order.
struct Assembler {
    out: String,
    separator: &'static str,
    /// Index of the next chunk to append.
    next: usize,
    /// Chunks done before their turn.
    waiting: BTreeMap<usize, (Vec<u8>, Range<usize>)>,
}

impl Assembler {
    fn new(frame: &Frame, capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push_str(&frame.prefix);
        Assembler {
            out,
            separator: frame.separator,
            next: 0,
            waiting: BTreeMap::new(),
        }
    }

    /// Takes chunk `index` (`doc[range]`); appends it and any chunks waiting
    /// for it. Documents done with go to `spent`, for reuse.
    fn add(
        &mut self,
        index: usize,
        doc: Vec<u8>,
        range: Range<usize>,
        spent: &mut Vec<Vec<u8>>,
    ) -> Result<(), &'static str> {
        if index != self.next {
            self.waiting.insert(index, (doc, range));
            return Ok(());
        }
        let mut current = Some((doc, range));
        while let Some((doc, range)) = current {
            // The serializers write UTF-8; checked all the same (SIMD: cheap).
            let bytes = doc.get(range).ok_or("chunk out of range")?;
            let text = simdutf8::basic::from_utf8(bytes).map_err(|_| "invalid UTF-8")?;
            if self.next > 0 {
                self.out.push_str(self.separator);
            }
            self.out.push_str(text);
            spent.push(doc);
            self.next += 1;
            current = self.waiting.remove(&self.next);
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds the three feeds on all cores, in chunks of `chunk` entries.
pub(crate) fn build(ctx: &Context<'_>, chunk: usize) -> Result<FeedSet, FeedError> {
    let frames = [rss::frame(ctx)?, atom::frame(ctx)?, json::frame(ctx)?];
    let chunks: Vec<&[Entry<'_>]> = ctx.entries.chunks(chunk.max(1)).collect();
    // Generous: pages never touched cost nothing, and growing would copy.
    let entries = ctx.entries.len();
    let capacity = |frame: &Frame| {
        frame.prefix.len() + frame.suffix.len() + ctx.html_bytes * 3 / 2 + entries * 2048
    };
    let assemblers = frames
        .each_ref()
        .map(|frame| Mutex::new(Assembler::new(frame, capacity(frame))));
    let slot = |kind: Kind| match kind {
        Kind::Rss => 0,
        Kind::Atom => 1,
        Kind::Json => 2,
    };

    let tasks = chunks.len() * KINDS.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let error: Mutex<Option<FeedError>> = Mutex::new(None);
    let pool: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    let worker = || {
        let mut spent = Vec::new();
        let mut scratch = Scratch::default();
        while !failed.load(Ordering::Relaxed) {
            let task = next.fetch_add(1, Ordering::Relaxed);
            if task >= tasks {
                break;
            }
            // Chunk by chunk, the three feeds side by side: each feed's
            // assembler keeps moving and few chunks wait for their turn.
            let (index, kind) = (task / KINDS.len(), KINDS[task % KINDS.len()]);
            let mut buf = lock(&pool).pop().unwrap_or_default();
            let result = kind
                .write(ctx, chunks[index], &mut buf, &mut scratch)
                .and_then(|range| {
                    lock(&assemblers[slot(kind)])
                        .add(index, buf, range, &mut spent)
                        .map_err(|message| FeedError::Serialize {
                            format: kind.name(),
                            message: message.to_owned(),
                        })
                });
            match result {
                Ok(()) => lock(&pool).append(&mut spent),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    lock(&error).get_or_insert(e);
                }
            }
        }
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(tasks);
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(worker);
        }
        worker();
    });
    if let Some(e) = lock(&error).take() {
        return Err(e);
    }

    let [rss, atom, json] =
        assemblers.map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
    let finish = |mut a: Assembler, frame: &Frame, kind: Kind| {
        if a.next != chunks.len() {
            return Err(FeedError::Serialize {
                format: kind.name(),
                message: format!("{} of {} chunks assembled", a.next, chunks.len()),
            });
        }
        a.out.push_str(&frame.suffix);
        Ok(a.out)
    };
    let [rss_frame, atom_frame, json_frame] = &frames;
    Ok(FeedSet {
        rss: finish(rss, rss_frame, Kind::Rss)?,
        atom: finish(atom, atom_frame, Kind::Atom)?,
        json: finish(json, json_frame, Kind::Json)?,
    })
}
