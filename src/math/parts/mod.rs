//! Analysis of non-text message parts.
