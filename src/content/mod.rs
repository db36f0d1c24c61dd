//! Content ingest: issue folders of clippings and Markdown articles -> [`Issue`]s.
//!
//! Reading is split from parsing so that a run can tell from hashes alone that
//! nothing changed (see [`scan::read_tree`]) and skip the parse.

pub mod cache;
pub mod clipping;
pub mod markdown;
mod model;
pub mod nesting;
pub mod scan;
pub(crate) mod text;

pub use cache::{ParseCache, ParseCounts};
pub use model::{Article, ContentHash, Issue, Problem, PublishAt, SourceFormat};
pub use scan::{
    Ingest, ScanError, ScanOptions, SourceTree, parse_tree, parse_tree_with, read_tree,
};
