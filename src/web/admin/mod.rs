//! The admin console (`/admin/`).

pub mod chart;
