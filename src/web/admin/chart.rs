//! The dashboard's chart as inline SVG (lands with the dashboard).
