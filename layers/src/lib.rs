//! Reusable tower layers for A2A servers and any other tower service.
#![deny(missing_docs)]
