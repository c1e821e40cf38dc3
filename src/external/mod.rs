//! Clients for external math services.
