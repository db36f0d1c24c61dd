//! Building big feeds on all cores.
//!
//! Each feed is cut into a frame (everything but the entries) and the entries,
//! in chunks of [`CHUNK`]. Every chunk is serialized by the feed's own
//! serializer (the `rss` / `atom_syndication` crates, serde for JSON) as a
//! small document of its own, and its entries are cut out of that document
//! and appended, in order, to the feed's output. What each format does is
//! behind [`Format`] (`format.rs`); this file knows no format. The result is byte-identical
//! to the one-piece serialization (the tests check this for many chunk
//! sizes). Chunk buffers are recycled, so memory stays at about the size of
//! the outputs.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::format::{Format, Frame};
use super::{Context, Entry, FeedError};

/// Entries per unit of work; feeds with at most this many entries are built
/// on the calling thread, in one piece.
pub(crate) const CHUNK: usize = 64;

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

/// Builds three feeds, of formats `A`, `B` and `C`, on all cores, in chunks
/// of `chunk` entries; their outputs in that order.
pub(crate) fn build<A: Format, B: Format, C: Format>(
    ctx: &Context<'_>,
    chunk: usize,
) -> Result<[String; 3], FeedError> {
    let frames = [A::frame(ctx)?, B::frame(ctx)?, C::frame(ctx)?];
    let names = [A::NAME, B::NAME, C::NAME];
    let chunks: Vec<&[Entry<'_>]> = ctx.entries.chunks(chunk.max(1)).collect();
    // Generous: pages never touched cost nothing, and growing would copy.
    let entries = ctx.entries.len();
    let capacity = |frame: &Frame| {
        frame.prefix.len() + frame.suffix.len() + ctx.html_bytes * 3 / 2 + entries * 2048
    };
    let assemblers = frames
        .each_ref()
        .map(|frame| Mutex::new(Assembler::new(frame, capacity(frame))));

    let tasks = chunks.len() * frames.len();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let error: Mutex<Option<FeedError>> = Mutex::new(None);
    let pool: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    let worker = || {
        let mut spent = Vec::new();
        // Each format's structs, reused from chunk to chunk.
        let mut scratch = (
            A::Scratch::default(),
            B::Scratch::default(),
            C::Scratch::default(),
        );
        while !failed.load(Ordering::Relaxed) {
            let task = next.fetch_add(1, Ordering::Relaxed);
            if task >= tasks {
                break;
            }
            // Chunk by chunk, the three feeds side by side: each feed's
            // assembler keeps moving and few chunks wait for their turn.
            let (index, feed) = (task / frames.len(), task % frames.len());
            let mut buf = lock(&pool).pop().unwrap_or_default();
            let part = chunks[index];
            let written = match feed {
                0 => A::write(ctx, part, &mut buf, &mut scratch.0),
                1 => B::write(ctx, part, &mut buf, &mut scratch.1),
                _ => C::write(ctx, part, &mut buf, &mut scratch.2),
            };
            let result = written.and_then(|range| {
                lock(&assemblers[feed])
                    .add(index, buf, range, &mut spent)
                    .map_err(|message| FeedError::Serialize {
                        format: names[feed],
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

    let [a, b, c] = assemblers.map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
    let finish = |mut a: Assembler, frame: &Frame, format: &'static str| {
        if a.next != chunks.len() {
            return Err(FeedError::Serialize {
                format,
                message: format!("{} of {} chunks assembled", a.next, chunks.len()),
            });
        }
        a.out.push_str(&frame.suffix);
        Ok(a.out)
    };
    let [a_frame, b_frame, c_frame] = &frames;
    Ok([
        finish(a, a_frame, A::NAME)?,
        finish(b, b_frame, B::NAME)?,
        finish(c, c_frame, C::NAME)?,
    ])
}
