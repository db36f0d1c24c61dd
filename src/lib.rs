//! gazette: syndication and newsletter system for a periodical.
//!
//! Data flows one way: content files -> issue model -> (feeds, ledger) -> transport.
//! See ARCHITECTURE.md for the map.

pub mod admins;
pub mod config;
pub mod content;
pub mod cycle;
pub mod cycles;
pub mod daemon;
pub mod delivery;
pub mod feeds;
pub mod import;
pub mod inbound;
pub mod mail;
pub mod release;
pub mod store;
pub mod subscribers;
pub mod templates;
pub mod web;
