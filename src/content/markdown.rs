//! Markdown articles with TOML front matter.
