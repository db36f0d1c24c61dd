//! Plain-text clippings of web articles.
